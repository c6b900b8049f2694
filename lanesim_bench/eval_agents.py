"""Evaluate the value-iteration driver against the random and IDLE baselines.

Runs every agent on Highway-v0, Merge-v0 and Roadworks-v0 (or the ``--envs`` given: any
lanesim id, e.g. the road networks Intersection-v0, Roundabout-v0, Exit-v0) with
``action="meta"`` for the same seeded episodes (episode ``i`` resets with ``seed + i``) and
prints a markdown table. Where a network env is among them, the table has an ``arrival rate``
column (episodes that ended at the goal; "–" for one-road envs, which have none).

Run::

    python -m lanesim_bench.eval_agents                  # 100 episodes each
    python -m lanesim_bench.eval_agents --episodes 20 --jobs 2
    python -m lanesim_bench.eval_agents --envs Highway-v0 --agents vi
    python -m lanesim_bench.eval_agents --jobs 2 --write docs/eval_agents.md   # the report
    python -m lanesim_bench.eval_agents --envs Intersection-v0 Roundabout-v0 Exit-v0 \
        --jobs 2 --write docs/eval_networks.md                         # the networks' report

``ms/decision`` is the median time of ``agent.act`` alone, on this machine, while the other
jobs run; it is not comparable across machines. The footer gives the machine's load average
(processes wanting a core) at the start and the end: a load near the core count or above it
means the timings are inflated, and a quiet run of one job (``--jobs 1`` with one agent and
one env) gives the truer figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lanesim_bench.common import command, write_report

AGENTS = ("vi", "random", "idle")
ENVS = ("Highway-v0", "Merge-v0", "Roadworks-v0")


def make_agent(name: str, seed: int):
    from agents.baselines import IdleAgent, RandomAgent
    from agents.vi_driver import VIDriver

    return {"vi": VIDriver, "random": lambda: RandomAgent(seed), "idle": IdleAgent}[name]()


def run_one(job: tuple[str, str, int, int, str]) -> dict:
    agent_name, env_name, episodes, seed, options = job
    from agents.evaluate import evaluate

    start = time.perf_counter()
    result = evaluate(make_agent(agent_name, seed), f"lanesim/{env_name}", episodes=episodes,
                      seed=seed, action="meta", **json.loads(options))
    result["agent"], result["env"] = agent_name, env_name
    result["wall_s"] = time.perf_counter() - start
    return result


def table(results: list[dict]) -> str:
    """The markdown table of ``results``; an ``arrival rate`` column where any has one."""
    arrival = any(r.get("arrival_rate") is not None for r in results)
    head = ("| env | agent | episodes | collision rate | offroad rate | "
            + ("arrival rate | " if arrival else "")
            + "mean speed (m/s) | mean return | lane changes / ep | lane offset RMS (m) | "
            "ms/decision |")
    rule = "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if arrival else "")
    rows = [head, rule]
    for r in results:
        cell = ""
        if arrival:
            rate = r.get("arrival_rate")
            cell = ("–" if rate is None else f"{100 * rate:.0f} %") + " | "
        rows.append(
            f"| {r['env']} | {r['agent']} | {r['episodes']} | {100 * r['collision_rate']:.0f} % | "
            f"{100 * r['offroad_rate']:.0f} % | {cell}{r['mean_speed']:.1f} | "
            f"{r['mean_return']:.1f} | {r['lane_changes']:.1f} | {r['lane_offset_rms']:.2f} | "
            f"{r['ms_per_decision']:.2f} |"
        )
    return "\n".join(rows)


def check_envs(names: list[str]) -> None:
    """Raise ``SystemExit`` naming any of ``names`` that is not a registered lanesim id (the
    part after ``lanesim/``), with the accepted ones."""
    import gymnasium as gym

    import lanesim  # noqa: F401  (registers the ids)

    known = sorted(k.split("/", 1)[1] for k in gym.registry if k.startswith("lanesim/"))
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"--envs: unknown id(s) {', '.join(bad)}; accepted: {', '.join(known)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lanesim_bench.eval_agents",
                                description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS)
    p.add_argument("--envs", nargs="+", default=list(ENVS),
                   help="lanesim ids, with or without the lanesim/ prefix (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (one per agent × env)")
    p.add_argument("--options", default="{}", help='extra gym.make options as JSON, e.g. '
                   '\'{"meta_speeds": [15, 20, 25, 30]}\'')
    p.add_argument("--json", type=Path, help="also write the full results (per episode) here")
    p.add_argument("--write", type=Path, metavar="FILE.md",
                   help="also write the table to this file (docs/eval_agents.md is this)")
    args = p.parse_args(argv)
    args.envs = [e.removeprefix("lanesim/") for e in args.envs]  # the full id works too
    check_envs(args.envs)
    jobs = [(a, e, args.episodes, args.seed, args.options) for e in args.envs for a in args.agents]
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_one, jobs))
    else:
        results = [run_one(j) for j in jobs]
    last = args.seed + args.episodes - 1
    report = (f"{table(results)}\n\n{args.episodes} episodes per row, seeds {args.seed}..{last}, "
              f"options {args.options}; {time.perf_counter() - start:.0f} s, {args.jobs} job(s) "
              f"on {os.cpu_count()} cores, load average {load_start:.1f} at the start and "
              f"{os.getloadavg()[0]:.1f} at the end")
    print(report)
    if args.write:
        argv = sys.argv[1:] if argv is None else argv
        write_report(args.write, command("lanesim_bench.eval_agents", argv), report)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
