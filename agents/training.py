"""Headless training runs behind ``lanesim train``: lanesim's DQN and SB3 baselines.

Every run writes into one directory: ``env.json`` (the environment it trains on, so the
result can be watched and evaluated later), checkpoints, and TensorBoard logs in ``tb/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym

ENV_FILE = "env.json"


# How to watch is the viewer's choice, not part of the environment an agent was trained on.
_VIEWING_OPTIONS = ("screen_width", "screen_height", "road_overlay", "hud", "sim_speed")


def write_env_spec(out: Path, env_id: str, options: dict[str, Any]) -> None:
    """Record the environment of a training run (atomically): every option resolved (the
    registered id's defaults, its scenario file, then ``options``), so the run can be watched and
    evaluated on the same environment even after a scenario file changes."""
    from lanesim.envs.options import make_options

    kwargs = {**gym.spec(env_id).kwargs, **options}
    scenario = kwargs.pop("scenario", None)
    resolved = dataclasses.asdict(make_options(scenario, **kwargs))
    for key in _VIEWING_OPTIONS:
        resolved.pop(key)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / ENV_FILE, json.dumps({"id": env_id, "options": resolved}, indent=2))


def read_env_spec(out: Path) -> tuple[str, dict[str, Any]]:
    """The environment id and options a training directory was made for."""
    path = Path(out) / ENV_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: not a lanesim training directory")
    try:
        spec = json.loads(path.read_text())
        return spec["id"], dict(spec["options"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is corrupt ({e}); expected {{'id': ..., 'options': {{...}}}}"
        ) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` is always either the old or the new whole file (a temp
    file in the same directory, then ``os.replace``); a failed write leaves no temp file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dqn_config(steps: int, num_envs: int, seed: int, overrides: dict[str, Any] | None = None):
    """The DQN configuration for a run of ``steps`` environment steps.

    The defaults of :class:`agents.dqn.config.DQNConfig` are sized for long runs; short runs
    scale warm-up, evaluation and checkpoint intervals down with the budget. ``overrides``
    (field -> value) win over both; an unknown field is a ValueError naming it.
    """
    from agents.dqn.config import DQNConfig

    base = DQNConfig()
    fields = DQNConfig.__dataclass_fields__
    for key in overrides or {}:
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown DQN setting {key!r}{hint}")
    scaled = replace(
        base,
        total_steps=steps,
        num_envs=num_envs,
        seed=seed,
        learning_starts=min(base.learning_starts, max(steps // 10, 64)),
        eval_every=min(base.eval_every, max(steps // 5, 1)),
        checkpoint_every=min(base.checkpoint_every, max(steps // 5, 1)),
        target_update=min(base.target_update, max(steps // 20, 100)),
        log_every=min(base.log_every, max(steps // 20, 1)),
    )
    return replace(scaled, **(overrides or {}))


def run(algo: str, env_id: str, options: dict[str, Any], args) -> int:
    """Train ``algo`` (``dqn``, ``sb3-dqn`` or ``sb3-ppo``) as ``lanesim train`` asked."""
    out = Path(args.out)
    observation = args.observation or ("kinematics" if algo == "sb3-ppo" else "pixels")
    options = {**options, "observation": observation}
    if algo in ("dqn", "sb3-dqn"):
        options.setdefault("action", "discrete")
    write_env_spec(out, env_id, options)
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


def _train_sb3(algo, env_id, options, args, out: Path) -> int:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from lanesim.envs.sb3 import make_sb3_vec_env

    cls = DQN if algo == "sb3-dqn" else PPO
    envs = make_sb3_vec_env(env_id, num_envs=args.num_envs, seed=args.seed, **options)
    latest = out / "latest.zip"
    every = max(args.steps // 5, 1)

    class Checkpoints(BaseCallback):
        """Save ``latest.zip`` atomically every ``every`` steps and at the end."""

        def _on_step(self) -> bool:
            if self.num_timesteps % every < self.training_env.num_envs:
                self.save()
            return True

        def save(self) -> None:
            tmp = out / ".latest.zip.tmp.zip"
            self.model.save(tmp)
            os.replace(tmp, latest)

        def _on_training_end(self) -> None:
            self.save()

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

    if args.resume:
        model = cls.load(latest, env=envs, tensorboard_log=str(out / "tb"))
        remaining = max(args.steps - model.num_timesteps, 0)
    else:
        policy = "CnnPolicy" if options["observation"] == "pixels" else "MlpPolicy"
        if cls is DQN:
            kw = {"buffer_size": 100_000, "learning_starts": min(20_000, args.steps // 10)}
        else:
            # PPO always completes a rollout of n_steps per env: keep it within the budget.
            n_steps = min(2048, max(args.steps // args.num_envs, 8))
            kw = {"n_steps": n_steps, "batch_size": min(64, n_steps * args.num_envs)}
        model = cls(policy, envs, seed=args.seed, tensorboard_log=str(out / "tb"), verbose=0, **kw)
        remaining = args.steps
    model.learn(remaining, callback=[Checkpoints(), Progress()],
                reset_num_timesteps=not args.resume, tb_log_name=algo)
    print(f"trained {model.num_timesteps} steps; model in {latest.resolve()}")
    return 0
