"""Action types: how an agent's action becomes the ego's steering and acceleration.

Each action type validates a batch of actions strictly (no clipping, no remapping) and then
says how the simulator drives the ego for the decision: fixed controls, or autopilot targets.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from lanesim.envs.options import Options
from lanesim.sim.world import World

# Discrete grid: front-wheel angle (rad, + left) × acceleration (m/s²).
DISCRETE_STEER = (0.08, 0.03, 0.0, -0.03, -0.08)
DISCRETE_ACCEL = (-4.0, 0.0, 2.0)

LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = range(5)
META_ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")


class ActionError(ValueError):
    """An action outside the action space."""


def _integer_actions(actions, n: int, batch: int) -> np.ndarray:
    if batch == 1 and type(actions) is int and 0 <= actions < n:  # the common single-env call
        return np.array([actions])
    a = np.asarray(actions)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise ActionError(
            f"action must be an integer in [0, {n - 1}] (Discrete({n})), got {actions!r}"
        )
    a = a.reshape(-1)
    if a.shape != (batch,) or (a < 0).any() or (a >= n).any():
        raise ActionError(
            f"action must be {'an integer' if batch == 1 else f'{batch} integers'} in "
            f"[0, {n - 1}] (Discrete({n})), got {actions!r}"
        )
    return a.astype(np.int64)


class DiscreteActions:
    """``Discrete(15)``: action ``i`` holds steering ``DISCRETE_STEER[i // 3]`` and
    acceleration ``DISCRETE_ACCEL[i % 3]`` for the whole decision."""

    def __init__(self, options: Options, world: World) -> None:
        self.world = world
        self.n = len(DISCRETE_STEER) * len(DISCRETE_ACCEL)
        self.space = spaces.Discrete(self.n)
        self.steer_table = np.array(DISCRETE_STEER)
        self.accel_table = np.array(DISCRETE_ACCEL)

    def set(self, actions) -> None:
        a = _integer_actions(actions, self.n, self.world.B)
        self.steer = self.steer_table[a // len(DISCRETE_ACCEL)]
        self.accel = self.accel_table[a % len(DISCRETE_ACCEL)]

    def reset(self, worlds: np.ndarray) -> None:
        pass

    def command(self) -> dict[str, np.ndarray]:
        """Keyword arguments for :meth:`lanesim.sim.world.World.run`."""
        return {"steer": self.steer, "accel": self.accel}


class ContinuousActions:
    """``Box(-1, 1, (2,))``: ``[steer, accel]`` scaled to the ego's steering limit and to its
    acceleration (positive) or braking (negative) limit."""

    def __init__(self, options: Options, world: World) -> None:
        self.world = world
        self.space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def set(self, actions) -> None:
        B = self.world.B
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ActionError(f"action must be a pair [steer, accel] of floats, got {actions!r}") from None
        shape = (2,) if B == 1 else (B, 2)
        if a.shape != shape and not (B == 1 and a.shape == (1, 2)):
            raise ActionError(f"action must have shape {shape} ([steer, accel]), got shape {a.shape}")
        a = a.reshape(B, 2)
        if not np.isfinite(a).all() or (np.abs(a) > 1.0).any():
            raise ActionError(f"action values must lie in [-1, 1] (Box(-1, 1, (2,))), got {actions!r}")
        em = self.world.spec.ego
        self.steer = a[:, 0] * em.max_steer
        self.accel = np.where(a[:, 1] >= 0, a[:, 1] * em.max_accel, a[:, 1] * em.max_brake)

    def reset(self, worlds: np.ndarray) -> None:
        pass

    def command(self) -> dict[str, np.ndarray]:
        """Keyword arguments for :meth:`lanesim.sim.world.World.run`."""
        return {"steer": self.steer, "accel": self.accel}


class MetaActions:
    """``Discrete(5)``: LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER, carried out by the
    simulator's lane-following autopilot (:func:`lanesim.sim.kernels.autopilot`), which tracks
    a target lane centre and a target speed at every simulation step.

    A lane change toward the road edge, or into a lane that does not exist there, keeps the
    current target lane; FASTER at the top speed and SLOWER at the bottom keep the speed.
    """

    def __init__(self, options: Options, world: World) -> None:
        self.world = world
        self.space = spaces.Discrete(5)
        self.speeds = np.array(options.meta_speeds, dtype=np.float64)
        self.target_lane = np.zeros(world.B, dtype=np.int64)
        self.speed_index = np.zeros(world.B, dtype=np.int64)

    def reset(self, worlds: np.ndarray) -> None:
        w = self.world
        self.target_lane[worlds] = w.lane[worlds, 0]
        # Start at the target speed nearest the ego's speed.
        nearest = np.abs(self.speeds[None, :] - w.speed[worlds, :1]).argmin(axis=1)
        self.speed_index[worlds] = nearest

    def set(self, actions) -> None:
        a = _integer_actions(actions, 5, self.world.B)
        w = self.world
        step = np.where(a == LANE_LEFT, -1, np.where(a == LANE_RIGHT, 1, 0))
        cand = self.target_lane + step
        ok = w.road.lane_exists(cand, w.s[:, 0])
        self.target_lane = np.where(ok, cand, self.target_lane)
        dv = np.where(a == FASTER, 1, np.where(a == SLOWER, -1, 0))
        self.speed_index = np.clip(self.speed_index + dv, 0, len(self.speeds) - 1)

    def command(self) -> dict[str, np.ndarray]:
        """The simulator's lane-following autopilot drives toward the target lane and speed."""
        return {"target_lane": self.target_lane, "target_speed": self.speeds[self.speed_index]}


def make_action(options: Options, world: World):
    """The action type named by ``options.action``."""
    return {"discrete": DiscreteActions, "meta": MetaActions, "continuous": ContinuousActions}[
        options.action
    ](options, world)
