"""Traffic behaviour: IDM car following and MOBIL lane changes, in the batched simulator."""

import numpy as np
import pytest

import lanesim
from lanesim.envs.actions import IDLE
from lanesim.envs.core import DrivingCore
from lanesim.envs.options import make_options
from lanesim.sim import models
from lanesim.sim import state as layout
from lanesim.sim.lane_index import follower, leader
from lanesim.sim.road import LaneSpan, Road, Segment, wrap_angles
from lanesim.sim.world import STALLED, Obstacle, TrafficModel, World, WorldSpec


def make_world(lanes, vehicles, obstacles=(), decision_period=1.0):
    road = Road([Segment(5000, 0)], lanes=lanes, lane_width=4.0)
    traffic = TrafficModel(
        vehicles=vehicles,
        recycle_distance=1e5,  # keep hand-placed cars where they are
        decision_period=decision_period,
        time_headway=(1.5, 1.5),
        politeness=(0.0, 0.0),
    )
    world = World(WorldSpec(road=road, traffic=traffic, obstacles=tuple(obstacles)), 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    # Park the ego far ahead in the last lane so it is nobody's leader.
    world.place(0, 4500.0, lanes - 1, 0.0)
    return world


def run(world, seconds, each=None):
    for _ in range(int(seconds * world.spec.sim_hz)):
        world.step(np.zeros(world.B), np.zeros(world.B))
        if each is not None:
            each()


def test_car_follows_slower_leader_without_collision():
    world = make_world(lanes=1, vehicles=2)
    world.place(1, 150.0, 0, 15.0)
    world.place(2, 60.0, 0, 28.0)
    world.desired_speed[0, 1] = 15.0
    world.desired_speed[0, 2] = 30.0
    gaps = []
    run(
        world,
        60,
        lambda: gaps.append(world.s[0, 1] - world.s[0, 2] - 0.5 * world.length[0, 1:3].sum()),
    )
    assert not world.crashed.any()
    assert min(gaps) > 2.0
    # The follower settles at the leader's speed, about one time headway behind.
    assert abs(world.speed[0, 2] - 15.0) < 0.5
    assert 15.0 < gaps[-1] < 35.0


def test_car_stops_behind_stalled_vehicle():
    world = make_world(lanes=1, vehicles=1, obstacles=[Obstacle(STALLED, 0, 400.0)])
    world.place(1, 100.0, 0, 25.0)
    world.desired_speed[0, 1] = 25.0
    run(world, 40)
    obstacle = world.N - 1
    gap = world.s[0, obstacle] - world.s[0, 1]
    gap -= 0.5 * (world.length[0, 1] + world.length[0, obstacle])
    assert not world.crashed.any()
    assert world.speed[0, 1] < 0.1
    assert 0.5 < gap < 6.0


def test_car_overtakes_slow_leader_when_next_lane_is_free():
    world = make_world(lanes=2, vehicles=2)
    world.place(1, 160.0, 1, 15.0)  # slow leader
    world.place(2, 110.0, 1, 28.0)  # fast follower
    world.desired_speed[0, 1] = 15.0
    world.desired_speed[0, 2] = 30.0
    run(world, 6)
    assert world.target_lane[0, 2] == 0
    run(world, 10)
    assert world.s[0, 2] > world.s[0, 1]  # it got past
    assert not world.crashed.any()


def test_car_stays_behind_slow_leader_when_next_lane_is_occupied():
    world = make_world(lanes=2, vehicles=3)
    world.place(1, 160.0, 1, 15.0)  # slow leader
    world.place(2, 110.0, 1, 15.0)  # wants to go faster
    world.place(3, 110.0, 0, 15.0)  # right beside it, also slow
    for car, v0 in ((1, 15.0), (2, 30.0), (3, 15.0)):
        world.desired_speed[0, car] = v0
    lanes = []
    run(world, 8, lambda: lanes.append(world.target_lane[0, 2]))
    assert set(lanes) == {1}
    assert not world.crashed.any()


def test_mobil_can_be_switched_off_by_decision_period():
    world = make_world(lanes=2, vehicles=2, decision_period=1e9)
    world.place(1, 160.0, 1, 15.0)
    world.place(2, 110.0, 1, 28.0)
    world.desired_speed[0, 1] = 15.0
    world.desired_speed[0, 2] = 30.0
    run(world, 10)
    assert world.target_lane[0, 2] == 1


def test_dense_traffic_runs_long_without_traffic_collisions():
    road = Road([Segment(8000, 0)], lanes=3, lane_width=4.0)
    spec = WorldSpec(road=road, traffic=TrafficModel(vehicles=50), ego_start=300.0)
    world = World(spec, 4)
    world.reset(np.ones(4, dtype=bool), np.arange(4))
    ego_speed = []

    def ego_follows():
        ego_speed.append(world.speed[:, 0].copy())

    # The ego drives straight at a steady pace the traffic can adapt to.
    for _ in range(15 * 40):
        gap, _ = world.leader_of_ego()
        accel = np.where(gap < 30.0, -3.0, 0.0)
        world.step(np.zeros(4), accel)
        ego_follows()
    assert not world.crashed[:, 1:].any()


def test_a_lane_change_does_not_make_other_cars_change_lanes():
    """Car 2 overtakes at the first decision; car 3, alone at its desired speed in lane 3 and
    deciding after it, has no reason to move. (Regression: the lane-index entry car 2
    inserted used to shift car 3's recorded position, so car 3 took itself for its own leader,
    saw a hard brake ahead and changed lanes.)"""
    world = make_world(lanes=4, vehicles=3)
    world.place(0, 4500.0, 0, 0.0)
    world.place(1, 160.0, 1, 15.0)  # slow leader
    world.place(2, 110.0, 1, 28.0)  # fast follower: overtakes
    world.place(3, 300.0, 3, 25.0)  # cruising alone
    for car, v0 in ((1, 15.0), (2, 30.0), (3, 25.0)):
        world.desired_speed[0, car] = v0
    lanes = []
    run(world, 4, lambda: lanes.append(world.target_lane[0, 3]))
    assert world.target_lane[0, 2] != 1
    assert set(lanes) == {3}


def test_no_car_finds_itself_as_its_own_leader_or_follower():
    """Index keys and query positions are made by one function, so a query at a car's own
    position never returns that car (it used to for about 3 % of queries, from rounding)."""
    from lanesim.envs.core import DrivingCore
    from lanesim.envs.options import make_options

    core = DrivingCore(make_options("highway"), 8)
    core.reset(np.ones(8, dtype=bool), np.arange(8))
    w = core.world
    w.command[layout.COMMAND_STEER] = 0.0
    w.command[layout.COMMAND_ACCEL] = 0.0
    checked = 0
    for _ in range(10):
        w.advance(15)
        for b in range(w.B):
            for e in range(1, 1 + w.V):
                for ahead in (True, False):
                    lane, s = int(w.lane[b, e]), float(w.s[b, e])
                    found = (leader if ahead else follower)(w.index, b, lane, s)
                    assert found != e
                    checked += 1
    assert checked == 10 * 8 * w.V * 2


def test_traffic_keeps_out_of_the_roadworks_cones():
    """Cars spawn, recycle and change lanes only where they can still stop before a closing
    lane's taper, and stop there (they used to spawn inside it and drive into the cones in 51
    of 64 worlds)."""
    from lanesim.envs.core import DrivingCore
    from lanesim.envs.options import make_options

    core = DrivingCore(make_options("roadworks"), 32)
    core.reset(np.ones(32, dtype=bool), np.arange(32))
    w = core.world
    w.command[layout.COMMAND_LANE] = 0  # the ego crawls along the far lane, past the works
    w.command[layout.COMMAND_SPEED] = 12.0
    w.autopilot[:] = True
    (closing,) = np.flatnonzero(np.isfinite(w.road.lane_stop))
    stop = w.road.lane_stop[closing]
    cars = slice(1, 1 + w.V)
    queued = 0
    for _ in range(40):
        w.advance(15)
        in_lane = (w.lane[:, cars] == closing) & (w.target_lane[:, cars] == closing)
        front = w.s[:, cars] + 0.5 * w.length[:, cars]
        assert not (in_lane & (front > stop)).any()  # nobody drives into the taper
        queued += int((in_lane & (stop - front < 20.0)).sum())
    assert queued > 0  # cars did wait at the stop
    cones = w.crashed[:, 1 + w.V :].any(axis=1)
    ego = w.crashed[:, 0]
    assert (~ego).sum() >= 16  # enough worlds where only traffic could touch the cones
    assert not (cones & ~ego).any()


# ---------------------------------------------------------------- traffic that does not crash
BUNDLED = [(env_id, name) for env_id, name in lanesim.ENVIRONMENTS.items() if name]


@pytest.mark.parametrize("env_id", [env_id for env_id, _ in BUNDLED])
def test_no_traffic_only_collisions_in_100_episodes_with_the_ego_idling(env_id):
    """Seeds 0-99, the ego only following its lane: no traffic car collides without the ego
    (Dense-v0 used to have traffic-only crashes in a third of its episodes, some 0.5 s after
    reset). ``info["traffic_collisions"]`` is read at each sub-environment's first episode end."""
    import gymnasium as gym

    n = 100
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", action="meta")
    envs.reset(seed=0)
    final = np.full(n, -1)
    idle = np.full(n, IDLE)
    while (final < 0).any():
        _, _, terminated, truncated, info = envs.step(idle)
        ended = (terminated | truncated) & (final < 0)
        final[ended] = info["traffic_collisions"][ended]
    envs.close()
    assert final.tolist() == [0] * n


def drive_long(scenario, n_worlds, seconds, each):
    """Run ``n_worlds`` of ``scenario`` for ``seconds`` regardless of episode ends, the ego
    keeping its lane at a speed that keeps its distance to its leader; ``each(world)`` after
    every simulation step."""
    core = DrivingCore(make_options(scenario), n_worlds)
    core.reset(np.ones(n_worlds, dtype=bool), np.arange(n_worlds))
    w = core.world
    w.autopilot[:] = True
    w.command[layout.COMMAND_LANE] = w.lane[:, 0]
    for _ in range(int(seconds * w.spec.sim_hz)):
        gap, leader_speed = w.leader_of_ego()
        w.command[layout.COMMAND_SPEED] = np.clip(leader_speed + (gap - 10.0) / 3.0, 0.0, 15.0)
        w.advance(1)
        each(w)
    return w


@pytest.mark.parametrize("scenario", [name for _, name in BUNDLED])
def test_traffic_runs_two_minutes_without_collisions_of_its_own(scenario):
    """Long runs with sudden braking (Dense-v0), merges and lane ends: no traffic car ever
    collides with anything but the ego, which keeps its distance here."""
    w = drive_long(scenario, 32, 120.0, lambda w: None)
    assert not w.crashed[:, 0].any()
    assert w.crashes_without_ego[:, w.traffic].sum() == 0


@pytest.mark.parametrize("scenario", [name for _, name in BUNDLED])
def test_traffic_heading_stays_within_30_degrees_of_the_lane(scenario):
    """Lane changes at any speed look like lane changes (cars used to turn 55-90° sideways
    when changing lanes slowly in Dense-v0 and at the roadworks)."""
    worst = []

    def record(w):
        rel = w.heading[:, w.traffic] - w.F[layout.ROAD_HEADING][:, w.traffic]
        rel -= np.pi * (w.road.lane_direction[w.lane[:, w.traffic]] < 0)  # oncoming lanes
        worst.append(np.abs(wrap_angles(rel)).max())

    drive_long(scenario, 32, 120.0, record)
    assert max(worst) <= np.radians(30.0)


def test_slow_car_changes_lanes_at_a_bounded_angle():
    """At 1 m/s a car moves over at most at MAX_LANE_CHANGE_ANGLE to its lane, and does
    move over; a stopped car does not slide sideways."""
    world = make_world(lanes=2, vehicles=2, obstacles=[Obstacle(STALLED, 1, 206.0)])
    world.place(1, 100.0, 1, 1.0)
    world.place(2, 200.0, 1, 0.0)  # held up by the stalled car right ahead
    world.desired_speed[0, 1:3] = (1.0, 10.0)
    world.target_lane[0, 1:3] = 0
    d0 = world.d[0, 1:3].copy()
    angles = []
    run(world, 10, lambda: angles.append(world.heading[0, 1] - world.F[layout.ROAD_HEADING][0, 1]))
    assert max(np.abs(angles)) <= models.MAX_LANE_CHANGE_ANGLE + 1e-9
    assert max(np.abs(angles)) > 0.5 * models.MAX_LANE_CHANGE_ANGLE
    assert world.d[0, 1] < d0[0] - 2.0  # it moved over by more than half a lane
    assert world.d[0, 2] == d0[1]  # the stopped car stayed put


def test_slow_car_straightens_out_as_it_reaches_its_lane_centre():
    """A car pulling away 0.9 m off its lane's centre approaches it over distance, its angle
    shrinking with the offset, so its rear swings at most 0.3 m over the lane line (at the
    full lane-change angle it swung 0.4 m into the next lane, where queued cars stand)."""
    world = make_world(lanes=3, vehicles=1)
    world.place(1, 100.0, 1, 0.0)
    world.d[0, 1] += 0.9  # towards lane 2
    world._refresh_lanes()
    world.desired_speed[0, 1] = 5.0
    reach = []

    def record():
        rel = world.heading[0, 1] - world.F[layout.ROAD_HEADING][0, 1]
        half_l, half_w = 0.5 * world.length[0, 1], 0.5 * world.width[0, 1]
        reach.append(world.d[0, 1] + half_l * abs(np.sin(rel)) + half_w * np.cos(rel))

    run(world, 10, record)
    assert world.lane[0, 1] == 1
    assert abs(world.d[0, 1] - world.road.lane_centre[1]) < 0.05  # it did centre
    assert max(reach) <= 2 * world.road.lane_width + 0.3


def closing_road_world(vehicles):
    """Lane 1 of two closes with a 60 m taper at 500 m: traffic stops at 440 m."""
    road = Road(
        [Segment(5000, 0)], lanes=2, lane_width=4.0, spans=[LaneSpan(0, 5000), LaneSpan(0, 500, 60)]
    )
    traffic = TrafficModel(vehicles=vehicles, recycle_distance=1e5, politeness=(0.0, 0.0))
    world = World(WorldSpec(road=road, traffic=traffic), 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    world.place(0, 4500.0, 0, 0.0)
    return world


def test_car_stopped_at_a_lane_end_leaves_the_lane_from_a_standstill():
    """A car waiting at a closing lane's end moves over once it starts again, without its
    front passing the lane's stop (it used to slide sideways at a standstill; at a bounded
    angle it needs the room it stops short by)."""
    world = closing_road_world(vehicles=1)
    stop = world.road.lane_stop[1]
    world.place(1, stop - models.MERGE_RUN_OUT - 0.5 * world.length[0, 1], 1, 0.0)
    world.desired_speed[0, 1] = 12.0
    fronts = []

    def record():
        if world.lane[0, 1] == 1:
            fronts.append(world.s[0, 1] + 0.5 * world.length[0, 1])

    run(world, 15, record)
    assert world.lane[0, 1] == 0 and world.target_lane[0, 1] == 0
    assert max(fronts) <= stop
    assert world.speed[0, 1] > 5.0
    assert not world.crashed.any()


def test_car_in_a_suddenly_braking_spell_still_brakes_as_hard_as_its_leader_demands():
    """Sudden braking is a comfortable deceleration on top of car following, never a cap on it
    (a braking car used to slow at its comfortable 2-3 m/s² into a stalled car 40 m ahead)."""
    world = make_world(lanes=1, vehicles=1, obstacles=[Obstacle(STALLED, 0, 145.0)])
    world.place(1, 100.0, 0, 20.0)
    world.desired_speed[0, 1] = 20.0
    world.brake_timer[0, 1] = 4.0
    run(world, 10)
    assert not world.crashed.any()
    assert world.speed[0, 1] < 0.1


def test_cars_start_at_speeds_their_gaps_can_hold():
    """At reset every car is slow enough for its gap: in its first step it brakes no harder
    than its comfortable deceleration (Dense-v0 spawned 18 m/s cars 5 m behind 8 m/s ones)."""
    core = DrivingCore(make_options("dense"), 64)
    core.reset(np.ones(64, dtype=bool), np.arange(64))
    w = core.world
    w.command[layout.COMMAND_STEER] = w.command[layout.COMMAND_ACCEL] = 0.0
    w.autopilot[:] = False
    w.advance(1)
    cars = w.traffic
    assert (w.F[layout.ACCEL][:, cars] >= -w.comfort_decel[:, cars]).all()
    assert (w.speed[:, cars] > 1.0).mean() > 0.5  # yet most of them are moving


def test_a_car_finishes_its_lane_change_before_starting_another():
    """A car whose centre has just crossed into its new lane, its body still across the line,
    does not start a second change (its body would swing into the lane it left, where the
    lane index no longer holds it)."""
    world = make_world(lanes=3, vehicles=2, decision_period=0.2)
    world.place(1, 160.0, 1, 15.0)  # slow leader in the middle lane
    world.place(2, 110.0, 1, 28.0)  # fast car, just across from lane 0: on to lane 2
    world.desired_speed[0, 1:3] = (15.0, 30.0)
    world.d[0, 2] = 4.2
    world._refresh_lanes()
    offsets = []

    def record():
        if world.target_lane[0, 2] == 2:
            offsets.append(abs(world.d[0, 2] - world.road.lane_centre[1]))

    run(world, 10, record)
    assert offsets  # it did go on to lane 2 ...
    half_free = 0.5 * (world.road.lane_width - world.width[0, 2])
    assert offsets[0] <= half_free  # ... only once wholly inside lane 1


# ---------------------------------------------------------------- counting traffic-only crashes
def test_traffic_collisions_counts_cars_that_collide_without_the_ego():
    """Two cars that touch count one each; a car that touches the ego counts nothing, and the
    count is the episode's (a reset clears it)."""
    world = make_world(lanes=2, vehicles=3)
    world.place(0, 300.0, 0, 0.0)
    world.place(1, 100.0, 1, 0.0)
    world.place(2, 103.0, 1, 0.0)  # overlapping car 1
    world.place(3, 302.0, 0, 0.0)  # overlapping the ego
    run(world, 0.2)
    assert world.crashed[0].tolist()[:4] == [True, True, True, True]
    assert world.crashes_without_ego[0, 1:4].tolist() == [1, 1, 0]
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    assert world.crashes_without_ego.sum() == 0


def test_info_reports_traffic_collisions_of_the_episode():
    import gymnasium as gym

    env = gym.make("lanesim/Dense-v0")
    _, info = env.reset(seed=0)
    assert info["traffic_collisions"] == 0
    w = env.unwrapped.core.world
    w.place(2, float(w.s[0, 1]) + 1.0, int(w.lane[0, 1]), 0.0)  # car 2 onto car 1
    _, _, _, _, info = env.step(7)
    assert info["traffic_collisions"] == 2
    assert isinstance(info["traffic_collisions"], int)
    env.close()


def test_models_reach_the_kernels_by_name_and_refuse_values_their_fields_cannot_hold():
    record = models.as_record(TrafficModel(vehicles=3, safe_decel=4, desired_speed=(20, 25)))
    assert record.dtype["vehicles"] == np.int64 and record[0]["vehicles"] == 3
    assert record[0]["safe_decel"] == 4.0
    assert record[0]["desired_speed"].tolist() == [20.0, 25.0]
    with pytest.raises(ValueError, match=r"TrafficModel.vehicles must be an integer, got 2.5"):
        models.as_record(TrafficModel(vehicles=2.5))
