"""An episode's world on a road network: :class:`NetRun` is the network simulator
(:class:`lanesim.sim.networld.NetWorld`) with what an episode adds: the ego's start lane,
speed and goal drawn per episode from each world's stream, its route to the goal
(:mod:`lanesim.sim.netego`), and the readings the environment's rewards, info and observations
take.

This module knows nothing of Gymnasium or pygame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lanesim.sim import netego
from lanesim.sim.jit import compiled_for, kernel
from lanesim.sim.models import EgoModel
from lanesim.sim.netstep import N_NET_TRACE
from lanesim.sim.network import Network, NetworkArrays, lane_point, wrap_heading
from lanesim.sim.networld import NetWorld, NetWorldSpec
from lanesim.sim.rng import _uniform_rows
from lanesim.sim.state import plain

# The route's direction for observations: its bearing this far (m) ahead.
ROUTE_AHEAD = 20.0
WARM_UP_MAX = 60.0  # s of traffic before an episode begins, at most


@dataclass(frozen=True)
class NetRunSpec:
    """A network episode: the simulator's spec, and the ego's draws per episode."""

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
    :class:`~lanesim.sim.networld.NetWorld`: ``goal_of`` ``(B,)`` (the episode's goal, an index
    into ``spec.goals`` and into :attr:`routes`; 0, the open route, without goals),
    ``route_length`` ``(B,)`` (m from the start to arrival at the reset; 0 without a goal),
    ``neighbours`` ``(lanes, 2)`` (each lane's left and right neighbour of its road and
    direction, -1 none), ``yield_ends`` (the lanes whose traffic yields at their end) and the
    readings below."""

    def __init__(self, spec: NetRunSpec, n_worlds: int) -> None:
        net = spec.world.network
        if spec.goals:
            routes = netego.stack_routes(
                [netego.plan_route(net, [g], spec.goal_distance) for g in spec.goals])
        else:
            routes = netego.stack_routes([netego.open_route(net)])
        super().__init__(spec.world, n_worlds, routes)
        self.run_spec = spec
        self.goal_of = np.zeros(self.B, dtype=np.int64)
        self.route_length = np.zeros(self.B)
        self.clock = self.time
        self.neighbours = np.stack([routes.left, routes.right], axis=1).astype(np.int64)
        L = len(net.lanes)
        self.lane_half_width = np.array([0.5 * net.lane_width(i) for i in range(L)])
        g = self.graph
        yields = set()
        for lane in range(L):
            for c in range(g.conf_ptr[lane], g.conf_ptr[lane + 1]):
                if g.conf_yield[c]:
                    yields.update(net.predecessors(lane))
        self.yield_ends = tuple(sorted(yields))
        self._features = np.zeros((self.B, 4))
        self._plain_net, self._plain_routes = plain(self.network.arrays, routes)
        self.plain_network, self.plain_routes = self._plain_net, self._plain_routes
        # Per goal (route), the direction (rad) of its lane at the arrival point; NaN without.
        self._goal_heading = np.full(routes.next.shape[0], np.nan)
        for k, lane in enumerate(spec.goals):
            self._goal_heading[k] = float(net.lane_to_world(lane, spec.goal_distance)[2])
        self._start_lane_ids = np.array(spec.start_lanes, dtype=np.int64)
        self._draws = np.zeros((self.B, 3))
        self._starts = (np.zeros(self.B, dtype=np.int64), np.zeros(self.B), np.zeros(self.B))
        # Without numba's per-call dispatch (these arrays, floats, an int).
        lo, hi = spec.ego_speed
        self._draw_starts = compiled_for(
            _draw_starts, self.rng.seed, self.rng.counter, self._every, self._draws,
            self._start_lane_ids, float(lo), float(hi), 1, float(spec.start_u), self.goal_of,
            *self._starts)
        st = self.state
        # Both without numba's per-call dispatch, which types the tuples in Python (the same
        # arrays every call, int64 world indices).
        self._route_lengths = compiled_for(_route_lengths, self.network.arrays, self.routes,
                                           st, np.arange(self.B), self.route_length)
        self._route_features = compiled_for(
            _route_features, self._plain_net, self._plain_routes, st.lane, st.u, st.x, st.y,
            st.heading, st.ego_route, self._goal_heading, self._features)

    # ------------------------------------------------------------------ episodes
    def _ego_starts(self, idx: np.ndarray):
        """The episode's start lane, speed and goal per reset world, drawn from its stream."""
        spec = self.run_spec
        # Indices in order draw the same numbers as their mask, which takes the compiled path.
        in_order = idx.size <= 1 or bool(np.all(np.diff(idx) > 0))
        if in_order and idx.size == self.B:
            # Every world, in order (a single env's every reset): the draws below in one
            # compiled call, the same numbers, into arrays kept for it (NetWorld.reset copies
            # them into the state at once).
            self._draw_starts(self.rng.seed, self.rng.counter, self._every, self._draws,
                              self._start_lane_ids, *spec.ego_speed, max(len(spec.goals), 1),
                              spec.start_u, self.goal_of, *self._starts)
            return self._starts
        if in_order:
            mask = np.zeros(self.B, dtype=bool)
            mask[idx] = True
        draws = self.rng.uniform((3,), mask if in_order else idx)
        n_start = len(spec.start_lanes)
        lane = self._start_lane_ids[
            np.minimum((draws[:, 0] * n_start).astype(np.int64), n_start - 1)]
        lo, hi = spec.ego_speed
        speed = lo + (hi - lo) * draws[:, 1]
        n_goal = max(len(spec.goals), 1)
        self.goal_of[idx] = np.minimum((draws[:, 2] * n_goal).astype(np.int64), n_goal - 1)
        return lane, np.full(idx.size, spec.start_u), speed

    def reset(self, worlds=None, seeds=None) -> None:
        """Reset ``worlds`` (bool mask ``(B,)`` or indices; default all) with ``seeds``: traffic
        runs a while without the ego, then the ego starts on its drawn lane, at its drawn speed,
        bound for its drawn goal."""
        super().reset(worlds, seeds)
        idx = self.world_indices(worlds)
        if idx.size == 0:
            return
        self.state.ego_route[idx] = self.goal_of[idx]
        self._route_lengths(self.network.arrays, self.routes, self.state, idx,
                            self.route_length)
        self._refresh()

    def advance(self, frames: int, trace: bool = True) -> np.ndarray:
        """``frames`` simulation steps of every world; the ego's trace
        ``(N_NET_TRACE, B, frames)`` (:func:`lanesim.sim.netstep.run_net`)."""
        out = super().advance(frames, trace)
        self._refresh()
        return out

    def _refresh(self) -> None:
        st = self.state  # the arrays, not the named tuple: numba types those cheaply
        self._route_features(self._plain_net, self._plain_routes, st.lane, st.u, st.x, st.y,
                             st.heading, st.ego_route, self._goal_heading, self._features)

    # ------------------------------------------------------------------ readings
    def route_lanes(self, b: int, most: int = 12) -> list[int]:
        """The lanes world ``b``'s ego takes from its lane on (its lane, the lane its route
        changes into, then each next one), at most ``most``; [] off the network."""
        r, g = self.routes, int(self.state.ego_route[b])
        lane = int(self.lane[b, 0])
        out: list[int] = []
        while lane >= 0 and len(out) < most and lane not in out:
            out.append(lane)
            via = int(r.via[g, lane])
            if via != lane and via not in out:
                out.append(via)
            lane = int(r.next[g, via])
        return out[:most]


    @property
    def half_lane(self) -> np.ndarray:
        """``(B, N)`` half the width of each entity's lane (m); 1.75 off the network."""
        lane = self.lane
        return np.where(lane >= 0, self.lane_half_width[np.maximum(lane, 0)], 1.75)

    def heading_error(self) -> np.ndarray:
        """``(B,)`` the ego's heading relative to its lane's direction (rad, + left; 0 off the
        network)."""
        return self.ego_route_features()[:, 3].copy()

    def ego_route_features(self) -> np.ndarray:
        """``(B, 4)``: the bearing (rad, + left of the ego's heading) of the route's centre
        line :data:`ROUTE_AHEAD` metres ahead; the goal's direction (the goal lane's heading at
        the arrival point) relative to the ego's heading (rad, + left; 0 without a goal): where
        the route is bound from the start, left, straight on or right; the remaining route (m;
        inf without a goal or off it); the ego's heading relative to its lane (rad). Zeros and
        inf off the network. Computed after each :meth:`reset` and :meth:`advance`
        (read-only)."""
        return self._features

    def leader_of_ego(self) -> tuple[np.ndarray, np.ndarray]:
        """``(gap, speed)`` ``(B,)`` of the car the ego followed along its route in the last
        step (bumper gap m, its speed m/s); ``(inf, 0)`` where none."""
        j = self.scratch.lead[:, 0]
        gap = self.scratch.lead_gap[:, 0].copy()
        speed = np.where(j >= 0, self.speed[np.arange(self.B), np.maximum(j, 0)], 0.0)
        return gap, speed

    def traffic_collisions(self) -> np.ndarray:
        """``(B,)`` traffic cars crashed by anything but the ego since the reset."""
        return self.traffic_crashes.copy()


@kernel
def _draw_starts(seed, counter, worlds, draws, start_lanes, lo, hi, n_goal, start_u, goal_of,
                 lane, u, speed):
    """:meth:`NetRun._ego_starts` for the worlds where ``worlds`` (bool), in order: three
    draws per world (``WorldRandom.uniform((3,), worlds)`` into ``draws``), then the start
    lane, speed and goal from them by the numpy lines' arithmetic, into ``lane``, ``u`` and
    ``speed`` (one per selected world) and ``goal_of`` (per world)."""
    _uniform_rows(seed, counter, worlds, draws)
    n_start = start_lanes.shape[0]
    row = 0
    for b in range(worlds.shape[0]):
        if not worlds[b]:
            continue
        lane[row] = start_lanes[min(int(draws[row, 0] * n_start), n_start - 1)]
        speed[row] = lo + (hi - lo) * draws[row, 1]
        u[row] = start_u
        goal_of[b] = min(int(draws[row, 2] * n_goal), n_goal - 1)
        row += 1


@kernel
def _route_lengths(net, routes, st, idx, out):
    for k in range(idx.shape[0]):
        b = idx[k]
        rem = netego.remaining(net, routes, st.ego_route[b], st.lane[b, 0], st.u[b, 0])
        out[b] = rem if math.isfinite(rem) else 0.0


@kernel
def _route_features(net, routes, lanes, us, xs, ys, headings, ego_route, goal_heading, out):
    """:meth:`NetRun.ego_route_features` of every world into ``out`` ``(B, 4)``; ``net`` and
    ``routes`` as plain tuples."""
    net, routes = NetworkArrays(*net), netego.RouteArrays(*routes)
    for b in range(out.shape[0]):
        lane = lanes[b, 0]
        if lane < 0:
            out[b, 0] = out[b, 1] = out[b, 3] = 0.0
            out[b, 2] = np.inf
            continue
        g = ego_route[b]
        u = us[b, 0]
        x0, y0, h0 = xs[b, 0], ys[b, 0], headings[b, 0]
        lk, uk = lane, u + ROUTE_AHEAD
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
        out[b, 0] = wrap_heading(math.atan2(py - y0, px - x0) - h0)
        out[b, 1] = 0.0 if math.isnan(goal_heading[g]) else wrap_heading(goal_heading[g] - h0)
        out[b, 2] = netego.remaining(net, routes, g, lane, u)
        out[b, 3] = wrap_heading(h0 - lane_point(net, lane, u, 0.0)[2])


def build_net_spec(options, network: Network) -> NetRunSpec:
    """The simulator's description of a network scenario's options (issue #16)."""
    from lanesim.sim.conflicts import lane_graph

    lo, hi = options.traffic_speed
    mean = 0.5 * (lo + hi)
    desired = (max(lo, 1.0), max(hi, 1.0))
    # Traffic runs before each episode for as long as a car at the mean desired speed takes
    # from the farthest entry to the start of an exit lane (at most WARM_UP_MAX): every lane on
    # which traffic meets other traffic has filled; the exit lanes carry only leaving cars.
    longest = _longest_route(lane_graph(network))
    warmup = min(longest / max(mean, 1.0), WARM_UP_MAX) if options.vehicles else 0.0
    world = NetWorldSpec(
        network=network,
        slots=int(options.vehicles),
        # spawn_spacing is the largest gap between entering cars: at the traffic's mean speed
        # an entry lane wants one car per spawn_spacing metres.
        spawn_rate=min(max(mean, 1.0) / options.spawn_spacing, 5.0),
        desired_speed=desired,
        dt=1.0 / options.sim_hz,
        decision_period=max(0.5, 1.0 / options.sim_hz),
        ego=EgoModel(),
        ego_lane=options.ego_start_lanes[0],
        ego_u=float(options.ego_start),
        ego_speed=float(options.ego_speed[0]),
        warmup=round(warmup, 6),
    )
    return NetRunSpec(
        world=world,
        start_lanes=tuple(network.lane(n) for n in options.ego_start_lanes),
        start_u=float(options.ego_start),
        ego_speed=(float(options.ego_speed[0]), float(options.ego_speed[1])),
        goals=tuple(network.lane(n) for n in options.goals),
        goal_distance=float(options.goal_distance),
    )


def _longest_route(g) -> float:
    """The longest way (m) traffic drives from an entry to the start of an exit lane, along
    the routing tables (``hop`` on, ``change`` across), over every entry and reachable exit."""
    longest = 0.0
    for e in g.entries:
        for t, x in enumerate(g.exits):
            if not g.reaches[e, t]:
                continue
            lane, total = int(e), 0.0
            for _ in range(4 * len(g.length)):
                if lane == x:
                    break
                side = int(g.change[lane, t])
                if side != 0:
                    lane = int(g.left[lane] if side < 0 else g.right[lane])
                    continue
                total += float(g.length[lane])
                lane = int(g.hop[lane, t])
                if lane < 0:
                    break
            longest = max(longest, total)
    return longest


def bytes_per_world(options, spec: NetRunSpec) -> float:
    """Estimated peak memory of one network world (bytes): its state, scratch and trace, and
    the observation."""
    N = 1 + options.vehicles
    L = len(spec.world.network.lanes)
    state = 8 * (23 * N + 8 * N * 9 + 2 * L
                 + N_NET_TRACE * options.frames_per_decision)
    if options.observation == "pixels":
        obs = 9 * options.frame_stack * options.image_shape[0] * options.image_shape[1]
    elif options.observation in ("camera", "birdseye"):  # as one road's (envs/core.py)
        channels = 3 if options.camera_color else 1
        image = channels * options.image_shape[0] * options.image_shape[1]
        if options.observation == "birdseye":
            obs = 9 * options.frame_stack * channels * math.prod(options.birdseye_shape) + image
        else:
            obs = 9 * options.frame_stack * image
    elif options.observation == "occupancy":
        obs = 3 * 4 * 4 * 16 * 32
    else:
        obs = 2 * 4 * (1 + options.observed_vehicles) * 8
    return float(state + obs)


__all__ = ["NetRun", "NetRunSpec", "build_net_spec", "bytes_per_world"]
