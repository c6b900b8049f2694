"""Text, the HUD panel, the agent's value chart and the help card.

Fonts are pygame's bundled default (``pygame.font.Font(None, size)``), which needs no display
and no system fonts. Text reaches a frame in one of two ways:

* rgb_array frames (24-bit RGB surfaces whose pixel bytes the viewer holds): each character is
  rendered once into a glyph atlas (:class:`Glyphs`), and a line is laid out and drawn from it,
  with its box, by one compiled call (:func:`lanesim.render.kernels.draw_text`). The HUD's
  numbers change every frame, so whole-line caching misses; rendering a fresh line with SDL_ttf
  and blitting the new surface costs ~40 µs a frame between simulation steps, the atlas ~3 µs.
* the window and one-off surfaces (the value chart, the help card): SDL_ttf surfaces, cached by
  content (:class:`Text`).

Both lay a line out from the font's own glyphs and advances, so they read the same.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402
from lanesim.render.kernels import BOX_FILL, BOX_NONE, draw_text  # noqa: E402
from lanesim.render.tiles import TINT_ON_ASPHALT  # noqa: E402

Colour = tuple[int, int, int]
COMPACT_BELOW = 240  # px of surface height under which the HUD shows fewer, shorter lines


def font_size(height: int) -> int:
    """Font size (pygame's default-font units, about 0.7 px each) for a surface ``height`` px
    tall: the HUD scales with the window but stays legible on small frames."""
    if height < COMPACT_BELOW:
        return max(15, round(height / 10))
    return min(max(16, round(height / 19)), 44)


class Glyphs:
    """A font's glyphs as coverage bitmaps (0..255) side by side in one atlas, for
    :func:`lanesim.render.kernels.draw_text`. Printable ASCII is rendered up front; any other
    character the first time it is drawn.

    A glyph's bitmap is what SDL_ttf renders for the character alone (antialiased, white on
    black, so a pixel's value is its coverage); it is placed at the pen plus the glyph's left
    bearing when that is negative, and the pen moves by the glyph's advance.
    """

    def __init__(self, font: pygame.font.Font) -> None:
        self.font = font
        self.height = font.get_height()
        self.lut = np.full(256, -1, dtype=np.int32)
        self.atlas = np.zeros((self.height, 0), dtype=np.uint8)
        # Per glyph: atlas column, width, offset from the pen, advance, first and last + 1 row
        # with ink.
        self.table = np.zeros((0, 6), dtype=np.int32)
        self.add("".join(chr(c) for c in range(32, 127)))

    def add(self, chars: str) -> None:
        """Render the glyphs of ``chars`` not in the atlas yet."""
        new = [c for c in dict.fromkeys(chars) if ord(c) >= len(self.lut) or self.lut[ord(c)] < 0]
        if not new:
            return
        bitmaps, rows = [], []
        col = self.atlas.shape[1]
        for c in new:
            img = self.font.render(c, True, (255, 255, 255), (0, 0, 0))
            cov = pygame.surfarray.array3d(img)[:, :, 0].T  # (height, width), top-aligned
            metrics = self.font.metrics(c)[0]
            if metrics is None:  # not in the font: SDL_ttf draws its replacement box
                offset, advance = 0, cov.shape[1]
            else:
                offset, advance = min(metrics[0], 0), metrics[4]
            inked = np.flatnonzero(cov.any(axis=1))
            ink = (int(inked[0]), int(inked[-1]) + 1) if len(inked) else (0, 0)
            bitmaps.append(cov)
            rows.append((col, cov.shape[1], offset, advance, *ink))
            col += cov.shape[1]
        # Some glyphs reach below the font's height (an underscore): the atlas is as tall as
        # the tallest.
        self.height = max(self.height, *(b.shape[0] for b in bitmaps))
        self.atlas = np.ascontiguousarray(np.concatenate(
            [np.pad(b, ((0, self.height - b.shape[0]), (0, 0))) for b in (self.atlas, *bitmaps)],
            axis=1))
        first = len(self.table)
        self.table = np.concatenate([self.table, np.array(rows, dtype=np.int32)])
        top = max(ord(c) for c in new)
        if top >= len(self.lut):
            size = 1 << top.bit_length()
            self.lut = np.concatenate([self.lut, np.full(size - len(self.lut), -1, np.int32)])
        for i, c in enumerate(new):
            self.lut[ord(c)] = first + i


class Text:
    """A font, with two ways to draw it (see the module docstring): :meth:`__call__` returns a
    text surface, cached by content (least recently used first out); :meth:`draw` writes lines
    and their box into ``canvas`` directly when this object was given its pixel ``rows``.

    ``antialias=False`` makes :meth:`__call__` render colour-keyed text, which blits onto
    24-bit surfaces ten times faster than antialiased text (whose per-pixel alpha SDL blends
    pixel by pixel there); :meth:`draw` always antialiases, at no extra cost.

    Args:
        size: font size (pygame's default-font units).
        antialias: for :meth:`__call__`.
        canvas, rows: a 24-bit RGB surface (bytes R, G, B) and a ``(height, pitch)`` uint8 view
            of its pixels (see :func:`lanesim.render.viewer.pixel_rows`): :meth:`draw` on that
            surface uses the glyph atlas.
    """

    CACHE = 512

    def __init__(self, size: int, antialias: bool = True, canvas: pygame.Surface | None = None,
                 rows: np.ndarray | None = None) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self.antialias = antialias
        self.font = pygame.font.Font(None, size)
        self.line = self.font.get_linesize()
        self._cache: OrderedDict[tuple, pygame.Surface] = OrderedDict()
        self.canvas, self.rows = (canvas, rows) if rows is not None else (None, None)
        self.glyphs = Glyphs(self.font) if rows is not None else None
        self._colours: dict[tuple, np.ndarray] = {}

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

    def draw(self, surf: pygame.Surface, lines: Sequence[tuple[str, Colour]], at: tuple,
             pad: int = 0, box: int = BOX_NONE, fill: Colour = style.HUD_BG,
             centre: bool = False) -> None:
        """``lines`` (``(text, colour)`` pairs, ``line`` px apart) on ``surf``, ``at`` the
        top-left of their box, or its centre if ``centre`` (the box then kept inside ``surf``'s
        clip rectangle). ``box``: BOX_NONE or BOX_FILL (opaque ``fill``); it spans the text
        plus ``pad`` px around. Nothing is drawn right of the clip rectangle."""
        if not lines:
            return
        clip = surf.get_clip()
        if self.rows is not None and surf is self.canvas:
            text = "\n".join(t for t, _ in lines)
            try:  # one byte per character: much faster to encode than UTF-32
                codes = np.frombuffer(text.encode("latin-1"), np.uint8)
            except UnicodeEncodeError:
                codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
            key = tuple(c for _, c in lines)
            colours = self._colours.get(key)
            if colours is None:
                colours = self._colours[key] = np.array(key, dtype=np.uint8).reshape(-1, 3)
            packed = (fill[0] << 16) | (fill[1] << 8) | fill[2]
            bounds = (clip.left, clip.top, clip.right, clip.bottom)
            g = self.glyphs
            while True:
                missing = draw_text(self.rows, clip.right, codes, colours, g.lut, g.atlas,
                                    g.table, float(at[0]), float(at[1]), self.line, pad, box,
                                    packed, centre, bounds)
                if missing < 0:
                    return
                g.add(chr(missing))
        images = [self(t, c) for t, c in lines]
        w = max(im.get_width() for im in images) + 2 * pad
        h = (len(images) - 1) * self.line + images[-1].get_height() + 2 * pad
        rect = pygame.Rect(0, 0, w, h)
        if centre:
            rect.center = (round(at[0]), round(at[1]))
            rect.clamp_ip(clip)
        else:
            rect.topleft = (int(at[0]), int(at[1]))
        if box == BOX_FILL:
            surf.fill(fill, rect)
        surf.blits([(im, (rect.x + pad, rect.y + pad + i * self.line))
                    for i, im in enumerate(images)], False)

    def width(self, s: str) -> int:
        """Width (px) of ``s`` in this font."""
        return self.font.size(s)[0]

    def wrap(self, s: str, width: int) -> list[str]:
        """``s`` split at spaces into lines at most ``width`` px wide (a single word wider
        than that keeps a line of its own)."""
        lines: list[str] = []
        for word in s.split(" "):
            if lines and self.width(f"{lines[-1]} {word}") <= width:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        return lines


class Hud:
    """The side panel: an opaque column at the left edge of the surface holding the text
    lines (top) and the agent's value chart (bottom). The world is drawn right of it, so the
    panel never hides road or traffic, and its text is read on a plain dark background.

    Args:
        height: of the surface drawn on (px): sets the font size and the compact layout.
        canvas, rows: an rgb_array frame and its pixel bytes (see :class:`Text`), or None.
    """

    def __init__(self, height: int, canvas: pygame.Surface | None = None,
                 rows: np.ndarray | None = None) -> None:
        self.compact = height < COMPACT_BELOW
        self.text = Text(font_size(height), True, canvas, rows)
        self.small = Text(max(12, round(font_size(height) * 0.85)), True, canvas, rows)
        self.pad = max(3, self.text.line // 4)

    def width(self, templates: Sequence[str], labels: Sequence[str] | None = None) -> int:
        """Panel width (px) that holds the widest of ``templates`` (the longest lines the
        HUD shows, with their widest numbers) and, given the action ``labels``, a value chart
        whose bars all carry at least their shortest labels (two rows of them)."""
        inner = max(self.text.width(t) for t in templates)
        if labels:
            shortest = max(self.small.width(v) for v in abbreviations(labels)[-1])
            inner = max(inner, math.ceil(len(labels) * (shortest + 2) / 2))
        return inner + 2 * self.pad

    def draw(self, surf: pygame.Surface, rect: pygame.Rect,
             lines: Sequence[tuple[str, Colour]], chart: pygame.Surface | None = None) -> None:
        """The panel in ``rect``: ``lines`` (``(text, colour)`` pairs) from the top, ``chart``
        (an optional surface) at the bottom."""
        pad = self.pad
        surf.fill(style.HUD_BG, rect)
        clip = surf.get_clip()
        surf.set_clip(rect)
        self.text.draw(surf, lines, (rect.x + pad, rect.y + pad))
        surf.set_clip(clip)
        if chart is not None:
            surf.blit(chart, (rect.x + pad, rect.bottom - chart.get_height() - pad))


def _words(label: str) -> list[str]:
    return label.replace("_", " ").split()


def abbreviations(labels: Sequence[str]) -> list[list[str]]:
    """Ever shorter forms of a set of action names, each form still telling them apart:
    the names; without the words several of them share (``LANE_LEFT`` -> ``LEFT``); the
    first letter of each word, digits kept (``LEFT`` -> ``L``, ``L2 brake`` -> ``L2b``)."""
    forms = [list(labels)]
    words = [_words(v) for v in labels]
    shared = {w for ws in words for w in ws if sum(w in other for other in words) > 1}
    kept = [" ".join(w for w in ws if w not in shared) for ws in words]
    if all(kept) and len(set(kept)) == len(kept):
        forms.append(kept)
        words = [_words(v) for v in kept]
    initials = ["".join(w if any(c.isdigit() for c in w) else w[0] for w in ws) for ws in words]
    if len(set(initials)) == len(initials):
        forms.append(initials)
    return forms


def value_chart(text: Text, small: Text, values: np.ndarray, labels: Sequence[str],
                chosen: int, width: int, height: int) -> pygame.Surface:
    """Bars of the agent's per-action ``values`` ``(n,)``, scaled from their min to their max,
    the ``chosen`` one highlighted and named above them; ``width`` px wide, bars ``height`` px
    tall. Every bar carries its label (``labels``, one per value): the longest form of
    :func:`abbreviations` that fits under the bars, in one row or alternating between two
    (the shortest form, in two rows, if none fits). Drawn once per annotation."""
    n = len(values)
    head = text(f"{labels[chosen]}: {values[chosen]:+.3g}", style.BAR_CHOSEN)
    gap = 2 if n > 8 else 4
    slot = (width + gap) / n  # px per bar, its gap included
    bw = max(1, int(slot) - gap)
    for form in abbreviations(labels):
        names = [small(v, style.TEXT) for v in form]
        widest = max(im.get_width() for im in names)
        rows = 1 if widest <= slot - 2 else 2
        if widest <= rows * slot - 2:
            break
    surf = pygame.Surface((width, head.get_height() + height + rows * small.line + 2),
                          pygame.SRCALPHA)
    surf.blit(head, (0, 0))
    top = head.get_height() + 1
    lo, hi = float(np.min(values)), float(np.max(values))
    span = hi - lo if hi > lo else 1.0
    for i, v in enumerate(values):
        bh = 2 + int((height - 2) * (float(v) - lo) / span)
        colour = style.BAR_CHOSEN if i == chosen else style.BAR
        x = round(i * slot)
        pygame.draw.rect(surf, colour, (x, top + height - bh, bw, bh))
        im = names[i]
        lx = min(max(x + (bw - im.get_width()) // 2, 0), width - im.get_width())
        surf.blit(im, (lx, top + height + 1 + (i % rows) * small.line))
    return surf


HELP = (
    ("+  ]", "faster: double the simulation speed"),
    ("-  [", "slower: halve it"),
    ("0", "unpaced (max) on / off"),
    ("space", "pause / resume"),
    (".", "run one decision, then pause"),
    ("O", "road overlay on / off"),
    ("C", "view: top-down, camera, both"),
    ("H", "this help"),
    ("R", "restart the episode"),
    ("arrows", "steer and accelerate (KeyboardAgent)"),
    ("Esc", "close the viewer"),
)


def legend() -> tuple[tuple[Colour, str, str], ...]:
    """``(colour, mark, meaning)`` of everything the viewer draws; ``mark`` is ``box`` (a
    vehicle), ``line`` or ``dot``."""
    return (
        (style.EGO, "box", "ego (the agent's car)"),
        (style.CAR, "box", "traffic"),
        (style.STALLED, "box", "stalled car"),
        (style.CONE, "dot", "cone (closed lane)"),
        (style.CRASHED, "box", "crashed vehicle"),
        (style.MARKING, "line", "road edge (solid), lane line (dashed)"),
        (TINT_ON_ASPHALT, "box", "overlay: drivable lanes"),
        (style.LANE_CENTRE, "line", "overlay: lane centre"),
        (style.LANE_BOUNDARY, "line", "overlay (camera): lane edge"),
        (style.OFFSET, "line", "ego's offset from its lane centre"),
        (style.ROAD_DIRECTION, "line", "road direction at the ego"),
        (style.HEADING, "line", "ego heading (angle: heading error)"),
        (style.TRAIL, "line", "ego's path, last 3 s"),
        (style.PLAN, "dot", "agent's plan (up to the next vehicle)"),
        (style.HEADWAY, "line", "leader: gap, headway, time to collision"),
        (style.TEXT_WARN, "line", "... under 0.8 s headway or 3 s to collision"),
        (style.BAR_CHOSEN, "box", "value chart: the chosen action"),
    )


def help_card(text: Text) -> pygame.Surface:
    """The keys and a legend of every colour and mark, side by side on an opaque card,
    drawn once."""
    line, pad = text.line, text.line // 2
    keys = [(text(k, style.BAR_CHOSEN), text(v)) for k, v in HELP]
    kw = max(k.get_width() for k, _ in keys)
    left_w = max(kw + pad + max(v.get_width() for _, v in keys), text.width("Keys"))
    marks = [(colour, mark, text(meaning)) for colour, mark, meaning in legend()]
    swatch = 2 * line
    right_w = swatch + pad + max(im.get_width() for *_, im in marks)
    w = left_w + right_w + 5 * pad
    h = (max(len(keys), len(marks)) + 1.5) * line + 2 * pad
    card = pygame.Surface((w, int(h)))
    card.fill(style.HUD_BG)
    pygame.draw.rect(card, style.TEXT_DIM, card.get_rect(), 1)
    x1 = 2 * pad + left_w + 2 * pad
    card.blit(text("Keys", style.TEXT), (pad, pad))
    card.blit(text("Legend", style.TEXT), (x1, pad))
    y = pad + int(1.5 * line)
    for i, (k, v) in enumerate(keys):
        card.blit(k, (pad, y + i * line))
        card.blit(v, (pad + kw + pad, y + i * line))
    for i, (colour, mark, im) in enumerate(marks):
        cy = y + i * line + line // 2
        if mark == "box":
            pygame.draw.rect(card, colour, (x1, cy - line // 4, swatch, line // 2))
        elif mark == "dot":
            pygame.draw.circle(card, colour, (x1 + swatch // 2, cy), max(2, line // 4))
        else:
            pygame.draw.line(card, colour, (x1, cy), (x1 + swatch, cy), max(2, line // 6))
        card.blit(im, (x1 + swatch + pad, y + i * line))
    return card
