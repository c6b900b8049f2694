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
    sx, sy = env.unwrapped._viewer.view.point(*ego_body(env))
    assert tuple(frame[int(sy), int(sx)]) == style.EGO
    env.close()


def test_check_env_passes_with_rgb_array_rendering():
    from gymnasium.utils.env_checker import check_env

    env = gym.make(HIGHWAY, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_hud_text_is_drawn_on_a_darkened_panel_and_the_hud_option_turns_it_off():
    env = started()
    viewer = viewer_of(env)
    with_hud = env.render()
    viewer.show_hud = False
    without = env.render()
    # The panel (top-left) halves what is under it; its padding holds no text.
    assert tuple(with_hud[1, 1]) == tuple(int(v) >> 1 for v in without[1, 1])
    line = with_hud[: viewer.hud.text.line + 2 * viewer.hud.pad, :300]
    text = (line == style.TEXT).all(axis=2)
    assert text.sum() > 100  # the glyphs' solid pixels, in the HUD's text colour
    assert not (without[: line.shape[0], :300] == style.TEXT).all(axis=2).any()
    # Glyphs sit where the layout puts them: the line starts at the panel's padding.
    cols = np.flatnonzero(text.any(axis=0))
    assert viewer.hud.pad <= cols[0] <= viewer.hud.pad + 2
    env.close()
    env = started(hud=False)
    assert not viewer_of(env).show_hud
    assert np.array_equal(env.render(), without)
    env.close()
    with pytest.raises(ValueError, match="'hud' must be true or false"):
        make(hud="no")


def test_hud_text_outside_ascii_is_drawn():
    env = started()
    viewer = viewer_of(env)
    annotate(env, text="ε-greedy ×2 °")  # a line of its own, in the chosen-bar colour
    frame = env.render()
    glyphs = viewer.hud.text.glyphs
    assert all(glyphs.lut[ord(c)] >= 0 for c in "ε×°")
    top = viewer.hud.pad + viewer.hud.text.line  # the annotation's line is the second
    assert (frame[top : top + viewer.hud.text.line] == style.BAR_CHOSEN).all(axis=2).sum() > 30
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
    assert viewer.view.width == size[0] and viewer.ppm == pytest.approx(size[0] / 100.0)
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
    agent, viewer = KeyboardAgent(env), viewer_of(env)
    assert np.array_equal(agent(), np.zeros(2, np.float32))
    hold(viewer, pygame.K_LEFT, pygame.K_UP)
    steer, accel = agent()
    assert 0 < steer <= 1 and accel == 1.0
    assert env.action_space.contains(agent())
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_LEFT, mod=0))
    hold(viewer, pygame.K_DOWN)
    steer, accel = agent()
    assert steer == 0 and accel < 0
    env.close()

    env = make("human", action="discrete", sim_speed="max")
    env.reset(seed=0)
    agent, viewer = KeyboardAgent(env), viewer_of(env)
    assert agent() == 2 * 3 + 1  # straight ahead, holding speed
    hold(viewer, pygame.K_RIGHT, pygame.K_UP)
    a = agent()
    assert a // 3 in (3, 4) and a % 3 == 2  # steering right, accelerating
    env.close()

    env = make("human", action="meta", sim_speed="max")
    env.reset(seed=0)
    agent, viewer = KeyboardAgent(env), viewer_of(env)
    hold(viewer, pygame.K_RIGHT)
    assert agent() == LANE_RIGHT
    assert agent() == IDLE  # one press, one command
    env.close()


def test_drive_runs_an_episode_by_hand():
    returns = drive(HIGHWAY, action="meta", sim_speed="max", seed=0, episodes=1, duration=1.0,
                    linger=0.0)
    assert len(returns) == 1 and returns[0] > 0
