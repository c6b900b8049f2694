"""The ego on a road network: routes to a goal, remaining distance, wrong turns, lane tracking
and the route-following autopilot, driven alone on the bundled junction networks."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from lanesim.sim import netego
from lanesim.sim.models import AUTOPILOT_SPEED_GAIN, EgoModel, as_record
from lanesim.sim.network import Network, NetworkError, RoadSpec, locate
from lanesim.sim.road import Segment

NETWORKS = Path(__file__).resolve().parents[1] / "scenarios" / "networks"
ARMS = ("west", "east", "north", "south")
MODEL = EgoModel()
EGO = as_record(MODEL)[0]
DT = 0.1


def load(name: str) -> Network:
    with open(NETWORKS / f"{name}.toml", "rb") as f:
        return Network.from_dict(tomllib.load(f)["network"])


@pytest.fixture(scope="module")
def nets():
    return {name: load(name) for name in ("intersection", "roundabout", "exit")}


def drive(net, route, start, speed, steps=1500, u0=5.0, decide_every=5, stop_on_arrival=True,
          g=0):
    """The ego alone from ``u0`` on lane ``start`` at ``speed`` (m/s), on the autopilot at that
    speed, moved by the kinematic bicycle of lanesim.sim.ego.move_ego; every ``decide_every``
    steps it takes the lane change the route asks for, as an agent would. Returns per step
    (before moving) the tracked lane, u, offset, remaining, speed, and whether a lane change
    was commanded within the last 5 s."""
    arrays = net.arrays
    lane = net.lane(start)
    x, y, h = (float(a) for a in net.lane_to_world(lane, u0))
    v, target, since_change = speed, lane, math.inf
    log = {key: [] for key in ("lane", "u", "offset", "remaining", "speed", "changing", "x")}
    arrived = False
    for k in range(steps):
        lane, u, offset = netego.track(arrays, route, g, lane, x, y)
        target = netego.resolve_target(arrays, route, lane, target)
        if k % decide_every == 0 and target == lane:
            _, change = netego.route_lane(route, g, lane)
            if change:
                target, since_change = netego.neighbour(route, lane, change), 0.0
        for key, value in (("lane", lane), ("u", u), ("offset", offset), ("speed", v),
                           ("remaining", netego.remaining(arrays, route, g, lane, u)),
                           ("changing", since_change < 5.0), ("x", (x, y, h))):
            log[key].append(value)
        if lane < 0 or (stop_on_arrival and netego.arrived(route, g, lane, u)):
            arrived = lane >= 0
            break
        steer, accel = netego.autopilot(arrays, route, g, EGO, x, y, h, v, lane, target, speed,
                                        DT)
        beta = math.atan(0.5 * math.tan(steer))
        x += v * math.cos(h + beta) * DT
        y += v * math.sin(h + beta) * DT
        h = h + v * math.sin(beta) / (0.5 * MODEL.wheelbase) * DT
        v = min(max(v + accel * DT, 0.0), MODEL.max_speed)
        since_change += DT
    out = {key: np.array(value) for key, value in log.items()}
    out["arrived"] = arrived
    return out


def assert_drove_the_route(net, run, max_offset=0.3):
    assert run["arrived"]
    assert (run["lane"] >= 0).all(), "the ego left the road"
    calm = ~run["changing"]
    assert np.abs(run["offset"][calm]).max() < max_offset
    # remaining falls by the distance driven each step, through lane ends, connectors and lane
    # changes, within 3 %: it counts along lane centres, and the ego's path runs up to 0.3 m
    # beside them on a junction's 8 m radius (and slants across in a lane change).
    fall = -np.diff(run["remaining"])[:-1]  # the last step overshoots the arrival (0)
    driven = run["speed"][:-2] * DT
    worst = np.abs(fall - driven) / driven
    assert worst.max() <= 0.03, (int(worst.argmax()), worst.max())
    assert np.all(np.diff(run["remaining"]) <= 0.0)


def lane_path(net, run):
    names = [net.lanes[i] for i in run["lane"]]
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]


# ---------------------------------------------------------------------- driving the routes
@pytest.mark.parametrize("speed", [8.0, 25.0])
@pytest.mark.parametrize("entry", ARMS)
def test_the_autopilot_drives_every_turn_of_the_intersection_to_its_exit(nets, entry, speed):
    net = nets["intersection"]
    for exit_ in ARMS:
        if exit_ == entry:
            continue
        route = netego.plan_route(net, f"{exit_}:-1", 30.0, start=f"{entry}:0")
        run = drive(net, route, f"{entry}:0", speed)
        assert_drove_the_route(net, run)
        connector = f"{entry}.0>{exit_}.-1:0"
        assert lane_path(net, run) == [f"{entry}:0", connector, f"{exit_}:-1"]
        # It starts 5 m in: remaining is the route's length from there.
        length = net.lane_length(net.lane(f"{entry}:0")) + net.lane_length(net.lane(connector))
        assert run["remaining"][0] == pytest.approx(length - 5.0 + 30.0, abs=1e-9)


@pytest.mark.parametrize("speed", [8.0, 25.0])
@pytest.mark.parametrize("entry", ARMS)
def test_the_autopilot_goes_round_the_roundabout_to_every_exit_in_the_outer_lane(nets, entry,
                                                                                  speed):
    net = nets["roundabout"]
    for exit_ in ARMS:  # its own arm too: once round
        route = netego.plan_route(net, f"{exit_}:-1", 30.0, start=f"{entry}:0")
        run = drive(net, route, f"{entry}:0", speed)
        assert_drove_the_route(net, run)
        path = lane_path(net, run)
        assert path[0] == f"{entry}:0" and path[-1] == f"{exit_}:-1"
        ring = [p for p in path if p.startswith("ring_") and ">" not in p]
        assert ring and all(p.endswith(":1") for p in ring)
        # Each quarter of the ring is two lanes (a, b); the entry joins at the entry arm's b.
        order = ["east", "north", "west", "south"]
        turns = (order.index(exit_) - order.index(entry)) % 4 or 4
        assert len(ring) == 2 * turns - 1, ring


def test_the_exit_route_changes_lanes_early_and_takes_the_ramp(nets):
    net = nets["exit"]
    route = netego.plan_route(net, "ramp:0", 100.0, start="approach:0")
    for speed in (15.0, 25.0, 30.0):
        run = drive(net, route, "approach:0", speed)
        assert_drove_the_route(net, run)
        assert lane_path(net, run) == ["approach:0", "approach:1", "approach:2", "decel:2",
                                       "decel:3", "decel.3>ramp.0:0", "ramp:0"]


def test_open_driving_keeps_going_straight_and_never_runs_off_a_lane_end(nets):
    for name, entries in (("intersection", [f"{a}:0" for a in ARMS]),
                          ("roundabout", [f"{a}:0" for a in ARMS]),
                          ("exit", ["approach:0", "approach:1", "approach:2"])):
        net = nets[name]
        route = netego.open_route(net)
        for entry in entries:
            run = drive(net, route, entry, 12.0, steps=800, stop_on_arrival=False)
            assert not run["arrived"] and np.isinf(run["remaining"]).all()
            lanes = run["lane"]
            if lanes[-1] < 0:
                # Off the road only past the end of a lane that has no successor.
                last = lanes[-2]
                assert not net.successors(last) and run["u"][-2] > net.lane_length(last) - 1.5
            assert np.abs(run["offset"][lanes >= 0]).max() < 0.1
            path = lane_path(net, {"lane": lanes[lanes >= 0]})
            if name == "intersection":
                opposite = {"west": "east", "east": "west", "north": "south", "south": "north"}
                arm = entry.split(":")[0]
                assert path[-1] == f"{opposite[arm]}:-1"
            elif name == "exit":
                assert path[-1].startswith("main:")  # straight on, not the ramp


def test_driving_twice_gives_the_same_trajectory(nets):
    net = nets["roundabout"]
    route = netego.plan_route(net, "west:-1", 30.0)
    a = drive(net, route, "south:0", 14.0)
    b = drive(net, route, "south:0", 14.0)
    for key in ("lane", "u", "offset", "remaining", "x"):
        assert np.array_equal(a[key], b[key])


def test_the_autopilot_holds_lanes_on_a_curve_at_highway_speed():
    # Two lanes on a 300 m radius left bend after a straight: a lane change to the right lane
    # at 30 m/s, then the ego keeps to its centre through the bend.
    net = Network([_road("bend", [Segment(200.0, 0.0), Segment(400.0, 1 / 300.0)], lanes=2)])
    route = netego.open_route(net)
    arrays = net.arrays
    lane = net.lane("bend:0")
    x, y, h = (float(a) for a in net.lane_to_world(lane, 10.0))
    v, target = 30.0, net.lane("bend:1")
    offsets = []
    for _ in range(180):
        lane, u, offset = netego.track(arrays, route, 0, lane, x, y)
        offsets.append((lane, offset))
        steer, accel = netego.autopilot(arrays, route, 0, EGO, x, y, h, v, lane, target, v, DT)
        beta = math.atan(0.5 * math.tan(steer))
        x += v * math.cos(h + beta) * DT
        y += v * math.sin(h + beta) * DT
        h = h + v * math.sin(beta) / (0.5 * MODEL.wheelbase) * DT
    lanes = np.array([o[0] for o in offsets])
    assert lanes[-1] == target
    crossed = int(np.argmax(lanes == target))
    assert 1.0 <= crossed * DT <= 3.0  # the bounded lateral speed: about 1.2 s to the line
    late = np.array([o[1] for o in offsets[crossed + 50:]])  # 5 s after the crossing
    assert np.abs(late).max() < 0.1


# ---------------------------------------------------------------------- the route itself
def test_remaining_has_no_jump_where_a_lane_ends(nets):
    for net, goal in ((nets["intersection"], "north:-1"), (nets["roundabout"], "south:-1"),
                      (nets["exit"], "ramp:0")):
        route = netego.plan_route(net, goal, 20.0)
        arrays = net.arrays
        checked = 0
        for lane in range(len(net.lanes)):
            nxt, change = netego.route_lane(route, 0, lane)
            end = netego.remaining(arrays, route, 0, lane, net.lane_length(lane))
            # Where the route changes lanes first, going on in this lane leaves it.
            if change or nxt < 0 or not np.isfinite(end) or not route.reaches[0, nxt]:
                continue
            if netego.arrived(route, 0, lane, net.lane_length(lane)):
                continue
            assert end == pytest.approx(netego.remaining(arrays, route, 0, nxt, 0.0), abs=1e-9)
            checked += 1
        assert checked >= 3


def test_the_exit_route_asks_for_lane_changes_as_early_as_it_can(nets):
    net = nets["exit"]
    route = netego.plan_route(net, "ramp:0", 100.0)
    ask = {name: netego.route_lane(route, 0, net.lane(name)) for name in net.lanes}
    lane = net.lane
    assert ask["approach:0"] == (lane("decel:0"), netego.RIGHT)
    assert ask["approach:1"] == (lane("decel:1"), netego.RIGHT)
    assert ask["approach:2"] == (lane("decel:2"), 0)
    assert ask["decel:2"][1] == netego.RIGHT
    assert ask["decel:3"] == (lane("decel.3>ramp.0:0"), 0)
    # Lane changes cost no distance: the same place in any approach lane is as far away.
    arrays = net.arrays
    far = [netego.remaining(arrays, route, 0, lane(f"approach:{i}"), 123.0) for i in range(3)]
    lengths = sum(net.lane_length(lane(n)) for n in ("approach:2", "decel:3", "decel.3>ramp.0:0"))
    assert far == pytest.approx([lengths - 123.0 + 100.0] * 3, abs=1e-9)
    # Past the decel lane the ramp is out of reach; before it, lane changes still reach it.
    assert netego.wrong_turn(route, 0, lane("main:2"))
    assert not netego.wrong_turn(route, 0, lane("decel:0"))
    assert np.isinf(netego.remaining(arrays, route, 0, lane("main:0"), 0.0))


def test_a_route_weaves_across_the_ring_only_when_lane_changes_are_cheap(nets):
    net = nets["roundabout"]
    path = ["ring_east_b", "ring_north_a", "ring_north_b", "ring_west_a", "ring_west_b"]
    # Twice round a quarter at the default cost: the outer lane all the way.
    route = netego.plan_route(net, "south:-1", 30.0)
    assert all(netego.route_lane(route, 0, net.lane(f"{r}:1"))[1] == 0 for r in path)
    # At 1 m a change, the shorter inner lane wins: the route asks to move left on entry.
    cheap = netego.plan_route(net, "south:-1", 30.0, lane_change_cost=1.0)
    assert netego.route_lane(cheap, 0, net.lane("ring_east_b:1"))[1] == netego.LEFT
    entry = net.lane("east.0>ring_east_b.1:0")
    arrays = net.arrays
    assert (netego.remaining(arrays, cheap, 0, entry, 0.0)
            < netego.remaining(arrays, route, 0, entry, 0.0) - 5.0)


def test_wrong_turn_fires_on_the_connector_the_route_does_not_take(nets):
    net = nets["intersection"]
    to_north = netego.plan_route(net, "north:-1", 30.0, start="west:0")
    to_east = netego.plan_route(net, "east:-1", 30.0, start="west:0")
    run = drive(net, to_east, "west:0", 10.0)  # straight on, where to_north turns left
    wrong = np.array([netego.wrong_turn(to_north, 0, lane) for lane in run["lane"]])
    first = int(np.argmax(wrong))
    assert wrong.any() and wrong[first:].all() and not wrong[:first].any()
    assert net.lanes[run["lane"][first]] == "west.0>east.-1:0"
    remaining = np.array([netego.remaining(net.arrays, to_north, 0, lane, u)
                          for lane, u in zip(run["lane"], run["u"], strict=True)])
    assert np.isfinite(remaining[:first]).all() and np.isinf(remaining[first:]).all()
    assert not any(netego.wrong_turn(netego.open_route(net), 0, lane) for lane in run["lane"])


def test_arrival_is_on_a_goal_lane_at_the_arrival_point(nets):
    net = nets["exit"]
    route = netego.plan_route(net, ["main:0", "main:1"], 50.0)
    main0, main2 = net.lane("main:0"), net.lane("main:2")
    assert not netego.arrived(route, 0, main0, 49.9)
    assert netego.arrived(route, 0, main0, 50.0)
    assert not netego.arrived(route, 0, main2, 300.0)  # not a goal lane
    assert not netego.arrived(route, 0, -1, 300.0)
    assert netego.remaining(net.arrays, route, 0, main0, 80.0) == 0.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"goal": "nowhere:0"}, "goal: lane 'nowhere:0': no road 'nowhere'"),
    ({"goal": "west:3"}, "road 'west' has lanes 0 and -1"),
    ({"goal": 99}, "goal: no lane 99"),
    ({"goal": []}, "name at least one goal lane"),
    ({"goal": [1.5]}, "a lane is a name like"),
    ({"arrive_u": 150.0}, "arrive_u must be a number from 0 to 100.00 m"),
    ({"arrive_u": float("nan")}, "arrive_u must be a number"),
    ({"lane_change_cost": 0.0}, "lane_change_cost must be a number from 1 to 10,000 m"),
    ({"start": "west:0", "goal": "west:-1"},
     "goal west:-1 cannot be reached from start lane west:0"),
    ({"start": "west:7"}, "start: lane 'west:7'"),
])
def test_bad_goals_are_refused_naming_what_is_wrong(nets, kwargs, message):
    args = {"goal": "north:-1", "arrive_u": 30.0, **kwargs}
    with pytest.raises(NetworkError, match=message.replace("(", r"\(")):
        netego.plan_route(nets["intersection"], **args)


# ---------------------------------------------------------------------- tracking and frames
def test_tracking_keeps_the_connector_the_ego_is_on_where_connectors_overlap(nets):
    net = nets["intersection"]
    arrays = net.arrays
    route = netego.plan_route(net, "north:-1", 30.0)
    left = net.lane("west.0>north.-1:0")
    straight = net.lane("west.0>east.-1:0")
    # Just into the left turn its strip still overlaps the straight connector's, whose centre
    # is nearer: the global search says straight, tracking from the left turn keeps it.
    x, y, _ = (float(a) for a in net.lane_to_world(left, 3.0, 0.6))
    assert locate(arrays, x, y)[0] == straight
    lane, u, offset = netego.track(arrays, route, 0, left, x, y)
    assert lane == left and u == pytest.approx(3.0, abs=1e-9)
    assert offset == pytest.approx(0.6, abs=1e-9)
    # From the end of west:0 the route's connector is taken first.
    x, y, _ = (float(a) for a in net.lane_to_world(left, 0.5, 0.0))
    assert netego.track(arrays, route, 0, net.lane("west:0"), x, y)[0] == left
    # Without a hint, or off the road, it is the global search's answer.
    assert netego.track(arrays, route, 0, -1, x, y) == locate(arrays, x, y)
    off = netego.track(arrays, route, 0, left, 50.0, 50.0)
    assert off[0] == -1 and math.isnan(off[1]) and math.isnan(off[2])


def test_tracking_moves_to_the_neighbour_a_lane_change_reaches(nets):
    net = nets["exit"]
    arrays = net.arrays
    route = netego.open_route(net)
    a1, a2 = net.lane("approach:1"), net.lane("approach:2")
    x, y, _ = (float(a) for a in net.lane_to_world(a1, 200.0, 1.8))  # across the line
    lane, u, offset = netego.track(arrays, route, 0, a1, x, y)
    assert lane == a2 and u == pytest.approx(200.0) and offset == pytest.approx(1.8 - 3.5)


def test_a_lane_change_target_follows_the_ego_onto_the_next_road(nets):
    net = nets["exit"]
    arrays = net.arrays
    route = netego.open_route(net)
    lane = net.lane
    assert netego.resolve_target(arrays, route, lane("decel:1"), lane("approach:2")) == \
        lane("decel:2")
    assert netego.resolve_target(arrays, route, lane("approach:1"), lane("decel:2")) == \
        lane("approach:2")
    assert netego.resolve_target(arrays, route, lane("main:1"), lane("approach:2")) == \
        lane("main:1")
    assert netego.neighbour(route, lane("decel:2"), netego.RIGHT) == lane("decel:3")
    assert netego.neighbour(route, lane("decel:0"), netego.LEFT) == -1


def test_neighbours_are_seen_in_each_lanes_direction_of_travel():
    net = Network([_road("two", [Segment(100.0, 0.0)], lanes=2, lanes_back=2)])
    route = netego.open_route(net)
    side = {name: (netego.neighbour(route, net.lane(name), netego.LEFT),
                   netego.neighbour(route, net.lane(name), netego.RIGHT)) for name in net.lanes}
    lane = net.lane
    assert side["two:0"] == (-1, lane("two:1"))
    assert side["two:1"] == (lane("two:0"), -1)
    # Against the reference line, lane -1 is beside the centre line: on its travel's left.
    assert side["two:-1"] == (-1, lane("two:-2"))
    assert side["two:-2"] == (lane("two:-1"), -1)


def test_lane_errors_give_the_heading_error_and_the_lanes_own_curvature():
    r = 40.0
    net = Network([_road("arc", [Segment(30.0, 0.0), Segment(60.0, 1 / r)], lanes=1,
                         lanes_back=1)])
    arrays = net.arrays
    fwd, back = net.lane("arc:0"), net.lane("arc:-1")
    for lane in (fwd, back):
        length = net.lane_length(lane)
        for u in (5.0, 0.5 * length, length - 5.0):
            # The curvature the lane's own headings show over a short stretch.
            _, _, h = net.lane_to_world(lane, np.array([u - 0.01, u + 0.01]))
            expected = math.remainder(h[1] - h[0], math.tau) / 0.02
            _, _, here = net.lane_to_world(lane, u)
            error, k = netego.lane_errors(arrays, lane, u, float(here) + 0.2)
            assert error == pytest.approx(0.2, abs=1e-9)
            assert k == pytest.approx(expected, abs=1e-6)
    # The forward lane turns left on radius r + 1.75, the other comes back turning right.
    u = net.lane_length(fwd) - 5.0
    assert netego.lane_curvature(arrays, fwd, u) == pytest.approx(1 / (r + 1.75))
    assert netego.lane_curvature(arrays, back, 5.0) == pytest.approx(-1 / (r - 1.75))


def test_off_the_road_the_autopilot_holds_the_wheel_straight(nets):
    net = nets["intersection"]
    route = netego.open_route(net)
    steer, accel = netego.autopilot(net.arrays, route, 0, EGO, 50.0, 50.0, 0.3, 10.0, -1, -1,
                                    11.0, DT)
    assert steer == 0.0 and accel == pytest.approx(AUTOPILOT_SPEED_GAIN * 1.0)


def _road(name, segments, lanes=1, lanes_back=0):
    return RoadSpec(name, tuple(segments), (0.0, 0.0, 0.0), lanes, lanes_back, 3.5)


def test_the_route_ahead_ends_even_on_a_ring_for_an_endless_distance(nets):
    net = nets["roundabout"]
    route = netego.open_route(net)
    ring = net.lane("ring_east_a:1")
    h = netego.route_heading(net.arrays, route, 0, ring, math.inf)
    assert math.isfinite(h)


def test_stacked_routes_let_each_world_follow_its_own_goal(nets):
    net = nets["intersection"]
    routes = [netego.plan_route(net, f"{arm}:-1", 30.0) for arm in ("north", "east", "south")]
    stack = netego.stack_routes([netego.open_route(net), *routes])
    assert stack.next.shape == (4, len(net.lanes))
    for g, route in enumerate(routes, 1):
        alone = drive(net, route, "west:0", 12.0)
        stacked = drive(net, stack, "west:0", 12.0, g=g)
        assert alone["arrived"] and stacked["arrived"]
        for key in ("lane", "u", "offset", "remaining", "x"):
            assert np.array_equal(alone[key], stacked[key])
    with pytest.raises(NetworkError, match="route 1 was planned over another network"):
        netego.stack_routes([routes[0], netego.open_route(nets["roundabout"])])
    with pytest.raises(NetworkError, match="give at least one route"):
        netego.stack_routes([])
