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

import os
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.render import style  # noqa: E402
from lanesim.render.kernels import BOX_DARKEN, BOX_FILL, BOX_NONE, draw_text  # noqa: E402

Colour = tuple[int, int, int]
COMPACT_BELOW = 240  # px of surface height under which the HUD shows two short lines


def font_size(height: int) -> int:
    """Font size (pygame's default-font units, about 0.7 px each) for a surface ``height`` px
    tall: the HUD scales with the window but stays legible on small frames."""
    if height < COMPACT_BELOW:
        return max(15, round(height / 9))
    return min(max(18, round(height / 19)), 44)


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
        top-left of their box, or its centre if ``centre`` (the box then kept inside
        ``surf``). ``box``: BOX_NONE, BOX_DARKEN (halve the brightness under it) or BOX_FILL
        (opaque ``fill``); it spans the text plus ``pad`` px around."""
        if not lines:
            return
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
            g = self.glyphs
            while True:
                missing = draw_text(self.rows, surf.get_width(), codes, colours, g.lut, g.atlas,
                                    g.table, float(at[0]), float(at[1]), self.line, pad, box,
                                    packed, centre)
                if missing < 0:
                    return
                g.add(chr(missing))
        images = [self(t, c) for t, c in lines]
        w = max(im.get_width() for im in images) + 2 * pad
        h = (len(images) - 1) * self.line + images[-1].get_height() + 2 * pad
        rect = pygame.Rect(0, 0, w, h)
        if centre:
            rect.center = (round(at[0]), round(at[1]))
            rect.clamp_ip(surf.get_rect())
        else:
            rect.topleft = (int(at[0]), int(at[1]))
        if box == BOX_DARKEN:
            Panel().draw(surf, rect)
        elif box == BOX_FILL:
            surf.fill(fill, rect)
        surf.blits([(im, (rect.x + pad, rect.y + pad + i * self.line))
                    for i, im in enumerate(images)], False)


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
    the ego, which the view places a third of the way across.

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
        self.panel = Panel(rows)

    def draw(self, surf: pygame.Surface, lines: Sequence[tuple[str, Colour]],
             chart: pygame.Surface | None = None) -> None:
        """``lines`` are ``(text, colour)`` pairs; ``chart`` an optional surface."""
        pad = self.pad
        self.text.draw(surf, lines, (0, 0), pad, BOX_DARKEN)
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
