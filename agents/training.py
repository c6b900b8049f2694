"""Headless training runs behind ``lanesim train``: lanesim's DQN and SB3 baselines.

Every run writes into one directory: ``env.json`` (the environment it trains on, so the
result can be watched and evaluated later; see :mod:`agents.run_dir`), checkpoints, and
TensorBoard logs in ``tb/``.
"""

from __future__ import annotations

import math
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.run_dir import atomic_write, remove_stale_temp_files, write_env_spec

# `lanesim train` runs torch on one CPU thread unless `--config threads=N` says otherwise: a thread
# pool as wide as the machine spins while other jobs hold its cores (SB3's PPO took 145 s instead
# of 21 s for 5000 steps on a busy two-core machine), and one thread loses little on the small
# batches these agents learn from.
DEFAULT_THREADS = 1
# The `--config` fields that apply to the SB3 baselines too.
SB3_SETTINGS = ("threads",)


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` fits a DQNConfig field annotation (bool is no number, a float is
    finite)."""
    def fits(t: Any) -> bool:
        if t is type(None):
            return value is None
        if isinstance(value, bool) or t is bool:
            return t is bool and isinstance(value, bool)
        if t is float:
            return isinstance(value, int | float) and math.isfinite(value)
        return isinstance(value, t)

    return any(fits(t) for t in (typing.get_args(hint) or (hint,)))


def _type_name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             type(None): "null"}
    return " or ".join(names.get(t, str(t)) for t in (typing.get_args(hint) or (hint,)))


def dqn_config(steps: int, num_envs: int, seed: int, overrides: dict[str, Any] | None = None):
    """The DQN configuration for a run of ``steps`` environment steps.

    The defaults of :class:`agents.dqn.config.DQNConfig` are sized for long runs; short runs
    scale warm-up, evaluation and checkpoint intervals down with the budget, and every run uses
    :data:`DEFAULT_THREADS` torch threads. ``overrides`` (field -> value) win over both; an
    unknown field, a value of the wrong type or an unusable device is a ValueError naming it.
    """
    import difflib

    from agents.dqn.config import DQNConfig

    base = DQNConfig()
    hints = typing.get_type_hints(DQNConfig)
    for key, value in (overrides or {}).items():
        if key not in DQNConfig.__dataclass_fields__:
            close = difflib.get_close_matches(key, list(hints), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown DQN setting {key!r}{hint}")
        if not _accepts(hints[key], value):
            raise ValueError(f"DQN setting {key}={value!r}: expected {_type_name(hints[key])}")
    scaled = replace(
        base,
        total_steps=steps,
        num_envs=num_envs,
        seed=seed,
        threads=DEFAULT_THREADS,
        learning_starts=min(base.learning_starts, max(steps // 10, 64)),
        eval_every=min(base.eval_every, max(steps // 5, 1)),
        checkpoint_every=min(base.checkpoint_every, max(steps // 5, 1)),
        target_update=min(base.target_update, max(steps // 20, 100)),
        log_every=min(base.log_every, max(steps // 20, 1)),
    )
    config = replace(scaled, **(overrides or {}))
    _check_device(config.device)
    return config


def _check_device(device: str) -> None:
    """A ValueError unless ``device`` is 'auto', 'cpu' or an available 'cuda[:N]'."""
    import torch

    wanted = "expected 'auto', 'cpu' or 'cuda' (or 'cuda:N')"
    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"DQN setting device={device!r}: {wanted}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"DQN setting device={device!r}: {wanted}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DQN setting device={device!r}: CUDA is not available here; "
                         "use 'cpu' or 'auto'")


def train_options(algo: str, options: dict[str, Any], observation: str | None) -> dict[str, Any]:
    """The environment options ``algo`` trains on: ``options`` (``gym.make`` keywords) with the
    observation (``observation``, else the one ``options`` names, else pixels for the DQNs and
    kinematics for PPO) and, for the DQNs, discrete actions unless ``options`` names meta.

    Raises ValueError when ``observation`` contradicts ``options["observation"]`` or a DQN is
    asked to learn continuous actions.
    """
    named = options.get("observation")
    if observation is not None and named is not None and named != observation:
        raise ValueError(f"--observation {observation} contradicts --env observation={named}; "
                         "give one of them")
    default = "kinematics" if algo == "sb3-ppo" else "pixels"
    options = {**options, "observation": observation or named or default}
    if algo in ("dqn", "sb3-dqn"):
        options.setdefault("action", "discrete")
        if options["action"] not in ("discrete", "meta"):
            raise ValueError(f"{algo} picks one of a finite set of actions: use --env "
                             f"action=discrete or action=meta, not action={options['action']}")
    return options


def run(algo: str, env_id: str, options: dict[str, Any], *, out: str | Path, steps: int,
        num_envs: int = 8, seed: int = 0, resume: bool = False,
        config: dict[str, Any] | None = None) -> int:
    """Train ``algo`` (``dqn``, ``sb3-dqn`` or ``sb3-ppo``) on ``gym.make_vec(env_id,
    num_envs, **options)`` (``options`` from :func:`train_options`) for ``steps`` environment
    steps, writing into the directory ``out``; ``resume`` continues its latest checkpoint.
    ``config`` overrides DQN hyperparameters (:func:`dqn_config`) or PPO settings
    (:func:`ppo_config`); sb3-dqn takes only :data:`SB3_SETTINGS`, which every trainer takes.
    Returns the exit status (0)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out)
    write_env_spec(out, env_id, options, algo=None if algo == "dqn" else algo)
    config = dict(config or {})
    if algo == "dqn":
        return _train_dqn(env_id, options, out, steps, num_envs, seed, resume, config)
    return _train_sb3(algo, env_id, options, out, steps, num_envs, seed, resume, config)


def _train_dqn(env_id, options, out: Path, steps, num_envs, seed, resume, overrides) -> int:
    from agents.dqn.train import train_dqn

    config = dqn_config(steps, num_envs, seed, overrides)
    result = train_dqn(
        lambda: gym.make_vec(env_id, num_envs=num_envs, **options),
        config,
        out,
        resume=resume,
    )
    print(f"trained {result.steps} steps; checkpoints in {out.resolve()}")
    print(f"TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0


def ppo_rollout(steps: int, num_envs: int, batch_size: int = 64) -> int:
    """PPO's ``n_steps`` per environment for a run of ``steps``: SB3's 2048, or for a shorter
    run one rollout that covers the budget (PPO always completes a rollout), rounded up so the
    rollout (``n_steps * num_envs``) divides into whole minibatches of ``batch_size``."""
    unit = batch_size // math.gcd(batch_size, num_envs)
    per_env = -(-steps // num_envs)  # ceil: the rollout covers the budget
    return min(2048, -(-per_env // unit) * unit)


def ppo_config(steps: int, num_envs: int, overrides: dict[str, Any] | None = None):
    """The :class:`agents.sb3_ppo.PPOConfig` of a ``lanesim train sb3-ppo`` run of ``steps``
    transitions on ``num_envs`` worlds: ``overrides`` (field -> value; the keys of
    :data:`SB3_SETTINGS` are the trainer's, not PPO's, and are left out) over SB3's defaults.
    An unset ``batch_size`` is 64 and an unset ``n_steps`` :func:`ppo_rollout`'s. Raises
    ValueError naming an unknown field (with the closest known one) or a bad value."""
    import difflib
    from dataclasses import fields

    from agents.sb3_ppo import PPOConfig

    names = [f.name for f in fields(PPOConfig)]
    settings = {k: v for k, v in (overrides or {}).items() if k not in SB3_SETTINGS}
    for key in settings:
        if key not in names:
            close = difflib.get_close_matches(key, [*names, *SB3_SETTINGS], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown PPO setting {key!r}{hint}; known: "
                             f"{', '.join([*names, *SB3_SETTINGS])}")
    config = PPOConfig(**settings)
    batch_size = config.batch_size or 64
    n_steps = config.n_steps or ppo_rollout(steps, num_envs, batch_size)
    return replace(config, n_steps=n_steps, batch_size=batch_size)


def _train_sb3(algo, env_id, options, out: Path, steps, num_envs, seed, resume,
               overrides) -> int:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.sb3 import algo_class, load_model, policy_name
    from lanesim.envs.sb3 import make_sb3_vec_env

    cls = algo_class(algo)
    envs = make_sb3_vec_env(env_id, num_envs=num_envs, seed=seed, **options)
    latest = out / "latest.zip"
    every = max(steps // 5, 1)

    def save(model) -> None:
        atomic_write(latest, model.save)

    class Checkpoints(BaseCallback):
        """Save ``latest.zip`` every ``every`` steps and at the end."""

        def _on_step(self) -> bool:
            if self.num_timesteps % every < self.training_env.num_envs:
                save(self.model)
            return True

        def _on_training_end(self) -> None:
            save(self.model)

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=self.num_timesteps, unit="step",
                            desc=algo, dynamic_ncols=True)

        def _on_step(self) -> bool:
            self.bar.n = min(self.num_timesteps, steps)
            self.bar.refresh()
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    tb = str(out / "tb")
    if algo == "sb3-dqn":
        kw = {"buffer_size": 100_000, "learning_starts": min(20_000, steps // 10)}
    else:
        from agents.sb3_ppo import ppo_kwargs

        kw = ppo_kwargs(ppo_config(steps, num_envs, overrides), options["observation"])
    if resume:
        # The file's plain values win; what SB3 pickles (a learning-rate schedule) is rebuilt
        # from this command's settings.
        resume_kw = kw if algo == "sb3-ppo" else {}
        model = load_model(algo, latest, envs, options["observation"], tensorboard_log=tb,
                           **resume_kw)
        remaining = max(steps - model.num_timesteps, 0)
    else:
        model = cls(policy_name(options["observation"]), envs, seed=seed,
                    tensorboard_log=tb, verbose=0, **kw)
        remaining = steps
    threads = torch.get_num_threads()
    torch.set_num_threads(overrides.get("threads", DEFAULT_THREADS) or threads)
    try:
        model.learn(remaining, callback=[Checkpoints(), Progress()],
                    reset_num_timesteps=not resume, tb_log_name=algo)
    except KeyboardInterrupt:
        save(model)  # Ctrl-C or SIGTERM: keep the steps done
        raise
    finally:
        torch.set_num_threads(threads)
    print(f"trained {model.num_timesteps} steps; model in {latest.resolve()}")
    return 0
