"""The batched lanesim environment, :class:`DrivingVectorEnv` (Gymnasium's vector API)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from lanesim.envs.actions import ActionError
from lanesim.envs.core import DrivingCore
from lanesim.envs.driving import SEED_BOUND
from lanesim.envs.options import OptionError, make_options


class DrivingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` lanesim worlds stepped together by one batched simulator.

    Made by ``gym.make_vec(id, num_envs=N, **options)`` (the registered ``vector_entry_point``)
    or directly as ``DrivingVectorEnv(N, scenario=..., **options)``. It behaves exactly like
    ``gym.make_vec(id, N, vectorization_mode="sync")`` over :class:`DrivingEnv`, only faster:

    * spaces: ``single_observation_space`` / ``single_action_space`` are the single env's;
      ``observation_space`` / ``action_space`` are them batched (a leading ``N`` axis). Pixel
      observations are ``(N, frame_stack, H, W)`` uint8, one frame stack per sub-environment.
    * autoreset: ``metadata["autoreset_mode"]`` is ``AutoresetMode.NEXT_STEP``. The step after a
      sub-environment terminates or truncates resets it: its action is ignored (not even
      validated), and it returns the first observation of the new episode, reward ``0``,
      ``terminated = truncated = False`` and the reset ``info``.
    * info: a dict of ``(N,)`` arrays (``traffic_collisions`` counts per world), with
      ``info["rewards"]`` a dict of per-term arrays, and every key ``k`` paired with a boolean
      mask ``"_k"`` (Gymnasium's convention: which
      sub-environments report ``k``; here always all of them, except after a masked reset).
    * seeding: ``reset(seed=s)`` seeds sub-environment ``i`` with ``s + i`` (a list gives one seed
      per sub-environment, ``None`` entries keep that one's generator), which reproduces exactly
      ``DrivingEnv.reset(seed=s + i)`` and every episode that follows it, autoresets included.
      ``reset(options={"reset_mask": mask})`` resets only the sub-environments where ``mask``.
    * ``render()`` draws the first sub-environment (``render_mode="rgb_array"`` only), with its
      reward and info.

    Actions must have the batched action space's shape; an action outside the single action
    space raises :class:`~lanesim.envs.actions.ActionError`.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 15,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }
    _viewer = None  # also there when __init__ failed: gymnasium 1.2's __del__ calls close()

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        scenario: str | None = None,
        **options: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise OptionError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode not in (None, "rgb_array"):
            raise OptionError(
                f"render_mode must be 'rgb_array' or None for the vector env, got {render_mode!r}"
            )
        self.options = make_options(scenario, **options)
        self.scenario = scenario
        self.num_envs = int(num_envs)
        self.core = DrivingCore(self.options, self.num_envs)
        self.world = self.core.world
        self.single_observation_space = self.core.observation.space
        self.single_action_space = self.core.action.space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=self.options.policy_hz)
        # One generator per sub-environment, drawn from exactly as DrivingEnv draws its own.
        self._rngs = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._started = False

    # ------------------------------------------------------------------ reset
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        worlds = np.ones(self.num_envs, dtype=bool)
        options = dict(options or {})
        if "reset_mask" in options:
            worlds = self._check_reset_mask(options.pop("reset_mask"))
        if options:
            raise OptionError(
                f"reset(options=...) is not supported (got {sorted(options)}); "
                "pass options to gym.make_vec instead"
            )
        if not self._started and not worlds.all():
            raise ResetNeeded("the first reset() must reset every sub-environment (no reset_mask)")
        for i, s in enumerate(self._seed_list(seed)):
            if s is not None and worlds[i]:
                self._rngs[i] = seeding.np_random(s)[0]
        obs = self.core.reset(worlds, self._world_seeds(worlds))
        self._needs_reset[worlds] = False
        self._started = True
        info = self.core.info()
        if self._viewer is not None and worlds[0]:
            self._viewer.on_reset()
        return obs, _with_masks(info, self.num_envs, worlds)

    def _seed_list(self, seed) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise OptionError(
                f"reset(seed=...) with a list needs one seed per sub-environment "
                f"({self.num_envs}), got {len(seeds)}"
            )
        return [None if s is None else int(s) if isinstance(s, np.integer) else s for s in seeds]

    def _check_reset_mask(self, mask) -> np.ndarray:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise OptionError(
                f"options['reset_mask'] must be a numpy bool array of shape ({self.num_envs},), "
                f"got {mask!r}"
            )
        if mask.shape != (self.num_envs,):
            raise OptionError(
                f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}"
            )
        if not mask.any():
            raise OptionError("options['reset_mask'] must select at least one sub-environment")
        return mask.copy()

    def _world_seeds(self, worlds: np.ndarray) -> np.ndarray:
        # Drawn exactly as DrivingEnv.reset draws its world seed from its np_random.
        return np.array(
            [self._rngs[i].integers(0, SEED_BOUND) for i in np.flatnonzero(worlds)],
            dtype=np.int64,
        )

    # ------------------------------------------------------------------ step
    def step(self, actions):
        if not self._started:
            raise ResetNeeded("call reset() before step()")
        actions = self._check_shape(actions)
        resetting = self._needs_reset
        any_reset = bool(resetting.any())
        if any_reset:
            # Those sub-environments ignore their action; hand the core a valid one instead.
            actions = np.array(actions, copy=True)
            actions[resetting] = 0
        obs, reward, terminated, truncated = self.core.step(actions)
        if any_reset:
            # The core's terms and info of these worlds become the new episode's.
            obs = self.core.reset(resetting, self._world_seeds(resetting))
            reward[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
        info = self.core.info()
        self._needs_reset = terminated | truncated
        if self._viewer is not None:  # it shows sub-environment 0
            if resetting[0]:
                self._viewer.on_reset()
            else:
                self._viewer.on_decision(float(reward[0]), _row(info, 0))
        return obs, reward, terminated, truncated, _with_masks(info, self.num_envs)

    def _check_shape(self, actions) -> np.ndarray:
        """Only the batch layout is checked here; values are the core's to validate."""
        want = self.action_space.shape
        try:
            a = np.asarray(actions)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != want:
            got = "a ragged sequence" if a is None else f"shape {a.shape}"
            one = (
                "an integer action"
                if isinstance(self.single_action_space, gym.spaces.Discrete)
                else f"an action of shape {self.single_action_space.shape}"
            )
            raise ActionError(
                f"actions must have shape {want}: {one} for each of the {self.num_envs} "
                f"sub-environments, got {got}"
            )
        return a

    # ------------------------------------------------------------------ rendering
    def render(self):
        """An RGB frame of the first sub-environment (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        if self._viewer is None:
            from lanesim.render.viewer import Viewer

            self._viewer = Viewer(self, mode="rgb_array")
        return self._viewer.render()

    def close_extras(self, **kwargs: Any) -> None:
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


def _row(info: dict, i: int) -> dict:
    """Sub-environment ``i``'s info as a single env reports it (Python scalars)."""
    return {k: _row(v, i) if isinstance(v, dict) else v[i].item() for k, v in info.items()}


def _with_masks(info: dict, num_envs: int, present: np.ndarray | None = None) -> dict:
    """Gymnasium's vector info layout: each key ``k`` gets a bool mask ``"_k"`` of the
    sub-environments that report it (all of them unless ``present`` says otherwise)."""
    out = {}
    for key, value in info.items():
        out[key] = _with_masks(value, num_envs, present) if isinstance(value, dict) else value
        out[f"_{key}"] = np.ones(num_envs, dtype=bool) if present is None else present.copy()
    return out
