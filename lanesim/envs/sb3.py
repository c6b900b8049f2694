"""Stable-Baselines3 on the batched simulator: :class:`SB3VecEnv` and :func:`make_sb3_vec_env`.

SB3 algorithms take their own ``VecEnv``, not a Gymnasium ``VectorEnv``, and expect its
conventions: ``step_async`` / ``step_wait``, ``reset()`` returning observations only, a list of
info dicts, and a sub-environment that ends an episode reset *in the same step*, its last
observation kept in ``info["terminal_observation"]`` (``info["TimeLimit.truncated"]`` tells a
time limit from a real end). :class:`SB3VecEnv` gives exactly that, driving the
:class:`~lanesim.envs.core.DrivingCore` of a :class:`~lanesim.envs.vector.DrivingVectorEnv`
directly, so all sub-environments still step in one batched simulator call.

It reproduces ``DummyVecEnv([lambda: gym.make(id, **options)] * N)`` exactly: after
``seed(s)``, sub-environment ``i`` is seeded ``s + i`` at the next ``reset()``, and every episode
after that is the one a single :class:`~lanesim.envs.driving.DrivingEnv` would play.

Pixel observations are channel-first ``(frame_stack, H, W)`` uint8 in [0, 255], which SB3 treats
as an image already in PyTorch's layout: ``CnnPolicy`` scales it by 1/255 and applies no
``VecTransposeImage``.

Example::

    from stable_baselines3 import PPO
    from lanesim.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("lanesim/Highway-v0", num_envs=16, seed=0, policy_hz=1)
    PPO("MlpPolicy", venv).learn(100_000)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from lanesim.envs.options import IMAGE_OBSERVATIONS, OptionError, refuse_reset_options
from lanesim.envs.vector import DrivingVectorEnv

# A sub-environment's attribute names whose per-sub-environment value is the vector env's
# "single_" attribute (SB3 asks sub-environments for their own, unbatched, spaces).
_SINGLE = {"observation_space": "single_observation_space", "action_space": "single_action_space"}


class SB3VecEnv(VecEnv):
    """A Stable-Baselines3 ``VecEnv`` over a :class:`DrivingVectorEnv`'s batched simulator.

    Args:
        vector_env: an unwrapped ``DrivingVectorEnv`` (``gym.make_vec(id, num_envs=N, ...)``).
            The adapter takes it over: step and reset it only through the adapter from then on.

    Sub-environments share one simulator and one set of options, so ``get_attr`` returns the
    shared value for each index, ``set_attr`` only accepts all indices, and ``env_method``
    calls the vector env's method once and returns its result for each index.
    """

    def __init__(self, vector_env: DrivingVectorEnv) -> None:
        if not isinstance(vector_env, DrivingVectorEnv):
            raise TypeError(
                "SB3VecEnv needs an unwrapped lanesim DrivingVectorEnv "
                f"(gym.make_vec(id, num_envs=N, ...)), got {type(vector_env).__name__}; "
                "Gymnasium vector wrappers cannot be carried over to SB3"
            )
        self.venv = vector_env
        obs_space = vector_env.single_observation_space
        if vector_env.options.observation in IMAGE_OBSERVATIONS and obs_space.shape[0] > min(
            obs_space.shape[1:]
        ):
            warnings.warn(
                f"image observation {obs_space.shape}: its channels (frame_stack, times 3 in "
                "colour) exceed the image's height or width, so SB3 will take it for a "
                "channel-last image and transpose it",
                stacklevel=2,
            )
        super().__init__(vector_env.num_envs, obs_space, vector_env.single_action_space)
        self._actions: np.ndarray | None = None
        self._started = False

    @property
    def core(self):
        # The vector env's, looked up each time: reset(options=...) there builds a new one.
        return self.venv.core

    # ------------------------------------------------------------------ reset / step
    def reset(self) -> np.ndarray:
        """Reset every sub-environment (``seed()``'s seeds apply here, once); obs only."""
        for options in self._options:
            refuse_reset_options(options)
        obs, _ = self.venv.reset(seed=[None if s is None else int(s) for s in self._seeds])
        self.reset_infos = _info_list(self.core.info())
        self._reset_seeds()
        self._reset_options()
        self._started = True
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        actions = self.venv.check_actions(self._actions)
        self._actions = None
        obs, reward, terminated, truncated = self.core.step(actions)
        dones = terminated | truncated
        infos = _info_list(self.core.info())
        for i, inf in enumerate(infos):
            inf["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if dones.any():
            done_ids = np.flatnonzero(dones)
            for i in done_ids:
                infos[i]["terminal_observation"] = obs[i].copy()  # not a view of the batch
            obs, _ = self.venv.reset(options={"reset_mask": dones})
            fresh = _info_list(self.core.info())
            for i in done_ids:
                self.reset_infos[i] = fresh[i]
        return obs, reward.astype(np.float32), dones, infos

    # ------------------------------------------------------------------ attributes
    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, _SINGLE.get(attr_name, attr_name))
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if len(list(self._get_indices(indices))) != self.num_envs:
            raise NotImplementedError(
                "the sub-environments share one batched simulator: set_attr applies to all of "
                "them (indices=None)"
            )
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None):
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """The first sub-environment's frame (lanesim renders one sub-environment)."""
        return [self.venv.render()]


def _info_list(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Gymnasium-style dict of ``(N,)`` arrays (and nested dicts) -> SB3's list of N dicts."""
    keys, columns, nested = [], [], {}
    for key, value in info.items():
        if isinstance(value, dict):
            nested[key] = _info_list(value)
        else:
            keys.append(key)
            columns.append(value.tolist())
    out = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    for key, rows in nested.items():
        for d, sub in zip(out, rows, strict=True):
            d[key] = sub
    return out


def make_sb3_vec_env(
    env_id: str,
    num_envs: int = 8,
    *,
    seed: int | None = None,
    monitor: bool = True,
    **options: Any,
) -> VecEnv:
    """A Stable-Baselines3 ``VecEnv`` of ``num_envs`` lanesim worlds in one batched simulator.

    Args:
        env_id: a registered lanesim id, e.g. ``"lanesim/Highway-v0"``.
        num_envs: sub-environments.
        seed: if given, sub-environment ``i`` is seeded ``seed + i`` at the first ``reset()``
            (as ``VecEnv.seed(seed)`` would).
        monitor: wrap in SB3's ``VecMonitor`` so episode returns and lengths reach SB3's
            logger (``rollout/ep_rew_mean``), as ``make_vec_env`` does with ``Monitor``.
        **options: lanesim options (``gym.make_vec`` keywords), including ``render_mode``.
    """
    venv = gym.make_vec(env_id, num_envs=num_envs, **options)
    if not isinstance(venv, DrivingVectorEnv):
        raise OptionError(f"{env_id!r} is not a lanesim environment with a batched vector env")
    env: VecEnv = SB3VecEnv(venv)
    if seed is not None:
        env.seed(seed)
    if monitor:
        env = VecMonitor(env)
    return env
