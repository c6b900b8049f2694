"""Two lanesim checkouts side by side: the first step's cold compile and the step speeds.

Run (``--old`` is the other checkout's venv Python; ``--new`` defaults to this one)::

    git worktree add --detach ../old 85f63ec && cp -a .venv ../old/.venv   # then point the
    # copied venv's editable install at ../old (its __editable__ finder names the checkout)
    python -m lanesim_bench.compile_ab --old ../old/.venv/bin/python --write docs/bench_env.md

Every figure comes from a fresh process of one checkout, and the two checkouts take turns
(old, new, then new, old, ...) so that a change in the machine's load falls on both:

* cold compile: CPU seconds (``time.process_time``, every thread of the process) from the
  interpreter's start to the end of the first ``step()`` of ``bench_env``'s cold-start case,
  with an empty numba cache of its own (a temporary ``NUMBA_CACHE_DIR``); wall seconds and
  the load average are recorded too. With ``--events``, each run also sums the compile time
  of every function numba compiled (its own, without the functions it compiled in turn);
* steps per CPU second (every thread of the process) of ``bench_env``'s cases at N = 1 and
  16 (:func:`time_env`);
* CPU microseconds of one ``world.advance(15)`` of case (d)'s lane-keeping world and case
  (a)'s 50-car highway world.

The worker side (``--worker``) imports only the standard library, gymnasium, lanesim and the
timing loops of ``peer_highway_env.py``, and runs by its path, so an older checkout without
this package runs it unchanged.
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
from pathlib import Path

MODULE = "lanesim_bench.compile_ab"
ADVANCE_FRAMES = 15


# ---------------------------------------------------------------- worker (either checkout)
def _compile_timer():
    """A numba ``numba:compile`` listener that sums each function's own compile CPU seconds
    (nested compiles of its callees excluded), by qualified name."""
    from numba.core import event

    stack: list[list] = []
    own: dict[str, float] = {}

    class Timer(event.Listener):
        def on_start(self, ev) -> None:
            stack.append([ev.data["dispatcher"].py_func.__qualname__, time.process_time(), 0.0])

        def on_end(self, ev) -> None:
            name, start, nested = stack.pop()
            spent = time.process_time() - start
            if stack:
                stack[-1][2] += spent
            own[name] = own.get(name, 0.0) + spent - nested

    event.register("numba:compile", Timer())
    return own


def worker(mode: str, spec: dict) -> dict:
    """One measurement of ``mode`` (``first-step``, ``rate``, ``advance``) in this process;
    ``spec`` names the env (``env_id``, ``options``) and the mode's settings."""
    started = time.perf_counter()
    own = _compile_timer() if spec.get("events") else None
    import gymnasium as gym
    from peer_highway_env import first_step, time_env  # this file's sibling, run by path

    import lanesim  # noqa: F401

    def make(num_envs: int = 1):
        if num_envs == 1:
            return gym.make(spec["env_id"], **spec["options"])
        return gym.make_vec(spec["env_id"], num_envs=num_envs, **spec["options"])

    if mode == "first-step":
        result = first_step(make, started)
        result["cpu"] = time.process_time()
        result["wall"] = time.perf_counter() - started
        if own is not None:
            result["compile"] = own
        return result
    if mode == "rate":
        # CPU time of the process (every thread): on a shared machine, time spent waiting for
        # a core is not the env's.
        return time_env(make(spec["num_envs"]), spec["num_envs"], spec["seconds"], 3,
                        spec["repeats"], clock=time.process_time)
    if mode == "advance":
        env = make()
        env.reset(seed=0)
        world = env.unwrapped.world
        for _ in range(3):
            world.advance(ADVANCE_FRAMES)
        times = []
        for _ in range(spec["repeats"]):
            n, start = 0, time.process_time()
            while time.process_time() - start < spec["seconds"]:
                world.advance(ADVANCE_FRAMES)
                n += 1
            times.append((time.process_time() - start) / n * 1e6)
        return {"us": statistics.median(times), "runs": times}
    raise ValueError(f"unknown worker mode {mode!r}; accepted: first-step, rate, advance")


# ---------------------------------------------------------------- driver
def _run(python: str, mode: str, spec: dict, env: dict | None = None) -> dict:
    from lanesim_bench.common import run_json

    return run_json([python, __file__, "--worker", mode, "--spec", json.dumps(spec)], env)


def _turns(pythons: dict[str, str], rounds: int):
    """``(round, label, python)`` with the checkouts' order reversed every other round."""
    labels = list(pythons)
    for r in range(rounds):
        for label in labels if r % 2 == 0 else labels[::-1]:
            yield r, label, pythons[label]


def cold(pythons: dict[str, str], spec: dict, rounds: int) -> dict[str, list[dict]]:
    """Per checkout, ``rounds`` first steps with an empty numba cache each."""
    runs: dict[str, list[dict]] = {label: [] for label in pythons}
    for r, label, python in _turns(pythons, rounds):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="lanesim-cold-") as cache:
            result = _run(python, "first-step", spec, dict(os.environ, NUMBA_CACHE_DIR=cache))
        result["load"] = load
        runs[label].append(result)
        print(f"  cold {r + 1}/{rounds} {label}: {result['cpu']:.2f} s CPU, "
              f"{result['wall']:.2f} s wall, load {load:.2f}", file=sys.stderr, flush=True)
    return runs


def speeds(pythons: dict[str, str], cases: dict, names: list[str], sizes: list[int],
           rounds: int, seconds: float) -> list[dict]:
    """Steps per CPU second of the ``names`` of ``cases`` at ``sizes``, and CPU µs per
    ``world.advance(15)`` of cases (d) and (a), per checkout: ``rounds`` processes each (in
    turns), the median of their medians."""
    rows = []
    jobs = [("rate", name, n) for name in names for n in sizes]
    jobs += [("advance", name, 1) for name in ("d", "a")]
    for mode, name, n in jobs:
        spec = dict(env_id=cases[name].env_id, options=cases[name].options, num_envs=n,
                    seconds=seconds, repeats=3)
        figures: dict[str, list[float]] = {label: [] for label in pythons}
        for _, label, python in _turns(pythons, rounds):
            result = _run(python, mode, spec)
            figures[label].append(result["rate"] if mode == "rate" else result["us"])
        row = dict(mode=mode, case=name, num_envs=n, runs=figures,
                   median={label: statistics.median(v) for label, v in figures.items()})
        print(f"  {mode} ({name}) N={n}: {row['median']}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def _own_compile(run: dict) -> dict[str, float]:
    """A run's own compile seconds by function name without leading underscores: the redesign
    of issue #15 made some kernels public (``_query`` became ``leader`` and ``follower``)."""
    own: dict[str, float] = {}
    for name, seconds in run["compile"].items():
        own[name.lstrip("_")] = own.get(name.lstrip("_"), 0.0) + seconds
    return own


def markdown(meta: dict, runs: dict[str, list[dict]], rows: list[dict]) -> str:
    labels = list(meta["pythons"])
    old, new = labels
    lines = [
        f"{meta['date']}, {meta['cpu']}, {meta['cores']} cores, Python {meta['python']}; "
        f"load average (1/5/15 min) {meta['load_before']} before, {meta['load_after']} after",
        f"command: `{meta['command']}`; checkouts: "
        + ", ".join(f"{label} {meta['revisions'][label]}" for label in labels),
    ]
    if runs[old]:
        lines += [
            "",
            f"First step's cold compile, case ({meta['cold_case']}), empty numba cache: CPU and "
            "wall seconds from the interpreter's start to the end of the first `step()`, each "
            "run in turn, and the 1-minute load average before it",
            "",
            "| checkout | CPU s, median | CPU s, runs | wall s, median | wall s, runs | load |",
            "|---|---:|---|---:|---|---|",
        ]
    for label in labels:
        rs = runs[label]
        if not rs:
            continue
        cpu, wall = [r["cpu"] for r in rs], [r["wall"] for r in rs]
        loads = ", ".join(f"{r['load']:.1f}" for r in rs)
        lines.append(
            f"| {label} | **{statistics.median(cpu):.2f}** | {', '.join(f'{x:.2f}' for x in cpu)}"
            f" | {statistics.median(wall):.2f} | {', '.join(f'{x:.2f}' for x in wall)} | "
            f"{loads} |"
        )
    if runs[old] and all("compile" in r for rs in runs.values() for r in rs):
        own = {label: [_own_compile(r) for r in runs[label]] for label in labels}

        def median(label: str, name: str) -> float:
            return statistics.median(o.get(name, 0.0) for o in own[label])

        names = sorted({n for per_run in own.values() for o in per_run for n in o},
                       key=lambda n: -max(median(label, n) for label in labels))
        lines += ["", "Own compile CPU seconds per function, without the functions it compiles "
                  "in turn (medians; the 15 largest)", "",
                  f"| function | {old} | {new} |", "|---|---:|---:|"]
        for n in names[:15]:
            lines.append(f"| `{n}` | {median(old, n):.3f} | {median(new, n):.3f} |")
        totals = [statistics.median(sum(o.values()) for o in own[label]) for label in labels]
        lines.append(f"| all compiles | {totals[0]:.2f} | {totals[1]:.2f} |")
    if rows:
        lines += ["", f"Step speeds: median over {meta['rounds']} processes per checkout "
                  "(each the median of 3 timed runs); steps per CPU second: higher is faster, "
                  "CPU µs: lower",
                  "",
                  f"| measurement | {old} | {new} | {new} / {old} |", "|---|---:|---:|---:|"]
        for row in rows:
            a, b = row["median"][old], row["median"][new]
            if row["mode"] == "rate":
                what = f"({row['case']}) N = {row['num_envs']}, steps per CPU s"
                lines.append(f"| {what} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
            else:
                what = f"({row['case']}) world.advance({ADVANCE_FRAMES}), CPU µs"
                lines.append(f"| {what} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    return "\n".join(lines)


def _revision(python: str) -> str:
    """The git commit of the checkout that ``python``'s lanesim is imported from."""
    where = subprocess.run([python, "-I", "-c", "import lanesim; print(lanesim.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return subprocess.run(["git", "-C", str(Path(where).parent), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="the other checkout's venv Python")
    ap.add_argument("--new", default=sys.executable, help="default: this Python")
    ap.add_argument("--cold-rounds", type=int, default=5,
                    help="cold compiles per checkout (0: none)")
    ap.add_argument("--events", action="store_true",
                    help="also time each function's compile (adds a little to every run)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="processes per checkout and step-speed figure (0: no step speeds)")
    ap.add_argument("--cases", default="a,b,c,d", help="step-speed cases of bench_env")
    ap.add_argument("--sizes", default="1,16", help="num_envs of the step-speed cases")
    ap.add_argument("--seconds", type=float, default=0.5, help="length of one timed run")
    ap.add_argument("--write", metavar="FILE.md", help="also write the report to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        json.dump(worker(args.worker, json.loads(args.spec)), sys.stdout)
        print()
        return 0
    if not args.old:
        ap.error("--old is required: the venv Python of the checkout to compare against")

    from lanesim_bench.bench_env import CASES, COLD_CASE
    from lanesim_bench.common import command, machine, write_report

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    pythons = {"old": args.old, "new": args.new}
    meta = machine()
    meta.update(pythons=pythons, rounds=args.rounds, cold_case=COLD_CASE,
                revisions={label: _revision(p) for label, p in pythons.items()},
                command=command(MODULE, sys.argv[1:] if argv is None else argv))
    case = CASES[COLD_CASE]
    spec = dict(env_id=case.env_id, options=case.options, events=args.events)
    print("cold compile ...", file=sys.stderr, flush=True)
    runs = cold(pythons, spec, args.cold_rounds)
    rows = []
    if args.rounds > 0:
        print("step speeds ...", file=sys.stderr, flush=True)
        rows = speeds(pythons, CASES, cases, [int(n) for n in args.sizes.split(",")],
                      args.rounds, args.seconds)
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report = markdown(meta, runs, rows)
    print(report)
    if args.write:
        write_report(Path(args.write), meta["command"], report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
