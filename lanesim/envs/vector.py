"""The batched lanesim environment, :class:`DrivingVectorEnv` (Gymnasium's vector API)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from lanesim.envs.core import DrivingCore
from lanesim.envs.driving import SEED_BOUND
from lanesim.envs.options import OptionError, make_options


class DrivingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` lanesim worlds stepped by one batched simulator.

    Follows Gymnasium 1.x: batched spaces, next-step autoreset (the step after an episode ends
    resets that sub-environment and ignores its action), info as a dict of arrays.
    ``reset(seed=s)`` seeds sub-environment ``i`` with ``s + i``, reproducing exactly
    ``DrivingEnv.reset(seed=s + i)`` and the episodes that follow it.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15, "autoreset_mode": None}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, scenario: str | None = None, **options):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise OptionError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode not in (None, "rgb_array"):
            raise OptionError(f"render_mode must be 'rgb_array' or None for the vector env, got {render_mode!r}")
        self.options = make_options(scenario, **options)
        self.num_envs = int(num_envs)
        self.core = DrivingCore(self.options, self.num_envs)
        self.world = self.core.world
        self.single_observation_space = self.core.observation.space
        self.single_action_space = self.core.action.space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=int(round(self.options.sim_hz)))
        self.metadata["autoreset_mode"] = _next_step_mode()
        self._rngs = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._viewer = None

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if options:
            raise OptionError(f"reset(options=...) is not supported (got {sorted(options)})")
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise OptionError(f"reset(seed=...) needs {self.num_envs} seeds, got {len(seeds)}")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        all_worlds = np.ones(self.num_envs, dtype=bool)
        obs = self.core.reset(all_worlds, self._world_seeds(all_worlds))
        self._needs_reset[:] = False
        info = self.core._info(np.zeros((len(self.core.weights), self.num_envs)))
        return obs, info

    def _world_seeds(self, worlds: np.ndarray) -> np.ndarray:
        # Drawn exactly as DrivingEnv.reset draws its world seed from np_random.
        return np.array([self._rngs[i].integers(0, SEED_BOUND) for i in np.flatnonzero(worlds)])

    def step(self, actions):
        resetting = self._needs_reset.copy()
        if resetting.any():
            actions = self._fill_ignored(actions, resetting)
        obs, reward, terminated, truncated, info = self.core.step(actions)
        if resetting.any():
            obs = self.core.reset(resetting, self._world_seeds(resetting))
            reward[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
        self._needs_reset = terminated | truncated
        return obs, reward, terminated, truncated, info

    def _fill_ignored(self, actions, resetting):
        """Sub-envs that reset this step ignore their action; give the core a valid one."""
        a = np.array(actions, copy=True)
        if a.dtype.kind in "iu":
            a[resetting] = 0
        elif a.dtype.kind == "f":
            a[resetting] = 0.0
        return a

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        if self._viewer is None:
            from lanesim.render.viewer import Viewer

            self._viewer = Viewer(self, mode="rgb_array")
        return self._viewer.render()

    def close_extras(self, **kwargs):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


def _next_step_mode():
    mode = getattr(gym.vector, "AutoresetMode", None)
    return mode.NEXT_STEP if mode is not None else "NextStep"
