"""The Gymnasium-facing core, batched: options -> world, actions -> controls, state -> rewards.

:class:`DrivingCore` runs ``B`` worlds. The single environment uses ``B = 1`` and the vector
environment ``B = num_envs``; both are thin wrappers over it, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lanesim.envs.actions import make_action
from lanesim.envs.observations import make_observation
from lanesim.envs.options import REWARD_TERMS, Options
from lanesim.sim.road import LaneSpan, Road, Segment
from lanesim.sim.world import CONE, STALLED, EgoModel, Obstacle, TrafficModel, World, WorldSpec

CONE_SPACING = 5.0  # m between cones along a closure taper
DEFAULT_TAPER = 60.0  # m


def build_spec(o: Options) -> WorldSpec:
    """The simulator's description of the scenario in ``o``."""
    ego = EgoModel()
    pattern = [Segment(seg["length"], 1.0 / seg["radius"] if "radius" in seg else 0.0) for seg in o.road]
    # Long enough that the ego cannot reach the end and traffic always has room ahead.
    needed = o.ego_start + ego.max_speed * o.duration + 2 * o.recycle_distance
    segments = list(pattern)
    while o.repeat_road and sum(s.length for s in segments) < needed:
        segments += pattern
    length = sum(s.length for s in segments)
    spans = [LaneSpan(0.0, length) for _ in range(o.lanes)]
    spans += [LaneSpan(r["start"], min(r["start"] + r["length"], length)) for r in o.ramp]
    obstacles = []
    for c in o.closures:
        lane, start = c["lane"], c["start"]
        taper = c.get("taper", DEFAULT_TAPER)
        spans[lane] = LaneSpan(spans[lane].start, min(spans[lane].end, start + taper), taper)
        half = 0.5 * o.lane_width - 0.4
        n = max(int(taper // CONE_SPACING) + 1, 2)
        # Cones run from the lane's outer side across it, so they never block the open lane.
        outer = -1.0 if lane == 0 else 1.0
        for i in range(n):
            f = i / (n - 1)
            obstacles.append(Obstacle(CONE, lane, start + f * taper, outer * half * (1 - 2 * f)))
    obstacles += [Obstacle(STALLED, c["lane"], c["s"]) for c in o.stalled]
    road = Road(segments, o.lanes + len(o.ramp), o.lane_width, spans)
    traffic = TrafficModel(
        vehicles=o.vehicles,
        desired_speed=tuple(o.traffic_speed),
        politeness=tuple(o.traffic_politeness),
        brake_rate=o.traffic_brake_rate,
        spawn_spacing=o.spawn_spacing,
        recycle_distance=o.recycle_distance,
    )
    return WorldSpec(
        road=road,
        ego=ego,
        traffic=traffic,
        obstacles=tuple(obstacles),
        sim_hz=o.sim_hz,
        ego_start=o.ego_start,
        ego_lanes=tuple(o.ego_lanes),
        ego_speed=tuple(o.ego_speed),
    )


class DrivingCore:
    """``B`` driving worlds behind one action, observation and reward definition.

    Args:
        options: validated options.
        n_worlds: B.
    """

    def __init__(self, options: Options, n_worlds: int) -> None:
        self.options = options
        self.spec = build_spec(options)
        self.world = World(self.spec, n_worlds)
        self.B = n_worlds
        self.action = make_action(options, self.world)
        self.observation = make_observation(options, self.world)
        self.weights = np.array([options.rewards[t] for t in REWARD_TERMS])
        self.frames = options.frames_per_decision
        self.start_s = np.zeros(n_worlds)
        self.prev_controls = np.zeros((n_worlds, 2))
        self.crashed = np.zeros(n_worlds, dtype=bool)
        self.offroad = np.zeros(n_worlds, dtype=bool)

    def reset(self, worlds: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Reset ``worlds`` (bool ``(B,)``) with ``seeds`` (``(W,)`` ints); returns all obs."""
        w = self.world
        w.reset(worlds, seeds)
        self.action.reset(worlds)
        self.start_s[worlds] = w.s[worlds, 0]
        self.prev_controls[worlds] = 0.0
        self.crashed[worlds] = False
        self.offroad[worlds] = False
        return self.observation.reset(worlds)

    def step(self, actions, on_frame: Callable[[], None] | None = None):
        """One decision: validate ``actions``, run ``frames_per_decision`` simulation steps.

        ``on_frame`` is called after every simulation step (for rendering and video); without
        it the whole decision runs in one compiled call.
        Returns ``(obs, reward (B,), terminated (B,), truncated (B,), info)``; ``info`` holds
        arrays ``(B,)`` and ``rewards``, a dict of per-term arrays.
        """
        self.action.set(actions)
        w = self.world
        em = self.spec.ego
        lane_before = w.lane[:, 0].copy()
        if on_frame is None:
            trace = w.run(self.frames, **self.action.command())
        else:
            parts = []
            for _ in range(self.frames):
                parts.append(w.run(1, **self.action.command()))
                on_frame()
            trace = type(parts[0])(*(np.concatenate(f, axis=1) for f in zip(*parts, strict=True)))
        terms = np.zeros((len(REWARD_TERMS), self.B))
        keep, progress = self._shaping(trace)
        terms[0] = keep.mean(axis=1)
        terms[1] = progress.mean(axis=1)
        self.crashed |= trace.crashed[:, -1]
        self.offroad |= trace.offroad.any(axis=1)
        terms[2] = self.crashed
        terms[3] = self.offroad & ~self.crashed
        lanes = np.concatenate([lane_before[:, None], trace.lane], axis=1)
        terms[4] = np.abs(np.diff(lanes, axis=1)).sum(axis=1)
        controls = np.stack([w.steer / em.max_steer, w.accel / (em.max_accel + em.max_brake)], 1)
        terms[5] = ((controls - self.prev_controls) ** 2).sum(axis=1)
        self.prev_controls = controls
        weighted = terms * self.weights[:, None]
        reward = weighted.sum(axis=0)
        terminated = self.crashed | self.offroad
        truncated = (w.time >= self.options.duration - 1e-9) & ~terminated
        obs = self.observation()
        ego = (trace.lane[:, -1], trace.lane_offset[:, -1], trace.heading_error[:, -1])
        return obs, reward, terminated, truncated, self._info(weighted, ego)

    def _shaping(self, trace) -> tuple[np.ndarray, np.ndarray]:
        """Per-step lane keeping and progress ``(B, frames)``, in [0, 1] and [-1, 1].

        Progress is the speed along the road over ``reward_speed``: stopping earns nothing and
        driving against the road costs. Lane keeping rewards a centred, aligned car but is scaled
        by forward progress, so a car parked on the lane centre earns nothing from it.
        """
        # np.minimum/np.maximum: np.clip's wrapper costs more than the arithmetic here.
        progress = np.minimum(np.maximum(trace.speed_along / self.options.reward_speed, -1.0), 1.0)
        half_lane = 0.5 * self.world.road.lane_width
        centred = np.maximum(0.0, 1.0 - (trace.lane_offset / half_lane) ** 2)
        aligned = np.maximum(0.0, np.cos(trace.heading_error))
        keep = centred * aligned * np.maximum(progress, 0.0)
        return keep, progress

    def _info(self, weighted: np.ndarray, ego: tuple | None = None) -> dict:
        """Info arrays ``(B,)``; ``ego`` is ``(lane, lane_offset, heading_error)`` if known."""
        w = self.world
        lane, offset, err = w.ego_lane_frame() if ego is None else ego
        gap, leader_speed = w.leader_of_ego()
        closing = w.speed[:, 0] - leader_speed
        with np.errstate(divide="ignore", invalid="ignore"):
            headway = np.where(w.speed[:, 0] > 0.1, gap / w.speed[:, 0], np.inf)
            ttc = np.where(closing > 1e-6, gap / closing, np.inf)
        return {
            "rewards": {t: weighted[i] for i, t in enumerate(REWARD_TERMS)},
            "crashed": self.crashed.copy(),
            "offroad": self.offroad.copy(),
            "speed": w.speed[:, 0].copy(),
            "lane": lane.copy(),
            "lane_offset": offset,
            "heading_error": err,
            "distance": w.s[:, 0] - self.start_s,
            "headway": headway,
            "time_to_collision": ttc,
        }
