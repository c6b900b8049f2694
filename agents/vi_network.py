"""The value-iteration driver on road networks (Intersection-v0, Roundabout-v0, Exit-v0, any
scenario with a ``network``) with ``action="meta"``: :class:`NetworkPlanner`, run by
:class:`agents.vi_driver.VIDriver` (one agent, ``"vi"``, for every scenario).

At each decision the planner looks along the ego's route (the lanes it will take, from the
world's route tables), builds a finite-horizon MDP of its longitudinal choices there, solves it
by value iteration and returns the first action of the best plan (receding horizon).

The abstraction
---------------
* **Where**: ``s``, metres along the route from the ego's centre now (the planning lane is the
  meta action's target lane, so a lane change under way plans in the lane it goes to). Where
  the route leaves a lane sideways, ``s`` runs on along the lane it changes to (its ``via``),
  and the end of the lane left is a *wall*: reaching it ends the plan as a wrong turn.
* **States**: ``(k, speed level, position cell, speed cell)``: the planning step ``k`` (of
  ``step`` s, ``horizon`` of them), the meta action's target speed (an index of
  ``meta_speeds``), ``s`` in ``s_cell`` m and the ego's speed in ``v_cell`` m/s. Only the
  states reachable from the present are built, breadth first; paths reaching the same cell
  merge (the first keeps its continuous ``(s, v)``).
* **Actions**: FASTER, IDLE, SLOWER. FASTER at the top level and SLOWER at the bottom do
  nothing in the env and cost ``invalid_cost``; a speed change costs ``speed_change_cost``.
  Lane changes are not in the MDP: where the route asks for one (its ``change`` table, e.g.
  Exit-v0's moves right toward ``decel:3``) and the gap in the target lane is safe
  (:func:`_gap_safe`), the MDP is solved in the target lane too, and the planner asks for the
  change if that plan is worth at least the plan of staying less ``change_slack``; where
  every plan of staying ends in a crash (worth less than ``-escape_below ×
  collision_penalty``), a safe change to either neighbour whose plan is clearly better is
  taken (an escape). A change under way is planned in its target lane, the cars of the lane
  it leaves included.
* **Ego motion** (deterministic): the autopilot's speed law (``AUTOPILOT_SPEED_GAIN`` toward
  the target within the ego's acceleration and braking limits), ``substeps`` per step.
* **Other cars** (traffic's exits are its turn signals: each car's path is the lanes its route
  table takes from where it is):

  - *on the route*: a car whose path joins the ego's route is a leader along ``s`` from where
    it joins to where it leaves, at constant speed but braking (2 m/s²) to the speed limit of a
    bend on its way and no faster in the end than the slower cars ahead of it (a queue into a
    bend); cars behind the ego are followers and brake for it (the simulator's traffic
    does), so they are left out;
  - *at conflicts*: for every conflict of a route lane with another lane (the lane graph's
    ``conf_*``: the zone ``[z0, z1]`` on the route lane, ``[w0, w1]`` on the other), each car
    whose path crosses the other lane's zone occupies it from the earliest time it can get
    there (accelerating at its ``max_accel`` to its desired speed) to the latest time its rear
    leaves it (accelerating only gently, ``slow_accel``, from its present speed). Where the
    ego's lane has the right of way (``conf_yield`` false), a car that can still stop before
    its stop line is taken to yield (the simulator's gap acceptance makes it); one that
    cannot, or is already inside, is a car like any other: the ego never plans into it.
  - *on a lane beside the route* with a lane change into it under way: on the route now;
    on a branch beside the route's just past a diverge (the lane graph's ``diverge_len``,
    where the branches still overlap): a leader until it has parted.
* **Collision**: each substep, a leader closer than ``gap_hit`` m bumper to bumper, or the
  ego's footprint in a zone while a car's occupancy window, widened by ``window_margin`` s,
  covers the moment, is a collision (probability 1); it falls linearly to 0 over a further
  ``gap_soft`` m or ``window_soft`` s, so the plan keeps its distance.
* **Rewards**: progress, ``speed_weight`` per second at ``reward_speed`` (the env's progress
  term); ``-collision_penalty`` for a collision; ``-follow_weight × shortfall²`` per step for a
  gap to a leader shorter than ``2 m + follow_headway × speed``; ``-wall_weight ×
  collision_penalty`` for a wrong turn (a wall). After the horizon a ``tail``
  (s) is scored: its progress and ``tail_weight × collision_penalty`` × its collision
  probability, at the lowest speed level or at the level reached, whichever is safer, so that
  every plan ends where the ego can still stop (or, on a highway, slow) safely or drive on
  clear of the others; leaders are watched for longer (``leader_tail``), so that the ego
  drops back early behind a car that will slow for a bend (Exit-v0's ramp) below the
  ego's lowest speed level.

The MDP is a DAG (time moves forward) solved undiscounted: value iteration in one backward
sweep over the states in reverse order of construction is exact.
"""

from __future__ import annotations

import math
import time
from collections import namedtuple
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from numba import njit

from lanesim.envs.actions import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER
from lanesim.envs.driving import NetworkScene
from lanesim.envs.options import Options
from lanesim.sim.models import AUTOPILOT_SPEED_GAIN
from lanesim.sim.netstep import INACTIVE, across, time_to_cover
from lanesim.sim.network import lane_point

__all__ = ["NetworkPlanner", "VINetworkConfig"]

# The MDP's actions, in order, as meta actions.
_ACTIONS = (FASTER, IDLE, SLOWER)
_LABELS = ("FASTER", "IDLE", "SLOWER")
# Lanes of the route planned along, and of each car's path walked, at most.
_PLAN_LANES = 16
_CAR_LANES = 8
# Leader table columns: centre s now (m), speed (m/s), half length (m), the s span (m) in
# which it is on the route, the speed (m/s) it slows to for a bend on its way and how far (m)
# ahead of it that bend starts.
L_S, L_V, L_HALF, L_LO, L_HI, L_VF, L_DSLOW = range(7)
N_LCOL = 7
# Traffic's braking (m/s²) for a bend ahead, as predicted.
_BEND_DECEL = 2.0
# Conflict window columns: the zone on the route (s from, to; m) and the time (s) a car is in
# it (from, to).
W_S0, W_S1, W_T0, W_T1 = range(4)


@dataclass(frozen=True)
class VINetworkConfig:
    """Parameters of :class:`NetworkPlanner` (units m, s, m/s; each with its accepted range)."""

    horizon: int = 10  # planning steps, 1 to 40
    step: float = 0.5  # s per planning step, 0.1 to 2
    substeps: int = 5  # motion and collision checks per step, 1 to 20
    s_cell: float = 1.0  # m, position cells, 0.1 to 20
    v_cell: float = 0.5  # m/s, speed cells, 0.1 to 10
    max_states: int = 20_000  # states built at most, 100 to 1,000,000
    # rewards
    speed_weight: float = 1.0  # per second at reward_speed, 0 to 100
    collision_penalty: float = 100.0  # 0 to 1e6
    speed_change_cost: float = 0.02  # per FASTER or SLOWER, 0 to 100
    invalid_cost: float = 1.0  # FASTER at the top level, SLOWER at the bottom, 0 to 100
    follow_headway: float = 1.0  # s, 0 to 5
    follow_weight: float = 0.3  # per step at zero gap, 0 to 100
    tail: float = 3.0  # s scored after the horizon at the lowest level, 0 to 20
    tail_weight: float = 0.5  # of the collision penalty, 0 to 1
    leader_tail: float = 8.0  # s after the horizon in which leaders are watched, 0 to 30
    tail_substeps: int = 3  # collision checks per second of the tail, 1 to 20
    # prediction and safety
    gap_hit: float = 0.5  # m bumper gap to a leader that counts as a collision, 0 to 10
    gap_soft: float = 2.0  # m over which a closer gap's risk falls to 0, 0.1 to 20
    window_margin: float = 0.3  # s either side of a car's time in a zone, 0 to 5
    window_soft: float = 0.3  # s over which the risk falls to 0 beyond it, 0.1 to 5
    zone_margin: float = 0.5  # m added to the zones along the route, 0 to 5
    slow_accel: float = 1.0  # m/s², a slow car's acceleration (to its desired speed) when
    # the time it leaves a zone is reckoned, 0.1 to 4
    # lane changes the route asks for
    change_gap: float = 4.0  # m bumper gap at least, either side, 0 to 50
    change_time_gap: float = 0.6  # s of the faster's speed added to that gap, 0 to 5
    change_ttc: float = 3.0  # s to collision at least at the present speeds, 0 to 20
    change_slack: float = 0.5  # how much lower the target lane's plan may be worth, 0 to 100
    escape_below: float = 0.5  # of the collision penalty: where the best plan is worth less,
    # a lane change the route does not ask for is weighed too, 0 to 1
    wall_weight: float = 0.3  # of the collision penalty: reaching the end of a lane the route
    # leaves sideways, which ends the plan (a wrong turn is better than a crash), 0 to 1

    def __post_init__(self) -> None:
        ranges = {
            "horizon": (1, 40), "step": (0.1, 2.0), "substeps": (1, 20), "s_cell": (0.1, 20.0),
            "v_cell": (0.1, 10.0), "max_states": (100, 1_000_000), "speed_weight": (0.0, 100.0),
            "collision_penalty": (0.0, 1e6), "speed_change_cost": (0.0, 100.0),
            "invalid_cost": (0.0, 100.0), "follow_headway": (0.0, 5.0),
            "follow_weight": (0.0, 100.0), "tail": (0.0, 20.0), "tail_weight": (0.0, 1.0),
            "leader_tail": (0.0, 30.0),
            "tail_substeps": (1, 20), "gap_hit": (0.0, 10.0), "gap_soft": (0.1, 20.0),
            "window_margin": (0.0, 5.0), "window_soft": (0.1, 5.0), "zone_margin": (0.0, 5.0),
            "slow_accel": (0.1, 4.0), "change_gap": (0.0, 50.0), "change_time_gap": (0.0, 5.0),
            "change_ttc": (0.0, 20.0), "change_slack": (0.0, 100.0),
            "wall_weight": (0.0, 1.0), "escape_below": (0.0, 1.0),
        }
        for f in fields(self):
            v = getattr(self, f.name)
            lo, hi = ranges[f.name]
            whole = isinstance(lo, int)
            ok = (isinstance(v, int) if whole else isinstance(v, int | float)) and not isinstance(
                v, bool) and math.isfinite(v) and lo <= v <= hi
            if not ok:
                kind = "an integer" if whole else "a number"
                raise ValueError(f"VINetworkConfig.{f.name} must be {kind} from {lo:g} to "
                                 f"{hi:g}, got {v!r}")


class _Plan(NamedTuple):
    """What the compiled planner reads (:class:`VINetworkConfig`'s fields and the env's)."""

    horizon: int
    step: float
    substeps: int
    s_cell: float
    v_cell: float
    max_states: int
    speed_weight: float
    collision_penalty: float
    speed_change_cost: float
    invalid_cost: float
    follow_headway: float
    follow_weight: float
    tail: float
    tail_weight: float
    leader_tail: float
    tail_substeps: int
    gap_hit: float
    gap_soft: float
    window_margin: float
    window_soft: float
    zone_margin: float
    slow_accel: float
    wall_weight: float
    reward_speed: float
    ego_half: float  # m, half the ego's length
    ego_accel: float  # m/s²
    ego_brake: float  # m/s²


# The _Plan fields taken from VINetworkConfig (the rest come from the env).
_FROM_CONFIG = tuple(name for name in _Plan.__annotations__
                     if name not in ("reward_speed", "ego_half", "ego_accel", "ego_brake"))


# ---------------------------------------------------------------------------- the scene
@njit(cache=True)
def _plan_path(net, route, gi, lane, u, max_dist, out_lane, out_base):
    """The route's lanes from ``lane`` on (``out_lane``) and the ``s`` of each one's start
    (``out_base``, m, the ego at ``u`` on the first at 0); returns how many. Where the route
    leaves a lane sideways, it goes on from the end of the lane it changes to (its ``via``)."""
    n = 0
    base = -u
    while lane >= 0 and n < out_lane.shape[0]:
        out_lane[n] = lane
        out_base[n] = base
        n += 1
        base += net.lane_length[lane]
        if base > max_dist:
            break
        # Where the route changes lanes, on from the lane it drives on in.
        lane = route.next[gi, route.via[gi, lane]]
        for m in range(n):  # a loop: stop where the route comes round
            if out_lane[m] == lane:
                lane = -1
    return n


@njit(cache=True)
def _index(lanes, n, lane):
    for p in range(n):
        if lanes[p] == lane:
            return p
    return -1


@njit(cache=True)
def _add_leader(leaders, n, s, v, half, lo):
    """Append a leader row (on the route from ``lo`` on, not slowing); returns the new count."""
    if n >= leaders.shape[0]:
        return n
    leaders[n, L_S], leaders[n, L_V], leaders[n, L_HALF] = s, v, half
    leaders[n, L_LO], leaders[n, L_HI] = lo, np.inf
    leaders[n, L_VF], leaders[n, L_DSLOW] = v, np.inf
    return n + 1


@njit(cache=True)
def _scene(net, g, st, prm_sim, b, plan_lane, plan_base, n_plan, via_lane, side_lane,
           ego_half, max_dist, slow_accel):
    """The leader table and the conflict windows (``L_*`` and ``W_*`` columns) of world ``b``
    along the planned lanes. ``via_lane`` ``(n_plan,)``: where the route leaves that lane
    sideways, the lane it changes to (its cars are on the route), else -1.
    ``side_lane``: the lane a change under way leaves (its cars are
    leaders too, at the same place along the target lane), -1 none."""
    N = st.x.shape[1]
    leaders = np.zeros((N * 3, N_LCOL))
    n_lead = 0
    n_conf = 0
    for p in range(n_plan):
        q = plan_lane[p]
        n_conf += g.conf_ptr[q + 1] - g.conf_ptr[q]
    windows = np.zeros((max(N * n_conf, 1), 4))
    n_win = 0
    for j in range(1, N):
        if st.kind[b, j] == INACTIVE or st.lane[b, j] < 0:
            continue
        half = 0.5 * st.length[b, j]
        v = st.speed[b, j]
        lane = st.lane[b, j]
        at = st.u[b, j]
        dest = st.dest[b, j]
        top = st.desired_speed[b, j]
        a_max = st.max_accel[b, j]
        # A car moving into a planned lane, or on the lane a change under way leaves, is on
        # the route now.
        if st.change[b, j] != 0:
            nb = g.left[lane] if st.change[b, j] < 0 else g.right[lane]
            p = _index(plan_lane, n_plan, nb) if nb >= 0 else -1
            if p >= 0:
                s = plan_base[p] + across(net, lane, at, nb)
                if s > -ego_half - half:
                    n_lead = _add_leader(leaders, n_lead, s, v, half, -np.inf)
        # On a branch beside the route's just past a diverge, still alongside it.
        if _index(plan_lane, n_plan, lane) < 0 and at - half < g.diverge_len[lane]:
            for k in range(g.pred_ptr[lane], g.pred_ptr[lane + 1]):
                p = _index(plan_lane, n_plan, g.pred[k])
                if 0 <= p < n_plan - 1:
                    s = plan_base[p + 1] + at
                    if s > -ego_half - half:
                        n_lead = _add_leader(leaders, n_lead, s, v, half, -np.inf)
                        leaders[n_lead - 1, L_HI] = plan_base[p + 1] + g.diverge_len[lane]
                    break
        if side_lane >= 0 and lane == side_lane:
            s = plan_base[0] + across(net, lane, at, plan_lane[0])
            if s > -ego_half - half:
                n_lead = _add_leader(leaders, n_lead, s, v, half, -np.inf)
        # Walk the car's path: where it joins the route and leaves it, the bends it slows
        # for, and the zones it crosses on the way.
        joined = -1  # its leader row; N: a follower (it brakes for the ego)
        prev = -1
        vf, d_slow = v, np.inf
        for k in range(_CAR_LANES):
            lim = g.speed_limit[lane]
            if lim < vf:
                if d_slow == np.inf:
                    d_slow = max(-at - half, 0.0)
                vf = lim
            p = _index(plan_lane, n_plan, lane)
            s = plan_base[p] + at if p >= 0 else 0.0
            if p < 0 and k == 0:
                pv = _index(via_lane, n_plan, lane)
                if pv >= 0:  # in the lane the route changes to: as good as on the route
                    sv = plan_base[pv] + across(net, lane, at, plan_lane[pv])
                    # ... once wholly ahead: a car alongside is in the other lane now (the
                    # change waits for a safe gap, _gap_safe), not a crash in this plan.
                    if sv - half > ego_half:
                        p, s = pv, sv
            if p >= 0:
                if joined < 0:
                    if s > -ego_half - half and n_lead < leaders.shape[0]:
                        joined = n_lead
                        n_lead = _add_leader(leaders, n_lead, s, v, half,
                                             -np.inf if k == 0 else plan_base[p])
                    else:
                        joined = N
            else:
                if 0 <= joined < N and leaders[joined, L_HI] == np.inf and prev >= 0:
                    pl = _index(plan_lane, n_plan, prev)
                    if pl >= 0:
                        # It leaves where its branch parts from the route's (a diverge's
                        # branches run side by side for diverge_len m).
                        leaders[joined, L_HI] = (plan_base[pl] + net.lane_length[prev]
                                                 + g.diverge_len[lane])
                n_win = _windows(g, prm_sim, plan_lane, plan_base, n_plan, lane, at, half, v,
                                 top, a_max, ego_half, slow_accel, windows, n_win)
            if g.exit[lane]:
                break
            nxt = g.hop[lane, dest]
            if nxt < 0:
                break
            prev = lane
            at -= net.lane_length[lane]
            lane = nxt
            if -at - half > max_dist:
                break
        if 0 <= joined < N:
            leaders[joined, L_VF], leaders[joined, L_DSLOW] = vf, d_slow
    # A car is no faster in the end than the slower cars ahead of it on the route (a queue
    # into a bend moves at its slowest): from the front back.
    order = np.argsort(-leaders[:n_lead, L_S])
    for a in range(1, n_lead):
        j = order[a]
        i = order[a - 1]
        ahead_vf = min(leaders[i, L_VF], leaders[i, L_V])
        if ahead_vf < leaders[j, L_VF]:
            leaders[j, L_VF] = ahead_vf
            room = leaders[i, L_S] - leaders[j, L_S] - leaders[i, L_HALF] - leaders[j, L_HALF]
            reach = room + (leaders[i, L_DSLOW] if leaders[i, L_V] > leaders[i, L_VF] else 0.0)
            leaders[j, L_DSLOW] = min(leaders[j, L_DSLOW], max(reach, 0.0))
    return leaders[:n_lead], windows[:n_win]


@njit(cache=True)
def _leader_at(leaders, j, t):
    """Leader ``j``'s centre ``s`` (m) at time ``t`` (s): its speed, braking at
    ``_BEND_DECEL`` to reach its bend's speed where the bend starts."""
    v, vf = leaders[j, L_V], leaders[j, L_VF]
    if vf >= v:
        return leaders[j, L_S] + v * t
    brake = (v * v - vf * vf) / (2.0 * _BEND_DECEL)
    t_cruise = max(leaders[j, L_DSLOW] - brake, 0.0) / max(v, 1e-6)
    if t <= t_cruise:
        return leaders[j, L_S] + v * t
    s = leaders[j, L_S] + v * t_cruise
    tb = min(t - t_cruise, (v - vf) / _BEND_DECEL)
    s += v * tb - 0.5 * _BEND_DECEL * tb * tb
    return s + vf * (t - t_cruise - tb)


@njit(cache=True)
def _windows(g, prm_sim, plan_lane, plan_base, n_plan, o, at, half, v, top, a_max, ego_half,
             slow_accel, windows, n_win):
    """Add to ``windows`` the times a car (centre ``at`` m along lane ``o``, half length
    ``half``, speed ``v``, desired speed ``top``, acceleration ``a_max``) is in each zone that
    ``o`` shares with a planned lane; returns the new count."""
    front, rear = at + half, at - half
    for p in range(n_plan):
        q = plan_lane[p]
        for c in range(g.conf_ptr[q], g.conf_ptr[q + 1]):
            if g.conf_other[c] != o or n_win >= windows.shape[0]:
                continue
            w0, w1 = g.conf_w0[c], g.conf_w1[c]
            if rear > w1:
                continue  # it has passed the zone
            s0, s1 = plan_base[p] + g.conf_z0[c], plan_base[p] + g.conf_z1[c]
            if s1 < -ego_half:
                continue  # so has the ego
            if not g.conf_yield[c]:
                # The ego has the right of way: a car that can still stop before its stop line
                # yields to it.
                line = g.conf_first[o] - prm_sim.stop_margin
                committed = front >= min(w0, line) or v * v > 2.0 * prm_sim.commit_decel * (
                    line - front)
                if not committed:
                    continue
            limit = min(top, g.speed_limit[o])
            t0 = 0.0 if front >= w0 else time_to_cover(w0 - front, v, a_max, limit)
            t1 = time_to_cover(w1 - rear, v, slow_accel, max(limit, v))
            windows[n_win, W_S0], windows[n_win, W_S1] = s0, s1
            windows[n_win, W_T0], windows[n_win, W_T1] = t0, t1
            n_win += 1
    return n_win


# ---------------------------------------------------------------------------- the MDP
@njit(cache=True)
def _hit(s, t, leaders, windows, cfg, zones=True):
    """Collision probability of the ego at ``s`` (m along the route) at time ``t`` (s); with
    the conflict zones' windows unless ``zones`` is False."""
    p = 0.0
    half = cfg.ego_half
    for j in range(windows.shape[0] if zones else 0):
        if s + half < windows[j, W_S0] - cfg.zone_margin:
            continue
        if s - half > windows[j, W_S1] + cfg.zone_margin:
            continue
        off = max(windows[j, W_T0] - t, t - windows[j, W_T1], 0.0) - cfg.window_margin
        q = 1.0 if off <= 0.0 else 1.0 - off / cfg.window_soft
        if q > p:
            p = q
            if p >= 1.0:
                return 1.0
    for j in range(leaders.shape[0]):
        sj = _leader_at(leaders, j, t)
        if sj < leaders[j, L_LO] or sj > leaders[j, L_HI]:
            continue
        gap = sj - s - half - leaders[j, L_HALF]
        if sj - s < 0.0:
            continue  # behind the ego now: a follower
        q = 1.0 if gap <= cfg.gap_hit else 1.0 - (gap - cfg.gap_hit) / cfg.gap_soft
        if q > p:
            p = q
            if p >= 1.0:
                return 1.0
    return p


@njit(cache=True)
def _follow(s, v, t, leaders, cfg):
    """Shortfall² (0 to 1) of the gap to the nearest leader against ``2 m + headway × v``."""
    worst = 0.0
    want = 2.0 + cfg.follow_headway * v
    for j in range(leaders.shape[0]):
        sj = _leader_at(leaders, j, t)
        if sj < leaders[j, L_LO] or sj > leaders[j, L_HI] or sj < s:
            continue
        gap = max(sj - s - cfg.ego_half - leaders[j, L_HALF], 0.0)
        if gap < want:
            short = (want - gap) / want
            worst = max(worst, short * short)
    return worst


@njit(cache=True)
def _move(s, v, target, dt, cfg):
    """The ego under the autopilot's speed law for ``dt`` s."""
    a = min(max(AUTOPILOT_SPEED_GAIN * (target - v), -cfg.ego_brake), cfg.ego_accel)
    v1 = max(v + a * dt, 0.0)
    return s + 0.5 * (v + v1) * dt, v1


@njit(cache=True)
def _solve(v0, level0, speeds, leaders, windows, wall_s, cfg):
    """Build the reachable MDP from the ego's speed ``v0`` and target level ``level0`` and solve
    it; ``wall_s`` (m, inf for none) is the end of a lane the route leaves sideways: reaching
    it ends the plan as a wrong turn, ``wall_weight`` of a collision. Returns ``(q, path_s,
    path_v, states)``: the root's values of FASTER, IDLE, SLOWER, the best plan's ``s`` and
    speed per step, the states built."""
    H, nsub = cfg.horizon, cfg.substeps
    tau = cfg.step
    dt = tau / nsub
    cap = cfg.max_states
    n_lv = speeds.shape[0]
    v_top = max(v0, speeds.max())
    n_v = int(v_top / cfg.v_cell) + 2
    n_s = int((v_top * H * tau + 5.0) / cfg.s_cell) + 2
    grid = np.full(n_lv * n_v * n_s, -1, dtype=np.int64)
    touched = np.empty(cap, dtype=np.int64)
    st_s, st_v = np.empty(cap), np.empty(cap)
    st_l = np.empty(cap, dtype=np.int64)
    succ = np.full((cap, 3), -1, dtype=np.int64)
    rew = np.zeros((cap, 3))
    p_hit = np.zeros((cap, 3))
    st_s[0], st_v[0], st_l[0] = 0.0, v0, level0
    n, lo, hi = 1, 0, 1
    tail = max(cfg.tail, cfg.leader_tail)
    n_tail = int(math.ceil(tail * cfg.tail_substeps)) if tail > 0.0 else 0
    for k in range(H):
        n_touched = 0
        for i in range(lo, hi):
            for a in range(3):
                nl = st_l[i] + (1 if a == 0 else (-1 if a == 2 else 0))
                invalid = nl < 0 or nl >= n_lv
                if invalid:
                    nl = st_l[i]
                s, v = st_s[i], st_v[i]
                p = 0.0
                wall = False
                for sub in range(nsub):
                    s, v = _move(s, v, speeds[nl], dt, cfg)
                    p = max(p, _hit(s, k * tau + (sub + 1) * dt, leaders, windows, cfg))
                    if s + cfg.ego_half >= wall_s - cfg.gap_hit:
                        wall = True
                        break
                r = cfg.speed_weight * (s - st_s[i]) / cfg.reward_speed
                if wall:
                    # A wrong turn: the plan ends here.
                    succ[i, a] = -2
                    rew[i, a] = r - cfg.wall_weight * cfg.collision_penalty
                    p_hit[i, a] = p
                    continue
                r -= cfg.follow_weight * _follow(s, v, (k + 1) * tau, leaders, cfg)
                if invalid:
                    r -= cfg.invalid_cost
                elif a != 1:
                    r -= cfg.speed_change_cost
                if k + 1 == H and n_tail > 0:
                    # After the horizon, for `tail` s: the lowest level or the level reached,
                    # whichever is safer (stop before a zone, or clear it).
                    # Leaders are watched for `leader_tail` s (a far bend they slow for),
                    # conflict zones for `tail` s; progress counts over `tail` s.
                    tdt = tail / n_tail
                    best_p, best_s = 2.0, s
                    for tl in (0, nl):
                        s2, v2, pt, s_end = s, v, 0.0, s
                        for q in range(n_tail):
                            s2, v2 = _move(s2, v2, speeds[tl], tdt, cfg)
                            tq = (q + 1) * tdt
                            if tq <= cfg.tail + 1e-9:
                                s_end = s2
                            pt = max(pt, _hit(s2, H * tau + tq, leaders, windows, cfg,
                                              tq <= cfg.tail + 1e-9))
                            if s2 + cfg.ego_half >= wall_s - cfg.gap_hit:
                                pt = max(pt, cfg.wall_weight)
                                break
                        if pt < best_p - 1e-9:
                            best_p, best_s = pt, s_end
                    r += cfg.speed_weight * (best_s - s) / cfg.reward_speed
                    r -= cfg.tail_weight * cfg.collision_penalty * best_p
                iv = min(int(v / cfg.v_cell + 0.5), n_v - 1)
                is_ = min(max(int(s / cfg.s_cell), 0), n_s - 1)
                cell = (nl * n_v + iv) * n_s + is_
                idx = grid[cell]
                if idx < 0:
                    if n < cap:
                        idx = n
                        st_s[n], st_v[n], st_l[n] = s, v, nl
                        n += 1
                        grid[cell] = idx
                        touched[n_touched] = cell
                        n_touched += 1
                    else:
                        idx = n - 1  # out of room: merge into the last state made
                succ[i, a] = idx
                rew[i, a] = r
                p_hit[i, a] = p
        for m in range(n_touched):
            grid[touched[m]] = -1
        lo, hi = hi, n
    # Value iteration: successors are built after their predecessors, so one sweep from the
    # last state back is exact.
    value = np.zeros(n)
    best = np.zeros(n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        if succ[i, 0] == -1:
            continue  # at the horizon: its arrival was scored
        top = -np.inf
        for a in range(3):
            p = p_hit[i, a]
            after = value[succ[i, a]] if succ[i, a] >= 0 else 0.0
            qv = (1.0 - p) * (rew[i, a] + after) - p * cfg.collision_penalty
            if qv > top + 1e-12:
                top, best[i] = qv, a
        value[i] = top
    q_root = np.empty(3)
    for a in range(3):
        p = p_hit[0, a]
        after = value[succ[0, a]] if succ[0, a] >= 0 else 0.0
        q_root[a] = (1.0 - p) * (rew[0, a] + after) - p * cfg.collision_penalty
    path_s = np.empty(H + 1)
    path_v = np.empty(H + 1)
    i = 0
    m = 0
    while True:
        path_s[m], path_v[m] = st_s[i], st_v[i]
        m += 1
        if succ[i, 0] == -1 or m > H or succ[i, best[i]] < 0:
            break
        i = succ[i, best[i]]
    return q_root, path_s[:m], path_v[:m], n


@njit(cache=True)
def _route_points(net, plan_lane, plan_base, n_plan, path_s, u_offset):
    """World ``(x, y)`` of the route's centre at each ``path_s`` (m from the ego)."""
    out = np.empty((path_s.shape[0], 2))
    for m in range(path_s.shape[0]):
        s = path_s[m]
        p = 0
        while p + 1 < n_plan and plan_base[p + 1] <= s:
            p += 1
        lane = plan_lane[p]
        u = min(max(s - plan_base[p], 0.0), net.lane_length[lane])
        x, y, _ = lane_point(net, lane, u, u_offset if m == 0 else 0.0)
        out[m, 0], out[m, 1] = x, y
    return out


@njit(cache=True)
def _gap_safe(net, g, st, b, lane, u, v, target, gap0, time_gap, ttc):
    """Whether the ego (centre ``u`` m along ``lane``, speed ``v``) may move into the
    neighbouring lane ``target``: every car on it (or moving into it, or out of the ego's
    lane too) leaves at least ``gap0 + time_gap × (the faster speed)`` m bumper to bumper,
    and none closes in on the ego (or the ego on it) within ``ttc`` s."""
    me = across(net, lane, u, target)
    half = 0.5 * st.length[b, 0]
    for j in range(1, st.x.shape[1]):
        if st.kind[b, j] == INACTIVE or st.lane[b, j] < 0:
            continue
        lj = st.lane[b, j]
        into = -1
        if st.change[b, j] != 0:
            into = g.left[lj] if st.change[b, j] < 0 else g.right[lj]
        if lj == target:
            at = st.u[b, j]
        elif lj == lane and into >= 0:
            at = st.u[b, j] + (me - u)  # it is moving over too: same lane for this purpose
        elif into == target:
            at = across(net, lj, st.u[b, j], target)  # moving into the target lane
        else:
            continue
        d = at - me
        gap = abs(d) - half - 0.5 * st.length[b, j]
        vj = st.speed[b, j]
        if gap < gap0 + time_gap * max(v, vj):
            return False
        closing = (v - vj) if d > 0.0 else (vj - v)
        if closing > 0.0 and gap < ttc * closing:
            return False
    return True


def _best(values: np.ndarray, penalty: float) -> int:
    """The index into ``_ACTIONS`` of the best value; where every plan ends in a crash (all
    below half the penalty) and several tie, the gentlest of them (SLOWER before IDLE before
    FASTER): braking sheds speed before an impact the plan cannot avoid."""
    best = float(values.max())
    if best < -0.5 * penalty:
        return int(np.flatnonzero(values >= best - 1e-9)[-1])
    return int(np.argmax(values))


# The scene's vehicle fields the kernels read, as a batch of one world (``field[0, j]``).
_CAR_FIELDS = ("x", "kind", "lane", "length", "speed", "u", "offset", "dest", "change",
               "desired_speed", "max_accel")
_Cars = namedtuple("_Cars", _CAR_FIELDS)


def _cars(scene: NetworkScene) -> _Cars:
    v = scene.vehicles
    return _Cars(*(getattr(v, f)[None, :] for f in _CAR_FIELDS))


# ---------------------------------------------------------------------------- the planner
class NetworkPlanner:
    """The value-iteration planner for a network world with meta actions (see the module
    docstring). :class:`agents.vi_driver.VIDriver` creates one per episode of a network env
    and calls :meth:`act`.

    It reads the env's public model: ``env.unwrapped.scene()``, a
    :class:`lanesim.envs.driving.NetworkScene` (the world's state, network, lane graph with
    its conflicts, the ego's routes and goal, traffic's parameters, the meta action's
    targets), and ``env.unwrapped.options`` (``meta_speeds``, ``reward_speed``).
    """

    def __init__(self, config: VINetworkConfig | None = None) -> None:
        self.config = config or VINetworkConfig()
        self.last: dict = {}
        self.annotations: dict = {}

    def act(self, scene: NetworkScene, options: Options) -> int:
        """The meta action (0..4) for ``scene`` (``env.unwrapped.scene()``) in an env of
        ``options``."""
        start = time.perf_counter()
        c = self.config
        st, g = _cars(scene), scene.graph
        b = 0
        lane = int(st.lane[b, 0])
        if lane < 0:  # off the network: nothing to plan on (the episode is ending)
            self.last = {"action": IDLE, "states": 0, "ms": 0.0}
            self.annotations = {}
            return IDLE
        u = float(st.u[b, 0])
        gi = scene.route
        target = int(scene.ego_target_lane)
        neighbours = (int(g.left[lane]), int(g.right[lane]))
        changing = target != lane and target in neighbours
        if changing:
            plan = self._plan_on(scene, options, target, lane)
        else:
            plan = self._plan_on(scene, options, lane, -1)
        action = _ACTIONS[_best(plan["values"], c.collision_penalty)]
        # A lane change the route asks for, where the gap is safe and the plan in the target
        # lane is as good as staying (a lane the route leaves ends in a wall).
        side = int(scene.routes.change[gi, lane])
        nb = neighbours[0] if side < 0 else neighbours[1]
        if not changing and side != 0 and nb >= 0 and _gap_safe(
                scene.network.arrays, g, st, b, lane, u, float(st.speed[b, 0]), nb, c.change_gap,
                c.change_time_gap, c.change_ttc):
            moved = self._plan_on(scene, options, nb, lane)
            if moved["values"].max() >= plan["values"].max() - c.change_slack:
                plan = moved
                action = LANE_LEFT if side < 0 else LANE_RIGHT
        # An escape: where every plan in this lane ends in a crash, a safe neighbour whose
        # plan is clearly better (a wrong turn is better than a crash).
        if not changing and plan["values"].max() < -c.escape_below * c.collision_penalty:
            for k, nb in enumerate(neighbours):
                if nb < 0 or not _gap_safe(scene.network.arrays, g, st, b, lane, u,
                                           float(st.speed[b, 0]), nb, c.change_gap,
                                           c.change_time_gap, c.change_ttc):
                    continue
                moved = self._plan_on(scene, options, nb, lane)
                if moved["values"].max() > plan["values"].max() + 1.0:
                    plan = moved
                    action = LANE_LEFT if k == 0 else LANE_RIGHT
        plan["action"] = action
        plan["ms"] = 1e3 * (time.perf_counter() - start)
        self.last = plan
        self.annotations = {"plan": plan["points"], "values": plan["values"].copy(),
                            "labels": list(_LABELS),
                            "chosen": _best(plan["values"], c.collision_penalty)}
        if action in (LANE_LEFT, LANE_RIGHT):
            self.annotations["text"] = "LANE_LEFT" if action == LANE_LEFT else "LANE_RIGHT"
        return action

    def _plan_on(self, scene: NetworkScene, options: Options, plan_from: int,
                 side_lane: int) -> dict:
        """Build and solve the MDP along the route from lane ``plan_from`` (the ego's lane, or
        the neighbour it moves to, leaving ``side_lane``; -1 none)."""
        c = self.config
        o = options
        st, g = _cars(scene), scene.graph
        arrays = scene.network.arrays
        b = 0
        lane = int(st.lane[b, 0])
        u, v = float(st.u[b, 0]), float(st.speed[b, 0])
        gi = scene.route
        speeds = np.asarray(o.meta_speeds, dtype=np.float64)
        level = int(np.abs(speeds - scene.ego_target_speed).argmin())
        ego = scene.ego_model
        max_dist = max(v, float(speeds.max())) * (c.horizon * c.step + c.tail) + 50.0
        plan_u = float(across(arrays, lane, u, plan_from)) if plan_from != lane else u
        plan_lane = np.full(_PLAN_LANES, -1, dtype=np.int64)
        plan_base = np.zeros(_PLAN_LANES)
        n_plan = _plan_path(arrays, scene.routes, gi, plan_from, plan_u, max_dist, plan_lane,
                            plan_base)
        ids = plan_lane[:n_plan]
        via_lane = np.where(scene.routes.change[gi, ids] != 0, scene.routes.via[gi, ids], -1)
        leaders, windows = _scene(arrays, g, st, scene.traffic, b, plan_lane, plan_base, n_plan,
                                  via_lane, side_lane, 0.5 * ego.length, max_dist,
                                  c.slow_accel)
        # A lane the route leaves sideways ends in a wall only where going on past its end
        # can no longer reach the goal (a later change would still do, as from approach:1 to
        # decel:1 and on to the exit lane): stopping at the end of a through lane to wait
        # for a gap is no plan.
        ahead = scene.routes.next[gi, ids]
        lost = ~np.where(ahead >= 0, scene.routes.reaches[gi, np.maximum(ahead, 0)], False)
        walls = np.flatnonzero((via_lane >= 0) & lost)
        wall_s = (float(plan_base[walls[0]] + arrays.lane_length[ids[walls[0]]])
                  if walls.size else np.inf)
        cfg = _Plan(**{f: getattr(c, f) for f in _FROM_CONFIG}, reward_speed=float(o.reward_speed),
                    ego_half=0.5 * ego.length, ego_accel=ego.max_accel, ego_brake=ego.max_brake)
        q, path_s, path_v, n = _solve(v, level, speeds, leaders, windows, wall_s, cfg)
        offset = float(st.offset[b, 0]) if plan_from == lane else 0.0
        points = _route_points(arrays, plan_lane, plan_base, n_plan, path_s, offset)
        return {
            "values": q,
            "states": n,
            "path_s": path_s,
            "path_speed": path_v,
            "points": points,
            "route": plan_lane[:n_plan].copy(),
            "leaders": leaders,
            "windows": windows,
        }
