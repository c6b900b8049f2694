"""DQN learning study (issue #6): lanesim's DQN against Stable-Baselines3's DQN, on pixels.

Run::

    python -m lanesim_bench.dqn_learning                     # 2 agents x 3 seeds, 200k steps
    python -m lanesim_bench.dqn_learning --agents lanesim --seeds 0
    python -m lanesim_bench.dqn_learning --report            # table + plot of finished runs
    python -m lanesim_bench.dqn_learning --report --plot docs/dqn_learning.png \
        --write docs/dqn_learning.md                         # ... into the study's page

Both agents train on ``lanesim/Highway-v0`` with 4 x 84 x 84 pixel observations, meta actions at
one decision per second (``STUDY_ENV``; ``--env KEY=VALUE`` changes them) and N = 8 worlds in one
batched simulator: lanesim's DQN (``agents.dqn.train``, dueling, double, 3-step, the settings in
``STUDY_CONFIG``; ``--config FIELD=VALUE`` changes them) on ``gym.make_vec``, SB3's ``DQN``
``CnnPolicy`` on :func:`lanesim.envs.sb3.make_sb3_vec_env`. Held equal, as in
``lanesim_bench.bench_dqn``: the Nature CNN with 512 units, batch, replay capacity, learning
rate, Adam epsilon, gradient clip, discount, learning start, gradient steps per transition,
target-update interval and the epsilon schedule. SB3 runs its own algorithm (one-step targets, no
dueling, no double DQN, uniform replay): the question is which DQN learns more from the same
200,000 transitions.

Each (agent, seed) run lives in ``OUT/AGENT-seedS/``:

* ``settings.json``: everything the run was started with (a later invocation with other settings
  is refused, so a resumed run cannot silently change), ``env.json`` (``lanesim eval --agent DIR``
  evaluates a lanesim run on its training road);
* checkpoints: lanesim ``latest.pt`` / ``best.pt``; SB3 ``latest.zip`` + ``replay.npz`` (model
  and replay memory, so a killed run resumes where its checkpoint was) + ``latest.json`` and
  ``best_q.pt`` / ``best.json``. Nothing is unpickled on resume: the model loads through
  :func:`agents.sb3.load_model`, the replay memory is plain arrays read with
  ``allow_pickle=False`` (SB3's own ``replay.pkl`` is a pickle, which could run code). Every
  write is atomic (a temp file, then ``os.replace``);
  ``--checkpoint-every`` sets the interval. Ctrl-C or SIGTERM saves a checkpoint first;
  ``kill -9`` loses the steps since the last one. Running the same command again resumes every
  unfinished run (lanesim's replay memory is not checkpointed: it refills first);
* ``tb/``: TensorBoard scalars. The learning curve is ``eval/mean_return`` and
  ``eval/collision_rate``: every ``--curve-every`` transitions, ``--curve-episodes`` greedy
  episodes on 8 evaluation worlds seeded ``seed + 1,000,003``, by the same function
  (:func:`agents.dqn.train.greedy_returns`) for both agents;
* ``sessions.json``: each training session's start, steps and seconds (the wall time sums them);
* ``.lock``: held while a process works on the run, so another invocation on the same study
  directory skips it instead of training it twice;
* ``result.json`` (written last, atomically): ``--eval-episodes`` greedy episodes of the final
  network and of the best one on the learning curve, each through :func:`agents.evaluate.evaluate`
  on single envs seeded ``FINAL_EVAL_SEED + i`` (the same held-out episodes for every agent and
  seed), the learning curve, wall time and steps/s. A run with a ``result.json`` is skipped.

``--report`` aggregates every finished run into ``OUT/report.md`` (per run, then the mean over
seeds) and ``OUT/learning_curves.png`` (``--plot`` for another path).
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lanesim.cli import assignment  # KEY=VALUE, read as `lanesim train` reads it
from lanesim_bench.common import command, machine, write_report

MODULE = "lanesim_bench.dqn_learning"

ENV_ID = "lanesim/Highway-v0"
NUM_ENVS = 8
AGENTS = ("lanesim", "sb3")
SB3_LABEL = "SB3 DQN CnnPolicy (1-step, uniform replay)"
COLORS = {"lanesim": "#1f77b4", "sb3": "#d62728"}
STUDY_ENV: dict[str, Any] = {"observation": "pixels", "action": "meta", "policy_hz": 1}
# lanesim's settings for the study (the rest are DQNConfig's defaults: dueling, double DQN,
# 3-step returns, batch 32, Adam eps 1.5e-4, clip 10, eps_end 0.01). SB3 gets every one that
# its DQN has. The reasons are in docs/dqn_learning.md.
STUDY_CONFIG: dict[str, Any] = {
    "hidden": 512,
    "lr": 2.5e-4,
    "gamma": 0.95,
    "prioritized": True,
    "buffer_size": 60_000,
    "learning_starts": 2_000,
    "train_freq": 8,  # one gradient step per 8 transitions: per vector step of the 8 worlds
    "gradient_steps": 1,
    "target_update": 2_000,  # 250 gradient steps between target syncs
    "eps_fraction": 0.1,  # epsilon 1 -> 0.01 over the first 20,000 transitions
}
CURVE_SEED_OFFSET = 1_000_003  # agents.dqn.train's evaluation seed: config.seed + this
FINAL_EVAL_SEED = 2_000_000  # final evaluation episode i resets with FINAL_EVAL_SEED + i
SUMMARY_KEYS = ("episodes", "mean_return", "collision_rate", "offroad_rate", "mean_speed",
                "lane_changes", "lane_offset_rms")


# ------------------------------------------------------------------------ small helpers
def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON so that ``path`` is always either the old or the new whole file."""
    from agents.run_dir import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1))


def label_of(agent: str, config: dict[str, Any]) -> str:
    """What a run's agent is, from the settings it was trained with."""
    if agent == "sb3":
        return SB3_LABEL
    parts = [
        "dueling" if config["dueling"] else "single head",
        "double" if config["double"] else "max target",
        f"{config['n_step']}-step",
        "prioritized" if config["prioritized"] else "uniform replay",
    ]
    return f"lanesim DQN ({', '.join(parts)})"


def setup_of(result: dict[str, Any]) -> str:
    """A run's agent, replay capacity and learning rate, for the report (runs may differ in
    these)."""
    settings = result["settings"]
    if result["agent"] == "lanesim":
        capacity, lr, lr_end = (settings["config"].get(k) for k in ("buffer_size", "lr", "lr_end"))
    else:
        capacity, lr, lr_end = (settings["sb3"].get(k) for k in (
            "buffer_size", "learning_rate", "learning_rate_end"))
    rate = f"lr {lr:g}" if lr_end is None else f"lr {lr:g} to {lr_end:g}"
    return f"{label_of(result['agent'], settings.get('config', {}))}, replay {capacity:,}, {rate}"


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def crossed(before: int, after: int, every: int) -> bool:
    """Did a step counter going from ``before`` to ``after`` pass a multiple of ``every``?"""
    return every > 0 and before // every != after // every


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=source, capture_output=True, text=True)
        return out.stdout.strip()

    # The checkout lanesim runs from, if it runs from one (empty strings when installed).
    import lanesim

    source = Path(lanesim.__file__).resolve().parents[1]
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": git("status", "--porcelain", "--", "lanesim", "agents", "lanesim_bench")}


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ------------------------------------------------------------------------ settings
def study_config(args, seed: int):
    """lanesim's DQNConfig for one seed: STUDY_CONFIG, the harness flags, then ``--config``."""
    from agents.dqn import DQNConfig

    values = {
        **STUDY_CONFIG,
        "seed": seed,
        "total_steps": args.steps,
        "num_envs": NUM_ENVS,
        "threads": args.threads,
        "eval_every": args.curve_every,
        "eval_episodes": args.curve_episodes,
        "checkpoint_every": args.checkpoint_every,
        **dict(args.config),
    }
    try:
        return DQNConfig.from_dict(values)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"dqn_learning: bad --config: {e}") from None


def sb3_kwargs(cfg) -> dict[str, Any]:
    """SB3 DQN keywords equal to lanesim's config wherever SB3's DQN has the setting.

    lanesim's ``train_freq`` counts transitions, SB3's counts vector steps of N transitions:
    ``gradient_steps`` every ``train_freq`` transitions is SB3's ``train_freq / N`` vector
    steps, or ``N * gradient_steps / train_freq`` gradient steps after every vector step.
    """
    n = cfg.num_envs
    if cfg.train_freq % n == 0:
        freq, grad = cfg.train_freq // n, cfg.gradient_steps
    elif (n * cfg.gradient_steps) % cfg.train_freq == 0:
        freq, grad = 1, n * cfg.gradient_steps // cfg.train_freq
    else:
        raise SystemExit(f"dqn_learning: train_freq={cfg.train_freq} with gradient_steps="
                         f"{cfg.gradient_steps} has no SB3 equivalent at N = {n}")
    kwargs = {
        "learning_rate": cfg.lr,
        "buffer_size": cfg.buffer_size,
        "learning_starts": cfg.learning_starts,
        "batch_size": cfg.batch_size,
        "gamma": cfg.gamma,
        "train_freq": [freq, "step"],
        "gradient_steps": grad,
        "target_update_interval": cfg.target_update,
        "tau": cfg.tau,
        "exploration_fraction": cfg.eps_fraction,
        "exploration_initial_eps": cfg.eps_start,
        "exploration_final_eps": cfg.eps_end,
        "max_grad_norm": cfg.grad_clip,
        "policy_kwargs": {"features_extractor_kwargs": {"features_dim": cfg.hidden or 512},
                          "optimizer_kwargs": {"eps": cfg.adam_eps}},
        "seed": cfg.seed,
    }
    if cfg.lr_end is not None:
        # JSON here (the run's settings); SB3Run.train makes it SB3's LinearSchedule, which
        # goes from learning_rate to this over the run as lanesim's lr to lr_end does.
        kwargs["learning_rate_end"] = cfg.lr_end
    return kwargs


def sb3_model_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``sb3_kwargs``'s JSON-able settings as ``DQN(...)`` takes them."""
    from stable_baselines3.common.utils import LinearSchedule

    model = {**kwargs, "train_freq": tuple(kwargs["train_freq"])}
    if "learning_rate_end" in model:
        end = model.pop("learning_rate_end")
        model["learning_rate"] = LinearSchedule(model["learning_rate"], end, 1.0)
    return model


def run_settings(agent: str, seed: int, args, env_options: dict, cfg) -> dict[str, Any]:
    """What a run is: a resumed run must be started with exactly these."""
    config = {k: v for k, v in cfg.to_dict().items() if k not in ("threads", "progress")}
    if config["lr_end"] is None:
        del config["lr_end"]  # as recorded by runs from before DQNConfig had it
    settings = {"agent": agent, "seed": seed, "env_id": ENV_ID, "env_options": env_options,
                "num_envs": NUM_ENVS, "total_steps": cfg.total_steps,
                "curve_every": cfg.eval_every, "curve_episodes": cfg.eval_episodes,
                "curve_seed": seed + CURVE_SEED_OFFSET, "checkpoint_every": cfg.checkpoint_every}
    if agent == "lanesim":
        settings["config"] = config
    else:
        settings["sb3"] = sb3_kwargs(cfg)
    return json.loads(json.dumps(settings))  # as read back from the file (lists, not tuples)


# ------------------------------------------------------------------------ environments
def make_envs(env_options: dict):
    """The N batched worlds lanesim's DQN trains and every learning-curve evaluation runs on."""
    import gymnasium as gym

    import lanesim  # noqa: F401  (registers the ids)

    return gym.make_vec(ENV_ID, num_envs=NUM_ENVS, **env_options)


def make_sb3_envs(env_options: dict, seed: int):
    """The same N worlds behind SB3's VecEnv interface."""
    from lanesim.envs.sb3 import make_sb3_vec_env

    return make_sb3_vec_env(ENV_ID, num_envs=NUM_ENVS, seed=seed, **env_options)


class GreedyQ:
    """Any Q-network (a torch module: a batch of observations -> action values) as a greedy
    agent for :func:`agents.evaluate.evaluate`; lanesim's and SB3's networks alike."""

    def __init__(self, q_net) -> None:
        self.q_net = q_net.eval()
        self.device = next(q_net.parameters()).device

    def reset(self, env) -> None:
        pass

    def act(self, obs) -> int:
        import torch

        with torch.inference_mode():
            q = self.q_net(torch.as_tensor(obs, device=self.device).unsqueeze(0))
        return int(q.argmax(dim=1).item())

    def annotations(self) -> dict:
        return {}


# ------------------------------------------------------------------------ the two agents
class LanesimRun:
    """lanesim's DQN: agents.dqn.train_dqn, resumed from latest.pt."""

    def __init__(self, run_dir: Path, cfg, env_options: dict) -> None:
        self.dir, self.cfg, self.env_options = run_dir, cfg, env_options

    def steps_done(self) -> int:
        from agents.dqn.checkpoint import load_checkpoint

        latest = self.dir / "latest.pt"
        return load_checkpoint(latest)["step"] if latest.exists() else 0

    def train(self) -> None:
        from agents.dqn import train_dqn

        train_dqn(lambda: make_envs(self.env_options), self.cfg, self.dir,
              resume=(self.dir / "latest.pt").exists())

    def networks(self) -> dict[str, Any]:
        from agents.dqn import DQNAgent

        return {name: DQNAgent.load(self.dir / f"{name}.pt").q_net for name in ("latest", "best")}

    def cleanup(self) -> None:
        pass


class SB3Run:
    """SB3's DQN with the same learning-curve evaluations as lanesim's, and checkpoints of the
    model and its replay memory."""

    def __init__(self, run_dir: Path, cfg, env_options: dict) -> None:
        self.dir, self.cfg, self.env_options = run_dir, cfg, env_options
        self.latest, self.replay = run_dir / "latest.zip", run_dir / "replay.npz"

    def steps_done(self) -> int:
        return read_json(self.dir / "latest.json", {"step": 0})["step"]

    def save(self, model, best: dict, replay: bool = True) -> None:
        """Model and replay memory, each atomically; latest.json last names the step. A
        finished run needs no replay memory (it is GBs): ``replay=False``."""
        if replay:
            save_replay(model.replay_buffer, self.replay)
        tmp_model = self.dir / ".latest.tmp.zip"
        model.save(tmp_model)
        os.replace(tmp_model, self.latest)
        write_json(self.dir / "latest.json", {"step": int(model.num_timesteps), **best})

    def load(self, device, **load_keywords):
        """The saved model, without unpickling anything (:func:`agents.sb3.load_model`)."""
        from agents.sb3 import load_model

        envs = make_sb3_envs(self.env_options, self.cfg.seed)
        return load_model("sb3-dqn", self.latest, envs, "pixels", device=device,
                          **load_keywords, **sb3_model_kwargs(sb3_kwargs(self.cfg)))

    def train(self) -> None:
        import torch
        from stable_baselines3 import DQN
        from stable_baselines3.common.callbacks import BaseCallback
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        from agents.dqn.train import greedy_returns

        cfg, run = self.cfg, self
        device = cfg.resolved_device()
        tb = str(self.dir / "tb")
        if self.latest.exists():
            if not self.replay.exists():
                raise SystemExit(f"dqn_learning: {self.dir} has no {self.replay.name} to resume "
                                 "from (runs from before keep it as replay.pkl, a pickle, which "
                                 "is not loaded); delete the run directory to start it again")
            model = self.load(device, tensorboard_log=tb)
            load_replay(model.replay_buffer, self.replay)
            state = read_json(self.dir / "latest.json")
            best = {"best_return": state["best_return"], "best_step": state["best_step"]}
        else:
            kwargs = sb3_model_kwargs(sb3_kwargs(cfg))
            model = DQN("CnnPolicy", make_sb3_envs(self.env_options, cfg.seed), device=device,
                        tensorboard_log=tb, verbose=0, **kwargs)
            best = {"best_return": None, "best_step": None}
        done = model.num_timesteps
        if done:
            # A resumed run plays new episodes: its worlds are seeded past the steps done.
            model.get_env().close()
            model.set_env(make_sb3_envs(self.env_options, cfg.seed + done))
        envs = model.get_env()
        eval_envs = make_envs(self.env_options)
        writer = SummaryWriter(self.dir / "tb", purge_step=done or None)
        bar = tqdm(total=cfg.total_steps, initial=done, unit="step")
        last_eval = -1

        def run_eval(step: int) -> None:
            nonlocal last_eval
            model.policy.set_training_mode(False)
            result = greedy_returns(model.q_net, eval_envs, cfg.eval_episodes, device,
                              cfg.seed + CURVE_SEED_OFFSET)
            writer.add_scalar("eval/mean_return", result.mean_return, step)
            writer.add_scalar("eval/collision_rate", result.collision_rate, step)
            writer.flush()
            last_eval = step
            if best["best_return"] is None or result.mean_return > best["best_return"]:
                best.update(best_return=result.mean_return, best_step=step)
                fd, tmp = tempfile.mkstemp(dir=run.dir, prefix=".best_q.", suffix=".tmp")
                with os.fdopen(fd, "wb") as f:
                    torch.save(model.q_net.state_dict(), f)
                os.replace(tmp, run.dir / "best_q.pt")
                write_json(run.dir / "best.json", dict(best))
            bar.set_postfix(best=best["best_return"], refresh=False)

        class Hooks(BaseCallback):
            def _on_step(self) -> bool:
                step = self.num_timesteps
                prev = step - self.training_env.num_envs
                bar.update(step - bar.n)
                if crossed(prev, step, cfg.eval_every):
                    run_eval(step)
                if crossed(prev, step, cfg.checkpoint_every):
                    run.save(self.model, best)
                return True

        try:
            model.learn(cfg.total_steps - done, callback=Hooks(), reset_num_timesteps=not done,
                        tb_log_name="sb3")
            if last_eval != model.num_timesteps:
                run_eval(model.num_timesteps)  # the final network is on the curve too
        except KeyboardInterrupt:
            self.save(model, best)
            raise
        finally:
            bar.close()
            writer.close()
            eval_envs.close()
            envs.close()
        self.save(model, best, replay=False)

    def networks(self) -> dict[str, Any]:
        import torch

        device = self.cfg.resolved_device()
        final, best = self.load(device), self.load(device)
        for model in (final, best):
            model.get_env().close()
        final, best = final.q_net, best.q_net
        best.load_state_dict(torch.load(self.dir / "best_q.pt", map_location=device,
                                        weights_only=True))
        return {"latest": final, "best": best}

    def cleanup(self) -> None:
        """The replay memory is only needed to resume: a finished run drops it (GBs)."""
        self.replay.unlink(missing_ok=True)


# The state of an SB3 replay memory: its arrays (next_observations unless SB3 saves memory by
# reading them from the next slot) and where it writes next.
REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def save_replay(buffer, path: Path) -> None:
    """Write an SB3 replay memory's arrays to ``path`` (``.npz``, atomically): plain arrays that
    :func:`load_replay` reads back without unpickling."""
    import numpy as np

    from agents.run_dir import atomic_write

    arrays = {name: getattr(buffer, name) for name in REPLAY_ARRAYS
              if getattr(buffer, name, None) is not None}
    atomic_write(path, lambda f: np.savez(f, pos=buffer.pos, full=buffer.full, **arrays))


def load_replay(buffer, path: Path) -> None:
    """Fill SB3 replay memory ``buffer`` from :func:`save_replay`'s file; SystemExit naming the
    file if it holds objects (a pickle) or arrays of other shapes than ``buffer``'s."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
    except (OSError, ValueError) as e:
        raise SystemExit(
            f"dqn_learning: {path}: not a replay memory of plain arrays ({e})") from None
    for name in REPLAY_ARRAYS:
        want = getattr(buffer, name, None)
        if want is None:
            continue
        got = arrays.get(name)
        if got is None or got.shape != want.shape or got.dtype != want.dtype:
            raise SystemExit(f"dqn_learning: {path}: its {name} do not fit the replay memory "
                             f"{want.shape} {want.dtype}")
        want[...] = got
    buffer.pos, buffer.full = int(arrays["pos"]), bool(arrays["full"])


# ------------------------------------------------------------------------ one run
def learning_curve(run_dir: Path) -> list[dict[str, float]]:
    """``[{step, mean_return, collision_rate}]`` from the run's TensorBoard scalars. A resumed
    run evaluates again the steps after its checkpoint: the last value written wins."""
    from agents.plots import learning_curve as scalars

    points: dict[int, dict[str, float]] = {}
    for tag, key in (("eval/mean_return", "mean_return"),
                     ("eval/collision_rate", "collision_rate")):
        steps, values = scalars(run_dir, tag)
        for step, value in zip(steps.tolist(), values.tolist(), strict=True):
            points.setdefault(int(step), {"step": int(step)})[key] = float(value)
    return [points[s] for s in sorted(points)]


def run_one(agent: str, seed: int, args, env_options: dict) -> dict | None:
    """Train (or resume) one run and evaluate it; None if it had finished before or another
    process is running it (several invocations may share a study directory)."""
    run_dir = Path(args.out) / f"{agent}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
        except BlockingIOError:
            print(f"{run_dir}: another process is running it, skipped", flush=True)
            return None
        if (run_dir / "result.json").exists():
            print(f"{run_dir}: finished before, skipped", flush=True)
            return None
        return _run_one(agent, seed, args, env_options, run_dir)


def _run_one(agent: str, seed: int, args, env_options: dict, run_dir: Path) -> dict:
    from agents.evaluate import evaluate
    from agents.run_dir import write_env_spec

    cfg = study_config(args, seed)
    settings = run_settings(agent, seed, args, env_options, cfg)
    recorded = read_json(run_dir / "settings.json")
    if recorded is None:
        write_json(run_dir / "settings.json", settings)
        write_env_spec(run_dir, ENV_ID, env_options, algo=None if agent == "lanesim" else "sb3-dqn")
    elif recorded != settings:
        changed = sorted(k for k in settings.keys() | recorded.keys()
                         if settings.get(k) != recorded.get(k))
        raise SystemExit(f"dqn_learning: {run_dir} was started with other settings ({changed} "
                         "differ); use the same flags to resume it, or another --out")
    run = (LanesimRun if agent == "lanesim" else SB3Run)(run_dir, cfg, env_options)

    sessions = read_json(run_dir / "sessions.json", [])
    start_step = run.steps_done()
    if start_step < cfg.total_steps:
        print(f"{run_dir}: training from step {start_step:,} to {cfg.total_steps:,}", flush=True)
        session = {"started": now(), "start_step": start_step, "end_step": None,
                   "seconds": None, "ended": None,
                   "load_average": [round(x, 2) for x in os.getloadavg()], **git_state()}
        sessions.append(session)
        write_json(run_dir / "sessions.json", sessions)  # a killed session stays "ended": null
        t0 = time.perf_counter()
        try:
            run.train()
            session["ended"] = "finished"
        except KeyboardInterrupt:
            session["ended"] = "interrupted"
            raise
        except BaseException as e:
            session["ended"] = f"failed: {type(e).__name__}: {e}"
            raise
        finally:
            session["seconds"] = round(time.perf_counter() - t0, 1)
            session["end_step"] = run.steps_done()
            write_json(run_dir / "sessions.json", sessions)

    print(f"{run_dir}: evaluating {args.eval_episodes} episodes from seed {FINAL_EVAL_SEED}",
          flush=True)
    t0 = time.perf_counter()
    evaluations = {}
    for name, q_net in run.networks().items():
        result = evaluate(GreedyQ(q_net), ENV_ID, episodes=args.eval_episodes,
                          seed=FINAL_EVAL_SEED, **env_options)
        evaluations[name] = {
            **{k: result[k] for k in SUMMARY_KEYS},
            "returns": [round(r, 3) for r in result["returns"]],
            "collisions": result["collisions"],
            "speeds": [round(s, 3) for s in result["speeds"]],
        }
    curve = learning_curve(run_dir)
    best_point = max(curve, key=lambda p: p["mean_return"]) if curve else None
    seconds = [s["seconds"] for s in sessions]
    train_seconds = sum(s for s in seconds if s is not None)
    result = {
        "agent": agent,
        "label": label_of(agent, settings.get("config", {})),
        "seed": seed,
        "steps": run.steps_done(),
        "settings": settings,
        "eval_seed": FINAL_EVAL_SEED,
        "final": evaluations["latest"],
        "best": {**evaluations["best"], "step": best_point and best_point["step"],
                 "curve_return": best_point and best_point["mean_return"]},
        "curve": curve,
        "train_seconds": round(train_seconds, 1),
        # A session killed without a chance to record itself leaves its time unknown.
        "train_seconds_complete": all(s is not None for s in seconds),
        "steps_per_s": round(cfg.total_steps / train_seconds, 2) if train_seconds else None,
        "eval_seconds": round(time.perf_counter() - t0, 1),
        "sessions": sessions,
        "finished": now(),
        "git": git_state(),
        "command": command(MODULE, sys.argv[1:]),
        "versions": versions(),
    }
    # load_before: the load average now, at the end of training (each session has its start's)
    result["machine"] = {k: v for k, v in machine().items() if k != "date"}
    write_json(run_dir / "result.json", result)
    run.cleanup()
    final = result["final"]
    print(f"{run_dir}: return {final['mean_return']:.2f}, collisions "
          f"{final['collision_rate']:.0%}, speed {final['mean_speed']:.1f} m/s, "
          f"{train_seconds / 60:.1f} min", flush=True)
    return result


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import stable_baselines3
    import torch

    return {"torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
            "python": sys.version.split()[0]}


# ------------------------------------------------------------------------ report
def references(out: Path, env_options: dict, episodes: int) -> dict[str, dict]:
    """Fixed policies on the final evaluation's episodes, to read the DQNs' figures against:
    always SLOWER, IDLE (lane following at the start speed) and the value-iteration driver
    (it sees the simulator's state, not pixels). Cached in OUT/references.json."""
    from agents.baselines import ConstantAgent, IdleAgent
    from agents.evaluate import evaluate
    from agents.vi_driver import VIDriver

    key = {"env_options": env_options, "episodes": episodes, "seed": FINAL_EVAL_SEED}
    cached = read_json(out / "references.json")
    if cached is not None and cached["key"] == key:
        return cached["results"]
    policies = {"always SLOWER": ConstantAgent(4), "idle (lane following)": IdleAgent(),
                "value-iteration driver": VIDriver()}
    results = {}
    for name, agent in policies.items():
        r = evaluate(agent, ENV_ID, episodes=episodes, seed=FINAL_EVAL_SEED, **env_options)
        results[name] = {k: r[k] for k in SUMMARY_KEYS}
    write_json(out / "references.json", {"key": key, "results": results})
    return results


def load_results(out: Path) -> list[dict]:
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*-seed*/result.json"))]
    order = {a: i for i, a in enumerate(AGENTS)}
    return sorted(results, key=lambda r: (order.get(r["agent"], 99), r["seed"]))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def report(out: Path, plot_path: Path, expected: int) -> str:
    """Markdown table of every finished run and the mean over seeds; writes the plot."""
    results = load_results(out)
    if not results:
        raise SystemExit(f"dqn_learning: no finished run in {out}")
    first = results[0]
    s = first["settings"]
    episodes = first["final"]["episodes"]
    lines = [
        f"DQN learning study: `{s['env_id']}` {s['env_options']}, N = {s['num_envs']} worlds, "
        f"{s['total_steps']:,} transitions per run; final evaluation: {episodes} greedy episodes "
        f"seeded {first['eval_seed']:,} + i (the same for every run), of the final network and of "
        f"the best one on the learning curve ({s['curve_episodes']} episodes every "
        f"{s['curve_every']:,} steps). {len(results)} of {expected} runs finished.",
        "",
        *sorted({f"- {setup_of(r)}" for r in results}),
        "",
        "| agent | seed | final: return | collisions | speed (m/s) | best on curve (step) "
        "| best: return | collisions | speed (m/s) | wall time | steps/s | finished |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def row(label, seed, final, best, best_step, minutes, sps, date):
        return (f"| {label} | {seed} | {final['mean_return']:.2f} | "
                f"{final['collision_rate']:.0%} | {final['mean_speed']:.1f} | {best_step} | "
                f"{best['mean_return']:.2f} | {best['collision_rate']:.0%} | "
                f"{best['mean_speed']:.1f} | {minutes} | {sps} | {date} |")

    by_agent: dict[str, list[dict]] = {}
    for r in results:
        by_agent.setdefault(r["agent"], []).append(r)
        minutes = f"{r['train_seconds'] / 60:.0f} min" + ("" if r["train_seconds_complete"]
                                                         else " (incomplete)")
        lines.append(row(r["agent"], r["seed"], r["final"], r["best"],
                         f"{r['best']['step']:,}", minutes, f"{r['steps_per_s']:.0f}",
                         r["finished"][:10]))
    means = {}
    for agent, runs in by_agent.items():
        keys = ("mean_return", "collision_rate", "mean_speed")
        final = {k: _mean([r["final"][k] for r in runs]) for k in keys}
        best = {k: _mean([r["best"][k] for r in runs]) for k in keys}
        means[agent] = final
        minutes = f"{_mean([r['train_seconds'] for r in runs]) / 60:.0f} min"
        sps = f"{_mean([r['steps_per_s'] for r in runs]):.0f}"
        lines.append(row(f"**{agent}, mean of {len(runs)} seed(s)**", "—", final, best, "—",
                         minutes, sps, ""))
    lines += ["", "Targets (issue #6), on the final networks:"]
    for agent, m in means.items():
        per_seed = {r["seed"]: r["final"]["collision_rate"] for r in by_agent[agent]}
        ok = "met" if max(per_seed.values()) <= 0.05 else "not met"
        lines.append(f"- {agent}: collision rate per seed "
                     f"{', '.join(f'{s}: {100 * c:g} %' for s, c in per_seed.items())} "
                     f"(each <= 5 %: {ok}; "
                     f"{m['collision_rate']:.1%} over all), mean speed "
                     f"{m['mean_speed']:.1f} m/s, mean return {m['mean_return']:.2f}")
    if {"lanesim", "sb3"} <= means.keys():
        seeds = sorted({r["seed"] for r in by_agent["lanesim"]}
                       & {r["seed"] for r in by_agent["sb3"]})
        if seeds:
            pair = {a: _mean([r["final"]["mean_return"] for r in by_agent[a]
                              if r["seed"] in seeds]) for a in ("lanesim", "sb3")}
            ok = "met" if pair["lanesim"] > pair["sb3"] else "not met"
            lines.append(f"- lanesim's mean return above SB3's (seeds {seeds}): "
                         f"{pair['lanesim']:.2f} vs {pair['sb3']:.2f}: {ok}")
    else:
        lines.append("- lanesim against SB3: not compared (runs of both agents needed)")
    refs = references(out, s["env_options"], episodes)
    lines += ["", f"Reference policies on the same {episodes} episodes:", "",
              "| policy | return | collisions | speed (m/s) |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {r['mean_return']:.2f} | {r['collision_rate']:.0%} | "
              f"{r['mean_speed']:.1f} |" for name, r in refs.items()]
    lines.append(f"\nplot: {plot_path}")
    plot(results, refs, plot_path)
    text = "\n".join(lines)
    (out / "report.md").write_text(text + "\n")
    return text


def plot(results: list[dict], refs: dict[str, dict], path: Path) -> None:
    """Learning curves: greedy return and collision rate against steps; thin lines are seeds,
    thick ones their mean; markers the held-out evaluation of each run's final network
    (diamonds) and best network on the curve (circles); grey lines reference policies."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(11, 5.2))
    for agent in AGENTS:
        runs = [r for r in results if r["agent"] == agent and r["curve"]]
        if not runs:
            continue
        color = COLORS[agent]
        curves = []
        for r in runs:
            steps = np.array([p["step"] for p in r["curve"]])
            ret = np.array([p["mean_return"] for p in r["curve"]])
            col = np.array([p["collision_rate"] for p in r["curve"]])
            curves.append((steps, ret, col))
            ax_r.plot(steps, ret, color=color, lw=0.8, alpha=0.35)
            ax_c.plot(steps, 100 * col, color=color, lw=0.8, alpha=0.35)
        common = sorted(set.intersection(*(set(c[0].tolist()) for c in curves)))
        if common:
            idx = [np.searchsorted(c[0], common) for c in curves]
            mean_r = np.mean([c[1][i] for c, i in zip(curves, idx, strict=True)], axis=0)
            mean_c = np.mean([c[2][i] for c, i in zip(curves, idx, strict=True)], axis=0)
            what = label_of(agent, runs[0]["settings"].get("config", {}))
            label = f"{what}: mean of {len(runs)} seed(s)"
            ax_r.plot(common, mean_r, color=color, lw=2, label=label)
            ax_c.plot(common, 100 * mean_c, color=color, lw=2, label=label)
        n = runs[0]["final"]["episodes"]
        for i, r in enumerate(runs):
            first = i == 0
            for which, marker, what in (("final", "D", "final"), ("best", "o", "best on curve")):
                x = r["steps"] if which == "final" else r["best"]["step"]
                ev = r[which]
                label = f"{agent}: {what} network, {n} held-out episodes" if first else None
                style = {"color": color, "mec": "black" if which == "final" else color,
                         "mfc": color if which == "final" else "white", "mew": 1.5}
                ax_r.plot([x], [ev["mean_return"]], marker, label=label, **style)
                ax_c.plot([x], [100 * ev["collision_rate"]], marker, **style)
    for (name, ref), ls in zip(refs.items(), (":", "-.", "--"), strict=False):
        ax_r.axhline(ref["mean_return"], color="grey", ls=ls, lw=1,
                     label=f"{name} ({ref['collision_rate']:.0%} collisions)")
    ax_c.axhline(5, color="black", ls="--", lw=1, label="target 5 %")
    episodes = results[0]["settings"]["curve_episodes"]
    ax_r.set_title(f"greedy return ({episodes} episodes per point)")
    ax_c.set_title(f"greedy collision rate ({episodes} episodes per point)")
    ax_r.set_ylabel("mean return per episode")
    ax_c.set_ylabel("episodes ending in a collision (%)")
    ax_c.set_ylim(-2, 102)
    for ax in (ax_r, ax_c):
        ax.set_xlabel("environment steps (transitions)")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda x, _: f"{x / 1000:g}k" if x else "0"))
    # One legend for both panels, under them, so that it hides no curve.
    handles = {}
    for ax in (ax_r, ax_c):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.19, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(prog="python -m lanesim_bench.dqn_learning",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000, help="transitions per run")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--agents", default="lanesim,sb3", help="comma-separated, from lanesim, sb3")
    ap.add_argument("--out", default="runs/dqn_learning", help="study directory")
    ap.add_argument("--eval-episodes", type=int, default=100,
                    help="final greedy evaluation episodes per network (default 100)")
    ap.add_argument("--curve-every", type=int, default=10_000,
                    help="transitions between learning-curve evaluations (default 10,000)")
    ap.add_argument("--curve-episodes", type=int, default=10,
                    help="episodes per learning-curve evaluation (default 10)")
    ap.add_argument("--checkpoint-every", type=int, default=25_000,
                    help="transitions between checkpoints (default 25,000)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--env", action="append", default=[], type=assignment, metavar="KEY=VALUE",
                    help=f"environment option over the study's {STUDY_ENV}")
    ap.add_argument("--config", action="append", default=[], type=assignment,
                    metavar="FIELD=VALUE", help="a DQNConfig field over the study's settings "
                    "(SB3 gets the ones its DQN has)")
    ap.add_argument("--report", action="store_true",
                    help="only aggregate the finished runs: OUT/report.md and the plot")
    ap.add_argument("--plot", default=None, help="plot path (default OUT/learning_curves.png)")
    ap.add_argument("--write", metavar="FILE.md",
                    help="with --report: also write the report to this file "
                    "(docs/dqn_learning.md is this)")
    args = ap.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.agent_list = [a.strip() for a in args.agents.split(",") if a.strip()]
    bad = [a for a in args.agent_list if a not in AGENTS]
    if bad:
        ap.error(f"unknown agent(s) {bad}; choose from {', '.join(AGENTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if args.report:
        plot_path = Path(args.plot) if args.plot else out / "learning_curves.png"
        text = report(out, plot_path, len(args.seed_list) * len(args.agent_list))
        print(text)
        if args.write:
            write_report(Path(args.write), command(MODULE, sys.argv[1:] if argv is None else argv),
                         text)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    env_options = {**STUDY_ENV, **dict(args.env)}
    # `kill PID` ends a run as Ctrl-C does: a checkpoint first, then exit.
    sigterm = signal.signal(signal.SIGTERM, _sigterm)
    try:
        for seed in args.seed_list:
            for agent in args.agent_list:
                run_one(agent, seed, args, env_options)
    except KeyboardInterrupt:
        print("interrupted: checkpoint saved; the same command resumes", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
