"""The camera model against independent calculations and OpenCV."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lanesim.camera import Camera

# A calibration in the style of a real dashcam: barrel distortion and a little tangential.
CALIBRATED = dict(
    intrinsics=(1150.0, 1145.0, 655.0, 362.0),
    distortion=(-0.24, 0.095, -0.0012, 0.0006),
    image_size=(1280, 720),
)


def random_points(n: int, seed: int = 0) -> np.ndarray:
    """Camera-frame points in front of the camera, inside a 90° cone."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(1.0, 80.0, n)
    return np.column_stack([rng.uniform(-0.5, 0.5, n) * z, rng.uniform(-0.3, 0.3, n) * z, z])


def test_project_matches_opencv_project_points():
    cam = Camera(**CALIBRATED)
    pts = random_points(500)
    ours, in_front = cam.project(pts)
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), cam.matrix,
                               np.array(cam.distortion))
    assert in_front.all()
    np.testing.assert_allclose(ours, ref.reshape(-1, 2), rtol=0, atol=1e-6)


def test_points_behind_the_camera_are_reported_never_projected():
    cam = Camera(**CALIBRATED)
    uv, in_front = cam.project(np.array([[1.0, 0.5, -5.0], [0.0, 0.0, 0.0], [0.2, 0.1, 3.0]]))
    assert in_front.tolist() == [False, False, True]
    assert np.isnan(uv[:2]).all() and np.isfinite(uv[2]).all()


def test_distortion_round_trips_through_undistort():
    cam = Camera(**CALIBRATED)
    rng = np.random.default_rng(1)
    xy = rng.uniform([-0.55, -0.31], [0.55, 0.31], (1000, 2))  # the image's extent
    back = cam.undistort(cam.distort(xy))
    np.testing.assert_allclose(back, xy, atol=1e-9)
    # And the distortion is not the identity, so the round trip tests something.
    assert np.abs(cam.distort(xy) - xy).max() > 0.01


def test_undistort_agrees_with_opencv_undistort_points():
    cam = Camera(**CALIBRATED)
    uv = np.random.default_rng(2).uniform([0, 0], [1279, 719], (300, 2))
    ref = cv2.undistortPoints(
        uv.reshape(-1, 1, 2), cam.matrix, np.array(cam.distortion), None, None, None,
        (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12),
    ).reshape(-1, 2)
    np.testing.assert_allclose(cam.undistort(cam.pixels_to_normalized(uv)), ref, atol=1e-7)


@pytest.mark.parametrize("pitch_deg", [0.0, 3.0, 10.0])
@pytest.mark.parametrize("distance", [5.0, 20.0, 100.0])
def test_a_ground_point_straight_ahead_lands_on_the_row_pitch_and_fy_predict(pitch_deg, distance):
    cam = Camera((800.0, 780.0, 400.0, 300.0), image_size=(800, 600), height=1.4,
                 pitch=math.radians(pitch_deg))
    uv, ok = cam.ground_to_pixels(np.array([[distance, 0.0]]))
    # The ray to the point dips atan(height / distance) below the horizon, and the optical
    # axis is already pitch below it.
    angle = math.atan2(1.4, distance) - math.radians(pitch_deg)
    assert ok[0]
    assert uv[0, 0] == pytest.approx(400.0, abs=1e-9)
    assert uv[0, 1] == pytest.approx(300.0 + 780.0 * math.tan(angle), abs=1e-9)


def test_parallel_lane_lines_meet_at_the_vanishing_point_on_the_horizon():
    cam = Camera((800.0, 800.0, 400.0, 300.0), image_size=(800, 600), height=1.3,
                 pitch=math.radians(5), yaw=math.radians(4))
    far = np.array([[1e7, y] for y in (-6.0, -2.0, 2.0, 6.0)])
    uv, _ = cam.ground_to_pixels(far)
    # All four lines converge on one point...
    assert np.ptp(uv[:, 0]) < 1e-3 and np.ptp(uv[:, 1]) < 1e-3
    # ...the image of the road direction (1, 0, 0): the camera's yaw to the left moves it right
    # of centre, at x / z = sin(yaw) / (cos(yaw) cos(pitch)).
    u_expected = 400.0 + 800.0 * math.tan(math.radians(4)) / math.cos(math.radians(5))
    assert uv[0, 0] == pytest.approx(u_expected, abs=1e-2)
    assert uv[0, 1] == pytest.approx(cam.horizon_row(uv[0, 0]), abs=1e-3)
    # Lines fitted through near points of each lane line pass through it too.
    for y in (-6.0, 2.0):
        a, _ = cam.ground_to_pixels(np.array([[8.0, y], [30.0, y]]))
        t = (uv[0, 1] - a[0, 1]) / (a[1, 1] - a[0, 1])
        assert a[0, 0] + t * (a[1, 0] - a[0, 0]) == pytest.approx(uv[0, 0], abs=1e-2)


def test_ground_homography_maps_ground_to_undistorted_pixels_and_back():
    cam = Camera((700.0, 700.0, 320.0, 240.0), image_size=(640, 480), height=1.2,
                 pitch=math.radians(6), yaw=math.radians(-3))
    H = cam.ground_homography()
    ground = np.random.default_rng(3).uniform([3.0, -10.0], [60.0, 10.0], (200, 2))
    hom = np.column_stack([ground, np.ones(len(ground))]) @ H.T
    uv = hom[:, :2] / hom[:, 2:]
    ref, ok = cam.ground_to_pixels(ground)  # no distortion: projection equals the homography
    assert ok.all()
    np.testing.assert_allclose(uv, ref, atol=1e-9)
    back = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(H).T
    np.testing.assert_allclose(back[:, :2] / back[:, 2:], ground, atol=1e-9)


def test_from_fov_sees_the_field_of_view_edge_on_the_image_edge():
    cam = Camera.from_fov(math.radians(90), image_size=(101, 61))
    fx, fy, cx, cy = cam.intrinsics
    assert (cx, cy) == (50.0, 30.0) and fx == fy
    # A point 45° to the right projects half an image width right of the centre.
    uv, _ = cam.project(np.array([[10.0, 0.0, 10.0]]))
    assert uv[0, 0] == pytest.approx(cx + 50.5, abs=1e-9)


def test_pixel_rays_point_where_the_pixels_project_from():
    cam = Camera(**{**CALIBRATED, "image_size": (64, 36),
                    "intrinsics": (57.5, 57.25, 32.0, 18.0)}, pitch=0.1, yaw=-0.2)
    rays = cam.pixel_rays()
    assert rays.shape == (36, 64, 3)
    pts = cam.position + 7.0 * rays.reshape(-1, 3)
    uv, ok = cam.project(cam.vehicle_to_camera(pts))
    v, u = np.mgrid[0:36, 0:64]
    assert ok.all()
    np.testing.assert_allclose(uv, np.column_stack([u.ravel(), v.ravel()]), atol=1e-6)


def test_rays_through_any_pixel_position_point_where_those_positions_project_from():
    cam = Camera(**CALIBRATED, pitch=0.05)
    uv = np.random.default_rng(3).uniform([-0.5, -0.5], [1279.5, 719.5], (200, 2))
    rays = cam.rays(uv.reshape(10, 20, 2))
    assert rays.shape == (10, 20, 3)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=-1), 1.0, atol=1e-12)
    back, ok = cam.project(cam.vehicle_to_camera(cam.position + 3.0 * rays.reshape(-1, 3)))
    assert ok.all()
    np.testing.assert_allclose(back, uv, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(intrinsics=(0.0, 1.0, 0.0, 0.0)), "fx and fy must be > 0"),
        (dict(intrinsics=(1.0, 1.0, 0.0)), "intrinsics must be 4 finite numbers"),
        (dict(intrinsics=(1.0, 1.0, 0.0, float("nan"))), "intrinsics must be 4 finite"),
        (dict(intrinsics=(1.0, 1.0, 0.0, 0.0), distortion=(0.1,)), "distortion must be 4"),
        (dict(intrinsics=(1.0, 1.0, 0.0, 0.0), image_size=(0, 10)), "image_size must be"),
        (dict(intrinsics=(1.0, 1.0, 0.0, 0.0), height=0.0), "height must be a number"),
        (dict(intrinsics=(1.0, 1.0, 0.0, 0.0), pitch=2.0), "pitch must be a number"),
        (dict(intrinsics=(1.0, 1.0, 0.0, 0.0), yaw=float("nan")), "yaw must be a number"),
    ],
)
def test_bad_camera_arguments_name_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Camera(**kwargs)


def test_from_fov_refuses_a_field_of_view_outside_1_to_170_degrees():
    with pytest.raises(ValueError, match="fov must be from 1 to 170 degrees"):
        Camera.from_fov(math.radians(179))


def test_resized_keeps_the_mounting_lens_and_horizontal_field_of_view():
    cam = Camera((60.0, 66.0, 40.0, 45.0), (-0.1, 0.01, 0.0, 0.0), (84, 84), height=1.1,
                 forward=0.5, pitch=0.1, yaw=0.05)
    big = cam.resized((1030, 400))
    assert big.image_size == (1030, 400)
    assert (big.distortion, big.height, big.forward, big.pitch, big.yaw) == (
        cam.distortion, cam.height, cam.forward, cam.pitch, cam.yaw)
    fx, fy, cx, cy = big.intrinsics
    assert math.atan(0.5 * 1030 / fx) == pytest.approx(math.atan(0.5 * 84 / 60.0))
    assert fy / fx == pytest.approx(66.0 / 60.0)
    assert (cx, cy) == (514.5, 199.5)


def test_undistort_gives_nan_where_the_iteration_cannot_invert_the_lens():
    cam = Camera.from_fov(math.radians(90), (84, 84), distortion=(-0.2, 0.0, 0.0, 0.0))
    corner = cam.pixels_to_normalized(np.array([[0.0, 0.0], [42.0, 42.0]]))
    out = cam.undistort(corner)
    assert np.isnan(out[0]).all()  # far off the axis: no direction is returned
    np.testing.assert_allclose(cam.distort(out[1:]), corner[1:], atol=1e-9)  # near it: exact
