"""Traffic: car following (IDM) and lane changing (MOBIL), compiled.

Treiber, Hennecke & Helbing (2000) for the Intelligent Driver Model; Kesting, Treiber &
Helbing (2007) for MOBIL. Traffic moves in road coordinates, so it follows curved lanes
exactly. The models' constants are in :mod:`lanesim.sim.models`; every kernel here takes the
:class:`~lanesim.sim.models.TrafficModel` (its record, ``traffic``) and the
:class:`~lanesim.sim.road.RoadArrays` whole.
"""

from __future__ import annotations

import math

import numpy as np

from lanesim.sim.jit import kernel, kernel_inline
from lanesim.sim.lane_index import (
    before_start,
    beyond_end,
    build_index,
    direction_of,
    follower,
    insert,
    lane_exists,
    leader,
    neighbours,
    next_in_lane,
    prev_in_lane,
    second_lane,
    sort_by_s,
)
from lanesim.sim.models import (
    ASSUMED_EGO_ACCEL,
    ASSUMED_EGO_DECEL,
    ASSUMED_EGO_HEADWAY,
    ASSUMED_EGO_MIN_GAP,
    LANE_APPROACH_RATE,
    MAX_BRAKING,
    MAX_LANE_CHANGE_ANGLE,
    MERGE_RUN_OUT,
    MUST_LEAVE_DISTANCE,
    SPAWN_MARGIN,
    TRAFFIC_LATERAL_GAIN,
)
from lanesim.sim.rng import stream_uniform
from lanesim.sim.road import RoadArrays, pose_trig_at
from lanesim.sim.state import (
    ACCEL,
    BRAKE_TIMER,
    CAR,
    COMFORT_DECEL,
    CURVATURE,
    DESIRED_SPEED,
    HEADING,
    KIND,
    LANE,
    LAT_SPEED,
    LENGTH,
    MAX_ACCEL,
    MIN_GAP,
    PASSED,
    POLITENESS,
    ROAD_HEADING,
    SPEED,
    TARGET_LANE,
    TIME_HEADWAY,
    D,
    LaneIndex,
    S,
    X,
    Y,
)

# Speed settling on a closed road: sweeps at most, and the slowing (m/s) below which it stops.
SETTLE_SWEEPS = 16
SETTLE_TOLERANCE = 1e-9


@kernel
def idm_acceleration(speed, desired_speed, gap, leader_speed, time_headway, max_accel,
                     comfort_decel, min_gap):
    """IDM acceleration (m/s²).

    Args:
        speed: own speed (m/s).
        desired_speed: free-road speed (m/s).
        gap: bumper-to-bumper distance to the leader (m); ``inf`` for a free road.
        leader_speed: the leader's speed (m/s); ignored where ``gap`` is ``inf``.
        time_headway: desired time gap T (s).
        max_accel: a (m/s²).
        comfort_decel: b (m/s², positive).
        min_gap: jam distance s0 (m).
    """
    ratio = speed / max(desired_speed, 0.1)
    free = 1.0 - ratio * ratio * ratio * ratio  # IDM's usual exponent 4, as products: exact
    interaction = 0.0
    if math.isfinite(gap):
        closing = speed - leader_speed
        braking = 2.0 * math.sqrt(max_accel * comfort_decel)
        desired_gap = min_gap + max(0.0, speed * time_headway + speed * closing / braking)
        interaction = (desired_gap / max(gap, 0.05)) ** 2
    return min(max(max_accel * (free - interaction), -MAX_BRAKING), max_accel)


@kernel_inline
def mobil_incentive(own_gain, new_follower_gain, old_follower_gain, politeness):
    """MOBIL's incentive (m/s²): own advantage plus ``politeness`` times the followers' change."""
    return own_gain + politeness * (new_follower_gain + old_follower_gain)


@kernel
def bumper_gap(F, b, me, other, me_s, me_d, seam):
    """Bumper gap (m) from entity ``me`` at ``(me_s, me_d)`` to ``other`` ahead of it (its
    leader, as the lane index finds it), measured along the lane at ``me_d``; ``inf`` if
    ``other`` is -1. On a closed road (``seam`` its length, m; 0 on an open road) a leader
    whose ``s`` is behind ``me_s`` lies across the seam, ``seam`` further on."""
    if other < 0:
        return np.inf
    ds = F[S, b, other] - me_s
    if ds < 0.0 and seam > 0.0:
        ds += seam
    ds = abs(ds) * (1.0 + F[CURVATURE, b, me] * me_d)
    return ds - 0.5 * (F[LENGTH, b, me] + F[LENGTH, b, other])


@kernel_inline
def _lane_end_gap(road, lane, s, length, leaving):
    """Gap (m) from a car's front to where it must stop in ``lane``: ``MERGE_RUN_OUT`` before
    the lane's stop, or at the stop itself once the car is ``leaving`` the lane; ``inf`` for a
    lane that does not close."""
    stop = road.lane_stop[lane] if leaving else road.lane_stop[lane] - MERGE_RUN_OUT
    if stop >= s:
        return stop - s - 0.5 * length
    if s <= road.lane_end[lane]:  # already past the stop: stay where you are
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
        speed,
        ego_max_speed,
        gap,
        leader_speed,
        ASSUMED_EGO_HEADWAY,
        ASSUMED_EGO_ACCEL,
        ASSUMED_EGO_DECEL,
        ASSUMED_EGO_MIN_GAP,
    )


@kernel_inline
def lead_of(F, I, index, b, e, lane):
    """The entity car ``e`` follows in ``lane`` (-1: none): the next ahead of it there in the
    lane's direction (toward -s in an oncoming lane), or past the lane's end the first in its
    successor.

    Inlined into its callers on purpose: the successor's search inside a small compiled
    function such as the IDM step's kept LLVM from inlining that function into the world step,
    which then measured 65 % slower on an open road."""
    forward = index.direction[lane] > 0
    if lane == I[LANE, b, e]:
        lead = next_in_lane(index, b, e, lane) if forward else prev_in_lane(index, b, e, lane)
    elif forward:
        lead = leader(index, b, lane, F[S, b, e])
    else:
        lead = follower(index, b, lane, F[S, b, e])
    if lead < 0 and index.next[lane] >= 0:
        lead = beyond_end(index, b, lane, F[S, b, e])
    return lead


@kernel
def _accel_behind(F, I, road, ego_max_speed, b, e, lane, lead):
    """IDM acceleration of car ``e`` behind ``lead`` (-1: none) in ``lane`` (or that lane's
    end), with the gap and the leader's speed it used."""
    gap, leader_speed = _gap_behind(F, I, road, b, e, lane, lead)
    return _idm_for(F, I, b, e, ego_max_speed, F[SPEED, b, e], gap, leader_speed), gap, leader_speed


@kernel
def _gap_behind(F, I, road, b, e, lane, lead):
    """Gap (m) of car ``e`` to ``lead`` (-1: none) in ``lane``, or to that lane's end if
    nearer, and the speed (m/s) of what it follows there, in its own direction (0 at a lane
    end; negative for the ego coming head-on down an oncoming lane)."""
    s = F[S, b, e]
    gap = bumper_gap(F, b, e, lead, s, F[D, b, e], road.seam)
    leader_speed = 0.0
    if lead >= 0:
        leader_speed = F[SPEED, b, lead]
        # Car e travels the way of lane (its own or its target: both go the same way); on a
        # road of one direction the leader goes that way too.
        direction = road.lane_direction
        if road.two_way and direction[lane] != direction_of(I, direction, b, lead):
            leader_speed = -leader_speed
    leaving = lane == I[LANE, b, e] and I[TARGET_LANE, b, e] != lane
    end = _lane_end_gap(road, lane, s, F[LENGTH, b, e], leaving)
    if end < gap:
        gap, leader_speed = end, 0.0
    return gap, leader_speed


@kernel
def _settle_speed(F, I, road, index, b, e):
    """Slow car ``e``, just placed on a lane centre, to the speed at which IDM's desired gap
    equals its gap to the leader (or the lane's stop), if it was faster: it starts at a speed
    it can hold there, braking at most its ``MAX_ACCEL``, never closing in faster than it can
    stop (the leader must be settled first). Returns how much it slowed the car (m/s)."""
    lane = I[LANE, b, e]
    gap, leader_speed = _gap_behind(F, I, road, b, e, lane, lead_of(F, I, index, b, e, lane))
    if not math.isfinite(gap):
        return 0.0
    c = 2.0 * math.sqrt(F[MAX_ACCEL, b, e] * F[COMFORT_DECEL, b, e])
    room = gap - F[MIN_GAP, b, e]
    speed = 0.0
    if room > 0.0:
        # min_gap + v T + v (v - leader_speed) / c = gap, a quadratic in v.
        p = F[TIME_HEADWAY, b, e] - leader_speed / c
        speed = 0.5 * c * (math.sqrt(p * p + 4.0 * room / c) - p)
    settled = min(F[SPEED, b, e], speed)
    slowed = F[SPEED, b, e] - settled
    F[SPEED, b, e] = settled
    return slowed


@kernel
def settle_speeds(F, I, road, index, worlds):
    """:func:`_settle_speed` of every traffic car of the ``worlds`` (bool ``(B,)``), leaders
    first (toward -s in oncoming lanes, after the rest); the index and its order must be
    current. ``road`` and ``index`` come named or as plain tuples
    (:func:`lanesim.sim.state.plain`)."""
    road, index = RoadArrays(*road), LaneIndex(*index)
    N = F.shape[2]
    for b in range(F.shape[1]):
        if not worlds[b]:
            continue
        # One sweep from the front settles an open road (forward lanes toward -s, then
        # oncoming lanes toward +s). On a closed road the cars just before the seam follow cars
        # past it, which the sweep reaches last: sweep again while that slows anyone (speeds
        # only fall, so this ends; the cap bounds a ring of cars that converges only gradually).
        for _ in range(SETTLE_SWEEPS if road.seam > 0.0 else 1):
            slowed = 0.0
            for a in range(N - 1, -1, -1):
                e = index.order[b, a]
                if I[KIND, b, e] == CAR and road.lane_direction[I[LANE, b, e]] > 0:
                    slowed = max(slowed, _settle_speed(F, I, road, index, b, e))
            for a in range(N):
                e = index.order[b, a]
                if I[KIND, b, e] == CAR and road.lane_direction[I[LANE, b, e]] < 0:
                    slowed = max(slowed, _settle_speed(F, I, road, index, b, e))
            if slowed < SETTLE_TOLERANCE:
                break


@kernel
def set_world_pose(F, geometry, b, e, direction):
    """World ``x, y, heading`` of entity ``e`` from its road coordinates and lateral speed,
    travelling the road's way (``direction`` +1) or back (-1, heading + π)."""
    x, y, h, k, cos_h, sin_h = pose_trig_at(geometry, F[S, b, e])
    F[ROAD_HEADING, b, e], F[CURVATURE, b, e] = h, k
    d = F[D, b, e]
    F[X, b, e] = x + d * sin_h
    F[Y, b, e] = y - d * cos_h
    v, vd = F[SPEED, b, e], F[LAT_SPEED, b, e]
    # Moving right (vd > 0) turns the car clockwise from the road direction: to its right
    # when it travels that way, to its left when it comes back.
    if direction > 0:
        F[HEADING, b, e] = h - math.atan2(vd, math.sqrt(max(v * v - vd * vd, 0.0)))
    else:
        F[HEADING, b, e] = h + math.pi + math.atan2(vd, math.sqrt(max(v * v - vd * vd, 0.0)))


@kernel_inline
def pass_lane_end(F, I, road, b, e):
    """Entity ``e`` beyond its lane's end continues on the lane's successor at ``s - seam``
    (before its start, on its predecessor at ``s + seam``), its ``PASSED`` following, so its
    distance along its lanes runs on; where the lane has none (an open road) it stays, off
    the road's end."""
    if road.seam == 0.0:  # an open road (its lanes have neither successor nor predecessor)
        return
    lane = I[LANE, b, e]
    s = F[S, b, e]
    if s >= road.seam and road.lane_next[lane] >= 0:
        F[S, b, e] = s - road.seam
        F[PASSED, b, e] += road.seam
        I[LANE, b, e] = road.lane_next[lane]
        I[TARGET_LANE, b, e] = road.lane_next[I[TARGET_LANE, b, e]]
    elif s < 0.0 and road.lane_prev[lane] >= 0:
        F[S, b, e] = s + road.seam
        F[PASSED, b, e] -= road.seam
        I[LANE, b, e] = road.lane_prev[lane]
        I[TARGET_LANE, b, e] = road.lane_prev[I[TARGET_LANE, b, e]]


@kernel_inline
def follow(F, I, road, index, traffic, ego_max_speed, b):
    """Every traffic car's IDM acceleration (``F[ACCEL]``) from the current state of world
    ``b`` (the index must match it); a car changing lanes respects both lanes' leaders."""
    for e in range(1, 1 + traffic.vehicles):
        lane, target = I[LANE, b, e], I[TARGET_LANE, b, e]
        a, _, _ = _accel_behind(F, I, road, ego_max_speed, b, e, lane,
                                lead_of(F, I, index, b, e, lane))
        if target != lane:
            a2, _, _ = _accel_behind(F, I, road, ego_max_speed, b, e, target,
                                     lead_of(F, I, index, b, e, target))
            a = min(a, a2)
        F[ACCEL, b, e] = a


@kernel_inline
def move_traffic(F, I, crashed, road, traffic, b, dt, brake_p, brake_base):
    """One step of ``dt`` (s) of world ``b``'s traffic in road coordinates: ``F[ACCEL]`` along
    the lane (toward -s in an oncoming lane), a bounded lateral speed across toward its target
    lane.

    Sudden braking: where ``brake_p > 0``, car ``e`` starts braking at its comfortable
    deceleration (harder where its leader demands) with that probability, for 2–4 s, from
    values ``e - 1`` and ``V + e - 1`` of the draw with base ``brake_base`` (see
    :mod:`lanesim.sim.rng`).
    """
    V = traffic.vehicles
    lane_width = road.lane_width
    vmax_lat = lane_width / traffic.lane_change_time
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
            vd = min(max(TRAFFIC_LATERAL_GAIN * error, -bound), bound)
        d = F[D, b, e]
        k = F[CURVATURE, b, e]
        along = math.sqrt(max(v * v - vd * vd, 0.0))
        direction = road.lane_direction[I[LANE, b, e]]
        # At lateral offset d the lane is (1 + k d) times as long as the reference line.
        F[S, b, e] += direction * along / (1.0 + k * d) * dt
        F[D, b, e] = d + vd * dt
        F[SPEED, b, e] = v
        F[LAT_SPEED, b, e] = vd
        pass_lane_end(F, I, road, b, e)
        set_world_pose(F, road.geometry, b, e, direction)


@kernel
def change_lanes(F, I, crashed, road, index, traffic, ego_max_speed, b):
    """MOBIL: each steady car may start a change to the neighbour lane with the best incentive,
    among the lanes that travel its way (never into oncoming traffic); in an oncoming lane
    ahead and behind are toward -s and +s, and its right is toward smaller lane indices.

    Cars decide one after another, in entity order, and each committed change enters the lane
    index at once: two cars never merge into the same gap from both sides.
    """
    lane_start, lane_end, lane_stop = road.lane_start, road.lane_end, road.lane_stop
    safe_decel = traffic.safe_decel
    for e in range(1, 1 + traffic.vehicles):
        lane = I[LANE, b, e]
        if (
            I[TARGET_LANE, b, e] != lane
            or second_lane(F, I, road.lane_width, road.lanes, b, e) >= 0
            or crashed[b, e]
            or F[BRAKE_TIMER, b, e] > 0.0
        ):
            # A change under way carries on until the car is wholly in its new lane (its body
            # would otherwise swing into a lane the index does not hold it in); a suddenly
            # braking car is not steady either.
            continue
        s, v = F[S, b, e], F[SPEED, b, e]
        direction = road.lane_direction[lane]
        forward = direction > 0
        # 30 m on, taken round a closed road's seam.
        s_on = s + 30.0 if forward else s - 30.0
        if road.seam > 0.0 and s_on >= road.seam:
            s_on -= road.seam
        lead = lead_of(F, I, index, b, e, lane)
        a_now, gap, lead_speed = _accel_behind(F, I, road, ego_max_speed, b, e, lane, lead)
        # Old follower: how its acceleration changes once this car leaves.
        old_gain = 0.0
        fol = follower(index, b, lane, s) if forward else leader(index, b, lane, s)
        if fol < 0:
            fol = before_start(index, b, lane, s)
        if fol >= 0 and I[KIND, b, fol] == CAR:
            fs, fv = F[S, b, fol], F[SPEED, b, fol]
            fgap = bumper_gap(F, b, fol, e, fs, F[D, b, fol], road.seam)
            # On a loop with two cars in the lane, the follower is also the leader: once this
            # car leaves, it follows nobody (not itself a lap ahead).
            after = np.inf if fol == lead else fgap + F[LENGTH, b, e] + gap
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
                and lane_exists(lane_start, lane_end, cand, s_on)
                and lane_stop[cand] - s >= MUST_LEAVE_DISTANCE
                and road.lane_direction[cand] == direction
            ):
                continue
            nl, nf = neighbours(index, b, cand, s)
            if not forward:
                nl, nf = nf, nl
            if nl < 0:
                nl = beyond_end(index, b, cand, s)
            if nf < 0:
                nf = before_start(index, b, cand, s)
            a_new, ngap, _ = _accel_behind(F, I, road, ego_max_speed, b, e, cand, nl)
            new_gain = 0.0
            safe = ngap > 1.0 and a_new > -safe_decel
            if nf >= 0:
                nfs, nfv = F[S, b, nf], F[SPEED, b, nf]
                nf_gap = bumper_gap(F, b, nf, e, nfs, F[D, b, nf], road.seam)
                safe = safe and nf_gap > 1.0
                # A moving follower: the ego or a car, coming the same way (the ego may drive
                # the other way in an oncoming lane: it does not brake for this car).
                same_way = direction_of(I, road.lane_direction, b, nf) == direction
                if I[KIND, b, nf] <= CAR and same_way:
                    after = _idm_for(F, I, b, nf, ego_max_speed, nfv, nf_gap, v)
                    # On a loop, a lane's only car is both the leader and the follower: it
                    # follows nobody (itself a lap ahead) before the change.
                    old_gap = np.inf if nl == nf else bumper_gap(
                        F, b, nf, nl, nfs, F[D, b, nf], road.seam)
                    nl_speed = 0.0
                    if nl >= 0:  # in the lane's direction (the ego may come the other way)
                        way = direction_of(I, road.lane_direction, b, nl)
                        nl_speed = F[SPEED, b, nl] * (direction * way)
                    new_gain = after - _idm_for(F, I, b, nf, ego_max_speed, nfv, old_gap, nl_speed)
                    safe = safe and after > -safe_decel
            gain = mobil_incentive(a_new - a_now, new_gain, old_gain, politeness)
            gain += traffic.keep_right_bias * (side * direction) + (10.0 if must_leave else 0.0)
            if safe and gain > traffic.lane_change_threshold and gain > best_gain:
                best_gain = gain
                best = cand
        if best != lane:
            I[TARGET_LANE, b, e] = best
            insert(index, b, best, s, e)


@kernel
def recycle(F, I, crashed, road, index, traffic, recycle_base, b):
    """Move the first car beyond ``recycle_distance`` from the ego (or near the road's end in its
    direction) to the far edge on the other side, if there is room there; one car per decision,
    so moved cars never land on each other. Car ``e``'s new lane, one of those travelling its
    way, and position come from values ``2(e - 1)`` and ``2(e - 1) + 1`` of the draw with base
    ``recycle_base``; never past a closing lane's stop (``lane_stop``). It
    enters at 0.9 of its desired speed, or slower where its leader is near
    (:func:`_settle_speed`)."""
    lane_end, lanes = road.lane_end, road.lanes
    recycle_distance = traffic.recycle_distance
    ego_s = F[S, b, 0]
    road_end = lane_end[0]
    for lane in range(1, lane_end.shape[0]):
        road_end = max(road_end, lane_end[lane])
    for e in range(1, 1 + traffic.vehicles):
        rel = F[S, b, e] - ego_s
        direction = road.lane_direction[I[LANE, b, e]]
        s = F[S, b, e]
        before_end = s <= road_end - 5.0 if direction > 0 else s >= 5.0
        if abs(rel) <= recycle_distance and before_end:
            continue
        edge = recycle_distance - 10.0 - 60.0 * stream_uniform(recycle_base, 2 * (e - 1) + 1)
        # Cars that ran ahead re-enter behind, and vice versa: a car that came past the ego
        # re-enters where it comes toward the ego again, either way it travels.
        new_s = ego_s - edge if rel > 0 else ego_s + edge
        ways = 0
        for k in range(lanes):
            ways += road.lane_direction[k] == direction
        pick = min(int(stream_uniform(recycle_base, 2 * (e - 1)) * ways), ways - 1)
        lane = -1
        while pick >= 0:  # the pick-th lane that travels its way
            lane += 1
            pick -= road.lane_direction[lane] == direction
        if (
            not lane_exists(road.lane_start, lane_end, lane, new_s)
            or new_s > road.lane_stop[lane] - SPAWN_MARGIN
            or new_s < 5.0
            or new_s > road_end - 5.0
        ):
            return
        room = 15.0 + 1.5 * F[DESIRED_SPEED, b, e]
        for other in (leader(index, b, lane, new_s), follower(index, b, lane, new_s)):
            if other >= 0 and abs(F[S, b, other] - new_s) <= room:
                return
        F[S, b, e] = new_s
        F[D, b, e] = (lane + 0.5) * road.lane_width
        I[LANE, b, e] = lane
        I[TARGET_LANE, b, e] = lane
        F[SPEED, b, e] = 0.9 * F[DESIRED_SPEED, b, e]
        F[LAT_SPEED, b, e] = 0.0
        F[BRAKE_TIMER, b, e] = 0.0
        crashed[b, e] = False
        set_world_pose(F, road.geometry, b, e, direction)
        sort_by_s(F, index.order, b)
        build_index(F, I, road.lane_width, index, b)
        _settle_speed(F, I, road, index, b, e)
        return
