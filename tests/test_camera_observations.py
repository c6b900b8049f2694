"""The driver's-seat camera's options and observations: "camera" frames and their bird's-eye view
by inverse perspective mapping (issue #17)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lanesim  # noqa: F401
from lanesim.camera import Camera
from lanesim.camera.birdseye import BIRDSEYE_FILL, BirdseyeWarp
from lanesim.envs.options import OptionError, make_options

ENV = "lanesim/Highway-v0"
SMALL = dict(lanes=3, vehicles=4, duration=2.0)


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
