"""The viewer: draws world 0 of an environment, paces human-mode runs, handles keys.

``DrivingEnv`` creates one lazily and calls, in order: :meth:`Viewer.on_reset` after a reset,
:meth:`Viewer.on_frame` after every simulation step, :meth:`Viewer.on_decision` after every
``step``, :meth:`Viewer.render` from ``env.render()`` and :meth:`Viewer.close`. The viewer
reads the simulator's arrays and never writes them, so rendering cannot change a trajectory.

Human mode paces the run by the *simulation* clock (``world.time``): ``sim_speed`` 1 shows one
simulated second per wall-clock second, 4 four, 0.25 a quarter, and ``inf`` ("max") runs
unpaced. Above the display rate (60 frames/s) frames are skipped; below it the viewer sleeps in
short slices, handling window events all along. Pause and single-stepping block inside the
callbacks, so a plain ``while True: env.step(agent(obs))`` loop gets them for free.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from collections import deque

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from lanesim.envs.options import VIEWS  # noqa: E402
from lanesim.render import style  # noqa: E402
from lanesim.render.annotate import Annotation, annotation_of  # noqa: E402
from lanesim.render.dashcam import DashCam  # noqa: E402
from lanesim.render.draw import VehicleSprites, draw_polyline  # noqa: E402
from lanesim.render.hud import Hud, help_card, value_chart  # noqa: E402
from lanesim.render.netdashcam import NetDashCam  # noqa: E402
from lanesim.render.overlay import Overlay, plan_until_vehicle  # noqa: E402
from lanesim.render.tiles import RoadTiles  # noqa: E402
from lanesim.render.view import VIEW_LENGTH, RoadPose, View  # noqa: E402

DISPLAY_FPS = 60.0  # most frames drawn per wall-clock second in human mode
FRAME_SLACK = 0.002  # s: a frame this close to a display period counts as due
DEFAULT_SIZE = (600, 150)  # the options' defaults ...
HUMAN_SIZE = (1200, 400)  # ... become this window in human mode
SPEED_RANGE = (1 / 32, 1024.0)
RGB_MASKS = (0x0000FF, 0x00FF00, 0xFF0000, 0)  # 24-bit surface whose bytes are R, G, B

FASTER_KEYS = {pygame.K_PLUS, pygame.K_KP_PLUS, pygame.K_EQUALS, pygame.K_RIGHTBRACKET}
SLOWER_KEYS = {pygame.K_MINUS, pygame.K_KP_MINUS, pygame.K_LEFTBRACKET}
ARROW_KEYS = {pygame.K_LEFT, pygame.K_RIGHT, pygame.K_UP, pygame.K_DOWN}
STEER_NAMES = ("L2", "L1", "0", "R1", "R2")  # DISCRETE_STEER order: hard left .. hard right
ACCEL_NAMES = ("brake", "hold", "gas")  # DISCRETE_ACCEL order


def pixel_rows(surf: pygame.Surface) -> np.ndarray:
    """A lasting ``(height, pitch)`` uint8 numpy view of a software surface's pixel bytes.

    pygame's own views (``get_buffer``, ``surfarray``) lock the surface while they live, so a
    frame would pay for a lock, a buffer object and an unlock each time. A plain software
    surface (not RLE-accelerated) needs no locking (SDL_MUSTLOCK is false) and its pixels never
    move, so a view made once from its address stays valid as long as the surface, which the
    caller keeps.
    """
    if surf.get_flags() & pygame.RLEACCEL:
        raise ValueError("pixel_rows needs a surface without RLE acceleration")
    h, pitch = surf.get_height(), surf.get_pitch()
    buf = (ctypes.c_uint8 * (h * pitch)).from_address(surf._pixels_address)
    return np.ctypeslib.as_array(buf).reshape(h, pitch)


def rgb_view(rows: np.ndarray, rect) -> np.ndarray:
    """The ``(height, width, 3)`` pixels of ``rect`` (a ``pygame.Rect``) in a 24-bit surface
    whose bytes are ``rows`` (see :func:`pixel_rows`): a view, writes go to the surface."""
    block = rows[rect.top : rect.bottom, 3 * rect.left : 3 * rect.right].view()
    block.shape = (rect.height, rect.width, 3)  # raises rather than silently copying
    return block


def parse_speed(value) -> float:
    """``sim_speed`` option to a real-time factor; ``0`` or ``"max"`` is ``inf`` (unpaced)."""
    if value == "max" or value == 0:
        return math.inf
    return float(value)


def action_labels(env) -> tuple[str, ...] | None:
    """Default per-action names for ``env``'s action type (None for continuous actions)."""
    from lanesim.envs.actions import META_ACTIONS

    action = env.options.action
    if action == "meta":
        return META_ACTIONS
    if action == "discrete":
        return tuple(f"{s} {a}" for s in STEER_NAMES for a in ACCEL_NAMES)
    return None


class Viewer:
    """Draws an environment's world 0, in a window (``"human"``) or offscreen
    (``"rgb_array"``): top-down, through the ego's camera, or both side by side.

    The HUD is a side panel at the left edge (see :class:`~lanesim.render.hud.Hud`); the world
    fills the rest, so no panel hides road or traffic. The top-down view is a true world view:
    rotated so the road at the ego points right, the ego a third of the way across its part,
    100 m of road across it. The camera view is the driver's seat (see
    :mod:`lanesim.render.dashcam`). ``view_mode`` (one of :data:`VIEWS`, the option ``view``
    at the start; key C cycles) picks what fills the world's part: ``"top"``, ``"camera"``, or
    ``"both"``, the top-down half left of the camera half. Every view gives frames of the same
    size. In human mode the default 600×150 becomes a resizable 1200×400 window; other sizes
    are used as given.

    Public state (read or set by drivers and tests): ``view_mode``, ``overlay``, ``show_hud``,
    ``help``,
    ``paused``, ``sim_speed`` (real-time factor, ``inf`` = unpaced), ``closed`` (the window was
    closed; further calls do nothing and ``render`` returns None), ``reset_requested`` (R was
    pressed; the driver loop should reset, which clears it), ``keys_held`` / ``key_presses`` (arrow
    keys, for :class:`~lanesim.render.keyboard.KeyboardAgent`), ``capture`` / ``frames``
    (in rgb_array mode, keep an ``(H, W, 3)`` frame of every simulation step), ``fps``,
    ``recorders`` (see :func:`lanesim.render.record_video`), ``notice`` (a line for the HUD
    from the driver, e.g. why the run will end; None for none).
    """

    def __init__(self, env, mode: str = "rgb_array") -> None:
        if mode not in ("human", "rgb_array"):
            raise ValueError(f"Viewer mode must be 'human' or 'rgb_array', got {mode!r}")
        self.env, self.mode = env, mode
        self.world = env.world
        # A road network (lanesim.sim.netrun.NetRun) is drawn from its geometry, turned with
        # the ego; it has no one road, so no road pose, tiles or road overlay of one road.
        self.network = getattr(self.world, "network", None)
        self.road = None if self.network is not None else self.world.road
        self.pose = None if self.network is not None else RoadPose(self.road)
        opts = env.options
        self.overlay = bool(opts.road_overlay)
        self._view_mode = opts.view
        self.sim_speed = parse_speed(opts.sim_speed)
        self._finite_speed = self.sim_speed if math.isfinite(self.sim_speed) else 1.0
        self.show_hud = bool(opts.hud)
        self.help = self.paused = self.closed = self.reset_requested = False
        self.capture = False
        self.frames: list[np.ndarray] = []
        # RecordVideo wrappers fed the frames between decisions (lanesim.render.record_video).
        self.recorders: list = []
        self._frame_no = 0  # simulation frames since the last decision or reset
        self.keys_held: set[int] = set()
        self.key_presses: deque[int] = deque(maxlen=16)
        self.labels = action_labels(env)
        self.notice: str | None = None
        self.fps = 0.0
        # Episode statistics from on_decision.
        self.reward: float | None = None
        self.terms: dict[str, float] = {}
        self.info: dict = {}
        self.episode_return = 0.0
        self.marks = (_NetworkMarks() if self.network is not None
                      else Overlay(self.world, self.pose, opts.sim_hz))
        self.painter = None
        self._stale: Annotation | None = None  # annotation made before the last reset
        self._chart: pygame.Surface | None = None
        self._chart_for: Annotation | None = None
        self._help_card: pygame.Surface | None = None
        self._step_once = False  # '.': run until the end of the current decision
        self._release = False  # R: let the current step return to the driver unpaused
        self._anchor: tuple[float, float] | None = None  # (wall s, sim s) the pacing counts from
        self._last_flip = -math.inf
        self._slot = -math.inf  # wall time of the next display slot (see _pace)
        size = (opts.screen_width, opts.screen_height)
        self._rows: np.ndarray | None = None
        if mode == "human":
            size = HUMAN_SIZE if size == DEFAULT_SIZE else size
            pygame.display.init()
            pygame.display.set_caption(f"lanesim: {getattr(env, 'scenario', None) or 'drive'}")
            self.canvas = pygame.display.set_mode(size, pygame.RESIZABLE)
            pygame.key.set_repeat()  # one KEYDOWN per press: held keys are tracked instead
        else:
            # Bytes R, G, B in memory: the frame is one copy of the pixels. (Drawing in 32 bits
            # and converting costs a full extra pass, as much as drawing all the vehicles.)
            self.canvas = pygame.Surface(size, 0, 24, RGB_MASKS)
            self._rows = pixel_rows(self.canvas)
        self.dashcam: DashCam | None = None
        self._setup(size)

    @property
    def view_mode(self) -> str:
        """What the world's part shows: ``"top"``, ``"camera"`` or ``"both"``."""
        return self._view_mode

    @view_mode.setter
    def view_mode(self, mode: str) -> None:
        if mode not in VIEWS:
            raise ValueError(f"view_mode must be one of {', '.join(VIEWS)}; got {mode!r}")
        self._view_mode = mode

    def _setup(self, size: tuple[int, int]) -> None:
        """Everything that depends on the surface size, the view mode and whether the HUD is
        shown: the layout (side panel, top-down and camera panes), scale, tiles, fonts."""
        w, h = size
        # rgb_array frames: text straight into the frame's bytes (see lanesim.render.hud).
        self.hud = Hud(h, self.canvas, self._rows) if self._rows is not None else Hud(h)
        self._hud_shown, self._laid_out = self.show_hud, self._view_mode
        left = min(self.hud.width(self._templates(), self.labels), w // 2) if self.show_hud else 0
        self.panel = pygame.Rect(0, 0, left, h)
        self.world_rect = pygame.Rect(left, 0, w - left, h)
        top_w = {"top": w - left, "camera": 0, "both": (w - left) // 2}[self._view_mode]
        self.view = self.tiles = self.sprites = None
        if top_w:
            self.ppm = top_w / VIEW_LENGTH
            self.view = View(left + top_w, h, self.ppm, left=left)
            self._world_part = self.canvas.subsurface(self.view.rect())
            self.line_px = style.line_px(self.ppm)
            if self.network is not None:
                self._setup_network(top_w, h)
            else:
                self.tiles = RoadTiles(self.road, self.ppm, self.canvas)
                self.sprites = VehicleSprites(self.ppm, self.canvas)
        # The camera pane's renderer is made when first drawn: its per-pixel tables take a
        # third of a second at 1200×400, once, not at every event of a window being resized.
        if self.dashcam is not None:
            self.dashcam.close()
        self.camera_rect = self.dashcam = None
        if top_w < w - left:
            self.camera_rect = pygame.Rect(left + top_w, 0, w - left - top_w, h)
        self._help_card = None
        self._chart_for = None

    def _setup_network(self, width: int, height: int) -> None:
        """The network pane: a painter at the view's scale (made once per scale; its static
        layer takes a few tenths of a second) and a frame buffer of the pane's size."""
        from lanesim.render.netdraw import NetworkPainter

        if self.painter is None or abs(self.painter.ppm - self.ppm) > 1e-9:
            self.painter = NetworkPainter(self.network, self.ppm, self.world.yield_ends)
        self._net_frame = np.empty((height, width, 3), dtype=np.uint8)

    def _templates(self) -> list[str]:
        """The HUD's longest lines, with wide numbers: they set the side panel's width."""
        first = ["×1024  t 000.0 s", "000 fps   H: help"] if self.mode == "human" else []
        if self.hud.compact:
            return [*first, "000 km/h  lane 0", "offset +0.00 m", "reward +00.000"]
        terms = [f"  {k} +00.000" for k in self.env.options.rewards]
        return [*first, "speed 000.0 km/h", "lane 0  offset +0.00 m", *terms]

    # ------------------------------------------------------------------ env callbacks
    def on_reset(self) -> None:
        """A new episode: clear the trail and statistics, hide the old annotation. Human mode
        also handles events and draws the first frame if a display slot has come (unpaced
        runs of short episodes would otherwise draw at every reset, above the display rate)."""
        self.marks.reset()
        self.reward, self.terms, self.info = None, {}, {}
        self.episode_return = 0.0
        self._stale = annotation_of(self.env)
        self._anchor = None
        self._frame_no = 0
        self.reset_requested = False  # any reset answers the request
        if self.mode == "human" and not self.closed:
            self.marks.sample()
            self._events()
            if not self.closed and time.perf_counter() >= self._slot - FRAME_SLACK:
                self._present()

    def on_frame(self) -> None:
        """After every simulation step: record, then (human) handle events, pace and draw."""
        if self.closed:
            return
        self.marks.sample()
        self._frame_no += 1
        if self.mode != "human":
            # A recorder takes the decision's last frame itself, from render() after step().
            feed = [r for r in self.recorders if r.recording] if (
                self.recorders and self._frame_no < self.env.options.frames_per_decision) else ()
            if self.capture or feed:
                frame = self._array()
                if self.capture:
                    self.frames.append(frame)
                for r in feed:
                    r.recorded_frames.append(frame)
                    if len(r.recorded_frames) > r.video_length:  # as RecordVideo.step does
                        r.stop_recording()
            return
        self._events()
        if self._hold_due():
            self._hold()
        if not self.closed and not self._pause_pending():
            self._pace()

    def _pause_pending(self) -> bool:
        """Paused, and nothing ('.' or R) lets the run go on."""
        return self.paused and not (self._step_once or self._release)

    def _hold_due(self) -> bool:
        """Whether a pause stops here, inside the decision. A pause at the decision's last
        frame waits for :meth:`on_decision` instead, so the paused screen shows the decision's
        reward and '.' then always runs one whole decision (the clock moves)."""
        return self._pause_pending() and (
            self._frame_no < self.env.options.frames_per_decision)

    def on_decision(self, reward: float, info: dict) -> None:
        """After every ``env.step``: keep the reward and its terms; stop here if paused."""
        self._frame_no = 0
        self.reward = float(reward)
        self.terms = dict(info.get("rewards", {}))
        self.info = info
        self.episode_return += self.reward
        if self.mode == "human" and not self.closed:
            self._step_once = False
            if self.paused and not self._release:
                self._hold()
            self._release = False

    def render(self) -> np.ndarray | None:
        """rgb_array: the current frame, ``(screen_height, screen_width, 3)`` uint8. Human:
        draw the window now and return None (also None once the window was closed)."""
        if self.closed:
            return None
        self.marks.sample()
        if self.mode == "human":
            self._events()
            if not self.closed:
                self._present()
            return None
        return self._array()

    def close(self) -> None:
        """Close the window (human mode); the viewer does nothing afterwards."""
        if self.mode == "human" and not self.closed:
            pygame.display.quit()
        if self.dashcam is not None:
            self.dashcam.close()
        self.closed = True

    def pop_frames(self) -> list[np.ndarray]:
        """The frames captured since the last call (``capture = True``, rgb_array mode)."""
        frames, self.frames = self.frames, []
        return frames

    # ------------------------------------------------------------------ drawing
    def _array(self) -> np.ndarray:
        self._draw(self.canvas)
        w, h = self.canvas.get_size()
        return self._rows[:, : 3 * w].copy().reshape(h, w, 3)

    def _draw(self, surf: pygame.Surface) -> None:
        """One frame of world 0 onto ``surf``: the top-down and camera panes, help, HUD."""
        if self.show_hud != self._hud_shown or self._view_mode != self._laid_out:
            self._setup(surf.get_size())  # the side panel or the panes change: lay out again
        if self.network is not None:
            self._draw_network(surf)
            return
        s_ego = float(self.world.s[0, 0])
        theta = math.remainder(self.pose(s_ego)[2], math.tau)
        ann = annotation_of(self.env)
        if ann is self._stale:
            ann = None
        if self.view is not None:
            self._draw_top(surf, s_ego, theta, ann)
        if self.camera_rect is not None:
            self._draw_camera(surf, s_ego, theta, ann)
        self._draw_help(surf)
        if self.show_hud:
            self._draw_hud(surf, ann, theta)

    def _draw_top(self, surf: pygame.Surface, s_ego: float, theta: float,
                  ann: Annotation | None) -> None:
        """The top-down pane: road, overlay, vehicles."""
        w, view = self.world, self.view
        d_ego = float(w.d[0, 0])
        # Centre the road across the view, but never let the ego leave it.
        reach = max(0.5 * surf.get_height() / self.ppm - 3.0, 0.0)
        d_view = min(max(0.5 * self.road.width, d_ego - reach), d_ego + reach)
        x, y, _ = self.pose(s_ego, d_view)
        view.look_at(x, y, theta)
        surf.set_clip(view.rect())  # the world stays right of the side panel
        self.tiles.draw(self._world_part, view, s_ego, self.overlay)
        centre = view.centre()
        lead = None
        if self.overlay:
            lead = self.marks.draw_under(surf, view, ann, s_ego, self.line_px)
        self.sprites.draw(surf, view, w, 0, centre)
        if self.overlay:
            self.marks.draw_over(surf, view, s_ego, theta, lead, self.hud.small, self.line_px)

    def _draw_camera(self, surf: pygame.Surface, s_ego: float, theta: float,
                     ann: Annotation | None) -> None:
        """The camera pane: the image, then the overlay in perspective."""
        rect = self.camera_rect
        if self.dashcam is None:
            if self.network is not None:
                self.dashcam = NetDashCam(self.world, rect.size, self.env.options.camera)
            else:
                self.dashcam = DashCam(self.world, self.pose, rect.size,
                                       self.env.options.camera)
            if self._rows is not None:  # rgb_array: the image goes straight into the frame
                self._camera_pixels = rgb_view(self._rows, rect)
            else:  # the window: through a 24-bit pane, then one converting blit
                self._camera_pane = pygame.Surface(rect.size, 0, 24, RGB_MASKS)
                self._camera_pixels = rgb_view(pixel_rows(self._camera_pane),
                                               self._camera_pane.get_rect())
        pixels = self._camera_pixels
        surf.set_clip(rect)
        self.dashcam.draw_image(pixels)
        if self.overlay:
            _, offset, herr = self._ego_errors(theta)
            # Drawn on the surface whose pixels the image is: the frame, or the window's pane.
            pane, origin = (surf, rect.topleft) if self._rows is not None else (
                self._camera_pane, (0, 0))
            self.dashcam.draw_overlay(pane, origin, pixels, ann, s_ego, offset, herr,
                                      self.hud.small)
        if self._rows is None:
            surf.blit(self._camera_pane, rect)

    def _draw_help(self, surf: pygame.Surface) -> None:
        """The help card over the world's part (key H), then no more clipping."""
        if self.help:
            if self._help_card is None:
                self._help_card = help_card(self.hud.text)
            card = self._help_card
            surf.set_clip(self.world_rect)
            surf.blit(card, card.get_rect(center=self.world_rect.center))
        surf.set_clip(None)

    def _draw_network(self, surf: pygame.Surface) -> None:
        """A network world: top-down around the ego, turned so its heading points right (as
        the one-road view points the road), the ego a third of the way across; with the
        overlay, the ego's route, the lanes it may take and every lane's centre line. Then
        the camera pane (:class:`~lanesim.render.netdashcam.NetDashCam`), help and HUD."""
        w = self.world
        theta = float(w.heading[0, 0])
        ann = annotation_of(self.env)
        if ann is self._stale:
            ann = None
        if self.view is not None:
            self._draw_network_top(surf, ann, theta)
        if self.camera_rect is not None:
            self._draw_camera(surf, 0.0, theta, ann)
        self._draw_help(surf)
        if self.show_hud:
            self._draw_hud(surf, ann, theta)

    def _draw_network_top(self, surf: pygame.Surface, ann: Annotation | None,
                          theta: float) -> None:
        """The network's top-down pane."""
        w = self.world
        rect = pygame.Rect(self.view.rect())
        ahead = (0.5 - 1.0 / 3.0) * rect.width / self.ppm  # the ego a third of the way across
        centre = (float(w.x[0, 0]) + ahead * math.cos(theta),
                  float(w.y[0, 0]) + ahead * math.sin(theta))
        route = w.route_lanes(0) if self.overlay else ()
        lane = int(w.lane[0, 0])
        options = ()
        if self.overlay and lane >= 0:
            options = tuple(int(q) for q in w.neighbours[lane] if q >= 0)
        frame = self.painter.frame(w.x[0], w.y[0], w.heading[0], w.length[0], w.width[0],
                                   w.kind[0], w.crashed[0], centre, rect.size, theta, route,
                                   options, self.overlay, out=self._net_frame)
        if self._rows is not None and surf is self.canvas:
            rgb_view(self._rows, rect)[:] = frame
        else:
            pygame.surfarray.blit_array(self._world_part, frame.swapaxes(0, 1))
        if self.overlay and ann is not None and ann.plan is not None and len(ann.plan):
            # The agent's plan over the picture (the painter has drawn the cars): the view
            # puts the ego where the painter does, a third of the way across.
            self.view.look_at(float(w.x[0, 0]), float(w.y[0, 0]), theta)
            surf.set_clip(rect)
            path, dots = plan_until_vehicle(w, 0, np.asarray(ann.plan, dtype=np.float64))
            draw_polyline(surf, self.view, path, style.PLAN, self.line_px, dots)
            surf.set_clip(None)

    def _ego_errors(self, theta: float) -> tuple[int, float, float]:
        """The ego's lane, its offset (m, + right) from that lane's centre and its heading
        error (rad, + left) from the road direction ``theta`` (rad)."""
        w = self.world
        lane = int(w.lane[0, 0])
        if self.network is not None:  # on a network: relative to the lane the ego is in
            return lane, float(w.offset[0, 0]), float(w.heading_error()[0])
        offset = float(w.d[0, 0]) - float(self.road.lane_centre[lane])
        return lane, offset, math.remainder(float(w.heading[0, 0]) - theta, math.tau)

    def _draw_hud(self, surf, ann: Annotation | None, theta: float) -> None:
        """The side panel: the ego's state, the reward and its terms, the annotation's text,
        the driver's notice, and the value chart at the bottom."""
        w = self.world
        t, v = float(w.time[0]), float(w.speed[0, 0])
        lane, offset, herr = self._ego_errors(theta)
        herr = math.degrees(herr)
        status = ""
        if self.info.get("crashed"):
            status = "CRASHED"
        elif self.info.get("offroad"):
            status = "OFF ROAD"
        if self.mode == "human":
            speed = "max" if math.isinf(self.sim_speed) else f"{self.sim_speed:g}"
            pace = f"×{speed}  "
            state = ("PAUSED", style.TEXT_WARN) if self.paused else (
                f"{self.fps:.0f} fps   H: help", style.TEXT_DIM)
        else:
            pace, state = "", None  # rgb_array frames hold no wall-clock values
        text, room = self.hud.text, self.panel.width - 2 * self.hud.pad
        lines = [(f"{pace}t {t:.1f} s", style.TEXT)]
        if state is not None:
            lines.append(state)
        if self.hud.compact:
            lines += [(f"{3.6 * v:.0f} km/h  lane {lane}", style.TEXT),
                      (f"offset {offset:+.2f} m", style.TEXT)]
        else:
            lines += [(f"speed {3.6 * v:.1f} km/h", style.TEXT),
                      (f"lane {lane}  offset {offset:+.2f} m", style.TEXT),
                      (f"heading {herr:+.1f}°", style.TEXT)]
        if self.reward is not None:
            lines.append((f"reward {self.reward:+.3f}", style.TEXT))
        lines.append((f"return {self.episode_return:+.2f}", style.TEXT))
        if not self.hud.compact:
            # round() + 0.0 turns -0.0004 into 0.0: no "-0.000".
            lines += [(f"  {k} {round(val, 3) + 0.0:+.3f}", style.TEXT_DIM)
                      for k, val in self.terms.items()]
        if status:
            lines.append((status, style.TEXT_WARN))
        for extra, colour in ((ann.text if ann is not None else None, style.BAR_CHOSEN),
                              (self.notice, style.TEXT)):
            if extra:
                lines += [(part, colour) for part in text.wrap(extra, room)]
        chart = None
        if ann is not None and ann.values is not None:
            if self._chart_for is not ann:
                labels = ann.labels or self.labels
                if labels is None or len(labels) != len(ann.values):
                    labels = [str(i) for i in range(len(ann.values))]
                lh = text.line
                self._chart = value_chart(text, self.hud.small, ann.values, labels, ann.chosen,
                                          room, lh if self.hud.compact else 2 * lh)
                self._chart_for = ann
            chart = self._chart
        self.hud.draw(surf, self.panel, lines, chart)

    # ------------------------------------------------------------------ human mode
    def _present(self) -> None:
        """Draw the window and show it."""
        self._draw(self.canvas)
        pygame.display.flip()
        self._flipped()

    def _flipped(self) -> None:
        """Book a window flip: the drawn-FPS average and the next display slot."""
        now = time.perf_counter()
        dt = now - self._last_flip
        if 0 < dt < 1.0:
            self.fps = 1.0 / dt if self.fps == 0 else 0.9 * self.fps + 0.1 / dt
        self._last_flip = now
        # Slots keep a regular DISPLAY_FPS grid. A flip off the grid (a period late or more,
        # or early: a render() call, the paused window) starts a new grid from itself.
        period = 1.0 / DISPLAY_FPS
        nxt = self._slot + period
        self._slot = nxt if now < nxt <= now + period + FRAME_SLACK else now + period

    def _wait(self, until: float) -> bool:
        """Sleep until ``until`` (perf_counter s) in short slices, handling events. False if
        the wait was cut short: the window closed, a pause began (and was held), or the speed
        changed."""
        now = time.perf_counter()
        while now < until:
            time.sleep(min(until - now, 0.01))
            self._events()
            if self.closed:
                return False
            if self._pause_pending():
                if self._hold_due():
                    self._hold()
                return False
            if self._anchor is None:  # the speed changed: start counting afresh
                return False
            now = time.perf_counter()
        return True

    def _pace(self) -> None:
        """Show this simulation frame at its time, on the window's display slots.

        The run is anchored to a (wall, sim) time pair; frame ``t`` is due at
        ``wall0 + (t - sim0) / sim_speed``. A run far behind (a slow agent) re-anchors instead
        of racing to catch up; pausing, speed changes and resets re-anchor too.

        The window flips on a regular grid of DISPLAY_FPS slots. Waiting for a frame's time
        (below the display rate), each slot shows the last frame again (a repeated frame;
        nothing is redrawn). A frame whose time has come is drawn at the next slot, unless the
        next frame will be due by then (above the display rate), in which case it is skipped.
        Unpaced (``inf``), a frame is drawn whenever a slot has come.
        """
        now = time.perf_counter()
        if not math.isfinite(self.sim_speed):
            if now >= self._slot - FRAME_SLACK:
                self._present()
            return
        t = float(self.world.time[0])
        if self._anchor is None or t < self._anchor[1]:
            self._anchor = (now, t)
        target = self._anchor[0] + (t - self._anchor[1]) / self.sim_speed
        if now - target > 0.25:
            self._anchor, target = (now, t), now
        while now < target:
            if now >= self._slot - FRAME_SLACK:
                pygame.display.flip()  # the last frame again
                self._flipped()
            if not self._wait(min(target, self._slot - FRAME_SLACK)):
                return
            now = time.perf_counter()
        slot = self._slot - FRAME_SLACK
        if now < slot:
            step = 1.0 / (self.env.options.sim_hz * self.sim_speed)  # wall s to the next frame
            if target + step <= slot:
                return  # the next frame takes this slot
            if not self._wait(slot):
                return
        self._present()

    def _hold(self) -> None:
        """Block while paused (until space, '.', R or close), redrawing and handling events."""
        self._anchor = None
        while self.paused and not (self._step_once or self._release or self.closed):
            self._present()
            time.sleep(1.0 / 30)
            self._events()
        self._anchor = None

    def _events(self) -> None:
        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                self._close_window()
                return
            if ev.type == pygame.KEYDOWN:
                self._key(ev)
                if self.closed:
                    return
            elif ev.type == pygame.KEYUP:
                self.keys_held.discard(ev.key)
            elif ev.type == pygame.WINDOWFOCUSLOST:
                self.keys_held.clear()
            elif ev.type == pygame.VIDEORESIZE:
                self.canvas = pygame.display.get_surface()
                self._setup(self.canvas.get_size())

    def _key(self, ev) -> None:
        k, char = ev.key, getattr(ev, "unicode", "")
        if k == pygame.K_ESCAPE:
            self._close_window()
        elif k in FASTER_KEYS or char == "+":
            self.set_speed(self.sim_speed * 2)
        elif k in SLOWER_KEYS or char == "-":
            self.set_speed(self.sim_speed / 2 if math.isfinite(self.sim_speed) else 64.0)
        elif k in (pygame.K_0, pygame.K_KP0):
            self.set_speed(self._finite_speed if math.isinf(self.sim_speed) else math.inf)
        elif k == pygame.K_SPACE:
            self.paused = not self.paused
            self._step_once = False
        elif k in (pygame.K_PERIOD, pygame.K_KP_PERIOD):
            # While running, '.' stops at the end of the current decision.
            self.paused = self._step_once = True
        elif k == pygame.K_o:
            self.overlay = not self.overlay
        elif k == pygame.K_c:
            self.view_mode = VIEWS[(VIEWS.index(self._view_mode) + 1) % len(VIEWS)]
        elif k == pygame.K_h:
            self.help = not self.help
        elif k == pygame.K_r:
            self.reset_requested = True
            self._release = True  # a paused run returns to its driver loop, which resets
        elif k in ARROW_KEYS:
            self.keys_held.add(k)
            self.key_presses.append(k)

    def set_speed(self, speed: float) -> None:
        """Set the real-time factor (``inf`` = unpaced), clamped to [1/32, 1024]."""
        if math.isfinite(speed):
            speed = min(max(speed, SPEED_RANGE[0]), SPEED_RANGE[1])
            self._finite_speed = speed
        self.sim_speed = speed
        self._anchor = None

    def linger(self, seconds: float) -> None:
        """Keep showing the current frame for ``seconds`` of wall time (human mode), handling
        keys; pausing extends it. Drivers use it to let an ended episode be seen."""
        end = time.perf_counter() + seconds
        while self.mode == "human" and not self.closed and (
            time.perf_counter() < end or self.paused
        ):
            self._present()
            time.sleep(1.0 / 30)
            self._events()
            if self.reset_requested:
                break
        self._anchor = None

    def poll(self) -> None:
        """Handle pending window events now (human mode); drivers may call it between steps."""
        if self.mode == "human" and not self.closed:
            self._events()

    def _close_window(self) -> None:
        pygame.display.quit()
        self.closed = True
        self.paused = False


class _NetworkMarks:
    """The one-road overlay's trail, which a network view does not draw: nothing to sample."""

    def reset(self) -> None:
        pass

    def sample(self) -> None:
        pass
