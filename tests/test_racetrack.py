"""Closed roads (a circuit, issue #16) and Racetrack-v0: the closure check, the seam (where s
restarts) for moving cars, leaders, collisions, the ego's progress and the observations, and
traffic that circulates for a long time."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lanesim  # noqa: F401
from lanesim.envs.actions import IDLE
from lanesim.envs.core import build_spec
from lanesim.envs.observations import OFFROAD, TRAFFIC
from lanesim.envs.options import OptionError, make_options
from lanesim.sim import state as layout
from lanesim.sim.lane_index import before_start, beyond_end, follower, leader
from lanesim.sim.road import ClosureError, Road, Segment
from lanesim.sim.world import TrafficModel, World, WorldSpec

R = 100.0  # m, the oval's half circles


def oval(lanes: int = 2) -> Road:
    """Two 200 m straights joined by half circles: the seam lies where the second half circle
    meets the first straight."""
    half = Segment(math.pi * R, 1.0 / R)
    return Road([Segment(200.0, 0.0), half, Segment(200.0, 0.0), half], lanes, 4.0, closed=True)


def oval_world(vehicles: int, lanes: int = 2) -> World:
    traffic = TrafficModel(vehicles=vehicles, time_headway=(1.5, 1.5), politeness=(0.0, 0.0))
    world = World(WorldSpec(road=oval(lanes), traffic=traffic, ego_start=300.0), 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    return world


def park_traffic(world: World, lane: int = 1) -> None:
    """Every car stands still in ``lane`` on the far straight, out of the way."""
    for e in range(1, 1 + world.V):
        world.place(e, 500.0 + 12.0 * e, lane, 0.0)


def step(world: World, n: int = 1) -> None:
    for _ in range(n):
        world.step(np.zeros(1), np.zeros(1))


# ------------------------------------------------------------------ closure
def test_a_closed_road_that_does_not_close_names_its_miss():
    miss = r"its end at \(100\.00, 0\.00\) .* misses its start .* by 100\.00 m"
    with pytest.raises(ClosureError, match=miss):
        Road([Segment(100.0, 0.0)], 2, 4.0, closed=True)


def test_a_closed_road_closes_within_the_tolerance():
    road = oval()
    assert road.closed and road.seam == road.length
    assert list(road.lane_next) == [0, 1] and list(road.lane_prev) == [0, 1]
    open_road = Road([Segment(100.0, 0.0)], 2, 4.0)
    assert list(open_road.lane_next) == [-1, -1] and open_road.seam == 0.0


def test_loop_option_refuses_a_road_that_does_not_close():
    with pytest.raises(OptionError, match=r"option 'loop'.* misses its start .* by"):
        make_options("lane_keeping", loop=True, repeat_road=False)


@pytest.mark.parametrize(
    ("extra", "named"),
    [({}, "repeat_road"), ({"repeat_road": False, "ramp": [{"start": 10.0, "length": 50.0}]},
                           "ramp")],
)
def test_loop_option_refuses_what_a_circuit_cannot_have(extra, named):
    with pytest.raises(OptionError, match=f"takes no '{named}'"):
        make_options("racetrack", **{"repeat_road": True, **extra})


def test_ego_may_start_just_before_the_seam_but_not_behind_a_stalled_car_past_it():
    L = build_spec(make_options("racetrack")).road.length
    make_options("racetrack", ego_start=L - 1.0)  # it drives on across the seam
    with pytest.raises(OptionError, match=r"option 'stalled'\[0\] .* is in the ego's way"):
        make_options("racetrack", ego_start=L - 1.0, stalled=[{"lane": 0, "s": 5.0}],
                     ego_lanes=[0])


def test_racetrack_scenario_is_a_closed_circuit_with_curves_both_ways():
    o = make_options("racetrack")
    road = build_spec(o).road
    assert road.closed and o.lanes >= 2
    assert (road.seg_curv > 0).any() and (road.seg_curv < 0).any()
    radii = 1.0 / np.abs(road.seg_curv[road.seg_curv != 0])
    assert radii.min() >= 100.0


# ------------------------------------------------------------------ the seam
def test_car_crossing_the_seam_keeps_speed_lane_and_a_continuous_pose():
    world = oval_world(vehicles=1)
    world.place(0, 300.0, 1, 0.0)  # the ego stands in the other lane
    L = world.road.length
    world.place(1, L - 20.0, 0, 20.0)
    world.desired_speed[0, 1] = 20.0  # a free road: IDM holds the speed exactly
    xs, ys, ss = [], [], []
    for _ in range(30):  # 2 s: 40 m, across the seam
        step(world)
        xs.append(world.x[0, 1]), ys.append(world.y[0, 1]), ss.append(world.s[0, 1])
        assert world.lane[0, 1] == 0 and world.speed[0, 1] == 20.0
    ss = np.array(ss)
    assert ss[-1] < 25.0 and (np.diff(ss) < 0).sum() == 1  # wrapped once, to the start
    assert world.F[layout.PASSED, 0, 1] == L
    travel = np.hypot(np.diff(xs), np.diff(ys))
    assert np.allclose(travel, 20.0 / world.spec.sim_hz, rtol=0.02)
    assert not world.crashed.any()


def test_leader_across_the_seam_is_found_with_the_gap_along_the_lane():
    world = oval_world(vehicles=1)
    L = world.road.length
    world.place(0, L - 10.0, 0, 0.0)
    world.place(1, 15.0, 0, 0.0)
    gap, _ = world.leader_of_ego()
    # 25 m of reference line; lane 0's centre (d = 2 m) on the left-turning half circle is
    # 1 + 2 / R times as long there.
    expected = 25.0 * (1.0 + 2.0 / R) - 0.5 * (world.length[0, 0] + world.length[0, 1])
    assert gap[0] == pytest.approx(expected, abs=1e-9)
    # The searches within the lane find nothing; past its end (before its start) they do.
    assert leader(world.index, 0, 0, L - 10.0) == -1 and follower(world.index, 0, 0, 15.0) == -1
    assert beyond_end(world.index, 0, 0, L - 10.0) == 1
    assert before_start(world.index, 0, 0, 15.0) == 0
    # Alone in its lane, a car is not its own leader a lap ahead.
    world.place(1, 100.0, 1, 0.0)
    assert beyond_end(world.index, 0, 1, 100.0) == -1
    assert before_start(world.index, 0, 1, 100.0) == -1


def test_car_stops_behind_a_stopped_car_across_the_seam():
    world = oval_world(vehicles=2, lanes=1)
    L = world.road.length
    world.place(0, 300.0, 0, 0.0)
    world.place(1, 4.0, 0, 0.0)
    world.place(2, L - 150.0, 0, 20.0)
    world.desired_speed[0, 1] = 0.0  # stays put
    step(world, 15 * 30)
    assert not world.crashed.any()
    assert world.speed[0, 2] < 0.1
    # It waits just before the seam, a few metres behind the car beyond it.
    gap = (world.s[0, 1] - world.s[0, 2]) % L - 0.5 * (world.length[0, 1] + world.length[0, 2])
    assert world.s[0, 2] > L - 20.0 and 0.5 < gap < 10.0


def test_collision_across_the_seam_is_detected():
    world = oval_world(vehicles=1)
    park_traffic(world)
    L = world.road.length
    world.place(0, L - 1.0, 0, 10.0)
    world.place(1, 1.0, 0, 10.0)  # 2 m ahead, across the seam: the bodies overlap
    step(world)
    assert world.crashed[0, 0] and world.crashed[0, 1]
    assert world.crashes_without_ego[0, 1] == 0


# ------------------------------------------------------------------ the environment
def racetrack(**kw):
    return gym.make("lanesim/Racetrack-v0", **kw)


def test_ego_progress_runs_on_across_the_seam():
    L = build_spec(make_options("racetrack")).road.length
    env = racetrack(action="meta", vehicles=0, ego_start=L - 40.0)
    env.reset(seed=1)
    world = env.unwrapped.world
    distance, progress, offset = [0.0], [], []
    for _ in range(20):  # 4 s at 20-25 m/s: across the seam
        _, _, terminated, truncated, info = env.step(IDLE)
        assert not (terminated or truncated)
        distance.append(info["distance"])
        progress.append(info["rewards"]["progress"])
        offset.append(info["lane_offset"])
    assert world.s[0, 0] < 60.0  # it crossed
    assert np.abs(np.diff(offset)).max() < 0.05  # its projection does not jump
    per_decision = np.diff(distance)
    assert per_decision.min() > 0.8 * 20.0 / 5 and per_decision.max() < 1.2 * 25.0 / 5
    # Steady and positive (the weighted term at about 20 m/s): no spike at the seam.
    assert min(progress) > 0.0 and min(progress) > 0.95 * max(progress)


def test_racetrack_is_deterministic_across_the_seam():
    def run(seed):
        env = racetrack(action="meta")
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(100):
            obs, reward, *_ = env.step(env.action_space.sample())
            out += [obs, np.float64(reward)]
        return np.concatenate([np.ravel(o) for o in out]), env.unwrapped.world.s.copy()

    a, b = run(4), run(4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], run(5)[0])


def test_traffic_circulates_for_10000_s_without_collisions_and_keeps_moving():
    spec = build_spec(make_options("racetrack"))
    world = World(spec, 1)
    world.reset(np.ones(1, dtype=bool), np.array([7]))
    L = spec.road.length
    cars = world.traffic
    travelled = world.s[0, cars] + world.F[layout.PASSED, 0, cars]
    for _ in range(100):  # 100 s at a time; the ego creeps along the right lane
        world.run(1500, target_lane=np.array([1]), target_speed=np.array([8.0]))
        now = world.s[0, cars] + world.F[layout.PASSED, 0, cars]
        assert (now - travelled).min() > 500.0  # every car keeps moving, none jumps back
        travelled = now
    assert world.crashes_without_ego.sum() == 0 and not world.crashed.any()
    assert (world.s >= 0).all() and (world.s < L).all()
    assert travelled.min() > 50 * L  # laps, not recycling


def test_racetrack_passes_gymnasium_check_env():
    for action in ("meta", "continuous"):
        env = racetrack(action=action)
        check_env(env.unwrapped)


def place_ahead_across_the_seam(env, ahead: float = 20.0):
    """The ego 5 m before the seam in lane 0, car 1 ``ahead`` m on, across it; the other cars
    parked far away in lane 1."""
    env.reset(seed=0)
    world = env.unwrapped.world
    L = world.road.length
    park_traffic(world)
    world.place(0, L - 5.0, 0, 20.0)
    world.place(1, ahead - 5.0, 0, 20.0)
    return world


def test_kinematics_see_a_car_across_the_seam_ahead():
    env = racetrack(observation="kinematics")
    place_ahead_across_the_seam(env)
    obs = env.unwrapped.core.observation()
    perception = env.unwrapped.options.perception_distance
    assert obs[0, 1, 0] == 1.0 and obs[0, 1, 1] == pytest.approx(20.0 / perception)


def test_pixels_show_road_and_a_car_across_the_seam():
    env = racetrack(observation="pixels")
    place_ahead_across_the_seam(env)
    frame = env.unwrapped.core.observation.draw(0)
    raster = env.unwrapped.core.observation.raster
    row = frame.shape[0] // 2  # the ego's row
    ahead = frame[row, raster.behind + 5 :]
    assert (ahead != OFFROAD).all()  # the road runs on past the seam
    car_col = raster.behind + int(20.0 / raster.mx)
    assert (frame[:, car_col - 2 : car_col + 3] == TRAFFIC).any()


def test_occupancy_sees_the_road_and_a_car_across_the_seam():
    env = racetrack(observation="occupancy")
    place_ahead_across_the_seam(env)
    obs = env.unwrapped.core.observation()[0]
    assert obs[2].all()  # two lanes, drivable all round
    cols = np.flatnonzero(obs[0].any(axis=0))
    assert len(cols) and (cols > 8).all()  # ahead of the ego's column


def test_a_lanes_only_car_is_not_its_own_follower_when_a_car_weighs_moving_in():
    # On a loop the only car of the next lane is both leader and follower of a car weighing a
    # change into it; as its follower it follows nobody before the change, not itself (a
    # negative gap once made moving in look like a relief to it, and the car changed lanes).
    world = oval_world(vehicles=2)
    L = world.road.length
    world.place(0, 100.0 + 0.5 * L, 1, 0.0)
    world.place(1, 100.0, 1, 20.0)
    world.place(2, 200.0, 0, 20.0)
    world.desired_speed[0, 1:] = 20.0
    world.politeness[0, 1] = 1.0
    step(world, 15)  # one decision
    assert world.target_lane[0, 1] == 1


def test_vi_driver_drives_on_across_the_seam_and_around_a_stalled_car_beyond_it():
    from agents.vi_driver import VIDriver

    L = build_spec(make_options("racetrack")).road.length
    env = racetrack(action="meta", vehicles=0, ego_start=L - 150.0, ego_lanes=[0],
                    stalled=[{"lane": 0, "s": 80.0}])
    agent = VIDriver()
    obs, _ = env.reset(seed=0)
    agent.reset(env)
    world = env.unwrapped.world
    speeds, lanes = [], []
    for _ in range(50):  # 10 s: across the seam and past the stalled car
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        assert not (terminated or truncated)
        speeds.append(info["speed"]), lanes.append(info["lane"])
    # Once at its top target speed (30 m/s) it keeps it: the lanes do not end at the seam (a
    # driver that saw them end braked to 21 m/s there). The stalled car beyond the seam is
    # passed in the other lane.
    top = next(i for i, v in enumerate(speeds) if v > 29.0)
    assert min(speeds[top:]) > 28.5 and 1 in lanes
    assert 100.0 < world.s[0, 0] < 0.5 * L


def test_ego_may_not_start_just_past_the_seam_with_a_stalled_car_just_behind_it():
    L = build_spec(make_options("racetrack")).road.length
    with pytest.raises(OptionError, match=r"option 'stalled'\[0\] .* is in the ego's way"):
        make_options("racetrack", ego_start=1.0, stalled=[{"lane": 0, "s": L - 1.0}],
                     ego_lanes=[0])


@pytest.mark.parametrize("shift", [0.0, 400.0])
def test_speeds_settle_behind_a_queue_across_the_seam_as_anywhere_else(shift):
    """A car 10 m behind a car that is 10 m behind a standing car starts slow enough to stop,
    whether the seam lies between them (shift 0) or not (shift 400 m); the sweep from the
    front once reached the car before the seam before the car past it had been slowed."""
    from lanesim.sim.traffic import settle_speeds

    world = oval_world(vehicles=3, lanes=1)
    L = world.road.length
    world.place(0, (700.0 + shift) % L, 0, 0.0)  # the ego, far away
    world.place(1, (2.0 + shift) % L, 0, 20.0)
    world.place(2, (12.0 + shift) % L, 0, 0.0)  # standing
    world.place(3, (L - 8.0 + shift) % L, 0, 20.0)  # behind car 1, across the seam at shift 0
    world.desired_speed[0, 1:] = [20.0, 0.0, 20.0]
    settle_speeds(world.F, world.I, *world._plain[1:], np.ones(1, dtype=bool))
    assert world.speed[0, 3] < 2.5 and world.speed[0, 1] < 2.5
    step(world, 60)
    assert not world.crashed[0].any()


def test_the_camera_sees_the_road_on_across_the_seam():
    """10 m before the seam the camera sees the next lap's first metres as road and lines,
    as on the same lap laid out again on an open road (only a few dash pixels differ: the
    lap is not a whole number of dash periods); the walk once stopped at the last segment
    and drew the road beyond the seam as ground."""
    L = build_spec(make_options("racetrack")).road.length

    def frame(**kw):
        env = gym.make("lanesim/Racetrack-v0", observation="camera", vehicles=0,
                       frame_stack=1, **kw)
        env.reset(seed=0)
        env.unwrapped.world.place(0, L - 10.0, 0, 20.0)
        return env.unwrapped.core.observation()[0, 0].astype(int)

    circuit = frame()
    laid_out = frame(loop=False, repeat_road=True, duration=200.0)
    assert (np.abs(circuit - laid_out) > 10).sum() <= 20
