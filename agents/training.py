"""Headless training runs behind ``lanesim train``: lanesim's DQN and SB3 baselines.

Every run writes into one directory: ``env.json`` (the environment it trains on, so the
result can be watched and evaluated later), checkpoints, and TensorBoard logs in ``tb/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import typing
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import gymnasium as gym

ENV_FILE = "env.json"


# How to watch is the viewer's choice, not part of the environment an agent was trained on.
_VIEWING_OPTIONS = ("screen_width", "screen_height", "road_overlay", "hud", "sim_speed")


def write_env_spec(
    out: Path, env_id: str, options: dict[str, Any], algo: str | None = None
) -> None:
    """Record the environment of a training run (atomically): every option resolved (the
    registered id's defaults, its scenario file, then ``options``), so the run can be watched and
    evaluated on the same environment even after a scenario file changes. ``algo`` (an SB3
    baseline's ``lanesim train`` name) says which SB3 class its ``latest.zip`` is."""
    from lanesim.envs.options import make_options

    kwargs = {**gym.spec(env_id).kwargs, **options}
    scenario = kwargs.pop("scenario", None)
    resolved = dataclasses.asdict(make_options(scenario, **kwargs))
    for key in _VIEWING_OPTIONS:
        resolved.pop(key)
    spec = {"id": env_id, "options": resolved, **({"algo": algo} if algo else {})}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / ENV_FILE, json.dumps(spec, indent=2))


def _env_json(out: Path) -> dict[str, Any]:
    path = Path(out) / ENV_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: not a lanesim training directory")
    try:
        spec = json.loads(path.read_text())
        if not isinstance(spec, dict) or "id" not in spec or not isinstance(
            spec.get("options"), dict
        ):
            raise ValueError("not an object with an 'id' and an 'options' object")
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{path} is corrupt ({e}); expected {{'id': ..., 'options': {{...}}}}"
        ) from None
    return spec


def read_env_spec(out: Path) -> tuple[str, dict[str, Any]]:
    """The environment id and options a training directory was made for, validated as
    ``gym.make`` validates them: a ValueError names the file and the bad id or option."""
    from lanesim.envs.options import OptionError, make_options

    path = Path(out) / ENV_FILE
    spec = _env_json(out)
    env_id, options = spec["id"], dict(spec["options"])
    if env_id not in gym.registry or not str(env_id).startswith("lanesim/"):
        raise ValueError(f"{path}: unknown environment id {env_id!r}; expected a lanesim/ id")
    try:
        make_options(**{k: v for k, v in options.items() if k != "scenario"})
    except OptionError as e:
        raise ValueError(f"{path}: {e}") from None
    return env_id, options


def read_algo(out: Path) -> str | None:
    """The SB3 baseline (``sb3-dqn``, ``sb3-ppo``) a training directory holds, if its env.json
    names one."""
    algo = _env_json(out).get("algo")
    if algo not in (None, "sb3-dqn", "sb3-ppo"):
        raise ValueError(f"{Path(out) / ENV_FILE}: unknown algo {algo!r}; expected sb3-dqn or "
                         "sb3-ppo")
    return algo


def remove_stale_temp_files(out: Path) -> None:
    """Delete the temp files that atomic writes into ``out`` leave when their process is killed
    mid-write (``.NAME.XXXXXXXX.tmp``); a run calls it as it starts."""
    for tmp in Path(out).glob(".*.*.tmp"):
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file)`` so that ``path`` is always either the old or the new whole file (a
    temp file ``.NAME.XXXXXXXX.tmp`` in the same directory, since ``os.replace`` is atomic
    only within one filesystem, synced, then renamed); a failed write leaves no temp file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of ``text`` (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode()))


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


def run(algo: str, env_id: str, options: dict[str, Any], args) -> int:
    """Train ``algo`` (``dqn``, ``sb3-dqn`` or ``sb3-ppo``) as ``lanesim train`` asked, on
    ``options`` from :func:`train_options`."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out)
    write_env_spec(out, env_id, options, algo=None if algo == "dqn" else algo)
    if algo == "dqn":
        return _train_dqn(env_id, options, args, out)
    return _train_sb3(algo, env_id, options, args, out)


def _train_dqn(env_id, options, args, out: Path) -> int:
    from agents.dqn.train import train

    config = dqn_config(args.steps, args.num_envs, args.seed, dict(args.config))
    result = train(
        lambda: gym.make_vec(env_id, num_envs=args.num_envs, **options),
        config,
        out,
        resume=args.resume,
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


def _train_sb3(algo, env_id, options, args, out: Path) -> int:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.sb3 import algo_class, load_model, policy_name
    from lanesim.envs.sb3 import make_sb3_vec_env

    cls = algo_class(algo)
    envs = make_sb3_vec_env(env_id, num_envs=args.num_envs, seed=args.seed, **options)
    latest = out / "latest.zip"
    every = max(args.steps // 5, 1)

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

            self.bar = tqdm(total=args.steps, initial=self.num_timesteps, unit="step",
                            desc=algo, dynamic_ncols=True)

        def _on_step(self) -> bool:
            self.bar.n = min(self.num_timesteps, args.steps)
            self.bar.refresh()
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    tb = str(out / "tb")
    if args.resume:
        model = load_model(algo, latest, envs, options["observation"], tensorboard_log=tb)
        remaining = max(args.steps - model.num_timesteps, 0)
    else:
        if algo == "sb3-dqn":
            kw = {"buffer_size": 100_000, "learning_starts": min(20_000, args.steps // 10)}
        else:
            kw = {"n_steps": ppo_rollout(args.steps, args.num_envs), "batch_size": 64}
        model = cls(policy_name(options["observation"]), envs, seed=args.seed,
                    tensorboard_log=tb, verbose=0, **kw)
        remaining = args.steps
    threads = torch.get_num_threads()
    torch.set_num_threads(dict(args.config).get("threads", DEFAULT_THREADS) or threads)
    try:
        model.learn(remaining, callback=[Checkpoints(), Progress()],
                    reset_num_timesteps=not args.resume, tb_log_name=algo)
    except KeyboardInterrupt:
        save(model)  # Ctrl-C or SIGTERM: keep the steps done
        raise
    finally:
        torch.set_num_threads(threads)
    print(f"trained {model.num_timesteps} steps; model in {latest.resolve()}")
    return 0
