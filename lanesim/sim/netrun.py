"""An episode's world on a road network: :class:`NetRun` is the traffic simulator
(:class:`lanesim.sim.networld.NetWorld`) with the ego's side added: a start lane, speed and goal
drawn per episode, the route to the goal (:mod:`lanesim.sim.netego`), the meta actions'
autopilot run inside the compiled step, and the per-step trace that rewards are scored from.

The trace ``(N_NET_TRACE, B, frames)`` holds per simulation step: the metres made along the
route (``NT_ALONG``; the fall of :func:`~lanesim.sim.netego.remaining`, or without a goal the
metres made along the lanes), the ego's offset from its lane's centre and heading error, half
its lane's width, whether it moved to a neighbouring lane of its road, left the road, crashed,
arrived at its goal, or took a wrong turn.

This module knows nothing of Gymnasium or pygame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lanesim.sim import netego
from lanesim.sim.jit import kernel, kernel_nogil
from lanesim.sim.models import EgoModel, as_record
from lanesim.sim.netstep import INACTIVE, step_net_world
from lanesim.sim.network import Network, lane_point
from lanesim.sim.networld import MAX_ROUTE, NetWorld, NetWorldSpec
from lanesim.sim.road import wrap_angle
from lanesim.sim.state import (
    CAR,
    COMMAND_ACCEL,
    COMMAND_LANE,
    COMMAND_SPEED,
    COMMAND_STEER,
    N_COMMAND,
)

(NT_ALONG, NT_OFFSET, NT_HEADING_ERROR, NT_HALF_LANE, NT_CHANGE, NT_OFFROAD, NT_CRASHED,
 NT_ARRIVED, NT_WRONG_TURN) = range(9)
N_NET_TRACE = 9
# The route's direction for observations: its bearing at these distances (m) ahead.
ROUTE_AHEAD = (10.0, 30.0)
# Lanes of the route ahead handed to the traffic simulator (what traffic sees the ego take).
ROUTE_LANES = 8
WARM_UP_MAX = 60.0  # s of traffic before an episode begins, at most
# Cars within this distance (m, centre to centre) of the ego's start are taken off at a reset.
START_CLEARANCE = 12.0


@dataclass(frozen=True)
class NetRunSpec:
    """A network episode: the traffic world's spec, and the ego's draws per episode."""

    world: NetWorldSpec
    start_lanes: tuple[int, ...]  # lane ids, one drawn per episode
    start_u: float  # m along the start lane
    ego_speed: tuple[float, float]  # m/s, drawn per episode
    goals: tuple[int, ...]  # goal lane ids, one drawn per episode; () drives on
    goal_distance: float  # m along the goal lane at which the ego has arrived

    @property
    def ego(self) -> EgoModel:
        return self.world.ego


class NetRun(NetWorld):
    """``B`` worlds on a network with an ego that drives to a goal. Adds to
    :class:`~lanesim.sim.networld.NetWorld`: ``command`` ``(N_COMMAND, B)`` and ``autopilot``
    ``(B,)`` as the single-road world has them (fixed controls or the autopilot's target lane,
    a global lane id, and speed), ``goal_of`` ``(B,)`` (the index into ``spec.goals``, or 0 for
    the open route without goals), ``route_length`` ``(B,)`` (m from the start to arrival; 0
    without a goal), and :meth:`advance`."""

    def __init__(self, spec: NetRunSpec, n_worlds: int) -> None:
        super().__init__(spec.world, n_worlds)
        self.run_spec = spec
        net = self.network
        B = self.B
        self.command = np.zeros((N_COMMAND, B))
        self.autopilot = np.zeros(B, dtype=bool)
        self.goal_of = np.zeros(B, dtype=np.int64)
        self.route_length = np.zeros(B)
        self.clock = self.time
        if spec.goals:
            self.routes = netego.stack_routes(
                [netego.plan_route(net, [g], spec.goal_distance) for g in spec.goals])
        else:
            self.routes = netego.open_route(net)
            self.routes = netego.stack_routes([self.routes])
        L = len(net.lanes)
        self.neighbours = np.array([net.neighbours(i) for i in range(L)],
                                   dtype=np.int64).reshape(L, 2)
        self.lane_half_width = np.array([0.5 * net.lane_width(i) for i in range(L)])
        g = self.graph
        # Lanes that yield somewhere: a yield line across their end (drawn) is where their
        # traffic waits.
        yields = set()
        for lane in range(L):
            for c in range(g.conf_ptr[lane], g.conf_ptr[lane + 1]):
                if g.conf_yield[c]:
                    yields.update(net.predecessors(lane))
        self.yield_ends = tuple(sorted(yields))
        self._ego_record = as_record(spec.ego)
        # Traffic's time to cross the network from its longest entry to an exit, at its
        # slowest desired speed: long enough for every lane to fill (at most a minute).
        g = self.graph
        longest = max((float(g.dist[e][np.isfinite(g.dist[e])].max()) for e in g.entries
                       if np.isfinite(g.dist[e]).any()), default=0.0)
        seconds = min(longest / spec.world.desired_speed[0], WARM_UP_MAX)
        self.warm_up_steps = int(math.ceil(seconds / self.dt)) if spec.world.slots else 0
        self._trace = np.zeros((N_NET_TRACE, B, 1))
        self._features = np.zeros((B, 4))

    # ------------------------------------------------------------------ episodes
    def reset(self, worlds=None, seeds=None) -> None:
        """Reset ``worlds`` (bool ``(B,)``) with ``seeds``: traffic cleared (cars enter from the
        entry lanes as the world runs), the ego on a start lane with a speed and goal drawn
        from each world's stream."""
        super().reset(worlds, seeds)
        spec = self.run_spec
        idx = np.flatnonzero(worlds) if worlds is not None else np.arange(self.B)
        if idx.size == 0:
            return
        draws = self.rng.uniform((3,), idx)  # start lane, speed, goal
        net = self.network
        st = self.state
        for k, b in enumerate(idx):
            lane = spec.start_lanes[min(int(draws[k, 0] * len(spec.start_lanes)),
                                        len(spec.start_lanes) - 1)]
            lo, hi = spec.ego_speed
            speed = lo + (hi - lo) * draws[k, 1]
            goal = (min(int(draws[k, 2] * len(spec.goals)), len(spec.goals) - 1)
                    if spec.goals else 0)
            x, y, h = net.lane_to_world(lane, spec.start_u)
            st.lane[b, 0], st.u[b, 0], st.offset[b, 0] = lane, spec.start_u, 0.0
            st.x[b, 0], st.y[b, 0], st.heading[b, 0] = float(x), float(y), float(h)
            st.speed[b, 0] = speed
            self.goal_of[b] = goal
            rem = netego.remaining(net.arrays, self.routes, goal, lane, spec.start_u)
            self.route_length[b] = rem if math.isfinite(rem) else 0.0
        _route_ahead(st, self.routes, self.goal_of, idx)
        self._warm_up(idx)
        self.command[:, idx] = 0.0
        self.command[COMMAND_LANE, idx] = st.lane[idx, 0]
        self.autopilot[idx] = False

    def _warm_up(self, idx: np.ndarray) -> None:
        """Fill the reset worlds with traffic: run them for :attr:`warm_up_steps` with the ego
        standing at its start (traffic queues behind it or drives round it), then give it its
        start speed and restart the clock and the counters, so that an episode begins in
        flowing traffic, not on empty roads."""
        st = self.state
        # The ego sits out the warm-up (an inactive slot: traffic neither queues behind it
        # nor yields to it), then cars on its spot are taken off.
        keep = (st.kind[idx, 0].copy(), st.lane[idx, 0].copy(), st.u[idx, 0].copy(),
                st.offset[idx, 0].copy(), st.x[idx, 0].copy(), st.y[idx, 0].copy(),
                st.heading[idx, 0].copy(), st.speed[idx, 0].copy())
        st.kind[idx, 0] = INACTIVE
        st.lane[idx, 0] = -1
        saved = self.command.copy(), self.autopilot.copy()
        self.command[:] = 0.0
        self.autopilot[:] = False
        trace = np.zeros((N_NET_TRACE, self.B, self.warm_up_steps))
        for b in idx:
            run_net_episode(self.state, self.scratch, self.network.arrays, self.graph,
                            self.params, self.routes, self.goal_of, self._ego_record,
                            self.command, self.autopilot, self.lane_half_width, self.neighbours,
                            trace, int(b), int(b) + 1)
        self.command[:], self.autopilot[:] = saved
        (st.kind[idx, 0], st.lane[idx, 0], st.u[idx, 0], st.offset[idx, 0], st.x[idx, 0],
         st.y[idx, 0], st.heading[idx, 0], st.speed[idx, 0]) = keep
        _clear_start(st, idx, START_CLEARANCE)
        for a in (st.clock, st.max_stopped):
            a[idx] = 0.0
        for a in (st.steps, st.traffic_crashes, st.arrivals, st.spawned):
            a[idx] = 0
        st.applied[:, idx] = 0.0

    # ------------------------------------------------------------------ stepping
    def advance(self, frames: int) -> np.ndarray:
        """``frames`` simulation steps of every world (the ego on :attr:`command`, or where
        :attr:`autopilot` on the route-following autopilot); returns the trace
        ``(N_NET_TRACE, B, frames)``."""
        if self._trace.shape[2] != frames:
            self._trace = np.zeros((N_NET_TRACE, self.B, frames))
        args = (self.state, self.scratch, self.network.arrays, self.graph, self.params,
                self.routes, self.goal_of, self._ego_record, self.command, self.autopilot,
                self.lane_half_width, self.neighbours, self._trace)
        if self._pool is None:
            run_net_episode(*args, 0, self.B)
        else:
            jobs = [self._pool.submit(run_net_episode, *args, lo, hi)
                    for lo, hi in self._splits[1:]]
            lo, hi = self._splits[0]
            run_net_episode(*args, lo, hi)
            for job in jobs:
                job.result()
        return self._trace

    # ------------------------------------------------------------------ readings
    @property
    def half_lane(self) -> np.ndarray:
        """``(B, N)`` half the width of each entity's lane (m); 1.75 off the network."""
        lane = self.lane
        return np.where(lane >= 0, self.lane_half_width[np.maximum(lane, 0)], 1.75)

    def heading_error(self) -> np.ndarray:
        """``(B,)`` the ego's heading relative to its lane's direction (rad; 0 off-road)."""
        out = np.zeros(self.B)
        _heading_errors(self.network.arrays, self.state, out)
        return out

    def ego_route_features(self) -> np.ndarray:
        """``(B, 4)``: the bearings (rad, + left of the ego's heading) of the route's centre
        line :data:`ROUTE_AHEAD` metres ahead, the remaining route distance (m; inf without a
        goal) and the ego's heading relative to its lane (rad)."""
        _route_features(self.network.arrays, self.routes, self.goal_of, self.state,
                        self._features)
        return self._features

    def leader_of_ego(self) -> tuple[np.ndarray, np.ndarray]:
        """``(gap, speed)`` ``(B,)`` of the car the ego follows along its route this step
        (bumper gap m, its speed m/s); ``(inf, 0)`` where none."""
        j = self.scratch.lead[:, 0]
        gap = self.scratch.lead_gap[:, 0].copy()
        speed = np.where(j >= 0, self.speed[np.arange(self.B), np.maximum(j, 0)], 0.0)
        return gap, speed

    def traffic_collisions(self) -> np.ndarray:
        """``(B,)`` traffic cars crashed by anything but the ego since the reset."""
        return self.traffic_crashes.copy()


@kernel
def _clear_start(st, idx, clearance):
    """Take traffic off the ego's start: every car whose centre lies within ``clearance`` m
    of the ego's, in the worlds ``idx``."""
    for k in range(idx.shape[0]):
        b = idx[k]
        for e in range(1, st.x.shape[1]):
            if st.kind[b, e] == CAR and math.hypot(st.x[b, e] - st.x[b, 0],
                                                   st.y[b, e] - st.y[b, 0]) < clearance:
                st.kind[b, e] = INACTIVE
                st.lane[b, e] = -1
                st.speed[b, e] = 0.0
                st.crashed[b, e] = False


@kernel
def _route_ahead(st, routes, goal_of, idx):
    """Write into ``st.ego_route`` the lanes the route takes from each world's ego lane on."""
    for k in range(idx.shape[0]):
        b = idx[k]
        _write_route(st, routes, goal_of[b], b)


@kernel
def _write_route(st, routes, g, b):
    lane = st.lane[b, 0]
    n = 0
    while lane >= 0 and n < ROUTE_LANES and n < st.ego_route.shape[1]:
        st.ego_route[b, n] = lane
        n += 1
        nxt, _ = netego.route_lane(routes, g, lane)
        lane = nxt
    for m in range(n, st.ego_route.shape[1]):
        st.ego_route[b, m] = -1


@kernel
def _heading_errors(net, st, out):
    for b in range(out.shape[0]):
        lane = st.lane[b, 0]
        out[b] = 0.0 if lane < 0 else wrap_angle(
            st.heading[b, 0] - lane_point(net, lane, st.u[b, 0], 0.0)[2])


@kernel
def _route_features(net, routes, goal_of, st, out):
    for b in range(out.shape[0]):
        lane = st.lane[b, 0]
        if lane < 0:
            out[b, 0] = out[b, 1] = out[b, 3] = 0.0
            out[b, 2] = np.inf
            continue
        g = goal_of[b]
        u = st.u[b, 0]
        x0, y0, h0 = st.x[b, 0], st.y[b, 0], st.heading[b, 0]
        for k in range(2):
            ahead = ROUTE_AHEAD[k]
            lk, uk = lane, u + ahead
            for _ in range(net.lane_length.shape[0]):
                if uk <= net.lane_length[lk]:
                    break
                nxt, _ = netego.route_lane(routes, g, lk)
                if nxt < 0:
                    uk = net.lane_length[lk]
                    break
                uk -= net.lane_length[lk]
                lk = nxt
            px, py, _ = lane_point(net, lk, uk, 0.0)
            out[b, k] = wrap_angle(math.atan2(py - y0, px - x0) - h0)
        out[b, 2] = netego.remaining(net, routes, g, lane, u)
        out[b, 3] = wrap_angle(h0 - lane_point(net, lane, u, 0.0)[2])


@kernel_nogil
def run_net_episode(st, sc, net, g, params, routes, goal_of, ego, command, use_autopilot,
                    half_width, neighbours, trace, first, stop):
    """Advance worlds ``first`` .. ``stop - 1`` by ``trace.shape[2]`` simulation steps: per
    step, the ego's controls (``command``'s fixed steering and acceleration, or where
    ``use_autopilot`` the route-following autopilot toward ``command``'s target lane and
    speed), the world's step (:func:`lanesim.sim.netstep.step_net_world`), and the ego's
    trace row."""
    ego = ego[0]
    frames = trace.shape[2]
    for b in range(first, stop):
        best = sc.best[b]
        gb = goal_of[b]
        for f in range(frames):
            lane0 = st.lane[b, 0]
            u0 = st.u[b, 0]
            rem0 = netego.remaining(net, routes, gb, lane0, u0)
            if use_autopilot[b]:
                # The target lane as seen from the ego's road, stored back, so a lane change
                # begun near a lane end carries on into the next road.
                target = netego.resolve_target(net, routes, lane0, int(command[COMMAND_LANE, b]))
                command[COMMAND_LANE, b] = target
                steer, accel = netego.autopilot(
                    net, routes, gb, ego, st.x[b, 0], st.y[b, 0], st.heading[b, 0],
                    st.speed[b, 0], lane0, target, command[COMMAND_SPEED, b], params.dt)
            else:
                steer, accel = command[COMMAND_STEER, b], command[COMMAND_ACCEL, b]
            steer = min(max(steer, -params.max_steer), params.max_steer)
            accel = min(max(accel, -params.ego_max_brake), params.ego_max_accel)
            st.applied[0, b], st.applied[1, b] = steer, accel
            step_net_world(st, sc, net, g, params, b, steer, accel, best)
            if st.kind[b, 0] >= 0:
                # Tracked along the route: where connectors overlap at a fork, the ego is on
                # the one its route takes while it is within it.
                lane1, u1, off1 = netego.track(net, routes, gb, lane0, st.x[b, 0], st.y[b, 0])
                if lane1 < 0:
                    st.lane[b, 0], st.u[b, 0], st.offset[b, 0] = -1, 0.0, 0.0
                else:
                    st.lane[b, 0], st.u[b, 0], st.offset[b, 0] = lane1, u1, off1
            lane1 = st.lane[b, 0]
            u1 = st.u[b, 0]
            if lane1 != lane0 and lane1 >= 0:
                _write_route(st, routes, gb, b)
            rem1 = netego.remaining(net, routes, gb, lane1, u1)
            if math.isfinite(rem0) and math.isfinite(rem1):
                along = rem0 - rem1
            elif lane1 == lane0 and lane1 >= 0:
                along = u1 - u0  # no goal (or none reachable): metres along the lane
            elif lane0 >= 0 and lane1 >= 0 and _is_successor(g, lane0, lane1):
                along = net.lane_length[lane0] - u0 + u1
            else:
                along = 0.0
            trace[NT_ALONG, b, f] = along
            trace[NT_OFFSET, b, f] = st.offset[b, 0]
            if lane1 >= 0:
                trace[NT_HEADING_ERROR, b, f] = wrap_angle(
                    st.heading[b, 0] - lane_point(net, lane1, u1, 0.0)[2])
                trace[NT_HALF_LANE, b, f] = half_width[lane1]
            else:
                trace[NT_HEADING_ERROR, b, f] = 0.0
                trace[NT_HALF_LANE, b, f] = 1.75
            changed = lane0 >= 0 and lane1 >= 0 and (
                neighbours[lane0, 0] == lane1 or neighbours[lane0, 1] == lane1)
            trace[NT_CHANGE, b, f] = 1.0 if changed else 0.0
            trace[NT_OFFROAD, b, f] = 1.0 if lane1 < 0 else 0.0
            trace[NT_CRASHED, b, f] = 1.0 if st.crashed[b, 0] else 0.0
            trace[NT_ARRIVED, b, f] = 1.0 if netego.arrived(routes, gb, lane1, u1) else 0.0
            trace[NT_WRONG_TURN, b, f] = 1.0 if netego.wrong_turn(routes, gb, lane1) else 0.0


@kernel
def _is_successor(g, a, b):
    for k in range(g.succ_ptr[a], g.succ_ptr[a + 1]):
        if g.succ[k] == b:
            return True
    return False


def build_net_spec(options, network: Network) -> NetRunSpec:
    """The simulator's description of a network scenario's options (issue #16)."""
    lo, hi = options.traffic_speed
    mean = 0.5 * (lo + hi)
    world = NetWorldSpec(
        network=network,
        slots=int(options.vehicles),
        # spawn_spacing is the largest gap between entering cars: at the traffic's mean speed
        # a lane wants one car per spawn_spacing metres.
        spawn_rate=min(max(mean, 1.0) / options.spawn_spacing, 5.0),
        desired_speed=(max(lo, 1.0), max(hi, 1.0)),
        dt=1.0 / options.sim_hz,
        decision_period=max(0.5, 1.0 / options.sim_hz),
        ego=EgoModel(),
        ego_lane=options.ego_start_lanes[0],
        ego_u=float(options.ego_start),
        ego_speed=float(options.ego_speed[0]),
    )
    return NetRunSpec(
        world=world,
        start_lanes=tuple(network.lane(n) for n in options.ego_start_lanes),
        start_u=float(options.ego_start),
        ego_speed=(float(options.ego_speed[0]), float(options.ego_speed[1])),
        goals=tuple(network.lane(n) for n in options.goals),
        goal_distance=float(options.goal_distance),
    )


def bytes_per_world(options, spec: NetRunSpec) -> float:
    """Estimated peak memory of one network world (bytes): its state, scratch and trace, and
    the observation."""
    N = 1 + options.vehicles
    L = len(spec.world.network.lanes)
    state = 8 * (20 * N + MAX_ROUTE + 8 * N * 9 + 2 * L + N_NET_TRACE * options.frames_per_decision)
    if options.observation == "pixels":
        obs = 9 * options.frame_stack * options.image_shape[0] * options.image_shape[1]
    elif options.observation == "occupancy":
        obs = 3 * 4 * 4 * 16 * 32
    else:
        obs = 2 * 4 * (1 + options.observed_vehicles) * 8
    return float(state + obs)


__all__ = ["N_NET_TRACE", "NetRun", "NetRunSpec", "build_net_spec", "bytes_per_world",
           "run_net_episode"]
