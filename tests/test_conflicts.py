"""The lane graph, routing tables and conflicts of a network (lanesim.sim.conflicts), on the
three bundled networks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from lanesim.sim.conflicts import CONFLICT_CLEARANCE, conflict_table, lane_graph
from lanesim.sim.network import Network

NETWORKS = Path(__file__).resolve().parents[1] / "scenarios" / "networks"


def load(name: str) -> Network:
    with open(NETWORKS / f"{name}.toml", "rb") as f:
        return Network.from_dict(tomllib.load(f)["network"])


@pytest.fixture(scope="module")
def nets():
    return {name: load(name) for name in ("intersection", "roundabout", "exit")}


def names(net, ids):
    return sorted(net.lanes[int(i)] for i in ids)


def conflict(net, a, b):
    """The conflict row between lanes named a and b, as (a's zone, b's zone, a yields)."""
    ia, ib = net.lane(a), net.lane(b)
    for la, lb, za0, za1, zb0, zb1, a_yields, _ in conflict_table(net):
        if (la, lb) == (ia, ib):
            return (za0, za1), (zb0, zb1), a_yields
        if (la, lb) == (ib, ia):
            return (zb0, zb1), (za0, za1), not a_yields
    return None


def test_entry_and_exit_lanes_are_where_traffic_enters_and_leaves(nets):
    g = lane_graph(nets["intersection"])
    assert names(nets["intersection"], g.entries) == ["east:0", "north:0", "south:0", "west:0"]
    assert names(nets["intersection"], g.exits) == ["east:-1", "north:-1", "south:-1", "west:-1"]
    net = nets["exit"]
    g = lane_graph(net)
    # decel:3 has no predecessor, but its road does: cars change into it, none enter there.
    assert names(net, g.entries) == ["approach:0", "approach:1", "approach:2"]
    assert names(net, g.exits) == ["main:0", "main:1", "main:2", "ramp:0"]
    g = lane_graph(nets["roundabout"])
    assert names(nets["roundabout"], g.entries) == ["east:0", "north:0", "south:0", "west:0"]


def test_successor_tables_match_the_network(nets):
    for net in nets.values():
        g = lane_graph(net)
        for lane in range(len(net.lanes)):
            succ = g.succ[g.succ_ptr[lane]:g.succ_ptr[lane + 1]]
            pred = g.pred[g.pred_ptr[lane]:g.pred_ptr[lane + 1]]
            assert tuple(succ) == net.successors(lane)
            assert tuple(pred) == net.predecessors(lane)
            assert g.priority[lane] == net.priority(lane)


def test_neighbours_are_same_road_lanes_in_the_same_direction(nets):
    net = nets["exit"]
    g = lane_graph(net)
    assert g.right[net.lane("decel:2")] == net.lane("decel:3")
    assert g.left[net.lane("decel:3")] == net.lane("decel:2")
    assert g.right[net.lane("decel:3")] == -1
    assert g.left[net.lane("approach:0")] == -1
    net = nets["intersection"]
    g = lane_graph(net)
    # west:-1 runs the other way: no neighbour for a lane change.
    assert g.left[net.lane("west:0")] == -1 and g.right[net.lane("west:0")] == -1
    net = nets["roundabout"]
    g = lane_graph(net)
    assert g.right[net.lane("ring_east_a:0")] == net.lane("ring_east_a:1")


def test_minor_straight_yields_to_main_straight(nets):
    net = nets["intersection"]
    row = conflict(net, "south.0>north.-1:0", "west.0>east.-1:0")
    assert row is not None and row[2]


def test_main_left_turn_yields_to_the_opposite_main_straight(nets):
    net = nets["intersection"]
    row = conflict(net, "west.0>north.-1:0", "east.0>west.-1:0")
    assert row is not None and row[2]
    # ... but it has the way over a minor road's straight.
    row = conflict(net, "west.0>north.-1:0", "south.0>north.-1:0")
    assert row is not None and not row[2]


def test_roundabout_entry_yields_to_the_rings_outer_lane_at_the_merge(nets):
    net = nets["roundabout"]
    row = conflict(net, "east.0>ring_east_b.1:0", "ring_east_a:1")
    assert row is not None and row[2]
    # A merge's zone runs on to both lanes' ends.
    assert row[0][1] == pytest.approx(net.lane_length(net.lane("east.0>ring_east_b.1:0")))
    assert row[1][1] == pytest.approx(net.lane_length(net.lane("ring_east_a:1")))
    # The inner lane never meets the entry.
    assert conflict(net, "east.0>ring_east_b.1:0", "ring_east_a:0") is None


def test_exit_ramp_and_highway_have_no_conflicts(nets):
    assert conflict_table(nets["exit"]) == []


def test_connectors_leaving_one_lane_do_not_conflict_but_follow_each_other(nets):
    net = nets["intersection"]
    assert conflict(net, "west.0>east.-1:0", "west.0>north.-1:0") is None
    g = lane_graph(net)
    assert g.diverge_len[net.lane("west.0>east.-1:0")] > 0.0


def test_yielding_is_a_strict_order_without_cycles(nets):
    for net in nets.values():
        rows = conflict_table(net)
        edges = {(a, b) if a_yields else (b, a) for a, b, *_, a_yields, _ in rows}
        # Every pair has exactly one direction, and the graph has a topological order.
        assert len(edges) == len(rows)
        remaining = set(range(len(net.lanes)))
        while remaining:
            free = [x for x in remaining
                    if not any(w == x and v in remaining for v, w in edges)]
            assert free, f"{net.lanes}: yielding has a cycle"
            remaining -= set(free)


def test_zones_lie_where_the_centre_lines_come_close(nets):
    net = nets["intersection"]
    for la, lb, za0, za1, zb0, zb1, _, merge in conflict_table(net):
        ua = np.linspace(0.0, net.lane_length(la), 400)
        ub = np.linspace(0.0, net.lane_length(lb), 400)
        xa, ya, _ = net.lane_to_world(np.full(ua.shape, la), ua)
        xb, yb, _ = net.lane_to_world(np.full(ub.shape, lb), ub)
        d = np.hypot(xa[:, None] - xb[None, :], ya[:, None] - yb[None, :])
        near_a = d.min(axis=1) < CONFLICT_CLEARANCE - 0.05
        near_b = d.min(axis=0) < CONFLICT_CLEARANCE - 0.05
        assert near_a.any() and near_b.any()
        # Every close point lies inside the zones (to the sampling's accuracy).
        assert ua[near_a].min() >= za0 - 0.3 and ua[near_a].max() <= za1 + 0.3
        assert ub[near_b].min() >= zb0 - 0.3 and ub[near_b].max() <= zb1 + 0.3
        if not merge:
            far = (ua < za0 - 0.5) | (ua > za1 + 0.5)
            assert (d.min(axis=1)[far] > CONFLICT_CLEARANCE - 0.3).all()


def test_routes_change_lanes_toward_the_ramp_and_keep_lanes_otherwise(nets):
    net = nets["exit"]
    g = lane_graph(net)
    ramp = int(np.flatnonzero(g.exits == net.lane("ramp:0"))[0])
    main2 = int(np.flatnonzero(g.exits == net.lane("main:2"))[0])
    assert g.change[net.lane("decel:2"), ramp] == 1
    assert g.change[net.lane("approach:0"), ramp] == 1  # early: two changes to make
    assert g.hop[net.lane("decel:3"), ramp] == net.lane("decel.3>ramp.0:0")
    assert g.hop[net.lane("decel:2"), ramp] == -1
    assert g.change[net.lane("approach:2"), main2] == 0
    # Traffic from approach:1 bound for the highway keeps its lane: main:1.
    k = list(g.entries).index(net.lane("approach:1"))
    dests = {net.lanes[g.exits[t]] for t in g.entry_dest[k] if t >= 0}
    assert dests == {"main:1", "ramp:0"}
