"""The network simulator's step, compiled: traffic on a road network (IDM car following along
each car's route, mandatory lane changes with a MOBIL safety check, right of way at
conflicts), spawning and leaving, the ego's kinematic bicycle tracked on the lanes, and
collisions, for ``B`` worlds in one call (:func:`run_net`).

The kernels take the world whole (:class:`NetState`), the per-step scratch space
(:class:`NetScratch`), the network (:class:`~lanesim.sim.network.NetworkArrays`), its lane graph
and conflicts (:class:`~lanesim.sim.conflicts.LaneGraph`) and the parameters
(:class:`NetParams`). A world's step reads its own state and its own random stream only, so a
world steps the same alone or in any batch.

Each step, per world: every entity's *path* ahead (its lane, then the lanes its route takes,
up to ``lookahead``) is listed lane by lane (the *entries*: who is on or heading into each lane,
at which position in that lane's coordinates); traffic's accelerations are computed from that
picture of the step's start; the ego moves; traffic moves; collisions are marked. Every
``period`` steps cars decide lane changes and new cars enter.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lanesim.sim.collision import rectangles_overlap
from lanesim.sim.conflicts import LaneGraph
from lanesim.sim.jit import kernel, kernel_nogil
from lanesim.sim.models import (
    ASSUMED_EGO_ACCEL,
    ASSUMED_EGO_DECEL,
    ASSUMED_EGO_HEADWAY,
    ASSUMED_EGO_MIN_GAP,
    MAX_BRAKING,
    MAX_LANE_CHANGE_ANGLE,
    MERGE_RUN_OUT,
    TRAFFIC_LATERAL_GAIN,
)
from lanesim.sim.netego import (
    RouteArrays,
    arrived,
    autopilot,
    lane_errors,
    neighbour,
    on_lane,
    remaining,
    resolve_target,
    track,
    wrong_turn,
)
from lanesim.sim.network import (
    NetworkArrays,
    lane_point,
    lane_reference_s,
    lane_u_at,
    wrap_heading,
)
from lanesim.sim.rng import stream_base, stream_uniform
from lanesim.sim.state import (
    CAR,
    COMMAND_ACCEL,
    COMMAND_LANE,
    COMMAND_SPEED,
    COMMAND_STEER,
    EGO,
)
from lanesim.sim.traffic import idm_acceleration

INACTIVE = -1
# Rows of the ego's trace on a network (run_net), per simulation step: the metres it made along
# its route (the fall of netego.remaining; without a goal, or off it, along its lane), its
# offset from its lane's centre (m, + right) and heading error (rad, + left), half its lane's
# width (m), its lane (-1 off the network), whether it moved to a neighbouring lane of its road,
# left the network, crashed, arrived at its goal, or entered a lane off its route.
(NT_ALONG, NT_OFFSET, NT_HEADING_ERROR, NT_HALF_LANE, NT_LANE, NT_CHANGE, NT_OFFROAD,
 NT_CRASHED, NT_ARRIVED, NT_WRONG_TURN) = range(10)
N_NET_TRACE = 10
# Path lanes listed per entity (its own and the next ones).
PATH_LANES = 8
# Below this speed (m/s) a car counts as stopped (the no-deadlock statistics).
STOPPED_SPEED = 0.1
# Lateral speed bound while changing lanes: the car's speed, but at least this (m/s), times
# sin(MAX_LANE_CHANGE_ANGLE): a car held at its lane's end still gets across.
MIN_LANE_CHANGE_SPEED = 3.0
# A car slower than HELD_SPEED (m/s) within HELD_GAP (m) of its leader is held in a queue.
HELD_SPEED = 1.0
HELD_GAP = 8.0
# Random numbers per entry lane in one decision's draw: spawn, exit road, six behaviours.
DRAWS_PER_ENTRY = 8


class NetState(NamedTuple):
    """Everything a step changes, ``B`` worlds × ``N`` entity slots (entity 0 the ego)."""

    x: np.ndarray  # (B, N) m
    y: np.ndarray  # (B, N) m
    heading: np.ndarray  # (B, N) rad, counter-clockwise from +x
    speed: np.ndarray  # (B, N) m/s
    length: np.ndarray  # (B, N) m
    width: np.ndarray  # (B, N) m
    u: np.ndarray  # (B, N) m along the lane from its start (0 when off the network)
    offset: np.ndarray  # (B, N) m right of the lane centre (0 when off the network)
    desired_speed: np.ndarray  # (B, N) m/s: traffic's IDM parameters, drawn at spawn
    time_headway: np.ndarray  # (B, N) s
    max_accel: np.ndarray  # (B, N) m/s²
    comfort_decel: np.ndarray  # (B, N) m/s²
    min_gap: np.ndarray  # (B, N) m
    stopped: np.ndarray  # (B, N) s the entity has been below STOPPED_SPEED without a break
    lane: np.ndarray  # (B, N) int: lane under the centre, -1 off the network / inactive
    kind: np.ndarray  # (B, N) int: EGO, CAR or INACTIVE
    dest: np.ndarray  # (B, N) int: traffic's exit (column of LaneGraph.hop)
    change: np.ndarray  # (B, N) int: lane change under way, -1 left, +1 right, 0 none
    crashed: np.ndarray  # (B, N) bool
    ego_route: np.ndarray  # (B,) int: the route (index into the RouteArrays stack) the ego
    # follows: traffic sees it heading where that route goes, the autopilot steers along it
    clock: np.ndarray  # (B,) s since reset
    steps: np.ndarray  # (B,) int: simulation steps since reset
    traffic_crashes: np.ndarray  # (B,) int: traffic cars crashed by anything but the ego
    arrivals: np.ndarray  # (B,) int: cars that left at an exit since reset
    spawned: np.ndarray  # (B,) int: cars that entered since reset
    max_stopped: np.ndarray  # (B,) s: the longest any car has stood still since reset
    applied: np.ndarray  # (2, B): the ego's last steering (rad) and acceleration (m/s²)
    rng_seed: np.ndarray  # (B,) uint64 (lanesim.sim.rng)
    rng_counter: np.ndarray  # (B,) uint64


class NetScratch(NamedTuple):
    """Per-step working space, rebuilt from the state. Carried between steps only where that
    gives the same numbers: the entries within one :func:`run_net` call while the state they
    list stands (``step_net_world``'s ``fresh``), and ``radius`` with the sizes it is of."""

    path_lane: np.ndarray  # (B, N, PATH_LANES) int
    path_at: np.ndarray  # (B, N, PATH_LANES) m: the entity's centre in that lane's coordinates
    path_n: np.ndarray  # (B, N) int: lanes listed
    ent_ptr: np.ndarray  # (B, L + 1) int: lane l's entries are ent_ptr[l] .. ent_ptr[l+1]-1
    ent_j: np.ndarray  # (B, M) int: the entity
    ent_at: np.ndarray  # (B, M) m: its centre in the lane's coordinates
    ent_on: np.ndarray  # (B, M) bool: it is on the lane (or changing into it) now
    tmp_lane: np.ndarray  # (B, M) int
    tmp_j: np.ndarray  # (B, M) int
    tmp_at: np.ndarray  # (B, M)
    tmp_on: np.ndarray  # (B, M) bool
    accel: np.ndarray  # (B, N) m/s²
    best: np.ndarray  # (B, 2): a leader search's (entity, centre distance m)
    lead: np.ndarray  # (B, N) int: the entity each one follows this step, -1 none
    lead_gap: np.ndarray  # (B, N) m: bumper gap to it (inf: none)
    radius: np.ndarray  # (B, N) m: half each entity's diagonal (collisions)
    sized: np.ndarray  # (B, 2, N) m: the length and width radius was computed from (NaN:
    # none yet; kept across steps)


class NetParams(NamedTuple):
    """The models' values the kernels read (built and validated by
    :class:`lanesim.sim.networld.NetWorldSpec`)."""

    dt: float  # s
    period: int  # steps between decisions (lane changes, spawning)
    lookahead: float  # m of route searched ahead for leaders and conflicts
    spawn_prob: float  # chance per decision per entry lane that a car wants to enter
    desired_speed: tuple  # (lo, hi) m/s
    time_headway: tuple  # (lo, hi) s
    max_accel: tuple  # (lo, hi) m/s²
    comfort_decel: tuple  # (lo, hi) m/s²
    min_gap: tuple  # (lo, hi) m
    car_length: tuple  # (lo, hi) m
    car_width: float  # m
    safe_decel: float  # m/s², MOBIL's b_safe
    gap_margin: float  # s a yielding car keeps between its clearing a zone and another's arrival
    commit_decel: float  # m/s²: a car that would need more to stop before a zone goes on
    stop_margin: float  # m between a stop line and its zone
    wheelbase: float  # the ego's bicycle model (lanesim.sim.models.EgoModel)
    max_steer: float
    ego_max_accel: float
    ego_max_brake: float
    ego_max_speed: float


# ---------------------------------------------------------------------- small helpers
@kernel
def across(net, lane, u, other):
    """``u`` (m along ``lane``) as the same place along the parallel lane ``other``."""
    _, s = lane_reference_s(net, lane, u)
    return min(max(lane_u_at(net, other, s), 0.0), net.lane_length[other])


@kernel
def time_to_cover(distance, speed, accel, top):
    """Earliest time (s) to drive ``distance`` (m) from ``speed`` (m/s) accelerating at
    ``accel`` (m/s²) up to ``top`` (m/s; not below ``speed``)."""
    if distance <= 0.0:
        return 0.0
    a = max(accel, 0.1)
    top = max(top, speed, 0.1)
    run_up = (top * top - speed * speed) / (2.0 * a)  # m to reach top speed
    if distance <= run_up:
        return (-speed + math.sqrt(speed * speed + 2.0 * a * distance)) / a
    return (top - speed) / a + (distance - run_up) / top


@kernel
def idm_of(st, b, e, speed, desired, gap, leader_speed):
    """IDM acceleration of entity ``e``; the ego judged as a typical driver."""
    if st.kind[b, e] == CAR:
        return idm_acceleration(speed, desired, gap, leader_speed, st.time_headway[b, e],
                                st.max_accel[b, e], st.comfort_decel[b, e], st.min_gap[b, e])
    return idm_acceleration(speed, desired, gap, leader_speed, ASSUMED_EGO_HEADWAY,
                            ASSUMED_EGO_ACCEL, ASSUMED_EGO_DECEL, ASSUMED_EGO_MIN_GAP)


@kernel
def next_lane(st, g, route, b, e, lane):
    """The lane entity ``e`` takes after ``lane`` (-1: none, or its exit): traffic by its route
    table, the ego by its route (:mod:`lanesim.sim.netego`, index ``st.ego_route[b]``)."""
    if st.kind[b, e] == CAR:
        if g.exit[lane]:
            return -1
        return g.hop[lane, st.dest[b, e]]
    return route.next[st.ego_route[b], lane]


@kernel
def side_lane(st, net, g, b, e):
    """The neighbour lane entity ``e`` also occupies: the one it is changing into, else the one
    its body reaches into across a lane line (after the change, while it centres); -1 none."""
    lane = st.lane[b, e]
    if st.change[b, e] != 0:
        return neighbour(g, lane, st.change[b, e])
    off = st.offset[b, e]
    if abs(off) + 0.5 * st.width[b, e] > 0.5 * net.road_width[net.lane_road[lane]]:
        return neighbour(g, lane, 1 if off > 0.0 else -1)
    return -1


# ---------------------------------------------------------------------- the picture of a step
@kernel
def build_entries(st, sc, net, g, route, params, b):
    """List every active entity's path and, lane by lane, who is on or heading into it."""
    N = st.x.shape[1]
    L = g.length.shape[0]
    n = 0
    for e in range(N):
        sc.path_n[b, e] = 0
        lane = st.lane[b, e]
        if st.kind[b, e] == INACTIVE or lane < 0:
            continue
        at = st.u[b, e]
        k = 0
        while True:
            sc.path_lane[b, e, k] = lane
            sc.path_at[b, e, k] = at
            sc.tmp_lane[b, n], sc.tmp_j[b, n] = lane, e
            sc.tmp_at[b, n], sc.tmp_on[b, n] = at, k == 0
            n += 1
            k += 1
            ahead = g.length[lane] - at
            if k >= PATH_LANES or ahead > params.lookahead:
                break
            nxt = next_lane(st, g, route, b, e, lane)
            if nxt < 0:
                break
            at -= g.length[lane]
            lane = nxt
        sc.path_n[b, e] = k
        other = side_lane(st, net, g, b, e)
        if other >= 0:
            sc.tmp_lane[b, n], sc.tmp_j[b, n] = other, e
            sc.tmp_at[b, n] = across(net, st.lane[b, e], st.u[b, e], other)
            sc.tmp_on[b, n] = True
            n += 1
    # Counting sort by lane (stable: entities in order within a lane).
    ptr = sc.ent_ptr[b]
    for q in range(L + 1):
        ptr[q] = 0
    for m in range(n):
        ptr[sc.tmp_lane[b, m] + 1] += 1
    for q in range(L):
        ptr[q + 1] += ptr[q]
    for m in range(n):
        q = sc.tmp_lane[b, m]
        slot = ptr[q]
        sc.ent_j[b, slot], sc.ent_at[b, slot], sc.ent_on[b, slot] = (
            sc.tmp_j[b, m], sc.tmp_at[b, m], sc.tmp_on[b, m])
        ptr[q] += 1
    for q in range(L, 0, -1):
        ptr[q] = ptr[q - 1]
    ptr[0] = 0


@kernel
def lead_on(st, sc, b, e, lane, at, best):
    """The nearest entity ``best[0]`` (centre distance ``best[1]``) on ``lane`` ahead of
    position ``at`` (m, ``e``'s centre in the lane's coordinates), if nearer than ``best``."""
    for m in range(sc.ent_ptr[b, lane], sc.ent_ptr[b, lane + 1]):
        j = sc.ent_j[b, m]
        if j == e or not sc.ent_on[b, m]:
            continue
        d = sc.ent_at[b, m] - at
        if d > 0.0 or (d == 0.0 and j > e):
            if d < best[1]:
                best[0], best[1] = j, d


@kernel
def leader(st, sc, net, g, params, b, e, best):
    """What entity ``e`` follows along its path: ``best`` = (entity or -1, centre distance m)."""
    best[0], best[1] = -1.0, np.inf
    half = 0.5 * st.length[b, e]
    for k in range(sc.path_n[b, e]):
        q = sc.path_lane[b, e, k]
        at = sc.path_at[b, e, k]
        lead_on(st, sc, b, e, q, at, best)
        # While near the start of a diverge, the car ahead on a sibling branch is still ahead.
        if g.diverge_len[q] > 0.0 and at - half < g.diverge_len[q]:
            for pk in range(g.pred_ptr[q], g.pred_ptr[q + 1]):
                p = g.pred[pk]
                if k > 0 and p != sc.path_lane[b, e, k - 1]:
                    continue
                for sk in range(g.succ_ptr[p], g.succ_ptr[p + 1]):
                    sib = g.succ[sk]
                    if sib != q:
                        lead_on(st, sc, b, e, sib, at, best)
        if best[0] >= 0:
            break
    # Changing lanes, or still across a lane line: the car ahead in the other lane counts too.
    other = side_lane(st, net, g, b, e)
    if other >= 0:
        lead_along(st, sc, g, params, b, e, other, across(net, st.lane[b, e], st.u[b, e], other),
                   best)


@kernel
def lead_along(st, sc, g, params, b, e, lane, at, best):
    """The nearest entity ahead of position ``at`` (m) of ``lane`` and on into the lanes that
    continue it (``e``'s route, else the only successor), up to ``lookahead``, into ``best``
    if nearer."""
    for _ in range(PATH_LANES):
        lead_on(st, sc, b, e, lane, at, best)
        to_end = g.length[lane] - at
        if best[1] <= to_end or to_end > params.lookahead:
            return  # nothing further on can be nearer
        nxt = g.hop[lane, st.dest[b, e]] if st.kind[b, e] == CAR else -1
        if nxt < 0:
            if g.succ_ptr[lane + 1] - g.succ_ptr[lane] != 1:
                return
            nxt = g.succ[g.succ_ptr[lane]]
        at -= g.length[lane]
        lane = nxt


@kernel
def held(st, sc, b, j):
    """Whether entity ``j`` stands held: queued behind its leader, or (traffic) stopped and
    not setting off (its last acceleration, of this step if already computed, else of the
    last). Such a car arrives at a zone no sooner than it moves: it is no threat to a yielding
    car now, and counting it would let queues and waiting cars wait on each other."""
    if st.speed[b, j] >= HELD_SPEED:
        return False
    if sc.lead_gap[b, j] < HELD_GAP:
        return True
    return st.kind[b, j] == CAR and sc.accel[b, j] <= 0.0


@kernel
def zone_blocked(st, sc, g, params, b, e, q, c, rear, speed):
    """Who makes entity ``e`` (rear at ``rear`` m in lane ``q``'s coordinates, ``speed`` m/s),
    not yet at conflict ``c``'s zone (one of ``q``'s), stop before it: someone inside the other
    lane's zone or unable to stop before it any more, or, where ``e`` yields, someone who
    arrives there before ``e`` would have cleared its own zone, with ``gap_margin`` to spare.
    Returns that entity, -1 if none."""
    o = g.conf_other[c]
    w0, w1 = g.conf_w0[c], g.conf_w1[c]
    yields = g.conf_yield[c]
    if st.kind[b, e] == CAR:
        accel, top = st.max_accel[b, e], st.desired_speed[b, e]
    else:
        accel, top = params.ego_max_accel, params.ego_max_speed
    # Clear a crossing with the rear; a merge once ahead of the other at the merge point.
    clear_from = rear + st.length[b, e] if g.conf_merge[c] else rear
    t_clear = time_to_cover(g.conf_z1[c] - clear_from, speed, accel, min(top, g.speed_limit[q]))
    for m in range(sc.ent_ptr[b, o], sc.ent_ptr[b, o + 1]):
        j = sc.ent_j[b, m]
        if j == e:
            continue
        half = 0.5 * st.length[b, j]
        front_j, rear_j = sc.ent_at[b, m] + half, sc.ent_at[b, m] - half
        if rear_j > w1:
            continue  # past the zone
        if front_j >= min(w0, g.conf_first[o]) - params.stop_margin:
            return j  # inside, or past its stop line: committed
        vj = st.speed[b, j]
        to_stop = g.conf_first[o] - params.stop_margin - front_j
        if vj * vj > 2.0 * params.commit_decel * to_stop:
            return j  # it cannot stop before the zone any more
        if yields and not held(st, sc, b, j):
            if st.kind[b, j] == CAR:
                aj, top_j = st.max_accel[b, j], st.desired_speed[b, j]
            else:
                aj, top_j = params.ego_max_accel, params.ego_max_speed
            if time_to_cover(w0 - front_j, vj, aj, top_j) < t_clear + params.gap_margin:
                return j
    return -1


@kernel
def find_leader(st, sc, net, g, params, b, e, best):
    """Store what entity ``e`` follows this step in ``sc.lead`` and ``sc.lead_gap``."""
    leader(st, sc, net, g, params, b, e, best)
    j = int(best[0])
    sc.lead[b, e] = j
    if j >= 0:
        sc.lead_gap[b, e] = best[1] - 0.5 * (st.length[b, e] + st.length[b, j])
    else:
        sc.lead_gap[b, e] = np.inf


@kernel
def traffic_accel(st, sc, net, g, route, params, b, e):
    """Acceleration (m/s²) of traffic car ``e`` for this step (after :func:`find_leader`)."""
    v = st.speed[b, e]
    lane = st.lane[b, e]
    half = 0.5 * st.length[b, e]
    desired = min(st.desired_speed[b, e], g.speed_limit[lane])
    j = sc.lead[b, e]
    if j >= 0:
        a = idm_of(st, b, e, v, desired, sc.lead_gap[b, e], st.speed[b, j])
    else:
        a = idm_of(st, b, e, v, desired, np.inf, 0.0)
    last = sc.path_n[b, e] - 1
    for k in range(sc.path_n[b, e]):
        q = sc.path_lane[b, e, k]
        at = sc.path_at[b, e, k]
        front, rear = at + half, at - half
        if k > 0 and g.speed_limit[q] < v:
            # Slow down for a bend ahead in time.
            dist = max(-at - half, 0.5)
            lim = g.speed_limit[q]
            a = min(a, (lim * lim - v * v) / (2.0 * dist))
        # A lane's zones are entered as one: gap acceptance for all of them at the stop line of
        # the first, never a stop between two (inside the first).
        first = g.conf_first[q]
        if front < first - params.stop_margin:
            to_stop = first - params.stop_margin - front
            if to_stop <= v * v / 2.0 + 30.0 and v * v <= 2.0 * params.commit_decel * to_stop:
                for c in range(g.conf_ptr[q], g.conf_ptr[q + 1]):
                    if rear > g.conf_z1[c]:
                        continue
                    if zone_blocked(st, sc, g, params, b, e, q, c, rear, v) >= 0:
                        a = min(a, idm_of(st, b, e, v, desired, to_stop, 0.0))
                        break
        if k == last and not g.exit[q] and next_lane(st, g, route, b, e, q) < 0:
            # The route leaves this lane sideways: stop before its end until across.
            end = g.length[q] - front - (1.0 if st.change[b, e] != 0 else MERGE_RUN_OUT)
            a = min(a, idm_of(st, b, e, v, desired, max(end, 0.0), 0.0))
    return min(max(a, -MAX_BRAKING), st.max_accel[b, e])


# ---------------------------------------------------------------------- motion
@kernel
def deactivate(st, b, e):
    st.kind[b, e] = INACTIVE
    st.lane[b, e] = -1
    st.speed[b, e] = 0.0
    st.u[b, e] = 0.0
    st.offset[b, e] = 0.0
    st.change[b, e] = 0
    st.stopped[b, e] = 0.0
    st.crashed[b, e] = False


@kernel
def move_car(st, net, g, params, b, e, accel):
    """Move traffic car ``e`` one step along its lanes (a crashed car stands)."""
    dt = params.dt
    v = st.speed[b, e]
    if st.crashed[b, e]:
        st.speed[b, e] = 0.0
        return
    v_new = max(v + accel * dt, 0.0)
    st.speed[b, e] = v_new
    lane = st.lane[b, e]
    u = st.u[b, e] + 0.5 * (v + v_new) * dt
    # Lateral motion: toward the neighbour's centre while changing, else the own.
    w = net.road_width[net.lane_road[lane]]
    side = st.change[b, e]
    if side != 0 and neighbour(g, lane, side) < 0:
        side = 0
        st.change[b, e] = 0
    target = side * w
    err = target - st.offset[b, e]
    bound = max(v_new, MIN_LANE_CHANGE_SPEED) * math.sin(MAX_LANE_CHANGE_ANGLE)
    rate = min(max(TRAFFIC_LATERAL_GAIN * err, -bound), bound)
    step = rate * dt
    if abs(step) > abs(err):
        step = err
    off = st.offset[b, e] + step
    if side != 0 and abs(off) > 0.5 * w:
        other = neighbour(g, lane, side)
        u = across(net, lane, min(u, g.length[lane]), other) + max(u - g.length[lane], 0.0)
        lane = other
        off -= side * w
        st.change[b, e] = 0
    while u > g.length[lane]:
        if g.exit[lane]:
            deactivate(st, b, e)
            st.arrivals[b] += 1
            return
        nxt = g.hop[lane, st.dest[b, e]]
        if nxt < 0:
            u = g.length[lane]  # held at the end (its stop line prevents this)
            st.speed[b, e] = 0.0
            break
        u -= g.length[lane]
        lane = nxt
    st.lane[b, e], st.u[b, e], st.offset[b, e] = lane, u, off
    x, y, h = lane_point(net, lane, u, off)
    st.x[b, e], st.y[b, e] = x, y
    run = max(v_new, 1.0)
    # No lateral motion (most cars, most steps): atan2(±0, run > 0) is that zero, without the
    # call; the same bits.
    slip = rate if rate == 0.0 and run > 0.0 else math.atan2(rate, run)
    st.heading[b, e] = wrap_heading(h - slip)


@kernel
def move_ego(st, net, route, params, b, steer, accel):
    """One step of the ego: the kinematic bicycle of :func:`lanesim.sim.ego.move_ego` (about
    the centre of gravity at mid-wheelbase; a crashed ego stops), then tracked on the lanes
    by :func:`lanesim.sim.netego.track` (lane -1 and coordinates 0 off the network)."""
    dt = params.dt
    v, h = st.speed[b, 0], st.heading[b, 0]
    beta = math.atan(0.5 * math.tan(steer))
    st.x[b, 0] += v * math.cos(h + beta) * dt
    st.y[b, 0] += v * math.sin(h + beta) * dt
    st.heading[b, 0] = wrap_heading(h + v * math.sin(beta) / (0.5 * params.wheelbase) * dt)
    if st.crashed[b, 0]:
        st.speed[b, 0] = 0.0
    else:
        st.speed[b, 0] = min(max(v + accel * dt, 0.0), params.ego_max_speed)
    lane, u, off = track(net, route, st.ego_route[b], st.lane[b, 0], st.x[b, 0], st.y[b, 0])
    if lane < 0:
        lane, u, off = -1, 0.0, 0.0
    st.lane[b, 0], st.u[b, 0], st.offset[b, 0] = lane, u, off


@kernel
def collide_world(st, b, radius, sized):
    """Mark every pair of active entities whose rectangles overlap as crashed, counting in
    ``traffic_crashes`` each traffic car newly crashed by anything but the ego. All pairs,
    pruned by the distance of their centres (a world holds tens of entities). ``radius``
    ``(N,)`` holds each entity's half diagonal, ``sized`` ``(2, N)`` the length and width it
    was computed from (scratch kept across steps: a car keeps its size, so most steps reuse
    it; the same hypot of the same numbers)."""
    N = st.x.shape[1]
    for i in range(N):
        if st.kind[b, i] != INACTIVE:
            length, width = st.length[b, i], st.width[b, i]
            if length != sized[0, i] or width != sized[1, i]:
                radius[i] = 0.5 * math.hypot(length, width)
                sized[0, i], sized[1, i] = length, width
    for i in range(N):
        if st.kind[b, i] == INACTIVE:
            continue
        ri = radius[i]
        for j in range(i + 1, N):
            if st.kind[b, j] == INACTIVE:
                continue
            rj = radius[j]
            dx, dy = st.x[b, j] - st.x[b, i], st.y[b, j] - st.y[b, i]
            if dx * dx + dy * dy > (ri + rj) * (ri + rj):
                continue
            if not rectangles_overlap(st.x[b, i], st.y[b, i], st.heading[b, i],
                                      st.length[b, i], st.width[b, i], st.x[b, j], st.y[b, j],
                                      st.heading[b, j], st.length[b, j], st.width[b, j]):
                continue
            ego_involved = st.kind[b, i] == EGO or st.kind[b, j] == EGO
            for k in (i, j):
                if not st.crashed[b, k] and st.kind[b, k] == CAR and not ego_involved:
                    st.traffic_crashes[b] += 1
                st.crashed[b, k] = True


# ---------------------------------------------------------------------- decisions
@kernel
def try_lane_change(st, sc, net, g, params, b, e):
    """Start car ``e``'s lane change where its route wants one and it is safe (MOBIL's safety
    criterion: neither it behind its new leader nor its new follower behind it brakes harder
    than ``safe_decel``, and both gaps are positive)."""
    lane = st.lane[b, e]
    side = g.change[lane, st.dest[b, e]]
    if side == 0:
        return
    other = neighbour(g, lane, side)
    if other < 0:
        return
    me = across(net, lane, st.u[b, e], other)
    half = 0.5 * st.length[b, e]
    v = st.speed[b, e]
    best = sc.best[b]
    best[0], best[1] = -1.0, np.inf
    lead_along(st, sc, g, params, b, e, other, me, best)
    lead, lead_d = int(best[0]), best[1]
    back, back_d = -1, np.inf
    for m in range(sc.ent_ptr[b, other], sc.ent_ptr[b, other + 1]):
        j = sc.ent_j[b, m]
        d = me - sc.ent_at[b, m]
        if j != e and j != lead and d > 0.0 and d < back_d:
            back, back_d = j, d
    if lead >= 0:
        gap = lead_d - half - 0.5 * st.length[b, lead]
        if gap < 1.0:
            return
        if idm_of(st, b, e, v, st.desired_speed[b, e], gap, st.speed[b, lead]) < -params.safe_decel:
            return
    if back >= 0:
        gap = back_d - half - 0.5 * st.length[b, back]
        if gap < 1.0:
            return
        vb = st.speed[b, back]
        want = st.desired_speed[b, back] if st.kind[b, back] == CAR else params.ego_max_speed
        if idm_of(st, b, back, vb, want, gap, v) < -params.safe_decel:
            return
    st.change[b, e] = side


@kernel
def spawn(st, sc, net, g, params, b, base):
    """New cars at entry lanes: each entry lane, with chance ``spawn_prob``, gets a car in a
    free slot at its start, when the car ahead there leaves room for the newcomer's headway
    at the speed it would enter with."""
    N = st.x.shape[1]
    G = g.entry_dest.shape[1]
    for k in range(g.entries.shape[0]):
        i0 = k * DRAWS_PER_ENTRY
        if stream_uniform(base, i0) >= params.spawn_prob:
            continue
        slot = -1
        for e in range(1, N):
            if st.kind[b, e] == INACTIVE:
                slot = e
                break
        if slot < 0:
            return
        lane = g.entries[k]
        length = params.car_length[0] + stream_uniform(base, i0 + 7) * (
            params.car_length[1] - params.car_length[0])
        desired = params.desired_speed[0] + stream_uniform(base, i0 + 2) * (
            params.desired_speed[1] - params.desired_speed[0])
        headway = params.time_headway[0] + stream_uniform(base, i0 + 3) * (
            params.time_headway[1] - params.time_headway[0])
        min_gap = params.min_gap[0] + stream_uniform(base, i0 + 6) * (
            params.min_gap[1] - params.min_gap[0])
        v0 = min(desired, g.speed_limit[lane])
        room = np.inf
        for m in range(sc.ent_ptr[b, lane], sc.ent_ptr[b, lane + 1]):
            j = sc.ent_j[b, m]
            if st.kind[b, j] == INACTIVE:
                continue
            rear = sc.ent_at[b, m] - 0.5 * st.length[b, j]
            if rear < room:
                room = rear
                v0 = min(v0, st.speed[b, j])
        if room - length < v0 * headway + min_gap + 2.0:
            continue
        # The exit road, uniformly among those reachable from here.
        options = 0
        for gg in range(G):
            if g.entry_dest[k, gg] >= 0:
                options += 1
        if options == 0:
            continue
        pick = min(int(stream_uniform(base, i0 + 1) * options), options - 1)
        dest = -1
        for gg in range(G):
            if g.entry_dest[k, gg] >= 0:
                if pick == 0:
                    dest = g.entry_dest[k, gg]
                    break
                pick -= 1
        # Enter no faster than lets the car stop (at its comfortable deceleration) before the
        # first conflict on its route: a fast car entering near a junction could not keep
        # out of a zone another has just entered.
        decel = params.comfort_decel[0] + stream_uniform(base, i0 + 5) * (
            params.comfort_decel[1] - params.comfort_decel[0])
        to_first, q = -0.5 * length - params.stop_margin, lane
        for _ in range(PATH_LANES):
            if g.conf_first[q] < np.inf:
                to_first += g.conf_first[q]
                v0 = min(v0, math.sqrt(2.0 * decel * max(to_first, 0.0)))
                break
            to_first += g.length[q]
            if to_first > params.lookahead or g.exit[q] or g.hop[q, dest] < 0:
                break
            q = g.hop[q, dest]
        e = slot
        st.kind[b, e] = CAR
        st.lane[b, e], st.u[b, e], st.offset[b, e] = lane, 0.5 * length, 0.0
        st.dest[b, e], st.change[b, e] = dest, 0
        st.length[b, e], st.width[b, e] = length, params.car_width
        st.desired_speed[b, e], st.time_headway[b, e], st.min_gap[b, e] = desired, headway, min_gap
        st.max_accel[b, e] = params.max_accel[0] + stream_uniform(base, i0 + 4) * (
            params.max_accel[1] - params.max_accel[0])
        st.comfort_decel[b, e] = decel
        st.speed[b, e] = v0
        st.stopped[b, e] = 0.0
        st.crashed[b, e] = False
        x, y, h = lane_point(net, lane, 0.5 * length, 0.0)
        st.x[b, e], st.y[b, e], st.heading[b, e] = x, y, h
        st.spawned[b] += 1


# ---------------------------------------------------------------------- the step
@kernel
def step_net_world(st, sc, net, g, route, params, b, steer, accel, best, fresh):
    """One simulation step of world ``b`` with ego controls ``steer`` (rad), ``accel`` (m/s²).
    ``fresh``: the scratch's entries (:func:`build_entries`) already list the state, as the
    last step's decisions left it; returns whether they list the state this step leaves (a
    decision step that started no lane change and spawned no car), for the next step."""
    N = st.x.shape[1]
    dt = params.dt
    st.steps[b] += 1
    if not fresh:
        build_entries(st, sc, net, g, route, params, b)
    for e in range(N):
        if st.kind[b, e] != INACTIVE and st.lane[b, e] >= 0:
            find_leader(st, sc, net, g, params, b, e, best)
        else:
            sc.lead[b, e], sc.lead_gap[b, e] = -1, np.inf
    for e in range(1, N):
        if st.kind[b, e] == CAR:
            sc.accel[b, e] = traffic_accel(st, sc, net, g, route, params, b, e)
    if st.kind[b, 0] == EGO:
        move_ego(st, net, route, params, b, steer, accel)
    for e in range(1, N):
        if st.kind[b, e] == CAR:
            move_car(st, net, g, params, b, e, sc.accel[b, e])
    collide_world(st, b, sc.radius[b], sc.sized[b])
    for e in range(1, N):
        if st.kind[b, e] == CAR:
            if st.speed[b, e] < STOPPED_SPEED:
                st.stopped[b, e] += dt
                st.max_stopped[b] = max(st.max_stopped[b], st.stopped[b, e])
            else:
                st.stopped[b, e] = 0.0
    fresh = False
    if st.steps[b] % params.period == 0:
        build_entries(st, sc, net, g, route, params, b)
        fresh = True
        for e in range(1, N):
            if st.kind[b, e] == CAR and st.change[b, e] == 0 and not st.crashed[b, e]:
                try_lane_change(st, sc, net, g, params, b, e)
                fresh = fresh and st.change[b, e] == 0
        if params.spawn_prob > 0.0 and g.entries.shape[0] > 0:
            base = stream_base(st.rng_seed[b], st.rng_counter[b])
            st.rng_counter[b] += np.uint64(1)
            spawned = st.spawned[b]
            spawn(st, sc, net, g, params, b, base)
            fresh = fresh and st.spawned[b] == spawned
    st.clock[b] += dt
    return fresh


@kernel
def trace_ego(st, net, route, params, b, lane0, rem0, row):
    """World ``b``'s ego after a step into ``row`` ``(N_NET_TRACE,)`` (see :func:`run_net`);
    ``lane0`` and ``rem0`` are its lane and remaining route (m) before the step."""
    lane = st.lane[b, 0]
    on = st.kind[b, 0] == EGO and lane >= 0
    g = st.ego_route[b]
    err = lane_errors(net, lane, st.u[b, 0], st.heading[b, 0])[0] if on else 0.0
    rem1 = remaining(net, route, g, lane, st.u[b, 0]) if on else np.inf
    if math.isfinite(rem0) and math.isfinite(rem1):
        row[NT_ALONG] = rem0 - rem1
    elif on and not route.reaches[g, lane]:
        # On a lane from which the goal cannot be reached (come onto sideways, or across a
        # lane's end without a turn onto a successor): nothing made toward the goal.
        row[NT_ALONG] = 0.0
    else:  # no goal (every lane reaches), or just back onto the route: metres along its lane
        row[NT_ALONG] = st.speed[b, 0] * math.cos(err) * params.dt if on else 0.0
    row[NT_OFFSET] = st.offset[b, 0] if on else 0.0
    row[NT_HEADING_ERROR] = err
    row[NT_HALF_LANE] = 0.5 * net.road_width[net.lane_road[lane]] if on else 1.75
    row[NT_LANE] = lane if on else -1.0
    changed = on and lane0 >= 0 and lane != lane0 and (
        neighbour(route, lane0, -1) == lane or neighbour(route, lane0, 1) == lane)
    row[NT_CHANGE] = 1.0 if changed else 0.0
    row[NT_OFFROAD] = 1.0 if st.kind[b, 0] == EGO and lane < 0 else 0.0
    row[NT_CRASHED] = 1.0 if st.crashed[b, 0] else 0.0
    row[NT_ARRIVED] = 1.0 if on and arrived(route, g, lane, st.u[b, 0]) else 0.0
    # A wrong turn is taken at a lane's end, onto a successor off the route or, cutting across
    # lanes there (the ego's centre past the end of the lane it left), onto any lane of
    # another road; a sideways move on one road (onto the oncoming lane to overtake, say) is
    # not one, nor straying onto an overlapping connector inside a junction.
    turned = False
    if on and lane0 >= 0 and lane != lane0:
        for k in range(route.succ_start[lane0], route.succ_start[lane0 + 1]):
            turned = turned or route.succ[k] == lane
        if not turned and net.lane_road[lane] != net.lane_road[lane0]:
            _, u_left, _ = on_lane(net, lane0, st.x[b, 0], st.y[b, 0])
            turned = u_left >= net.lane_length[lane0]
    row[NT_WRONG_TURN] = 1.0 if turned and wrong_turn(route, g, lane) else 0.0


@kernel_nogil
def run_net(st, sc, net, g, route, params, ego, command, use_autopilot, worlds, frames, trace,
            first, stop):
    """Advance the worlds ``first`` to ``stop - 1`` where ``worlds`` (bool ``(B,)``) by
    ``frames`` simulation steps.

    Takes :class:`NetState`, :class:`NetScratch`, the network's arrays,
    :class:`~lanesim.sim.conflicts.LaneGraph`, the ego's routes
    (:class:`~lanesim.sim.netego.RouteArrays`) and :class:`NetParams`, named or as plain
    tuples (cheaper to pass from Python), and the ego's model as a record
    (:func:`lanesim.sim.models.as_record`); releases the GIL.

    Per world ``b``, ``command`` ``(N_COMMAND, B)`` holds either fixed controls (rows
    ``COMMAND_STEER`` rad and ``COMMAND_ACCEL`` m/s², clipped to the ego's limits) or, where
    ``use_autopilot[b]``, the target lane and speed (m/s) of netego's route-following
    autopilot (rows ``COMMAND_LANE``, ``COMMAND_SPEED``), along route ``st.ego_route[b]``; the
    target lane is written back as the autopilot resolves it from the ego's lane each step
    (:func:`lanesim.sim.netego.resolve_target`), so a lane change begun near a lane's end
    carries on into the next road.

    ``trace`` ``(N_NET_TRACE, B, frames)`` (rows ``NT_*``) receives the ego after each step:
    metres made along its route, offset, heading error, half its lane's width, lane, lane
    change, off the network, crashed, arrived, wrong turn (:func:`trace_ego`); 0 and lane -1
    off the network or without an ego. A trace with no frames records nothing.
    """
    # Named again here, at no cost: they come as plain tuples, cheaper to pass from Python
    # (lanesim.sim.state.plain).
    st, sc, net, g = NetState(*st), NetScratch(*sc), NetworkArrays(*net), LaneGraph(*g)
    route, params, ego = RouteArrays(*route), NetParams(*params), ego[0]
    record = trace.shape[2] > 0
    for b in range(first, stop):
        if not worlds[b]:
            continue
        best = sc.best[b]
        # Whether the scratch's entries list world b's state (never on entering: the state may
        # have been written since the last call).
        fresh = False
        for f in range(frames):
            if use_autopilot[b]:
                lane = st.lane[b, 0]
                target = int(command[COMMAND_LANE, b])
                if lane >= 0:
                    target = resolve_target(net, route, lane, target)
                    command[COMMAND_LANE, b] = target
                steer, accel = autopilot(net, route, st.ego_route[b], ego, st.x[b, 0],
                                         st.y[b, 0], st.heading[b, 0], st.speed[b, 0], lane,
                                         target, command[COMMAND_SPEED, b], params.dt)
            else:
                steer = min(max(command[COMMAND_STEER, b], -params.max_steer), params.max_steer)
                accel = min(max(command[COMMAND_ACCEL, b], -params.ego_max_brake),
                            params.ego_max_accel)
            st.applied[0, b], st.applied[1, b] = steer, accel
            lane0 = st.lane[b, 0]
            rem0 = np.inf
            if record and lane0 >= 0:
                rem0 = remaining(net, route, st.ego_route[b], lane0, st.u[b, 0])
            fresh = step_net_world(st, sc, net, g, route, params, b, steer, accel, best, fresh)
            if record:
                trace_ego(st, net, route, params, b, lane0, rem0, trace[:, b, f])
