"""Benchmark the driver's-seat camera observation: steps per second and memory, beside
Gymnasium's ``CarRacing-v3`` in the same run.

Run::

    python -m lanesim_bench.bench_camera                      # every case, with the peer
    python -m lanesim_bench.bench_camera --quick --no-peer
    python -m lanesim_bench.bench_camera --write docs/bench_camera.md   # the report in docs/

Cases (random actions drawn before timing; an episode that ends is reset inside the timed loop):

* ``camera``: issue #17's scale, ``bench_env``'s case (b) (3 lanes, 20 cars, 5 Hz simulation,
  1 decision/s, meta actions) with ``observation="camera"``, grey, 4 stacked 84×84 frames;
  single (``gym.make``) and batched (``gym.make_vec``, N = 16 and 256). Targets: 3,000 steps/s
  single, 15,000 batched at N = 256 under 1 GiB.
* ``equal``: the same world with one 96×96 colour camera frame, the observation of
  ``CarRacing-v3``; single env beside CarRacing-v3 (box2d, pygame-rendered), target ≥ 10× its
  steps/s.

Every figure is the median of several timed runs in a fresh subprocess per case and size
(:func:`lanesim_bench.bench_env.worker`, the same loop as the other benchmarks), so its peak
resident memory is its own. CarRacing-v3 runs in a venv of its own
(``requirements-carracing.txt``, made on first use) through :mod:`lanesim_bench.peer_car_racing`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lanesim_bench import bench_env
from lanesim_bench.bench_env import FAST, GIB, Case
from lanesim_bench.common import (
    HERE,
    VENV_HOME,
    command,
    ensure_venv,
    machine,
    run_json,
    write_report,
)

MODULE = "lanesim_bench.bench_camera"
CARRACING_REQUIREMENTS = HERE / "requirements-carracing.txt"
CARRACING_VENV = VENV_HOME / "venv-carracing"
PEER_RATIO_TARGET = 10.0
CASES = {
    "camera": Case(
        "camera",
        "(b) with the camera: grey 4x84x84",
        "lanesim/Highway-v0",
        dict(FAST, observation="camera", frame_stack=4, image_shape=[84, 84]),
        0.0,
        {1: 3_000, 256: 15_000},
        {256: GIB},
    ),
    "equal": Case(
        "equal",
        "(b) with one 96x96 colour camera frame, CarRacing-v3's observation",
        "lanesim/Highway-v0",
        dict(FAST, observation="camera", camera_color=True, frame_stack=1, image_shape=[96, 96]),
        0.0,
    ),
}
SIZES = {"camera": (1, 16, 256), "equal": (1,)}


def run_peer(python: Path, args) -> dict:
    # As a module with this package's parent on the path: the peer venv has no lanesim.
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    cmd = [
        str(python), "-m", "lanesim_bench.peer_car_racing", "--seconds", str(args.seconds),
        "--min-steps", str(args.min_steps), "--repeats", str(args.repeats),
    ]
    return run_json(cmd, env)


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def markdown(meta: dict, rows: list[dict], peer: dict | None) -> str:
    lines = [
        f"lanesim {meta.get('lanesim', '?')} vs CarRacing-v3 (gymnasium "
        f"{peer['version'] if peer else '—'}) — {meta['date']}, {meta['cpu']}, {meta['cores']} "
        f"cores, Python {meta['python']}; load average (1/5/15 min) {meta['load_before']} "
        f"before, {meta.get('load_after')} after",
        f"settings: {meta['repeats']} runs of >= {meta['seconds']} s, median (each run in "
        f"brackets); command: `{meta['command']}`",
        "",
        "| case | N | observation | lanesim steps/s | target | peak RSS MiB (env) | "
        "CarRacing-v3 steps/s | ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = r.get("target")
        mark = "" if target is None else (" ✓" if r["rate"] >= target else " ✗")
        mem_t = r.get("memory_target_mib")
        mem_mark = "" if mem_t is None else (" ✓" if r["peak_rss_mib"] < mem_t else " ✗")
        runs = ", ".join(_fmt(x) for x in r["rates"])
        peer_txt, ratio = "—", "—"
        if r["case"] == "equal" and peer:
            peer_runs = ", ".join(_fmt(x) for x in peer["rates"])
            peer_txt = f"{_fmt(peer['rate'])} ({peer_runs})"
            k = r["rate"] / peer["rate"]
            ratio = f"{k:,.1f}×" + (" ✓" if k >= PEER_RATIO_TARGET else " ✗")
            target, mark = None, ""
        lines.append(
            f"| {r['case']} | {r['num_envs']} | {'×'.join(map(str, r['observation_shape']))} | "
            f"**{_fmt(r['rate'])}** ({runs}) | {_fmt(target) if target else '—'}{mark} | "
            f"{r['peak_rss_mib']:,.0f} ({r['peak_rss_mib'] - r['baseline_rss_mib']:,.0f})"
            f"{mem_mark} | {peer_txt} | {ratio} |"
        )
    lines += ["", "Cases:"]
    for name in meta["cases"]:
        c = CASES[name]
        lines.append(f"- `{name}`: {c.title}: `{c.env_id}` {c.options}")
    lines += [
        "",
        "Peak RSS is the whole worker process; in parentheses, what it grew by over the same "
        "process with one single env of the case made and stepped (what the measured env adds). "
        f"The `equal` row's target is {PEER_RATIO_TARGET:.0f}× CarRacing-v3's single-env rate "
        "at the same image size (96×96 colour), measured in the same run.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=MODULE, description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: camera, equal")
    ap.add_argument("--quick", action="store_true", help="3 shorter runs instead of 5")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    ap.add_argument("--seconds", type=float, default=None, help="minimum length of one run")
    ap.add_argument("--min-steps", type=int, default=3, help="minimum step calls of one run")
    ap.add_argument("--no-peer", action="store_true", help="skip CarRacing-v3")
    ap.add_argument("--peer-venv", default=str(CARRACING_VENV),
                    help="venv for CarRacing-v3, made on first use (default %(default)s)")
    ap.add_argument("--write", metavar="FILE.md",
                    help="also write the report to this file (docs/bench_camera.md is this)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    ap.add_argument("--num-envs", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 1.0
    if args.warm:
        bench_env.warm([CASES[name] for name in args.warm.split(",")])
        return 0
    if args.worker:
        result = bench_env.worker(CASES[args.worker], args.num_envs, args.seconds,
                                  args.min_steps, args.repeats, False)
        json.dump(result, sys.stdout)
        print()
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    meta = machine()
    meta.update(cases=cases, repeats=args.repeats, seconds=args.seconds,
                command=command(MODULE, sys.argv[1:] if argv is None else argv))
    peer = None
    if not args.no_peer and "equal" in cases:
        python = ensure_venv(Path(args.peer_venv), CARRACING_REQUIREMENTS)
        print("[equal] CarRacing-v3 ...", file=sys.stderr, flush=True)
        peer = run_peer(python, args)
    print("warming up (compiling) ...", file=sys.stderr, flush=True)
    bench_env.warm_caches(cases, MODULE)
    rows = []
    for name in cases:
        for n in SIZES[name]:
            print(f"[{name}] lanesim N={n} ...", file=sys.stderr, flush=True)
            r = bench_env.run_worker(name, n, args, MODULE)
            meta["lanesim"] = r["version"]
            r.update(case=name, target=CASES[name].targets.get(n),
                     memory_target_mib=CASES[name].memory_target_mib.get(n))
            rows.append(r)
            print(f"[{name}] N={n}: {r['rate']:,.0f} steps/s", file=sys.stderr, flush=True)
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(meta, rows, peer)
    print(text)
    if args.write:
        write_report(Path(args.write), meta["command"], text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
