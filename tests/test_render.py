"""The viewer: frames show what the simulator holds, where it holds it; rendering never changes
a trajectory; human mode paces by the simulation clock and answers its keys; annotations,
manual driving and video capture work."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"

import math  # noqa: E402
import time  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

import lanesim  # noqa: E402, F401
from lanesim.envs.actions import IDLE, LANE_RIGHT  # noqa: E402
from lanesim.render import annotate, annotation_of, style, viewer_of  # noqa: E402
from lanesim.render.draw import leader  # noqa: E402
from lanesim.render.keyboard import KeyboardAgent, drive  # noqa: E402
from lanesim.render.style import DASH, DASH_PERIOD  # noqa: E402

HIGHWAY = "lanesim/Highway-v0"


def make(mode: str | None = "rgb_array", env_id: str = HIGHWAY, **options):
    options.setdefault("action", "meta")
    return gym.make(env_id, render_mode=mode, **options)


def started(mode="rgb_array", steps: int = 3, seed: int = 0, **options):
    """An env reset with ``seed`` and stepped ``steps`` decisions straight on, rendered once."""
    env = make(mode, **options)
    env.reset(seed=seed)
    for _ in range(steps):
        env.step(IDLE)
    env.render()
    return env


def pixel(frame: np.ndarray, env, x: float, y: float) -> tuple[int, int, int]:
    """Colour of the frame at world point (x, y), through the viewer's own view transform."""
    sx, sy = viewer_of(env).view.point(x, y)
    return tuple(int(v) for v in frame[int(sy), int(sx)])


def near(frame: np.ndarray, env, x: float, y: float, r: int = 1) -> set[tuple[int, int, int]]:
    """Colours within ``r`` px of world point (x, y): for 2 px lines and rotated views."""
    sx, sy = (int(v) for v in viewer_of(env).view.point(x, y))
    patch = frame[sy - r : sy + r + 1, sx - r : sx + r + 1].reshape(-1, 3)
    return {tuple(int(v) for v in p) for p in patch}


def ego_body(env) -> tuple[float, float]:
    """A point of the ego's body 1.2 m behind its centre, where no overlay mark is drawn."""
    w = env.unwrapped.world
    h = float(w.heading[0, 0])
    return float(w.x[0, 0]) - 1.2 * math.cos(h), float(w.y[0, 0]) - 1.2 * math.sin(h)


def road_point(env, s: float, d: float) -> tuple[float, float]:
    x, y, _ = env.unwrapped.world.road.to_world(np.array(s), np.array(d))
    return float(x), float(y)


def post_key(key: int, unicode: str = "") -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, unicode=unicode, mod=0))


# --------------------------------------------------------------------- rgb_array frames
def test_rgb_array_frame_is_height_by_width_by_3_uint8():
    env = started()
    frame = env.render()
    assert frame.shape == (150, 600, 3) and frame.dtype == np.uint8
    assert frame.flags.c_contiguous and frame.flags.writeable
    assert env.render() is not frame  # a fresh array every call
    env.close()
    env = started(screen_width=321, screen_height=97)
    assert env.render().shape == (97, 321, 3)
    env.close()


def test_frame_shows_road_markings_and_vehicles_where_they_are():
    # Dense traffic (whatever the scenario file's), so that cars are in view.
    env = started(road_overlay=False, steps=4, spawn_spacing=30.0, recycle_distance=300.0)
    frame = env.render()
    w = env.unwrapped.world
    road = w.road
    assert pixel(frame, env, *ego_body(env)) == style.EGO
    s = float(w.s[0, 0]) + 30.0  # ahead of the ego, clear of the HUD
    assert style.MARKING in near(frame, env, *road_point(env, s, 0.0))  # left edge line
    assert style.MARKING in near(frame, env, *road_point(env, s, road.width))  # right edge
    assert pixel(frame, env, *road_point(env, s, -4.0)) == style.GRASS  # off the road
    assert pixel(frame, env, *road_point(env, s, road.width + 4.0)) == style.GRASS
    # Lane line 1: painted over the first DASH m of every DASH_PERIOD, anchored to s. Probed
    # in the first of three dash periods ahead where traffic leaves a probe point uncovered.
    near_line = np.abs(w.d[0, 1:] - road.lane_width) < 2.5
    for n in range(math.ceil(s / DASH_PERIOD), math.ceil(s / DASH_PERIOD) + 3):
        painted, gap = n * DASH_PERIOD + 0.5 * DASH, n * DASH_PERIOD + 0.5 * (DASH + DASH_PERIOD)
        covered = [near_line & (np.abs(w.s[0, 1:] - sv) < 6.0) for sv in (painted, gap)]
        free = [sv for sv, c in zip((painted, gap), covered, strict=True) if not c.any()]
        if free:
            break
    assert free, "traffic covers every probe point"
    if painted in free:
        assert style.MARKING in near(frame, env, *road_point(env, painted, road.lane_width))
    if gap in free:
        assert near(frame, env, *road_point(env, gap, road.lane_width)) == {style.ASPHALT}
    # Every traffic car in view (not under the HUD or another car) shows its colour.
    view = viewer_of(env).view
    seen = 0
    for j in range(1, 1 + w.V):
        sx, sy = view.point(w.x[0, j], w.y[0, j])
        if 250 < sx < 590 and 10 < sy < 140 and not w.crashed[0, j]:
            others = np.hypot(w.x[0] - w.x[0, j], w.y[0] - w.y[0, j]) < 5.5
            if others.sum() == 1:
                assert pixel(frame, env, w.x[0, j], w.y[0, j]) == style.CAR
                seen += 1
    assert seen >= 2
    env.close()


def test_vehicles_are_outlined_so_touching_cars_stay_apart():
    env = started(road_overlay=False, hud=False)
    frame = env.render()
    w = env.unwrapped.world
    x, y, h = float(w.x[0, 0]), float(w.y[0, 0]), float(w.heading[0, 0])
    half_l, half_w = 0.5 * float(w.length[0, 0]), 0.5 * float(w.width[0, 0])
    dark = 0.75 * sum(style.ASPHALT)  # darker than the body and the road around it
    for along, left in ((-half_l + 0.04, 0.0), (-1.2, half_w - 0.04), (-1.2, -half_w + 0.04)):
        c, s = math.cos(h), math.sin(h)
        edge = near(frame, env, x + along * c - left * s, y + along * s + left * c)
        assert min(sum(p) for p in edge) < dark  # the rear and both sides
    assert pixel(frame, env, *ego_body(env)) == style.EGO  # the body keeps its colour
    env.close()


def test_cones_are_round():
    from lanesim.sim.world import CONE

    def orange(p):  # the cone's colour, or its antialiased edge
        return p[0] > 150 and p[0] - p[2] > 100

    env = gym.make("lanesim/Drive-v0", scenario="roadworks", render_mode="rgb_array",
                   action="meta", ego_start=430.0, screen_width=1200, screen_height=400,
                   road_overlay=False, hud=False)
    env.reset(seed=0)
    frame = env.render()
    w, view = env.unwrapped.world, viewer_of(env).view
    seen = 0
    for j in np.flatnonzero(w.kind[0] == CONE):
        x, y, r = float(w.x[0, j]), float(w.y[0, j]), 0.5 * float(w.length[0, j])
        sx, sy = view.point(x, y)
        if not (view.left + 10 < sx < view.width - 10 and 10 < sy < view.height - 10):
            continue
        seen += 1
        ring = [pixel(frame, env, x + 0.5 * r * c, y + 0.5 * r * s)
                for c, s in ((1, 0), (0, 1), (-1, 0), (0, -1))]
        assert all(orange(p) for p in ring)  # orange all round (a 6 px disc here) ...
        corners = [pixel(frame, env, x + 0.95 * r * c, y + 0.95 * r * s)
                   for c in (-1, 1) for s in (-1, 1)]
        assert not any(orange(p) for p in corners)  # ... but not in its square's corners
    assert seen >= 3
    env.close()


def test_help_card_legend_names_every_colour_drawn():
    from lanesim.render.hud import legend

    shown = {colour for colour, _, _ in legend()}
    drawn = {*style.VEHICLE_COLOURS, style.CRASHED, style.MARKING, style.LANE_CENTRE,
             style.OFFSET, style.ROAD_DIRECTION, style.HEADING, style.TRAIL, style.PLAN,
             style.HEADWAY, style.TEXT_WARN, style.BAR_CHOSEN}
    assert drawn <= shown


def test_curved_road_view_is_rotated_to_the_road_and_aligned():
    env = started(env_id="lanesim/LaneKeeping-v0", steps=40, road_overlay=False, seed=1)
    w = env.unwrapped.world
    viewer = viewer_of(env)
    viewer.show_hud = False  # it dims the top-left corner
    frame = env.render()
    assert viewer.view.theta != 0.0  # this point of the road is curved away from east
    assert pixel(frame, env, *ego_body(env)) == style.EGO
    for ahead in (-20.0, 15.0, 40.0):  # curving lines stay on their pixels on both sides
        s = float(w.s[0, 0]) + ahead
        assert style.MARKING in near(frame, env, *road_point(env, s, 0.0), r=2)
        assert style.MARKING in near(frame, env, *road_point(env, s, w.road.width), r=2)
        assert pixel(frame, env, *road_point(env, s, -5.0)) == style.GRASS
    # The road direction at the ego points right on screen (on the reference line, d = 0,
    # where a metre of s is a metre of road).
    x0, y0 = road_point(env, float(w.s[0, 0]), 0.0)
    x1, y1 = road_point(env, float(w.s[0, 0]) + 0.5, 0.0)
    (a, b), (c, d) = viewer.view.point(x0, y0), viewer.view.point(x1, y1)
    assert c - a == pytest.approx(0.5 * viewer.ppm, rel=1e-3) and abs(d - b) < 0.01
    env.close()


def test_closed_road_is_drawn_on_past_its_seam():
    env = started(env_id="lanesim/Racetrack-v0", steps=1, road_overlay=False)
    w = env.unwrapped.world
    L = w.road.length
    for e in range(1, 1 + w.V):  # out of the way
        w.place(e, 600.0 + 12.0 * e, 1, 0.0)
    w.place(0, L - 10.0, 0, 20.0)
    viewer = viewer_of(env)
    viewer.show_hud = False
    frame = env.render()
    assert viewer.view.theta != 0.0  # a rotated view: its stations are chosen around the ego
    for ahead in (20.0, 40.0):  # past the seam, where s restarts at 0
        s = L - 10.0 + ahead
        assert style.MARKING in near(frame, env, *road_point(env, s, 0.0), r=2)
        assert style.MARKING in near(frame, env, *road_point(env, s, w.road.width), r=2)
        assert pixel(frame, env, *road_point(env, s, 6.0)) != style.GRASS
    env.close()


def test_leader_across_a_closed_roads_seam_is_the_car_beyond_it():
    env = started(env_id="lanesim/Racetrack-v0", steps=1)
    w = env.unwrapped.world
    L = w.road.length
    for e in range(2, 1 + w.V):
        w.place(e, 600.0 + 12.0 * e, 1, 0.0)
    w.place(0, L - 8.0, 0, 20.0)
    w.place(1, 12.0, 0, 15.0)
    viewer = viewer_of(env)
    j, gap, _, _ = leader(w, 0, viewer.pose.curvature(float(w.s[0, 0])))
    assert j == 1 and gap == pytest.approx(float(w.leader_of_ego()[0][0]))
    env.render()  # its headway line runs across the seam
    env.close()


@pytest.mark.parametrize("size", [(600, 150), (1200, 400)])
def test_curved_road_has_no_dark_specks_or_seams(size):
    # LaneKeeping-v0 on a curve, overlay on: outside the vehicles and the headway label, no
    # pixel is darker than the road's own colours (nearest-pixel rotation and anti-aliased
    # polylines left dark dots and seams here).
    env = started(env_id="lanesim/LaneKeeping-v0", steps=40, seed=1, screen_width=size[0],
                  screen_height=size[1])
    viewer = viewer_of(env)
    viewer.show_hud = False
    frame = env.render()
    assert viewer.view.theta != 0.0
    w, view = env.unwrapped.world, viewer.view
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    det = view.a * view.d - view.b * view.c
    u, v = xs + 0.5 - view.e, ys + 0.5 - view.f
    wx, wy = (view.d * u - view.b * v) / det, (view.a * v - view.c * u) / det
    free = np.ones(frame.shape[:2], bool)
    for j in range(w.N):
        dx, dy = wx - w.x[0, j], wy - w.y[0, j]
        c, s = math.cos(w.heading[0, j]), math.sin(w.heading[0, j])
        free &= ~((np.abs(dx * c + dy * s) < 0.5 * w.length[0, j] + 0.6)
                  & (np.abs(dy * c - dx * s) < 0.5 * w.width[0, j] + 0.6))
    box = (frame == style.HUD_BG).all(axis=2)
    r, c = np.flatnonzero(box.any(axis=1)), np.flatnonzero(box.any(axis=0))
    if len(r):
        free[r[0] - 2 : r[-1] + 3, c[0] - 2 : c[-1] + 3] = False
    floor = 0.8 * min(sum(style.ASPHALT), sum(style.GRASS))
    dark = free & (frame.astype(int).sum(axis=2) < floor)
    assert not dark.any(), np.argwhere(dark)[:5]
    env.close()


def test_overlay_changes_the_frame_and_its_static_part_is_cached():
    env = started()
    viewer = viewer_of(env)
    with_overlay = env.render()
    viewer.overlay = False
    without = env.render()
    assert (with_overlay != without).any(axis=2).sum() > 1000
    painted = viewer.tiles.painted
    env.render()
    viewer.overlay = True
    env.render()
    assert viewer.tiles.painted == painted  # both variants were painted once, then reused
    env.close()


def test_overlay_marks_the_ego_errors_trail_and_leader():
    env = make()
    env.reset(seed=3)
    for _ in range(6):
        _, _, _, _, info = env.step(IDLE)
    env.render()
    viewer, w = viewer_of(env), env.unwrapped.world
    viewer.show_hud = False
    frame = env.render()
    ex, ey, h = float(w.x[0, 0]), float(w.y[0, 0]), float(w.heading[0, 0])
    assert pixel(frame, env, ex, ey) == style.OFFSET  # the lateral-offset line ends here
    tip = ex + (2.4 + 3.0) * math.cos(h), ey + (2.4 + 3.0) * math.sin(h)  # 3 m past the bumper
    assert near(frame, env, *tip) & {style.HEADING, style.ROAD_DIRECTION}
    past = viewer.marks.latest(10)  # the ego 10 steps ago
    assert style.TRAIL in near(frame, env, *past)
    # The headway shown is the environment's own.
    _, _, headway, ttc = leader(w, 0, 0.0)
    assert headway == pytest.approx(info["headway"])
    assert ttc == pytest.approx(info["time_to_collision"])
    env.close()


def test_vector_env_renders_its_first_world():
    env = gym.make_vec(HIGHWAY, num_envs=3, render_mode="rgb_array", road_overlay=False)
    env.reset(seed=5)
    env.step(np.zeros(3, dtype=np.int64))
    frame = env.render()
    assert frame.shape == (150, 600, 3)
    sx, sy = viewer_of(env).view.point(*ego_body(env))
    assert tuple(frame[int(sy), int(sx)]) == style.EGO
    env.close()


def test_check_env_passes_with_rgb_array_rendering():
    from gymnasium.utils.env_checker import check_env

    env = gym.make(HIGHWAY, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_hud_is_an_opaque_side_panel_and_the_hud_option_turns_it_off():
    env = started()
    viewer = viewer_of(env)
    with_hud = env.render()
    panel = viewer.panel
    assert panel.width > 0 and panel.height == with_hud.shape[0]
    # The world starts right of the panel and keeps 100 m across.
    assert viewer.view.left == panel.right
    assert viewer.ppm == pytest.approx((with_hud.shape[1] - panel.width) / 100.0)
    body = with_hud[:, : panel.width]
    assert tuple(body[1, 1]) == style.HUD_BG  # its padding holds no text
    text = (body == style.TEXT).all(axis=2)
    assert text.sum() > 100  # the glyphs' solid pixels, in the HUD's text colour
    # Glyphs sit where the layout puts them: the lines start at the panel's padding.
    cols = np.flatnonzero(text.any(axis=0))
    assert viewer.hud.pad <= cols[0] <= viewer.hud.pad + 2
    # Nothing but the panel's colour, its text colours and their antialiased blends.
    assert not (body == style.GRASS).all(axis=2).any()
    assert not (body == style.ASPHALT).all(axis=2).any()
    viewer.show_hud = False
    without = env.render()
    assert viewer.view.left == 0 and viewer.ppm == pytest.approx(with_hud.shape[1] / 100.0)
    assert not (without == style.TEXT).all(axis=2).any()
    env.close()
    env = started(hud=False)
    assert not viewer_of(env).show_hud
    assert np.array_equal(env.render(), without)
    env.close()
    with pytest.raises(ValueError, match="'hud' must be true or false"):
        make(hud="no")


@pytest.mark.parametrize("mode, size", [("rgb_array", (1200, 400)), ("rgb_array", (1500, 300)),
                                        ("rgb_array", (600, 150)), ("human", (1200, 400)),
                                        ("human", (1500, 300))])
@pytest.mark.parametrize("env_id", [HIGHWAY, "lanesim/LaneKeeping-v0"])
def test_no_panel_hides_road_or_traffic(mode, size, env_id):
    env = make(mode, env_id, screen_width=size[0], screen_height=size[1], sim_speed="max")
    env.reset(seed=2)
    for _ in range(4):
        env.step(IDLE)
    viewer = viewer_of(env)
    annotate(env, values=[0.1, 0.9, 0.3, 0.2, 0.5], text="a long line of agent notes " * 3)
    env.render()
    frame = env.render() if mode == "rgb_array" else pygame.surfarray.array3d(
        pygame.display.get_surface()).swapaxes(0, 1)
    panel, (left, top, width, height) = viewer.panel, viewer.view.rect()
    assert (left, top, width, height) == (panel.right, 0, size[0] - panel.width, size[1])
    # The whole road is inside the world's part at the ego, edge lines included ...
    w, road = env.unwrapped.world, env.unwrapped.world.road
    s = float(w.s[0, 0])
    for d in (-0.3, road.width + 0.3):
        x, y = viewer.view.point(*road_point(env, s, d))
        assert left <= x < left + width and 0 <= y < height
    # ... and the panel's text, notes and chart stay inside it (its right column is clear).
    assert (frame[:, : panel.width] == style.HUD_BG).all(axis=2).mean() > 0.5
    assert (frame[:, panel.right - 1] == style.HUD_BG).all()
    env.close()


def test_hud_text_outside_ascii_is_drawn():
    env = started()
    viewer = viewer_of(env)
    annotate(env, text="ε-greedy ×2 °")  # a line of its own, in the chosen-bar colour
    frame = env.render()
    glyphs = viewer.hud.text.glyphs
    assert all(glyphs.lut[ord(c)] >= 0 for c in "ε×°")
    assert (frame[:, : viewer.panel.width] == style.BAR_CHOSEN).all(axis=2).sum() > 20
    env.close()


def test_headway_label_is_an_opaque_box_with_text():
    env = make()
    env.reset(seed=3)
    for _ in range(6):
        env.step(IDLE)
    viewer = viewer_of(env)
    viewer.show_hud = False
    frame = env.render()
    box = (frame == style.HUD_BG).all(axis=2)
    rows, cols = np.flatnonzero(box.any(axis=1)), np.flatnonzero(box.any(axis=0))
    assert len(rows) and len(cols)
    inside = frame[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].reshape(-1, 3)
    # Every pixel of the box is the box colour, the text colour, or an antialiased blend of
    # the two; more than 20 are mostly text ("NN m  N.N s").
    bg, fg = np.array(style.HUD_BG, float), np.array(style.HEADWAY, float)
    alpha = (inside - bg) @ (fg - bg) / ((fg - bg) @ (fg - bg))
    residual = np.abs(inside - (bg + alpha[:, None] * (fg - bg))).max(axis=1)
    assert residual.max() <= 2.0 and alpha.min() > -0.01 and alpha.max() < 1.01
    assert (alpha > 0.5).sum() > 20
    env.close()


@pytest.mark.parametrize("gap, headway, ttc, text, warn", [
    (-0.6, -0.03, -0.05, "contact", True),  # a crash: overlapping bumpers
    (0.0, 0.0, 0.0, "contact", True),
    (64.2, math.inf, math.inf, "64 m", False),  # the ego stands
    (8.25, 0.55, math.inf, "8.2 m  0.6 s", True),  # close, not closing in
    (40.0, 1.6, 6.6, "40 m  1.6 s  ttc 6.6 s", False),
    (40.0, 1.6, 250.0, "40 m  1.6 s", False),
])
def test_headway_label_reads_contact_in_a_crash_and_never_inf_or_minus(gap, headway, ttc, text,
                                                                        warn):
    from lanesim.render.overlay import headway_label

    assert headway_label(gap, headway, ttc) == (text, warn)


@pytest.mark.parametrize("mode", ["rgb_array", "human"])
def test_label_for_a_point_out_of_view_stays_inside_the_world_view(mode):
    from lanesim.render.draw import label

    env = started(mode, sim_speed="max", screen_width=600, screen_height=150)
    viewer = viewer_of(env)
    surf = viewer.canvas
    surf.fill((0, 0, 0))
    left, top, width, height = viewer.view.rect()
    surf.set_clip(viewer.view.rect())
    for at in ((5000.0, -300.0), (-5000.0, 75.0), (300.0, 900.0)):
        label(surf, viewer.hud.small, "150 m  5.0 s", style.HEADWAY, at)
    surf.set_clip(None)
    box = pygame.surfarray.array3d(surf).swapaxes(0, 1)
    drawn = (box == style.HUD_BG).all(axis=2)
    ys, xs = np.nonzero(drawn)
    assert len(xs) > 50
    assert xs.min() >= left and xs.max() < left + width and ys.min() >= top
    assert ys.max() < top + height
    env.close()


def test_viewer_property():
    env = make()
    assert env.unwrapped.viewer is None
    env.reset(seed=0)
    env.step(IDLE)
    assert env.unwrapped.viewer is viewer_of(env) and viewer_of(env) is not None
    env.close()
    assert env.unwrapped.viewer is None


# --------------------------------------------------------------------- no side effects
def run(mode: str | None, actions: list[int], capture: bool = False, **options):
    env = make(mode, **options)
    obs, _ = env.reset(seed=11)
    out = [obs]
    if mode is not None:
        env.render()
        viewer_of(env).capture = capture
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out += [obs, np.array([r, term, trunc], dtype=np.float64)]
        if mode is not None:
            env.render()
        annotate(env, plan=[(0.0, 0.0), (10.0, 0.0)], values=np.arange(5.0))
    env.close()
    return out


def test_rendering_does_not_change_the_trajectory():
    actions = [IDLE, LANE_RIGHT, IDLE, 3, IDLE, 4, IDLE, IDLE]
    plain = run(None, actions)
    for mode, capture in (("rgb_array", False), ("rgb_array", True), ("human", False)):
        got = run(mode, actions, capture=capture, sim_speed="max")
        assert all(np.array_equal(a, b) for a, b in zip(plain, got, strict=True)), mode


def test_capture_keeps_every_simulation_frame():
    env = started()
    viewer = viewer_of(env)
    viewer.capture = True
    env.step(IDLE)
    frames = viewer.pop_frames()
    assert len(frames) == env.unwrapped.options.frames_per_decision
    assert all(f.shape == (150, 600, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    assert viewer.pop_frames() == []
    env.close()


def record_episode(folder: str, sim_rate: bool, seconds: float = 2.0):
    """Record one seeded episode of ``seconds`` (meta IDLE) with Gymnasium's RecordVideo, plain
    or through record_video; returns the decoded frames, the file's fps and duration."""
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("moviepy")
    from gymnasium.wrappers import RecordVideo

    from lanesim.render import record_video

    folder = os.path.join(folder, "videos")  # RecordVideo warns about existing folders
    env = make(duration=seconds)
    env = record_video(env, folder) if sim_rate else RecordVideo(env, folder)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(IDLE)
        done = terminated or truncated
    env.close()
    (name,) = os.listdir(folder)
    path = os.path.join(folder, name)
    meta = iio.immeta(path, plugin="FFMPEG")
    return iio.imread(path, plugin="FFMPEG"), meta["fps"], meta["duration"]


def reference_frames(seconds: float = 2.0) -> np.ndarray:
    """Every frame of the same episode drawn directly: the reset frame, then each simulation
    step's (viewer.capture)."""
    env = make(duration=seconds)
    env.reset(seed=0)
    frames = [env.render()]
    viewer_of(env).capture = True
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(IDLE)
        frames += viewer_of(env).pop_frames()
        done = terminated or truncated
    env.close()
    return np.array(frames)


def blocks(frames: np.ndarray) -> np.ndarray:
    """10 × 10 px means: the picture without the video codec's fine-grained noise."""
    n, h, w, _ = frames.shape
    return frames.reshape(n, h // 10, 10, w // 10, 10, 3).mean(axis=(2, 4))


def test_record_video_holds_every_simulation_frame_at_sim_hz(tmp_path):
    frames, fps, duration = record_episode(str(tmp_path), sim_rate=True)
    opts = make().unwrapped.options
    assert fps == opts.sim_hz == 15
    # 2 simulated seconds: the reset frame and 30 simulation frames (moviepy drops the last).
    assert abs(len(frames) - 2.0 * opts.sim_hz) <= 1
    assert duration == pytest.approx(2.0, abs=1 / 15)
    # Frame i of the video is simulation frame i: each decoded frame is closest to the
    # frame drawn directly at the same step, not to its neighbours.
    ref = blocks(reference_frames())
    got = blocks(frames)
    for i, frame in enumerate(got):
        dist = np.abs(ref - frame).mean(axis=(1, 2, 3))
        assert dist.argmin() == i, (i, dist[max(i - 1, 0) : i + 2])


def test_plain_record_video_has_one_frame_per_decision_at_policy_hz(tmp_path):
    frames, fps, duration = record_episode(str(tmp_path), sim_rate=False)
    env = make()
    assert env.metadata["render_fps"] == env.unwrapped.options.policy_hz == fps == 5
    assert abs(len(frames) - 2.0 * 5) <= 1  # plays in real time too, a frame per decision
    assert duration == pytest.approx(2.0, abs=1 / 5)
    ref = blocks(reference_frames()[::3])  # the reset frame, then each decision's last
    for i, frame in enumerate(blocks(frames)):
        assert np.abs(ref - frame).mean(axis=(1, 2, 3)).argmin() == i
    env.close()


def test_record_video_refuses_other_envs(tmp_path):
    from lanesim.render import record_video

    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record_video(make("human"), str(tmp_path / "v"))
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        record_video(make(None), str(tmp_path / "v"))
    with pytest.raises(TypeError, match="lanesim DrivingEnv"):
        record_video(gym.make("CartPole-v1", render_mode="rgb_array"), str(tmp_path / "v"))


# --------------------------------------------------------------------- annotations
def test_annotate_draws_the_plan_and_the_values():
    env = started(road_overlay=True)
    w = env.unwrapped.world
    s = float(w.s[0, 0])
    # A plan just off the road's right edge (no car or HUD covers it) shows in its colour.
    plan = [road_point(env, s + ds, w.road.width + 2.0) for ds in (10.0, 20.0, 30.0, 40.0)]
    annotate(env, plan=plan)
    frame = env.render()
    for p in plan:
        assert pixel(frame, env, *p) == style.PLAN
    before = frame
    annotate(env, plan=plan, values=[0.1, 0.9, 0.3, 0.2, 0.5], text="epsilon 0.05")
    frame = env.render()
    assert (frame == style.BAR_CHOSEN).all(axis=2).sum() > 20  # the argmax bar (and title)
    assert (frame != before).any(axis=2)[-40:, :150].sum() > 100  # the chart, bottom-left
    assert annotation_of(env).chosen == 1
    env.reset(seed=1)  # an annotation from the last episode is not shown any more
    env.render()
    fresh = env.render()
    annotate(env)
    assert annotation_of(env) is None
    assert np.array_equal(fresh, env.render())
    env.close()


def test_plan_is_drawn_up_to_the_first_vehicle_it_meets():
    from lanesim.render.overlay import plan_until_vehicle

    env = make()
    env.reset(seed=3)
    for _ in range(6):
        env.step(IDLE)
    w = env.unwrapped.world
    j = leader(w, 0, 0.0)[0]
    assert j > 0
    # Straight along the ego's lane, through its leader and 20 m past it.
    s0, s1 = float(w.s[0, 0]), float(w.s[0, j]) + 20.0
    d = float(w.road.lane_centre[w.lane[0, 0]])
    plan = np.array([road_point(env, s, d) for s in np.arange(s0, s1, 7.0)])
    path, points = plan_until_vehicle(w, 0, plan)
    rear = float(w.x[0, j]) - 0.5 * float(w.length[0, j])  # the road runs east here
    assert rear - 0.6 < path[-1, 0] <= rear
    assert len(points) < len(plan) and (points[:, 0] < rear).all()
    assert np.array_equal(plan_until_vehicle(w, 0, plan[:2])[0], plan[:2])  # clear of cars
    annotate(env, plan=plan)
    viewer_of(env).show_hud = False
    frame = env.render()
    assert style.PLAN in near(frame, env, *plan[1])
    assert style.PLAN not in near(frame, env, *plan[-1], r=3)  # past the leader: not drawn
    env.close()


def test_annotate_rejects_bad_input():
    env = make()
    with pytest.raises(ValueError):
        annotate(env, plan=[(0.0, np.nan)])
    with pytest.raises(ValueError):
        annotate(env, values=[1.0, 2.0], labels=["a"])
    with pytest.raises(ValueError):
        annotate(env, values=[1.0, 2.0], chosen=5)
    env.close()


# --------------------------------------------------------------------- human mode
def test_human_mode_draws_the_window_and_returns_none():
    env = make("human", sim_speed="max")
    env.reset(seed=0)
    assert env.render() is None
    env.step(IDLE)
    env.render()  # unpaced steps skip drawing; render() shows the state now
    surface = pygame.display.get_surface()
    assert surface.get_size() == (1200, 400)  # the default 600x150 becomes a bigger window
    sx, sy = viewer_of(env).view.point(*ego_body(env))
    assert tuple(surface.get_at((int(sx), int(sy))))[:3] == style.EGO
    env.close()


def test_window_resize_rescales_the_view():
    env = make("human", sim_speed="max")
    env.reset(seed=0)
    viewer = viewer_of(env)
    pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=(1200, 400), w=1200, h=400))
    viewer.poll()
    size = pygame.display.get_surface().get_size()
    assert viewer.view.width == size[0]
    assert viewer.ppm == pytest.approx((size[0] - viewer.panel.width) / 100.0)
    env.step(IDLE)
    assert env.render() is None
    env.close()


@pytest.mark.parametrize("speed, lo, hi", [(1.0, 0.9, 1.9), (4.0, 0.22, 0.6)])
def test_human_mode_runs_at_sim_speed_times_real_time(speed, lo, hi):
    env = make("human", sim_speed=speed)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(6):  # 6 decisions of 0.2 s: 1.2 s simulated
        env.step(IDLE)
    took = time.perf_counter() - start
    env.close()
    assert lo < took < hi


def test_human_window_keeps_the_display_rate_at_real_time(monkeypatch):
    flips = []
    flip = pygame.display.flip
    monkeypatch.setattr(pygame.display, "flip", lambda: (flip(), flips.append(time.perf_counter())))
    env = make("human", sim_speed=1.0)
    env.reset(seed=0)
    for _ in range(6):  # 1.2 s simulated: 18 simulation frames, 72 display slots
        env.step(IDLE)
    env.close()
    span = flips[-1] - flips[0]
    assert 1.0 < span < 1.9
    rate = (len(flips) - 1) / span
    assert 40 < rate < 66  # about 60: frames repeated between simulation steps, none extra


def test_rgb_array_and_unpaced_human_are_never_slowed():
    for mode, speed in (("rgb_array", 1.0), ("rgb_array", 0.25), ("human", "max")):
        env = make(mode, sim_speed=speed)
        env.reset(seed=0)
        start = time.perf_counter()
        for _ in range(6):
            env.step(IDLE)
            env.render()
        assert time.perf_counter() - start < 0.6, (mode, speed)
        env.close()


def test_keys_drive_speed_pause_overlay_help_and_reset():
    env = make("human", sim_speed=2.0)
    env.reset(seed=0)
    viewer = viewer_of(env)
    post_key(pygame.K_PLUS, "+")
    viewer.poll()
    assert viewer.sim_speed == 4.0
    post_key(pygame.K_RIGHTBRACKET)
    viewer.poll()
    assert viewer.sim_speed == 8.0
    for key, char in ((pygame.K_MINUS, "-"), (pygame.K_LEFTBRACKET, "["), (pygame.K_MINUS, "-")):
        post_key(key, char)
    viewer.poll()
    assert viewer.sim_speed == 1.0
    post_key(pygame.K_0)
    viewer.poll()
    assert math.isinf(viewer.sim_speed)
    post_key(pygame.K_0)
    viewer.poll()
    assert viewer.sim_speed == 1.0
    overlay = viewer.overlay
    post_key(pygame.K_o)
    post_key(pygame.K_h)
    viewer.poll()
    assert viewer.overlay is not overlay and viewer.help
    post_key(pygame.K_SPACE)
    viewer.poll()
    assert viewer.paused
    post_key(pygame.K_SPACE)
    viewer.poll()
    assert not viewer.paused
    post_key(pygame.K_PERIOD, ".")  # while running: stop at the end of this decision
    viewer.poll()
    assert viewer.paused
    post_key(pygame.K_r)
    viewer.poll()
    assert viewer.reset_requested
    env.close()


def test_pause_blocks_inside_step_and_period_steps_one_decision():
    env = make("human", sim_speed="max")
    env.reset(seed=0)
    viewer = viewer_of(env)
    world = env.unwrapped.world
    post_key(pygame.K_SPACE)
    viewer.poll()
    assert viewer.paused
    period = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_PERIOD, unicode=".", mod=0)
    # Paused mid-decision: one '.' finishes the decision, a second lets step return.
    pygame.time.set_timer(period, 150, loops=2)
    start = time.perf_counter()
    env.step(IDLE)
    assert time.perf_counter() - start > 0.25
    t1 = float(world.time[0])
    # Held at a decision boundary: each '.' lets exactly one more decision run.
    pygame.time.set_timer(period, 150, loops=1)
    start = time.perf_counter()
    env.step(IDLE)
    assert time.perf_counter() - start > 0.1
    assert float(world.time[0]) == pytest.approx(t1 + 0.2)
    assert viewer.paused
    # Space resumes; a normal step then runs unblocked.
    pygame.time.set_timer(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0), 100,
                          loops=1)
    env.step(IDLE)
    assert not viewer.paused
    start = time.perf_counter()
    env.step(IDLE)
    assert time.perf_counter() - start < 0.1
    env.close()


def test_period_after_a_pause_at_a_decisions_end_runs_a_whole_decision():
    # One frame per decision: a pause always comes at a decision's last frame.
    env = make("human", sim_speed="max", policy_hz=15)
    env.reset(seed=0)
    viewer, world = viewer_of(env), env.unwrapped.world
    shown = []  # (clock, return) on the screen at each hold
    hold = viewer._hold

    def look_then_press():
        shown.append((float(world.time[0]), viewer.episode_return))
        post_key(pygame.K_PERIOD if len(shown) < 3 else pygame.K_SPACE, ".")
        hold()

    viewer._hold = look_then_press
    post_key(pygame.K_SPACE)
    total, booked = 0.0, []
    for _ in range(3):
        total += env.step(IDLE)[1]
        booked.append((float(world.time[0]), total))
    # Every hold shows a later clock, with the return of the decisions up to it.
    assert np.array(shown) == pytest.approx(np.array(booked))
    env.close()


def test_reset_key_returns_a_paused_step_to_the_driver():
    env = make("human", sim_speed="max")
    env.reset(seed=0)
    viewer = viewer_of(env)
    post_key(pygame.K_SPACE)
    viewer.poll()
    pygame.time.set_timer(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, mod=0), 150, loops=1)
    start = time.perf_counter()
    env.step(IDLE)  # blocked by the pause until R
    assert 0.1 < time.perf_counter() - start < 1.0
    assert viewer.reset_requested and viewer.paused
    env.reset()
    assert not viewer.reset_requested
    env.close()


def test_escape_closes_the_window_and_the_env_keeps_working():
    env = make("human", sim_speed="max")
    env.reset(seed=0)
    viewer = viewer_of(env)
    post_key(pygame.K_ESCAPE)
    viewer.poll()
    assert viewer.closed
    for _ in range(3):
        env.step(IDLE)
    assert env.render() is None
    env.reset(seed=1)
    env.step(IDLE)
    env.close()


# --------------------------------------------------------------------- manual driving
def hold(viewer, *keys: int) -> None:
    for key in keys:
        post_key(key)
    viewer.poll()


def test_keyboard_agent_continuous_discrete_and_meta():
    env = make("human", action="continuous", sim_speed="max")
    env.reset(seed=0)
    agent, viewer = KeyboardAgent(), viewer_of(env)
    agent.reset(env)
    assert np.array_equal(agent.act(None), np.zeros(2, np.float32))
    hold(viewer, pygame.K_LEFT, pygame.K_UP)
    steer, accel = agent.act(None)
    assert 0 < steer <= 1 and accel == 1.0
    assert env.action_space.contains(agent.act(None))
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_LEFT, mod=0))
    hold(viewer, pygame.K_DOWN)
    steer, accel = agent.act(None)
    assert steer == 0 and accel < 0
    env.close()

    env = make("human", action="discrete", sim_speed="max")
    env.reset(seed=0)
    agent, viewer = KeyboardAgent(), viewer_of(env)
    agent.reset(env)
    assert agent.act(None) == 2 * 3 + 1  # straight ahead, holding speed
    hold(viewer, pygame.K_RIGHT, pygame.K_UP)
    a = agent.act(None)
    assert a // 3 in (3, 4) and a % 3 == 2  # steering right, accelerating
    env.close()

    env = make("human", action="meta", sim_speed="max")
    env.reset(seed=0)
    agent, viewer = KeyboardAgent(), viewer_of(env)
    agent.reset(env)
    hold(viewer, pygame.K_RIGHT)
    assert agent.act(None) == LANE_RIGHT
    assert agent.act(None) == IDLE  # one press, one command
    env.close()


def test_drive_runs_an_episode_by_hand():
    returns = drive(HIGHWAY, action="meta", sim_speed="max", seed=0, episodes=1, duration=1.0,
                    linger=0.0)
    assert len(returns) == 1 and returns[0] > 0


# --------------------------------------------------------------------- value chart labels
def test_abbreviations_shorten_names_and_keep_them_apart():
    from lanesim.envs.actions import META_ACTIONS
    from lanesim.render.hud import abbreviations
    from lanesim.render.viewer import ACCEL_NAMES, STEER_NAMES

    assert abbreviations(META_ACTIONS) == [
        list(META_ACTIONS), ["LEFT", "IDLE", "RIGHT", "FASTER", "SLOWER"],
        ["L", "I", "R", "F", "S"]]
    grid = [f"{s} {a}" for s in STEER_NAMES for a in ACCEL_NAMES]
    forms = abbreviations(grid)
    assert forms[-1][:3] == ["L2b", "L2h", "L2g"]
    assert all(len(set(f)) == len(grid) for f in forms)


@pytest.mark.parametrize("height", [150, 300, 400])
@pytest.mark.parametrize("n", [5, 15])
def test_every_value_bar_carries_a_label(height, n):
    from lanesim.envs.actions import META_ACTIONS
    from lanesim.render.hud import Hud, value_chart
    from lanesim.render.viewer import ACCEL_NAMES, STEER_NAMES

    hud = Hud(height)
    labels = META_ACTIONS if n == 5 else [f"{s} {a}" for s in STEER_NAMES for a in ACCEL_NAMES]
    values = np.linspace(-1.0, 1.0, n)
    width = {150: 80, 300: 120, 400: 150}[height]
    bar_h = 20
    chart = value_chart(hud.text, hud.small, values, labels, 2, width, bar_h)
    px = pygame.surfarray.pixels3d(chart).swapaxes(0, 1)
    alpha = pygame.surfarray.pixels_alpha(chart).T
    top = hud.text(labels[2]).get_height() + 1
    bars = (alpha[top + bar_h - 1] > 0).astype(int)  # the bars' bottom row: every bar is >= 2 px
    starts = np.flatnonzero(np.diff(np.concatenate([[0], bars])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([bars, [0]])) == -1) + 1
    assert len(starts) == n
    below = (alpha[top + bar_h + 1 :] > 0) & (px[top + bar_h + 1 :] == style.TEXT).all(axis=2)
    inked = below.any(axis=0)
    slot = width / n
    for a, b in zip(starts, ends, strict=True):  # some text under (or right around) each bar
        centre = 0.5 * (a + b)
        lo, hi = int(max(centre - slot, 0)), int(min(centre + slot, width))
        assert inked[lo:hi].any()


def test_dqn_value_bars_are_named_by_the_meta_actions(monkeypatch):
    from agents.zoo import load_agent
    from lanesim.envs.actions import META_ACTIONS
    from lanesim.render import viewer as viewer_module

    charted = []
    chart = viewer_module.value_chart
    monkeypatch.setattr(viewer_module, "value_chart",
                        lambda *a: charted.append(tuple(a[3])) or chart(*a))
    loaded = load_agent("dqn")
    env = make(**loaded.env_options)
    obs, _ = env.reset(seed=0)
    loaded.agent.reset(env)
    loaded.agent.act(obs)
    annotate(env, **loaded.agent.annotations())
    env.render()
    assert charted == [META_ACTIONS]
    env.close()
