"""Training throughput of lanesim's DQN against Stable-Baselines3's DQN, in one command.

Run::

    python -m lanesim_bench.bench_dqn            # 3 runs of each agent, 3,000 timed steps
    python -m lanesim_bench.bench_dqn --quick    # 3 short runs of each, to try it out
    python -m lanesim_bench.bench_dqn --write docs/bench_dqn.md   # the report in docs/

What is measured: environment transitions per second (summed over the N sub-environments) of a
whole training loop (act, step, store, sample, learn, update the target) once learning has
started. Both agents train on the same batched simulator, ``lanesim/Highway-v0`` with
``observation="pixels"`` (4 stacked 84x84 uint8 frames) and N = 8 worlds: lanesim's DQN on
``gym.make_vec`` and SB3 on :func:`lanesim.envs.sb3.make_sb3_vec_env`, which steps the same
simulator. Held equal:

* network size: the Nature-DQN trunk (convs 32x8x8/4, 64x4x4/2, 64x3x3/1, then 512 units;
  SB3's ``NatureCNN`` has ``features_dim=512``, lanesim gets ``hidden=512``);
* batch size (32), replay capacity (``--buffer-size``, default 100,000 transitions), learning
  rate, gradient-norm clip, target-update interval and exploration schedule;
* gradient steps per environment transition. lanesim's ``DQNConfig.train_freq`` counts
  transitions (``gradient_steps`` every ``train_freq`` of them, whatever N is); SB3's
  ``train_freq`` counts ``VecEnv.step`` calls of N transitions each. lanesim's defaults
  (``train_freq=4``, ``gradient_steps=1``: 1/4 per transition) are therefore SB3's
  ``train_freq=1`` (one vector step) with ``gradient_steps = N / 4`` (2 for N = 8). The ratio
  is also *measured*: a global optimizer-step hook counts gradient steps inside the timed
  window, and the table shows the count per transition for each run.

SB3 runs its plain DQN (``CnnPolicy``, one-step targets, no dueling, no double DQN, uniform
replay). lanesim runs its defaults (dueling heads, double DQN, 3-step returns) with uniform
replay, then with prioritized replay, and as ``lanesim-plain``: the same algorithm as SB3's
(no dueling, no double, 1-step), which separates what the algorithm costs (double DQN's extra
forward pass) from what the implementation costs. ``--variants`` picks rows.

Timing: every run is a fresh subprocess. A wrapper around the vector env's step records the
wall clock and the process CPU time after each step; the timed window runs from vector step
``k0 = ceil(1.5 * learning_starts / N) + 16`` (both agents are learning by then: the worker
checks) to the last step, the same transitions for every agent. Runs alternate between the
agents, round after round, so a busy shared machine slows each about equally; the table gives
the median of the rounds. ``--threads`` (default 1) sets ``torch.set_num_threads`` in every
worker: on a shared 2-core machine a second torch thread spins against other jobs and makes
both agents several times slower. CPU-seconds per 1,000 steps (process CPU time in the
window) is the figure least disturbed by other jobs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lanesim_bench.common import command, machine, run_json, write_report

MODULE = "lanesim_bench.bench_dqn"

ENV_ID = "lanesim/Highway-v0"
ENV_OPTIONS = {"observation": "pixels"}
# The timed window opens at vector step ceil(1.5 * learning_starts / N) + SETTLE, when both
# agents are learning: SB3 starts after learning_starts transitions, lanesim once its replay
# holds learning_starts complete ones (n-step lookahead written, an episode's final
# observation not counted), which with short random-driving episodes takes up to ~25 % more.
SETTLE = 16

VARIANTS = {
    "lanesim": "lanesim DQN: dueling, double, 3-step, uniform replay",
    "lanesim-per": "lanesim DQN: dueling, double, 3-step, prioritized replay",
    "lanesim-plain": "lanesim DQN: plain (SB3's algorithm: 1-step, no dueling, no double)",
    "sb3": "SB3 DQN `CnnPolicy` (plain: 1-step, no dueling, no double, uniform replay)",
}


# ---------------------------------------------------------------- settings shared by both
def settings(args) -> dict:
    """Every setting both agents get, from lanesim's DQNConfig defaults and the flags."""
    from agents.dqn import DQNConfig

    base = DQNConfig()
    n = args.num_envs
    if (n * base.gradient_steps) % base.train_freq:
        raise SystemExit(
            f"--num-envs {n}: N * gradient_steps ({base.gradient_steps}) must be a multiple of "
            f"train_freq ({base.train_freq}) for SB3 to take the same gradient steps per step"
        )
    k0 = math.ceil(1.5 * args.learning_starts / n) + SETTLE
    timed = math.ceil(args.steps / n) * n
    return {
        "num_envs": n,
        "threads": args.threads,
        "seed": args.seed,
        "buffer_size": args.buffer_size,
        "batch_size": base.batch_size,
        "hidden": 512,
        "lr": base.lr,
        "gamma": base.gamma,
        "grad_clip": base.grad_clip,
        "target_update": base.target_update,
        "eps_start": base.eps_start,
        "eps_end": base.eps_end,
        "eps_fraction": base.eps_fraction,
        "learning_starts": args.learning_starts,
        # lanesim: gradient_steps every train_freq transitions
        "train_freq": base.train_freq,
        "gradient_steps": base.gradient_steps,
        # SB3: sb3_gradient_steps after every vector step (train_freq=1) of N transitions
        "sb3_gradient_steps": n * base.gradient_steps // base.train_freq,
        "window_start": k0,  # vector step that opens the timed window
        "timed_steps": timed,
        "total_steps": k0 * n + timed,
    }


# ---------------------------------------------------------------- worker (subprocess)
class Clock:
    """Wall and CPU time after every vector step, with the gradient steps taken so far."""

    def __init__(self) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.updates: list[int] = []
        self.gradient_steps = 0
        register_optimizer_step_post_hook(self._count)

    def _count(self, *_) -> None:
        self.gradient_steps += 1

    def wrap(self, step):
        def timed_step(*args, **kwargs):
            out = step(*args, **kwargs)
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())
            self.updates.append(self.gradient_steps)
            return out

        return timed_step

    def window(self, s: dict) -> dict:
        k0, n = s["window_start"], s["num_envs"]
        first_update = next((i for i, u in enumerate(self.updates) if u > 0), None)
        if first_update is None or first_update >= k0:
            raise RuntimeError(
                f"learning had not started by vector step {k0} (first gradient step after step "
                f"{first_update}); raise SETTLE"
            )
        # Index k0 - 1 is the end of vector step k0 (steps count from 1).
        a, b = k0 - 1, len(self.wall) - 1
        steps = (b - a) * n
        assert steps == s["timed_steps"], (steps, s["timed_steps"])
        return {
            "steps": steps,
            "seconds": self.wall[b] - self.wall[a],
            "cpu_seconds": self.cpu[b] - self.cpu[a],
            "gradient_steps": self.updates[b] - self.updates[a],
            "rate": steps / (self.wall[b] - self.wall[a]),
            "cpu_per_1k": 1000 * (self.cpu[b] - self.cpu[a]) / steps,
        }


def worker(variant: str, s: dict) -> dict:
    import gymnasium as gym
    import torch

    import lanesim  # noqa: F401  (registers the env ids)

    torch.set_num_threads(s["threads"])
    clock = Clock()
    out: dict = {"variant": variant, "torch": torch.__version__}
    if variant == "sb3":
        import stable_baselines3
        from stable_baselines3 import DQN

        from lanesim.envs.sb3 import make_sb3_vec_env

        venv = make_sb3_vec_env(ENV_ID, num_envs=s["num_envs"], seed=s["seed"], **ENV_OPTIONS)
        venv.step_wait = clock.wrap(venv.step_wait)  # DQN calls venv.step(): async + wait
        model = DQN(
            "CnnPolicy",
            venv,
            learning_rate=s["lr"],
            buffer_size=s["buffer_size"],
            learning_starts=s["learning_starts"],
            batch_size=s["batch_size"],
            gamma=s["gamma"],
            train_freq=(1, "step"),
            gradient_steps=s["sb3_gradient_steps"],
            target_update_interval=s["target_update"],
            exploration_fraction=s["eps_fraction"],
            exploration_initial_eps=s["eps_start"],
            exploration_final_eps=s["eps_end"],
            max_grad_norm=s["grad_clip"],
            policy_kwargs={"features_extractor_kwargs": {"features_dim": s["hidden"]}},
            seed=s["seed"],
            device="cpu",
        )
        model.learn(s["total_steps"])
        out["parameters"] = sum(p.numel() for p in model.q_net.parameters())
        out["sb3"] = stable_baselines3.__version__
        venv.close()
    else:
        from agents.dqn import DQNConfig, train_dqn
        from agents.dqn.checkpoint import load_checkpoint

        algorithm = {
            "lanesim": {},
            "lanesim-per": {"prioritized": True},
            "lanesim-plain": {"dueling": False, "double": False, "n_step": 1},
        }[variant]
        config = DQNConfig(
            seed=s["seed"],
            total_steps=s["total_steps"],
            num_envs=s["num_envs"],
            device="cpu",
            hidden=s["hidden"],
            buffer_size=s["buffer_size"],
            batch_size=s["batch_size"],
            lr=s["lr"],
            gamma=s["gamma"],
            grad_clip=s["grad_clip"],
            learning_starts=s["learning_starts"],
            train_freq=s["train_freq"],
            gradient_steps=s["gradient_steps"],
            target_update=s["target_update"],
            eps_start=s["eps_start"],
            eps_end=s["eps_end"],
            eps_fraction=s["eps_fraction"],
            checkpoint_every=10 * s["total_steps"],  # latest.pt only after the loop
            progress=False,
            **algorithm,
        )
        envs = gym.make_vec(ENV_ID, num_envs=s["num_envs"], **ENV_OPTIONS)
        envs.step = clock.wrap(envs.step)
        with tempfile.TemporaryDirectory(prefix="bench_dqn_") as tmp:
            # A VectorEnv instance and no eval_envs: train_dqn() runs no evaluation.
            train_dqn(envs, config, tmp)
            # The checkpoint format's own reader (a checksummed file, no pickle).
            ckpt = load_checkpoint(Path(tmp) / "latest.pt")
        out["parameters"] = sum(v.numel() for v in ckpt["online"].values())
        out["config"] = {
            k: v
            for k, v in config.to_dict().items()
            if k in ("dueling", "double", "n_step", "prioritized", "hidden")
        }
        envs.close()
    out.update(clock.window(s))
    return out


def warm() -> None:
    """Compile the env's kernels (numba caches them on disk) before any timed process."""
    import gymnasium as gym

    import lanesim  # noqa: F401

    envs = gym.make_vec(ENV_ID, num_envs=2, **ENV_OPTIONS)
    envs.reset(seed=0)
    envs.step(envs.action_space.sample())
    envs.close()


def run_worker(variant: str, args) -> dict:
    return run_json([sys.executable, "-m", MODULE, "--worker", variant, *_passthrough(args)])


def _passthrough(args) -> list[str]:
    return [
        "--steps",
        str(args.steps),
        "--learning-starts",
        str(args.learning_starts),
        "--num-envs",
        str(args.num_envs),
        "--buffer-size",
        str(args.buffer_size),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
    ]


# ---------------------------------------------------------------- report
def summarize(variant: str, runs: list[dict]) -> dict:
    return {
        "variant": variant,
        "rate": statistics.median(r["rate"] for r in runs),
        "rates": [r["rate"] for r in runs],
        "cpu_per_1k": statistics.median(r["cpu_per_1k"] for r in runs),
        "gradient_steps_per_step": statistics.median(
            r["gradient_steps"] / r["steps"] for r in runs
        ),
        "parameters": runs[0]["parameters"],
    }


def markdown(meta: dict, s: dict, rows: list[dict]) -> str:
    sb3 = next((r for r in rows if r["variant"] == "sb3"), None)
    lines = [
        f"lanesim DQN vs Stable-Baselines3 {meta.get('sb3', '?')} DQN, training throughput — "
        f"{meta['date']}, {meta['cpu']}, {meta['cores']} cores, Python {meta['python']}, "
        f"torch {meta.get('torch', '?')} with {s['threads']} thread(s); load average "
        f"(1/5/15 min) {meta['load_before']} before, {meta.get('load_after')} after",
        f"settings: `{ENV_ID}` {ENV_OPTIONS} (4x84x84 uint8), N = {s['num_envs']} envs, "
        f"batch {s['batch_size']}, buffer {s['buffer_size']:,}, hidden {s['hidden']}, "
        f"learning_starts {s['learning_starts']:,}; gradient steps: lanesim "
        f"train_freq={s['train_freq']} transitions x gradient_steps={s['gradient_steps']}, SB3 "
        f"train_freq=1 vector step x gradient_steps={s['sb3_gradient_steps']} "
        f"(= {s['gradient_steps'] / s['train_freq']:g} per transition for both); timed: "
        f"{s['timed_steps']:,} transitions from vector step {s['window_start']}; "
        f"{meta['repeats']} alternating runs each, median",
        f"command: `{meta['command']}`",
        "",
        "| agent | parameters | gradient steps / transition | steps/s (runs) "
        "| CPU-s / 1k steps | vs SB3 (steps/s) | vs SB3 (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        runs = ", ".join(f"{x:.1f}" for x in r["rates"])
        if sb3 is not None and r is not sb3:
            ratio = f"{r['rate'] / sb3['rate']:.2f}×"
            cpu_ratio = f"{sb3['cpu_per_1k'] / r['cpu_per_1k']:.2f}×"
        else:
            ratio = cpu_ratio = "—"
        lines.append(
            f"| {VARIANTS[r['variant']]} | {r['parameters']:,} | "
            f"{r['gradient_steps_per_step']:.3f} | **{r['rate']:.1f}** ({runs}) | "
            f"{r['cpu_per_1k']:.1f} | {ratio} | {cpu_ratio} |"
        )
    lines += [
        "",
        "steps/s: environment transitions per wall-clock second inside the timed window "
        "(median, then each run in the order run). CPU-s / 1k steps: the worker's process CPU "
        "time per 1,000 transitions in the window (lower is better); with one torch thread it "
        "is the least noisy figure on a shared machine. Target: lanesim >= 1.5x SB3.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lanesim_bench.bench_dqn",
                                 description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="short runs (400 timed steps after 400 of warm-up) to try it out",
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed environment transitions per run (default 3000; --quick 400)",
    )
    ap.add_argument(
        "--learning-starts",
        type=int,
        default=None,
        help="transitions collected before learning (default 1000; --quick 400)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs per agent")
    ap.add_argument("--num-envs", type=int, default=8, help="parallel worlds (N)")
    ap.add_argument("--buffer-size", type=int, default=100_000, help="replay capacity")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per worker")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--variants",
        default="lanesim,lanesim-per,lanesim-plain,sb3",
        help=f"comma-separated, from {', '.join(VARIANTS)}",
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--write", metavar="FILE.md",
                    help="also write the report to this file (docs/bench_dqn.md is this)")
    ap.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps is None:
        args.steps = 400 if args.quick else 3000
    if args.learning_starts is None:
        args.learning_starts = 400 if args.quick else 1000

    if args.warm:
        warm()
        return 0
    s = settings(args)
    if args.worker:
        json.dump(worker(args.worker, s), sys.stdout)
        print()
        return 0

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    meta = machine()
    meta.update(
        repeats=args.repeats, command=command(MODULE, sys.argv[1:] if argv is None else argv)
    )
    print("warming up (compiling the env) ...", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", MODULE, "--warm"],
        check=True,
        env=dict(os.environ, SDL_VIDEODRIVER="dummy"),
        stdout=subprocess.DEVNULL,
    )
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for rnd in range(args.repeats):
        # Rotate the order every round so no agent always runs first or last.
        order = variants[rnd % len(variants) :] + variants[: rnd % len(variants)]
        for v in order:
            r = run_worker(v, args)
            runs[v].append(r)
            meta["torch"] = r["torch"]
            if "sb3" in r:
                meta["sb3"] = r["sb3"]
            print(
                f"[round {rnd + 1}/{args.repeats}] {v}: {r['rate']:.1f} steps/s, "
                f"{r['cpu_per_1k']:.1f} CPU-s/1k steps, {r['gradient_steps']} gradient steps "
                f"in {r['steps']} transitions, load {os.getloadavg()[0]:.2f}",
                file=sys.stderr,
                flush=True,
            )
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    rows = [summarize(v, runs[v]) for v in variants]
    if args.json:
        json.dump({"meta": meta, "settings": s, "rows": rows, "runs": runs}, sys.stdout, indent=1)
        print()
    else:
        print(markdown(meta, s, rows))
    if args.write:
        write_report(Path(args.write), meta["command"], markdown(meta, s, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
