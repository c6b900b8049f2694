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
from lanesim.envs.core import warn_if_limit_unreachable
from lanesim.envs.driving import SEED_BOUND, Scene, check_render_mode, scene_of
from lanesim.envs.netcore import make_core
from lanesim.envs.options import OptionError, make_options, with_reset_options


class DrivingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` lanesim worlds stepped together by one batched simulator.

    Made by ``gym.make_vec(id, num_envs=N, **options)`` (the registered ``vector_entry_point``)
    or directly as ``DrivingVectorEnv(N, scenario=..., **options)``. It behaves exactly like
    ``gym.make_vec(id, N, vectorization_mode="sync")`` over :class:`DrivingEnv`, only faster:

    * spaces: ``single_observation_space`` / ``single_action_space`` are the single env's;
      ``observation_space`` / ``action_space`` are them batched (a leading ``N`` axis). Pixel,
      camera and bird's-eye observations are ``(N, frame_stack, H, W)`` uint8 (``(N, 3 ×
      frame_stack, H, W)`` in colour), one frame stack per sub-environment.
    * autoreset: the ``autoreset_mode`` keyword (an ``AutoresetMode`` or its value), also the
      ``autoreset_mode`` attribute and ``metadata["autoreset_mode"]``, as for Gymnasium's
      ``SyncVectorEnv``:

      - ``NEXT_STEP`` (default): the step after a sub-environment terminates or truncates
        resets it: its action is ignored (not even validated), and it returns the first
        observation of the new episode, reward ``0``, ``terminated = truncated = False`` and
        the reset ``info``.
      - ``SAME_STEP``: the step that ends an episode resets that sub-environment at once: it
        returns the ending step's reward, ``terminated`` and ``truncated``, the new episode's
        first observation and its reset info; the last observation and info are in
        ``info["final_obs"]`` (an object array, None for the others) and ``info["final_info"]``
        (masked by ``info["_final_obs"]`` and ``info["_final_info"]``).
      - ``DISABLED``: no autoreset; stepping an ended sub-environment raises ``ResetNeeded``
        until ``reset(options={"reset_mask": ...})`` resets it.
    * ``max_episode_steps``: truncate after that many decisions, exactly as
      ``gym.make(id, max_episode_steps=...)``'s ``TimeLimit`` does (``duration`` still applies:
      whichever comes first).
    * info: a dict of ``(N,)`` arrays (``traffic_collisions`` counts per world), with
      ``info["rewards"]`` a dict of per-term arrays, and
      every key ``k`` paired with a boolean mask ``"_k"`` (Gymnasium's convention: which
      sub-environments report ``k``; here all of them, except after a masked reset and for
      ``final_obs`` / ``final_info``).
    * seeding: ``reset(seed=s)`` seeds sub-environment ``i`` with ``s + i`` (a list gives one seed
      per sub-environment, ``None`` entries keep that one's generator), which reproduces exactly
      ``DrivingEnv.reset(seed=s + i)`` and every episode that follows it, autoresets included.
      ``reset(options={"reset_mask": mask})`` resets only the sub-environments where ``mask``.
    * ``reset(options={...})`` takes the single env's per-episode options
      (:data:`~lanesim.envs.options.RESET_OPTIONS`) for every sub-environment, and they stay for
      the episodes that follow, autoresets included. They rebuild the shared simulator, so
      they need a reset of every sub-environment: with a ``reset_mask`` they are refused.
    * ``render()`` draws the first sub-environment (``render_mode="rgb_array"`` only), with its
      reward and info; :attr:`viewer` is its viewer.
    * ``scene(i)`` is sub-environment ``i``'s :class:`~lanesim.envs.driving.Scene`, the same
      snapshot as the single env's ``scene()`` (one world per call: a planner plans one).

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
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        **options: Any,
    ):
        if not _positive_int(num_envs):
            raise OptionError(f"num_envs must be a positive integer, got {num_envs!r}")
        check_render_mode(render_mode, self.metadata["render_modes"])
        if max_episode_steps is not None and not _positive_int(max_episode_steps):
            raise OptionError(
                f"max_episode_steps must be a positive integer or None, got {max_episode_steps!r}"
            )
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise OptionError(
                f"autoreset_mode must be an AutoresetMode or one of "
                f"{', '.join(repr(m.value) for m in AutoresetMode)}, got {autoreset_mode!r}"
            ) from None
        self.options = make_options(scenario, **options)
        self.scenario = scenario
        self.num_envs = int(num_envs)
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        warn_if_limit_unreachable(self.options, self.max_episode_steps)
        self.core = make_core(self.options, self.num_envs, self.max_episode_steps)
        self.world = self.core.world
        self.single_observation_space = self.core.observation.space
        self.single_action_space = self.core.action.space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.metadata = dict(
            self.metadata, render_fps=self.options.policy_hz, autoreset_mode=self.autoreset_mode
        )
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
            if not worlds.all():
                raise OptionError(
                    f"reset(options=...) with {sorted(options)} changes every sub-environment: "
                    "reset them all (no reset_mask) to change options"
                )
            self._apply_options(with_reset_options(self.options, options))
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

    def _apply_options(self, options) -> None:
        """Rebuild the shared worlds for new per-episode options (the spaces stay the same)."""
        warn_if_limit_unreachable(options, self.max_episode_steps)
        self.options = options
        self.core = make_core(options, self.num_envs, self.max_episode_steps)
        self.world = self.core.world
        if self._viewer is not None:  # it draws the old world
            self._viewer.close()
            self._viewer = None

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
        actions = self.check_actions(actions)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            return self._step_same_step(actions)
        resetting = self._needs_reset
        any_reset = bool(resetting.any())
        if any_reset and self.autoreset_mode == AutoresetMode.DISABLED:
            raise ResetNeeded(
                f"sub-environments {np.flatnonzero(resetting).tolist()} ended and autoreset_mode "
                "is 'disabled': reset them with reset(options={'reset_mask': mask}) first"
            )
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

    def _step_same_step(self, actions):
        """Step, then reset the worlds that ended in the same call (``SyncVectorEnv``'s
        ``SAME_STEP`` layout: ``final_obs`` and ``final_info`` keep the ended episodes' last)."""
        obs, reward, terminated, truncated = self.core.step(actions)
        ended = terminated | truncated
        final = None
        if ended.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final_obs[i] = obs[i].copy()  # not a view of the batch
            final_info = _with_masks(self.core.info(), self.num_envs, ended)
            final = {"final_obs": final_obs, "final_info": final_info}
        if self._viewer is not None:  # it shows sub-environment 0: its decision, then its reset
            self._viewer.on_decision(float(reward[0]), _row(self.core.info(), 0))
        if final is not None:
            obs = self.core.reset(ended, self._world_seeds(ended))
            if self._viewer is not None and ended[0]:
                self._viewer.on_reset()
        info = _with_masks(self.core.info(), self.num_envs)
        if final is not None:
            for key, value in final.items():
                info[key] = value
                info[f"_{key}"] = ended.copy()
        return obs, reward, terminated, truncated, info

    def check_actions(self, actions) -> np.ndarray:
        """``actions`` as an array of the batched action space's shape, or an ``ActionError``
        that says what was expected. Only the batch layout is checked here; the values are the
        simulator core's to validate when it steps."""
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

    def scene(self, index: int = 0) -> Scene:
        """Sub-environment ``index``'s :class:`~lanesim.envs.driving.Scene` (a snapshot of its
        vehicles, obstacles, lanes, time and meta-action targets)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not (
            0 <= index < self.num_envs
        ):
            raise IndexError(
                f"scene(index): index must be an integer in [0, {self.num_envs - 1}], "
                f"got {index!r}"
            )
        return scene_of(self.core, int(index))

    # ------------------------------------------------------------------ rendering
    @property
    def viewer(self):
        """The :class:`~lanesim.render.viewer.Viewer` drawing sub-environment 0: None until the
        first ``render()`` (and again after ``close()``)."""
        return self._viewer

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


def _positive_int(value) -> bool:
    """Whether ``value`` is an integer >= 1 (a bool is no integer here)."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= 1


def _row(info: dict, i: int) -> dict:
    """Sub-environment ``i``'s info as a single env reports it (Python scalars)."""
    return {k: _row(v, i) if isinstance(v, dict) else v[i].item() for k, v in info.items()}


def _with_masks(info: dict, num_envs: int, present: np.ndarray | None = None) -> dict:
    """Gymnasium's vector info layout: each key ``k`` gets a bool mask ``"_k"`` of the
    sub-environments that report it (all of them unless ``present`` says otherwise); as in
    ``SyncVectorEnv``, the rows of the others are zero."""
    out = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = _with_masks(value, num_envs, present)
        else:
            out[key] = value if present is None else np.where(present, value, 0).astype(value.dtype)
        out[f"_{key}"] = np.ones(num_envs, dtype=bool) if present is None else present.copy()
    return out
