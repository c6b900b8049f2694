"""A network's lane graph and conflicts as the traffic kernels read them, computed once per
network from its geometry (:func:`lane_graph`).

*Lane graph*: successors and predecessors in CSR form, each lane's priority, its same-road
neighbours in the same direction (left and right of the direction of travel, for lane
changes), entry lanes (no predecessor, and no lane of their road has one: where traffic enters)
and exit lanes (no successor: where it leaves), and for every (lane, exit) pair the routing
tables traffic follows (planned by :func:`lanesim.sim.netego.plan_route`, the ego's planner):
whether the exit is reachable, the successor to take and whether to change lanes first.

*Conflicts*: two lanes of different roads, neither following the other and not leaving the
same lane, conflict where their centre lines come closer than ``clearance`` (a car's width and
a margin): they cross, or they merge (share a successor; the zone then runs on to both ends).
The *zone* on each lane is the ``u`` interval (m) where that holds. Who yields: the lower
priority; on a tie the lane that turns more to the left (signed total heading change); then
the higher lane id. That is a strict total order on lanes, so yielding has no cycles.

Lanes that leave the same lane (a diverge) do not conflict; traffic there follows the car
ahead on either branch while the two centres are within ``clearance`` (``diverge_len``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lanesim.sim.netego import LANE_CHANGE_COST, plan_route
from lanesim.sim.network import Network

__all__ = ["CONFLICT_CLEARANCE", "LaneGraph", "conflict_table", "lane_graph"]

# Centre lines closer than this (m) conflict: a car's width (1.9 m) and a margin of 1.1 m.
# (Parallel lanes of one road never conflict, however narrow: traffic changes lanes there.)
CONFLICT_CLEARANCE = 3.0
# Geometry is sampled this often (m) along each lane centre.
SAMPLE_STEP = 0.25
# Highest lateral acceleration (m/s²) traffic accepts in a bend: the speed limit of a lane is
# sqrt(this / its sharpest curvature).
BEND_ACCEL = 3.0


class LaneGraph(NamedTuple):
    """A network's lanes as the traffic kernels read them. ``L`` lanes, ``T`` exit lanes."""

    succ_ptr: np.ndarray  # (L + 1,) int: lane l's successors are succ[succ_ptr[l]:succ_ptr[l+1]]
    succ: np.ndarray  # int
    pred_ptr: np.ndarray  # (L + 1,) int
    pred: np.ndarray  # int
    priority: np.ndarray  # (L,) int, 0 to 9
    left: np.ndarray  # (L,) int: same-road neighbour to the left in the direction of travel, -1
    right: np.ndarray  # (L,) int: ... to the right, -1
    entry: np.ndarray  # (L,) bool
    exit: np.ndarray  # (L,) bool
    length: np.ndarray  # (L,) m
    turn: np.ndarray  # (L,) rad: signed total heading change along the lane, + left
    speed_limit: np.ndarray  # (L,) m/s: sqrt(BEND_ACCEL / sharpest curvature), inf if straight
    diverge_len: np.ndarray  # (L,) m from the lane's start while a sibling's centre is near
    exits: np.ndarray  # (T,) int: the exit lanes
    entries: np.ndarray  # (E,) int: the entry lanes
    entry_dest: np.ndarray  # (E, G) int: per entry and exit road, the exit (column of hop)
    # traffic from that entry takes there (its lane of the road nearest the entry), -1 if none
    reaches: np.ndarray  # (L, T) bool: the exit can be reached from the lane
    hop: np.ndarray  # (L, T) int: the successor toward the exit without changing lanes, -1
    change: np.ndarray  # (L, T) int: -1 change left, +1 right, 0 stay, toward the exit
    conf_first: np.ndarray  # (L,) m: where the lane's first zone starts (inf: none); a car
    # past its stop line is committed to every zone of the lane
    conf_ptr: np.ndarray  # (L + 1,) int: lane l's conflicts are conf_ptr[l]..conf_ptr[l+1]-1
    conf_other: np.ndarray  # (C,) int: the conflicting lane
    conf_z0: np.ndarray  # (C,) m: the zone on this lane, from
    conf_z1: np.ndarray  # (C,) m: ... to
    conf_w0: np.ndarray  # (C,) m: the zone on the other lane, from
    conf_w1: np.ndarray  # (C,) m: ... to
    conf_yield: np.ndarray  # (C,) bool: this lane yields to the other
    conf_merge: np.ndarray  # (C,) bool: the two lanes merge (share a successor)


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists])
    flat = np.array([v for x in lists for v in x], dtype=np.int64)
    return ptr, flat


def _samples(net: Network, lane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    length = net.lane_length(lane)
    n = max(2, int(np.ceil(length / SAMPLE_STEP)) + 1)
    u = np.linspace(0.0, length, n)
    x, y, h = net.lane_to_world(np.full(n, lane), u)
    return u, x, y, h


def conflict_table(net: Network, clearance: float = CONFLICT_CLEARANCE) -> list[tuple]:
    """Every conflict of ``net`` once per lane pair: ``(a, b, za0, za1, zb0, zb1, a_yields,
    merge)``, lanes ``a < b``, their zones (m along each), whether ``a`` yields and whether
    the lanes merge."""
    L = len(net.lanes)
    samples = [_samples(net, lane) for lane in range(L)]
    turn = np.array([float(np.sum(np.diff(np.unwrap(s[3])))) for s in samples])
    boxes = np.array([(s[1].min(), s[1].max(), s[2].min(), s[2].max()) for s in samples])
    out = []
    for a in range(L):
        for b in range(a + 1, L):
            if not _may_conflict(net, a, b):
                continue
            ba, bb = boxes[a], boxes[b]
            if (ba[0] > bb[1] + clearance or bb[0] > ba[1] + clearance
                    or ba[2] > bb[3] + clearance or bb[2] > ba[3] + clearance):
                continue
            ua, xa, ya, _ = samples[a]
            ub, xb, yb, _ = samples[b]
            d2 = (xa[:, None] - xb[None, :]) ** 2 + (ya[:, None] - yb[None, :]) ** 2
            close = d2 < clearance * clearance
            if not close.any():
                continue
            ia, ib = np.nonzero(close)
            za0, za1 = float(ua[ia.min()]), float(ua[ia.max()])
            zb0, zb1 = float(ub[ib.min()]), float(ub[ib.max()])
            merge = bool(set(net.successors(a)) & set(net.successors(b)))
            if merge:
                za1, zb1 = net.lane_length(a), net.lane_length(b)
            out.append((a, b, za0, za1, zb0, zb1, _yields(net, turn, a, b), merge))
    return out


def _may_conflict(net: Network, a: int, b: int) -> bool:
    if net.lane_road(a) == net.lane_road(b):
        return False  # parallel lanes of one road: lane changes, not conflicts
    if b in net.successors(a) or a in net.successors(b):
        return False
    return not set(net.predecessors(a)) & set(net.predecessors(b))  # a diverge


def _yields(net: Network, turn: np.ndarray, a: int, b: int) -> bool:
    """Whether lane ``a`` yields to lane ``b``."""
    pa, pb = net.priority(a), net.priority(b)
    if pa != pb:
        return pa < pb
    if abs(turn[a] - turn[b]) > 1e-6:
        return turn[a] > turn[b]
    return a > b


def lane_graph(net: Network, clearance: float = CONFLICT_CLEARANCE) -> LaneGraph:
    """The :class:`LaneGraph` of ``net``: its lane graph, routing tables and conflicts."""
    L = len(net.lanes)
    a = net.arrays
    succ_ptr, succ = _csr([list(net.successors(i)) for i in range(L)])
    pred_ptr, pred = _csr([list(net.predecessors(i)) for i in range(L)])
    left = np.full(L, -1, dtype=np.int64)
    right = np.full(L, -1, dtype=np.int64)
    for i in range(L):
        road = net.lane_road(i)
        idx = int(net.lanes[i].rpartition(":")[2])
        step = 1 if idx >= 0 else -1  # toward the right of the direction of travel
        for side, k in ((right, idx + step), (left, idx - step)):
            if (k >= 0) == (idx >= 0) and f"{road}:{k}" in net.lanes:
                side[i] = net.lane(f"{road}:{k}")
    has_pred = np.array([len(net.predecessors(i)) > 0 for i in range(L)])
    fed: dict[tuple[str, int], bool] = {}  # (road, direction): some lane has a predecessor
    for i in range(L):
        key = (net.lane_road(i), net.lane_direction(i))
        fed[key] = fed.get(key, False) or bool(has_pred[i])
    entry = np.array([not has_pred[i] and not fed[(net.lane_road(i), net.lane_direction(i))]
                      for i in range(L)])
    exit_ = np.array([len(net.successors(i)) == 0 for i in range(L)])
    exits = np.flatnonzero(exit_).astype(np.int64)
    entries = np.flatnonzero(entry).astype(np.int64)
    length = a.lane_length.copy()
    samples = [_samples(net, lane) for lane in range(L)]
    turn = np.array([float(np.sum(np.diff(np.unwrap(s[3])))) for s in samples])
    limit = np.full(L, np.inf)
    for i in range(L):
        r = a.lane_road[i]
        k = a.seg[2][a.road_seg[r]:a.road_seg[r + 1]]
        k_lane = np.abs(k / (1.0 + k * a.lane_d[i]))  # curvature of the lane's own centre
        if k_lane.max() > 0:
            limit[i] = float(np.sqrt(BEND_ACCEL / k_lane.max()))
    diverge = np.zeros(L)
    for i in range(L):
        for p in net.predecessors(i):
            for j in net.successors(p):
                if j == i:
                    continue
                _, xi, yi, _ = samples[i]
                ui = samples[i][0]
                _, xj, yj, _ = samples[j]
                d2 = (xi[:, None] - xj[None, :]) ** 2 + (yi[:, None] - yj[None, :]) ** 2
                near = (d2 < clearance * clearance).any(axis=1)
                if near.any():
                    diverge[i] = max(diverge[i], float(ui[np.flatnonzero(near).max()]))
    reaches, hop, change = _routes(net, exits)
    # A car picks an exit road, then the lane of it its route reaches with the fewest lane
    # changes (then lanes): a car bound for the highway after an off-ramp keeps its lane
    # instead of crossing to an arbitrary one.
    exit_roads = list(dict.fromkeys(net.lane_road(int(t)) for t in exits))
    entry_dest = np.full((len(entries), len(exit_roads)), -1, dtype=np.int64)
    for k, e in enumerate(entries):
        for g, road in enumerate(exit_roads):
            best = (np.inf, np.inf)
            for t, lane in enumerate(exits):
                if net.lane_road(int(lane)) == road and reaches[e, t]:
                    way = _changes_on_the_way(hop, change, left, right, int(e), t)
                    if way < best:
                        best, entry_dest[k, g] = way, t
    table = conflict_table(net, clearance)
    per_lane: list[list[tuple]] = [[] for _ in range(L)]
    for la, lb, za0, za1, zb0, zb1, a_yields, merge in table:
        per_lane[la].append((lb, za0, za1, zb0, zb1, a_yields, merge))
        per_lane[lb].append((la, zb0, zb1, za0, za1, not a_yields, merge))
    conf_ptr = np.zeros(L + 1, dtype=np.int64)
    conf_ptr[1:] = np.cumsum([len(x) for x in per_lane])
    first = np.array([min((c[1] for c in x), default=np.inf) for x in per_lane])
    flat = [c for x in per_lane for c in x]
    col = list(zip(*flat, strict=True)) if flat else [()] * 7
    return LaneGraph(
        succ_ptr, succ, pred_ptr, pred,
        np.array([net.priority(i) for i in range(L)], dtype=np.int64),
        left, right, entry, exit_, length, turn, limit, diverge, exits, entries, entry_dest,
        reaches, hop, change, first, conf_ptr,
        np.array(col[0], dtype=np.int64),
        *(np.array(col[k], dtype=np.float64) for k in range(1, 5)),
        np.array(col[5], dtype=np.bool_),
        np.array(col[6], dtype=np.bool_),
    )


def _routes(net: Network, exits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (lane, exit), from :func:`lanesim.sim.netego.plan_route` (the ego's route planner:
    one definition of a route over links and lane changes): whether the exit can be reached,
    the successor to take without changing lanes (-1: none reaches the exit) and the lane
    change to make first (-1 left, +1 right, 0 none), changing as early as the route allows."""
    L, T = len(net.lanes), len(exits)
    reaches = np.zeros((L, T), dtype=bool)
    hop = np.full((L, T), -1, dtype=np.int64)
    change = np.zeros((L, T), dtype=np.int64)
    for t, target in enumerate(exits):
        route = plan_route(net, int(target), net.lane_length(int(target)),
                           lane_change_cost=LANE_CHANGE_COST)
        nxt, ok = route.next[0], route.reaches[0]
        reaches[:, t] = ok
        hop[:, t] = np.where((nxt >= 0) & ok[np.maximum(nxt, 0)], nxt, -1)
        hop[int(target), t] = -1
        change[:, t] = route.change[0]
    return reaches, hop, change


def _changes_on_the_way(hop: np.ndarray, change: np.ndarray, left: np.ndarray,
                        right: np.ndarray, lane: int, t: int) -> tuple[int, int]:
    """(lane changes, lanes driven) on the route from ``lane`` to exit ``t``."""
    changes = lanes = 0
    for _ in range(4 * len(hop)):
        side = change[lane, t]
        if side:
            lane, changes = int(left[lane] if side < 0 else right[lane]), changes + 1
        elif hop[lane, t] >= 0:
            lane, lanes = int(hop[lane, t]), lanes + 1
        else:
            break
    return changes, lanes
