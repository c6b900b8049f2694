import numpy as np
import pytest

from lanesim.sim.road import LaneSpan, Road, Segment, wrap_angle, wrap_angles


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


def crossing_road():
    """60 m east, three quarters of a left circle (radius 20 m), then 60 m south: the last
    straight crosses the first at (40, 0), where s is 40 m on one and 174.2 m on the other."""
    return Road(
        [Segment(60.0, 0.0), Segment(1.5 * np.pi * 20.0, 1 / 20.0), Segment(60.0, 0.0)],
        lanes=1,
        lane_width=4.0,
    )


def test_car_driving_through_a_crossing_keeps_its_own_stretch_of_road():
    """Where the road passes the same place twice the ego stays on the stretch it drives (the
    nearest stretch used to win, so the ego jumped to the other one and was off-road)."""
    from lanesim.sim.world import TrafficModel, World, WorldSpec

    spec = WorldSpec(road=crossing_road(), traffic=TrafficModel(vehicles=0), ego_start=156.0)
    world = World(spec, 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    world.place(0, 156.0, 0, 10.0)  # on the last straight, heading south
    s = [world.s[0, 0]]
    for _ in range(60):  # 4 s at 10 m/s: from 156 m through the crossing at 174 m
        trace = world.step(np.zeros(1), np.zeros(1))
        assert not trace.offroad.any()
        s.append(world.s[0, 0])
    steps = np.diff(s)
    assert steps == pytest.approx(10.0 / spec.sim_hz, rel=0.02)
    assert s[-1] > 176.0


def test_long_lane_keeping_episode_stays_on_its_road():
    """The issue's case: LaneKeeping-v0 lasting 300 s repeats its winding pattern until the
    road crosses itself; with seed 1 the idling ego used to be declared off-road there."""
    import gymnasium as gym

    env = gym.make("lanesim/LaneKeeping-v0", duration=300.0, action="meta")
    env.reset(seed=1)
    for _ in range(100):
        _, _, terminated, _, info = env.step(1)
        assert not terminated
    assert info["distance"] < 40.0 * 100 / 5  # no jump along the road
    env.close()


def test_heading_wrap_gives_the_same_angle_in_minus_pi_to_pi_for_kernels_and_arrays():
    angles = np.array([-3 * np.pi, -np.pi, -1.0, 0.0, 2.5, np.pi, 7.0, 1e3])
    wrapped = wrap_angles(angles)
    assert ((wrapped >= -np.pi) & (wrapped < np.pi)).all()
    np.testing.assert_allclose(np.cos(wrapped), np.cos(angles), atol=1e-9)
    np.testing.assert_allclose(np.sin(wrapped), np.sin(angles), atol=1e-9)
    assert [wrap_angle(a) for a in angles] == wrapped.tolist()  # one formula, bit for bit
