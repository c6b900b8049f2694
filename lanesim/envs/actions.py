"""Action types: how an agent's action becomes the ego's steering and acceleration.

Each action type validates a batch of actions strictly (no clipping, no remapping) and then
says how the simulator drives the ego for the decision: fixed controls, or autopilot targets.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from lanesim.envs.options import Options
from lanesim.sim.jit import compiled_for, kernel
from lanesim.sim.lane_index import lane_exists
from lanesim.sim.state import COMMAND_ACCEL, COMMAND_LANE, COMMAND_SPEED, COMMAND_STEER, S
from lanesim.sim.world import World

# Discrete grid: front-wheel angle (rad, + left) × acceleration (m/s²).
DISCRETE_STEER = (0.08, 0.03, 0.0, -0.03, -0.08)
DISCRETE_ACCEL = (-4.0, 0.0, 2.0)

LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = range(5)
META_ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")


class ActionError(ValueError):
    """An action outside the action space."""


def integer_actions(actions, n: int, batch: int, batched: bool) -> np.ndarray:
    """The one check of ``Discrete(n)`` actions: ``actions`` as ``(batch,)`` int64 in
    ``[0, n)``: one integer (a Python or numpy integer, or a 0-d integer array) when not
    ``batched``, else an integer array of shape ``(batch,)``. Anything else, bools, lists and
    nested arrays included, raises ActionError."""
    if (
        not batched
        and isinstance(actions, int | np.integer)
        and not isinstance(actions, bool)
        and 0 <= actions < n
    ):  # the common single-env call
        return np.array([actions], dtype=np.int64)
    what = (
        f"{batch} integers (shape ({batch},))" if batched else "an integer"
    ) + f" in [0, {n - 1}] (Discrete({n}))"
    a = actions if isinstance(actions, np.ndarray) else None
    if a is None and batched and isinstance(actions, list | tuple):
        a = _as_array(actions)
    if (
        a is None
        or a.dtype == bool
        or not np.issubdtype(a.dtype, np.integer)
        or a.shape != ((batch,) if batched else ())
        or (a < 0).any()
        or (a >= n).any()
    ):
        raise ActionError(f"action must be {what}, got {actions!r}")
    return a.reshape(batch).astype(np.int64)


def _as_array(actions) -> np.ndarray | None:
    """``actions`` as an array, or None if numpy cannot make a regular one of them."""
    try:
        return np.asarray(actions)
    except (TypeError, ValueError):
        return None


def _holds_bool(actions) -> bool:
    """Whether a list or tuple of numbers (or of such lists) holds a bool, which numpy would
    quietly turn into 0 or 1."""
    if isinstance(actions, bool | np.bool_):
        return True
    return isinstance(actions, list | tuple) and any(_holds_bool(x) for x in actions)


class DiscreteActions:
    """``Discrete(15)``: action ``i`` holds steering ``DISCRETE_STEER[i // 3]`` and
    acceleration ``DISCRETE_ACCEL[i % 3]`` for the whole decision."""

    def __init__(self, options: Options, world: World) -> None:
        self.world = world
        self.n = len(DISCRETE_STEER) * len(DISCRETE_ACCEL)
        self.space = spaces.Discrete(self.n)
        self.steer_table = np.array(DISCRETE_STEER)
        self.accel_table = np.array(DISCRETE_ACCEL)

    def set(self, actions, batched: bool) -> None:
        """Validate ``actions`` (one action, or ``(B,)`` when ``batched``) and make them the
        world's command for the next decision."""
        a = integer_actions(actions, self.n, self.world.B, batched)
        command = self.world.command
        command[COMMAND_STEER] = self.steer_table[a // len(DISCRETE_ACCEL)]
        command[COMMAND_ACCEL] = self.accel_table[a % len(DISCRETE_ACCEL)]
        self.world.autopilot[:] = False

    def reset(self, worlds: np.ndarray) -> None:
        pass


class ContinuousActions:
    """``Box(-1, 1, (2,))``: ``[steer, accel]`` scaled to the ego's steering limit and to its
    acceleration (positive) or braking (negative) limit."""

    def __init__(self, options: Options, world: World) -> None:
        self.world = world
        self.space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        em = world.spec.ego
        # The scaling kernel without numba's per-call dispatch (always a float (B, 2) action,
        # the ego's limits, the world's command).
        self._scale_args = (em.max_steer, em.max_accel, em.max_brake, world.command)
        self._scale = compiled_for(_continuous_command, np.zeros((world.B, 2)),
                                   *self._scale_args)

    def set(self, actions, batched: bool) -> None:
        """Validate ``actions`` (``(2,)``, or ``(B, 2)`` when ``batched``) and make them the
        world's command for the next decision."""
        B = self.world.B
        a = _as_array(actions)
        # Integers are exact in float64; bools, strings and objects are not numbers here.
        if a is None or a.dtype.kind not in "iuf" or _holds_bool(actions):
            raise ActionError(
                f"action must be a pair [steer, accel] of floats, got {actions!r}"
            )
        shape = (B, 2) if batched else (2,)
        if a.shape != shape:
            raise ActionError(
                f"action must have shape {shape} ([steer, accel]), got shape {a.shape}"
            )
        # C order: the compiled kernel below reads rows (a transposed array would be misread).
        a = np.ascontiguousarray(a, dtype=np.float64).reshape(B, 2)
        if not self._scale(a, *self._scale_args):
            raise ActionError(
                f"action values must lie in [-1, 1] (Box(-1, 1, (2,))), got {actions!r}"
            )
        self.world.autopilot[:] = False

    def reset(self, worlds: np.ndarray) -> None:
        pass


@kernel
def _continuous_command(a, max_steer, max_accel, max_brake, command):
    """Scale ``a`` ``(B, 2)`` into ``command``; False (and nothing written) if any value is
    outside [-1, 1] or not a number."""
    for b in range(a.shape[0]):
        if not (abs(a[b, 0]) <= 1.0 and abs(a[b, 1]) <= 1.0):
            return False
    for b in range(a.shape[0]):
        command[COMMAND_STEER, b] = a[b, 0] * max_steer
        command[COMMAND_ACCEL, b] = a[b, 1] * (max_accel if a[b, 1] >= 0 else max_brake)
    return True


class MetaActions:
    """``Discrete(5)``: LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER, carried out by the
    simulator's lane-following autopilot (:func:`lanesim.sim.ego.autopilot`), which tracks
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
        # The command kernel without numba's per-call dispatch (int64 actions, these arrays).
        self._command_args = (self.target_lane, self.speed_index, self.speeds, world.F,
                              world.road.lane_start, world.road.lane_end, world.command)
        self._command = compiled_for(_meta_command, np.zeros(world.B, dtype=np.int64),
                                     *self._command_args)

    def reset(self, worlds: np.ndarray) -> None:
        w = self.world
        self.target_lane[worlds] = w.lane[worlds, 0]
        # Start at the target speed nearest the ego's speed.
        nearest = np.abs(self.speeds[None, :] - w.speed[worlds, :1]).argmin(axis=1)
        self.speed_index[worlds] = nearest

    def set(self, actions, batched: bool) -> None:
        """Validate ``actions`` (one action, or ``(B,)`` when ``batched``), update the targets
        and hand them to the world's autopilot."""
        a = integer_actions(actions, 5, self.world.B, batched)
        self._command(a, *self._command_args)
        self.world.autopilot[:] = True


@kernel
def _meta_command(actions, target_lane, speed_index, speeds, F, lane_start, lane_end, command):
    """Apply meta ``actions`` ``(B,)`` to the targets and write them into ``command``."""
    for b in range(actions.shape[0]):
        a = actions[b]
        step = -1 if a == LANE_LEFT else (1 if a == LANE_RIGHT else 0)
        if lane_exists(lane_start, lane_end, target_lane[b] + step, F[S, b, 0]):
            target_lane[b] += step
        dv = 1 if a == FASTER else (-1 if a == SLOWER else 0)
        speed_index[b] = min(max(speed_index[b] + dv, 0), speeds.shape[0] - 1)
        command[COMMAND_LANE, b] = target_lane[b]
        command[COMMAND_SPEED, b] = speeds[speed_index[b]]


def make_action(options: Options, world: World):
    """The action type named by ``options.action``."""
    return {"discrete": DiscreteActions, "meta": MetaActions, "continuous": ContinuousActions}[
        options.action
    ](options, world)
