"""The batched simulator on a road network: ``B`` independent worlds of ``N`` entity slots,
stepped together by one compiled call (:func:`lanesim.sim.netstep.run_net`).

Entity 0 is the ego (a kinematic bicycle driven by steering and acceleration, tracked on the
network's lanes each step); slots ``1 .. N-1`` hold traffic cars, which enter at the
network's entry lanes, drive a route to a random exit (IDM car following through connectors,
lane changes where the route needs them, right of way at conflicts) and leave at the exit's
end; an empty slot is ``INACTIVE``. This is a new path beside the single-road
:class:`lanesim.sim.world.World`, which it leaves untouched.

Every field is a ``(B, N)`` array (:class:`~lanesim.sim.netstep.NetState`): ``x, y, heading,
speed, length, width`` (m, rad, m/s), ``lane`` (global lane id, -1 off the network or
inactive), ``kind`` (``EGO``, ``CAR``, ``INACTIVE``), ``u, offset`` (lane coordinates of the
centre, m; 0 off the network), ``crashed``.

This module knows nothing of Gymnasium or pygame.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from lanesim.sim.conflicts import LaneGraph, lane_graph
from lanesim.sim.jit import compiled_for, kernel
from lanesim.sim.models import EgoModel, as_record
from lanesim.sim.netego import RouteArrays, open_route, stack_routes
from lanesim.sim.netstep import (
    INACTIVE,
    N_NET_TRACE,
    PATH_LANES,
    NetParams,
    NetScratch,
    NetState,
    run_net,
)
from lanesim.sim.network import Network, NetworkError
from lanesim.sim.rng import WorldRandom, _reseed_rows
from lanesim.sim.state import (
    CAR,
    COMMAND_ACCEL,
    COMMAND_LANE,
    COMMAND_SPEED,
    COMMAND_STEER,
    EGO,
    N_COMMAND,
    plain,
)

__all__ = ["CAR", "EGO", "INACTIVE", "NetWorld", "NetWorldError", "NetWorldSpec"]

MAX_SLOTS = 256
MAX_WORLDS = 1 << 20


class NetWorldError(ValueError):
    """A :class:`NetWorldSpec` value or a call argument out of its accepted range; the message
    names it and what is accepted."""


def _pair(name: str, v, lo: float, hi: float) -> tuple[float, float]:
    if (not isinstance(v, tuple | list) or len(v) != 2
            or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in v)
            or not all(math.isfinite(a) for a in v) or not lo <= v[0] <= v[1] <= hi):
        raise NetWorldError(f"{name} must be a pair (low, high) with {lo:g} <= low <= high <= "
                            f"{hi:g}, got {v!r}")
    return float(v[0]), float(v[1])


def _num(name: str, v, lo: float, hi: float, unit: str = "") -> float:
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or not (
            lo <= v <= hi):
        raise NetWorldError(f"{name} must be a number from {lo:g} to {hi:g}{unit}, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class NetWorldSpec:
    """Everything fixed about a batch of network worlds. Validated on construction.

    Args:
        network: the roads (:class:`~lanesim.sim.network.Network`).
        slots: traffic slots per world, 0 to 256 (the most cars on the network at once).
        spawn_rate: cars per second wanting to enter at each entry lane, 0 to 5 (a car enters
            when the lane's start has room for it).
        desired_speed: (low, high) m/s, 1 to 40: each car draws its free-road speed (below
            each lane's bend limit).
        time_headway: (low, high) s, 0.5 to 3.
        max_accel: (low, high) m/s², 0.5 to 4.
        comfort_decel: (low, high) m/s², 1 to 5.
        min_gap: (low, high) m, 1 to 5.
        car_length: (low, high) m, 3 to 8.
        car_width: m, 1.5 to 2.5.
        safe_decel: m/s², 1 to 9: MOBIL's safety limit for lane changes.
        gap_margin: s, 0.5 to 5: a yielding car enters a conflict zone only if others arrive
            there at least this long after it has cleared it.
        commit_decel: m/s², 3 to 9: a car that would need harder braking to stop before a
            zone goes on through it (and others treat it as inside).
        stop_margin: m, 0 to 5, between a stop line and its zone.
        lookahead: m, 30 to 300, of route searched for leaders and conflicts.
        dt: s per simulation step, 0.01 to 0.2.
        decision_period: s between lane-change decisions and spawns, dt to 5.
        ego: the ego's model (:class:`~lanesim.sim.models.EgoModel`).
        ego_lane: lane name (``"west:0"``) the ego starts in, or None: no ego (slot 0 stays
            ``INACTIVE``; traffic only).
        ego_u: m along that lane, 0 to its length.
        ego_speed: m/s, 0 to the ego's max speed.
        warmup: s, 0 to 600, that :meth:`NetWorld.reset` runs traffic before the episode
            (without the ego; then cars on the ego's lane from 40 m behind its start to 15 m
            ahead, and any within 8 m of it, are taken off), so that an episode starts
            among traffic rather than on empty roads. The counters start after it.
    """

    network: Network
    slots: int = 24
    spawn_rate: float = 0.2
    desired_speed: tuple[float, float] = (11.0, 15.0)
    time_headway: tuple[float, float] = (1.0, 1.8)
    max_accel: tuple[float, float] = (1.2, 2.0)
    comfort_decel: tuple[float, float] = (2.0, 3.0)
    min_gap: tuple[float, float] = (2.0, 3.0)
    car_length: tuple[float, float] = (4.2, 5.0)
    car_width: float = 1.9
    safe_decel: float = 4.0
    gap_margin: float = 1.0
    commit_decel: float = 6.0
    stop_margin: float = 0.5
    lookahead: float = 120.0
    dt: float = 1.0 / 15.0
    decision_period: float = 0.5
    ego: EgoModel = field(default_factory=EgoModel)
    ego_lane: str | None = None
    ego_u: float = 10.0
    ego_speed: float = 10.0
    warmup: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.network, Network):
            raise NetWorldError(f"network must be a lanesim.sim.network.Network, got "
                                f"{type(self.network).__name__}")
        if (not isinstance(self.slots, int) or isinstance(self.slots, bool)
                or not 0 <= self.slots <= MAX_SLOTS):
            raise NetWorldError(f"slots must be an integer from 0 to {MAX_SLOTS}, got "
                                f"{self.slots!r}")
        _num("spawn_rate", self.spawn_rate, 0.0, 5.0, " cars/s per entry lane")
        _pair("desired_speed", self.desired_speed, 1.0, 40.0)
        _pair("time_headway", self.time_headway, 0.5, 3.0)
        _pair("max_accel", self.max_accel, 0.5, 4.0)
        _pair("comfort_decel", self.comfort_decel, 1.0, 5.0)
        _pair("min_gap", self.min_gap, 1.0, 5.0)
        _pair("car_length", self.car_length, 3.0, 8.0)
        _num("car_width", self.car_width, 1.5, 2.5, " m")
        _num("safe_decel", self.safe_decel, 1.0, 9.0, " m/s²")
        _num("gap_margin", self.gap_margin, 0.5, 5.0, " s")
        _num("commit_decel", self.commit_decel, 3.0, 9.0, " m/s²")
        _num("stop_margin", self.stop_margin, 0.0, 5.0, " m")
        _num("lookahead", self.lookahead, 30.0, 300.0, " m")
        _num("dt", self.dt, 0.01, 0.2, " s")
        _num("decision_period", self.decision_period, self.dt, 5.0, " s (at least dt)")
        _num("warmup", self.warmup, 0.0, 600.0, " s")
        if not isinstance(self.ego, EgoModel):
            raise NetWorldError(f"ego must be an EgoModel, got {type(self.ego).__name__}")
        if self.ego_lane is not None:
            try:
                lane = self.network.lane(self.ego_lane)
            except NetworkError as err:
                raise NetWorldError(f"ego_lane: {err}") from None
            length = self.network.lane_length(lane)
            _num("ego_u", self.ego_u, 0.0, length, f" m (the length of {self.ego_lane})")
            _num("ego_speed", self.ego_speed, 0.0, self.ego.max_speed, " m/s")

    def params(self) -> NetParams:
        """The values the kernels read."""
        return NetParams(
            dt=float(self.dt),
            period=max(1, round(self.decision_period / self.dt)),
            lookahead=float(self.lookahead),
            spawn_prob=1.0 - math.exp(-self.spawn_rate * self.decision_period),
            desired_speed=(float(self.desired_speed[0]), float(self.desired_speed[1])),
            time_headway=(float(self.time_headway[0]), float(self.time_headway[1])),
            max_accel=(float(self.max_accel[0]), float(self.max_accel[1])),
            comfort_decel=(float(self.comfort_decel[0]), float(self.comfort_decel[1])),
            min_gap=(float(self.min_gap[0]), float(self.min_gap[1])),
            car_length=(float(self.car_length[0]), float(self.car_length[1])),
            car_width=float(self.car_width),
            safe_decel=float(self.safe_decel),
            gap_margin=float(self.gap_margin),
            commit_decel=float(self.commit_decel),
            stop_margin=float(self.stop_margin),
            wheelbase=float(self.ego.wheelbase),
            max_steer=float(self.ego.max_steer),
            ego_max_accel=float(self.ego.max_accel),
            ego_max_brake=float(self.ego.max_brake),
            ego_max_speed=float(self.ego.max_speed),
        )


class NetWorld:
    """``B`` worlds on one network, stepped in lockstep. The state arrays are public, ``(B, N)``
    views (:class:`~lanesim.sim.netstep.NetState`), read by observations and rendering; only
    :meth:`reset`, :meth:`step` and :meth:`run` write them.

    Per world ``(B,)``: ``time`` (s since reset), ``traffic_crashes`` (traffic cars crashed by
    anything but the ego), ``arrivals`` (cars that left at an exit), ``spawned``,
    ``max_stopped`` (s: the longest any car has stood still), ``applied`` ``(2, B)`` (the ego's
    last steering rad and acceleration m/s²). ``graph`` is the network's
    :class:`~lanesim.sim.conflicts.LaneGraph`.
    """

    def __init__(self, spec: NetWorldSpec, n_worlds: int,
                 routes: RouteArrays | None = None) -> None:
        if not isinstance(spec, NetWorldSpec):
            raise NetWorldError(f"spec must be a NetWorldSpec, got {type(spec).__name__}")
        if (not isinstance(n_worlds, int | np.integer) or isinstance(n_worlds, bool)
                or not 1 <= n_worlds <= MAX_WORLDS):
            raise NetWorldError(f"n_worlds must be an integer from 1 to {MAX_WORLDS:,}, got "
                                f"{n_worlds!r}")
        self.spec = spec
        self.network = spec.network
        self.B = B = int(n_worlds)
        self.N = N = 1 + spec.slots
        self.dt = spec.dt
        self.graph: LaneGraph = lane_graph(self.network)
        if routes is None:
            routes = stack_routes([open_route(self.network)])
        if (not isinstance(routes, RouteArrays)
                or routes.next.shape[1:] != (len(self.network.lanes),)):
            raise NetWorldError("routes must be lanesim.sim.netego.RouteArrays planned on this "
                                "network (plan_route / open_route, stacked by stack_routes)")
        self.routes = routes
        self.params = spec.params()
        self.rng = WorldRandom(B)
        L = len(self.network.lanes)
        f = lambda: np.zeros((B, N))  # noqa: E731
        i = lambda: np.zeros((B, N), dtype=np.int64)  # noqa: E731
        self.state = NetState(
            x=f(), y=f(), heading=f(), speed=f(), length=f(), width=f(), u=f(), offset=f(),
            desired_speed=f(), time_headway=f(), max_accel=f(), comfort_decel=f(), min_gap=f(),
            stopped=f(), lane=np.full((B, N), -1, dtype=np.int64),
            kind=np.full((B, N), INACTIVE, dtype=np.int64), dest=i(), change=i(),
            crashed=np.zeros((B, N), dtype=bool),
            ego_route=np.zeros(B, dtype=np.int64),
            clock=np.zeros(B), steps=np.zeros(B, dtype=np.int64),
            traffic_crashes=np.zeros(B, dtype=np.int64), arrivals=np.zeros(B, dtype=np.int64),
            spawned=np.zeros(B, dtype=np.int64), max_stopped=np.zeros(B),
            applied=np.zeros((2, B)), rng_seed=self.rng.seed, rng_counter=self.rng.counter,
        )
        M = N * (PATH_LANES + 1)
        self.scratch = NetScratch(
            path_lane=np.zeros((B, N, PATH_LANES), dtype=np.int64),
            path_at=np.zeros((B, N, PATH_LANES)), path_n=np.zeros((B, N), dtype=np.int64),
            ent_ptr=np.zeros((B, L + 1), dtype=np.int64), ent_j=np.zeros((B, M), dtype=np.int64),
            ent_at=np.zeros((B, M)), ent_on=np.zeros((B, M), dtype=bool),
            tmp_lane=np.zeros((B, M), dtype=np.int64), tmp_j=np.zeros((B, M), dtype=np.int64),
            tmp_at=np.zeros((B, M)), tmp_on=np.zeros((B, M), dtype=bool),
            accel=np.zeros((B, N)), best=np.zeros((B, 2)),
            lead=np.full((B, N), -1, dtype=np.int64), lead_gap=np.full((B, N), np.inf),
            radius=np.zeros((B, N)),
            sized=np.full((B, 2, N), np.nan),
        )
        st = self.state
        self.x, self.y, self.heading, self.speed = st.x, st.y, st.heading, st.speed
        self.length, self.width, self.u, self.offset = st.length, st.width, st.u, st.offset
        self.lane, self.kind, self.crashed = st.lane, st.kind, st.crashed
        self.time, self.traffic_crashes, self.arrivals = st.clock, st.traffic_crashes, st.arrivals
        self.spawned, self.max_stopped, self.applied = st.spawned, st.max_stopped, st.applied
        # The kernels' structures as plain tuples, cheap to pass on every call (state.plain).
        self._args = (*plain(self.state, self.scratch, self.network.arrays, self.graph,
                             self.routes, self.params), as_record(spec.ego))
        # What the ego follows in advance(): rows state.COMMAND_*, fixed controls or, where
        # autopilot, netego's autopilot's target lane (a global lane id) and speed (m/s).
        self.command = np.zeros((N_COMMAND, B))
        self.autopilot = np.zeros(B, dtype=bool)
        self._every = np.ones(B, dtype=bool)
        self._no_trace = np.zeros((N_NET_TRACE, B, 0))
        # The reset's clearing, without numba's per-call dispatch (the same state, int64
        # world indices).
        self._clear_worlds = compiled_for(_clear_worlds, self.state, self.command,
                                          self.autopilot, np.arange(B))
        self._clear_counters = compiled_for(_clear_counters, self.state, np.arange(B))
        self._reseed_rows = compiled_for(_reseed_rows, self.rng.seed, self.rng.counter,
                                         self._every, np.zeros(B, dtype=np.uint64))
        f1 = np.zeros(1)
        self._start_egos = compiled_for(_start_egos, self.state, self.command, np.arange(B),
                                        np.zeros(1, dtype=np.int64), f1, f1, f1, f1, f1, 0.0,
                                        0.0, True)
        # run_net on these arrays without numba's per-call type dispatch: every call passes
        # the same arrays, a bool mask and a float trace of the same kind, and ints.
        self._run_net = compiled_for(run_net, *self._args, self.command, self.autopilot,
                                     self._every, 0, self._no_trace, 0, B)
        self._traces: dict[int, np.ndarray] = {}
        self._threads = min(os.cpu_count() or 1, 8)
        self._pool = None
        if B >= 8 * self._threads and self._threads > 1:
            self._pool = ThreadPoolExecutor(self._threads - 1, thread_name_prefix="netsim")
            bounds = np.linspace(0, B, self._threads + 1).astype(int)
            self._splits = list(zip(bounds[:-1], bounds[1:], strict=True))
        # Ego template.
        ego = spec.ego
        if spec.ego_lane is not None:
            lane = self.network.lane(spec.ego_lane)
            x, y, h = self.network.lane_to_world(lane, spec.ego_u)
            self._ego = (lane, float(x), float(y), float(h))
        else:
            self._ego = None
        self._ego_size = (float(ego.length), float(ego.width))
        self._start_poses: dict[tuple[int, float], tuple[float, float, float]] = {}

    # ------------------------------------------------------------------ reset and stepping
    def world_indices(self, worlds=None) -> np.ndarray:
        """``worlds`` (a bool mask ``(B,)``, indices, or None for all) as int64 indices;
        NetWorldError for a mask of another shape or an index out of range."""
        if worlds is None:
            return np.arange(self.B)
        w = np.asarray(worlds)
        if w.dtype == np.bool_:
            if w.shape != (self.B,):
                raise NetWorldError(f"worlds as a mask must have shape ({self.B},), got "
                                    f"{w.shape}")
            return np.flatnonzero(w)
        idx = w.astype(np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.B):
            raise NetWorldError(f"worlds must be indices 0 to {self.B - 1}, got {w.tolist()}")
        return idx

    def reset(self, worlds=None, seeds=None) -> None:
        """Reset ``worlds`` (bool mask ``(B,)`` or indices; default all) with ``seeds`` (one
        non-negative integer per reset world; default 0, 1, ...): no traffic yet (cars enter
        from the entry lanes as the worlds run), the ego at its start lane, ``ego_u`` and
        ``ego_speed``, heading along the lane."""
        idx = self.world_indices(worlds)
        if seeds is None:
            seeds = idx
        seeds = np.asarray(seeds)
        if seeds.shape != idx.shape or (seeds.size and (
                not np.issubdtype(seeds.dtype, np.integer) or seeds.min() < 0)):
            raise NetWorldError(f"seeds must be {idx.size} non-negative integers (one per reset "
                                f"world), got {seeds.tolist()}")
        # Every world in order (a single env's every reset): a bool mask for the compiled
        # random streams, cheaper than indices.
        every = idx.size == self.B and (
            idx[0] == 0 if self.B == 1 else bool(np.all(idx == np.arange(self.B))))
        mask = self._every if every else None
        if every:  # WorldRandom.reseed's compiled path, called directly
            self._reseed_rows(self.rng.seed, self.rng.counter, mask, seeds.astype(np.uint64))
        else:
            self.rng.reseed(idx, seeds.astype(np.uint64))
        starts = self._ego_starts(idx) if self._ego is not None else None
        st = self.state
        self._clear_worlds(st, self.command, self.autopilot, idx)
        # Before the warm-up too: its lane-change and spawn phases count steps, and must not
        # count the episode before's.
        self._clear_counters(st, idx)
        if self.spec.warmup > 0.0 and idx.size:
            if mask is None:
                mask = np.zeros(self.B, dtype=bool)
                mask[idx] = True
            frames = round(self.spec.warmup / self.dt)
            # One compiled call over the reset worlds only; the others stay as they are.
            self._run_net(*self._args, self.command, self.autopilot, mask, frames,
                          self._no_trace, 0, self.B)
        self._clear_counters(st, idx)
        if starts is not None:
            lane, u, speed = starts
            x, y, h = self._start_pose(lane, u)
            f8 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
            # After a warm-up, the cars that would meet the ego at its start are taken off
            # first; then the ego is placed (one compiled call).
            self._start_egos(st, self.command, idx, np.ascontiguousarray(lane, dtype=np.int64),
                             f8(u), f8(x), f8(y), f8(h), f8(speed), *self._ego_size,
                             self.spec.warmup > 0.0)

    def _start_pose(self, lane: np.ndarray, u: np.ndarray):
        """:meth:`Network.lane_to_world` of the ego's start ``lane`` and ``u`` ``(W,)``; one
        world's, remembered: a single env starts from the same few points every episode."""
        if lane.size != 1:
            return self.network.lane_to_world(lane, u)
        key = (int(lane[0]), float(u[0]))
        pose = self._start_poses.get(key)
        if pose is None:
            pose = tuple(float(a[0]) for a in self.network.lane_to_world(lane, u))
            if len(self._start_poses) < 256:
                self._start_poses[key] = pose
        return tuple(np.array([a]) for a in pose)

    def _ego_starts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ego's start in the reset worlds ``idx``: lane ids, m along them and speeds (m/s),
        each ``(len(idx),)``; the spec's. Called right after the worlds' streams are reseeded
        and before the warm-up, so a subclass may draw them from :attr:`rng`."""
        lane = self._ego[0]
        n = idx.size
        return (np.full(n, lane, dtype=np.int64), np.full(n, float(self.spec.ego_u)),
                np.full(n, float(self.spec.ego_speed)))

    def place(self, world: int, slot: int, lane, u: float, speed: float, exit_lane,
              desired_speed: float | None = None, crashed: bool = False) -> None:
        """Put a traffic car in ``slot`` (1 to N-1) of ``world``: on ``lane`` (name or id) at
        ``u`` m, ``speed`` m/s, bound for ``exit_lane`` (an exit reachable from ``lane``), with
        the middle of each behaviour range (``desired_speed`` given or the range's middle); a
        ``crashed`` car stands where it is (a stalled car)."""
        net, g = self.network, self.graph
        if not (isinstance(world, int | np.integer) and 0 <= world < self.B):
            raise NetWorldError(f"world must be an index 0 to {self.B - 1}, got {world!r}")
        if not (isinstance(slot, int | np.integer) and 1 <= slot < self.N):
            raise NetWorldError(f"slot must be a traffic slot 1 to {self.N - 1}, got {slot!r}")
        try:
            lid = net.lane(lane) if isinstance(lane, str) else int(lane)
            xid = net.lane(exit_lane) if isinstance(exit_lane, str) else int(exit_lane)
        except NetworkError as err:
            raise NetWorldError(str(err)) from None
        if not 0 <= lid < len(net.lanes):
            raise NetWorldError(f"lane must be a name or an id 0 to {len(net.lanes) - 1}, got "
                                f"{lane!r}")
        if xid not in g.exits:
            names = ", ".join(net.lanes[t] for t in g.exits)
            raise NetWorldError(f"exit_lane {exit_lane!r} is not an exit lane; exits: {names}")
        t = int(np.flatnonzero(g.exits == xid)[0])
        if not g.reaches[lid, t]:
            raise NetWorldError(f"exit_lane {net.lanes[xid]} cannot be reached from "
                                f"{net.lanes[lid]}")
        _num("u", u, 0.0, net.lane_length(lid), f" m (the length of {net.lanes[lid]})")
        _num("speed", speed, 0.0, 40.0, " m/s")
        spec, st = self.spec, self.state
        mid = lambda r: 0.5 * (r[0] + r[1])  # noqa: E731
        desired = mid(spec.desired_speed) if desired_speed is None else _num(
            "desired_speed", desired_speed, 1.0, 40.0, " m/s")
        b, e = int(world), int(slot)
        st.kind[b, e], st.lane[b, e], st.u[b, e], st.offset[b, e] = CAR, lid, u, 0.0
        st.speed[b, e], st.dest[b, e], st.change[b, e] = speed, t, 0
        st.length[b, e], st.width[b, e] = mid(spec.car_length), spec.car_width
        st.desired_speed[b, e], st.time_headway[b, e] = desired, mid(spec.time_headway)
        st.max_accel[b, e], st.comfort_decel[b, e] = mid(spec.max_accel), mid(spec.comfort_decel)
        st.min_gap[b, e], st.stopped[b, e], st.crashed[b, e] = mid(spec.min_gap), 0.0, crashed
        x, y, h = net.lane_to_world(lid, u)
        st.x[b, e], st.y[b, e], st.heading[b, e] = float(x), float(y), float(h)

    def set_ego_route(self, worlds, route: int) -> None:
        """The route (index into :attr:`routes`, the stack of
        :func:`lanesim.sim.netego.stack_routes`) the ego follows in ``worlds``: traffic sees
        it heading where that route goes, the tracker prefers its lanes, the autopilot
        steers along it. Index 0 after :meth:`reset`."""
        n = self.routes.next.shape[0]
        if not (isinstance(route, int | np.integer) and 0 <= route < n):
            raise NetWorldError(f"route must be an index 0 to {n - 1} into the routes stack, "
                                f"got {route!r}")
        self.state.ego_route[worlds] = route

    def step(self, steer, accel, trace: bool = False) -> np.ndarray | None:
        """One simulation step of ``dt`` for every world; ``steer`` (rad, + left) and ``accel``
        (m/s²) ``(B,)`` are the ego's controls, clipped to its limits. ``trace``: as
        :meth:`advance`."""
        return self.run(1, steer, accel, trace)

    def run(self, frames: int, steer=0.0, accel=0.0, trace: bool = False) -> np.ndarray | None:
        """``frames`` simulation steps of every world in one compiled call, the ego holding
        ``steer`` and ``accel`` (scalars or ``(B,)``). ``trace``: as :meth:`advance`."""
        for row, (name, v) in ((COMMAND_STEER, ("steer", steer)),
                               (COMMAND_ACCEL, ("accel", accel))):
            a = np.asarray(v, dtype=np.float64)
            if a.shape not in ((), (self.B,)):
                raise NetWorldError(f"{name} must be a number or shape ({self.B},), got shape "
                                    f"{a.shape}")
            if not np.all(np.isfinite(a)):
                raise NetWorldError(f"{name} must be finite, got {v!r}")
            self.command[row] = a
        self.autopilot[:] = False
        return self.advance(frames, trace)

    def drive(self, frames: int, target_lane, target_speed,
              trace: bool = False) -> np.ndarray | None:
        """``frames`` simulation steps with the ego on netego's route-following autopilot in
        every world: toward ``target_lane`` (name or global id: its lane or a neighbour, scalar
        or ``(B,)``) at ``target_speed`` (m/s, 0 to its max speed). ``trace``: as
        :meth:`advance`."""
        lanes = np.asarray([self.network.lane(t) if isinstance(t, str) else t
                            for t in np.atleast_1d(np.asarray(target_lane, dtype=object))])
        if lanes.shape not in ((1,), (self.B,)) or not all(
                isinstance(t, int | np.integer) and 0 <= t < len(self.network.lanes)
                for t in lanes):
            raise NetWorldError(f"target_lane must be a lane name or id (0 to "
                                f"{len(self.network.lanes) - 1}), one or ({self.B},), got "
                                f"{target_lane!r}")
        speed = np.asarray(target_speed, dtype=np.float64)
        if speed.shape not in ((), (self.B,)) or not np.all(
                (speed >= 0.0) & (speed <= self.spec.ego.max_speed)):
            raise NetWorldError(f"target_speed must be 0 to {self.spec.ego.max_speed:g} m/s, "
                                f"one or ({self.B},), got {target_speed!r}")
        self.command[COMMAND_LANE] = lanes.astype(np.float64)
        self.command[COMMAND_SPEED] = speed
        self.autopilot[:] = True
        return self.advance(frames, trace)

    def advance(self, frames: int, trace: bool = False) -> np.ndarray | None:
        """``frames`` simulation steps of every world, the ego following :attr:`command` and
        :attr:`autopilot` ``(B,)`` (set by :meth:`run` and :meth:`drive`, or by hand: per
        world fixed controls or the autopilot's target).

        With ``trace``, returns the ego after each step, ``(N_NET_TRACE, B, frames)`` (rows
        ``lanesim.sim.netstep.NT_*``: metres along its route, offset m, heading error rad,
        half its lane's width, lane, lane change, off the network, crashed, arrived, wrong
        turn), a buffer that the next traced call with the same ``frames`` overwrites; at most
        10^7 frames × worlds. Without, None."""
        if (not isinstance(frames, int | np.integer) or isinstance(frames, bool)
                or not 0 <= frames <= 10_000_000):
            raise NetWorldError(f"frames must be an integer from 0 to 10,000,000, got "
                                f"{frames!r}")
        out = self._no_trace
        if trace:
            if frames * self.B > 10_000_000:
                raise NetWorldError(f"a trace holds at most 10,000,000 frames x worlds, got "
                                    f"{frames} x {self.B}: trace shorter calls")
            out = self._traces.get(frames)
            if out is None:
                out = self._traces[frames] = np.zeros((N_NET_TRACE, self.B, frames))
        args = (*self._args, self.command, self.autopilot, self._every, int(frames), out)
        run = self._run_net
        if self._pool is None:
            run(*args, 0, self.B)
            return out if trace else None
        jobs = [self._pool.submit(run, *args, lo, hi) for lo, hi in self._splits[1:]]
        lo, hi = self._splits[0]
        run(*args, lo, hi)
        for job in jobs:
            job.result()
        return out if trace else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None



@kernel
def _start_egos(st, command, idx, lane, u, x, y, h, speed, length, width, clear):
    """The end of :meth:`NetWorld.reset`: in world ``idx[k]``, where ``clear`` (after a
    warm-up) the cars that would meet the ego at its start are taken off (:func:`_clear_start`),
    then the ego is placed on ``lane[k]`` at ``u[k]`` m, pose ``(x[k], y[k], h[k])``, speed
    ``speed[k]`` m/s, ``length`` x ``width`` m, its command's target lane its lane."""
    if clear:
        _clear_start(st.kind, st.lane, st.u, st.x, st.y, st.change, st.speed, st.offset,
                     st.stopped, st.crashed, idx, lane, u, x, y)
    for k in range(idx.shape[0]):
        b = idx[k]
        st.kind[b, 0] = EGO
        st.lane[b, 0] = lane[k]
        st.u[b, 0] = u[k]
        st.x[b, 0], st.y[b, 0], st.heading[b, 0] = x[k], y[k], h[k]
        st.speed[b, 0] = speed[k]
        st.length[b, 0], st.width[b, 0] = length, width
        command[COMMAND_LANE, b] = lane[k]


@kernel
def _clear_start(kind, lane, u, x, y, change, speed, offset, stopped, crashed, idx, lane0, u0,
                 x0, y0):
    """:func:`_start_egos`' clearing: in world ``idx[k]``, every traffic car on lane
    ``lane0[k]`` from 40 m behind to 15 m ahead of ``u0[k]``, or within 8 m of the point
    ``(x0[k], y0[k])``, is taken off (its slot emptied)."""
    for k in range(idx.shape[0]):
        b = idx[k]
        for e in range(kind.shape[1]):
            if kind[b, e] != CAR:
                continue
            on_lane = lane[b, e] == lane0[k] and u0[k] - 40.0 < u[b, e] < u0[k] + 15.0
            if on_lane or math.hypot(x[b, e] - x0[k], y[b, e] - y0[k]) < 8.0:
                kind[b, e], lane[b, e], change[b, e] = INACTIVE, -1, 0
                speed[b, e] = u[b, e] = offset[b, e] = stopped[b, e] = 0.0
                crashed[b, e] = False


@kernel
def _clear_worlds(st, command, autopilot, idx):
    """Empty worlds ``idx`` (:class:`NetState`): every slot inactive and off the network with
    zero pose, speed, size and behaviour, no route, the ego's commands zero and off the
    autopilot."""
    for k in range(idx.shape[0]):
        b = idx[k]
        for e in range(st.x.shape[1]):
            st.x[b, e] = st.y[b, e] = st.heading[b, e] = st.speed[b, e] = 0.0
            st.length[b, e] = st.width[b, e] = st.u[b, e] = st.offset[b, e] = 0.0
            st.desired_speed[b, e] = st.time_headway[b, e] = st.max_accel[b, e] = 0.0
            st.comfort_decel[b, e] = st.min_gap[b, e] = st.stopped[b, e] = 0.0
            st.lane[b, e] = -1
            st.kind[b, e] = INACTIVE
            st.dest[b, e] = st.change[b, e] = 0
            st.crashed[b, e] = False
        st.ego_route[b] = 0
        for r in range(command.shape[0]):
            command[r, b] = 0.0
        autopilot[b] = False


@kernel
def _clear_counters(st, idx):
    """Zero the clocks, counters and last controls of worlds ``idx`` (:class:`NetState`)."""
    for k in range(idx.shape[0]):
        b = idx[k]
        st.clock[b] = st.max_stopped[b] = 0.0
        st.steps[b] = st.traffic_crashes[b] = st.arrivals[b] = st.spawned[b] = 0
        for r in range(st.applied.shape[0]):
            st.applied[r, b] = 0.0
