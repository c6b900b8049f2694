"""A value-iteration driver for lanesim's continuous scenarios with ``action="meta"``.

On a road network (a scenario with a ``network``: Intersection-v0, Roundabout-v0, Exit-v0) the
same agent plans along its route instead: :mod:`agents.vi_network` (``network_config``). What
follows describes the one-road planner.

At every decision the agent abstracts the scene around the ego into a small finite MDP, solves
it with :func:`agents.value_iteration.value_iteration` and returns the first action of the
optimal plan (receding horizon: it replans at the next decision, 0.2 s later by default).

The abstraction
---------------
* **Time**: ``horizon`` planning steps of ``step`` seconds (default 10 × 0.5 s = 5 s), then a
  ``tail`` (4 s) that is scored but not planned.
* **States**: ``(k, target lane, target speed level, lateral cell, position cell, speed
  cell)``: the step ``k``; the meta action's targets (a lane, and a level of
  ``meta_speeds``); the ego's offset from the target lane's centre in ``d_cell`` metres (a
  lane change under way); its position along the road relative to driving on at the current
  speed, in ``s_cell`` metres; its speed relative to the target, in ``v_cell`` m/s (position
  and speed cells grow by ``cell_growth`` per step). Only the states reachable from the
  current one are built, breadth first; paths that reach the same cells merge, and the state
  keeps the continuous ego state of the first as its representative (typically 1,000-2,000
  states with three speed levels, up to about 4,000 with five). The MDP has the states with
  ``k < horizon`` and one terminal state where every plan ends, by a collision or by reaching
  ``k = horizon``: neither is worth more than what the transition into it earns (a collision
  its penalty, the horizon the tail's score), so the states at the horizon are built and
  scored but need no MDP states of their own.
* **Actions**: the 5 meta actions. A lane change toward the road edge or into a lane that
  does not exist there, a second change in the direction of one still under way, FASTER at
  the top level and SLOWER at the bottom do nothing in the env (as IDLE) and cost
  ``invalid_cost`` here, so the plan never picks them. Turning back during a lane change is
  allowed.
* **Ego motion** (deterministic): the simulator's lane-following controller, integrated in
  ``substeps`` per step: speed toward the target at 1.5 /s within +3 / -6 m/s²; lateral speed
  toward 0.8 /s × the offset within ±1.5 m/s, reached with a lag of ``1 / lateral_lag`` s.
* **Other road users** (stochastic): cars keep their speed (optionally their measured
  acceleration, ``accel_time``) and move toward their target lane at 4/3 m/s; where they are
  along the road is Gaussian around that, standard deviation
  ``noise_s + noise_v t + noise_a t² / 2`` (braking), and across it ``noise_d + noise_dt t``.
  The lateral noise is small (5 cm/s): traffic moves across only to change lanes, a change shows
  in its target lane from the next decision on, and the simulator's MOBIL starts one only where
  the ego, as the new follower, would not have to brake hard; so the plan may pass a car in the
  next lane, close beside it, instead of treating it as a likely cut-in. Static obstacles
  (stalled cars, cones: ``kind >= STALLED``) stay put. Oncoming cars (in a lane whose
  ``scene.lanes.direction`` is -1) come toward the ego at their speed, seen from as far ahead as
  they reach within the plan and its tail, so an overtaking plan weighs the gap in the oncoming
  lane; behind the ego they drive away and are no followers. Where a lane does not exist
  (``scene.lanes.start`` / ``end``: after a closure, past the end of the merge ramp, before a
  ramp starts) it is a wall across the lane. Cars that start clearly behind the ego are
  followers: the simulator's traffic brakes for the ego, so they cause no collision, but cutting
  in front of one costs ``rear_weight`` when it would need to brake harder than ``rear_decel``.
* **Transitions**: an action leads to the next state with probability ``1 - p`` and to a
  collision (the end state) with probability ``p = 1 - Π_j (1 - p_j)``, where ``p_j`` is the
  largest, over the substeps, probability that obstacle ``j``'s rectangle overlaps the ego's (both
  grown by ``margin_s`` and ``margin_d``).
* **Rewards**: ``speed_weight × distance / reward_speed`` per step (1 per second at
  ``reward_speed``); ``-lane_change_cost`` per lane change, ``-speed_change_cost`` per
  FASTER or SLOWER; ``-collision_penalty`` for a collision; ``-follow_weight × shortfall²``
  for a gap to the car ahead shorter than ``2 m + follow_headway × speed``; ``-end_weight``
  per second, scaled from 0 to 1 over the last ``end_distance`` metres of a lane that ends.
  Arriving at the horizon adds the ``tail``'s speed reward and ``tail_weight ×
  collision_penalty`` × the probability of a collision during the tail if the ego then keeps
  its lane at the lowest speed level.

The MDP is a DAG (time only moves forward) solved undiscounted (``gamma = 1``: with a
discount, putting off a lane change always looks a little cheaper, and a receding-horizon
planner then puts it off for ever); value iteration is exact after ``horizon + 1`` sweeps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit

from agents.mdp import FiniteMDP
from agents.value_iteration import value_iteration
from agents.vi_network import NetworkPlanner, VINetworkConfig
from lanesim.envs.actions import FASTER, LANE_LEFT, LANE_RIGHT, META_ACTIONS, SLOWER
from lanesim.envs.driving import NetworkScene, Scene
from lanesim.envs.options import Options
from lanesim.sim.lane_index import lane_exists
from lanesim.sim.models import (
    AUTOPILOT_LATERAL_GAIN,
    AUTOPILOT_MAX_LATERAL_SPEED,
    AUTOPILOT_SPEED_GAIN,
    EgoModel,
)
from lanesim.sim.world import CAR, STALLED

__all__ = ["VIDriver", "VIDriverConfig"]

# Obstacle table columns (one row per road user or virtual obstacle the plan considers).
O_S, O_D, O_V, O_DT, O_LEN, O_WID, O_STATIC, O_FOLLOWER, O_A = range(9)
N_OCOL = 9


@dataclass(frozen=True)
class VIDriverConfig:
    """Parameters of :class:`VIDriver`'s abstraction (units: m, s, m/s)."""

    horizon: int = 10  # planning steps
    step: float = 0.5  # s per planning step after the first
    first_step: float | None = None  # s; None: the same as step
    substeps: int = 3  # integration and collision checks per step
    gamma: float = 1.0  # discount per planning step (1: none, so nothing pays to wait)
    s_cell: float = 2.0  # m, position cells
    d_cell: float = 1.0  # m, lateral cells
    v_cell: float = 2.0  # m/s, speed cells
    cell_growth: float = 0.3  # position and speed cells grow by this fraction per step
    max_states: int = 8_000
    # rewards
    speed_weight: float = 1.0  # per second at reward_speed
    lane_change_cost: float = 0.3
    speed_change_cost: float = 0.05
    invalid_cost: float = 1.0
    collision_penalty: float = 100.0
    follow_headway: float = 0.8  # s
    follow_weight: float = 0.5  # per step at zero gap
    rear_decel: float = 3.0  # m/s², follower braking that starts to cost
    rear_weight: float = 0.5
    tail: float = 4.0  # s after the horizon
    tail_weight: float = 0.5  # of the collision penalty
    tail_substeps: int = 2  # collision checks per second of the tail
    end_distance: float = 400.0  # m before a lane's end where leaving it starts to pay
    end_weight: float = 3.0  # per second, in the lane's last metres
    # prediction
    noise_s: float = 0.3  # m
    noise_v: float = 0.3  # m/s
    noise_a: float = 0.5  # m/s²
    noise_d: float = 0.05  # m
    noise_dt: float = 0.05  # m/s
    margin_s: float = 1.0  # m added to the half lengths
    margin_d: float = 0.25  # m added to the half widths
    ahead: float = 160.0  # m of road considered ahead
    behind: float = 60.0  # m behind
    lateral_lag: float = 3.0  # 1/s, the ego's lateral speed response
    accel_time: float = 0.0  # s over which others keep their measured acceleration (0: off)
    accel_smoothing: float = 1.0  # s, time constant of the measured accelerations' average
    max_predicted_accel: float = 2.0  # m/s², clip of the measured accelerations
    max_predicted_brake: float = 6.0  # m/s²
    tol: float = 1e-6  # value iteration tolerance


# ---------------------------------------------------------------------------- compiled core
# The ego's acceleration limits (m/s²), those of the simulator's ego.
_EGO_MAX_ACCEL, _EGO_MAX_BRAKE = EgoModel().max_accel, EgoModel().max_brake


class _Abstraction(NamedTuple):
    """What :func:`_build` needs of the abstraction (fields of :class:`VIDriverConfig`, and
    the env's ``reward_speed``)."""

    horizon: int
    step: float
    substeps: int
    s_cell: float
    d_cell: float
    v_cell: float
    cell_growth: float
    lateral_lag: float
    tail: float
    tail_substeps: int
    reward_speed: float
    speed_weight: float
    follow_weight: float
    rear_weight: float
    end_distance: float
    end_weight: float


class _Prediction(NamedTuple):
    """What :func:`_predict` and :func:`_risk` need to predict the others (fields of
    :class:`VIDriverConfig`, and traffic's lateral speed in m/s)."""

    noise_s: float
    noise_v: float
    noise_a: float
    noise_d: float
    noise_dt: float
    margin_s: float
    margin_d: float
    lateral_speed: float
    follow_headway: float
    rear_decel: float
    accel_time: float


def _fill(cls, config, **values):
    """``cls`` (one of the named tuples above) with its fields from ``values`` or else the
    same-named fields of ``config``."""
    return cls(*(values[n] if n in values else getattr(config, n) for n in cls._fields))


_PHI_LO, _PHI_STEP = -6.0, 0.01
_PHI_TABLE = np.array([0.5 * (1.0 + math.erf((_PHI_LO + i * _PHI_STEP) / math.sqrt(2.0)))
                       for i in range(1202)])


@njit(cache=True)
def _phi(x):
    """The standard normal CDF, interpolated in a table (error below 1e-5)."""
    u = (x - _PHI_LO) / _PHI_STEP
    if u <= 0.0:
        return 0.0
    if u >= 1200.0:
        return 1.0
    i = int(u)
    f = u - i
    return _PHI_TABLE[i] * (1.0 - f) + _PHI_TABLE[i + 1] * f


@njit(cache=True)
def _advance(s, d, vd, v, d_target, v_target, dt, n, lag):
    """The ego under the lane-following controller (:func:`lanesim.sim.ego.autopilot`'s gains
    and limits) for ``n`` substeps of ``dt``."""
    keep = 1.0 - math.exp(-lag * dt)
    for _ in range(n):
        want = min(
            max(AUTOPILOT_LATERAL_GAIN * (d_target - d), -AUTOPILOT_MAX_LATERAL_SPEED),
            AUTOPILOT_MAX_LATERAL_SPEED,
        )
        vd += (want - vd) * keep
        d += vd * dt
        a = min(max(AUTOPILOT_SPEED_GAIN * (v_target - v), -_EGO_MAX_BRAKE), _EGO_MAX_ACCEL)
        v_new = max(v + a * dt, 0.0)
        s += 0.5 * (v + v_new) * dt
        v = v_new
    return s, d, vd, v


@njit(cache=True)
def _predict(obs, times, prm):
    """Each obstacle's predicted centre, its noise and its rejection window at ``times``.

    Returns ``s, d, sig_s, sig_d, reach_s, reach_d``, each ``(len(times), n_obs)``; an
    obstacle farther than ``reach`` from the ego along (or across) the road cannot overlap it.
    """
    noise_s, noise_v, noise_a = prm.noise_s, prm.noise_v, prm.noise_a
    noise_d, noise_dt = prm.noise_d, prm.noise_dt
    v_lat, accel_time = prm.lateral_speed, prm.accel_time
    nt, n_obs = times.shape[0], obs.shape[0]
    ps = np.empty((nt, n_obs))
    pd = np.empty((nt, n_obs))
    sg = np.empty((nt, n_obs))
    sd = np.empty((nt, n_obs))
    for i in range(nt):
        t = times[i]
        for j in range(n_obs):
            static = obs[j, O_STATIC] > 0.0
            # Constant acceleration for `accel_time` s (never backwards: the velocity along the
            # road, negative for oncoming cars, stops at 0 rather than change sign), then
            # constant speed.
            v0, acc = obs[j, O_V], obs[j, O_A]
            ta = min(t, accel_time)
            end = v0 + acc * ta
            if (v0 > 0.0 and end < 0.0) or (v0 < 0.0 and end > 0.0):
                ta = -v0 / acc
            elif v0 == 0.0 and acc < 0.0:
                ta = 0.0
            ps[i, j] = obs[j, O_S] + v0 * ta + 0.5 * acc * ta * ta + (v0 + acc * ta) * (t - ta)
            dj = obs[j, O_D]
            if not static:
                gap = obs[j, O_DT] - dj
                if abs(gap) <= v_lat * t:
                    dj = obs[j, O_DT]
                else:
                    dj += v_lat * t if gap > 0 else -v_lat * t
            pd[i, j] = dj
            sg[i, j] = 0.1 if static else noise_s + noise_v * t + 0.5 * noise_a * t * t
            sd[i, j] = 0.05 if static else noise_d + noise_dt * t
    return ps, pd, sg, sd


@njit(cache=True)
def _risk(s, d, vd, v, d_target, v_target, i0, tau, nsub, lag, obs, ps, pd, sg, sd, ego_len,
          ego_wid, prm, pmax):
    """Advance one planning step whose first substep is time sample ``i0`` and measure it.

    Returns ``(p_collision, distance, follow_cost, rear_cost, s, d, vd, v)`` at the end.
    ``pmax`` (scratch, ``(n_obs,)``) holds each obstacle's largest overlap probability.
    """
    margin_s, margin_d = prm.margin_s, prm.margin_d
    follow_headway, rear_decel = prm.follow_headway, prm.rear_decel
    n_obs = obs.shape[0]
    for j in range(n_obs):
        pmax[j] = 0.0
    dt = tau / nsub
    s0 = s
    any_hit = False
    for sub in range(nsub):
        s, d, vd, v = _advance(s, d, vd, v, d_target, v_target, dt, 1, lag)
        i = i0 + sub
        for j in range(n_obs):
            if obs[j, O_FOLLOWER] > 0.0:
                continue
            h = 0.5 * (ego_len + obs[j, O_LEN]) + margin_s
            ds = ps[i, j] - s
            if abs(ds) > h + 4.0 * sg[i, j]:
                continue
            w = 0.5 * (ego_wid + obs[j, O_WID]) + margin_d
            dd = pd[i, j] - d
            if abs(dd) > w + 4.0 * sd[i, j]:
                continue
            p_lat = _phi((w - dd) / sd[i, j]) - _phi((-w - dd) / sd[i, j])
            if p_lat <= pmax[j]:
                continue
            p = p_lat * (_phi((h - ds) / sg[i, j]) - _phi((-h - ds) / sg[i, j]))
            if p > pmax[j]:
                pmax[j] = p
                any_hit = True
    survive = 1.0
    if any_hit:
        for j in range(n_obs):
            survive *= 1.0 - pmax[j]
    # Soft costs at the end of the step: a short gap ahead, a hard-braking follower behind.
    i = i0 + nsub - 1
    follow = 0.0
    rear = 0.0
    for j in range(n_obs):
        half = 0.5 * (ego_len + obs[j, O_LEN])
        ds = ps[i, j] - s
        if ds > half + 2.0 + follow_headway * v or ds < -half - 60.0:
            continue
        if abs(pd[i, j] - d) > 0.5 * (ego_wid + obs[j, O_WID]) + 0.5:
            continue
        if ds > 0.0:
            bumper = ds - half
            want = 2.0 + follow_headway * v
            short = (want - max(bumper, 0.0)) / want
            follow = max(follow, short * short)
        elif obs[j, O_STATIC] == 0.0:
            bumper = -ds - half
            closing = obs[j, O_V] - v
            if closing > 0.0:
                need = closing * closing / (2.0 * max(bumper, 0.5))
                if need > rear_decel:
                    rear = max(rear, min((need - rear_decel) / rear_decel, 2.0))
    return 1.0 - survive, s - s0, follow, rear, s, d, vd, v


@njit(cache=True)
def _build(ego, target_lane, level, speeds, lane_width, lane_start, lane_end, lane_closes, obs,
           ego_len, ego_wid, prm, cfg, durations, max_states):
    """Enumerate the reachable states breadth first and score every transition.

    ``ego`` = ``(s, d, vd, v)``; ``cfg`` an :class:`_Abstraction`, ``prm`` a
    :class:`_Prediction`; ``durations`` ``(horizon,)`` the length (s) of each planning step.
    Per-step soft costs are scaled by ``duration / step``.

    Returns ``n`` and per state ``k, lane, level, s, d, v`` ``(n,)``, ``succ`` ``(n, 5)``
    (-1 where terminal), ``invalid`` ``(n, 5)`` and per state the arrival ``p_collision``,
    ``reward`` and ``tail_p`` (collision risk after the horizon, last-step states only).
    """
    horizon, tau, nsub = cfg.horizon, cfg.step, cfg.substeps
    s_cell, d_cell, v_cell, growth = cfg.s_cell, cfg.d_cell, cfg.v_cell, cfg.cell_growth
    lag, tail, tail_sub = cfg.lateral_lag, cfg.tail, cfg.tail_substeps
    reward_speed, speed_weight = cfg.reward_speed, cfg.speed_weight
    follow_weight, rear_weight = cfg.follow_weight, cfg.rear_weight
    end_distance, end_weight = cfg.end_distance, cfg.end_weight
    n_levels = speeds.shape[0]
    n_obs = obs.shape[0]
    pmax = np.zeros(n_obs)

    # Time samples: every substep of the horizon, then the tail after it (steps of 1 s).
    n_tail = int(math.ceil(tail - 1e-9)) if tail > 0.0 else 0
    tail_tau = tail / n_tail if n_tail > 0 else 1.0
    starts = np.zeros(horizon + 1)  # start time of each planning step
    for k in range(horizon):
        starts[k + 1] = starts[k] + durations[k]
    times = np.empty(horizon * nsub + n_tail * tail_sub)
    for k in range(horizon):
        for sub in range(nsub):
            times[k * nsub + sub] = starts[k] + (sub + 1) * durations[k] / nsub
    for i in range(n_tail * tail_sub):
        times[horizon * nsub + i] = starts[horizon] + (i + 1) * tail_tau / tail_sub
    ps, pd, sg, sd = _predict(obs, times, prm)

    st_k = np.zeros(max_states, np.int64)
    st_lane = np.zeros(max_states, np.int64)
    st_level = np.zeros(max_states, np.int64)
    st_s = np.zeros(max_states)
    st_d = np.zeros(max_states)
    st_vd = np.zeros(max_states)
    st_v = np.zeros(max_states)
    st_p = np.zeros(max_states)
    st_r = np.zeros(max_states)
    st_tail = np.zeros(max_states)
    succ = -np.ones((max_states, 5), np.int64)
    invalid = np.zeros((max_states, 5), np.bool_)

    st_s[0], st_d[0], st_vd[0], st_v[0] = ego[0], ego[1], ego[2], ego[3]
    st_lane[0], st_level[0] = target_lane, level
    n = 1
    lo, hi = 0, 1
    s_ref0, v_ref = ego[0], ego[3]
    for k in range(horizon):
        m = (hi - lo) * 5
        keys = np.empty(m, np.int64)
        c_lane = np.empty(m, np.int64)
        c_level = np.empty(m, np.int64)
        s_ref = s_ref0 + v_ref * starts[k + 1]
        dur = durations[k]
        scale = 1.0 + growth * k
        for f in range(lo, hi):
            lane, lev = st_lane[f], st_level[f]
            offset = st_d[f] - (lane + 0.5) * lane_width
            moving = 0 if abs(offset) < 0.5 * d_cell else (1 if offset < 0 else -1)  # +1: right
            for a in range(5):
                nl, nv, bad = lane, lev, False
                if a == LANE_LEFT or a == LANE_RIGHT:
                    side = -1 if a == LANE_LEFT else 1
                    if moving == side or not lane_exists(lane_start, lane_end, lane + side,
                                                          st_s[f]):
                        bad = True
                    else:
                        nl = lane + side
                elif a == FASTER:
                    if lev + 1 < n_levels:
                        nv = lev + 1
                    else:
                        bad = True
                elif a == SLOWER:
                    if lev > 0:
                        nv = lev - 1
                    else:
                        bad = True
                invalid[f, a] = bad
                s1, d1, vd1, v1 = _advance(st_s[f], st_d[f], st_vd[f], st_v[f],
                                           (nl + 0.5) * lane_width, speeds[nv], dur / nsub, nsub,
                                           lag)
                db = min(max(int(round((d1 - (nl + 0.5) * lane_width) / d_cell)) + 64, 0), 127)
                sb = min(max(int(round((s1 - s_ref) / (s_cell * scale))) + 4096, 0), 8191)
                vb = min(max(int(round((v1 - speeds[nv]) / (v_cell * scale))) + 64, 0), 127)
                i = (f - lo) * 5 + a
                keys[i] = (((nl * 16 + nv) * 128 + db) * 8192 + sb) * 128 + vb
                c_lane[i], c_level[i] = nl, nv
        order = np.argsort(keys)
        new_lo = n
        prev = -1
        idx = -1
        for r in range(m):
            i = order[r]
            if keys[i] != prev:
                if n < max_states:
                    prev = keys[i]
                    idx = n
                    n += 1
                    f = lo + i // 5
                    nl, nv = c_lane[i], c_level[i]
                    st_k[idx], st_lane[idx], st_level[idx] = k + 1, nl, nv
                    p, dist, follow, rear, s1, d1, vd1, v1 = _risk(
                        st_s[f], st_d[f], st_vd[f], st_v[f], (nl + 0.5) * lane_width,
                        speeds[nv], k * nsub, dur, nsub, lag, obs, ps, pd, sg, sd, ego_len,
                        ego_wid, prm, pmax)
                    st_s[idx], st_d[idx], st_vd[idx], st_v[idx] = s1, d1, vd1, v1
                    st_p[idx] = p
                    st_r[idx] = (speed_weight * dist / reward_speed
                                 - (follow_weight * follow + rear_weight * rear) * dur / tau)
                    if lane_closes[nl] and end_distance > 0.0:
                        # Leave a lane that ends soon: a cost per second growing toward its end.
                        urgency = 1.0 - (lane_end[nl] - s1) / end_distance
                        st_r[idx] -= end_weight * min(max(urgency, 0.0), 1.0) * dur
                    if k + 1 == horizon and n_tail > 0:
                        # After the horizon: keep the lane at the lowest level for `tail` s.
                        survive = 1.0
                        s2, d2, vd2, v2 = s1, d1, vd1, v1
                        for q in range(n_tail):
                            pt, _, _, _, s2, d2, vd2, v2 = _risk(
                                s2, d2, vd2, v2, (nl + 0.5) * lane_width, speeds[0],
                                horizon * nsub + q * tail_sub, tail_tau, tail_sub, lag, obs,
                                ps, pd, sg, sd, ego_len, ego_wid, prm, pmax)
                            survive *= 1.0 - pt
                        st_tail[idx] = 1.0 - survive
                        st_r[idx] += speed_weight * tail * v1 / reward_speed
                # else: out of room; the candidate merges into the last state made.
            succ[lo + i // 5, i % 5] = idx
        lo, hi = new_lo, n
    return (n, st_k[:n], st_lane[:n], st_level[:n], st_s[:n], st_d[:n], st_v[:n], succ[:n],
            invalid[:n], st_p[:n], st_r[:n], st_tail[:n])


# ---------------------------------------------------------------------------- the agent
class VIDriver:
    """Receding-horizon value-iteration driver for ``action="meta"`` lanesim environments.

    Args:
        config: the one-road abstraction's parameters (:class:`VIDriverConfig`); keyword
            arguments override single fields of it (not of ``network_config``).
        network_config: the network planner's (:class:`agents.vi_network.VINetworkConfig`),
            used where the env's world has a ``network``.

    ``reset(env)`` binds it to the episode's environment; ``act(obs)`` reads
    ``env.unwrapped.scene()`` (:class:`lanesim.envs.driving.Scene`: the vehicles, lanes and
    the meta action's current targets) and ``env.unwrapped.options`` (``meta_speeds``,
    ``reward_speed``), builds and solves the MDP and returns a meta action in 0..4.
    ``last`` holds the latest solve's details (states, the MDP and its value-iteration result,
    the greedy plan, timing).
    """

    action_type = "meta"

    def __init__(self, config: VIDriverConfig | None = None,
                 network_config: VINetworkConfig | None = None, **overrides) -> None:
        config = config or VIDriverConfig()
        self.config = replace(config, **overrides) if overrides else config
        self.network_config = network_config or VINetworkConfig()
        self._network: NetworkPlanner | None = None
        self.last: dict = {}
        self._annotations: dict = {}
        self._prev = None
        self._acc = None
        self._env = None

    def reset(self, env) -> None:
        """A new episode starts in ``env`` (a meta-action lanesim env, wrapped or not)."""
        self._env = env.unwrapped
        on_network = isinstance(self._env.scene(), NetworkScene)
        if on_network and self._env.options.action != "meta":
            raise ValueError(f"VIDriver plans meta actions: make the env with action='meta', "
                             f"not {self._env.options.action!r}")
        self._network = NetworkPlanner(self.network_config) if on_network else None
        self.last = {}
        self._annotations = {}
        self._prev = None
        self._acc = None

    # ---------------------------------------------------------------- scene
    @staticmethod
    def _targets(scene: Scene, speeds: np.ndarray) -> tuple[int, int]:
        """The meta action's current target lane and speed level (``meta_speeds`` index)."""
        if scene.ego_target_lane is not None:
            return scene.ego_target_lane, int(np.flatnonzero(speeds == scene.ego_target_speed)[0])
        ego = scene.vehicles
        return int(ego.lane[0]), int(np.abs(speeds - ego.speed[0]).argmin())

    @staticmethod
    def _velocities(scene: Scene) -> np.ndarray:
        """Each entity's velocity along the road (m/s, ``(N - 1,)``): negative for oncoming
        cars, which travel their lane's way (``scene.lanes.direction``)."""
        v = scene.vehicles
        way = np.where(v.kind[1:] == CAR, scene.lanes.direction[v.lane[1:]], 1)
        return v.speed[1:] * way

    def _accelerations(self, scene: Scene, velocity: np.ndarray) -> np.ndarray:
        """Each entity's acceleration along the road (m/s², ``(N - 1,)``) since the previous
        decision, from the change of its ``velocity``; 0 for entities that jumped (recycled
        cars) or are new."""
        v = scene.vehicles
        now = (scene.time, v.s[1:], velocity)
        prev, self._prev = self._prev, now
        if prev is None or not 0.0 < now[0] - prev[0] <= 1.0 or len(prev[1]) != len(now[1]):
            return np.zeros(len(now[1]))
        dt = now[0] - prev[0]
        acc = (now[2] - prev[2]) / dt
        moved = scene.road.offset(now[1], prev[1])  # round a closed road's seam
        jumped = np.abs(moved - 0.5 * (now[2] + prev[2]) * dt) > 2.0
        c = self.config
        acc = np.where(jumped, 0.0, np.clip(acc, -c.max_predicted_brake, c.max_predicted_accel))
        # Smoothed over about `accel_smoothing` seconds: one decision's change is noisy.
        k = min(1.0, dt / c.accel_smoothing) if c.accel_smoothing > 0 else 1.0
        smooth = acc if self._acc is None or len(self._acc) != len(acc) else (
            np.where(jumped, 0.0, (1 - k) * self._acc + k * acc))
        self._acc = smooth
        return smooth

    def _obstacles(self, scene: Scene, ego_s: float, ego_len: float, ego_wid: float):
        """The obstacle table (see the ``O_*`` columns) of ``scene``."""
        c = self.config
        lanes, v = scene.lanes, scene.vehicles
        velocity = self._velocities(scene)
        accel = self._accelerations(scene, velocity)
        # Along the road from the ego: on a closed road the shorter way round its seam, the
        # others placed at ego_s + rel (s beyond the seam runs on past the road's length).
        rel = scene.road.offset(v.s[1:], ego_s)
        s, d = (ego_s + rel if scene.road.closed else v.s[1:]), v.d[1:]
        # Oncoming cars from as far ahead as they meet the ego within the plan (its first step,
        # the rest of the horizon and the tail): both close the gap.
        span = (c.first_step if c.first_step is not None else c.step) + (
            c.horizon - 1) * c.step + c.tail
        closing = np.where(velocity < 0.0, max(v.speed[0], 0.0) - velocity, 0.0)
        near = (rel < c.ahead + closing * span) & (rel > -c.behind)
        kind = v.kind[1:][near]
        static = kind >= STALLED
        lw = lanes.width
        target_d = (v.target_lane[1:][near] + 0.5) * lw
        length = v.length[1:][near]
        width = v.width[1:][near]
        relative = rel[near]
        # Followers: cars clearly behind the ego brake for it in the simulator (oncoming cars
        # behind it drive away).
        follower = (~static) & (relative < -(0.5 * (ego_len + length) + 3.0)) & (
            velocity[near] >= 0.0)
        table = np.zeros((int(near.sum()), N_OCOL))
        table[:, O_S] = s[near]
        table[:, O_D] = d[near]
        table[:, O_V] = np.where(static, 0.0, velocity[near])
        table[:, O_DT] = np.where(static, d[near], target_d)
        table[:, O_LEN] = length
        table[:, O_WID] = width
        table[:, O_STATIC] = static
        table[:, O_FOLLOWER] = follower
        table[:, O_A] = np.where(static, 0.0, accel[near])
        # Where a lane does not exist (after a lane closes, before an on-ramp starts) it is a
        # wall across the lane; the ego hits it when its centre comes within 1 m of the lane's
        # end, so it can neither drive past the end nor move into the lane beyond it.
        rows = []
        wall_wid = lw - 2 * c.margin_d - ego_wid  # overlap <=> the ego's centre is in the lane
        wall_len = 2.0 * (c.ahead + c.behind)
        reach = 0.5 * (ego_len + wall_len) + c.margin_s
        for lane in range(0 if scene.road.closed else lanes.count):  # a loop's lanes run on
            centre_d = (lane + 0.5) * lw
            end, start = lanes.end[lane], lanes.start[lane]
            if end < ego_s + c.ahead:  # the wall starts 1 m before the end
                rows.append([end - 1.0 + reach, centre_d, 0.0, centre_d, wall_len, wall_wid,
                             1.0, 0.0, 0.0])
            if start > ego_s - c.behind:  # and ends 1 m after the start
                rows.append([start + 1.0 - reach, centre_d, 0.0, centre_d, wall_len, wall_wid,
                             1.0, 0.0, 0.0])
        if rows:
            table = np.vstack([table, np.array(rows)])
        return table

    # ---------------------------------------------------------------- decision
    def plan(self, scene: Scene, options: Options) -> dict:
        """Build and solve the MDP for ``scene`` (``env.unwrapped.scene()``) in an
        environment of ``options`` (``meta_speeds``, ``reward_speed``); returns the details."""
        if isinstance(scene, NetworkScene):
            raise TypeError("VIDriver.plan takes one road's Scene; on a road network act() plans "
                            "with agents.vi_network.NetworkPlanner")
        start = time.perf_counter()
        c = self.config
        lanes, ego = scene.lanes, scene.vehicles
        speeds = np.asarray(options.meta_speeds, dtype=np.float64)
        lane_t, level = self._targets(scene, speeds)
        ego_s, ego_d, v = float(ego.s[0]), float(ego.d[0]), float(ego.speed[0])
        vd = -v * math.sin(scene.ego_heading_error)
        ego_len, ego_wid = float(ego.length[0]), float(ego.width[0])
        obs = self._obstacles(scene, ego_s, ego_len, ego_wid)
        lane_change_time = scene.traffic_model.lane_change_time
        prm = _fill(_Prediction, c, lateral_speed=lanes.width / lane_change_time)
        cfg = _fill(_Abstraction, c, reward_speed=options.reward_speed)
        lane_start, lane_end = lanes.start, lanes.end
        if scene.road.closed:  # every lane runs on round the seam, beyond s = length
            lane_start, lane_end = np.full(lanes.count, -np.inf), np.full(lanes.count, np.inf)
        durations = np.full(c.horizon, c.step)
        durations[0] = c.first_step if c.first_step is not None else c.step
        (n, st_k, st_lane, st_level, st_s, st_d, st_v, succ, invalid, p_hit, arrive,
         tail_p) = _build(np.array([ego_s, ego_d, vd, v]), lane_t, level, speeds,
                          lanes.width, lane_start, lane_end, lanes.closes,
                          obs, ego_len, ego_wid, prm, cfg, durations, c.max_states)
        built = time.perf_counter()
        mdp, index = self._mdp(n, succ, invalid, p_hit, arrive, tail_p)
        result = value_iteration(mdp, tol=c.tol, max_iter=10 * c.horizon + 10)
        solved = time.perf_counter()
        path = [0]
        while succ[path[-1], 0] >= 0 and len(path) <= c.horizon:
            path.append(int(succ[path[-1], result.policy[index[path[-1]]]]))
        path = np.array(path)
        x, y, _ = scene.road.to_world(st_s[path], st_d[path])
        values = np.asarray(result.Q[0], dtype=np.float64).copy()
        action = int(result.policy[0])
        self.last = {
            "action": action,
            "values": values,
            "states": n,
            "mdp": mdp,
            "result": result,
            "path": path,
            "path_lane": st_lane[path],
            "path_level": st_level[path],
            "path_speed": st_v[path],
            # Along the greedy plan (the tail not included).
            "collision_probability": float(1.0 - np.prod(1.0 - p_hit[path[1:]])),
            "ms_build": 1e3 * (built - start),
            "ms_solve": 1e3 * (solved - built),
            "ms": 1e3 * (time.perf_counter() - start),
        }
        self._annotations = {
            "plan": np.stack([x, y], axis=1),
            "values": values,
            "labels": list(META_ACTIONS),
        }
        return self.last

    def _mdp(self, n, succ, invalid, p_hit, arrive, tail_p) -> tuple[FiniteMDP, np.ndarray]:
        """The MDP over the ``m`` states that still have a step to go, plus one terminal
        state ``m`` where every plan ends: by a collision or by reaching the horizon.

        A state at the horizon is worth 0 beyond what its arrival earns (its speed over the
        tail, its tail risk), and so is a collision; both are scored on the transition that
        arrives there, so they need no states of their own. Returns the MDP and ``index``
        ``(n,)``: the MDP state of each built state (``m`` for those at the horizon).
        """
        c = self.config
        A = 5
        live = succ[:, 0] >= 0  # states with successors (k < horizon)
        m = int(live.sum())
        S = m + 1
        index = np.full(n, m, dtype=np.int64)
        index[live] = np.arange(m)
        src = np.flatnonzero(live)
        nxt = succ[src].reshape(-1)  # successor of (live state, action), row s * A + a
        p = np.minimum(p_hit[nxt], 1.0)
        # The tail risk of a terminal state counts as a (lighter) collision on arrival.
        p_tail = tail_p[nxt] * c.tail_weight
        cost = invalid[src].reshape(-1) * c.invalid_cost
        a_idx = np.tile(np.arange(A), m)
        lane_change = (a_idx == LANE_LEFT) | (a_idx == LANE_RIGHT)
        cost = cost + np.where(lane_change, c.lane_change_cost, 0.0)
        cost = cost + np.where((a_idx == FASTER) | (a_idx == SLOWER), c.speed_change_cost, 0.0)
        R = np.zeros(S * A)
        R[: m * A] = (
            (1.0 - p) * (arrive[nxt] - p_tail * c.collision_penalty)
            - p * c.collision_penalty
            - cost
        )
        # A row goes on to a live state with probability 1 - p and ends with p; a row that
        # reaches the horizon ends either way (one entry).
        to = index[nxt]
        goes_on = to < m
        counts = np.zeros(S * A, dtype=np.int64)
        counts[: m * A] = 1 + goes_on
        indptr = np.zeros(S * A + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        first = indptr[: m * A]
        indices = np.full(indptr[-1], m, dtype=np.int64)
        data = np.ones(indptr[-1])
        indices[first[goes_on]] = to[goes_on]
        data[first[goes_on]] = 1.0 - p[goes_on]
        data[first[goes_on] + 1] = p[goes_on]
        P = sp.csr_array((data, indices, indptr), shape=(S * A, S))
        terminal = np.zeros(S, dtype=bool)
        terminal[m] = True
        return FiniteMDP(P, R.reshape(S, A), c.gamma, terminal=terminal), index

    def act(self, obs) -> int:
        """The meta action (0..4) for the current scene of the env given to :meth:`reset`."""
        if self._env is None:
            raise RuntimeError("VIDriver.act before reset(env): it plans from that env's scene")
        if self._network is not None:
            action = self._network.act(self._env.scene(), self._env.options)
            self.last, self._annotations = self._network.last, self._network.annotations
            return action
        return self.plan(self._env.scene(), self._env.options)["action"]

    def annotations(self) -> dict:
        """``plan``: the ego's predicted path under the greedy policy, world ``(x, y)`` points
        (one per planning step, starting at the ego); ``values``: the Q-values of the 5 meta
        actions now; ``labels``: their names."""
        return dict(self._annotations)
