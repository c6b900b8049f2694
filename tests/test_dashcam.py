"""The viewer's camera view: key C and the option ``view`` pick top-down, camera or both; frames
keep their size; the road overlay in perspective lies where an independent projection of the
road puts it, never draws what is behind the camera, and rendering never changes a
trajectory."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"

import math  # noqa: E402

import cv2  # noqa: E402
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

import lanesim  # noqa: E402, F401
from lanesim.camera import CameraRaster  # noqa: E402
from lanesim.envs.actions import IDLE, LANE_RIGHT  # noqa: E402
from lanesim.envs.options import OptionError  # noqa: E402
from lanesim.render import annotate, dashcam, style, viewer_of  # noqa: E402
from lanesim.render.dashcam import NEAR, clip_polylines  # noqa: E402

HIGHWAY = "lanesim/Highway-v0"
SIZE = (800, 300)  # a camera pane filling a frame without HUD


def make(mode="rgb_array", env_id=HIGHWAY, **options):
    options.setdefault("action", "meta")
    return gym.make(env_id, render_mode=mode, **options)


def camera_frame(env_id=HIGHWAY, steps=3, seed=0, **options) -> tuple[gym.Env, np.ndarray]:
    """An env in the camera view without HUD (the pane is the whole frame), stepped ``steps``
    decisions straight on, and its frame."""
    env = make(env_id=env_id, view="camera", hud=False, screen_width=SIZE[0],
               screen_height=SIZE[1], **options)
    env.reset(seed=seed)
    for _ in range(steps):
        env.step(IDLE)
    return env, env.render()


def post_key(key: int, unicode: str = "") -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, unicode=unicode, mod=0))


def expected_pixels(env, xy: np.ndarray) -> np.ndarray:
    """Where world ground points ``xy`` ``(n, 2)`` (m) land in the camera pane, by OpenCV's
    projectPoints from the camera's pose in the world, worked out here from the mounting
    (1.3 m up, 1.0 m ahead of the ego's centre, 5° down, 90° across) and the ego's pose."""
    w = env.unwrapped.world
    ex, ey, h = float(w.x[0, 0]), float(w.y[0, 0]), float(w.heading[0, 0])
    width, height = viewer_of(env).camera_rect.size
    f = 0.5 * width / math.tan(math.radians(45))
    K = np.array([[f, 0, 0.5 * (width - 1)], [0, f, 0.5 * (height - 1)], [0, 0, 1]])
    p = math.radians(5)
    ahead = np.array([math.cos(p) * math.cos(h), math.cos(p) * math.sin(h), -math.sin(p)])
    right = np.array([math.sin(h), -math.cos(h), 0.0])
    down = np.cross(ahead, right)
    R = np.stack([right, down, ahead])  # rows: the camera's axes in world coordinates
    centre = np.array([ex + math.cos(h), ey + math.sin(h), 1.3])
    pts = np.column_stack([xy, np.zeros(len(xy))])
    uv, _ = cv2.projectPoints(pts, cv2.Rodrigues(R)[0], -R @ centre, K, np.zeros(4))
    return uv.reshape(-1, 2)


def colours_near(frame: np.ndarray, u: float, v: float, r: int = 1) -> set[tuple[int, ...]]:
    i, j = round(v), round(u)
    patch = frame[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].reshape(-1, 3)
    return {tuple(int(c) for c in px) for px in patch}


def has_colour(frame: np.ndarray, colour) -> np.ndarray:
    """``(H, W)`` where the frame has exactly ``colour``."""
    return (frame == np.array(colour, dtype=np.uint8)).all(axis=-1)


# --------------------------------------------------------------------- views
def test_key_c_cycles_top_camera_both_and_back():
    env = make("human")
    env.reset(seed=0)
    viewer = viewer_of(env)
    seen = [viewer.view_mode]
    for _ in range(3):
        post_key(pygame.K_c, "c")
        viewer.poll()
        env.step(IDLE)  # draws the window in the new view
        seen.append(viewer.view_mode)
        assert (viewer.view is None) == (viewer.view_mode == "camera")
        assert (viewer.camera_rect is None) == (viewer.view_mode == "top")
    assert seen == ["top", "camera", "both", "top"]
    env.close()


@pytest.mark.parametrize("view", ["top", "camera", "both"])
@pytest.mark.parametrize("mode", ["rgb_array", "human"])
def test_view_option_sets_the_start_view(view, mode):
    env = make(mode, view=view)
    env.reset(seed=0)
    env.step(IDLE)
    viewer = viewer_of(env)
    assert viewer.view_mode == view
    assert (viewer.camera_rect is not None) == (view != "top")
    assert (viewer.view is not None) == (view != "camera")
    env.close()


@pytest.mark.parametrize("size", [(600, 150), (1200, 400)])
def test_rgb_array_frames_keep_the_screen_size_in_every_view(size):
    env = make(screen_width=size[0], screen_height=size[1])
    env.reset(seed=0)
    env.render()
    viewer = viewer_of(env)
    panel = viewer.panel.width
    for view, pane_width in (("camera", size[0] - panel), ("both", (size[0] - panel + 1) // 2),
                             ("top", None)):
        viewer.view_mode = view
        frame = env.render()
        assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
        if pane_width is None:
            assert viewer.camera_rect is None
        else:
            assert viewer.camera_rect.size == (pane_width, size[1])
            assert viewer.camera_rect.right == size[0]
    env.close()


@pytest.mark.parametrize(("mode", "strips"), [("rgb_array", 1), ("rgb_array", 3),
                                             ("human", 2)])
def test_camera_pane_is_the_rasters_colour_image_of_world_0(mode, strips, monkeypatch):
    # Drawn in strips on threads, it is the image of the whole camera, pixel for pixel.
    monkeypatch.setattr(dashcam, "STRIPS", strips)
    env = make(mode, view="both", road_overlay=False, sim_speed="max")
    env.reset(seed=0)
    for _ in range(3):
        env.step(IDLE)
    frame = env.render()
    assert len(viewer_of(env).dashcam.strips) == strips
    if frame is None:  # human: the window's pixels
        frame = pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)
    viewer = viewer_of(env)
    rect = viewer.camera_rect
    raster = CameraRaster(viewer.dashcam.camera, env.unwrapped.world, colour=True)
    pane = frame[rect.top : rect.bottom, rect.left : rect.right]
    np.testing.assert_array_equal(pane, raster.image(0))
    env.close()


def test_vector_env_camera_view_shows_its_first_world():
    env = gym.make_vec(HIGHWAY, num_envs=3, render_mode="rgb_array", road_overlay=False,
                       view="camera", hud=False)
    env.reset(seed=5)
    env.step(np.zeros(3, dtype=np.int64))
    frame = env.render()
    world = env.unwrapped.world
    raster = CameraRaster(viewer_of(env).dashcam.camera, world, colour=True)
    np.testing.assert_array_equal(frame, raster.image(0))
    assert not np.array_equal(frame, raster.image(1))
    env.close()


def test_window_resizes_make_the_camera_pane_once_at_the_next_frame():
    env = make("human", view="camera", sim_speed="max")
    env.reset(seed=0)
    env.render()
    viewer = viewer_of(env)
    for _ in range(3):  # a window dragged bigger sends a stream of these
        pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=(1200, 400), w=1200,
                                             h=400))
    viewer.poll()
    assert viewer.dashcam is None and viewer.camera_rect.right == 1200
    env.render()
    assert viewer.dashcam.camera.image_size == viewer.camera_rect.size
    env.close()


def test_camera_view_keeps_the_hud_panel_beside_it():
    env = make(view="camera", screen_width=1200, screen_height=400)
    env.reset(seed=0)
    env.step(IDLE)
    viewer = viewer_of(env)
    frame = env.render()
    panel, pane = viewer.panel, viewer.camera_rect
    assert panel.width > 0 and pane.left == panel.right and pane.right == 1200
    assert has_colour(frame[:, : panel.width], style.TEXT).sum() > 100
    viewer.show_hud = False
    frame = env.render()
    assert viewer.camera_rect.left == 0 and viewer.camera_rect.width == 1200
    assert not has_colour(frame, style.TEXT).any()
    env.close()


def test_pause_and_single_step_work_in_the_camera_view():
    env = make("human", view="camera", sim_speed="max")
    env.reset(seed=0)
    viewer = viewer_of(env)
    world = env.unwrapped.world
    env.step(IDLE)
    post_key(pygame.K_SPACE)
    viewer.poll()
    assert viewer.paused
    t0 = float(world.time[0])
    # Paused inside the next decision: one '.' finishes it, a second lets step return.
    period = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_PERIOD, unicode=".", mod=0)
    pygame.time.set_timer(period, 100, loops=2)
    env.step(IDLE)
    assert viewer.paused and float(world.time[0]) == pytest.approx(t0 + 0.2)
    pygame.time.set_timer(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0), 100,
                          loops=1)
    env.step(IDLE)
    assert not viewer.paused and viewer.view_mode == "camera"
    env.close()


def test_view_option_errors_name_the_accepted_views():
    with pytest.raises(OptionError, match="one of top, camera, both.*did you mean 'camera'"):
        make(view="camra")
    with pytest.raises(OptionError, match="'view'"):
        make(view=1)
    env = make()
    env.reset(seed=0)
    env.render()
    with pytest.raises(ValueError, match="view_mode must be one of top, camera, both"):
        viewer_of(env).view_mode = "side"
    env.close()


# --------------------------------------------------------------------- the overlay in perspective
def lane_edge_points(env, ahead: np.ndarray, d: float) -> np.ndarray:
    w = env.unwrapped.world
    x, y, _ = w.road.to_world(float(w.s[0, 0]) + ahead, np.full(len(ahead), d))
    return np.column_stack([x, y])


@pytest.mark.parametrize(("env_id", "steps", "seed"), [
    (HIGHWAY, 3, 0),  # straight
    ("lanesim/LaneKeeping-v0", 40, 1),  # a curve ahead
])
def test_overlay_lane_edge_lies_where_the_camera_model_projects_the_road(env_id, steps, seed):
    env, frame = camera_frame(env_id, steps, seed, vehicles=0)
    w = env.unwrapped.world
    lane = int(w.lane[0, 0])
    d = lane * w.road.lane_width  # the ego lane's left edge
    ahead = np.array([6.0, 12.0, 20.0, 35.0, 60.0])
    uv = expected_pixels(env, lane_edge_points(env, ahead, d))
    assert ((uv[:, 0] > 1) & (uv[:, 0] < SIZE[0] - 2) & (uv[:, 1] > 1)
            & (uv[:, 1] < SIZE[1] - 2)).all()
    for u, v in uv:
        assert tuple(style.LANE_BOUNDARY) in colours_near(frame, u, v), (u, v)
    # Half a lane to the right, where no line is (near the car, before far lines converge):
    # the line is where it should be, not a blur.
    beside = expected_pixels(env, lane_edge_points(env, ahead[:3], d + 0.5 * w.road.lane_width))
    for u, v in beside:
        assert tuple(style.LANE_BOUNDARY) not in colours_near(frame, u, v), (u, v)
    env.close()


def test_leader_box_outline_is_drawn_at_the_leaders_projected_corners():
    env, frame = camera_frame(steps=5)
    w = env.unwrapped.world
    from lanesim.render.draw import leader

    j = leader(w, 0, 0.0)[0]
    assert j > 0
    x, y, h = float(w.x[0, j]), float(w.y[0, j]), float(w.heading[0, j])
    hl, hw = 0.5 * float(w.length[0, j]), 0.5 * float(w.width[0, j])
    c, s = math.cos(h), math.sin(h)
    rear = np.array([[x - hl * c - k * hw * s, y - hl * s + k * hw * c] for k in (-1, 1)])
    marks = {tuple(style.HEADWAY), tuple(style.TEXT_WARN)}
    for u, v in expected_pixels(env, rear):
        assert marks & colours_near(frame, u, v), (u, v)
    env.close()


def test_vehicles_hide_the_road_marks_behind_them():
    # Roadworks, 10 s in: a car merges in 7 m ahead, over the ego lane's centre line.
    env, frame = camera_frame("lanesim/Roadworks-v0", steps=50)
    w = env.unwrapped.world
    from lanesim.render.draw import leader

    j = leader(w, 0, 0.0)[0]
    assert j > 0 and float(w.s[0, j] - w.s[0, 0]) < 15.0
    x, y, h = float(w.x[0, j]), float(w.y[0, j]), float(w.heading[0, j])
    hl, hw = 0.5 * float(w.length[0, j]), 0.5 * float(w.width[0, j])
    c, s = math.cos(h), math.sin(h)
    # The image of the box's rear face at half its height, shrunk 3 px from its outline.
    rear = np.array([[x - hl * c - k * hw * s, y - hl * s + k * hw * c] for k in (-1, 1)])
    (u0, v0), (u1, _) = sorted(expected_pixels(env, rear).tolist())
    face = frame[round(v0) - 20 : round(v0) - 3, round(u0) + 3 : round(u1) - 3]
    raster = CameraRaster(viewer_of(env).dashcam.camera, w, colour=True).image(0)
    assert face.size and (face == raster[round(v0) - 20 : round(v0) - 3,
                                          round(u0) + 3 : round(u1) - 3]).all()
    # ... while the ego lane's centre line runs up to the car and would cross it.
    centre = expected_pixels(env, lane_edge_points(
        env, np.array([4.0]), float(w.road.lane_centre[w.lane[0, 0]])))[0]
    assert tuple(style.LANE_CENTRE) in colours_near(frame, *centre) | colours_near(
        frame, centre[0], centre[1] - 1)
    assert u0 < centre[0] < u1
    env.close()


def test_copy_inside_puts_back_exactly_the_pixels_whose_centres_are_in_the_polygon():
    from lanesim.render.kernels import copy_inside

    dst = np.zeros((20, 30, 3), dtype=np.uint8)
    src = np.full((12, 16, 3), 7, dtype=np.uint8)  # the block at column 4, row 3
    px, py = np.array([5.2, 18.7, 9.0]), np.array([3.5, 8.0, 14.2])  # a triangle
    copy_inside(dst, src, 4, 3, px, py)
    rows, cols = np.mgrid[0:20, 0:30]
    inside = np.ones((20, 30), dtype=bool)
    for k in range(3):  # same side of every edge as the third vertex
        ax, ay, bx, by = px[k], py[k], px[(k + 1) % 3], py[(k + 1) % 3]
        cx, cy = px[(k + 2) % 3], py[(k + 2) % 3]
        side = (bx - ax) * (rows - ay) - (by - ay) * (cols - ax)
        inside &= side * ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) >= 0
    assert inside.sum() > 30
    np.testing.assert_array_equal(dst[..., 0] == 7, inside)


def test_clip_polylines_cuts_at_the_near_plane_and_drops_what_is_behind():
    p = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [2.0, 0.0, -3.0],
                  [1.0, 0.0, 5.0], [1.0, 1.0, 6.0], [5.0, 5.0, -1.0], [5.0, 5.0, -2.0]])
    joined = np.array([True, True, True, True, False, True, True])
    points, starts, first = clip_polylines(p, joined)
    assert (points[:, 2] >= NEAR - 1e-12).all()
    pieces = [points[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
    assert first.tolist() == [0, 3, 5]
    # Cut where the segments cross z = NEAR, on the segments.
    t = (2.0 - NEAR) / 5.0
    np.testing.assert_allclose(pieces[0], [[0, 0, NEAR], [0, 0, 1], [0, 0, 2],
                                           [2 * t, 0, NEAR]])
    np.testing.assert_allclose(pieces[1], [[2.0 - 1.0 * (NEAR + 3) / 8, 0, NEAR], [1, 0, 5]])
    t = (6.0 - NEAR) / 7.0
    np.testing.assert_allclose(pieces[2], [[1, 1, 6], [1 + 4 * t, 1 + 4 * t, NEAR]])


def test_nothing_is_drawn_from_points_behind_the_camera():
    env, _ = camera_frame(vehicles=0)
    w = env.unwrapped.world
    horizon = viewer_of(env).dashcam.camera.horizon_row()
    behind = lane_edge_points(env, np.arange(-40.0, -1.0, 3.0), float(w.d[0, 0]) + 1.0)
    annotate(env, plan=behind)
    assert not has_colour(env.render(), style.PLAN).any()
    # From behind the car to ahead of it: drawn, but only ahead, on the ground (below the
    # horizon), never a mirrored image of the part behind.
    annotate(env, plan=lane_edge_points(env, np.arange(-40.0, 40.0, 3.0), float(w.d[0, 0]) + 1.0))
    rows = np.flatnonzero(has_colour(env.render(), style.PLAN).any(axis=1))
    assert len(rows) > 20 and rows.min() > horizon
    env.close()


def test_overlay_follows_the_option_and_key_o_in_the_camera_view():
    overlay_colours = (style.LANE_BOUNDARY, style.LANE_CENTRE, style.OFFSET)
    env, frame = camera_frame(road_overlay=False)
    assert not any(has_colour(frame, c).any() for c in overlay_colours)
    env.close()
    env = make("human", view="camera")
    env.reset(seed=0)
    viewer = viewer_of(env)
    assert viewer.overlay
    post_key(pygame.K_o, "o")
    viewer.poll()
    assert not viewer.overlay
    env.close()
    env, frame = camera_frame()
    assert all(has_colour(frame, c).any() for c in overlay_colours)
    env.close()


# --------------------------------------------------------------------- no side effects
def trajectory(mode, view: str = "top") -> list[np.ndarray]:
    env = make(mode, view=view, sim_speed="max")
    obs, _ = env.reset(seed=11)
    out = [obs]
    for a in [IDLE, LANE_RIGHT, IDLE, 3, IDLE, 4, IDLE, IDLE]:
        obs, r, term, trunc, _ = env.step(a)
        out += [obs, np.array([r, term, trunc], dtype=np.float64)]
        if mode is not None:
            env.render()
        annotate(env, plan=[(0.0, 0.0), (10.0, 0.0)])
    env.close()
    return out


def test_camera_view_never_changes_the_trajectory():
    plain = trajectory(None)
    for mode, view in (("rgb_array", "camera"), ("rgb_array", "both"), ("human", "camera")):
        got = trajectory(mode, view)
        assert all(np.array_equal(a, b) for a, b in zip(plain, got, strict=True)), (mode, view)


def test_camera_view_shows_the_environments_camera_options():
    env = make(view="camera", camera_pitch=12.0, camera_height=2.0, camera_fov=60.0,
               camera_distortion=[-0.05, 0.0, 0.0, 0.0])
    env.reset(seed=0)
    env.render()
    cam = viewer_of(env).dashcam.camera
    fx = cam.intrinsics[0]
    assert cam.pitch == pytest.approx(math.radians(12.0)) and cam.height == 2.0
    assert cam.distortion == (-0.05, 0.0, 0.0, 0.0)
    # The observation's 60 degrees across, at the pane's width.
    assert 2 * math.degrees(math.atan(0.5 * cam.image_size[0] / fx)) == pytest.approx(60.0)
    env.close()


def test_a_distorted_lens_never_folds_overlay_lines_into_the_sky():
    # Barrel distortion folds points far to the side back onto the image; the overlay must
    # not draw them (its lines would fan across the sky).
    frames = {}
    for overlay in (True, False):
        env, frame = camera_frame(vehicles=0, road_overlay=overlay,
                                  camera_distortion=[-0.05, 0.0, 0.0, 0.0])
        frames[overlay] = frame
        horizon = viewer_of(env).dashcam.camera.horizon_row()
        env.close()
    drawn = np.flatnonzero((frames[True] != frames[False]).any(axis=(1, 2)))
    assert len(drawn) > 0
    assert drawn.min() > horizon - 2


def test_one_to_one_radius_is_where_the_radial_distortion_turns_back():
    from lanesim.camera import Camera

    cam = Camera.from_fov(math.radians(90), (84, 84), distortion=(-0.05, 0.0, 0.0, 0.0))
    # r (1 + k1 r^2) stops growing where 1 + 3 k1 r^2 = 0.
    assert cam.one_to_one_radius() == pytest.approx(1 / math.sqrt(0.15), abs=0.01)
    assert Camera.from_fov(math.radians(90), (84, 84)).one_to_one_radius() == math.inf
