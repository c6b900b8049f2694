"""Benchmark the road-network environments of issue #16 against their highway-env counterparts.

Run::

    python -m lanesim_bench.bench_networks                 # every case
    python -m lanesim_bench.bench_networks --quick --write docs/bench_networks.md
    python -m lanesim_bench.bench_networks --quick --only racetrack,twoway --no-peer

One case per id: lanesim's ``Intersection-v0``, ``Roundabout-v0``, ``Racetrack-v0``, ``Exit-v0``
and ``TwoWay-v0`` beside highway-env's ``intersection-v0``, ``roundabout-v0``, ``racetrack-v0``,
``exit-v0`` and ``two-way-v0``. For each: the single env's steps per second on both simulators
(target: lanesim >= 300x highway-env), and lanesim's batched env at N = 256
(``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``, environment steps
per second summed over the sub-environments; highway-env has no batched simulator).

Scale: highway-env runs each id's default config. lanesim gets the options that match it
(traffic cars, simulation and decision rates, episode length, kinematics observation of as many
vehicles where the peer observes kinematics) and the same kind of action: ``meta`` where the
peer's default is ``DiscreteMetaAction``, ``continuous`` for ``racetrack-v0``'s steering. The
report prints both sides' settings as each run had them (the peer's read from its env, with its
traffic counted after reset) and, per case, what does not match (road lengths, lane counts,
observation features).

Timing is :func:`lanesim_bench.peer_highway_env.time_env` on both sides: random actions from the
env's own action space drawn before timing, an episode that ends is reset inside the timed
loop, the median of several runs, each measurement in a fresh subprocess. Each run gives
steps per wall-clock second and steps per CPU second of its process; the ratio and the target
are on CPU seconds, which another process's load on a shared machine does not change (both
rates are printed). highway-env runs under its own venv (``--peer-venv``), as for ``bench_env``.

A case whose lanesim id cannot be made is an error row naming why, not a skipped case, and the
command then exits with status 1; ``--only`` picks the cases to run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
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

MODULE = "lanesim_bench.bench_networks"
TARGET_RATIO = 300.0  # issue #16: lanesim's single env at least 300x highway-env's, on each id
BATCH = 256
MAX_BATCH = 4096


@dataclass(frozen=True)
class NetCase:
    """One lanesim id beside its highway-env counterpart (``peer_highway_env.PEER_CASES[name]``).

    ``options`` are the ``gym.make`` keywords that put lanesim at the peer's default scale;
    ``unmatched`` says, in words, what the two do not share (the report prints it)."""

    name: str
    env_id: str
    peer_id: str
    options: dict
    unmatched: tuple[str, ...] = ()


# Each case's options come from its peer's default_config (highway-env 1.12.1) and the traffic
# its reset makes: docs/bench_networks.md prints both sides as measured. A peer's Kinematics
# vehicles_count counts the ego's row, lanesim's observed_vehicles does not (1 + n rows), so 15
# rows there are observed_vehicles = 14 here.
CASES = {
    "intersection": NetCase(
        "intersection", "lanesim/Intersection-v0", "intersection-v0",
        dict(observation="kinematics", action="meta", vehicles=10, sim_hz=15, policy_hz=1,
             duration=13, observed_vehicles=14),
        (
            "traffic: the peer starts with initial_vehicle_count = 10 and spawns a car with "
            "probability 0.6 per decision (4-7 cars just after reset, 8-12 after 8 s); "
            "lanesim keeps vehicles = 10",
            "action: the peer's DiscreteMetaAction is longitudinal only (3 actions, target "
            "speeds 0 / 4.5 / 9 m/s); lanesim's meta has its 5 actions and the scenario's "
            "meta_speeds",
            "observation: the peer's 15 x 7 kinematics are in absolute coordinates; lanesim's "
            "are its own 8 features (in the ego's frame: x ahead, y right; the ego's row "
            "carries its route)",
            "roads: both are four two-lane arms (one lane each way) about 100 m long; the "
            "junction geometry and right of way are each simulator's own",
        ),
    ),
    "roundabout": NetCase(
        "roundabout", "lanesim/Roundabout-v0", "roundabout-v0",
        dict(observation="kinematics", action="meta", vehicles=4, sim_hz=15, policy_hz=1,
             duration=11, observed_vehicles=4),
        (
            "traffic: the peer places 4 cars at fixed places around its ring (jittered); "
            "lanesim spawns vehicles = 4 by its scenario",
            "action: the peer's target speeds are 0 / 8 / 16 m/s; lanesim's are the "
            "scenario's meta_speeds",
            "roads: ring radius, arm lengths and entry geometry are each simulator's own",
        ),
    ),
    "racetrack": NetCase(
        "racetrack", "lanesim/Racetrack-v0", "racetrack-v0",
        dict(observation="kinematics", action="continuous", vehicles=1, sim_hz=15, policy_hz=5,
             duration=300),
        (
            "observation: the peer's default is an occupancy grid (2 x 12 x 12: presence and "
            "on-road, 3 m cells); lanesim runs kinematics (its `occupancy` observation is the "
            "nearer match, a one-word change of this case)",
            "action: the peer steers only (1-D ContinuousAction without throttle: the ego "
            "keeps its starting speed); lanesim's continuous action is 2-D (steering and "
            "acceleration)",
            "traffic: the peer's other_vehicles = 1 makes one car ahead of the ego",
            "roads: the peer's circuit is short and slow (speed limit 10 m/s, 2 lanes); "
            "lanesim's is a 1,972 m lap of 2 lanes driven at 20-30 m/s",
        ),
    ),
    "exit": NetCase(
        "exit", "lanesim/Exit-v0", "exit-v0",
        dict(observation="kinematics", action="meta", vehicles=20, sim_hz=5, policy_hz=1,
             duration=18, observed_vehicles=14),
        (
            "roads: the peer's highway has 6 lanes (lanes_count) and vehicles_density 1.5; "
            "lanesim's has 3 lanes, a fourth opening before the off-ramp",
            "observation: the peer's ExitObservation is kinematics (15 x 7) with the exit's "
            "position; lanesim's is its kinematics",
        ),
    ),
    "twoway": NetCase(
        "twoway", "lanesim/TwoWay-v0", "two-way-v0",
        dict(observation="kinematics", action="meta", vehicles=5, sim_hz=15, policy_hz=1),
        (
            "episode length: the peer has no time limit (an episode ends in a crash only); "
            "lanesim keeps the scenario's duration (40 s)",
            "observation: the peer's default is a time-to-collision grid (3 x 3 x 5); lanesim "
            "runs kinematics",
            "roads: the peer's road is 800 m of one lane each way; lanesim's is 5,000 m",
        ),
    ),
}


# ---------------------------------------------------------------- lanesim worker (subprocess)
def worker(case: NetCase, num_envs: int, seconds: float, min_steps: int, repeats: int) -> dict:
    """Time ``case`` at ``num_envs`` (1: ``gym.make``) in this process; the caller runs it in
    a fresh subprocess. An id or option that cannot be made returns ``{"error": why}``."""
    import gymnasium as gym
    import numpy as np

    import lanesim

    try:
        if num_envs == 1:
            env = gym.make(case.env_id, **case.options)
        else:
            env = gym.make_vec(case.env_id, num_envs=num_envs,
                               vectorization_mode="vector_entry_point", **case.options)
    except Exception as exc:  # noqa: BLE001  (any reason becomes the case's error row)
        return {"error": f"{type(exc).__name__}: {exc}"}
    result = peer_highway_env.time_env(env, num_envs, seconds, min_steps, repeats)
    options = env.unwrapped.options if num_envs == 1 else env.options
    result.update(
        simulator="lanesim",
        version=lanesim.__version__,
        numpy=np.__version__,
        env_id=case.env_id,
        num_envs=num_envs,
        observation_shape=list(getattr(env, "single_observation_space",
                                       env.observation_space).shape),
        action_space=str(getattr(env, "single_action_space", env.action_space)),
        settings={key: getattr(options, key) for key in
                  ("sim_hz", "policy_hz", "duration", "vehicles", "observation", "action",
                   "observed_vehicles")},
        peak_rss_mib=peer_highway_env.peak_rss_mib(),
    )
    return result


def run_worker(case: NetCase, num_envs: int, args) -> dict:
    """``case`` at one size, timed in a fresh ``python -m lanesim_bench.bench_networks
    --worker`` process (the case travels as JSON, so any case can be run)."""
    return run_json([
        sys.executable, "-m", MODULE, "--worker", json.dumps(asdict(case)),
        "--num-envs", str(num_envs), "--seconds", str(args.seconds),
        "--min-steps", str(args.min_steps), "--repeats", str(args.repeats),
    ])


def run_peer(python: Path, case: NetCase, args) -> dict:
    """highway-env's side of ``case`` (its id's default config) under the peer venv."""
    if peer_highway_env.PEER_CASES.get(case.name, (None,))[0] != case.peer_id:
        raise ValueError(f"case {case.name!r}: peer_highway_env.PEER_CASES has no "
                         f"{case.peer_id!r} under that name")
    return run_json([
        str(python), peer_highway_env.__file__, "--case", case.name,
        "--seconds", str(args.seconds), "--min-steps", str(args.min_steps),
        "--repeats", str(args.repeats),
    ])


def measure(case: NetCase, batch: int, peer_python: Path | None, args) -> dict:
    """One report row: the peer's single env, lanesim's single env and lanesim at ``batch``
    (not run when the single env cannot be made: the row carries its error)."""
    row: dict = {"case": case.name, "env_id": case.env_id, "peer_id": case.peer_id}
    if peer_python is not None:
        print(f"[{case.name}] highway-env {case.peer_id} ...", file=sys.stderr, flush=True)
        row["peer"] = run_peer(peer_python, case, args)
    for key, n in (("single", 1), ("batched", batch)):
        print(f"[{case.name}] lanesim N={n} ...", file=sys.stderr, flush=True)
        result = run_worker(case, n, args)
        if "error" in result:
            row["error"] = result["error"]
            print(f"[{case.name}] cannot be made: {result['error']}", file=sys.stderr, flush=True)
            break
        row[key] = result
        print(f"[{case.name}] lanesim N={n}: {result['rate']:,.0f} steps/s "
              f"({result['cpu_rate']:,.0f} per CPU s)", file=sys.stderr, flush=True)
    if "single" in row and "peer" in row:
        row["ratio"] = row["single"]["cpu_rate"] / row["peer"]["cpu_rate"]
        row["wall_ratio"] = row["single"]["rate"] / row["peer"]["rate"]
    return row


# ---------------------------------------------------------------- report
def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _rates(r: dict | None) -> str:
    return "—" if r is None else f"{_fmt(r['cpu_rate'])} ({_fmt(r['rate'])})"


def _peer_settings(peer: dict) -> dict:
    cfg = peer["effective_config"]
    obs, action = cfg.get("observation", {}), cfg.get("action", {})
    traffic = peer["traffic_at_reset"]
    return {
        "sim Hz": cfg.get("simulation_frequency"),
        "decision Hz": cfg.get("policy_frequency"),
        "duration s": cfg.get("duration", "none"),
        "traffic cars": f"{min(traffic)}-{max(traffic)}" if min(traffic) != max(traffic)
        else traffic[0],
        "observation": f"{obs.get('type')} {'x'.join(map(str, peer['observation_shape']))}",
        "action": f"{action.get('type')} {peer['action_space']}",
    }


def _lanesim_settings(single: dict) -> dict:
    s = single["settings"]
    return {
        "sim Hz": s["sim_hz"],
        "decision Hz": s["policy_hz"],
        "duration s": s["duration"],
        "traffic cars": s["vehicles"],
        "observation": f"{s['observation']} {'x'.join(map(str, single['observation_shape']))}",
        "action": f"{s['action']} {single['action_space']}",
    }


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"lanesim {meta.get('lanesim', '?')} (numpy {meta.get('numpy', '?')}) vs "
        f"highway-env {meta.get('peer_version', '—')} — {meta['date']}, {meta['cpu']}, "
        f"{meta['cores']} cores, Python {meta['python']}; load average (1/5/15 min) "
        f"{meta['load_before']} before, {meta.get('load_after')} after",
        f"settings: {meta['repeats']} runs of >= {meta['seconds']} s, median; "
        f"command: `{meta['command']}`",
        "",
        "Steps per CPU second of the process (in brackets: per wall-clock second); ratio "
        f"and target (lanesim single env >= {TARGET_RATIO:.0f}× highway-env) on CPU seconds.",
        "",
        f"| case | lanesim id | lanesim, 1 env | lanesim, N = {meta['batch']} | highway-env id "
        "| highway-env, 1 env | ratio (wall) | target | episodes / 1000 steps, lanesim / peer |",
        "|---|---|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in rows:
        peer = r.get("peer")
        if "error" in r:
            lines.append(
                f"| {r['case']} | `{r['env_id']}` | **error**: {r['error']} | — | "
                f"`{r['peer_id']}` | {_rates(peer)} | — | ✗ (not measured) | — |")
            continue
        ratio = r.get("ratio")
        if ratio is None:
            ratio_txt, target = "—", "— (no peer)"
        else:
            ratio_txt = f"{ratio:,.0f}× ({r['wall_ratio']:,.0f}×)"
            target = f"{TARGET_RATIO:.0f}×" + (" ✓" if ratio >= TARGET_RATIO else " ✗")
        single, batched = r["single"], r.get("batched")
        episodes = f"{single['episodes_per_1000_steps']:.1f} / " + (
            "—" if peer is None else f"{peer['episodes_per_1000_steps']:.1f}")
        lines.append(
            f"| {r['case']} | `{r['env_id']}` | {_rates(single)} | {_rates(batched)} | "
            f"`{r['peer_id']}` | {_rates(peer)} | {ratio_txt} | {target} | {episodes} |")
    lines += ["", "Settings each side ran (highway-env's read from its env after the run; its "
              "traffic counted just after reset, seeds 0-2):", ""]
    lines += ["| case | side | sim Hz | decision Hz | duration s | traffic cars | observation "
              "| action |", "|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        sides = [("lanesim", _lanesim_settings(r["single"]))] if "single" in r else []
        if "peer" in r:
            sides.append(("highway-env", _peer_settings(r["peer"])))
        if not sides:
            lines.append(f"| {r['case']} | — | not made: see its error | | | | | |")
        for side, s in sides:
            lines.append(f"| {r['case']} | {side} | " + " | ".join(str(v) for v in s.values())
                         + " |")
    lines += ["", "What does not match (lanesim's options per case are in "
              "`lanesim_bench/bench_networks.py`):"]
    for r in rows:
        case = CASES.get(r["case"])
        options = ", ".join(f"{k}={v!r}" for k, v in case.options.items()) if case else ""
        lines.append(f"- {r['case']}: `gym.make({r['env_id']!r}, {options})`")
        lines += [f"  - {note}" for note in (case.unmatched if case else ())]
    lines += [
        "",
        f"highway-env has no batched simulator; lanesim's N = {meta['batch']} is "
        "`gym.make_vec(id, num_envs=N, vectorization_mode=\"vector_entry_point\")`, environment "
        "steps summed over the sub-environments. Random actions from each env's action space; "
        "episodes that end are reset inside the timed loop, so resets count. A batched step "
        "may run on several threads: its rate per CPU second is then below its wall-clock "
        "rate, which is the throughput of an otherwise idle machine.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv`` (default ``sys.argv[1:]``).
    Returns 1 when a case could not be made (its row says why), else 0."""
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(CASES),
                    help=f"comma-separated cases to run (default all: {', '.join(CASES)})")
    ap.add_argument("--batch", type=int, default=BATCH,
                    help=f"num_envs of the batched env, 2 to {MAX_BATCH:,} (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="3 runs of 0.5 s instead of 5 of 1 s")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per figure, 1 to 100")
    ap.add_argument("--seconds", type=float, default=None,
                    help="minimum length of one run (s), 0.01 to 600")
    ap.add_argument("--min-steps", type=int, default=3,
                    help="minimum step calls of one run, 1 to 1,000,000")
    ap.add_argument("--no-peer", action="store_true", help="skip highway-env")
    ap.add_argument("--peer-venv", default=str(PEER_VENV),
                    help="venv for highway-env, made on first use (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    ap.add_argument("--write", metavar="FILE.md",
                    help="also write the report to this file (docs/bench_networks.md is this)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--num-envs", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 1.0
    if not 1 <= args.repeats <= 100:
        ap.error(f"--repeats {args.repeats}: give 1 to 100 runs")
    if not 0.01 <= args.seconds <= 600:
        ap.error(f"--seconds {args.seconds}: give 0.01 to 600 s")
    if not 1 <= args.min_steps <= 1_000_000:
        ap.error(f"--min-steps {args.min_steps}: give 1 to 1,000,000")
    if not 2 <= args.batch <= MAX_BATCH:
        ap.error(f"--batch {args.batch}: give 2 to {MAX_BATCH:,} sub-environments")

    if args.worker:
        result = worker(NetCase(**json.loads(args.worker)), args.num_envs, args.seconds,
                        args.min_steps, args.repeats)
        json.dump(result, sys.stdout)
        print()
        return 0

    names = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown or not names:
        what = f"unknown case(s) {unknown}" if unknown else "no case named"
        ap.error(f"--only {args.only!r}: {what}; choose from {', '.join(CASES)}")
    meta = machine()
    meta.update(cases=names, batch=args.batch, repeats=args.repeats, seconds=args.seconds,
                command=command(MODULE, sys.argv[1:] if argv is None else argv))
    peer_python = None if args.no_peer else ensure_venv(Path(args.peer_venv), PEER_REQUIREMENTS)
    rows = []
    for name in names:
        row = measure(CASES[name], args.batch, peer_python, args)
        for key in ("single", "batched"):
            if key in row:
                meta["lanesim"], meta["numpy"] = row[key]["version"], row[key]["numpy"]
        if "peer" in row:
            meta["peer_version"] = row["peer"]["version"]
        rows.append(row)
    meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        json.dump({"meta": meta, "rows": rows}, sys.stdout, indent=1)
        print()
    else:
        print(markdown(meta, rows))
    if args.write:
        write_report(Path(args.write), meta["command"], markdown(meta, rows))
    failed = [r["case"] for r in rows if "error" in r]
    if failed:
        print(f"could not make {', '.join(failed)}: see the error rows; --only runs the others",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
