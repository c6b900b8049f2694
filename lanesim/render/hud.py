"""Text, the HUD panel, the agent's value chart and the help card.

Text surfaces are cached by content: most HUD lines repeat from frame to frame, and a cached
blit costs ~1 µs where rendering the line again costs ~5 µs. Fonts are pygame's bundled
default (``pygame.font.Font(None, size)``), which needs no display and no system fonts.
"""

from __future__ import annotations

import os
from collections import OrderedDict
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
    return min(max(18, round(height / 19)), 44)


class Text:
    """A font with a cache of rendered strings (least recently used first out).

    ``antialias=False`` renders colour-keyed text, which blits onto 24-bit surfaces ten times
    faster than antialiased text (whose per-pixel alpha SDL blends pixel by pixel there).
    """

    CACHE = 512

    def __init__(self, size: int, antialias: bool = True) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self.antialias = antialias
        self.font = pygame.font.Font(None, size)
        self.line = self.font.get_linesize()
        self._cache: OrderedDict[tuple, pygame.Surface] = OrderedDict()

    def __call__(self, text: str, colour: Colour = style.TEXT, bg: Colour | None = None):
        key = (text, colour, bg)
        surf = self._cache.get(key)
        if surf is None:
            surf = self.font.render(text, self.antialias or bg is not None, colour, bg)
            self._cache[key] = surf
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return surf


class Panel:
    """A semi-transparent dark box: the pixels under it are halved in brightness in place.

    Why not an alpha blit: SDL blends into 24-bit surfaces (the rgb_array frame) pixel by
    pixel, ~7 ns each; shifting the bytes with numpy, eight at a time, costs a hundredth.

    Args:
        rows: optional ``(height, pitch)`` uint8 view of a 24-bit surface's pixel rows, which
            saves locking the surface for every box.
    """

    def __init__(self, rows: np.ndarray | None = None) -> None:
        self.rows = rows

    def draw(self, surf: pygame.Surface, rect: pygame.Rect) -> None:
        rect = rect.clip(surf.get_rect())
        if rect.w <= 0 or rect.h <= 0:
            return
        depth = surf.get_bytesize()
        if depth == 3 and self.rows is not None:
            # Whole 8-byte words from the row start: the box may grow by up to 2 px.
            end = min(-(-3 * rect.right // 8) * 8, self.rows.shape[1] // 8 * 8)
            words = self.rows[rect.top : rect.bottom, :end].view(np.uint64)
            words >>= 1
            words &= 0x7F7F7F7F7F7F7F7F  # drop the bit each byte got from its neighbour
        elif depth == 3:
            px = pygame.surfarray.pixels3d(surf)  # (x, y, rgb) view; locks surf until deleted
            px[rect.left : rect.right, rect.top : rect.bottom] >>= 1
            del px
        elif depth == 4:
            px = pygame.surfarray.pixels2d(surf)  # (x, y) packed pixels
            region = px[rect.left : rect.right, rect.top : rect.bottom]
            region >>= 1
            region &= 0x7F7F7F7F
            del region, px
        else:
            box = pygame.Surface(rect.size)
            box.set_alpha(128)
            surf.blit(box, rect.topleft)


class Hud:
    """The text panel (top-left) and the agent's value chart (bottom-left): both sit behind
    the ego, which the view places a third of the way across."""

    def __init__(self, height: int, antialias: bool = True, rows: np.ndarray | None = None) -> None:
        self.compact = height < COMPACT_BELOW
        self.text = Text(font_size(height), antialias)
        self.small = Text(max(12, round(font_size(height) * 0.85)), antialias)
        self.pad = max(3, self.text.line // 4)
        self.panel = Panel(rows)

    def draw(self, surf: pygame.Surface, lines: Sequence[tuple[str, Colour]],
             chart: pygame.Surface | None = None) -> None:
        """``lines`` are ``(text, colour)`` pairs; ``chart`` an optional surface."""
        pad, lh = self.pad, self.text.line
        rendered = [self.text(t, c) for t, c in lines]
        w = max((r.get_width() for r in rendered), default=0)
        self.panel.draw(surf, pygame.Rect(0, 0, w + 2 * pad, lh * len(rendered) + 2 * pad))
        surf.blits([(r, (pad, pad + i * lh)) for i, r in enumerate(rendered)], False)
        if chart is not None:
            cw, ch = chart.get_size()
            top = surf.get_height() - ch - 2 * pad
            self.panel.draw(surf, pygame.Rect(0, top, cw + 2 * pad, ch + 2 * pad))
            surf.blit(chart, (pad, top + pad))


def value_chart(text: Text, small: Text, values: np.ndarray, labels: Sequence[str] | None,
                chosen: int, width: int, height: int, max_width: int) -> pygame.Surface:
    """Bars of the agent's per-action ``values`` ``(n,)``, scaled from their min to their max,
    the ``chosen`` one highlighted and named above the bars; about ``width`` px wide, never
    wider than ``max_width``, bars ``height`` px tall. Drawn once per annotation."""
    n = len(values)
    title = f"{labels[chosen] if labels else chosen}: {values[chosen]:+.3g}"
    head = text(title, style.BAR_CHOSEN)
    gap = 2 if n > 8 else 4
    bw = max(3, min((width + gap) // n - gap, 40))
    # Labels only when every one fits under its bar (the bars may widen up to max_width).
    names = [small(str(v), style.TEXT_DIM) for v in labels] if labels is not None else []
    widest = max((im.get_width() for im in names), default=0)
    show = bool(names) and n * (widest + gap) - gap <= max_width
    if show:
        bw = max(bw, widest)
    w = max(head.get_width(), n * (bw + gap) - gap)
    label_h = small.line if show else 0
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
        if show:
            surf.blit(names[i], (x + (bw - names[i].get_width()) // 2, top + height + 1))
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
