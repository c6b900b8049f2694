"""The ego's side of driving on a road network: its route to a goal, the route-following
autopilot behind meta actions, and tracking which lane it is on.

A *route* (:class:`RouteArrays`) is planned once per network and goal, in Python
(:func:`plan_route`; :func:`open_route` for driving without a goal), and several stack into one
(:func:`stack_routes`) so that each world of a batch can follow its own: the kernels take the
routes and ``g``, the index of the one to follow. They read them with the network's arrays
(:attr:`lanesim.sim.network.Network.arrays`) and keep no state of their own: the world step
passes each ego's lane, ``u`` and ``offset`` in and gets controls, lanes and distances out.

Conventions are :mod:`lanesim.sim.network`'s: lane coordinates ``(lane, u, offset)`` (m along
the lane from its start, m right of its direction of travel), headings in rad counter-clockwise
from ``+x``. A lane's *left* and *right* neighbours are the lanes of its road beside it that
carry traffic the same way, seen in its direction of travel; side -1 is left, +1 right.

The route graph's edges are the network's links (a lane's end meets the next lane's start) and
lane changes to a neighbour. Distances count metres along lane centres: a lane change moves
across at the same place along the road and costs no distance, but to *choose* between routes
each change counts :data:`LANE_CHANGE_COST` metres, so a route does not weave across a ring to
save a few metres on its inner lane; where a change is due, the route asks for it as early as
it can (at the start of the lane where it first becomes the cheapest way on).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from lanesim.sim.jit import kernel
from lanesim.sim.models import (
    AUTOPILOT_HEADING_GAIN,
    AUTOPILOT_LATERAL_GAIN,
    AUTOPILOT_MAX_LATERAL_SPEED,
    AUTOPILOT_SPEED_GAIN,
)
from lanesim.sim.network import (
    Network,
    NetworkError,
    lane_reference_s,
    lane_u_at,
    locate,
    road_foot,
    wrap_heading,
)

__all__ = [
    "LANE_CHANGE_COST",
    "LEFT",
    "RIGHT",
    "RouteArrays",
    "arrived",
    "autopilot",
    "lane_curvature",
    "lane_errors",
    "neighbour",
    "on_lane",
    "open_route",
    "plan_route",
    "remaining",
    "resolve_target",
    "route_heading",
    "route_lane",
    "stack_routes",
    "track",
    "wrong_turn",
]

LEFT, RIGHT = -1, 1
# Metres a route counts for each lane change when it chooses between ways to the goal (the
# distance it reports does not include them): enough that a full turn of Roundabout-v0's ring
# keeps to the lane it entered and leaves by rather than crossing to the inner lane and back
# (which saves 16.5 m there, two changes), small against a highway's lengths.
LANE_CHANGE_COST = 50.0
LANE_CHANGE_COST_RANGE = (1.0, 10_000.0)  # m
# Costs within this (m) count as equal when a route chooses: it then changes lanes early, and
# among successors takes the straightest.
_TIE = 1e-6


class RouteArrays(NamedTuple):
    """Routes as the kernels read them: the network's lane graph and, per route ``g`` and
    lane, the way on to that route's goal (:func:`plan_route`, :func:`open_route`,
    :func:`stack_routes`). The graph's arrays are ``(lanes,)`` (the link lists aside), the
    routes' ``(routes, lanes)``."""

    succ_start: np.ndarray  # (lanes + 1,) int: lane l's successors are succ[succ_start[l]:
    succ: np.ndarray  # succ_start[l + 1]], the straightest first (least heading change)
    pred_start: np.ndarray  # (lanes + 1,) int: the same for predecessors
    pred: np.ndarray
    left: np.ndarray  # int: the neighbour on the left in the direction of travel; -1: none
    right: np.ndarray  # int: on the right; -1: none
    # Per route and lane:
    next: np.ndarray  # int: the successor the route takes at the lane's end (toward the goal
    # where going on in this lane reaches it, else the straightest); -1: the lane ends there
    change: np.ndarray  # int: the lane change the route asks for first: -1 left, +1 right, 0
    via: np.ndarray  # int: the lane of the same road that the route drives on in (the lane
    # itself, or where its lane changes lead)
    to_go: np.ndarray  # float: m from the lane's end to the goal going on by ``next``; inf:
    # not that way. On a goal lane, its arrival point's u less its length (negative)
    reaches: np.ndarray  # bool: the goal can be reached from the lane (always, without goal)
    goal_u: np.ndarray  # float: u (m) at which the ego has arrived on a goal lane; inf others


# ---------------------------------------------------------------------- planning (Python)
def open_route(net: Network) -> RouteArrays:
    """The route for driving without a goal: at every lane end the successor that continues
    most straight (least heading change over its length; ties to the lower id), no lane
    changes; :func:`remaining` is inf everywhere and :func:`wrong_turn` never fires."""
    g = _Graph(net)
    n = g.n
    next_ = np.array([g.straightest(lane) for lane in range(n)], dtype=np.int64)
    return g.arrays(next_, np.zeros(n, np.int64), np.arange(n, dtype=np.int64),
                    np.full(n, np.inf), np.ones(n, bool), np.full(n, np.inf))


def plan_route(net: Network, goal: str | int | Iterable[str | int], arrive_u: float,
               start: str | int | None = None,
               lane_change_cost: float = LANE_CHANGE_COST) -> RouteArrays:
    """The route to ``goal`` over ``net``.

    Args:
        net: the network.
        goal: the goal lanes: a lane name (``"north:-1"``), a global lane id, or several.
        arrive_u: m along a goal lane at which the ego has arrived, 0 to the shortest goal
            lane's length.
        start: a lane the ego starts on (name or id); when given, the goal must be reachable
            from it.
        lane_change_cost: m each lane change counts when the route chooses its way
            (:data:`LANE_CHANGE_COST_RANGE`, 1 to 10,000 m); the distances it reports count
            none.

    Raises:
        NetworkError: a goal or start that names no lane, no goal lanes, ``arrive_u`` or
            ``lane_change_cost`` out of range, or a goal that cannot be reached from
            ``start``.
    """
    g = _Graph(net)
    goals = _lane_ids(net, goal, "goal")
    if not goals:
        raise NetworkError("goal: name at least one goal lane (e.g. 'north:-1')")
    lo, hi = LANE_CHANGE_COST_RANGE
    if not _is_number(lane_change_cost) or not lo <= lane_change_cost <= hi:
        raise NetworkError(f"lane_change_cost must be a number from {lo:g} to {hi:,g} m, got "
                           f"{lane_change_cost!r}")
    shortest = min(goals, key=net.lane_length)
    if not _is_number(arrive_u) or not 0.0 <= arrive_u <= net.lane_length(shortest):
        raise NetworkError(f"arrive_u must be a number from 0 to {net.lane_length(shortest):.2f} "
                           f"m (the length of goal lane {net.lanes[shortest]}), got {arrive_u!r}")
    n = g.n
    length = net.arrays.lane_length
    goal_u = np.full(n, np.inf)
    goal_u[goals] = float(arrive_u)

    # Dijkstra backwards from the goal lanes over plan cost from each lane's start: a link
    # p -> x costs p's length, a change from a neighbour m into x the lane change cost.
    cost = np.full(n, np.inf)
    heap = []
    for lane in goals:
        cost[lane] = float(arrive_u)
        heap.append((cost[lane], lane))
    heapq.heapify(heap)
    done = np.zeros(n, bool)
    order = []
    while heap:
        c, x = heapq.heappop(heap)
        if done[x]:
            continue
        done[x] = True
        order.append(x)
        candidates = [(p, length[p] + c) for p in g.pred[x]]
        candidates += [(m, c + lane_change_cost) for m in (g.left[x], g.right[x]) if m >= 0]
        for m, cm in candidates:
            if cm < cost[m]:
                cost[m] = cm
                heapq.heappush(heap, (cm, m))

    # Each lane's choice, in order of cost so that whatever it leads to is settled first.
    next_ = np.array([g.straightest(lane) for lane in range(n)], dtype=np.int64)
    change = np.zeros(n, np.int64)
    via = np.arange(n, dtype=np.int64)
    to_go = np.full(n, np.inf)
    from_start = np.full(n, np.inf)  # m along the route from u = 0
    for x in order:
        if math.isfinite(goal_u[x]):
            to_go[x] = goal_u[x] - length[x]
            from_start[x] = goal_u[x]
            continue
        on = math.inf
        for s in g.succ[x]:  # the straightest first, so that it wins ties
            if length[x] + cost[s] < on - _TIE:
                on, next_[x] = length[x] + cost[s], s
        if math.isfinite(on):
            to_go[x] = from_start[next_[x]]
        across, side = math.inf, 0
        for sd, m in ((LEFT, g.left[x]), (RIGHT, g.right[x])):
            if m >= 0 and cost[m] + lane_change_cost < across - _TIE:
                across, side = cost[m] + lane_change_cost, sd
        if across <= on + _TIE:
            m = g.left[x] if side == LEFT else g.right[x]
            change[x], via[x], from_start[x] = side, via[m], from_start[m]
        else:
            from_start[x] = length[x] + to_go[x]
    reaches = np.isfinite(cost)
    route = g.arrays(next_, change, via, to_go, reaches, goal_u)
    if start is not None:
        starts = _lane_ids(net, start, "start")
        if len(starts) != 1:
            raise NetworkError(f"start: one lane (a name or an id), got {start!r}")
        lane = starts[0]
        if not reaches[lane]:
            names = ", ".join(net.lanes[i] for i in goals)
            raise NetworkError(f"goal {names} cannot be reached from start lane "
                               f"{net.lanes[lane]}: no links or lane changes lead there")
    return route


class _Graph:
    """The network's links and lane neighbours as Python lists, and their array form."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.n = n = len(net.lanes)
        self.succ = [list(net.successors(i)) for i in range(n)]
        self.pred = [list(net.predecessors(i)) for i in range(n)]
        self.left, self.right = [-1] * n, [-1] * n
        for i, name in enumerate(net.lanes):
            road, _, idx = name.rpartition(":")
            spec, k = net.specs[road], int(idx)
            # Forward lanes are numbered from the left; lanes against the reference line from
            # the centre line outward, which is their right.
            left, right = (k - 1, k + 1) if k >= 0 else (k + 1, k - 1)
            lo, hi = (0, spec.lanes - 1) if k >= 0 else (-spec.lanes_back, -1)
            if lo <= left <= hi:
                self.left[i] = net.lane(f"{road}:{left}")
            if lo <= right <= hi:
                self.right[i] = net.lane(f"{road}:{right}")
        turn = [abs(math.remainder(net.end_pose(i)[2] - net.start_pose(i)[2], math.tau))
                for i in range(n)]
        for succ in self.succ:  # straightest first, ties to the lower id
            succ.sort(key=lambda s: (turn[s], s))

    def straightest(self, lane: int) -> int:
        return self.succ[lane][0] if self.succ[lane] else -1

    def arrays(self, *per_lane: np.ndarray) -> RouteArrays:
        return RouteArrays(*_csr(self.succ), *_csr(self.pred),
                           np.array(self.left, dtype=np.int64),
                           np.array(self.right, dtype=np.int64),
                           *(a.reshape(1, self.n) for a in per_lane))


def stack_routes(routes: Iterable[RouteArrays]) -> RouteArrays:
    """Routes over one network as one :class:`RouteArrays`, route ``g`` the ``g``-th given
    (each may itself be a stack): a batch of worlds with different goals (and open driving)
    passes the stack and each world's ``g``.

    Raises:
        NetworkError: no routes, or routes planned over different networks.
    """
    routes = list(routes)
    if not routes:
        raise NetworkError("stack_routes: give at least one route")
    first = routes[0]
    for i, route in enumerate(routes[1:], 1):
        if not all(np.array_equal(a, b) for a, b in zip(route[:6], first[:6], strict=True)):
            raise NetworkError(f"stack_routes: route {i} was planned over another network than "
                               "route 0")
    per_lane = [np.concatenate([r[k] for r in routes]) for k in range(6, len(first))]
    return RouteArrays(*first[:6], *per_lane)


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    start = np.zeros(len(lists) + 1, dtype=np.int64)
    start[1:] = np.cumsum([len(a) for a in lists])
    flat = np.array([v for a in lists for v in a], dtype=np.int64)
    return start, flat


def _lane_ids(net: Network, lanes, what: str) -> list[int]:
    if isinstance(lanes, str | int | np.integer) and not isinstance(lanes, bool):
        lanes = [lanes]
    ids = []
    for lane in lanes:
        if isinstance(lane, str):
            try:
                ids.append(net.lane(lane))
            except NetworkError as err:
                raise NetworkError(f"{what}: {err}") from None
        elif isinstance(lane, int | np.integer) and not isinstance(lane, bool):
            if not 0 <= lane < len(net.lanes):
                raise NetworkError(f"{what}: no lane {lane}: ids run 0 to {len(net.lanes) - 1}")
            ids.append(int(lane))
        else:
            raise NetworkError(f"{what}: a lane is a name like 'north:-1' or a global id, got "
                               f"{lane!r}")
    return sorted(set(ids))


def _is_number(v) -> bool:
    return (isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)
            and math.isfinite(v))


# ---------------------------------------------------------------------- route (compiled)
# Kernels that take ``route, g`` follow route ``g`` of the stack ``route``.
@kernel
def route_lane(route, g, lane):
    """``(next, change)``: the successor route ``g`` takes at ``lane``'s end (-1: the lane
    ends there) and the lane change it asks for first (-1 left, +1 right, 0 none)."""
    return route.next[g, lane], route.change[g, lane]


@kernel
def neighbour(route, lane, side):
    """The lane beside ``lane`` on ``side`` (-1 left, +1 right, in its direction of travel) of
    the same road and direction; ``lane`` itself for side 0; -1 where there is none."""
    if side < 0:
        return route.left[lane]
    if side > 0:
        return route.right[lane]
    return lane


@kernel
def remaining(net, route, g, lane, u):
    """Metres along the route from ``u`` (m) on ``lane`` to the goal: on in this lane, or from
    the same place in the lane its lane changes lead to, whichever the route takes; 0 once
    arrived, inf where the goal cannot be reached (or off-road, ``lane`` -1, or no goal).
    Driving the route lowers it by the distance driven along the lanes, through lane ends,
    connectors and lane changes alike."""
    if lane < 0:
        return np.inf
    v = route.via[g, lane]
    if v != lane:
        _, s = lane_reference_s(net, lane, u)
        u = lane_u_at(net, v, s)
    return max(route.to_go[g, v] + net.lane_length[v] - u, 0.0)


@kernel
def wrong_turn(route, g, lane):
    """True on a lane from which the goal cannot be reached (never without a goal; never
    off-road, ``lane`` -1, which is its own event)."""
    return lane >= 0 and not route.reaches[g, lane]


@kernel
def arrived(route, g, lane, u):
    """True once the ego is on a goal lane at or past the arrival point."""
    return lane >= 0 and u >= route.goal_u[g, lane]


@kernel
def resolve_target(net, route, lane, target):
    """The autopilot's target lane as seen from the ego's ``lane``: ``target`` while it is a
    lane of the ego's road and direction; once the ego has moved on to the next road (or
    ``target`` already is there), the target's successor (or predecessor) on the ego's road;
    else the ego's own lane. The world step stores it back, so a lane change begun near a
    lane end carries on into the next road."""
    if lane < 0:
        return target
    if target < 0:
        return lane
    r, d = net.lane_road[lane], net.lane_dir[lane]
    if net.lane_road[target] == r and net.lane_dir[target] == d:
        return target
    for k in range(route.succ_start[target], route.succ_start[target + 1]):
        t = route.succ[k]
        if net.lane_road[t] == r and net.lane_dir[t] == d:
            return t
    for k in range(route.pred_start[target], route.pred_start[target + 1]):
        t = route.pred[k]
        if net.lane_road[t] == r and net.lane_dir[t] == d:
            return t
    return lane


# ---------------------------------------------------------------------- lane geometry
@kernel
def _lane_heading(net, lane, u):
    """Heading (rad, not wrapped) of ``lane``'s centre at ``u`` (m): :func:`lane_point`'s
    without the position's trigonometry."""
    i, s = lane_reference_s(net, lane, u)
    h = net.seg[5][i] + net.seg[2][i] * (s - net.seg[0][i])
    return h + math.pi if net.lane_dir[lane] < 0 else h


@kernel
def lane_curvature(net, lane, u):
    """Curvature (1/m, + turning left in the direction of travel) of ``lane``'s centre at
    ``u`` (m)."""
    i, _ = lane_reference_s(net, lane, u)
    k = net.seg[2][i]
    return net.lane_dir[lane] * k / (1.0 + k * net.lane_d[lane])


@kernel
def lane_errors(net, lane, u, heading):
    """``(heading_error, curvature)`` of an ego at ``u`` (m) on ``lane`` heading ``heading``
    (rad): its heading less the lane's there, wrapped into [-π, π) (+ left), and the lane's
    curvature (1/m, + left). Its offset is the one :func:`track` gives."""
    return wrap_heading(heading - _lane_heading(net, lane, u)), lane_curvature(net, lane, u)


@kernel
def on_lane(net, lane, px, py):
    """``(inside, u, offset)`` of the world point ``(px, py)`` in ``lane``'s coordinates:
    ``inside`` when it lies within the lane's strip (half a lane either side of its centre)
    between its ends. Before the start or past the end, ``u`` is 0 or the length and
    ``offset`` is taken from the tangent there."""
    r = net.lane_road[lane]
    s, d, inside = road_foot(net, r, px, py)
    offset = (d - net.lane_d[lane]) * net.lane_dir[lane]
    inside = inside and abs(offset) <= 0.5 * net.road_width[r]
    return inside, lane_u_at(net, lane, s), offset


@kernel
def track(net, route, g, hint, px, py):
    """The ``(lane, u, offset)`` of the ego's centre ``(px, py)`` (m), given the lane it was
    on (``hint``; -1 for none): that lane while the point is within its strip, else its
    successors (the route's first), else whichever lane of the hint's road holds it, else the
    nearest lane holding it anywhere (:func:`lanesim.sim.network.locate`); ``(-1, nan, nan)``
    off the road. Preferring the lanes the ego came by keeps it on its own connector where a
    junction's connectors overlap."""
    if hint >= 0:
        inside, u, offset = on_lane(net, hint, px, py)
        if inside:
            return hint, u, offset
        nxt = route.next[g, hint]
        if nxt >= 0:
            inside, u, offset = on_lane(net, nxt, px, py)
            if inside:
                return nxt, u, offset
        for k in range(route.succ_start[hint], route.succ_start[hint + 1]):
            t = route.succ[k]
            if t != nxt:
                inside, u, offset = on_lane(net, t, px, py)
                if inside:
                    return t, u, offset
        r = net.lane_road[hint]
        s, d, inside = road_foot(net, r, px, py)
        if inside:
            idx = int(math.floor(d / net.road_width[r]))
            if -net.road_back[r] <= idx < net.road_lanes[r]:
                t = net.road_first_lane[r] + (idx if idx >= 0 else net.road_lanes[r] - 1 - idx)
                return t, lane_u_at(net, t, s), (d - net.lane_d[t]) * net.lane_dir[t]
    return locate(net, px, py)


@kernel
def route_heading(net, route, g, lane, u):
    """Heading (rad, not wrapped) of the route's centre line ``u`` m from ``lane``'s start,
    following the route's successors past lane ends (straight on past a dead end). It walks
    at most as many lane ends as the network has lanes, so an infinite ``u`` on a loop ends."""
    for _ in range(net.lane_length.shape[0]):
        if not u > net.lane_length[lane]:
            break
        nxt = route.next[g, lane]
        if nxt < 0:
            break
        u -= net.lane_length[lane]
        lane = nxt
    return _lane_heading(net, lane, min(max(u, 0.0), net.lane_length[lane]))


@kernel
def _heading_at(net, route, g, prev, lane, u):
    """:func:`route_heading`, and for ``u < 0`` the heading ``-u`` m before the end of
    ``prev`` (the lane before ``lane``; -1: the start's)."""
    if u < 0.0 and prev >= 0:
        return _lane_heading(net, prev, max(net.lane_length[prev] + u, 0.0))
    return route_heading(net, route, g, lane, u)


# ---------------------------------------------------------------------- autopilot
@kernel
def autopilot(net, route, g, ego, x, y, heading, speed, lane, target, target_speed, dt):
    """Ego controls ``(steer (rad), accel (m/s²))`` that bring the ego (centre ``(x, y)`` m,
    ``heading`` rad, ``speed`` m/s, on ``lane`` as :func:`track` gives it) to the centre of
    ``target`` (its own lane or a neighbour: :func:`resolve_target` reads it) at
    ``target_speed`` (m/s), for controls held ``dt`` s (0 < dt <= 1). ``ego`` is the
    :class:`~lanesim.sim.models.EgoModel` record. Off the road (``lane`` -1) it holds the wheel
    straight and still controls speed.

    The law and gains are :func:`lanesim.sim.ego.autopilot`'s (a lateral speed toward the
    lane centre, bounded; a heading gain; curvature feed-forward), fitted to a junction's
    tight turns and to the step it is held for:

    - the lateral error is taken at the rear axle, which a kinematic bicycle moves along its
      heading; at the centre the bicycle's slip would hold the ego off the lane centre through
      every turn;
    - the step moves the rear axle straight along the heading it starts with, so the law
      aims it along the chord of the route's next ``speed × dt`` metres, and its feed-forward
      is how much the chords turn from this step's to the next, read across lane ends and
      connectors: the ego turns into a connector's arc in the step it reaches it;
    - the steer that gives the yaw rate asked for is the bicycle's own inverse (yaw rate =
      speed × sin(slip) / half the wheelbase, tan(slip) = tan(steer) / 2).

    Measured on the bundled junctions (tests/test_netego.py), the ego's centre keeps within
    0.3 m of its lane at 8 to 25 m/s; it asks for no lower speed in a turn (the target speed is
    the caller's).
    """
    accel = min(max(AUTOPILOT_SPEED_GAIN * (target_speed - speed), -ego.max_brake),
                ego.max_accel)
    if lane < 0:
        return 0.0, accel
    t = resolve_target(net, route, lane, target)
    half = 0.5 * ego.wheelbase
    rx, ry = x - half * math.cos(heading), y - half * math.sin(heading)
    inside, u, offset = on_lane(net, t, rx, ry)
    prev = -1
    if not inside and u <= 0.0:
        # The rear axle has not reached the target's start: follow the predecessor it is on
        # (beside it, nearest), in the target's coordinates (u < 0), until it does.
        best = np.inf
        for k in range(route.pred_start[t], route.pred_start[t + 1]):
            p = route.pred[k]
            _, up, op = on_lane(net, p, rx, ry)
            if abs(op) < best:
                best, prev, u, offset = abs(op), p, up - net.lane_length[p], op
    v = max(speed, 1.0)
    lateral = min(max(-AUTOPILOT_LATERAL_GAIN * offset, -AUTOPILOT_MAX_LATERAL_SPEED),
                  AUTOPILOT_MAX_LATERAL_SPEED)
    want_rel = -math.atan2(lateral, v)  # heading relative to the lane; right is negative
    # A step moves the rear axle straight along the heading it starts with: aim it along the
    # chord of the lane's next ``ahead`` metres, and turn it by as much as the chords turn from
    # this step's to the next's (on an arc, the lane's heading change over one step).
    ahead = v * dt
    h0 = _heading_at(net, route, g, prev, t, u)
    h1 = h0 + wrap_heading(_heading_at(net, route, g, prev, t, u + ahead) - h0)
    h2 = h0 + wrap_heading(_heading_at(net, route, g, prev, t, u + 2.0 * ahead) - h0)
    rel = wrap_heading(heading - 0.5 * (h0 + h1))
    yaw_rate = 0.5 * (h2 - h0) / dt + AUTOPILOT_HEADING_GAIN * (want_rel - rel)
    slip = math.asin(min(max(yaw_rate * half / v, -1.0), 1.0))
    steer = min(max(math.atan(2.0 * math.tan(slip)), -ego.max_steer), ego.max_steer)
    return steer, accel
