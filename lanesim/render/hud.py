"""Text, the HUD panel, the agent's value chart and the help card.

Text surfaces are cached by content: most HUD lines repeat from frame to frame, and a cached
blit costs ~1 µs where rendering the line again costs ~5 µs. Fonts are pygame's bundled
default (``pygame.font.Font(None, size)``), which needs no display and no system fonts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402

Colour = tuple[int, int, int]
COMPACT_BELOW = 240  # px of surface height under which the HUD shows two short lines


def font_size(height: int) -> int:
    """Font size (pygame's default-font units, about 0.7 px each) for a surface ``height`` px
    tall: the HUD scales with the window but stays legible on small frames."""
    if height < COMPACT_BELOW:
        return max(15, round(height / 9))
    return min(max(18, round(height / 16)), 44)


class Text:
    """A font with a cache of rendered strings. ``bg`` gives an opaque box (fast to blit)."""

    def __init__(self, size: int) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self.font = pygame.font.Font(None, size)
        self.line = self.font.get_linesize()
        self._cache: dict[tuple, pygame.Surface] = {}

    def __call__(self, text: str, colour: Colour = style.TEXT, bg: Colour | None = None):
        key = (text, colour, bg)
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) > 2048:  # numbers change; keep the cache from growing forever
                self._cache.clear()
            surf = self.font.render(text, True, colour, bg)
            self._cache[key] = surf
        return surf


class Panel:
    """A semi-transparent dark box; one surface per (quantized) size, reused."""

    def __init__(self) -> None:
        self._boxes: dict[tuple[int, int], pygame.Surface] = {}

    def draw(self, surf: pygame.Surface, rect: pygame.Rect) -> None:
        # Quantize sizes so frame-to-frame width changes reuse a few surfaces.
        size = (-(-rect.w // 16) * 16, -(-rect.h // 8) * 8)
        box = self._boxes.get(size)
        if box is None:
            box = pygame.Surface(size, 0, surf)
            box.fill(style.HUD_BG)
            box.set_alpha(style.HUD_ALPHA)
            self._boxes[size] = box
        surf.blit(box, rect.topleft)


class Hud:
    """The top-left text panel. ``lines`` are ``(text, colour)`` pairs; ``chart`` an optional
    surface (the agent's values) drawn under them."""

    def __init__(self, height: int) -> None:
        self.compact = height < COMPACT_BELOW
        self.text = Text(font_size(height))
        self.small = Text(max(12, round(font_size(height) * 0.75)))
        self.pad = max(3, self.text.line // 4)
        self.panel = Panel()

    def draw(self, surf: pygame.Surface, lines: Sequence[tuple[str, Colour]],
             chart: pygame.Surface | None = None) -> None:
        rendered = [self.text(t, c) for t, c in lines]
        pad, lh = self.pad, self.text.line
        w = max((r.get_width() for r in rendered), default=0)
        h = lh * len(rendered)
        if chart is not None:
            w = max(w, chart.get_width())
            h += chart.get_height() + pad
        self.panel.draw(surf, pygame.Rect(0, 0, w + 2 * pad, h + 2 * pad))
        y = pad
        for r in rendered:
            surf.blit(r, (pad, y))
            y += lh
        if chart is not None:
            surf.blit(chart, (pad, y + pad))


def value_chart(text: Text, small: Text, values: np.ndarray, labels: Sequence[str] | None,
                chosen: int, width: int, height: int) -> pygame.Surface:
    """Bars of the agent's per-action ``values`` ``(n,)``, scaled from their min to their max,
    the ``chosen`` one highlighted and named above the bars. Drawn once per annotation."""
    n = len(values)
    title = f"{labels[chosen] if labels else chosen}: {values[chosen]:+.3g}"
    head = text(title, style.BAR_CHOSEN)
    show_labels = labels is not None and n <= 8
    label_h = small.line if show_labels else 0
    gap = 2 if n > 8 else 4
    bw = max(3, min((width + gap) // n - gap, 40))
    w = max(head.get_width(), n * (bw + gap) - gap)
    surf = pygame.Surface((w, head.get_height() + height + label_h + 2), pygame.SRCALPHA)
    surf.blit(head, (0, 0))
    top = head.get_height() + 1
    lo, hi = float(np.min(values)), float(np.max(values))
    span = hi - lo if hi > lo else 1.0
    for i, v in enumerate(values):
        bh = 2 + int((height - 2) * (float(v) - lo) / span)
        colour = style.BAR_CHOSEN if i == chosen else style.BAR
        x = i * (bw + gap)
        pygame.draw.rect(surf, colour, (x, top + height - bh, bw, bh))
        if show_labels:
            lab = small(str(labels[i])[: max(2, bw // max(small.line // 2, 1))], style.TEXT_DIM)
            surf.blit(lab, (x, top + height + 1))
    return surf


HELP = (
    ("+  ]", "faster: double the simulation speed"),
    ("-  [", "slower: halve it"),
    ("0", "unpaced (max) on / off"),
    ("space", "pause / resume"),
    (".", "step one decision while paused"),
    ("O", "road overlay on / off"),
    ("H", "this help"),
    ("R", "request a reset (driver loops read it)"),
    ("arrows", "steer and accelerate (KeyboardAgent)"),
    ("Esc", "close the viewer"),
)


def help_card(text: Text) -> pygame.Surface:
    """The key list as an opaque card, drawn once."""
    rows = [(text(k, style.BAR_CHOSEN), text(v)) for k, v in HELP]
    title = text("lanesim viewer: keys", style.TEXT)
    kw = max(k.get_width() for k, _ in rows)
    vw = max(v.get_width() for _, v in rows)
    pad = text.line // 2
    w = max(title.get_width(), kw + pad + vw) + 2 * pad
    h = (len(rows) + 1.5) * text.line + 2 * pad
    card = pygame.Surface((w, int(h)))
    card.fill(style.HUD_BG)
    pygame.draw.rect(card, style.TEXT_DIM, card.get_rect(), 1)
    card.blit(title, (pad, pad))
    y = pad + int(1.5 * text.line)
    for k, v in rows:
        card.blit(k, (pad, y))
        card.blit(v, (pad + kw + pad, y))
        y += text.line
    return card
