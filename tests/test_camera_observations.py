"""The driver's-seat camera's options and observations: "camera" frames and their bird's-eye view
by inverse perspective mapping (issue #17)."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode
from test_vector_env import (
    assert_vector_info_equal,
    make_single,
    make_vec,
    random_actions,
    run_against_single_envs,
)

import lanesim  # noqa: F401
from lanesim.camera import Camera
from lanesim.camera.birdseye import BIRDSEYE_FILL, BirdseyeWarp
from lanesim.envs.options import OptionError, make_options
from lanesim.sim import memory

ENV = "lanesim/Highway-v0"
SMALL = dict(lanes=2, vehicles=4, duration=2.0)  # as test_vector_env's helpers use


# ---------------------------------------------------------------- options
def test_default_camera_is_the_conventional_windscreen_mount():
    cam = make_options(image_shape=[60, 100]).camera
    want = Camera.from_fov(math.radians(90), (100, 60), height=1.3, forward=1.0,
                           pitch=math.radians(5), yaw=0.0)
    assert cam == want


def test_camera_options_set_the_camera_in_degrees_and_pixels():
    o = make_options(image_shape=[48, 64], camera_intrinsics=[50.0, 40.0, 30.0, 20.0],
                     camera_distortion=[-0.05, 0.01, 0.001, -0.002], camera_height=2.0,
                     camera_forward=-1.5, camera_pitch=-10.0, camera_yaw=30.0)
    cam = o.camera
    assert cam.intrinsics == (50.0, 40.0, 30.0, 20.0) and cam.image_size == (64, 48)
    assert cam.distortion == (-0.05, 0.01, 0.001, -0.002)
    assert (cam.height, cam.forward) == (2.0, -1.5)
    assert cam.pitch == pytest.approx(math.radians(-10))
    assert cam.yaw == pytest.approx(math.radians(30))
    fov = make_options(camera_fov=60.0).camera
    assert 2 * math.atan(0.5 * 84 / fov.intrinsics[0]) == pytest.approx(math.radians(60))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"camera_fov": 0.5}, r"'camera_fov' must be between 1 and 170 deg, got 0.5"),
        ({"camera_fov": 175}, r"'camera_fov' must be between 1 and 170 deg"),
        ({"camera_fov": "wide"}, r"'camera_fov' must be a finite number, got 'wide'"),
        ({"camera_intrinsics": [40, 40, 41]}, r"'camera_intrinsics' must be a list of 4 numbers"),
        ({"camera_intrinsics": [0, 40, 41, 41]}, r"'camera_intrinsics' must be \[fx, fy, cx, cy\]"),
        ({"camera_intrinsics": [40, 40, 41, 90]},
         r"principal point at \(cx, cy\) = \(41, 90\) px, outside .* cy within 0 to 83"),
        ({"camera_distortion": [0.1, 0.0, 0.0]}, r"'camera_distortion' must be a list of 4"),
        ({"camera_distortion": [2.0, 0, 0, 0]}, r"'camera_distortion' must be \[k1, k2, p1, p2\]"),
        ({"camera_distortion": [0, 0, 0.5, 0]}, r"within the ranges \[-1, 1\], \[-1, 1\], \[-0.1"),
        ({"camera_distortion": [-0.3, 0, 0, 0]}, r"folds the image: at 47° from the optical axis"),
        ({"camera_distortion": [0.5, 0.5, 0, 0]}, r"cannot be undone at the image's border"),
        ({"camera_height": 0.0}, r"'camera_height' must be between 0.2 and 5 m"),
        ({"camera_forward": 3.0}, r"'camera_forward' must be between -2.4 and 2.4 m"),
        ({"camera_pitch": 90}, r"'camera_pitch' must be between -80 and 80 deg"),
        ({"camera_yaw": -120}, r"'camera_yaw' must be between -90 and 90 deg"),
        ({"camera_color": 1}, r"'camera_color' must be true or false, got 1"),
        ({"birdseye_extent": [10, 5, 4]}, r"'birdseye_extent' must have forward_min < forward_max"),
        ({"birdseye_extent": [0, 10]}, r"'birdseye_extent' must be a list of 3 numbers"),
        ({"birdseye_extent": [0, 10, 0]}, r"within the ranges \[-100, 500\], \[-100, 500\], \[0.5"),
        ({"birdseye_resolution": 0}, r"'birdseye_resolution' must be between 0.02 and 10 m"),
        ({"birdseye_resolution": 0.3},
         r"forward_max - forward_min \(40 m\) must be a whole number of birdseye_resolution"),
        ({"birdseye_extent": [0, 500, 100], "birdseye_resolution": 0.1},
         r"make 5,000 cells across forward_max - forward_min .* 16 to 1,024 cells each way"),
        ({"birdseye_extent": [0, 40, 2], "birdseye_resolution": 0.5},
         r"make 8 cells across 2 × half_width"),
    ],
)
def test_bad_camera_options_are_refused_naming_what_is_accepted(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_options(**kwargs)


def test_a_real_dashcam_calibration_is_accepted():
    # A 1280 x 720 calibration in the style of the talk's, cropped to 1024 columns.
    o = make_options(image_shape=[720, 1024], camera_intrinsics=[1150.0, 1145.0, 512.0, 362.0],
                     camera_distortion=[-0.24, 0.095, -0.0012, 0.0006])
    assert o.camera.distortion == (-0.24, 0.095, -0.0012, 0.0006)


def test_camera_fov_and_intrinsics_together_are_refused():
    with pytest.raises(OptionError, match=r"'camera_fov' and 'camera_intrinsics' both set"):
        make_options(camera_fov=90.0, camera_intrinsics=[42.0, 42.0, 41.5, 41.5])


@pytest.mark.parametrize("fov", [30.0, 60.0, 90.0])
@pytest.mark.parametrize("distortion", [[-0.05, 0.0, 0.0, 0.0], [0.02, 0.01, 0.002, -0.001]])
def test_accepted_distortion_is_undone_at_every_pixel(fov, distortion):
    # Why the lens check exists: every pixel of an accepted camera has one ray.
    cam = make_options(camera_fov=fov, camera_distortion=distortion).camera
    w, h = cam.image_size
    v, u = np.mgrid[0:h, 0:w]
    xd = cam.pixels_to_normalized(np.stack([u, v], axis=-1).reshape(-1, 2).astype(float))
    np.testing.assert_allclose(cam.distort(cam.undistort(xd)), xd, atol=1e-9)


# ---------------------------------------------------------------- the bird's-eye warp
LANE_WIDTH = 3.0
# Lane lines (m to the left of the camera), the camera 0.6 m left of its lane's centre, so a
# mirrored view cannot pass.
LINES = tuple((k + 0.5) * LANE_WIDTH - 0.6 for k in (-2, -1, 0, 1))


def painted_road(cam: Camera, line_width: float = 0.5) -> np.ndarray:
    """A grey camera image of a straight, flat road: sky 0, ground 60, and lane lines 255 at
    ``LINES`` (m left of the camera); a pixel is painted by where the ray through its centre
    (``cam.pixel_rays``) meets the ground."""
    rays = cam.pixel_rays()
    down = rays[..., 2] < 0
    left = cam.height * rays[..., 1] / np.where(down, -rays[..., 2], 1.0)
    on_line = (np.abs(left[..., None] - np.array(LINES)) <= 0.5 * line_width).any(axis=-1)
    return np.select([down & on_line, down], [255, 60], 0).astype(np.uint8)


@pytest.mark.parametrize("distortion", [(0.0, 0.0, 0.0, 0.0), (-0.08, 0.01, 0.001, 0.0)])
def test_birdseye_of_a_straight_road_gives_parallel_lines_at_lane_spacing(distortion):
    cam = Camera.from_fov(math.radians(90), (320, 240), height=1.3, forward=1.0,
                          pitch=math.radians(5), distortion=distortion)
    resolution = 0.25
    warp = BirdseyeWarp(cam, (6.0, 26.0, 8.0), resolution)
    top = warp.warp(painted_road(cam)[None])[0]
    assert top.shape == warp.shape == (80, 64)
    # Cell columns of the lines: column c's centre is 8 - (c + 0.5) * 0.25 m left. A line is
    # found at the centre of its brightness above the road's; the camera image samples it
    # once per pixel, which moves that centre by up to about half a pixel (0.45 cells here).
    want = np.array([(8.0 - line) / resolution - 0.5 for line in LINES])
    excess = np.maximum(top.astype(float) - 60.0, 0.0)
    for r in range(top.shape[0]):
        centres = []
        for c0 in want:
            near = np.arange(math.floor(c0) - 3, math.ceil(c0) + 4)
            assert excess[r, near].sum() > 0, f"row {r}: no line near column {c0}"
            centres.append(np.average(near, weights=excess[r, near]))
        np.testing.assert_allclose(centres, want, atol=0.5, err_msg=f"row {r}")
        np.testing.assert_allclose(-np.diff(centres), LANE_WIDTH / resolution, atol=0.75)
    # Between the lines lies road, not sky: the whole grid is seen.
    assert (top[:, 44] == 60).all()


def test_birdseye_cells_sample_the_pixel_that_sees_their_centre():
    cam = Camera((70.0, 75.0, 40.0, 28.0), distortion=(-0.1, 0.02, 0.002, -0.001),
                 image_size=(84, 60), height=1.5, forward=0.5, pitch=math.radians(8),
                 yaw=math.radians(10))
    warp = BirdseyeWarp(cam, (-5.0, 45.0, 12.0), 0.5)
    seen = ~np.isnan(warp.pixels[..., 0])
    uv, in_front = cam.ground_to_pixels(warp.ground().reshape(-1, 2))
    uv = uv.reshape(*warp.shape, 2)
    np.testing.assert_allclose(warp.pixels[seen], uv[seen], atol=1e-9)
    # Unseen: the ground behind the camera and whatever projects off the image.
    inside = in_front.reshape(warp.shape) & (uv[..., 0] >= 0) & (uv[..., 0] <= 83) & (
        uv[..., 1] >= 0) & (uv[..., 1] <= 59)
    np.testing.assert_array_equal(seen, inside)
    assert seen.any() and (~seen).any()


def test_birdseye_ignores_ground_that_barrel_distortion_folds_back_onto_the_image():
    # r (1 - 0.1 r²) peaks at r = 1 / sqrt(0.3): directions beyond it (72° off the axis and
    # more) come back towards the centre and some land on the image, seen from the wrong side.
    cam = Camera.from_fov(math.radians(60), (64, 48), distortion=(-0.1, 0.0, 0.0, 0.0),
                          pitch=math.radians(20))
    warp = BirdseyeWarp(cam, (0.5, 40.5, 40.0), 0.5)
    ground = warp.ground().reshape(-1, 2)
    uv, in_front = cam.ground_to_pixels(ground)
    on_image = in_front & (uv[:, 0] >= 0) & (uv[:, 0] <= 63) & (uv[:, 1] >= 0) & (uv[:, 1] <= 47)
    camera_frame = cam.vehicle_to_camera(
        np.column_stack([ground[:, 0] + cam.forward, ground[:, 1], np.zeros(len(ground))]))
    radius = np.hypot(camera_frame[:, 0], camera_frame[:, 1]) / np.abs(camera_frame[:, 2])
    folded = on_image & (radius > 1 / math.sqrt(0.3))
    seen = ~np.isnan(warp.pixels[..., 0]).ravel()
    assert folded.any() and (on_image & ~folded).any()
    np.testing.assert_array_equal(seen, on_image & ~folded)


def test_birdseye_fills_what_the_camera_does_not_see_and_interpolates_the_rest():
    cam = Camera.from_fov(math.radians(60), (64, 48), pitch=math.radians(3))
    warp = BirdseyeWarp(cam, (-4.0, 60.0, 30.0), 1.0)
    image = np.full((48, 64), 200, dtype=np.uint8)
    top = warp.warp(np.stack([image, image // 2]))
    seen = ~np.isnan(warp.pixels[..., 0])
    assert (top[0][~seen] == BIRDSEYE_FILL).all() and (top[1][~seen] == BIRDSEYE_FILL).all()
    assert (top[0][seen] == 200).all() and (top[1][seen] == 100).all()
    # Behind the camera (forward < 0: the last rows) nothing is seen; far ahead on the
    # axis, everything is.
    assert not seen[-4:].any() and seen[: -10, 30].all()
    # A horizontal gradient comes out interpolated, not snapped to whole pixels.
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    colour = np.repeat(ramp[..., None], 3, axis=-1)
    grey_top, colour_top = warp.warp(ramp[None])[0], warp.warp(colour[None])[0]
    np.testing.assert_array_equal(colour_top, np.repeat(grey_top[None], 3, axis=0))
    expected = np.floor(4 * warp.pixels[..., 0] + 0.5)
    np.testing.assert_allclose(grey_top[seen], expected[seen], atol=1.0)


# ---------------------------------------------------------------- the observations, end to end
IMAGE_KINDS = [
    pytest.param("camera", False, (4, 84, 84), id="camera-grey"),
    pytest.param("camera", True, (12, 84, 84), id="camera-colour"),
    pytest.param("birdseye", False, (4, 80, 40), id="birdseye-grey"),
    pytest.param("birdseye", True, (12, 80, 40), id="birdseye-colour"),
]


@pytest.mark.parametrize(("observation", "colour", "shape"), IMAGE_KINDS)
def test_observation_space_shape_and_dtype_single_and_batched(observation, colour, shape):
    single = make_single(observation=observation, camera_color=colour)
    assert single.observation_space == gym.spaces.Box(0, 255, shape, np.uint8)
    vec = make_vec(3, observation=observation, camera_color=colour)
    assert vec.single_observation_space == single.observation_space
    assert vec.observation_space.shape == (3, *shape)
    obs, _ = single.reset(seed=0)
    batch, _ = vec.reset(seed=0)
    assert obs in single.observation_space and batch in vec.observation_space
    vec.action_space.seed(0)
    for _ in range(3):
        obs, *_ = single.step(single.action_space.sample())
        batch, *_ = vec.step(vec.action_space.sample())
        assert obs in single.observation_space and batch in vec.observation_space
    # Frames show the world: more than one level, and the camera's sky and road.
    assert len(np.unique(batch)) > 3


@pytest.mark.parametrize("observation", ["camera", "birdseye"])
def test_gymnasium_and_sb3_env_checkers_pass(observation):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check

    check_env(gym.make(ENV, observation=observation, **SMALL).unwrapped, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any SB3 warning is a defect: it is a channel-first image
        sb3_check(gym.make(ENV, observation=observation, camera_color=True, **SMALL), warn=True)


@pytest.mark.parametrize(("observation", "colour", "shape"), IMAGE_KINDS)
def test_stacks_shift_one_frame_per_step_and_refill_on_reset(observation, colour, shape):
    channels = 3 if colour else 1
    vec = make_vec(2, vehicles=3, observation=observation, camera_color=colour, action="meta",
                   duration=1.0, policy_hz=5)
    obs, _ = vec.reset(seed=0)
    newest = obs[:, -channels:]
    for k in range(4):  # a reset fills the stack with copies of the first frame
        np.testing.assert_array_equal(obs[:, k * channels:(k + 1) * channels], newest)
    prev = obs
    for _ in range(5):
        obs, *_ = vec.step(np.array([3, 1]))  # FASTER, IDLE: the view changes
        np.testing.assert_array_equal(obs[:, :-channels], prev[:, channels:])
        assert not np.array_equal(obs[:, -channels:], prev[:, -channels:])
        prev = obs
    obs, *_ = vec.step(np.ones(2, dtype=np.int64))  # next-step autoreset
    for k in range(4):
        np.testing.assert_array_equal(obs[:, k * channels:(k + 1) * channels], obs[:, -channels:])


def test_camera_frames_are_the_renderers_images_rgb_within_each_frame():
    vec = make_vec(3, observation="camera", camera_color=True, image_shape=[48, 64])
    obs, _ = vec.reset(seed=4)
    vec.action_space.seed(4)
    obs, *_ = vec.step(vec.action_space.sample())
    raster = vec.unwrapped.core.observation.raster
    for b in range(3):
        np.testing.assert_array_equal(obs[b, 9:12].transpose(1, 2, 0), raster.image(b))
    grey = make_vec(3, observation="camera", image_shape=[48, 64])
    grey.reset(seed=4)
    grey.action_space.seed(4)
    obs, *_ = grey.step(grey.action_space.sample())
    for b in range(3):
        np.testing.assert_array_equal(obs[b, -1], grey.unwrapped.core.observation.raster.image(b))


@pytest.mark.parametrize("colour", [False, True])
def test_birdseye_frames_are_the_camera_images_warped(colour):
    options = dict(observation="birdseye", camera_color=colour, camera_distortion=[-0.05, 0.01,
                   0.0, 0.001], birdseye_extent=[0.0, 30.0, 9.0], birdseye_resolution=0.25)
    vec = make_vec(2, **options)
    obs, _ = vec.reset(seed=6)
    core = vec.unwrapped.core
    warp = BirdseyeWarp(core.options.camera, (0.0, 30.0, 9.0), 0.25)
    images = np.stack([core.observation.raster.image(b) for b in range(2)])
    frames = warp.warp(images)
    np.testing.assert_array_equal(obs[:, -3:] if colour else obs[:, -1], frames)
    assert (frames[..., -1, :] == BIRDSEYE_FILL).all()  # the ground below the camera: unseen


def test_birdseye_of_the_simulated_empty_straight_road_has_lines_at_lane_spacing():
    lane_width, resolution = 3.5, 0.25
    env = make_single(observation="birdseye", vehicles=0, lanes=4, lane_width=lane_width,
                      ego_lanes=[0], image_shape=[240, 320], frame_stack=1,
                      birdseye_extent=[4.0, 20.0, 10.0], birdseye_resolution=resolution)
    obs, _ = env.reset(seed=0)
    top = obs[0].astype(float)
    # The ego is centred in the left lane: the road's solid edge half a lane to its left,
    # dashed lines 0.5, 1.5 and 2.5 lanes to its right; column c's centre is 10 - (c + 0.5) *
    # 0.25 m to the left.
    lines = np.array([0.5, -0.5, -1.5, -2.5]) * lane_width
    want = (10.0 - lines) / resolution - 0.5
    road = np.median(top[:, round(want[1]) + 3:round(want[2]) - 2])
    # Dashes come and go along the road, so a line's column shows in its brightest rows.
    excess = np.maximum(top - road, 0.0)
    profile = excess.max(axis=0)
    near = [np.arange(math.floor(c0) - 3, math.ceil(c0) + 4) for c0 in want]
    assert all(profile[n].max() > 15 for n in near), f"a line is missing: {profile}"
    found = np.array([np.average(n, weights=profile[n]) for n in near])
    elsewhere = np.ones(top.shape[1], dtype=bool)
    elsewhere[np.concatenate(near)] = False
    assert profile[elsewhere].max() < 15, "a line where none should be"
    # The dashed lines, with road on both sides, lie where they should, a lane apart. The edge
    # line blends with bright road on one side and dark ground on the other, which pulls its
    # centre up to a pixel (a cell here) towards the road.
    np.testing.assert_allclose(found[1:], want[1:], atol=0.5)
    np.testing.assert_allclose(np.diff(found[1:]), lane_width / resolution, atol=0.5)
    np.testing.assert_allclose(found[0], want[0], atol=1.0)
    assert (top[:, : round(want[0]) - 2] < road).all()  # off the road, left of the ego's lane
    # Straight along the grid: every row that shows a dash shows it in its line's column.
    for n, c0 in zip(near[1:3], want[1:3], strict=True):
        lit = excess[:, n].max(axis=1) > 15
        assert lit.sum() > 10
        centres = (excess[lit][:, n] * n).sum(axis=1) / excess[lit][:, n].sum(axis=1)
        np.testing.assert_allclose(centres, c0, atol=0.75)


@pytest.mark.parametrize("observation", ["camera", "birdseye"])
def test_same_seed_same_frames_and_batched_worlds_equal_single_envs(observation):
    options = dict(observation=observation, camera_color=True, frame_stack=2)
    a = make_vec(3, **options)
    b = make_vec(3, **options)
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    np.testing.assert_array_equal(oa, ob)
    rng = np.random.default_rng(0)
    for _ in range(4):
        actions = random_actions(a.single_action_space, 3, rng)
        np.testing.assert_array_equal(a.step(actions)[0], b.step(actions)[0])
    # World i of a batch is the single env seeded s + i, autoresets included.
    assert run_against_single_envs(dict(vehicles=0, **options), n=2, steps=14) >= 2


@pytest.mark.parametrize("observation", ["camera", "birdseye"])
def test_same_step_autoreset_matches_sync_vector_env(observation):
    options = {**SMALL, "observation": observation, "action": "continuous", "vehicles": 0}
    ours = gym.make_vec(ENV, num_envs=2, autoreset_mode=AutoresetMode.SAME_STEP, **options)
    sync = gym.make_vec(ENV, num_envs=2, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **options)
    (o1, i1), (o2, i2) = ours.reset(seed=2), sync.reset(seed=2)
    np.testing.assert_array_equal(o1, o2)
    assert_vector_info_equal(i1, i2)
    rng = np.random.default_rng(2)
    ended = 0
    for _ in range(14):
        actions = random_actions(ours.single_action_space, 2, rng)
        a, b = ours.step(actions), sync.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert_vector_info_equal(a[4], b[4])
        ended += int((a[2] | a[3]).sum())
    assert ended >= 2


def test_disabled_autoreset_refills_only_the_masked_worlds_stacks():
    vec = make_vec(2, observation="camera", vehicles=0, action="meta", duration=1.0,
                   autoreset_mode=AutoresetMode.DISABLED)
    vec.reset(seed=0)
    for _ in range(5):
        obs, *_ = vec.step(np.array([3, 1]))
    with pytest.raises(ResetNeeded):
        vec.step(np.ones(2, dtype=np.int64))
    fresh, _ = vec.reset(options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(fresh[1], obs[1])  # untouched, stack and all
    assert all(np.array_equal(fresh[0, k], fresh[0, -1]) for k in range(4))


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [("camera_color", True, "it changes the observation or action space"),
     ("birdseye_resolution", 0.25, "it changes the observation or action space"),
     ("birdseye_extent", [2.0, 22.0, 10.0], "it changes the observation or action space"),
     ("camera_height", 2.0, "it is fixed when the environment is made"),
     ("camera_fov", 60.0, "it is fixed when the environment is made")],
)
def test_camera_options_cannot_change_at_reset(key, value, why):
    env = make_single(observation="birdseye")
    with pytest.raises(OptionError, match=f"option {key!r} cannot change at reset: {why}"):
        env.reset(options={key: value})


def test_reset_options_keep_the_camera_and_its_space():
    env = make_single(observation="camera", camera_color=True, camera_pitch=10.0)
    space = env.observation_space
    obs, _ = env.reset(seed=0, options={"vehicles": 0})
    assert env.observation_space is space and obs in space
    assert env.unwrapped.core.observation.raster.camera.pitch == pytest.approx(math.radians(10))


def test_large_batches_of_large_camera_images_are_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 30)
    message = r"2,000 worlds .* with camera observations would take about 5\d\.\d GiB"
    with pytest.raises(OptionError, match=message):
        gym.make_vec(ENV, num_envs=2000, observation="camera", camera_color=True,
                     image_shape=[512, 512], vehicles=0)
    small = gym.make_vec(ENV, num_envs=8, observation="camera", vehicles=0)
    assert small.reset(seed=0)[0].shape == (8, 4, 84, 84)


def test_the_renderers_shared_tables_count_in_the_memory_check(monkeypatch):
    # One world's frames at 1024 x 1024 take 40 MiB; building the camera's per-pixel tables
    # takes about 300 MiB more.
    monkeypatch.setattr(memory, "available_memory", lambda: 200 << 20)
    with pytest.raises(OptionError, match=r"1 worlds .* camera observations would take about 3"):
        gym.make(ENV, observation="camera", image_shape=[1024, 1024], vehicles=0)


def test_camera_options_are_accepted_and_unused_with_other_observations():
    # As image_shape and frame_stack are for kinematics: checked, then left aside.
    env = make_single(observation="kinematics", camera_fov=60.0, camera_color=True)
    assert env.observation_space.shape == (9, 8)
    with pytest.raises(OptionError, match="camera_fov"):
        make_single(observation="kinematics", camera_fov=200.0)


def test_sb3_adapter_warns_when_colour_channels_look_like_an_image_side():
    from lanesim.envs.sb3 import make_sb3_vec_env

    with pytest.warns(UserWarning, match=r"image observation \(18, 16, 16\): its channels"):
        make_sb3_vec_env(ENV, 2, seed=0, observation="camera", camera_color=True,
                         frame_stack=6, image_shape=[16, 16], **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_sb3_vec_env(ENV, 2, seed=0, observation="camera", camera_color=True, **SMALL)


@pytest.mark.parametrize("observation", ["camera", "birdseye"])
def test_thread_split_gives_the_same_frames(observation):
    """Large batches draw, shift and warp over threads (the calling thread takes the first
    range); forced here on a small batch, so every machine runs the split path."""
    from concurrent.futures import ThreadPoolExecutor

    out = []
    for split in (False, True):
        vec = make_vec(5, observation=observation, camera_color=True, action="meta")
        world = vec.unwrapped.world
        if world._pool is not None:
            world._pool.shutdown()
        world._pool = ThreadPoolExecutor(2) if split else None
        world._splits = [(0, 2), (2, 3), (3, 5)]
        frames = [vec.reset(seed=5)[0]]
        vec.action_space.seed(1)
        for _ in range(4):
            frames.append(vec.step(vec.action_space.sample())[0])
        out.append(frames)
        vec.close()
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "extent, resolution, message",
    [
        ((42.0, 2.0, 10.0), 0.5, "forward_min < forward_max"),
        ((2.0, 42.0, 10.0), 0.0, "resolution must be a positive number"),
        ((2.0, 42.0, 10.0), 0.3, "not a whole number of 0.3 m cells"),
    ],
)
def test_birdseye_warp_refuses_a_grid_it_cannot_lay(extent, resolution, message):
    cam = Camera.from_fov(math.radians(90), (84, 84), height=1.3, pitch=math.radians(5))
    with pytest.raises(ValueError, match=message):
        BirdseyeWarp(cam, extent, resolution)
