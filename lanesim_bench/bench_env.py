"""Benchmark lanesim's environment speed and memory against highway-env, in one command.

Run (``lanesim bench`` is the same command)::

    python -m lanesim_bench.bench_env            # every case, single and batched
    python -m lanesim_bench.bench_env --quick --cases a,b --no-peer
    python -m lanesim_bench.bench_env --quick --write docs/bench_env.md   # the report in docs/

Cases (random actions from each env's own action space, drawn before timing; an episode that
ends is reset inside the timed loop, so resets count):

* (a) highway-v0 scale: 4 lanes, 50 vehicles, 15 Hz simulation, 1 decision/s, kinematics.
  Peer: highway-env ``highway-v0``, default config.
* (b) highway-fast scale: 3 lanes, 20 vehicles, 5 Hz, 1 decision/s, kinematics.
  Peer: ``highway-fast-v0``.
* (c) (b) with pixels, 4 stacked 84x84 grey frames. Peer: ``highway-fast-v0`` with a
  ``GrayscaleObservation`` of 4 stacked 128x64 frames.
* (d) lane keeping: ``lanesim/LaneKeeping-v0`` with no traffic, 10 Hz simulation and decisions,
  continuous actions. Peer: ``lane-keeping-v0`` (10/10 Hz, continuous steering).

lanesim's action types mirror the peer's: ``meta`` for highway-env's ``DiscreteMetaAction`` in
(a)-(c), ``continuous`` for lane-keeping's steering in (d).

Each case runs single (``gym.make``) and batched (``gym.make_vec``, N = 16 and 256); a batched
rate is environment steps per second summed over the sub-environments. Every figure is the
median of several timed runs, each in a fresh subprocess per case and size so that its peak
resident memory (``getrusage`` max RSS) is its own.

Then the cold start (``--no-cold`` skips it): seconds from launching a fresh Python process to
the end of its first ``step()`` of case (a), for lanesim with an empty numba cache (its first
use on a machine, compiling every kernel the step needs), lanesim on the cache that run wrote
(every later process), and highway-env, each the median of a few runs. The empty caches are
temporary directories (``NUMBA_CACHE_DIR``), so the project's own cache is left alone.

highway-env is not a lanesim dependency, and it installs pygame-ce, which breaks lanesim's
pygame, so it runs in a subprocess under its own venv (``--peer-venv``, by default in the
user's cache), created once from ``requirements-peer.txt`` (torch's pinned CPU wheel first,
then highway-env) and recreated when that file changes. highway-env has no batched simulator:
its figure on a batched row is its single-env rate times this machine's cores, the ideal of a
process-parallel ``AsyncVectorEnv`` (marked ``*``), an upper bound, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lanesim_bench import peer_highway_env
from lanesim_bench.common import (
    PEER_REQUIREMENTS,
    PEER_VENV,
    command,
    ensure_venv,
    machine,
    run_json,
    write_report,
)
from lanesim_bench.peer_highway_env import first_step, peak_rss_mib, time_env

MODULE = "lanesim_bench.bench_env"
SIZES = (1, 16, 256)
GIB = 1024.0  # MiB


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    env_id: str
    options: dict
    peer_anchor: float  # highway-env's published-order figure (steps/s), for orientation only
    targets: dict = field(default_factory=dict)  # num_envs -> steps/s
    memory_target_mib: dict = field(default_factory=dict)  # num_envs -> MiB


# Actions mirror the peer's: highway-env's DiscreteMetaAction is lanesim's "meta" (a lane-following
# controller, so random actions change lanes and speed rather than steer off the road), and
# lane-keeping-v0's steering-only ContinuousAction at 10 Hz is lanesim's "continuous" at 10/10 Hz.
FAST = dict(observation="kinematics", action="meta", lanes=3, vehicles=20, sim_hz=5, policy_hz=1,
            duration=30)
CASES = {
    "a": Case(
        "a",
        "highway-v0 scale: 4 lanes, 50 cars, 15/1 Hz, kinematics",
        "lanesim/Highway-v0",
        dict(observation="kinematics", action="meta", lanes=4, vehicles=50, sim_hz=15,
             policy_hz=1, duration=40),
        2.7,
        {1: 1_000, 256: 50_000},
    ),
    "b": Case(
        "b",
        "highway-fast scale: 3 lanes, 20 cars, 5/1 Hz, kinematics",
        "lanesim/Highway-v0",
        FAST,
        27.0,
        {1: 3_000, 256: 200_000},
    ),
    "c": Case(
        "c",
        "(b) with pixels 4x84x84 (peer: grayscale 4x128x64)",
        "lanesim/Highway-v0",
        dict(FAST, observation="pixels", frame_stack=4, image_shape=[84, 84]),
        30.0,
        {1: 1_500, 256: 20_000},
        {256: GIB},
    ),
    "d": Case(
        "d",
        "lane keeping: one car, winding road, 10/10 Hz, continuous steering",
        "lanesim/LaneKeeping-v0",
        dict(vehicles=0, action="continuous", sim_hz=10, policy_hz=10),
        1_900.0,
        {1: 20_000},
    ),
}


# ---------------------------------------------------------------- lanesim worker (subprocess)
def worker(case: Case, num_envs: int, seconds: float, min_steps: int, repeats: int,
           profile: bool) -> dict:
    """Time one case at one size in this process; the caller runs it in a fresh subprocess."""
    import gymnasium as gym
    import numpy as np

    import lanesim

    # Baseline: the runtime with one env of this case made and stepped (compiled code loaded),
    # so the growth over it is what the measured env itself costs.
    probe = gym.make(case.env_id, **case.options)
    probe.reset(seed=0)
    probe.step(probe.action_space.sample())
    probe.close()
    del probe
    baseline = peak_rss_mib()
    if num_envs == 1:
        env = gym.make(case.env_id, **case.options)
    else:
        env = gym.make_vec(case.env_id, num_envs=num_envs, **case.options)
    if profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    result = time_env(env, num_envs, seconds, min_steps, repeats)
    if profile:
        prof.disable()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        print(f"=== profile: case {case.name}, N={num_envs}\n{out.getvalue()}", file=sys.stderr)
    result.update(
        simulator="lanesim",
        version=lanesim.__version__,
        numpy=np.__version__,
        env_id=case.env_id,
        options=case.options,
        num_envs=num_envs,
        observation_shape=list(env.observation_space.shape),
        peak_rss_mib=peak_rss_mib(),
        baseline_rss_mib=baseline,
    )
    return result


def warm_caches(cases: list[str], module: str = MODULE) -> None:
    """Make and step every case once in a throwaway process (``python -m module --warm``), so
    compiled-code caches (numba's, written to disk) exist before the measured workers, whose
    peak memory then excludes compilation."""
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    cmd = [sys.executable, "-m", module, "--warm", ",".join(cases)]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def warm(cases: list[Case]) -> None:
    """Make, reset and step every case single and batched (the ``--warm`` process)."""
    import gymnasium as gym

    import lanesim  # noqa: F401

    for c in cases:
        for env in (gym.make(c.env_id, **c.options),
                    gym.make_vec(c.env_id, num_envs=2, **c.options)):
            env.reset(seed=0)
            env.step(env.action_space.sample())


def run_worker(case: str, num_envs: int, args, module: str = MODULE) -> dict:
    """One case at one size, timed in a fresh ``python -m module --worker`` process."""
    cmd = [
        sys.executable, "-m", module, "--worker", case,
        "--num-envs", str(num_envs), "--seconds", str(args.seconds),
        "--min-steps", str(args.min_steps), "--repeats", str(args.repeats),
    ]
    if getattr(args, "profile", False):
        cmd.append("--profile")
    return run_json(cmd)


# ---------------------------------------------------------------- highway-env (its own venv)
def run_peer(python: Path, case: str, args) -> dict:
    cmd = [
        # By path: the peer venv has no lanesim, and this module imports none.
        str(python), peer_highway_env.__file__, "--case", case,
        "--seconds", str(args.seconds), "--min-steps", str(args.min_steps),
        "--repeats", str(args.repeats),
    ]
    return run_json(cmd)


# ---------------------------------------------------------------- cold start
COLD_CASE = "a"
COLD_TARGET_S = 5.0  # the "a few seconds" for a compiled helper's cold start


def first_step_worker(case: Case, started: float) -> dict:
    """Import lanesim, then make, reset and step one env of ``case``: run in a fresh process."""
    import gymnasium as gym

    import lanesim  # noqa: F401

    return first_step(lambda: gym.make(case.env_id, **case.options), started)


def cold_start(case: str, peer_python: Path | None, repeats: int) -> dict:
    """Seconds from launching a fresh Python process to the end of its first ``step()`` of
    ``case``, median of ``repeats``: lanesim with an empty numba cache (its first use on a
    machine: every kernel the step needs is compiled), lanesim again on the cache that run
    wrote (every later process), and highway-env (no compiled code). Each lanesim pair gets its
    own empty cache directory (``NUMBA_CACHE_DIR``), so the project's own cache is untouched.
    """
    runs: dict[str, list[dict]] = {"empty": [], "cached": [], "peer": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="lanesim-cold-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for key in ("empty", "cached"):
                runs[key].append(_timed([sys.executable, "-m", MODULE, "--first-step", case],
                                        env))
        if peer_python is not None:
            cmd = [str(peer_python), peer_highway_env.__file__, "--case", case, "--first-step"]
            runs["peer"].append(_timed(cmd, dict(os.environ)))
    return {
        key: {
            "wall": statistics.median(r["wall"] for r in rs),
            "walls": [r["wall"] for r in rs],
            **{phase: statistics.median(r[phase] for r in rs)
               for phase in ("import", "make", "reset", "step")},
        }
        for key, rs in runs.items()
        if rs
    }


def _timed(cmd: list[str], env: dict) -> dict:
    """Run ``cmd`` (which prints its phases as JSON) and add its wall time from launch."""
    start = time.perf_counter()
    result = run_json(cmd, env)
    result["wall"] = time.perf_counter() - start
    return result


# ---------------------------------------------------------------- report
def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def markdown(meta: dict, rows: list[dict]) -> str:
    cores = meta["cores"]
    lines = [
        f"lanesim {meta.get('lanesim', '?')} (numpy {meta.get('numpy', '?')}) vs "
        f"highway-env {meta.get('peer_version', '—')} — {meta['date']}, {meta['cpu']}, "
        f"{cores} cores, Python {meta['python']}; load average (1/5/15 min) "
        f"{meta['load_before']} before, {meta.get('load_after')} after",
        f"settings: {meta['repeats']} runs of >= {meta['seconds']} s, median; "
        f"command: `{meta['command']}`",
        "",
        "| case | N | lanesim steps/s | target | peak RSS MiB (env) | highway-env steps/s "
        "| ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = r.get("target")
        mark = "" if target is None else (" ✓" if r["rate"] >= target else " ✗")
        mem_t = r.get("memory_target_mib")
        mem_mark = "" if mem_t is None else (" ✓" if r["peak_rss_mib"] < mem_t else " ✗")
        peer = r.get("peer_rate")
        peer_txt = "—" if peer is None else _fmt(peer) + ("*" if r["num_envs"] > 1 else "")
        ratio = f"{r['rate'] / peer:,.1f}×" if peer else "—"
        lines.append(
            f"| {r['case']} | {r['num_envs']} | {_fmt(r['rate'])} | "
            f"{_fmt(target) if target else '—'}{mark} | "
            f"{r['peak_rss_mib']:,.0f} ({r['peak_rss_mib'] - r['baseline_rss_mib']:,.0f})"
            f"{mem_mark} | {peer_txt} | {ratio} |"
        )
    cold = meta.get("cold_start")
    if cold:
        lines += [
            "",
            f"Cold start, case ({COLD_CASE}): seconds from launching a fresh Python process to "
            f"the end of its first `step()`: median of {meta['cold_repeats']} runs (each run in "
            "brackets), and the median seconds of each phase",
            "",
            "| process | seconds | import / make / reset / step | target |",
            "|---|---:|---|---:|",
        ]
        labels = {
            "empty": "lanesim, empty numba cache (first use on a machine)",
            "cached": "lanesim, compiled code cached (every later process)",
            "peer": "highway-env (nothing to compile)",
        }
        for key, label in labels.items():
            if key not in cold:
                continue
            c = cold[key]
            target = ""
            if key == "empty":
                target = f"{COLD_TARGET_S:.0f} s" + (" ✓" if c["wall"] <= COLD_TARGET_S else " ✗")
            phases = " / ".join(f"{c[p]:.1f}" for p in ("import", "make", "reset", "step"))
            walls = ", ".join(f"{w:.1f}" for w in c["walls"])
            lines.append(f"| {label} | **{c['wall']:.1f}** ({walls}) | {phases} | {target} |")
    lines += ["", "Cases:"]
    for name in meta["cases"]:
        c = CASES[name]
        lines.append(f"- ({name}) {c.title}: `{c.env_id}` {c.options}")
    lines += [
        "",
        "Peak RSS is the whole worker process (Python, numpy, gymnasium, compiled kernels "
        "included); in parentheses, what it grew by over the same process with one single env "
        "of the case made and stepped (what the measured env itself adds).",
        f"`*` highway-env has no batched simulator: its single-env rate × {cores} cores, the "
        "ideal of a process-parallel AsyncVectorEnv (not measured).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv`` (default ``sys.argv[1:]``);
    ``prog`` names the command in its usage (``lanesim bench`` runs it too)."""
    started = time.perf_counter()
    ap = argparse.ArgumentParser(prog=prog or f"python -m {MODULE}",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="num_envs values; 1 is the single env (gym.make)")
    ap.add_argument("--quick", action="store_true", help="3 shorter runs instead of 5")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    ap.add_argument("--seconds", type=float, default=None, help="minimum length of one run")
    ap.add_argument("--min-steps", type=int, default=3, help="minimum step calls of one run")
    ap.add_argument("--no-peer", action="store_true", help="skip highway-env")
    ap.add_argument("--peer-venv", default=str(PEER_VENV),
                    help="venv for highway-env, made on first use (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--write", metavar="FILE.md",
                    help="also write the report to this file (docs/bench_env.md is this)")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile every lanesim measurement (to stderr)")
    ap.add_argument("--no-cold", action="store_true",
                    help="skip the cold-start measurement (fresh processes, empty numba cache)")
    ap.add_argument("--cold-repeats", type=int, default=None,
                    help="cold-start runs per figure (default 3, 2 with --quick)")
    ap.add_argument("--first-step", help=argparse.SUPPRESS)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    ap.add_argument("--num-envs", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 1.0

    if args.first_step:
        json.dump(first_step_worker(CASES[args.first_step], started), sys.stdout)
        print()
        return 0
    if args.cold_repeats is None:
        args.cold_repeats = 2 if args.quick else 3
    if args.warm:
        warm([CASES[name] for name in args.warm.split(",")])
        return 0
    if args.worker:
        result = worker(CASES[args.worker], args.num_envs, args.seconds, args.min_steps,
                        args.repeats, args.profile)
        json.dump(result, sys.stdout)
        print()
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    meta = machine()
    meta.update(
        cases=cases, sizes=sizes, repeats=args.repeats, seconds=args.seconds,
        command=command(MODULE, sys.argv[1:] if argv is None else argv),
    )
    peer_python = None if args.no_peer else ensure_venv(Path(args.peer_venv), PEER_REQUIREMENTS)
    print("warming up (compiling) ...", file=sys.stderr, flush=True)
    warm_caches(cases)

    rows, peers = [], {}
    for name in cases:
        case = CASES[name]
        if peer_python is not None:
            print(f"[{name}] highway-env ...", file=sys.stderr, flush=True)
            peers[name] = run_peer(peer_python, name, args)
            meta["peer_version"] = peers[name]["version"]
        for n in sizes:
            print(f"[{name}] lanesim N={n} ...", file=sys.stderr, flush=True)
            r = run_worker(name, n, args)
            meta["lanesim"], meta["numpy"] = r["version"], r["numpy"]
            r["case"] = name
            r["target"] = case.targets.get(n)
            r["memory_target_mib"] = case.memory_target_mib.get(n)
            if name in peers:
                single = peers[name]["rate"]
                r["peer_rate"] = single if n == 1 else single * meta["cores"]
            rows.append(r)
            print(f"[{name}] lanesim N={n}: {r['rate']:,.0f} steps/s, "
                  f"peak {r['peak_rss_mib']:,.0f} MiB", file=sys.stderr, flush=True)

    if not args.no_cold:
        print(f"[{COLD_CASE}] cold start ...", file=sys.stderr, flush=True)
        meta["cold_start"] = cold_start(COLD_CASE, peer_python, args.cold_repeats)
        meta["cold_repeats"] = args.cold_repeats
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        json.dump({"meta": meta, "lanesim": rows, "highway_env": peers}, sys.stdout, indent=1)
        print()
    else:
        print(markdown(meta, rows))
    if args.write:
        write_report(Path(args.write), meta["command"], markdown(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
