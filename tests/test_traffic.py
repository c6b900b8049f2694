"""Traffic behaviour: IDM car following and MOBIL lane changes, in the batched simulator."""

import numpy as np

from lanesim.sim.road import Road, Segment
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
    from lanesim.sim import kernels as K

    core = DrivingCore(make_options("highway"), 8)
    core.reset(np.ones(8, dtype=bool), np.arange(8))
    w = core.world
    w.command[K.COMMAND_STEER] = 0.0
    w.command[K.COMMAND_ACCEL] = 0.0
    checked = 0
    for _ in range(10):
        w.advance(15)
        for b in range(w.B):
            for e in range(1, 1 + w.V):
                for ahead in (True, False):
                    lane, s = int(w.lane[b, e]), float(w.s[b, e])
                    found = K._query(w._index, w._stride, w._shift, w.road.lanes, b, lane, s, ahead)
                    assert found != e
                    checked += 1
    assert checked == 10 * 8 * w.V * 2


def test_traffic_keeps_out_of_the_roadworks_cones():
    """Cars spawn, recycle and change lanes only where they can still stop before a closing
    lane's taper, and stop there (they used to spawn inside it and drive into the cones in 51
    of 64 worlds)."""
    from lanesim.envs.core import DrivingCore
    from lanesim.envs.options import make_options
    from lanesim.sim import kernels as K

    core = DrivingCore(make_options("roadworks"), 32)
    core.reset(np.ones(32, dtype=bool), np.arange(32))
    w = core.world
    w.command[K.COMMAND_LANE] = 0  # the ego crawls along the far lane, past the works
    w.command[K.COMMAND_SPEED] = 12.0
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
