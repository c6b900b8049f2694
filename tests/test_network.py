"""Road-network geometry: lanes of roads at any pose, links, connectors, files and errors."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from lanesim.sim.network import (
    Network,
    NetworkBuilder,
    NetworkError,
    RoadSpec,
    connector_segments,
    lane_point,
    locate,
)
from lanesim.sim.road import Road, Segment, advance


def end_of(p0, segments):
    """Pose after following ``segments`` from ``p0``, integrated piece by piece."""
    x, y, h = p0
    for seg in segments:
        x, y, h = advance(x, y, h, seg.length, seg.curvature)
    return x, y, math.remainder(h, math.tau)


def two_way(centre="dashed"):
    return Network([RoadSpec("main", (Segment(100.0, 0.0), Segment(50.0, 1 / 40.0)),
                             start=(10.0, -5.0, 0.3), lanes=2, lanes_back=1, lane_width=3.5,
                             centre=centre)])


def test_lanes_are_named_forward_first_then_against_the_reference_line():
    net = two_way()
    assert net.lanes == ("main:0", "main:1", "main:-1")
    assert [net.lane_direction(i) for i in range(3)] == [1, 1, -1]


def test_a_lane_on_an_arc_is_as_long_as_its_own_radius_says():
    net = two_way()
    # Left turn of radius 40 m through 50/40 rad: a lane whose centre lies d to the right of the
    # reference line turns on radius 40 + d.
    angle = 50.0 / 40.0
    for lane, d in ((0, 1.75), (1, 5.25), (2, -1.75)):
        assert net.lane_length(lane) == pytest.approx(100.0 + angle * (40.0 + d), abs=1e-9)


def test_lane_coordinates_round_trip_through_the_world_on_every_lane():
    net = two_way()
    rng = np.random.default_rng(0)
    for lane in range(3):
        u = rng.uniform(0.0, net.lane_length(lane), 200)
        off = rng.uniform(-1.7, 1.7, 200)
        x, y, _ = net.lane_to_world(lane, u, off)
        got, gu, goff = net.to_lane(x, y)
        assert (got == lane).all()
        np.testing.assert_allclose(gu, u, atol=1e-7)
        np.testing.assert_allclose(goff, off, atol=1e-7)


def test_a_lane_against_the_reference_line_runs_the_other_way():
    net = two_way()
    back = net.lane("main:-1")
    x0, y0, h0 = net.start_pose(back)
    road = net.roads["main"]
    xe, ye, he = road.end_pose
    # It starts at the road's far end, half a lane left of the reference line, facing back.
    assert (x0, y0) == pytest.approx((xe - 1.75 * math.sin(he), ye + 1.75 * math.cos(he)))
    assert math.remainder(h0 - he - math.pi, math.tau) == pytest.approx(0.0, abs=1e-12)
    # Offsets are to the right of the direction of travel: traffic keeps right, so right of lane
    # -1 is the road's left edge and the centre line is on its left.
    x, y, _ = net.lane_to_world(back, 10.0, 1.0)
    _, d = road.to_road(x, y)
    assert d == pytest.approx(-2.75)


def test_markings_are_solid_at_the_edges_dashed_between_lanes_and_the_centre_as_given():
    for centre in ("solid", "dashed", "none"):
        net = two_way(centre)
        assert net.markings(net.lane("main:0")) == (centre, "dashed")
        assert net.markings(net.lane("main:1")) == ("dashed", "solid")
        # Lane -1 travels back: the centre line on its left, the road's left edge on its right.
        assert net.markings(net.lane("main:-1")) == (centre, "solid")


def test_a_point_on_no_lane_gets_lane_minus_one_and_nan():
    net = two_way()
    lane, u, off = net.to_lane(np.array([10.0, 50.0]), np.array([-50.0, -5.0 - 9.0]))
    assert lane.tolist() == [-1, -1]
    assert np.isnan(u).all() and np.isnan(off).all()


@pytest.mark.parametrize(
    "p1",
    [
        (30.0, 20.0, math.pi / 2),  # left turn, longer approach
        (20.0, -35.0, -math.pi / 2),  # right turn, longer exit
        (40.0, 10.0, math.radians(30)),  # a shallow bend
        (25.0, 3.5, 0.0),  # an S into the next lane over
        (12.0, 0.0, 0.0),  # straight on
        (5.0, 14.0, math.pi),  # a U-turn after a straight
        (-6.0, -10.0, math.pi),  # a U-turn, then a straight
    ],
)
def test_connector_pieces_lead_from_one_pose_to_the_other(p1):
    p0 = (0.0, 0.0, 0.0)
    pieces = connector_segments(p0, p1)
    x, y, h = end_of(p0, pieces)
    assert (x, y) == pytest.approx(p1[:2], abs=1e-9)
    assert math.remainder(h - p1[2], math.tau) == pytest.approx(0.0, abs=1e-9)
    assert all(seg.length > 0 for seg in pieces)


@pytest.mark.parametrize(
    "p1, message",
    [
        ((-5.0, 0.0, 0.0), "behind the start"),
        ((-10.0, 10.0, math.pi / 2), "a turn needs both positive"),
        ((-10.0, 0.0, math.pi), "U-turn needs the target beside the start"),
    ],
)
def test_connector_refuses_poses_it_cannot_join(p1, message):
    with pytest.raises(NetworkError, match=message):
        connector_segments((0.0, 0.0, 0.0), p1)


def crossroads() -> NetworkBuilder:
    """A four-way junction of two-lane (one each way) roads, 10 m of junction box."""
    net = NetworkBuilder(lane_width=3.5)
    straight = [Segment(60.0, 0.0)]
    # Roads run toward the junction on lane 0 and away from it on lane -1.
    net.road("west", straight, start=(-70.0, 0.0, 0.0), lanes=1, lanes_back=1)
    net.road("east", straight, start=(70.0, 0.0, math.pi), lanes=1, lanes_back=1)
    net.road("south", straight, start=(0.0, -70.0, math.pi / 2), lanes=1, lanes_back=1)
    net.road("north", straight, start=(0.0, 70.0, -math.pi / 2), lanes=1, lanes_back=1)
    return net


def test_connectors_join_a_junction_and_wire_successors():
    net = crossroads()
    net.connect("west:0", "east:-1")  # straight across
    net.connect("west:0", "north:-1")  # left
    net.connect("west:0", "south:-1")  # right
    network = net.build()
    west = network.lane("west:0")
    after = {network.lane_road(i) for i in network.successors(west)}
    assert after == {"west.0>east.-1", "west.0>north.-1", "west.0>south.-1"}
    for c in network.successors(west):
        # Each connector's lane leads on into the exit it was made for, its ends meeting both.
        (exit_lane,) = network.successors(c)
        assert network.end_pose(c) == pytest.approx(network.start_pose(exit_lane), abs=1e-6)
        assert network.start_pose(c) == pytest.approx(network.end_pose(west), abs=1e-6)
    # The right turn is tighter than the left one: it stays in its own quarter of the box.
    right = network.lane("west.0>south.-1:0")
    left = network.lane("west.0>north.-1:0")
    assert network.lane_length(right) < network.lane_length(left)


def test_a_point_inside_the_junction_is_on_the_connector_whose_centre_is_nearest():
    net = crossroads()
    net.connect("west:0", "east:-1").connect("south:0", "north:-1")
    network = net.build()
    across = network.lane("west.0>east.-1:0")
    up = network.lane("south.0>north.-1:0")
    # Both connectors hold the box's middle; a point nearer the west-east centre line goes to it.
    lane, _, _ = network.to_lane(np.array([0.5, 3.0]), np.array([-1.5, 0.5]))
    assert lane.tolist() == [across, up]


def test_a_closed_loop_builds_and_links_every_lane_to_itself():
    r = 50.0
    ring = RoadSpec("ring", (Segment(2 * math.pi * r, 1 / r),), start=(0.0, -r, 0.0), lanes=2,
                    loop=True)
    net = Network([ring])
    assert net.successors(0) == (0,) and net.successors(1) == (1,)


def test_a_loop_that_does_not_close_is_refused_with_its_miss():
    ring = RoadSpec("ring", (Segment(300.0, 1 / 50.0),), start=(0.0, -50.0, 0.0), loop=True)
    with pytest.raises(NetworkError, match=r"road 'ring' is a loop, but its end .* misses"):
        Network([ring])


@pytest.mark.parametrize(
    "links, message",
    [
        ([("a:0", "c:0")], r"no road 'c'"),
        ([("a:0", "b:3")], r"road 'b' has lanes 0, not '3'"),
        ([("a:0", "b:0")], r"does not meet the start of b:0 .*\(gap 5.00 m"),
    ],
)
def test_bad_links_name_the_lane_and_what_is_wrong(links, message):
    a = RoadSpec("a", (Segment(10.0, 0.0),))
    b = RoadSpec("b", (Segment(10.0, 0.0),), start=(15.0, 0.0, 0.0))
    with pytest.raises(NetworkError, match=message):
        Network([a, b], links)


def test_lanes_that_meet_link_without_a_connector():
    a = RoadSpec("a", (Segment(10.0, 1 / 30.0),), lanes=2)
    end = Road([Segment(10.0, 1 / 30.0)], 2, 3.5).end_pose
    b = RoadSpec("b", (Segment(10.0, 0.0),), start=end, lanes=2)
    net = Network([a, b], [("a:1", "b:1")])
    assert net.successors(net.lane("a:1")) == (net.lane("b:1"),)


@pytest.mark.parametrize(
    "spec, message",
    [
        (RoadSpec("x", (Segment(10.0, 0.0),), lanes=0), "needs at least one lane"),
        (RoadSpec("x", (Segment(10.0, 0.0),), lanes=9), "lanes must be an integer 0 to 8"),
        (RoadSpec("x", (Segment(10.0, 0.0),), centre="double"), "centre must be one of"),
        (RoadSpec("x:y", (Segment(10.0, 0.0),)), "road name 'x:y'"),
        # Lane 0 on the outside of a tight left turn: fine.
        (RoadSpec("x", (Segment(10.0, 1 / 3.0),), lanes=1, lanes_back=0, lane_width=4.0),
         None),
        # Lane -1 on its inside: fine while its far edge (3.5 m) stays short of the centre...
        (RoadSpec("x", (Segment(5.0, 1 / 4.0),), lanes=0, lanes_back=1, lane_width=3.5), None),
        # ... refused when the edge passes it, though the lane's centre does not.
        (RoadSpec("x", (Segment(5.0, 1 / 3.0),), lanes=0, lanes_back=1, lane_width=3.5),
         r"radius 3.00 m, but lane -1 reaches 3.50 m to that side"),
        (RoadSpec("x", (Segment(10.0, -1 / 3.0),), lanes=2, lane_width=4.0),
         r"radius 3.00 m, but lane 0 reaches 4.00 m to that side"),
        (RoadSpec("x", (Segment(0.0, 0.0),)), "length must be 0.01 to 100,000 m"),
    ],
)
def test_bad_roads_are_refused_naming_the_road(spec, message):
    if message is None:  # a lane on the inside of a tight left turn is fine while it fits
        Network([spec])
        return
    with pytest.raises(NetworkError, match=message):
        Network([spec])


def test_a_duplicate_road_name_is_refused():
    spec = RoadSpec("a", (Segment(10.0, 0.0),))
    with pytest.raises(NetworkError, match="road name 'a' is used twice"):
        Network([spec, spec])


NETWORK_TOML = """
[network]
lane_width = 3.5
connect = [["west:0", "north:-1"]]

[[network.roads]]
name = "west"
start = [-70, 0, 0]
segments = [{ length = 60 }]
lanes = 1
lanes_back = 1

[[network.roads]]
name = "north"
start = [0, 70, -90]
segments = [{ length = 60 }]
lanes = 1
lanes_back = 1
"""


def test_a_connector_takes_the_priority_of_the_road_it_leaves():
    table = tomllib.loads(NETWORK_TOML)["network"]
    table["roads"][0]["priority"] = 1
    net = Network.from_dict(table)
    assert net.priority(net.lane("west:0")) == 1
    assert net.priority(net.lane("west.0>north.-1:0")) == 1
    assert net.priority(net.lane("north:-1")) == 0


def test_a_network_comes_from_a_scenario_table():
    net = Network.from_dict(tomllib.loads(NETWORK_TOML)["network"])
    left = net.lane("west.0>north.-1:0")
    assert net.predecessors(left) == (net.lane("west:0"),)
    x, y, h = net.end_pose(left)
    assert (x, y) == pytest.approx((1.75, 10.0), abs=1e-9)
    assert h == pytest.approx(math.pi / 2)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.update(lanewidth=3),
         r"network: unknown key\(s\) 'lanewidth' \(did you mean 'lane_width'\?\)"),
        (lambda t: t["roads"][1].update(lanes="two"),
         r"network.roads\[1\]: road 'north': lanes must be an integer 0 to 8"),
        (lambda t: t["roads"][0].update(start=[0, 0]),
         r"network.roads\[0\].start must be \[x, y, heading\]"),
        (lambda t: t["roads"][0]["segments"][0].update(radius=0.5),
         r"network.roads\[0\].segments\[0\].radius must be"),
        (lambda t: t.update(connect=[["west:0"]]), r"network.connect\[0\] must be \[from, to\]"),
        (lambda t: t["roads"][0].update(priority=10),
         r"network.roads\[0\]: road 'west': priority must be an integer from 0 to 9, got 10"),
        (lambda t: t["roads"][0].update(priority=1.5),
         r"road 'west': priority must be an integer from 0 to 9, got 1.5"),
        (lambda t: t.update(connect=[["west:0", "north:5"]]),
         r"network.connect\[0\]: connect west:0 -> north:5: lane 'north:5': road 'north' has "
         r"lanes 0 and -1"),
        (lambda t: t.update(links=[["west:0", "north:-1"]]),
         r"network.links\[0\]: link west:0 -> north:-1: the end of west:0"),
    ],
)
def test_scenario_table_errors_name_the_path(edit, message):
    table = tomllib.loads(NETWORK_TOML)["network"]
    edit(table)
    with pytest.raises(NetworkError, match=message):
        Network.from_dict(table)



def test_a_point_just_before_a_loops_start_is_on_its_last_stretch():
    r = 40.0
    loop = RoadSpec("loop", (Segment(100.0, 0.0), Segment(math.pi * r, 1 / r),
                             Segment(100.0, 0.0), Segment(math.pi * r, 1 / r)),
                    start=(0.0, -r, 0.0), lanes=2, lane_width=4.0, loop=True)
    net = Network([loop])
    # The last stretch is a half circle about the origin; lane 0's centre runs 2 m outside it.
    px, py = -1.5, -r - 2.3
    lane, u, off = net.to_lane(np.array([px]), np.array([py]))
    before = math.atan2(-px, -py)  # rad of arc short of the start
    assert lane[0] == 0
    assert u[0] == pytest.approx(net.lane_length(0) - before * (r + 2.0), abs=1e-9)
    assert off[0] == pytest.approx(math.hypot(px, py) - (r + 2.0), abs=1e-9)


def test_compiled_kernels_take_the_networks_arrays_for_one_point():
    net = two_way()
    x, y, h = lane_point(net.arrays, 2, 30.0, 0.5)
    assert (x, y, h) == pytest.approx(tuple(float(v) for v in net.lane_to_world(2, 30.0, 0.5)))
    assert locate(net.arrays, x, y) == pytest.approx((2, 30.0, 0.5))


def test_near_parallel_poses_join_as_parallel_ones_do():
    # A pose typed to a few digits is a hair off parallel: still an S-curve, not a refusal.
    for turn in (1e-6, -3e-4):
        pieces = connector_segments((0.0, 0.0, 0.0), (30.0, 3.5, turn))
        x, y, h = end_of((0.0, 0.0, 0.0), pieces)
        assert (x, y) == pytest.approx((30.0, 3.5), abs=1e-9)
        assert abs(h - turn) < 0.01
    # A target a few millimetres off the line of travel is a straight.
    assert connector_segments((0.0, 0.0, 0.0), (30.0, 0.004, 0.0)) == [Segment(30.0, 0.0)]


def test_connector_errors_name_the_connect_entry_not_a_road_the_file_lacks():
    table = tomllib.loads(NETWORK_TOML)["network"]
    # The connector from west:0 to north:-1 cannot be named after an existing road.
    table["roads"].append({"name": "west.0>north.-1", "segments": [{"length": 10}],
                           "start": [0, 500, 0]})
    with pytest.raises(NetworkError, match=r"network.connect\[0\]: road name "
                       r"'west.0>north.-1' is used twice"):
        Network.from_dict(table)


def _one_road_scenarios() -> list[str]:
    from lanesim.envs.options import bundled_scenarios, load_scenario

    return [s for s in bundled_scenarios() if "network" not in load_scenario(s)[0]]


ONE_ROAD_SCENARIOS = _one_road_scenarios()


@pytest.mark.parametrize("scenario", ONE_ROAD_SCENARIOS)
def test_a_one_road_scenarios_road_is_a_network(scenario):
    """Its ramps, closures, oncoming lanes and loop: lane k of the road at s is a network lane
    at the same place, heading the same way, continuing into the next piece where the road's
    lane goes on, and nowhere where the road has no lane."""
    from lanesim.envs.core import build_spec
    from lanesim.envs.options import make_options
    from lanesim.sim.network import network_of_road

    road = build_spec(make_options(scenario)).road
    net = network_of_road(road)
    assert len(ONE_ROAD_SCENARIOS) >= 7
    w = road.lane_width
    cuts = np.unique(np.concatenate([[0.0, road.length], road.lane_start, road.lane_end]))
    s = np.linspace(0.5, road.length - 0.5, 3001)
    s = s[np.min(np.abs(s[:, None] - cuts[None, :]), axis=1) > 0.1]  # not at a cut
    found = []
    for k in range(road.lanes):
        x, y, h = road.to_world(s, np.full_like(s, (k + 0.5) * w))
        lane, u, offset = net.to_lane(x, y)
        exists = road.lane_exists(np.full(s.shape, k), s)
        assert (lane[exists] >= 0).all() and np.abs(offset[exists]).max() < 1e-6
        assert (lane[~exists] == -1).all()  # a closed or not yet open lane is no network lane
        _, _, lane_h = net.lane_to_world(lane[exists], u[exists])
        way = road.lane_direction[k]
        turn = np.angle(np.exp(1j * (lane_h - h[exists] - (0.0 if way > 0 else math.pi))))
        assert np.abs(turn).max() < 1e-6
        found.append(np.where(exists, lane, -1))
        # Where the road's lane runs on across a cut, the network lane runs on into the next.
        for c in cuts[(cuts > road.lane_start[k] + 1e-6) & (cuts < road.lane_end[k] - 1e-6)]:
            (a, b), _, _ = net.to_lane(*road.to_world(np.array([c - 0.5, c + 0.5]),
                                                      np.full(2, (k + 0.5) * w))[:2])
            assert (b in net.successors(a)) if way > 0 else (a in net.successors(b))
        if road.lane_closes[k]:  # a closure ends: no successor
            (a,), _, _ = net.to_lane(*road.to_world(np.array([road.lane_end[k] - 0.5]),
                                                    np.array([(k + 0.5) * w]))[:2])
            assert net.successors(a) == ()
    found = np.array(found)
    # Neighbouring road lanes are different network lanes.
    assert not ((found[1:] == found[:-1]) & (found[1:] >= 0)).any()
    assert road.closed == any(net.successors(i) == (i,) for i in range(len(net.lanes)))


def test_a_road_whose_oncoming_lanes_are_not_its_leftmost_is_refused_as_a_network():
    from lanesim.sim.network import network_of_road

    road = Road([Segment(100.0, 0.0)], 3, 3.5, directions=[1, -1, 1])
    with pytest.raises(NetworkError, match=r"oncoming lanes are its leftmost; .* \[1, -1, 1\]"):
        network_of_road(road)
    assert len(network_of_road(Road([Segment(100.0, 0.0)], 3, 3.5,
                                    directions=[-1, 1, 1])).lanes) == 3
