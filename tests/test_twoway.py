"""Two-way roads (issue #16) and TwoWay-v0: lane directions and their validation, oncoming
traffic that follows its own leader, head-on collisions, recycling both ways, a long
traffic-only run, the ego overtaking through the oncoming lane, and the observations."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lanesim  # noqa: F401
from lanesim.envs.actions import FASTER, IDLE, LANE_LEFT, LANE_RIGHT
from lanesim.envs.core import build_spec
from lanesim.envs.observations import SOLID, TRAFFIC
from lanesim.envs.options import OptionError, make_options
from lanesim.sim.road import LaneSpan, Road, Segment
from lanesim.sim.world import TrafficModel, World, WorldSpec

ONCOMING, FORWARD = 0, 1  # the lanes of a two-lane two-way road


def two_way_world(vehicles: int, length: float = 3000.0) -> World:
    road = Road([Segment(length, 0.0)], 2, 4.0, directions=[-1, 1])
    traffic = TrafficModel(vehicles=vehicles, time_headway=(1.5, 1.5), politeness=(0.0, 0.0),
                           recycle_distance=400.0)
    world = World(WorldSpec(road=road, traffic=traffic, ego_start=1000.0), 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    return world


def four_lane_world(vehicles: int) -> World:
    """Two oncoming lanes (0, 1) left of two forward ones (2, 3) on a straight 3,000 m road."""
    road = Road([Segment(3000.0, 0.0)], 4, 4.0, directions=[-1, -1, 1, 1])
    traffic = TrafficModel(vehicles=vehicles, politeness=(0.0, 0.0), recycle_distance=400.0)
    world = World(WorldSpec(road=road, traffic=traffic, ego_start=1000.0), 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    return world


def step(world: World, n: int = 1) -> None:
    for _ in range(n):
        world.step(np.zeros(1), np.zeros(1))


def park(world: World, first: int = 1) -> None:
    """The ego stands at 1000 m in the forward lane, cars ``first`` on stand still there 300 m
    behind it, out of the way."""
    world.place(0, 1000.0, FORWARD, 0.0)
    for e in range(first, 1 + world.V):
        world.place(e, 700.0 + 12.0 * e, FORWARD, 0.0)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "directions, named",
    [([1], "for each of the 2 lanes"), ([1, 0], r"\+1 \(forward\) or -1 \(oncoming\)")],
)
def test_road_refuses_directions_that_are_not_one_per_lane_of_plus_or_minus_one(directions, named):
    with pytest.raises(ValueError, match=named):
        Road([Segment(500.0, 0.0)], 2, 4.0, directions=directions)


def test_road_refuses_an_oncoming_lane_that_starts_late_or_on_a_circuit():
    spans = [LaneSpan(100.0, 500.0), LaneSpan(0.0, 500.0)]
    with pytest.raises(ValueError, match=r"oncoming lanes \[0\] must run the whole road"):
        Road([Segment(500.0, 0.0)], 2, 4.0, spans, directions=[-1, 1])
    circle = [Segment(2 * math.pi * 100.0, 0.01)]
    with pytest.raises(ValueError, match="closed road's lanes all travel one way"):
        Road(circle, 2, 4.0, closed=True, directions=[-1, 1])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lanes": 2, "oncoming_lanes": 2}, r"'oncoming_lanes' is 2, but the road has 2 through "
         r"lanes: at least one must travel forward \(0 to 1 accepted\)"),
        ({"oncoming_lanes": 9}, r"'oncoming_lanes' must be"),
        ({"oncoming_lanes": -1}, r"'oncoming_lanes' must be"),
        ({"lanes": 2, "oncoming_lanes": 1, "closures": [{"lane": 0, "start": 600.0}]},
         r"'closures'\[0\] closes lane 0, an oncoming lane"),
        ({"lanes": 2, "oncoming_lanes": 1, "ego_lanes": [0]},
         r"'ego_lanes' has lane 0, an oncoming lane .* the ego starts in a forward lane"),
    ],
)
def test_oncoming_lanes_option_refuses_what_a_two_way_road_cannot_have(options, message):
    with pytest.raises(OptionError, match=message):
        make_options(**options)


def test_oncoming_lanes_option_refuses_a_circuit():
    with pytest.raises(OptionError, match="'oncoming_lanes' .* 'loop' a circuit"):
        make_options("racetrack", oncoming_lanes=1)


def test_twoway_scenario_has_one_lane_each_way_and_the_ego_starts_forward():
    o = make_options("twoway")
    assert o.lane_directions == [-1, 1] and o.start_lanes == (FORWARD,)
    env = gym.make("lanesim/TwoWay-v0")
    env.reset(seed=0)
    world = env.unwrapped.world
    assert world.lane[0, 0] == FORWARD
    onc = world.lane[0, world.traffic] == ONCOMING
    assert 0 < onc.sum() < world.V  # traffic both ways
    heading = world.heading[0, world.traffic]
    assert np.allclose(np.cos(heading[onc]), -1.0) and np.allclose(np.cos(heading[~onc]), 1.0)


# ------------------------------------------------------------------ oncoming traffic
def test_oncoming_car_moves_toward_the_start_at_its_speed_facing_back():
    world = two_way_world(2)
    park(world, first=2)
    world.desired_speed[0, 1] = 20.0
    world.place(1, 1300.0, ONCOMING, 20.0)
    assert world.heading[0, 1] == pytest.approx(math.pi)
    step(world, 15)  # 1 s
    assert world.s[0, 1] == pytest.approx(1280.0, abs=0.05)
    assert world.speed[0, 1] == pytest.approx(20.0, abs=0.05)
    assert world.x[0, 1] == pytest.approx(world.s[0, 1])
    assert math.cos(world.heading[0, 1]) == pytest.approx(-1.0)
    assert world.lane[0, 1] == ONCOMING


def test_oncoming_car_follows_the_car_ahead_in_its_own_direction():
    world = two_way_world(3)
    park(world, first=3)
    # Car 2 stands at 1200 m; car 1 comes from 1350 m toward it and stops behind it (in its
    # direction: at a larger s), not behind what lies beyond 1350 m.
    world.place(2, 1200.0, ONCOMING, 0.0)
    world.desired_speed[0, 2] = 0.0
    world.desired_speed[0, 1] = 20.0
    world.place(1, 1350.0, ONCOMING, 15.0)
    step(world, 15 * 30)
    gap = world.s[0, 1] - world.s[0, 2] - 0.5 * (world.length[0, 1] + world.length[0, 2])
    assert world.speed[0, 1] < 0.5
    assert 0.5 < gap < 10.0
    assert not world.crashed[0].any()


def test_forward_car_never_changes_into_the_oncoming_lane():
    world = two_way_world(3)
    park(world, first=3)
    # A fast car behind a slow one, the oncoming lane empty: on a one-way road MOBIL would
    # take it; here it queues.
    world.desired_speed[0, 1] = 10.0
    world.place(1, 1100.0, FORWARD, 10.0)
    world.desired_speed[0, 2] = 30.0
    world.place(2, 1040.0, FORWARD, 25.0)
    for _ in range(15 * 20):
        step(world)
        assert (world.target_lane[0, 1:3] == FORWARD).all()
    assert world.s[0, 2] < world.s[0, 1] and not world.crashed[0].any()


def test_oncoming_car_overtakes_in_an_oncoming_lane_of_its_own_direction():
    world = four_lane_world(3)
    world.place(0, 1000.0, 3, 0.0)
    world.place(3, 700.0, 3, 0.0)
    # Lane 1 (oncoming): a slow car at 1200 m and a fast one behind it, at 1260 m; its right is
    # lane 0, its left lane 2 travels the other way.
    world.desired_speed[0, 1] = 10.0
    world.place(1, 1200.0, 1, 10.0)
    world.desired_speed[0, 2] = 30.0
    world.place(2, 1260.0, 1, 25.0)
    lanes = set()
    for _ in range(15 * 10):
        step(world)
        lanes.add(int(world.target_lane[0, 2]))
    assert lanes <= {0, 1} and 0 in lanes
    assert world.s[0, 2] < world.s[0, 1]  # past the slow car, toward -s
    assert not world.crashed[0].any()


def test_oncoming_car_judges_the_other_lane_by_the_car_ahead_in_its_direction():
    world = four_lane_world(4)
    world.place(0, 1000.0, 3, 0.0)
    world.place(4, 700.0, 3, 0.0)
    world.desired_speed[0, 1] = 12.0
    world.place(1, 1200.0, 1, 12.0)
    world.desired_speed[0, 2] = 30.0
    world.place(2, 1260.0, 1, 25.0)
    # Lane 0 holds a stopped car 30 m ahead of car 2 in its direction (at a smaller s), and
    # nothing behind: moving over there would be into a stopped car.
    world.desired_speed[0, 3] = 0.0
    world.place(3, 1230.0, 0, 0.0)
    changed = False
    for _ in range(15 * 10):
        step(world)
        if world.target_lane[0, 2] == 0:
            changed = True
            assert world.s[0, 2] < world.s[0, 3] - 5.0  # only once past the stopped car
    assert changed and not world.crashed[0].any()


def test_head_on_collision_is_detected():
    world = two_way_world(2)
    park(world, first=2)
    world.place(0, 1000.0, ONCOMING, 15.0)  # the ego in the oncoming lane
    world.desired_speed[0, 1] = 20.0
    world.place(1, 1040.0, ONCOMING, 20.0)
    crashed_at = None
    for k in range(60):
        step(world)
        if world.crashed[0, 0]:
            crashed_at = k
            break
    assert crashed_at is not None
    assert world.crashed[0, 1]
    assert world.crashes_without_ego[0, 1] == 0  # the ego's collision, not traffic's


def test_oncoming_car_brakes_for_the_ego_coming_head_on():
    world = two_way_world(2)
    park(world, first=2)
    world.place(0, 1000.0, ONCOMING, 20.0)
    world.desired_speed[0, 1] = 20.0
    world.place(1, 1200.0, ONCOMING, 20.0)
    gap, speed = world.leader_of_ego()
    assert speed[0] == pytest.approx(-20.0)  # along the ego's way
    assert gap[0] == pytest.approx(200.0 - 0.5 * (world.length[0, 0] + world.length[0, 1]))
    step(world, 15)
    assert world.speed[0, 1] < 18.0  # closing at 40 m/s: it brakes


def test_oncoming_cars_recycle_ahead_of_the_ego_and_keep_their_direction():
    world = two_way_world(16)
    oncoming = world.lane[0, world.traffic] == ONCOMING
    ego_s0 = world.s[0, 0]
    recycled = 0
    prev = world.s[0, world.traffic].copy()
    for _ in range(200):  # 40 s with the ego standing
        world.run(3, target_lane=np.array([FORWARD]), target_speed=np.array([0.0]))
        now = world.s[0, world.traffic]
        jumped = np.abs(now - prev) > 20.0
        # An oncoming car that came past the ego re-enters ahead of it, coming toward it.
        assert (now[jumped & oncoming] > ego_s0).all()
        recycled += (jumped & oncoming).sum()
        prev = now.copy()
        assert np.array_equal(world.lane[0, world.traffic] == ONCOMING, oncoming)
    assert recycled >= 5
    # The density stays: cars both ways within the recycling distance.
    near = np.abs(world.s[0, world.traffic] - world.s[0, 0]) <= 400.0
    assert near.all() and 0 < (near & oncoming).sum()


def test_traffic_flows_both_ways_for_10000_s_without_collisions_and_keeps_moving():
    spec = build_spec(make_options("twoway", duration=10_000.0))  # a road long enough
    world = World(spec, 1)
    world.reset(np.ones(1, dtype=bool), np.array([3]))
    cars = world.traffic
    # The ego creeps along its lane slower than any car wants to go: cars behind it queue at
    # its speed, the rest pull away and are recycled; the oncoming lane flows past.
    for _ in range(1000):  # 10 s at a time
        world.run(150, target_lane=np.array([FORWARD]), target_speed=np.array([12.0]))
        assert world.speed[0, cars].min() > 5.0  # every car keeps moving
    assert world.time[0] == pytest.approx(10_000.0)
    assert world.crashes_without_ego.sum() == 0 and not world.crashed.any()


# ------------------------------------------------------------------ the ego
def test_ego_changes_into_the_oncoming_lane_and_back():
    env = gym.make("lanesim/TwoWay-v0", action="meta", vehicles=0)
    env.reset(seed=0)
    for _ in range(20):
        _, _, terminated, _, info = env.step(LANE_LEFT if _ == 0 else IDLE)
    assert info["lane"] == ONCOMING and not terminated
    assert abs(info["lane_offset"]) < 0.3 and abs(info["heading_error"]) < 0.05
    for _ in range(20):
        _, _, terminated, _, info = env.step(LANE_RIGHT if _ == 0 else IDLE)
    assert info["lane"] == FORWARD and not terminated and not info["offroad"]


def test_twoway_is_deterministic_and_seeds_differ():
    def run(seed):
        env = gym.make("lanesim/TwoWay-v0", action="meta")
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(100):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            out += [obs, np.float64(reward)]
            if terminated or truncated:
                obs, _ = env.reset()
        return np.concatenate([np.ravel(o) for o in out])

    assert np.array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


def test_twoway_passes_gymnasium_check_env():
    for action in ("meta", "continuous"):
        check_env(gym.make("lanesim/TwoWay-v0", action=action).unwrapped)


# ------------------------------------------------------------------ observations
def head_on_scene(**options):
    """The ego at 20 m/s in its lane, one oncoming car at 20 m/s 40 m ahead, the rest far."""
    env = gym.make("lanesim/TwoWay-v0", vehicles=2, **options)
    env.reset(seed=0)
    world = env.unwrapped.world
    world.place(2, world.s[0, 0] - 300.0, FORWARD, 0.0)
    world.place(0, world.s[0, 0], FORWARD, 20.0)
    world.place(1, world.s[0, 0] + 40.0, ONCOMING, 20.0)
    return env, world


def test_kinematics_show_an_oncoming_car_with_its_negative_velocity():
    env, _ = head_on_scene(observation="kinematics")
    obs = env.unwrapped.core.observation()[0]
    car = obs[1]
    assert car[0] == 1.0 and car[1] == pytest.approx(40.0 / 100.0)
    assert car[3] == pytest.approx(-40.0 / 40.0)  # (-20 - 20) / 40 m/s
    assert car[5] == pytest.approx(-1.0)  # cos of its heading relative to the road


def test_occupancy_shows_an_oncoming_car_with_its_negative_relative_speed():
    env, world = head_on_scene(observation="occupancy")
    obs = env.unwrapped.core.observation()[0]
    car = obs[0] > 0
    assert car[:4].any() and not car[4:].any()  # in the oncoming lane's rows only
    assert obs[1][car] == pytest.approx(-1.0)  # (-20 - 20) / 40, saturated at -1


def test_pixels_draw_a_solid_centre_line_between_the_directions():
    env, world = head_on_scene(observation="pixels")
    frame = env.unwrapped.core.observation.draw(0)
    H, W = frame.shape
    # The centre line lies 2 m left of the ego's centre (its lane's left edge); 0.5 m a row.
    assert (frame[H // 2 - 4] == SOLID).all()  # unbroken along the whole view
    assert (frame == TRAFFIC).any()


# ------------------------------------------------------------------ the value-iteration driver
@pytest.mark.parametrize("oncoming_at", [150.0, 250.0, 420.0, None])
def test_vi_driver_overtakes_only_when_the_oncoming_lane_is_clear(oncoming_at):
    """Behind a car at 21 m/s, the ego at 27 m/s aiming for 30: an oncoming car 150, 250 or 420 m
    ahead closes at 52 m/s, so it stays (the driver that read oncoming speeds as forward ones
    changed into it; the one that counted only the oncoming car's travel did not see it at
    420 m, where the two meet within its plan); with the oncoming lane clear it overtakes."""
    from agents.vi_driver import VIDriver

    env = gym.make("lanesim/TwoWay-v0", action="meta", vehicles=3)
    env.reset(seed=0)
    env.step(FASTER)
    env.step(FASTER)
    world = env.unwrapped.world
    s0 = 1000.0
    world.place(3, s0 - 300.0, FORWARD, 0.0)
    world.desired_speed[0, 1] = 21.0
    world.place(0, s0, FORWARD, 27.0)
    world.place(1, s0 + 35.0, FORWARD, 21.0)
    world.desired_speed[0, 2] = 25.0
    if oncoming_at is None:
        world.place(2, s0 - 250.0, FORWARD, 0.0)
    else:
        world.place(2, s0 + oncoming_at, ONCOMING, 25.0)
    driver = VIDriver()
    driver.reset(env)
    action = driver.plan(env.unwrapped.scene(), env.unwrapped.options)["action"]
    assert action == (LANE_LEFT if oncoming_at is None else IDLE)


def _oncoming_change_step(ego_s: float, ego_lane: int) -> int | None:
    """Two oncoming lanes: the step at which a car at 28 m/s behind a car at 10 m/s in lane 1
    targets the free lane 0, with the ego at ``ego_s`` in ``ego_lane`` driving +s at 30 m/s."""
    world = four_lane_world(3)
    world.place(3, 700.0, 3, 0.0)  # parked out of the way
    world.desired_speed[0, 3] = 0.0
    world.desired_speed[0, 1] = 10.0
    world.place(1, 1150.0, 1, 10.0)
    world.desired_speed[0, 2] = 28.0
    world.place(2, 1200.0, 1, 28.0)
    world.place(0, ego_s, ego_lane, 30.0)
    for k in range(45):
        world.run(1, target_lane=np.array([ego_lane]), target_speed=np.array([30.0]))
        assert not world.crashed[0].any()
        if world.target_lane[0, 2] == 0:
            return k
    return None


@pytest.mark.parametrize("past", [8.0, 30.0])
def test_an_ego_driving_away_in_the_target_lane_does_not_hold_up_an_oncoming_lane_change(past):
    """The car changes as soon with the ego 8 or 30 m past it in lane 0, driving the other way,
    as with the ego far off in a forward lane (it once scored the receding ego as a follower
    that would have to brake for it, and waited a decision longer)."""
    far = _oncoming_change_step(1800.0, 3)
    assert far is not None
    assert _oncoming_change_step(1200.0 + past, 0) == far


def test_the_camera_paints_the_line_between_the_directions_solid():
    from lanesim.camera.raster import DASHED_LINE, SOLID_LINE, road_paint

    one_way = road_paint(Road([Segment(1000.0, 0.0)], 3, 4.0))
    two_way = road_paint(Road([Segment(1000.0, 0.0)], 3, 4.0, directions=[-1, 1, 1]))
    assert one_way.boundary[0].tolist() == [SOLID_LINE, DASHED_LINE, DASHED_LINE, SOLID_LINE]
    assert two_way.boundary[0].tolist() == [SOLID_LINE, SOLID_LINE, DASHED_LINE, SOLID_LINE]
