import numpy as np
import pytest

from lanesim.sim.road import LaneSpan, Road, Segment


def winding_road():
    return Road(
        [Segment(100, 0), Segment(150, 1 / 80), Segment(200, -1 / 60), Segment(100, 0)],
        lanes=3,
        lane_width=4.0,
    )


def test_lane_coordinates_round_trip_on_curves():
    road = winding_road()
    rng = np.random.default_rng(0)
    s = rng.uniform(0, road.length, 2000)
    d = rng.uniform(-2, road.width + 2, 2000)
    x, y, _ = road.to_world(s, d)
    s2, d2 = road.to_road(x, y)
    np.testing.assert_allclose(s2, s, atol=1e-9)
    np.testing.assert_allclose(d2, d, atol=1e-9)


def test_arc_geometry_matches_circle():
    # A quarter circle to the left of radius 50 m ends 50 m east and 50 m north, heading north.
    road = Road([Segment(50 * np.pi / 2, 1 / 50)], lanes=1, lane_width=4.0)
    x, y, h, k = road.reference_pose(np.array(road.length))
    assert x == pytest.approx(50.0)
    assert y == pytest.approx(50.0)
    assert h == pytest.approx(np.pi / 2)
    # A point 2 m to the right of a left turn lies on the larger radius.
    xr, yr, _ = road.to_world(np.array(road.length / 2), np.array(2.0))
    assert np.hypot(xr - 0.0, yr - 50.0) == pytest.approx(52.0)


def test_lane_index_and_drivable_follow_spans():
    road = Road([Segment(1000, 0)], lanes=3, lane_width=4.0,
                spans=[LaneSpan(0, 1000), LaneSpan(0, 1000), LaneSpan(200, 400)])
    assert road.lane_at(np.array([0.5, 5.0, 11.9])).tolist() == [0, 1, 2]
    assert road.drivable(np.array(300.0), np.array(10.0))
    assert not road.drivable(np.array(500.0), np.array(10.0))  # lane 2 has ended
    assert not road.drivable(np.array(100.0), np.array(10.0))  # lane 2 has not begun
    assert not road.drivable(np.array(300.0), np.array(-0.5))  # left of the road
    assert road.lane_closes.tolist() == [False, False, True]


def test_points_beyond_the_road_ends_get_extrapolated_coordinates():
    road = Road([Segment(100, 0)], lanes=1, lane_width=4.0)
    s, d = road.to_road(np.array([-10.0, 120.0]), np.array([-1.0, -1.0]))
    np.testing.assert_allclose(s, [-10.0, 120.0])
    np.testing.assert_allclose(d, [1.0, 1.0])
