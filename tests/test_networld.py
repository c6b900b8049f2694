"""The network simulator (lanesim.sim.networld): traffic that flows without collisions or
deadlock on the three bundled networks, determinism, car following through connectors,
yielding, lane changes toward a ramp, the ego tracked on the lanes, and its spec's errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from lanesim.sim import netstep
from lanesim.sim import state as netstate
from lanesim.sim.conflicts import conflict_table
from lanesim.sim.netego import open_route, plan_route, stack_routes
from lanesim.sim.network import Network
from lanesim.sim.networld import CAR, EGO, INACTIVE, NetWorld, NetWorldError, NetWorldSpec

NETWORKS = Path(__file__).resolve().parents[1] / "scenarios" / "networks"


def load(name: str) -> Network:
    with open(NETWORKS / f"{name}.toml", "rb") as f:
        return Network.from_dict(tomllib.load(f)["network"])


@pytest.fixture(scope="module")
def nets():
    return {name: load(name) for name in ("intersection", "roundabout", "exit")}


def state_arrays(world):
    return {k: v.copy() for k, v in world.state._asdict().items()}


# ---------------------------------------------------------------------- long runs
# Demand per entry lane (cars/s) at which each network runs below its capacity; the minor
# road's left turns at the intersection need gaps in five streams.
LONG_RUN = {"intersection": 0.06, "roundabout": 0.1, "exit": 0.15}


@pytest.mark.parametrize("name", sorted(LONG_RUN))
def test_traffic_flows_for_ten_thousand_seconds_without_collision_or_deadlock(nets, name):
    spec = NetWorldSpec(nets[name], slots=24, spawn_rate=LONG_RUN[name], dt=0.1)
    world = NetWorld(spec, 4)
    world.reset(seeds=np.arange(4) + 100)
    world.run(100_000)  # 10^4 s
    assert (world.time == pytest.approx(10_000.0))
    assert (world.traffic_crashes == 0).all()
    # Every car keeps moving: none stood still for more than four minutes in 10^4 s ...
    assert (world.max_stopped < 240.0).all(), world.max_stopped
    # ... and cars get through: all but those on the network now have left at an exit.
    active = (world.kind == CAR).sum(axis=1)
    assert (world.arrivals == world.spawned - active).all()
    demand = LONG_RUN[name] * len(world.graph.entries) * 10_000
    assert (world.spawned > 0.5 * demand).all()
    assert np.isfinite(world.x).all() and np.isfinite(world.u).all()


def test_fast_traffic_enters_slow_enough_to_stop_before_the_junction(nets):
    # 30-40 m/s on 100 m arms: a car entering at full speed could not stop for a car that had
    # just pulled out (2 crashes per 1000 s before the entry speed was capped).
    spec = NetWorldSpec(nets["intersection"], slots=24, spawn_rate=0.1, dt=0.1,
                        desired_speed=(30.0, 40.0))
    world = NetWorld(spec, 4)
    world.reset(seeds=np.arange(4))
    world.run(20_000)
    assert (world.traffic_crashes == 0).all()
    assert (world.spawned > 100).all()


def test_every_exit_is_reached(nets):
    # Destinations are drawn among the exit roads reachable from each entry.
    net = nets["roundabout"]
    world = NetWorld(NetWorldSpec(net, slots=24, spawn_rate=0.1, dt=0.1), 1)
    world.reset(seeds=[3])
    seen = set()
    for _ in range(300):
        world.run(10)
        seen |= {net.lanes[lane] for lane in world.lane[0][world.kind[0] == CAR]}
    assert {"east:-1", "north:-1", "west:-1", "south:-1"} <= seen


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_worlds_and_one_world_equals_its_batch(nets):
    spec = NetWorldSpec(nets["intersection"], slots=16, spawn_rate=0.1, dt=0.1)
    batch = NetWorld(spec, 3)
    batch.reset(seeds=[5, 6, 7])
    batch.run(3000)
    again = NetWorld(spec, 3)
    again.reset(seeds=[5, 6, 7])
    for _ in range(3):
        again.run(1000)  # in pieces: the same steps
    alone = NetWorld(spec, 1)
    alone.reset(seeds=[6])
    alone.run(3000)
    a, b, c = state_arrays(batch), state_arrays(again), state_arrays(alone)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        if a[key].ndim and a[key].shape[0] == 3:
            np.testing.assert_array_equal(a[key][1], c[key][0], err_msg=key)
    assert batch.spawned[1] > 10
    # Another seed gives other traffic.
    assert not np.array_equal(a["x"][0], a["x"][1])


def test_a_world_steps_the_same_in_a_batch_split_across_threads(nets):
    spec = NetWorldSpec(nets["roundabout"], slots=16, spawn_rate=0.1, dt=0.1)
    batch = NetWorld(spec, 64)  # large enough for the thread pool
    batch.reset(seeds=np.arange(64))
    batch.run(1000)
    batch.close()
    alone = NetWorld(spec, 1)
    alone.reset(seeds=[63])
    alone.run(1000)
    for key, a in state_arrays(batch).items():
        if a.ndim and a.shape[0] == 64:
            np.testing.assert_array_equal(a[63], getattr(alone.state, key)[0], err_msg=key)


def test_warmup_starts_episodes_among_traffic_with_room_around_the_ego(nets):
    net = nets["roundabout"]
    spec = NetWorldSpec(net, slots=16, spawn_rate=0.1, dt=0.1, warmup=120.0, ego_lane="east:0",
                        ego_u=50.0, ego_speed=8.0)
    batch = NetWorld(spec, 3)
    batch.reset(seeds=[4, 5, 6])
    assert ((batch.kind == CAR).sum(axis=1) >= 3).all()
    assert (batch.time == 0.0).all() and (batch.spawned == 0).all()
    ego_lane = net.lane("east:0")
    behind = (batch.kind == CAR) & (batch.lane == ego_lane) & (batch.u > 10.0) & (batch.u < 65.0)
    assert not behind.any()
    assert (batch.kind[:, 0] == EGO).all() and (batch.u[:, 0] == 50.0).all()
    alone = NetWorld(spec, 1)
    alone.reset(seeds=[5])
    for key, a in state_arrays(batch).items():
        if a.ndim and a.shape[0] == 3:
            np.testing.assert_array_equal(a[1], getattr(alone.state, key)[0], err_msg=key)
    # Resetting one world leaves the others as they are.
    before = state_arrays(batch)
    batch.reset(worlds=[0], seeds=[9])
    np.testing.assert_array_equal(batch.x[1:], before["x"][1:])
    assert not np.array_equal(batch.x[0], before["x"][0])


# ---------------------------------------------------------------------- car following
def test_car_follows_a_stalled_car_across_a_connector(nets):
    net = nets["intersection"]
    world = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.1), 1)
    world.reset()
    world.place(0, 1, "west.0>east.-1:0", 8.0, 0.0, "east:-1", crashed=True)
    world.place(0, 2, "west:0", 60.0, 12.0, "east:-1")
    sc = world.scratch
    netstep.build_entries(world.state, sc, net.arrays, world.graph, world.routes, world.params,
                          0)
    netstep.find_leader(world.state, sc, net.arrays, world.graph, world.params, 0, 2,
                        sc.best[0])
    assert sc.lead[0, 2] == 1
    length = world.length[0]
    expected = (100.0 - 60.0) + 8.0 - 0.5 * (length[1] + length[2])
    assert sc.lead_gap[0, 2] == pytest.approx(expected)
    world.run(300)
    assert not world.crashed[0, 2]
    assert world.speed[0, 2] < 0.1
    gap = 8.0 - world.u[0, 2] if world.lane[0, 2] == world.lane[0, 1] else (
        100.0 - world.u[0, 2] + 8.0)
    gap -= 0.5 * (length[1] + length[2])
    assert 0.5 < gap < 5.0


def test_car_behind_on_the_other_branch_of_a_diverge_waits(nets):
    # A car turning left just behind one going straight follows it while the branches overlap.
    net = nets["intersection"]
    world = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.1), 1)
    world.reset()
    world.place(0, 1, "west.0>east.-1:0", 4.0, 0.0, "east:-1", crashed=True)
    world.place(0, 2, "west:0", 85.0, 8.0, "north:-1")
    world.run(200)
    assert not world.crashed[0, 2]
    assert world.traffic_crashes[0] == 0


# ---------------------------------------------------------------------- right of way
def crossing_run(net, with_main: bool):
    """A minor-road car going straight across, with or without a main-road car that arrives
    at the crossing at about the same time: the step the minor car's front enters its zone,
    the step the main car's rear leaves its own, and the minor car's lowest speed."""
    minor, main = net.lane("south.0>north.-1:0"), net.lane("west.0>east.-1:0")
    (z0, _), (_, w1), _ = conflict(net, "south.0>north.-1:0", "west.0>east.-1:0")
    world = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.05), 1)
    world.reset()
    world.place(0, 1, "south:0", 70.0, 10.0, "north:-1", desired_speed=12.0)
    if with_main:
        world.place(0, 2, "west:0", 55.0, 13.0, "east:-1", desired_speed=13.0)
    minor_in = main_out = None
    slowest = np.inf
    for k in range(400):
        world.step(0.0, 0.0)
        half = 0.5 * world.length[0]
        if minor_in is None and world.lane[0, 1] == minor and world.u[0, 1] + half[1] >= z0:
            minor_in = k
        if with_main and main_out is None and (
                (world.lane[0, 2] == main and world.u[0, 2] - half[2] > w1)
                or world.lane[0, 2] == net.lane("east:-1")):
            main_out = k
        if world.kind[0, 1] == CAR:
            slowest = min(slowest, world.speed[0, 1])
    return world, minor_in, main_out, slowest


def conflict(net, a, b):
    """The conflict between lanes named a and b: (a's zone, b's zone, a yields)."""
    ia, ib = net.lane(a), net.lane(b)
    for la, lb, za0, za1, zb0, zb1, a_yields, _ in conflict_table(net):
        if (la, lb) == (ia, ib):
            return (za0, za1), (zb0, zb1), a_yields
        if (la, lb) == (ib, ia):
            return (zb0, zb1), (za0, za1), not a_yields
    raise AssertionError(f"no conflict between {a} and {b}")


def test_minor_road_car_yields_to_a_main_road_car(nets):
    net = nets["intersection"]
    world, minor_in, main_out, slowest = crossing_run(net, with_main=True)
    assert world.traffic_crashes[0] == 0 and not world.crashed[0].any()
    assert main_out is not None and minor_in is not None
    assert main_out <= minor_in  # the main car had left the crossing before the minor entered
    assert slowest < 5.0  # the minor car slowed down for it (from 10 m/s)
    # Alone, the minor car drives straight through, sooner.
    _, minor_in_alone, _, slowest_alone = crossing_run(net, with_main=False)
    assert minor_in_alone < minor_in
    assert slowest_alone > 5.0


def test_roundabout_entry_waits_for_circulating_traffic(nets):
    net = nets["roundabout"]
    world = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.05), 1)
    world.reset()
    merged = net.lane("ring_east_b:1")  # where the east entry joins the ring
    world.place(0, 1, "ring_south_b:1", 2.0, 8.0, "north:-1")
    world.place(0, 2, "east:0", 80.0, 8.0, "west:-1")
    order = []
    for _ in range(400):
        world.step(0.0, 0.0)
        for e in (1, 2):
            if world.lane[0, e] == merged and e not in order:
                order.append(e)
    assert not world.crashed[0].any()
    assert order == [1, 2]  # the circulating car first
    # Alone, the entering car is first there sooner.
    alone = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.05), 1)
    alone.reset()
    alone.place(0, 2, "east:0", 80.0, 8.0, "west:-1")
    steps = [0, 0]
    for w, k in ((world, 0), (alone, 1)):
        w.reset()
        w.place(0, 2, "east:0", 80.0, 8.0, "west:-1")
        if k == 0:
            w.place(0, 1, "ring_south_b:1", 2.0, 8.0, "north:-1")
        while w.lane[0, 2] != merged:
            w.step(0.0, 0.0)
            steps[k] += 1
    assert steps[1] < steps[0]


def test_minor_road_car_yields_to_the_ego_on_the_main_road(nets):
    # The ego counts at conflicts as traffic does, heading along its route (here the open
    # route: straight on).
    net = nets["intersection"]
    spec = NetWorldSpec(net, slots=2, spawn_rate=0.0, dt=0.05, ego_lane="west:0", ego_u=55.0,
                        ego_speed=13.0)
    world = NetWorld(spec, 1)
    world.reset()
    world.place(0, 1, "south:0", 70.0, 10.0, "north:-1", desired_speed=12.0)
    slowest = np.inf
    for _ in range(200):  # 10 s: the ego is 130 m on, past the junction
        world.step(0.0, 0.0)
        if world.kind[0, 1] == CAR:
            slowest = min(slowest, world.speed[0, 1])
    assert not world.crashed[0].any()
    assert world.lane[0, 0] == net.lane("east:-1")
    assert world.lane[0, 1] in (net.lane("south.0>north.-1:0"), net.lane("north:-1"))
    assert slowest < 5.0


# ---------------------------------------------------------------------- lane changes
def test_car_changes_lanes_toward_the_ramp(nets):
    net = nets["exit"]
    world = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.1), 1)
    world.reset()
    world.place(0, 1, "approach:1", 300.0, 12.0, "ramp:0")
    lanes = []
    for _ in range(600):
        world.step(0.0, 0.0)
        if world.kind[0, 1] == CAR:
            lanes.append(net.lanes[world.lane[0, 1]])
    assert "approach:2" in lanes and "decel:3" in lanes
    assert "ramp:0" in lanes  # it took the off-ramp
    assert world.kind[0, 1] == INACTIVE and world.arrivals[0] == 1  # and left at its end


def test_lane_change_waits_for_a_car_alongside(nets):
    net = nets["exit"]
    world = NetWorld(NetWorldSpec(net, slots=4, spawn_rate=0.0, dt=0.1), 1)
    world.reset()
    world.place(0, 1, "approach:1", 300.0, 12.0, "main:2", desired_speed=12.0)
    world.place(0, 2, "approach:2", 301.0, 12.0, "main:2", desired_speed=12.0)
    world.run(10)  # one decision: the car alongside blocks it
    assert world.lane[0, 1] == net.lane("approach:1")
    assert world.state.change[0, 1] == 0
    world.run(600)
    assert world.traffic_crashes[0] == 0


# ---------------------------------------------------------------------- the ego
def test_ego_is_tracked_through_a_connector_and_off_the_road(nets):
    net = nets["intersection"]
    spec = NetWorldSpec(net, slots=2, spawn_rate=0.0, dt=0.1, ego_lane="west:0", ego_u=60.0,
                        ego_speed=10.0)
    world = NetWorld(spec, 2)  # the open route: straight on at the junction
    world.reset()
    assert (world.kind[:, 0] == EGO).all()
    seen = []
    for _ in range(80):
        world.step(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
        seen.append(net.lanes[world.lane[0, 0]])
    assert seen[0] == "west:0" and "west.0>east.-1:0" in seen and seen[-1] == "east:-1"
    x = world.x[0, 0]
    assert world.u[0, 0] == pytest.approx(x - 10.0, abs=1e-6)  # east:-1 starts at x = 10
    assert abs(world.offset[0, 0]) < 1e-6
    # Steering left leaves the road: lane -1, coordinates 0, never NaN; the trace says so.
    trace = world.run(60, steer=np.array([0.05, 0.0]), accel=0.0, trace=True)
    assert world.lane[0, 0] == -1 and world.u[0, 0] == 0.0 and world.offset[0, 0] == 0.0
    assert world.lane[1, 0] >= 0
    assert trace.shape == (netstep.N_NET_TRACE, 2, 60)
    assert trace[netstep.NT_OFFROAD, 0, -1] == 1.0 and trace[netstep.NT_LANE, 0, -1] == -1
    assert trace[netstep.NT_OFFROAD, 1].max() == 0.0
    # World 1 drove straight on: all its speed along the lane (the open route has no goal:
    # metres along its lane per step), centred, no heading error.
    np.testing.assert_allclose(trace[netstep.NT_ALONG, 1], 10.0 * world.dt)
    np.testing.assert_allclose(trace[netstep.NT_HEADING_ERROR, 1], 0.0, atol=1e-9)
    assert trace[netstep.NT_LANE, 1, -1] == world.lane[1, 0]
    # World 0 veered left: its heading error grew and its offset went left (negative).
    assert trace[netstep.NT_HEADING_ERROR, 0, 10] > 0.0
    assert trace[netstep.NT_OFFSET, 0, 10] < 0.0


def test_ego_autopilot_follows_its_route_through_a_left_turn_among_traffic(nets):
    net = nets["intersection"]
    spec = NetWorldSpec(net, slots=8, spawn_rate=0.05, dt=0.1, ego_lane="west:0", ego_u=20.0,
                        ego_speed=8.0)
    routes = stack_routes([open_route(net), plan_route(net, "north:-1", 50.0)])
    world = NetWorld(spec, 2, routes=routes)
    world.reset(seeds=[1, 2])
    world.set_ego_route(slice(None), 1)
    lanes = set()
    for _ in range(55):  # 22 s: 176 m at 8 m/s
        world.drive(4, "west:0", 8.0)
        lanes |= {net.lanes[lane] for lane in world.lane[:, 0] if lane >= 0}
    assert "west.0>north.-1:0" in lanes and "west.0>east.-1:0" not in lanes
    assert (world.lane[:, 0] == net.lane("north:-1")).all()
    assert (np.abs(world.offset[:, 0]) < 0.5).all()
    assert (world.spawned > 0).all() and not world.crashed[:, 0].any()
    # The target lane was carried onto each new road as the ego went.
    assert (world.command[netstate.COMMAND_LANE] == net.lane("north:-1")).all()


def test_traffic_brakes_for_the_ego_and_a_crash_is_not_counted_as_traffic(nets):
    net = nets["intersection"]
    spec = NetWorldSpec(net, slots=2, spawn_rate=0.0, dt=0.1, ego_lane="west:0", ego_u=60.0,
                        ego_speed=0.0)
    world = NetWorld(spec, 1)
    world.reset()
    world.place(0, 1, "west:0", 10.0, 12.0, "east:-1")
    world.run(150)  # the ego stands still
    assert not world.crashed[0].any()
    assert world.speed[0, 1] < 0.1 and world.x[0, 1] < world.x[0, 0] - 4.0
    # Reversing into the car is a crash with the ego: not a traffic-only one.
    world.state.x[0, 0] = world.x[0, 1] + 3.0
    world.step(0.0, 0.0)
    assert world.crashed[0, 0] and world.crashed[0, 1]
    assert world.traffic_crashes[0] == 0


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"slots": -1}, "slots must be an integer from 0 to 256"),
        ({"slots": 1.5}, "slots must be an integer"),
        ({"spawn_rate": 9.0}, "spawn_rate must be a number from 0 to 5"),
        ({"desired_speed": (20.0, 10.0)}, "desired_speed must be a pair (low, high)"),
        ({"dt": 0.0}, "dt must be a number from 0.01 to 0.2"),
        ({"dt": float("nan")}, "dt must be"),
        ({"decision_period": 0.01}, "decision_period must be a number from 0.0666667"),
        ({"ego_lane": "nowhere:0"}, "ego_lane: lane 'nowhere:0': no road 'nowhere'"),
        ({"ego_lane": "west:0", "ego_u": 150.0}, "ego_u must be a number from 0 to 100"),
        ({"ego_lane": "west:0", "ego_speed": -1.0}, "ego_speed must be a number from 0 to 40"),
        ({"warmup": 601.0}, "warmup must be a number from 0 to 600 s"),
    ],
)
def test_bad_spec_values_are_named_with_what_is_accepted(nets, change, words):
    with pytest.raises(NetWorldError) as err:
        NetWorldSpec(nets["intersection"], **change)
    assert words in str(err.value)


def test_bad_call_arguments_are_named(nets):
    world = NetWorld(NetWorldSpec(nets["exit"], slots=2), 2)
    with pytest.raises(NetWorldError, match="n_worlds must be an integer from 1"):
        NetWorld(NetWorldSpec(nets["exit"]), 0)
    with pytest.raises(NetWorldError, match=r"steer must be a number or shape \(2,\)"):
        world.step(np.zeros(3), 0.0)
    with pytest.raises(NetWorldError, match="accel must be finite"):
        world.step(0.0, np.array([np.nan, 0.0]))
    with pytest.raises(NetWorldError, match="seeds must be 2 non-negative integers"):
        world.reset(seeds=[-1, 2])
    with pytest.raises(NetWorldError, match="exit_lane 'decel:0' is not an exit lane"):
        world.place(0, 1, "approach:0", 10.0, 10.0, "decel:0")
    with pytest.raises(NetWorldError, match="slot must be a traffic slot 1 to 2"):
        world.place(0, 0, "approach:0", 10.0, 10.0, "main:0")


@pytest.mark.parametrize("name", ["intersection", "roundabout", "exit"])
def test_each_network_scenarios_own_traffic_flows_for_ten_thousand_seconds(name):
    """The bundled scenarios' own traffic (their cars, demand, speeds and step), without the
    ego: no collision, nobody stuck, everyone who entered leaves or is still on the way."""
    from dataclasses import replace

    from lanesim.envs.options import build_network, make_options
    from lanesim.sim.netrun import build_net_spec

    options = make_options(name)
    spec = replace(build_net_spec(options, build_network(options.network)).world, ego_lane=None)
    world = NetWorld(spec, 2)
    world.reset(seeds=np.array([5, 6]))
    warmed = (world.kind == CAR).sum(axis=1)  # on the network after the warm-up
    assert (warmed > 0).all()
    world.run(round(10_000.0 / spec.dt))
    assert world.time == pytest.approx(10_000.0)
    assert (world.traffic_crashes == 0).all()
    assert (world.max_stopped < 240.0).all(), world.max_stopped
    active = (world.kind == CAR).sum(axis=1)
    assert (world.arrivals == warmed + world.spawned - active).all()
    assert (world.spawned > 1000).all()
