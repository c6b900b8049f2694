"""The driver's-seat camera on road networks: the camera and birdseye observations, the
renderer (lanesim.camera.netraster) and the viewer's camera pane."""

import math
import os

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401  (registers the ids)
from lanesim.camera import Camera
from lanesim.camera.netraster import NetworkCameraRaster, ground_texture
from lanesim.camera.raster import (
    CAR_GREY,
    GROUND_GREY,
    ROAD_GREY,
    SOLID_GREY,
    palette,
)
from lanesim.render.netdashcam import NetDashCam

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

NETWORK_IDS = ("lanesim/Intersection-v0", "lanesim/Roundabout-v0", "lanesim/Exit-v0")


def _world(env):
    return env.unwrapped.core.world


@pytest.mark.parametrize("env_id", NETWORK_IDS)
@pytest.mark.parametrize("observation", ["camera", "birdseye"])
@pytest.mark.parametrize("colour", [False, True])
def test_network_camera_frames_are_in_the_observation_space(env_id, observation, colour):
    env = gym.make(env_id, observation=observation, camera_color=colour, frame_stack=2)
    obs, _ = env.reset(seed=5)
    channels = 3 if colour else 1
    assert obs.shape[0] == 2 * channels and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
    # The frames are pictures, not a fill: sky, ground and road levels all appear.
    assert len(np.unique(obs)) > 3
    env.close()


def _ground_pixels(camera: Camera, forward: np.ndarray, left: np.ndarray):
    """Integer pixels (row, column) seeing ground points (m from the point below the
    camera), and a mask of those inside the image."""
    uv, front = camera.ground_to_pixels(np.column_stack([forward, left]))
    col, row = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
    w, h = camera.image_size
    inside = front & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return row, col, inside


@pytest.mark.parametrize("env_id", NETWORK_IDS)
def test_ground_shows_road_where_the_network_has_lanes_and_grass_elsewhere(env_id):
    env = gym.make(env_id, observation="camera", vehicles=0, image_shape=[168, 168])
    obs, _ = env.reset(seed=2)
    frame = obs[-1]
    world, camera = _world(env), env.unwrapped.options.camera
    net = world.network
    # The column at the image's centre below the horizon, a few metres ahead: the ego's lane.
    row, col, inside = _ground_pixels(camera, np.array([6.0, 9.0]), np.zeros(2))
    assert inside.all()
    assert (frame[row, col] == ROAD_GREY).all()
    assert (frame[: int(camera.horizon_row(84.0)) - 2, 84] > ROAD_GREY).all()  # sky above
    # A grid of ground points: those well inside a lane are road (or paint), those well off
    # every lane are the ground's grey.
    f, lft = np.meshgrid(np.arange(4.0, 15.0, 0.5), np.arange(-25.0, 25.0, 0.5))
    f, lft = f.ravel(), lft.ravel()
    ex, ey, eh = world.x[0, 0], world.y[0, 0], world.heading[0, 0]
    ax = f + camera.forward

    def on_lane(df, dl):
        px = ex + math.cos(eh) * (ax + df) - math.sin(eh) * (lft + dl)
        py = ey + math.sin(eh) * (ax + df) + math.cos(eh) * (lft + dl)
        return net.to_lane(px, py)[0] >= 0

    around = [on_lane(df, dl) for df in (-1.5, 0.0, 1.5) for dl in (-1.5, 0.0, 1.5)]
    road = np.all(around, axis=0)
    grass = ~np.any(around, axis=0)
    row, col, inside = _ground_pixels(camera, f, lft)
    seen = frame[row[inside], col[inside]]
    road, grass = road[inside], grass[inside]
    assert road.sum() > 20 and grass.sum() > 20
    assert (seen[road] >= ROAD_GREY).all() and (seen[road] <= SOLID_GREY).all()
    assert (seen[grass] == GROUND_GREY).all()
    env.close()


@pytest.mark.parametrize("env_id", NETWORK_IDS)
def test_a_car_placed_ahead_appears_as_a_box(env_id):
    env = gym.make(env_id, observation="camera", vehicles=1, image_shape=[96, 96])
    env.reset(seed=4)
    world, camera = _world(env), env.unwrapped.options.camera
    lane, u = int(world.lane[0, 0]), float(world.u[0, 0])
    exit_lane = int(world.graph.exits[np.flatnonzero(world.graph.reaches[lane])[0]])
    world.place(0, 1, lane, u + 15.0, 0.0, exit_lane)
    # Where the car's rear face is, 15 m ahead less half its length, half its height up.
    ahead = 15.0 - 0.5 * float(world.length[0, 1]) - camera.forward
    veh = np.array([[ahead + camera.forward + 0.05, 0.0, 0.75]])
    uv, _ = camera.project(camera.vehicle_to_camera(veh))
    i, j = int(round(uv[0, 1])), int(round(uv[0, 0]))
    raster = env.unwrapped.core.observation.raster
    with_car = raster.of_world(world)[0]
    kind = world.kind.copy()
    kind[0, 1] = -1
    without = raster.draw(world.x, world.y, world.heading, world.length, world.width, kind,
                          world.crashed)[0]
    assert 120 <= with_car[i, j] <= CAR_GREY
    assert without[i, j] != with_car[i, j]
    # The car covers a block of pixels around there and nothing far from it changes.
    changed = with_car != without
    rows, cols = np.nonzero(changed)
    assert changed.sum() >= 4
    assert abs(rows.mean() - i) < 8 and abs(cols.mean() - j) < 8
    # The env's observation after placing shows it too.
    obs = env.unwrapped.core.observation.draw(slice(0, 1))[0]
    assert np.array_equal(obs, with_car)
    env.close()


@pytest.mark.parametrize("observation", ["camera", "birdseye"])
def test_same_seed_gives_the_same_frames(observation):
    runs = []
    for _ in range(2):
        env = gym.make("lanesim/Roundabout-v0", observation=observation)
        env.action_space.seed(7)
        frames = [env.reset(seed=11)[0]]
        for _ in range(6):
            frames.append(env.step(env.action_space.sample())[0])
        runs.append(np.stack(frames))
        env.close()
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.parametrize("observation", ["camera", "birdseye"])
def test_vector_env_world_i_equals_single_env_seed_i(observation):
    n = 3
    vec = gym.make_vec("lanesim/Intersection-v0", num_envs=n, observation=observation,
                       camera_color=True, image_shape=[48, 64])
    obs, _ = vec.reset(seed=[10, 11, 12])
    actions = np.zeros(n, dtype=np.int64)
    steps = [vec.step(actions)[0] for _ in range(4)]
    vec.close()
    for i in range(n):
        env = gym.make("lanesim/Intersection-v0", observation=observation, camera_color=True,
                       image_shape=[48, 64])
        single = env.reset(seed=10 + i)[0]
        assert np.array_equal(single, obs[i])
        for k in range(4):
            assert np.array_equal(env.step(0)[0], steps[k][i])
        env.close()


def test_a_large_batch_drawn_on_threads_equals_each_world_drawn_alone():
    from lanesim.camera import netraster

    n = 8 * max(netraster.THREADS, 2)  # enough worlds for the threaded path
    vec = gym.make_vec("lanesim/Roundabout-v0", num_envs=n, observation="camera",
                       image_shape=[32, 48])
    vec.reset(seed=list(range(n)))
    for _ in range(3):
        vec.step(np.zeros(n, dtype=np.int64))
    raster, world = vec.core.observation.raster, vec.core.world
    batch = raster.of_world(world)
    for b in range(n):
        assert np.array_equal(batch[b], raster.image(world, b))
    raster.close()
    vec.close()


def test_birdseye_is_the_warp_of_the_camera_frame():
    env = gym.make("lanesim/Exit-v0", observation="birdseye")
    obs, _ = env.reset(seed=3)
    core = env.unwrapped.core
    image = core.observation.raster.of_world(core.world)
    assert np.array_equal(core.observation.warp.warp(image)[0], obs[-1])
    env.close()


def test_far_ground_averages_instead_of_aliasing():
    """A pixel near the horizon averages the texture over its footprint: its grey lies between
    the road's and the grass's, never a marking's full level picked by one sample."""
    env = gym.make("lanesim/Exit-v0", observation="camera", vehicles=0)
    env.reset(seed=0)
    world, camera = _world(env), env.unwrapped.options.camera
    frame = env.unwrapped.core.observation.raster.of_world(world)[0]
    horizon = int(math.ceil(camera.horizon_row(41.5)))
    far = frame[horizon + 1 : horizon + 3]
    assert far.max() < SOLID_GREY
    env.close()


def test_ground_texture_levels_halve_and_keep_the_palette():
    env = gym.make("lanesim/Intersection-v0")
    env.reset(seed=0)
    world = _world(env)
    tex = ground_texture(world.network, palette(False), world.yield_ends, texel=0.4)
    assert tex.texel == 0.4
    assert tex.rows[-1] == 1 or tex.cols[-1] == 1
    assert np.all(tex.rows[1:] == tex.rows[:-1] // 2)
    assert tex.data.shape == (int((tex.rows * tex.cols).sum()), 1)
    level0 = tex.data[: tex.rows[0] * tex.cols[0], 0]
    assert level0.min() == GROUND_GREY and level0.max() == SOLID_GREY
    assert (level0 == ROAD_GREY).sum() > 1000
    with pytest.raises(ValueError, match="texel must be a number of metres from 0.02 to 5"):
        ground_texture(world.network, palette(False), texel=0.0)
    env.close()


def test_renderer_rejects_bad_input_with_clear_errors():
    env = gym.make("lanesim/Intersection-v0")
    env.reset(seed=0)
    world = _world(env)
    cam = Camera.from_fov(math.radians(90), (32, 24))
    with pytest.raises(TypeError, match="camera must be a lanesim.camera.Camera"):
        NetworkCameraRaster("cam", world.network)
    with pytest.raises(TypeError, match="network must be a lanesim.sim.network.Network"):
        NetworkCameraRaster(cam, world)
    raster = NetworkCameraRaster(cam, world.network)
    with pytest.raises(ValueError, match="out must be a uint8 array"):
        raster.of_world(world, out=np.zeros((1, 24, 32), dtype=np.float32))
    with pytest.raises(ValueError, match="worlds must be a bool mask"):
        raster.of_world(world, worlds=np.array([0]))
    with pytest.raises(ValueError, match="heading must have x's shape"):
        raster.draw(world.x, world.y, world.heading[:, :1], world.length, world.width,
                    world.kind, world.crashed)
    with pytest.raises(ValueError, match="texture must be a GroundTexture of the same colour"):
        NetworkCameraRaster(cam, world.network, colour=True, texture=raster.texture)
    env.close()


@pytest.mark.parametrize("env_id", NETWORK_IDS)
@pytest.mark.parametrize("view", ["camera", "both"])
def test_viewer_camera_view_renders_on_a_network(env_id, view):
    env = gym.make(env_id, render_mode="rgb_array", view=view, screen_width=480,
                   screen_height=160, hud=False)
    env.reset(seed=1)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (160, 480, 3)
    from lanesim.render import viewer_of

    viewer = viewer_of(env)
    assert isinstance(viewer.dashcam, NetDashCam)
    pane = frame[:, viewer.camera_rect.left : viewer.camera_rect.right]
    # Sky on top (blue over red), grass or road at the bottom.
    top, bottom = pane[:10].reshape(-1, 3).mean(0), pane[-10:].reshape(-1, 3).mean(0)
    assert top[2] > top[0] + 40
    assert bottom[2] < top[2] - 40
    env.close()


def test_viewer_key_c_cycles_views_on_a_network():
    import pygame

    env = gym.make("lanesim/Roundabout-v0", render_mode="human")
    env.reset(seed=1)
    env.step(0)
    from lanesim.render import viewer_of

    viewer = viewer_of(env)
    seen = [viewer.view_mode]
    for _ in range(3):
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_c, unicode="c",
                                             mod=0))
        viewer.poll()
        env.step(0)  # draws the window in the new view
        seen.append(viewer.view_mode)
        assert (viewer.camera_rect is None) == (viewer.view_mode == "top")
        assert (viewer.dashcam is not None) == (viewer.view_mode != "top")
    assert seen == ["top", "camera", "both", "top"]
    env.close()


@pytest.mark.parametrize("view", ["top", "camera"])
def test_the_plan_on_a_network_stops_at_the_first_vehicle_it_meets(view, monkeypatch):
    """As on one road: drawn through the car ahead, the plan would read as a crash and hide it."""
    from lanesim.render import annotate, style
    from lanesim.render.overlay import plan_until_vehicle

    env = gym.make("lanesim/Intersection-v0", render_mode="rgb_array", vehicles=1,
                   screen_width=600, screen_height=300, hud=False, view=view)
    env.reset(seed=4)
    world = _world(env)
    lane, u = int(world.lane[0, 0]), float(world.u[0, 0])
    exit_lane = int(world.graph.exits[np.flatnonzero(world.graph.reaches[lane])[0]])
    x, y, _ = world.network.lane_to_world(np.full(8, lane), u + np.arange(8) * 5.0)
    plan = np.stack([x, y], axis=1)  # 35 m along the ego's lane
    world.place(0, 1, lane, u + 15.0, 0.0, exit_lane)
    rear = 15.0 - 0.5 * float(world.length[0, 1])

    path, points = plan_until_vehicle(world, 0, plan)
    assert rear - 0.6 < float(np.hypot(*(path[-1] - plan[0]))) <= rear
    assert len(points) == 3  # the plan's points at 0, 5 and 10 m
    kind = world.kind[0, 1]
    world.kind[0, 1] = -1  # an empty slot is no vehicle
    assert np.array_equal(plan_until_vehicle(world, 0, plan)[0], plan)
    world.kind[0, 1] = kind

    annotate(env, plan=plan)
    if view == "camera":
        # What the camera pane draws as the plan (its lines are hidden behind the car anyway).
        lines = []
        original = NetDashCam._ground_line

        def spy(self, surf, origin, line, colour, *args):
            if colour == style.PLAN:
                lines.append(np.array(line))
            return original(self, surf, origin, line, colour, *args)

        monkeypatch.setattr(NetDashCam, "_ground_line", spy)
        env.render()
        assert len(lines) == 1 and np.allclose(lines[0], path)
    else:
        def plan_pixels():
            frame = env.render()
            return (np.abs(frame.astype(int) - np.array(style.PLAN)).sum(axis=2) < 30).sum()

        with_car = plan_pixels()
        world.kind[0, 1] = -1
        # Drawn over the car, the plan would cover as many pixels as with no car there.
        assert 0 < with_car < 0.8 * plan_pixels()
    env.close()
