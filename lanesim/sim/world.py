"""The batched simulator: ``B`` independent worlds of ``N`` entities, stepped together.

Entity ``0`` of every world is the ego car (kinematic bicycle model, driven by steering and
acceleration). Entities ``1 .. V`` are traffic (IDM car following and MOBIL lane changes, moving
in road coordinates so they follow curved lanes exactly). The last ``O`` are static obstacles
(cones, stalled cars) placed where the scenario says. Every field is a ``(B, N)`` array; a step
is a fixed sequence of array operations with no Python loop over worlds or vehicles.

This module knows nothing of Gymnasium or pygame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lanesim.sim.collision import boxes_overlap
from lanesim.sim.rng import WorldRandom
from lanesim.sim.road import Road
from lanesim.sim.traffic import idm_acceleration, mobil_incentive

# Entity kinds.
EGO, CAR, STALLED, CONE = 0, 1, 2, 3


@dataclass(frozen=True)
class Obstacle:
    """A static obstacle: ``kind`` is ``STALLED`` or ``CONE``; placed at ``s`` (m) in ``lane``,
    ``offset`` (m, to the right) from the lane centre."""

    kind: int
    lane: int
    s: float
    offset: float = 0.0


@dataclass(frozen=True)
class EgoModel:
    """Ego vehicle: kinematic bicycle model and its limits."""

    length: float = 4.8  # m
    width: float = 1.9  # m
    wheelbase: float = 2.8  # m
    max_steer: float = 0.5  # rad, front-wheel angle
    max_accel: float = 3.0  # m/s²
    max_brake: float = 6.0  # m/s², positive
    max_speed: float = 40.0  # m/s


@dataclass(frozen=True)
class TrafficModel:
    """Traffic behaviour; each vehicle draws its own values from these ranges at spawn."""

    vehicles: int = 20
    desired_speed: tuple[float, float] = (22.0, 30.0)  # m/s
    time_headway: tuple[float, float] = (1.0, 1.8)  # s
    max_accel: tuple[float, float] = (1.2, 2.0)  # m/s²
    comfort_decel: tuple[float, float] = (2.0, 3.0)  # m/s²
    min_gap: tuple[float, float] = (2.0, 3.0)  # m
    politeness: tuple[float, float] = (0.0, 0.5)
    lane_change_threshold: float = 0.2  # m/s², MOBIL's Δa_th
    keep_right_bias: float = 0.1  # m/s² added to the incentive of moving right
    safe_decel: float = 4.0  # m/s², MOBIL's b_safe
    lane_change_time: float = 3.0  # s to cross one lane
    decision_period: float = 1.0  # s between MOBIL decisions
    spawn_spacing: float = 30.0  # m between spawn slots in one lane
    recycle_distance: float = 300.0  # m from the ego beyond which a car is moved
    brake_rate: float = 0.0  # sudden braking events per vehicle per second
    length: tuple[float, float] = (4.2, 5.0)  # m
    width: float = 1.9  # m


@dataclass
class WorldSpec:
    """Everything fixed about a batch of worlds: road, models, obstacles and timing."""

    road: Road
    ego: EgoModel = field(default_factory=EgoModel)
    traffic: TrafficModel = field(default_factory=TrafficModel)
    obstacles: tuple[Obstacle, ...] = ()
    sim_hz: float = 15.0
    ego_start: float = 200.0  # m along the road
    ego_lanes: tuple[int, ...] = ()  # lanes the ego may start in; empty means any full lane
    ego_speed: tuple[float, float] = (20.0, 25.0)  # m/s


_OBSTACLE_SIZE = {STALLED: (4.5, 1.9), CONE: (0.6, 0.6)}


class World:
    """``B`` worlds stepped in lockstep. State arrays are public and read by observations and
    rendering; only :meth:`reset` and :meth:`step` write them.

    Attributes (all ``(B, N)`` unless noted): ``x, y, heading`` (world pose, m and rad),
    ``speed`` (m/s), ``s, d`` (road frame, m), ``lane`` (lane under the centre), ``target_lane``,
    ``length, width`` (m), ``kind``, ``crashed``; ``steer`` and ``accel`` ``(B,)`` are the ego's
    last controls; ``time`` ``(B,)`` is simulated seconds since reset.
    """

    def __init__(self, spec: WorldSpec, n_worlds: int) -> None:
        self.spec = spec
        self.road = spec.road
        self.B = int(n_worlds)
        self.V = spec.traffic.vehicles
        self.O = len(spec.obstacles)
        self.N = 1 + self.V + self.O
        self.dt = 1.0 / spec.sim_hz
        self.rng = WorldRandom(self.B)
        B, N = self.B, self.N
        f = lambda: np.zeros((B, N))  # noqa: E731
        self.x, self.y, self.heading, self.speed = f(), f(), f(), f()
        self.s, self.d, self.lateral_speed = f(), f(), f()
        self.length, self.width = f(), f()
        self.desired_speed, self.time_headway, self.max_accel = f(), f(), f()
        self.comfort_decel, self.min_gap, self.politeness = f(), f(), f()
        self.brake_timer = f()
        self.lane = np.zeros((B, N), dtype=np.int64)
        self.target_lane = np.zeros((B, N), dtype=np.int64)
        self.kind = np.zeros((B, N), dtype=np.int8)
        self.crashed = np.zeros((B, N), dtype=bool)
        self.steer = np.zeros(B)
        self.accel = np.zeros(B)
        self.time = np.zeros(B)
        self.steps = np.zeros(B, dtype=np.int64)
        self.kind[:, 1 : 1 + self.V] = CAR
        self.traffic = slice(1, 1 + self.V)
        self.obstacle = slice(1 + self.V, N)
        # Cars in the worlds' road frame always share one sort key layout; see _lane_index().
        self._key_stride = self.road.length + 4 * spec.traffic.recycle_distance + 1e4
        self._key_shift = 2 * spec.traffic.recycle_distance + 5e3

    # ------------------------------------------------------------------ reset
    def reset(self, worlds: np.ndarray, seeds: np.ndarray) -> None:
        """Start new episodes in ``worlds`` (bool mask ``(B,)``) from ``seeds`` (``(W,)`` ints)."""
        worlds = np.asarray(worlds, dtype=bool)
        if not worlds.any():
            return
        self.rng.reseed(worlds, seeds)
        spec, road, tm = self.spec, self.road, self.spec.traffic
        W = int(worlds.sum())

        # Ego: a random allowed lane, centred, aligned with the road.
        allowed = np.array(spec.ego_lanes or self._full_lanes(), dtype=np.int64)
        pick = (self.rng.uniform((), worlds) * len(allowed)).astype(np.int64)
        ego_lane = allowed[np.minimum(pick, len(allowed) - 1)]
        lo, hi = spec.ego_speed
        ego_speed = lo + (hi - lo) * self.rng.uniform((), worlds)
        self._place(worlds, 0, np.full(W, spec.ego_start), ego_lane, ego_speed)
        self.length[worlds, 0] = spec.ego.length
        self.width[worlds, 0] = spec.ego.width
        self.steer[worlds] = 0.0
        self.accel[worlds] = 0.0

        # Obstacles: the same in every world.
        for j, ob in enumerate(spec.obstacles):
            e = 1 + self.V + j
            self.kind[worlds, e] = ob.kind
            self.length[worlds, e], self.width[worlds, e] = _OBSTACLE_SIZE[ob.kind]
            self._place(worlds, e, np.full(W, ob.s), np.full(W, ob.lane), np.zeros(W))
            self.d[worlds, e] += ob.offset
        if self.O:
            self._update_world_pose(worlds, self.obstacle)

        if self.V:
            self._spawn_traffic(worlds, W)
        self.crashed[worlds] = False
        self.time[worlds] = 0.0
        self.steps[worlds] = 0
        self._refresh_lanes()

    def place(self, entity: int, s: float, lane: int, speed: float) -> None:
        """Put ``entity`` of every world on ``lane``'s centre at ``s`` (m), aligned with the road,
        at ``speed`` (m/s), and refresh the neighbour index. For building test situations and
        hand-made scenes; episodes start from :meth:`reset`."""
        every = np.ones(self.B, dtype=bool)
        self._place(every, entity, np.full(self.B, float(s)), np.full(self.B, lane), float(speed))
        self._refresh_lanes()

    def _full_lanes(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.road.lane_closes)] or [0]

    def _place(self, worlds, e, s, lane, speed) -> None:
        """Put entity ``e`` of ``worlds`` on a lane centre, aligned with the road."""
        self.s[worlds, e] = s
        self.d[worlds, e] = self.road.lane_centre[lane]
        self.lane[worlds, e] = lane
        self.target_lane[worlds, e] = lane
        self.speed[worlds, e] = speed
        self.lateral_speed[worlds, e] = 0.0
        x, y, h = self.road.to_world(s, self.d[worlds, e])
        self.x[worlds, e], self.y[worlds, e], self.heading[worlds, e] = x, y, h

    def _spawn_traffic(self, worlds: np.ndarray, W: int) -> None:
        """Draw every traffic car of ``worlds``: behaviour, then a free slot on the road.

        Slots are a grid of ``spawn_spacing`` along every lane around the ego; each world takes a
        random subset of the slots that exist, are on the road and keep clear of the ego, so gaps
        are plausible by construction.
        """
        spec, road, tm = self.spec, self.road, self.spec.traffic
        V = self.V
        cars = self.traffic
        self._draw_behaviour(worlds, cars, (W, V))
        lanes = road.lanes
        per_lane = max(int(np.ceil(1.6 * V / lanes)) + 2, 4)
        # Keep every slot inside the recycling radius, so no car is moved on the first decision.
        spacing = min(tm.spawn_spacing, 1.8 * tm.recycle_distance / per_lane)
        offsets = (np.arange(per_lane) - per_lane // 2) * spacing
        slot_s = spec.ego_start + np.tile(offsets, lanes)
        slot_lane = np.repeat(np.arange(lanes), per_lane)
        ok = road.lane_exists(slot_lane, slot_s) & (slot_s > 5) & (slot_s < road.length - 5)
        ego_s = self.s[worlds, :1]
        ego_lane = self.lane[worlds, :1]
        clear = ~((slot_lane == ego_lane) & (np.abs(slot_s - ego_s) < max(spacing, 12.0)))
        usable = ok & clear  # (W, slots)
        # Random keys, with unusable slots pushed last: the first V are each world's choice.
        keys = self.rng.uniform((len(slot_s),), worlds) + 2.0 * ~usable
        chosen = np.argsort(keys, axis=1, kind="stable")[:, :V]
        got = np.take_along_axis(usable, chosen, 1)
        jitter = (self.rng.uniform((V,), worlds) - 0.5) * 0.3 * spacing
        s = slot_s[chosen] + jitter
        lane = slot_lane[chosen]
        # Slots that ran out are parked far behind, where recycling brings them in later.
        far = spec.ego_start - 2 * tm.recycle_distance
        s = np.where(got, s, far - np.arange(V) * tm.spawn_spacing)
        speed = self.desired_speed[worlds][:, cars] * (0.85 + 0.15 * self.rng.uniform((V,), worlds))
        self.s[worlds, cars] = s
        self.d[worlds, cars] = road.lane_centre[lane]
        self.lane[worlds, cars] = lane
        self.target_lane[worlds, cars] = lane
        self.speed[worlds, cars] = speed
        self.lateral_speed[worlds, cars] = 0.0
        self.brake_timer[worlds, cars] = 0.0
        self._update_world_pose(worlds, cars)

    def _draw_behaviour(self, worlds, cars, shape) -> None:
        tm = self.spec.traffic

        def draw(rng_range):
            lo, hi = rng_range
            return lo + (hi - lo) * self.rng.uniform(shape[1:], worlds)

        self.desired_speed[worlds, cars] = draw(tm.desired_speed)
        self.time_headway[worlds, cars] = draw(tm.time_headway)
        self.max_accel[worlds, cars] = draw(tm.max_accel)
        self.comfort_decel[worlds, cars] = draw(tm.comfort_decel)
        self.min_gap[worlds, cars] = draw(tm.min_gap)
        self.politeness[worlds, cars] = draw(tm.politeness)
        self.length[worlds, cars] = draw(tm.length)
        self.width[worlds, cars] = tm.width

    # ------------------------------------------------------------------ step
    def step(self, steer: np.ndarray, accel: np.ndarray) -> None:
        """Advance every world by one simulation step ``dt`` with ego controls ``steer`` (rad)
        and ``accel`` (m/s²), both ``(B,)`` and already within the ego's limits."""
        dt = self.dt
        self.steer[:] = steer
        self.accel[:] = accel
        self._step_ego(dt)
        if self.V:
            self._step_traffic(dt)
        self._refresh_lanes()
        self._detect_collisions()
        self.time += dt
        self.steps += 1
        if self.V:
            period = max(1, round(self.spec.traffic.decision_period / dt))
            # Every world decides on the same steps, so one branch serves the whole batch.
            if int(self.steps[0]) % period == 0:
                self._change_lanes()
                self._recycle()

    def _step_ego(self, dt: float) -> None:
        em = self.spec.ego
        v = self.speed[:, 0]
        h = self.heading[:, 0]
        # Kinematic bicycle about the centre of gravity, taken at mid-wheelbase.
        beta = np.arctan(0.5 * np.tan(self.steer))
        self.x[:, 0] += v * np.cos(h + beta) * dt
        self.y[:, 0] += v * np.sin(h + beta) * dt
        self.heading[:, 0] = h + v * np.sin(beta) / (0.5 * em.wheelbase) * dt
        # A crashed ego stays where it hit.
        self.speed[:, 0] = np.where(
            self.crashed[:, 0], 0.0, np.clip(v + self.accel * dt, 0.0, em.max_speed)
        )
        s, d = self.road.to_road(self.x[:, 0], self.y[:, 0])
        self.s[:, 0], self.d[:, 0] = s, d

    def _step_traffic(self, dt: float) -> None:
        road, tm = self.road, self.spec.traffic
        cars = self.traffic
        accel = self._car_following()[:, cars]
        self.brake_timer[:, cars] = np.maximum(self.brake_timer[:, cars] - dt, 0.0)
        if tm.brake_rate > 0:
            start = self.rng.uniform((self.V,)) < tm.brake_rate * dt
            dur = 2.0 + 2.0 * self.rng.uniform((self.V,))
            self.brake_timer[:, cars] = np.where(start, dur, self.brake_timer[:, cars])
        accel = np.where(self.brake_timer[:, cars] > 0, -self.comfort_decel[:, cars], accel)
        crashed = self.crashed[:, cars]
        v = np.where(crashed, 0.0, np.maximum(self.speed[:, cars] + accel * dt, 0.0))
        # Lateral motion toward the target lane centre at a bounded rate.
        d = self.d[:, cars]
        target = road.lane_centre[self.target_lane[:, cars]]
        vmax = road.lane_width / tm.lane_change_time
        vd = np.where(crashed, 0.0, np.clip(1.2 * (target - d), -vmax, vmax))
        _, _, _, k = road.reference_pose(self.s[:, cars])
        # At lateral offset d the lane is (1 + k d) times as long as the reference line.
        along = np.sqrt(np.maximum(v * v - vd * vd, 0.0))
        self.s[:, cars] += along / (1.0 + k * d) * dt
        self.d[:, cars] = d + vd * dt
        self.speed[:, cars] = v
        self.lateral_speed[:, cars] = vd
        self._update_world_pose(slice(None), cars)

    def _update_world_pose(self, worlds, ents) -> None:
        s, d = self.s[worlds, ents], self.d[worlds, ents]
        x, y, h = self.road.to_world(s, d)
        v = self.speed[worlds, ents]
        vd = self.lateral_speed[worlds, ents]
        # Moving right (vd > 0) turns the car clockwise from the road direction.
        rel = -np.arctan2(vd, np.maximum(np.sqrt(np.maximum(v * v - vd * vd, 0.0)), 1e-3))
        self.x[worlds, ents], self.y[worlds, ents] = x, y
        self.heading[worlds, ents] = h + np.where(v > 0.1, rel, 0.0)

    # ------------------------------------------------------------------ lanes and neighbours
    def _refresh_lanes(self) -> None:
        """Recompute each entity's lane and rebuild the sorted lane index used for neighbours."""
        road = self.road
        self.lane = np.clip(road.lane_at(self.d), 0, road.lanes - 1)
        self.target_lane[:, 0] = self.lane[:, 0]
        self.target_lane[:, self.obstacle] = self.lane[:, self.obstacle]
        self._build_lane_index()

    def _second_lane(self) -> np.ndarray:
        """The other lane an entity blocks: its target lane while changing, else the neighbour
        its footprint reaches into, else -1."""
        road = self.road
        rel = self.heading - road.reference_pose(self.s)[2]
        half = 0.5 * self.width * np.abs(np.cos(rel)) + 0.5 * self.length * np.abs(np.sin(rel))
        left = road.lane_at(self.d - half)
        right = road.lane_at(self.d + half)
        reach = np.where(left != self.lane, left, np.where(right != self.lane, right, -1))
        second = np.where(self.target_lane != self.lane, self.target_lane, reach)
        return np.where((second >= 0) & (second < road.lanes), second, -1)

    def _build_lane_index(self) -> None:
        """Sort every (world, lane, s) occupancy into one flat array for ``searchsorted``.

        Each entity occupies its own lane and, when it straddles or changes lanes, a second one.
        Keys are ``(world * lanes + lane) * stride + s`` so that one sort over the whole batch
        groups entries by world, then lane, then position.
        """
        B, N = self.B, self.N
        lanes = np.concatenate([self.lane, self._second_lane()], axis=1)  # (B, 2N)
        s = np.concatenate([self.s, self.s], axis=1)
        world = np.arange(B)[:, None]
        valid = lanes >= 0
        key = (world * self.road.lanes + lanes) * self._key_stride + s + self._key_shift
        key = np.where(valid, key, np.inf).ravel()
        order = np.argsort(key, kind="stable")
        self._keys = key[order]
        self._entity = (order % (2 * N)) % N  # entity index within its world
        self._lane_n = 2 * N

    def _query(self, lane: np.ndarray, s: np.ndarray, ahead: bool):
        """Nearest entity ahead (or behind) of ``s`` in ``lane``, per query; arrays ``(B, K)``.

        Returns ``(entity, found)``; ``entity`` is meaningless where ``found`` is False.
        """
        B = self.B
        world = np.arange(B)[:, None]
        group = world * self.road.lanes + lane
        q = group * self._key_stride + s + self._key_shift
        if ahead:
            pos = np.searchsorted(self._keys, q, side="right")
        else:
            pos = np.searchsorted(self._keys, q, side="left") - 1
        pos_c = np.clip(pos, 0, len(self._keys) - 1)
        k = self._keys[pos_c]
        found = (pos >= 0) & (pos < len(self._keys)) & np.isfinite(k)
        found &= np.floor(k / self._key_stride) == group
        found &= (lane >= 0) & (lane < self.road.lanes)
        return self._entity[pos_c], found

    def _gap_and_speed(self, ent, found, me_s, me_len, me_d):
        """Bumper gap (m) and speed (m/s) to entity ``ent`` (``(B, K)``) seen from a car at
        ``me_s`` with length ``me_len``; the gap is ``inf`` where nothing was found."""
        world = np.arange(self.B)[:, None]
        other_s = self.s[world, ent]
        _, _, _, k = self.road.reference_pose(me_s)
        ds = np.abs(other_s - me_s) * (1.0 + k * me_d)
        gap = ds - 0.5 * (me_len + self.length[world, ent])
        return np.where(found, gap, np.inf), np.where(found, self.speed[world, ent], 0.0)

    def _idm(self, ents, speed, gap, leader_speed):
        """IDM acceleration for entities ``ents`` (slice or index) with the given leader."""
        return idm_acceleration(
            speed,
            np.where(self.brake_timer[:, ents] > 0, 0.0, self.desired_speed[:, ents]),
            gap,
            leader_speed,
            self.time_headway[:, ents],
            self.max_accel[:, ents],
            self.comfort_decel[:, ents],
            self.min_gap[:, ents],
        )

    def _lane_end_gap(self, lane, s, length):
        """Gap (m) to the end of ``lane`` if it closes ahead, else ``inf``."""
        end = self.road.lane_end[lane]
        closes = self.road.lane_closes[lane] & (end >= s)
        return np.where(closes, end - s - 0.5 * length, np.inf)

    def _car_following(self) -> np.ndarray:
        """IDM acceleration of every entity ``(B, N)`` (meaningful for traffic only).

        A car changing lanes respects the leaders in both lanes; a closing lane's end counts as a
        stopped leader.
        """
        acc = np.zeros((self.B, self.N))
        cars = self.traffic
        s, d, v, ln = self.s[:, cars], self.d[:, cars], self.speed[:, cars], self.length[:, cars]
        result = None
        for lane in (self.lane[:, cars], self.target_lane[:, cars]):
            ent, found = self._query(lane, s, ahead=True)
            gap, lv = self._gap_and_speed(ent, found, s, ln, d)
            end_gap = self._lane_end_gap(lane, s, ln)
            lv = np.where(end_gap < gap, 0.0, lv)
            gap = np.minimum(gap, end_gap)
            a = self._idm(cars, v, gap, lv)
            result = a if result is None else np.minimum(result, a)
        acc[:, cars] = result
        return acc

    def _change_lanes(self) -> None:
        """MOBIL: each car not already changing lanes may start a change to a neighbour lane."""
        road, tm = self.road, self.spec.traffic
        world = np.arange(self.B)[:, None]
        cars = self.traffic
        idx = np.arange(1, 1 + self.V)
        s, d, v, ln = self.s[:, cars], self.d[:, cars], self.speed[:, cars], self.length[:, cars]
        lane = self.lane[:, cars]
        steady = (self.target_lane[:, cars] == lane) & ~self.crashed[:, cars]

        lead, lead_found = self._query(lane, s, ahead=True)
        gap, lv = self._gap_and_speed(lead, lead_found, s, ln, d)
        end_gap = self._lane_end_gap(lane, s, ln)
        a_now = self._idm(cars, v, np.minimum(gap, end_gap), np.where(end_gap < gap, 0.0, lv))
        # Old follower: how its acceleration changes once this car leaves.
        fol, fol_found = self._query(lane, s, ahead=False)
        fol_is_car = fol_found & (self.kind[world, fol] == CAR)
        fol_gap_now, _ = self._gap_and_speed(np.broadcast_to(idx, fol.shape), fol_is_car,
                                             self.s[world, fol], self.length[world, fol], d)
        fv = self.speed[world, fol]
        a_o_now = self._idm_of(fol, fv, fol_gap_now, v)
        gap_after = fol_gap_now + ln + np.where(np.isfinite(gap), gap, np.inf)
        a_o_after = self._idm_of(fol, fv, gap_after, lv)
        old_gain = np.where(fol_is_car, a_o_after - a_o_now, 0.0)
        # A closing lane ahead makes leaving it mandatory: a large incentive, no politeness.
        must_leave = road.lane_closes[lane] & (road.lane_end[lane] - s < 250.0)

        best_gain = np.full(s.shape, -np.inf)
        best_lane = self.target_lane[:, cars].copy()  # a change under way carries on
        for side in (-1, 1):
            cand = lane + side
            exists = road.lane_exists(cand, s) & road.lane_exists(cand, s + 30.0)
            cand_c = np.clip(cand, 0, road.lanes - 1)
            nl, nl_found = self._query(cand_c, s, ahead=True)
            ngap, nlv = self._gap_and_speed(nl, nl_found, s, ln, d)
            end = self._lane_end_gap(cand_c, s, ln)
            a_new = self._idm(cars, v, np.minimum(ngap, end), np.where(end < ngap, 0.0, nlv))
            nf, nf_found = self._query(cand_c, s, ahead=False)
            nf_gap, _ = self._gap_and_speed(np.broadcast_to(idx, nf.shape), nf_found,
                                            self.s[world, nf], self.length[world, nf], d)
            nfv = self.speed[world, nf]
            nf_moving = nf_found & (self.kind[world, nf] != STALLED) & (self.kind[world, nf] != CONE)
            a_nf_after = self._idm_of(nf, nfv, nf_gap, v)
            nf_old_gap, nf_old_v = self._gap_and_speed(nl, nl_found, self.s[world, nf],
                                                        self.length[world, nf], d)
            a_nf_now = self._idm_of(nf, nfv, nf_old_gap, nf_old_v)
            new_gain = np.where(nf_moving, a_nf_after - a_nf_now, 0.0)
            safe = (ngap > 1.0) & (nf_gap > 1.0) & (a_new > -tm.safe_decel)
            safe &= ~nf_moving | (a_nf_after > -tm.safe_decel)
            p = np.where(must_leave, 0.0, self.politeness[:, cars])
            gain = mobil_incentive(a_new - a_now, new_gain, old_gain, p)
            gain += tm.keep_right_bias * side + np.where(must_leave, 10.0, 0.0)
            ok = exists & safe & steady & (gain > tm.lane_change_threshold) & (gain > best_gain)
            best_gain = np.where(ok, gain, best_gain)
            best_lane = np.where(ok, cand, best_lane)
        self.target_lane[:, cars] = best_lane

    def _idm_of(self, ent, speed, gap, leader_speed):
        """IDM acceleration for arbitrary entities ``ent`` ``(B, K)`` (the ego and obstacles are
        given traffic-like parameters: the ego is judged as a typical driver would be)."""
        world = np.arange(self.B)[:, None]
        is_car = self.kind[world, ent] == CAR
        pick = lambda arr, default: np.where(is_car, arr[world, ent], default)  # noqa: E731
        return idm_acceleration(
            speed,
            pick(self.desired_speed, self.spec.ego.max_speed),
            gap,
            leader_speed,
            pick(self.time_headway, 1.5),
            pick(self.max_accel, 1.5),
            pick(self.comfort_decel, 2.5),
            pick(self.min_gap, 2.0),
        )

    # ------------------------------------------------------------------ recycling
    def _recycle(self) -> None:
        """Move cars that drifted beyond ``recycle_distance`` from the ego to the far edge on
        the other side, where there is room, so density around the ego holds."""
        road, tm = self.road, self.spec.traffic
        cars = self.traffic
        ego_s = self.s[:, :1]
        rel = self.s[:, cars] - ego_s
        gone = (np.abs(rel) > tm.recycle_distance) | (self.s[:, cars] > road.length - 5)
        if not gone.any():
            return
        u_lane = self.rng.uniform((self.V,))
        u_pos = self.rng.uniform((self.V,))
        behind = rel > 0  # cars that ran ahead re-enter behind, and vice versa
        edge = tm.recycle_distance - 10.0 - 60.0 * u_pos
        new_s = ego_s + np.where(behind, -edge, edge)
        lanes = road.lanes
        new_lane = np.minimum((u_lane * lanes).astype(np.int64), lanes - 1)
        ok = gone & road.lane_exists(new_lane, new_s) & (new_s > 5) & (new_s < road.length - 5)
        # Room: nothing within a safe distance in that lane, ahead or behind.
        ahead, af = self._query(new_lane, new_s, ahead=True)
        back, bf = self._query(new_lane, new_s, ahead=False)
        world = np.arange(self.B)[:, None]
        room = 15.0 + 1.5 * self.desired_speed[:, cars]
        ok &= ~af | (np.abs(self.s[world, ahead] - new_s) > room)
        ok &= ~bf | (np.abs(self.s[world, back] - new_s) > room)
        # One car per world per decision: cars moved together could land on each other.
        ok &= np.arange(self.V) == np.argmax(ok, axis=1)[:, None]
        if not ok.any():
            return
        full = np.zeros((self.B, self.N), dtype=bool)
        full[:, cars] = ok
        self.s[full] = new_s[ok]
        self.d[full] = road.lane_centre[new_lane[ok]]
        self.lane[full] = new_lane[ok]
        self.target_lane[full] = new_lane[ok]
        self.speed[full] = self.desired_speed[full] * 0.9
        self.lateral_speed[full] = 0.0
        self.crashed[full] = False
        self.brake_timer[full] = 0.0
        self._update_world_pose(slice(None), cars)
        self._build_lane_index()

    # ------------------------------------------------------------------ collisions
    def _detect_collisions(self) -> None:
        """Mark every pair of entities whose rectangles overlap as crashed.

        Broad phase: sort each world's entities by ``s`` and test each against its next few
        neighbours in that order, kept only if close in both road coordinates. Narrow phase:
        the exact separating-axis test in world coordinates.
        """
        B, N = self.B, self.N
        if N < 2:
            return
        road = self.road
        order = np.argsort(self.s, axis=1, kind="stable")
        k = min(N - 1, 4 * road.lanes + 2)
        world = np.arange(B)[:, None, None]
        i = order[:, :, None]  # (B, N, 1)
        pos = np.arange(N)[None, :, None] + np.arange(1, k + 1)[None, None, :]
        valid = pos < N
        j = order[np.arange(B)[:, None, None], np.minimum(pos, N - 1)]
        reach = 0.5 * (np.hypot(self.length, self.width))
        reach_i, reach_j = reach[world, i], reach[world, j]
        near = valid & (np.abs(self.s[world, j] - self.s[world, i]) < 1.3 * (reach_i + reach_j) + 1)
        near &= np.abs(self.d[world, j] - self.d[world, i]) < reach_i + reach_j
        static = (self.kind >= STALLED)
        near &= ~(static[world, i] & static[world, j])
        if not near.any():
            return
        w, a, b = np.nonzero(near)
        ei, ej = i[w, a, 0], j[w, a, b]
        hit = boxes_overlap(
            self.x[w, ei], self.y[w, ei], self.heading[w, ei], self.length[w, ei], self.width[w, ei],
            self.x[w, ej], self.y[w, ej], self.heading[w, ej], self.length[w, ej], self.width[w, ej],
        )
        self.crashed[w[hit], ei[hit]] = True
        self.crashed[w[hit], ej[hit]] = True

    # ------------------------------------------------------------------ ego queries
    def ego_offroad(self) -> np.ndarray:
        """``(B,)``: the ego's centre is not on any existing lane."""
        return ~self.road.drivable(self.s[:, 0], self.d[:, 0])

    def ego_lane_frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lane, lane_offset, heading_error)`` of the ego, each ``(B,)``.

        ``lane_offset`` (m) is positive right of the lane centre; ``heading_error`` (rad,
        in [-π, π)) is positive when the ego points left of the road direction.
        """
        lane = self.lane[:, 0]
        offset = self.d[:, 0] - self.road.lane_centre[lane]
        road_h = self.road.reference_pose(self.s[:, 0])[2]
        err = (self.heading[:, 0] - road_h + np.pi) % (2 * np.pi) - np.pi
        return lane, offset, err

    def leader_of_ego(self) -> tuple[np.ndarray, np.ndarray]:
        """Bumper gap (m, ``inf`` if none) and leader speed (m/s) ahead of the ego, ``(B,)``."""
        lane = self.lane[:, :1]
        s = self.s[:, :1]
        ent, found = self._query(lane, s, ahead=True)
        gap, lv = self._gap_and_speed(ent, found, s, self.length[:, :1], self.d[:, :1])
        return gap[:, 0], lv[:, 0]
