"""Stable-Baselines3 models saved by ``lanesim train sb3-dqn`` / ``sb3-ppo``: loading them without
running code from the file, and driving with them.

SB3's ``load`` unpickles (cloudpickle) every entry of the saved ``data`` that is not plain JSON:
spaces, schedules, classes, buffers. A crafted ``.zip`` can put any code there.
:func:`load_model` unpickles none of them: each pickled entry is replaced, through SB3's
``custom_objects``, by the value a freshly built model of the expected class has (the spaces of
the given environment, the known policy class, the caller's hyperparameters), or by nothing where
SB3 rebuilds it in ``_setup_model`` (schedules). A pickled entry of any other name is refused.
What still comes from the file: plain JSON values (counters, numbers, strings, the policy's
keyword arguments), which SB3 assigns as model attributes, and the ``.pth`` tensors, which SB3
reads with ``torch.load(weights_only=True)``. Neither can run code; a crafted file can still
choose those values, so a model from someone else is only as good as its numbers.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from agents.dqn.checkpoint import CheckpointError
from agents.run_dir import SB3_ALGOS
from lanesim.envs.options import IMAGE_OBSERVATIONS

# Pickled entries that SB3's _setup_model rebuilds from plain values on every load.
_REBUILT = ("lr_schedule", "exploration_schedule")


def algo_class(algo: str):
    """The SB3 class of ``algo`` (``sb3-dqn`` or ``sb3-ppo``)."""
    from stable_baselines3 import DQN, PPO

    classes = {"sb3-dqn": DQN, "sb3-ppo": PPO}
    if algo not in classes:
        raise ValueError(f"unknown SB3 algorithm {algo!r}; expected one of {', '.join(SB3_ALGOS)}")
    return classes[algo]


def policy_name(observation: str) -> str:
    """The SB3 policy lanesim trains on an observation type: a CNN on image stacks (pixels,
    camera, birdseye), else an MLP."""
    return "CnnPolicy" if observation in IMAGE_OBSERVATIONS else "MlpPolicy"


def _pickled_entries(path: Path) -> list[str]:
    """Names of the entries of the model's ``data`` that SB3 would unpickle."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a Stable-Baselines3 model ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a Stable-Baselines3 model (its data is no object)")
    # The same test as SB3's json_to_data: these, and only these, it would unpickle.
    return [key for key, value in data.items()
            if isinstance(value, dict) and ":serialized:" in value]


def load_model(algo: str, path: str | Path, env, observation: str, **kwargs: Any):
    """Load the SB3 model ``path`` of ``algo`` for ``env`` without unpickling anything.

    ``observation`` picks the policy (:func:`policy_name`); ``kwargs`` are the hyperparameters
    the model was built with whose values SB3 pickles (e.g. ``train_freq``, a schedule as
    ``learning_rate``) and any ``load`` keywords (``device``, ``tensorboard_log``). Raises
    :class:`CheckpointError` for a missing, damaged or foreign file or one that does not fit
    ``env``.
    """
    cls = algo_class(algo)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    load_keywords = {k: kwargs.pop(k) for k in ("device", "tensorboard_log") if k in kwargs}
    fresh = vars(cls(policy_name(observation), env, _init_setup_model=False, **kwargs))
    custom = {}
    for key in _pickled_entries(path):
        if key in _REBUILT:
            custom[key] = None
        elif key in fresh:
            custom[key] = fresh[key]
        else:
            raise CheckpointError(
                f"{path}: refusing to unpickle its entry {key!r}; lanesim loads only "
                f"{cls.__name__} models it can rebuild without unpickling"
            )
    try:
        return cls.load(path, env=env, custom_objects=custom, **load_keywords)
    except Exception as e:  # SB3 and torch raise many types for damaged or foreign files
        reason = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(
            f"{path}: cannot load this {cls.__name__} model ({type(e).__name__}: {reason})"
        ) from None


class SB3Policy:
    """A trained SB3 model behind the agent protocol: its deterministic action."""

    def __init__(self, model) -> None:
        self.model = model

    @classmethod
    def load(cls, algo: str, path: str | Path, env_id: str, options: dict[str, Any]) -> SB3Policy:
        """The model ``path`` of ``algo``, loaded against one ``gym.make(env_id, **options)``."""
        import gymnasium as gym

        env = gym.make(env_id, **options)
        try:
            return cls(load_model(algo, path, env, options.get("observation", "kinematics"),
                                  device="cpu"))
        finally:
            env.close()

    def reset(self, env) -> None:
        """A new episode starts (the model needs nothing of ``env``)."""

    def act(self, obs):
        action, _ = self.model.predict(obs, deterministic=True)
        return int(action) if np.ndim(action) == 0 else action

    def annotations(self) -> dict:
        return {}
