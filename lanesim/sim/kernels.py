"""The simulator's per-step work, compiled with numba over the packed state arrays.

The state of ``B`` worlds × ``N`` entities is two arrays: ``F`` ``(N_FLOAT, B, N)`` float64 and
``I`` ``(N_INT, B, N)`` int64, plus ``crashed`` ``(B, N)`` bool; the field constants below name
their rows. :class:`lanesim.sim.world.World` exposes each row as a named view (``world.s`` is
``F[S]``), so numpy code and these kernels read and write the same memory.

Why compiled: a step is a few hundred small operations per world; in numpy each one costs a
few microseconds of call overhead whatever the batch size, which capped a single world at a
few hundred steps per second. Here a whole decision (several simulation steps) of every world
is one call, and a world's step is one pass over its entities. Compiled code is cached on disk
(``cache=True``); the first run on a machine compiles it once.

Every kernel is deterministic: randomness comes from each world's counter-based stream
(:mod:`lanesim.sim.rng`), the same numbers whether drawn here or by
:class:`~lanesim.sim.rng.WorldRandom` in numpy.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lanesim.sim.collision import rectangles_overlap
from lanesim.sim.jit import kernel, kernel_nogil
from lanesim.sim.rng import stream_base, stream_uniform
from lanesim.sim.road import pose_at, pose_trig_at, project, segment_at
from lanesim.sim.traffic import idm_acceleration, mobil_incentive

# Float fields, F[field, world, entity].
X, Y, HEADING, SPEED, S, D, LAT_SPEED, LENGTH, WIDTH = range(9)
DESIRED_SPEED, TIME_HEADWAY, MAX_ACCEL, COMFORT_DECEL, MIN_GAP, POLITENESS, BRAKE_TIMER = range(
    9, 16
)
# The road under each entity: its direction (rad) and curvature (1/m), kept with ``s``.
ROAD_HEADING, CURVATURE = 16, 17
# Traffic: the acceleration (m/s²) of the last step (car following, before sudden braking).
ACCEL = 18
# Half the diagonal of each entity's rectangle (m), refreshed by every collision check.
REACH = 19
N_FLOAT = 20
# Integer fields, I[field, world, entity].
LANE, TARGET_LANE, KIND = range(3)
# Traffic: how often the car collided without the ego since its world's reset (kept when the
# car is recycled), so traffic-only crashes can be counted per episode.
CRASHES_WITHOUT_EGO = 3
N_INT = 4
# Entity kinds.
EGO, CAR, STALLED, CONE = 0, 1, 2, 3

# Driver parameters assumed for the ego when traffic judges how it will react (MOBIL).
_EGO_HEADWAY, _EGO_ACCEL, _EGO_DECEL, _EGO_MIN_GAP = 1.5, 1.5, 2.5, 2.0
# A lane that closes within this distance (m) must be left, whatever it costs others.
MUST_LEAVE_DISTANCE = 250.0
# Cars are spawned and recycled at least this far (m) before a closing lane's stop: room to
# brake from 30 m/s at 4.5 m/s².
SPAWN_MARGIN = 100.0
# Largest angle (rad) between a traffic car's heading and its lane while it moves across: 15°,
# a firm lane change. Lateral speed is bounded by speed × sin of it, so a slow car moves over
# slowly instead of sliding sideways, and a stopped car does not move across at all. (At 20°
# a car turning out of a queue swung its rear into the next lane: with 5× Dense-v0's sudden
# braking, 6-12 cars collided without the ego in 300 worlds × 300 s; at 15° 0-2.)
MAX_LANE_CHANGE_ANGLE = math.radians(15.0)
# Below that, the sine of the angle is at most LANE_APPROACH_RATE (1/m) × the distance (m) to
# the target lane's centre: a car straightens out as it arrives, over distance travelled (5 m
# per e-fold) rather than time, so a slow car does not swing its rear into the lane it left
# while it centres in the new one. (Above 6 m/s the time-based approach, 1.2 /s, is gentler.)
LANE_APPROACH_RATE = 0.2
# Cars that have not begun to leave a closing lane stop this far (m) before its stop, so that
# one that leaves from a standstill has room to steer its centre across the lane boundary
# (half a lane at MAX_LANE_CHANGE_ANGLE: 7.5 m for 4 m lanes; 12 m suffices up to 6.4 m).
MERGE_RUN_OUT = 12.0


@kernel
def lane_exists(lane_start, lane_end, lane, s):
    """Whether ``lane`` (any int) is drivable at ``s``."""
    if lane < 0 or lane >= lane_start.shape[0]:
        return False
    return lane_start[lane] <= s <= lane_end[lane]


@kernel
def _lane_of(d, lane_width, lanes):
    return min(max(int(math.floor(d / lane_width)), 0), lanes - 1)


# ------------------------------------------------------------------ the sorted lane index
@kernel
def _key(lane, s, stride, shift):
    """The index key of position ``s`` in ``lane``. Every key is made here, in one order of
    operations, so an entity's own query position equals its entry exactly (and it never finds
    itself as its own leader or follower)."""
    return lane * stride + (s + shift)


@kernel
def _second_lane(F, I, geometry, lane_width, lanes, b, e):
    """The other lane entity ``e`` blocks: its target lane while changing, else the neighbour
    its footprint reaches into, else -1."""
    lane = I[LANE, b, e]
    target = I[TARGET_LANE, b, e]
    if target != lane:
        return target
    rel = F[HEADING, b, e] - F[ROAD_HEADING, b, e]
    half = 0.5 * F[WIDTH, b, e]
    if rel != 0.0:
        half = half * abs(math.cos(rel)) + 0.5 * F[LENGTH, b, e] * abs(math.sin(rel))
    left = int(math.floor((F[D, b, e] - half) / lane_width))
    right = int(math.floor((F[D, b, e] + half) / lane_width))
    second = -1
    if left != lane:
        second = left
    elif right != lane:
        second = right
    if second < 0 or second >= lanes:
        return -1
    return second


@kernel
def _build_index(F, I, geometry, lane_width, lanes, stride, shift, index, order, b):
    """Group world ``b``'s lane occupancies by lane, each lane sorted by ``s``.

    Each entity occupies its own lane and, when it straddles or changes lanes, a second one.
    Keys are ``lane * stride + (s + shift)`` (:func:`_key`), so the whole array is sorted
    and one binary search finds a position in any lane. Filling lanes in the ``s`` order of
    ``order`` (kept sorted by :func:`sort_by_s`) makes this a linear counting sort.
    ``pos[b, e]`` records where entity ``e``'s own-lane entry landed, so its leader is simply
    the next entry. ``work[b]`` is scratch space of ``N + lanes + 1`` integers.
    """
    keys, ents, counts, pos, work = index
    N = F.shape[2]
    second = work[b, :N]
    start = work[b, N : N + lanes + 1]
    start[:] = 0
    for e in range(N):
        second[e] = _second_lane(F, I, geometry, lane_width, lanes, b, e)
        start[I[LANE, b, e] + 1] += 1
        if second[e] >= 0:
            start[second[e] + 1] += 1
    for lane in range(lanes):
        start[lane + 1] += start[lane]
    counts[b] = start[lanes]
    for a in range(N):
        e = order[b, a]
        s = F[S, b, e]
        lane = I[LANE, b, e]
        p = start[lane]
        keys[b, p], ents[b, p], pos[b, e] = _key(lane, s, stride, shift), e, p
        start[lane] += 1
        if second[e] >= 0:
            p = start[second[e]]
            keys[b, p], ents[b, p] = _key(second[e], s, stride, shift), e
            start[second[e]] += 1


@kernel
def _query(index, stride, shift, lanes, b, lane, s, ahead):
    """Nearest entity ahead of (or behind) position ``s`` in ``lane`` of world ``b``; -1 if none.

    An entity exactly at ``s`` counts as neither, so a car never finds itself.
    """
    keys, ents, counts = index[0], index[1], index[2]
    if lane < 0 or lane >= lanes:
        return -1
    q = _key(lane, s, stride, shift)
    lo, hi = 0, counts[b]
    if ahead:  # first key > q
        while lo < hi:
            mid = (lo + hi) // 2
            if keys[b, mid] <= q:
                lo = mid + 1
            else:
                hi = mid
        pos = lo
    else:  # last key < q
        while lo < hi:
            mid = (lo + hi) // 2
            if keys[b, mid] < q:
                lo = mid + 1
            else:
                hi = mid
        pos = lo - 1
    if pos < 0 or pos >= counts[b]:
        return -1
    if int(math.floor(keys[b, pos] / stride)) != lane:
        return -1
    return ents[b, pos]


@kernel
def _neighbours(index, stride, shift, lanes, b, lane, s):
    """``(_query(..., ahead=True), _query(..., ahead=False))`` from one binary search.

    (:func:`_query` keeps its own search: written as one side of this one, the world step of
    case (a) measured 70 % slower.)"""
    keys, ents, counts = index[0], index[1], index[2]
    if lane < 0 or lane >= lanes:
        return -1, -1
    q = _key(lane, s, stride, shift)
    lo, hi = 0, counts[b]
    while lo < hi:  # first key > q
        mid = (lo + hi) // 2
        if keys[b, mid] <= q:
            lo = mid + 1
        else:
            hi = mid
    ahead = -1
    if lo < counts[b] and int(math.floor(keys[b, lo] / stride)) == lane:
        ahead = ents[b, lo]
    p = lo - 1
    while p >= 0 and keys[b, p] >= q:  # entities exactly at s count as neither
        p -= 1
    behind = -1
    if p >= 0 and int(math.floor(keys[b, p] / stride)) == lane:
        behind = ents[b, p]
    return ahead, behind


@kernel
def _next_in_lane(index, stride, b, e, lane):
    """The entity right ahead of ``e`` in its own lane (-1 if none): the next index entry."""
    keys, ents, counts, pos = index[0], index[1], index[2], index[3]
    p = pos[b, e] + 1
    if p < counts[b] and keys[b, p] < (lane + 1) * stride:
        return ents[b, p]
    return -1


@kernel
def _gap(F, b, me, other, me_s, me_d):
    """Bumper gap (m) from entity ``me`` at ``(me_s, me_d)`` to ``other``, measured along the
    lane at ``me_d``; ``inf`` if ``other`` is -1."""
    if other < 0:
        return np.inf
    ds = abs(F[S, b, other] - me_s) * (1.0 + F[CURVATURE, b, me] * me_d)
    return ds - 0.5 * (F[LENGTH, b, me] + F[LENGTH, b, other])


@kernel
def _lane_end_gap(lane_end, lane_stop, lane, s, length, leaving):
    """Gap (m) from a car's front to where it must stop in ``lane``: ``MERGE_RUN_OUT`` before
    the lane's stop, or at the stop itself once the car is ``leaving`` the lane; ``inf`` for a
    lane that does not close."""
    stop = lane_stop[lane] if leaving else lane_stop[lane] - MERGE_RUN_OUT
    if stop >= s:
        return stop - s - 0.5 * length
    if s <= lane_end[lane]:  # already past the stop: stay where you are
        return 0.0
    return np.inf


@kernel
def _idm_for(F, I, b, e, ego_max_speed, speed, gap, leader_speed):
    """IDM acceleration of entity ``e`` with a given leader; the ego is judged as a typical
    driver would be, with traffic-like parameters."""
    if I[KIND, b, e] == CAR:
        return idm_acceleration(
            speed,
            F[DESIRED_SPEED, b, e],
            gap,
            leader_speed,
            F[TIME_HEADWAY, b, e],
            F[MAX_ACCEL, b, e],
            F[COMFORT_DECEL, b, e],
            F[MIN_GAP, b, e],
        )
    return idm_acceleration(
        speed, ego_max_speed, gap, leader_speed, _EGO_HEADWAY, _EGO_ACCEL, _EGO_DECEL, _EGO_MIN_GAP
    )


@kernel
def _following_accel(
    F, I, geometry, lane_end, lane_stop, index, stride, shift, lanes, ego_max_speed, b, e, lane
):
    """IDM acceleration of car ``e`` behind its leader in ``lane`` (or that lane's end)."""
    if lane == I[LANE, b, e]:
        lead = _next_in_lane(index, stride, b, e, lane)
    else:
        lead = _query(index, stride, shift, lanes, b, lane, F[S, b, e], True)
    return _accel_behind(F, I, lane_end, lane_stop, ego_max_speed, b, e, lane, lead)


@kernel
def _accel_behind(F, I, lane_end, lane_stop, ego_max_speed, b, e, lane, lead):
    """IDM acceleration of car ``e`` behind ``lead`` (-1: none) in ``lane`` (or that lane's
    end), with the gap and the leader's speed it used."""
    gap, leader_speed = _gap_behind(F, I, lane_end, lane_stop, b, e, lane, lead)
    return _idm_for(F, I, b, e, ego_max_speed, F[SPEED, b, e], gap, leader_speed), gap, leader_speed


@kernel
def _gap_behind(F, I, lane_end, lane_stop, b, e, lane, lead):
    """Gap (m) of car ``e`` to ``lead`` (-1: none) in ``lane``, or to that lane's end if
    nearer, and the speed (m/s) of what it follows there (0 at a lane end)."""
    s = F[S, b, e]
    gap = _gap(F, b, e, lead, s, F[D, b, e])
    leader_speed = F[SPEED, b, lead] if lead >= 0 else 0.0
    leaving = lane == I[LANE, b, e] and I[TARGET_LANE, b, e] != lane
    end = _lane_end_gap(lane_end, lane_stop, lane, s, F[LENGTH, b, e], leaving)
    if end < gap:
        gap, leader_speed = end, 0.0
    return gap, leader_speed


@kernel
def _settle_speed(F, I, lane_end, lane_stop, index, stride, b, e):
    """Slow car ``e``, just placed on a lane centre, to the speed at which IDM's desired gap
    equals its gap to the leader (or the lane's stop), if it was faster: it starts at a speed
    it can hold there, braking at most its ``MAX_ACCEL``, never closing in faster than it can
    stop (the leader must be settled first)."""
    lane = I[LANE, b, e]
    lead = _next_in_lane(index, stride, b, e, lane)
    gap, leader_speed = _gap_behind(F, I, lane_end, lane_stop, b, e, lane, lead)
    if not math.isfinite(gap):
        return
    c = 2.0 * math.sqrt(F[MAX_ACCEL, b, e] * F[COMFORT_DECEL, b, e])
    room = gap - F[MIN_GAP, b, e]
    speed = 0.0
    if room > 0.0:
        # min_gap + v T + v (v - leader_speed) / c = gap, a quadratic in v.
        p = F[TIME_HEADWAY, b, e] - leader_speed / c
        speed = 0.5 * c * (math.sqrt(p * p + 4.0 * room / c) - p)
    F[SPEED, b, e] = min(F[SPEED, b, e], speed)


@kernel
def settle_speeds(F, I, lane_end, lane_stop, index, stride, order, worlds):
    """:func:`_settle_speed` of every traffic car of the ``worlds`` (bool ``(B,)``), leaders
    first; the index and ``order`` must be current."""
    N = F.shape[2]
    for b in range(F.shape[1]):
        if not worlds[b]:
            continue
        for a in range(N - 1, -1, -1):
            e = order[b, a]
            if I[KIND, b, e] == CAR:
                _settle_speed(F, I, lane_end, lane_stop, index, stride, b, e)


# ------------------------------------------------------------------ one step of one world
@kernel
def _step_world(
    F,
    I,
    crashed,
    geometry,
    lane_start,
    lane_end,
    lane_stop,
    lane_width,
    lanes,
    index,
    order,
    stride,
    shift,
    steer,
    accel,
    dt,
    ego_params,
    traffic_params,
    brake_p,
    brake_base,
    decide,
    recycle_base,
    b,
):
    """One simulation step of world ``b`` with ego controls ``steer`` (rad), ``accel`` (m/s²).

    Sudden braking: where ``brake_p > 0``, car ``e`` starts braking at its comfortable
    deceleration (harder where its leader demands) with that probability, for 2–4 s, from
    values ``e - 1`` and ``V + e - 1`` of the draw with base ``brake_base`` (see
    :mod:`lanesim.sim.rng`). ``decide`` runs lane changes, then recycling with the draw of
    base ``recycle_base``.
    """
    V = int(traffic_params[0])
    wheelbase, max_speed = ego_params[0], ego_params[1]
    lane_change_time, safe_decel = traffic_params[1], traffic_params[2]
    threshold, keep_right = traffic_params[3], traffic_params[4]
    recycle_distance = traffic_params[5]

    # 1. Traffic accelerations from the current state (the index matches it).
    for e in range(1, 1 + V):
        a, _, _ = _following_accel(
            F,
            I,
            geometry,
            lane_end,
            lane_stop,
            index,
            stride,
            shift,
            lanes,
            max_speed,
            b,
            e,
            I[LANE, b, e],
        )
        if I[TARGET_LANE, b, e] != I[LANE, b, e]:  # changing: respect both lanes' leaders
            a2, _, _ = _following_accel(
                F,
                I,
                geometry,
                lane_end,
                lane_stop,
                index,
                stride,
                shift,
                lanes,
                max_speed,
                b,
                e,
                I[TARGET_LANE, b, e],
            )
            a = min(a, a2)
        F[ACCEL, b, e] = a

    # 2. Ego: kinematic bicycle about the centre of gravity, taken at mid-wheelbase.
    v, h = F[SPEED, b, 0], F[HEADING, b, 0]
    beta = math.atan(0.5 * math.tan(steer))
    F[X, b, 0] += v * math.cos(h + beta) * dt
    F[Y, b, 0] += v * math.sin(h + beta) * dt
    F[HEADING, b, 0] = h + v * math.sin(beta) / (0.5 * wheelbase) * dt
    F[SPEED, b, 0] = 0.0 if crashed[b, 0] else min(max(v + accel * dt, 0.0), max_speed)
    # Its road position is searched near the last one: this step's travel, twice over for the
    # inside of bends, plus a margin; never on another stretch of a road that crosses itself.
    reach = 2.0 * v * dt + 10.0
    F[S, b, 0], F[D, b, 0] = project(
        geometry,
        F[X, b, 0],
        F[Y, b, 0],
        segment_at(geometry, F[S, b, 0] - reach),
        segment_at(geometry, F[S, b, 0] + reach),
    )
    _, _, F[ROAD_HEADING, b, 0], F[CURVATURE, b, 0] = pose_at(geometry, F[S, b, 0])

    # 3. Traffic motion in road coordinates: IDM along, bounded lateral speed across.
    vmax_lat = lane_width / lane_change_time
    sin_max_angle = math.sin(MAX_LANE_CHANGE_ANGLE)
    for e in range(1, 1 + V):
        timer = max(F[BRAKE_TIMER, b, e] - dt, 0.0)
        if brake_p > 0.0 and stream_uniform(brake_base, e - 1) < brake_p:
            timer = 2.0 + 2.0 * stream_uniform(brake_base, V + e - 1)
        F[BRAKE_TIMER, b, e] = timer
        a = F[ACCEL, b, e]
        if timer > 0.0:  # braking for no reason, yet never less than its leader demands
            a = min(a, -F[COMFORT_DECEL, b, e])
        if crashed[b, e]:
            v, vd = 0.0, 0.0
        else:
            v = max(F[SPEED, b, e] + a * dt, 0.0)
            error = (I[TARGET_LANE, b, e] + 0.5) * lane_width - F[D, b, e]
            bound = min(vmax_lat, v * min(LANE_APPROACH_RATE * abs(error), sin_max_angle))
            vd = min(max(1.2 * error, -bound), bound)
        d = F[D, b, e]
        k = F[CURVATURE, b, e]
        along = math.sqrt(max(v * v - vd * vd, 0.0))
        # At lateral offset d the lane is (1 + k d) times as long as the reference line.
        F[S, b, e] += along / (1.0 + k * d) * dt
        F[D, b, e] = d + vd * dt
        F[SPEED, b, e] = v
        F[LAT_SPEED, b, e] = vd
        set_world_pose(F, geometry, b, e)

    # 4. Lanes, index, collisions.
    refresh_lanes(F, I, geometry, lane_width, lanes, stride, shift, index, order, b)
    _collide(F, I, crashed, order, b)

    # 5. Decisions: lane changes, then recycling of far cars.
    if decide and V > 0:
        _change_lanes(
            F,
            I,
            crashed,
            geometry,
            lane_start,
            lane_end,
            lane_stop,
            index,
            stride,
            shift,
            lane_width,
            lanes,
            max_speed,
            safe_decel,
            threshold,
            keep_right,
            b,
            V,
        )
        # A car that started a change now blocks its target lane instead of a lane it straddled:
        # rebuild, so recycling sees the index the state describes.
        _build_index(F, I, geometry, lane_width, lanes, stride, shift, index, order, b)
        _recycle(
            F,
            I,
            crashed,
            geometry,
            lane_start,
            lane_end,
            lane_stop,
            lane_width,
            lanes,
            index,
            order,
            stride,
            shift,
            recycle_distance,
            recycle_base,
            b,
            V,
        )


@kernel
def set_world_pose(F, geometry, b, e):
    """World ``x, y, heading`` of entity ``e`` from its road coordinates and lateral speed."""
    x, y, h, k, cos_h, sin_h = pose_trig_at(geometry, F[S, b, e])
    F[ROAD_HEADING, b, e], F[CURVATURE, b, e] = h, k
    d = F[D, b, e]
    F[X, b, e] = x + d * sin_h
    F[Y, b, e] = y - d * cos_h
    v, vd = F[SPEED, b, e], F[LAT_SPEED, b, e]
    # Moving right (vd > 0) turns the car clockwise from the road direction.
    F[HEADING, b, e] = h - math.atan2(vd, math.sqrt(max(v * v - vd * vd, 0.0)))


@kernel
def refresh_lanes(F, I, geometry, lane_width, lanes, stride, shift, index, order, b):
    """Lane under every entity's centre (traffic keeps its own target), then the index."""
    N = F.shape[2]
    for e in range(N):
        lane = _lane_of(F[D, b, e], lane_width, lanes)
        I[LANE, b, e] = lane
        if I[KIND, b, e] != CAR:
            I[TARGET_LANE, b, e] = lane
    sort_by_s(F, order, b)
    _build_index(F, I, geometry, lane_width, lanes, stride, shift, index, order, b)


@kernel
def sort_by_s(F, order, b):
    """Insertion-sort world ``b``'s entity order by ``s``: nearly linear, since the order
    barely changes between steps."""
    for i in range(1, F.shape[2]):
        e = order[b, i]
        j = i - 1
        while j >= 0 and F[S, b, order[b, j]] > F[S, b, e]:
            order[b, j + 1] = order[b, j]
            j -= 1
        order[b, j + 1] = e


@kernel
def _collide(F, I, crashed, order, b):
    """Mark every pair of entities whose rectangles overlap as crashed, counting in
    ``CRASHES_WITHOUT_EGO`` each traffic car newly crashed by anything but the ego.

    Entities are visited in ``s`` order (see :func:`sort_by_s`); each is tested against
    the ones after it until the gap along the road rules out contact, so every pair that can
    touch is tested, and only those. Refreshes ``REACH``, each entity's half diagonal.
    """
    N = F.shape[2]  # refresh_lanes has sorted order by s
    reach_max = 0.0
    for e in range(N):
        length, width = F[LENGTH, b, e], F[WIDTH, b, e]
        reach = 0.5 * math.sqrt(length * length + width * width)
        F[REACH, b, e] = reach
        reach_max = max(reach_max, reach)
    for a in range(N - 1):
        i = order[b, a]
        reach_i = F[REACH, b, i]
        s_i, d_i = F[S, b, i], F[D, b, i]
        static_i = I[KIND, b, i] >= STALLED
        # Road-frame distance understates world distance on the outside of a bend; 1.3 covers
        # curvature × lateral offset up to 0.3.
        window = 1.3 * (reach_i + reach_max) + 1.0
        for c in range(a + 1, N):
            j = order[b, c]
            if F[S, b, j] - s_i > window:
                break
            if abs(F[D, b, j] - d_i) > reach_i + F[REACH, b, j]:
                continue
            if static_i and I[KIND, b, j] >= STALLED:
                continue
            if rectangles_overlap(
                F[X, b, i],
                F[Y, b, i],
                F[HEADING, b, i],
                F[LENGTH, b, i],
                F[WIDTH, b, i],
                F[X, b, j],
                F[Y, b, j],
                F[HEADING, b, j],
                F[LENGTH, b, j],
                F[WIDTH, b, j],
            ):
                for car, other in ((i, j), (j, i)):
                    if I[KIND, b, car] == CAR and I[KIND, b, other] != EGO and not crashed[b, car]:
                        I[CRASHES_WITHOUT_EGO, b, car] += 1
                crashed[b, i] = True
                crashed[b, j] = True


@kernel
def _change_lanes(
    F,
    I,
    crashed,
    geometry,
    lane_start,
    lane_end,
    lane_stop,
    index,
    stride,
    shift,
    lane_width,
    lanes,
    ego_max_speed,
    safe_decel,
    threshold,
    keep_right,
    b,
    V,
):
    """MOBIL: each steady car may start a change to the neighbour lane with the best incentive.

    Cars decide one after another, in entity order, and each committed change enters the lane
    index at once: two cars never merge into the same gap from both sides.
    """
    for e in range(1, 1 + V):
        lane = I[LANE, b, e]
        if (
            I[TARGET_LANE, b, e] != lane
            or _second_lane(F, I, geometry, lane_width, lanes, b, e) >= 0
            or crashed[b, e]
            or F[BRAKE_TIMER, b, e] > 0.0
        ):
            # A change under way carries on until the car is wholly in its new lane (its body
            # would otherwise swing into a lane the index does not hold it in); a suddenly
            # braking car is not steady either.
            continue
        s, v = F[S, b, e], F[SPEED, b, e]
        a_now, gap, lead_speed = _following_accel(
            F,
            I,
            geometry,
            lane_end,
            lane_stop,
            index,
            stride,
            shift,
            lanes,
            ego_max_speed,
            b,
            e,
            lane,
        )
        # Old follower: how its acceleration changes once this car leaves.
        old_gain = 0.0
        fol = _query(index, stride, shift, lanes, b, lane, s, False)
        if fol >= 0 and I[KIND, b, fol] == CAR:
            fs, fv = F[S, b, fol], F[SPEED, b, fol]
            fgap = _gap(F, b, fol, e, fs, F[D, b, fol])
            after = fgap + F[LENGTH, b, e] + gap
            old_gain = _idm_for(F, I, b, fol, ego_max_speed, fv, after, lead_speed) - _idm_for(
                F, I, b, fol, ego_max_speed, fv, fgap, v
            )
        must_leave = lane_stop[lane] - s < MUST_LEAVE_DISTANCE
        politeness = 0.0 if must_leave else F[POLITENESS, b, e]
        best_gain = -np.inf
        best = lane
        for side in (-1, 1):
            cand = lane + side
            # Only into a lane that exists here and ahead, and that one need not leave soon.
            if not (
                lane_exists(lane_start, lane_end, cand, s)
                and lane_exists(lane_start, lane_end, cand, s + 30.0)
                and lane_stop[cand] - s >= MUST_LEAVE_DISTANCE
            ):
                continue
            nl, nf = _neighbours(index, stride, shift, lanes, b, cand, s)
            a_new, ngap, _ = _accel_behind(
                F, I, lane_end, lane_stop, ego_max_speed, b, e, cand, nl
            )
            new_gain = 0.0
            safe = ngap > 1.0 and a_new > -safe_decel
            if nf >= 0:
                nfs, nfv = F[S, b, nf], F[SPEED, b, nf]
                nf_gap = _gap(F, b, nf, e, nfs, F[D, b, nf])
                safe = safe and nf_gap > 1.0
                if I[KIND, b, nf] <= CAR:  # a moving follower: the ego or a car
                    after = _idm_for(F, I, b, nf, ego_max_speed, nfv, nf_gap, v)
                    old_gap = _gap(F, b, nf, nl, nfs, F[D, b, nf])
                    nl_speed = F[SPEED, b, nl] if nl >= 0 else 0.0
                    new_gain = after - _idm_for(F, I, b, nf, ego_max_speed, nfv, old_gap, nl_speed)
                    safe = safe and after > -safe_decel
            gain = mobil_incentive(a_new - a_now, new_gain, old_gain, politeness)
            gain += keep_right * side + (10.0 if must_leave else 0.0)
            if safe and gain > threshold and gain > best_gain:
                best_gain = gain
                best = cand
        if best != lane:
            I[TARGET_LANE, b, e] = best
            _insert(index, b, _key(best, s, stride, shift), e)


@kernel
def _insert(index, b, key, e):
    """Add one occupancy to world ``b``'s sorted lane index, keeping every entity's own-lane
    position current (so leaders found by position stay right while cars decide)."""
    keys, ents, counts, pos = index[0], index[1], index[2], index[3]
    j = counts[b] - 1
    while j >= 0 and keys[b, j] > key:
        keys[b, j + 1] = keys[b, j]
        ents[b, j + 1] = ents[b, j]
        if pos[b, ents[b, j]] == j:
            pos[b, ents[b, j]] = j + 1
        j -= 1
    keys[b, j + 1] = key
    ents[b, j + 1] = e
    counts[b] += 1


@kernel
def _recycle(
    F,
    I,
    crashed,
    geometry,
    lane_start,
    lane_end,
    lane_stop,
    lane_width,
    lanes,
    index,
    order,
    stride,
    shift,
    recycle_distance,
    recycle_base,
    b,
    V,
):
    """Move the first car beyond ``recycle_distance`` from the ego to the far edge on the other
    side, if there is room there; one car per decision, so moved cars never land on each other.
    Car ``e``'s new lane and position come from values ``2(e - 1)`` and ``2(e - 1) + 1`` of the
    draw with base ``recycle_base``; never past a closing lane's stop (``lane_stop``). It
    enters at 0.9 of its desired speed, or slower where its leader is near
    (:func:`_settle_speed`)."""
    ego_s = F[S, b, 0]
    road_end = lane_end[0]
    for lane in range(1, lane_end.shape[0]):
        road_end = max(road_end, lane_end[lane])
    for e in range(1, 1 + V):
        rel = F[S, b, e] - ego_s
        if abs(rel) <= recycle_distance and F[S, b, e] <= road_end - 5.0:
            continue
        edge = recycle_distance - 10.0 - 60.0 * stream_uniform(recycle_base, 2 * (e - 1) + 1)
        # Cars that ran ahead re-enter behind, and vice versa.
        new_s = ego_s - edge if rel > 0 else ego_s + edge
        lane = min(int(stream_uniform(recycle_base, 2 * (e - 1)) * lanes), lanes - 1)
        if (
            not lane_exists(lane_start, lane_end, lane, new_s)
            or new_s > lane_stop[lane] - SPAWN_MARGIN
            or new_s < 5.0
            or new_s > road_end - 5.0
        ):
            return
        room = 15.0 + 1.5 * F[DESIRED_SPEED, b, e]
        for ahead in (True, False):
            other = _query(index, stride, shift, lanes, b, lane, new_s, ahead)
            if other >= 0 and abs(F[S, b, other] - new_s) <= room:
                return
        F[S, b, e] = new_s
        F[D, b, e] = (lane + 0.5) * lane_width
        I[LANE, b, e] = lane
        I[TARGET_LANE, b, e] = lane
        F[SPEED, b, e] = 0.9 * F[DESIRED_SPEED, b, e]
        F[LAT_SPEED, b, e] = 0.0
        F[BRAKE_TIMER, b, e] = 0.0
        crashed[b, e] = False
        set_world_pose(F, geometry, b, e)
        sort_by_s(F, order, b)
        _build_index(F, I, geometry, lane_width, lanes, stride, shift, index, order, b)
        _settle_speed(F, I, lane_end, lane_stop, index, stride, b, e)
        return


# Rows of the ego command that run_worlds follows: fixed controls or autopilot targets.
COMMAND_STEER, COMMAND_ACCEL, COMMAND_LANE, COMMAND_SPEED = range(4)
N_COMMAND = 4
# Rows of the ego trace that run_worlds records after every simulation step.
TRACE_ALONG, TRACE_OFFSET, TRACE_HEADING_ERROR, TRACE_LANE, TRACE_OFFROAD, TRACE_CRASHED = range(6)
N_TRACE = 6


@kernel
def autopilot(F, geometry, lane_width, ego_params, b, target_lane, target_speed):
    """Ego controls ``(steer, accel)`` that bring it to ``target_lane``'s centre at
    ``target_speed`` (m/s): the lane-following controller behind meta actions.

    It asks for a lateral velocity proportional to the lateral error (bounded, so a lane change
    takes about three seconds), turns that into a heading relative to the road, and steers to
    reach that heading while following the road's curvature.
    """
    wheelbase, _, max_steer, max_accel, max_brake = ego_params
    speed = F[SPEED, b, 0]
    v = max(speed, 1.0)
    error = (target_lane + 0.5) * lane_width - F[D, b, 0]  # m, positive: target to the right
    lateral = min(max(0.8 * error, -1.5), 1.5)  # m/s
    want_rel = -math.atan2(lateral, v)  # heading relative to the road; right is negative
    k = F[CURVATURE, b, 0]
    rel = (F[HEADING, b, 0] - F[ROAD_HEADING, b, 0] + math.pi) % (2 * math.pi) - math.pi
    yaw_rate = v * k + 3.0 * (want_rel - rel)
    steer = min(max(math.atan(yaw_rate * wheelbase / v), -max_steer), max_steer)
    accel = min(max(1.5 * (target_speed - speed), -max_brake), max_accel)
    return steer, accel


@kernel_nogil
def run_worlds(
    F,
    I,
    crashed,
    geometry,
    lane_start,
    lane_end,
    lane_stop,
    lane_width,
    lanes,
    index,
    order,
    stride,
    shift,
    command,
    use_autopilot,
    dt,
    ego_params,
    traffic_params,
    period,
    brake_rate,
    rng_seed,
    rng_counter,
    steps,
    clock,
    applied,
    trace,
    first,
    stop,
):
    """Advance worlds ``first`` to ``stop - 1`` by ``frames = trace.shape[2]`` simulation steps.

    Releases the GIL: disjoint ranges of worlds may run on several threads at once.

    Per world ``b``, ``command`` ``(N_COMMAND, B)`` holds either fixed controls (rows
    ``COMMAND_STEER`` rad and ``COMMAND_ACCEL`` m/s², clipped to the ego's limits) or, where
    ``use_autopilot[b]``, the lane-following controller's target lane and speed (rows
    ``COMMAND_LANE``, ``COMMAND_SPEED``). Every ``period`` steps of a world's own clock
    ``steps[b]`` its cars consider lane changes and far cars are recycled. Random numbers come
    from each world's stream (``rng_seed``, ``rng_counter``, advanced here exactly as
    :meth:`lanesim.sim.rng.WorldRandom.uniform` would be): one draw per step for sudden braking
    (with ``brake_rate > 0``), one per decision step, so ``frames`` steps in one call or in
    several give the same worlds. Advances ``steps`` and ``clock``
    (s), writes the controls used into ``applied`` ``(2, B)`` and the ego's state after each
    step into ``trace`` ``(N_TRACE, B, frames)``.
    """
    max_steer, max_accel, max_brake = ego_params[2], ego_params[3], ego_params[4]
    road_end = geometry[0][-1] + geometry[1][-1]
    frames = trace.shape[2]
    V = int(traffic_params[0])
    one = np.uint64(1)
    for b in range(first, stop):
        for f in range(frames):
            if use_autopilot[b]:
                st, ac = autopilot(
                    F,
                    geometry,
                    lane_width,
                    ego_params,
                    b,
                    int(command[COMMAND_LANE, b]),
                    command[COMMAND_SPEED, b],
                )
            else:
                st = min(max(command[COMMAND_STEER, b], -max_steer), max_steer)
                ac = min(max(command[COMMAND_ACCEL, b], -max_brake), max_accel)
            applied[0, b], applied[1, b] = st, ac
            steps[b] += 1
            decide = steps[b] % period == 0
            brake_base = recycle_base = np.uint64(0)
            if brake_rate > 0.0 and V > 0:
                brake_base = stream_base(rng_seed[b], rng_counter[b])
                rng_counter[b] += one
            if decide and V > 0:
                recycle_base = stream_base(rng_seed[b], rng_counter[b])
                rng_counter[b] += one
            _step_world(
                F,
                I,
                crashed,
                geometry,
                lane_start,
                lane_end,
                lane_stop,
                lane_width,
                lanes,
                index,
                order,
                stride,
                shift,
                st,
                ac,
                dt,
                ego_params,
                traffic_params,
                brake_rate * dt,
                brake_base,
                decide,
                recycle_base,
                b,
            )
            s, d = F[S, b, 0], F[D, b, 0]
            lane = I[LANE, b, 0]
            err = (F[HEADING, b, 0] - F[ROAD_HEADING, b, 0] + math.pi) % (2 * math.pi) - math.pi
            under = int(math.floor(d / lane_width))
            trace[TRACE_ALONG, b, f] = F[SPEED, b, 0] * math.cos(err)
            trace[TRACE_OFFSET, b, f] = d - (lane + 0.5) * lane_width
            trace[TRACE_HEADING_ERROR, b, f] = err
            trace[TRACE_LANE, b, f] = lane
            on_road = 0.0 <= s <= road_end and lane_exists(lane_start, lane_end, under, s)
            trace[TRACE_OFFROAD, b, f] = 0.0 if on_road else 1.0
            trace[TRACE_CRASHED, b, f] = 1.0 if crashed[b, 0] else 0.0
        clock[b] += frames * dt


@kernel
def refresh_worlds(F, I, geometry, lane_width, lanes, stride, shift, index, order, worlds):
    """Recompute the road under every entity, lanes, the lane index and the ``s`` order of the
    ``worlds`` (bool ``(B,)``) whose entities were placed by hand or reset."""
    for b in range(F.shape[1]):
        if not worlds[b]:
            continue
        for e in range(F.shape[2]):
            _, _, F[ROAD_HEADING, b, e], F[CURVATURE, b, e] = pose_at(geometry, F[S, b, e])
        refresh_lanes(F, I, geometry, lane_width, lanes, stride, shift, index, order, b)


@kernel
def ego_leader(F, I, index, stride, shift, lanes, b):
    """Bumper gap (m, ``inf`` if none) and speed (m/s) of the leader in world ``b``'s ego lane,
    measured along that lane."""
    lead = _query(index, stride, shift, lanes, b, I[LANE, b, 0], F[S, b, 0], True)
    return _gap(F, b, 0, lead, F[S, b, 0], F[D, b, 0]), (F[SPEED, b, lead] if lead >= 0 else 0.0)


@kernel
def ego_leaders(F, I, index, stride, shift, lanes, out):
    """:func:`ego_leader` of every world into ``out`` ``(2, B)``."""
    for b in range(F.shape[1]):
        out[0, b], out[1, b] = ego_leader(F, I, index, stride, shift, lanes, b)


@njit(cache=True)
def query_many(index, stride, shift, lanes, lane, s, ahead):
    """:func:`_query` for arrays ``lane``, ``s`` ``(B, K)``: entity index per query, -1 if none."""
    B, K = lane.shape
    out = np.empty((B, K), dtype=np.int64)
    for b in range(B):
        for k in range(K):
            out[b, k] = _query(index, stride, shift, lanes, b, lane[b, k], s[b, k], ahead)
    return out
