"""Hashes of long seeded runs of every bundled scenario, observation and action type, single and
batched: a refactor that must not change behaviour compares them before and after.

    .venv/bin/python scripts/trajectory_hashes.py --out before.json
    ... change the code ...
    .venv/bin/python scripts/trajectory_hashes.py --compare before.json   # exit 1 on any change

Each case hashes, decision by decision, the observations, rewards, episode ends, every info
value and the world's whole traffic state (pose, speed, road coordinates, lanes and crash
flags of every entity). Actions come from the action space seeded with the case's seed;
episodes that end are reset, so resets and autoresets are covered too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import gymnasium as gym
import numpy as np

import lanesim
from lanesim.envs.options import (
    ACTIONS,
    NETWORK_OBSERVATIONS,
    OBSERVATIONS,
    bundled_scenarios,
    load_scenario,
)

STATE = ("x", "y", "heading", "speed", "s", "d", "lane", "target_lane", "crashed")
# A road network's world has lane coordinates (u, offset) and empty slots (kind -1) instead.
NETWORK_STATE = ("x", "y", "heading", "speed", "u", "offset", "lane", "kind", "crashed")


def _feed(h, value) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(key.encode())
            _feed(h, value[key])
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for v in value:
            _feed(h, v)
    elif value is None:
        h.update(b"None")
    else:
        h.update(np.ascontiguousarray(value).tobytes())


def _state(world) -> dict:
    names = NETWORK_STATE if getattr(world, "network", None) is not None else STATE
    return {name: getattr(world, name) for name in names}


def single(scenario: str, observation: str, action: str, decisions: int, seed: int,
           env_id: str = "lanesim/Drive-v0", **options) -> str:
    if env_id == "lanesim/Drive-v0":
        options["scenario"] = scenario
    env = gym.make(env_id, observation=observation, action=action, **options)
    env.action_space.seed(seed)
    h = hashlib.sha256()
    # Everything returned is hashed again at the end: an output the env later overwrites in
    # place (a reused buffer) changes the hash.
    kept = []
    obs, info = env.reset(seed=seed)
    _feed(h, obs), _feed(h, info)
    kept.append((obs, info))
    for _ in range(decisions):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        for v in (obs, np.float64(reward), np.bool_(terminated), np.bool_(truncated), info):
            _feed(h, v)
        kept.append((obs, info))
        _feed(h, _state(env.unwrapped.world))
        if terminated or truncated:
            obs, info = env.reset()
            _feed(h, obs), _feed(h, info)
            kept.append((obs, info))
    for obs, info in kept:
        _feed(h, obs), _feed(h, info)
    env.close()
    return h.hexdigest()


def batched(scenario: str, observation: str, action: str, decisions: int, seed: int) -> str:
    envs = gym.make_vec("lanesim/Drive-v0", num_envs=8, vectorization_mode="vector_entry_point",
                        scenario=scenario, observation=observation, action=action)
    envs.action_space.seed(seed)
    h = hashlib.sha256()
    obs, info = envs.reset(seed=seed)
    _feed(h, obs), _feed(h, info)
    for _ in range(decisions):
        for v in envs.step(envs.action_space.sample()):
            _feed(h, v)
        _feed(h, _state(envs.unwrapped.core.world))
    envs.close()
    return h.hexdigest()


def all_hashes(decisions: int, only: str | None = None) -> dict[str, str]:
    out = {}
    for scenario in bundled_scenarios():
        if only is not None and only not in scenario:
            continue
        network = "network" in load_scenario(scenario)[0]
        for observation in NETWORK_OBSERVATIONS if network else OBSERVATIONS:
            for action in ACTIONS:
                for name, run in (("single", single), ("batched", batched)):
                    key = f"{scenario}/{observation}/{action}/{name}"
                    out[key] = run(scenario, observation, action, decisions, seed=7)
                    print(key, out[key][:16], flush=True, file=sys.stderr)
    # The road-network benchmark's cases (lanesim_bench.bench_networks), with its options.
    from lanesim_bench.bench_networks import CASES

    for case in CASES.values():
        if only is not None and only not in case.name:
            continue
        options = dict(case.options)
        observation, action = options.pop("observation"), options.pop("action")
        key = f"bench:{case.name}/{observation}/{action}/single"
        out[key] = single("", observation, action, decisions * 4, seed=7, env_id=case.env_id,
                          **options)
        print(key, out[key][:16], flush=True, file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--decisions", type=int, default=400, help="decisions per case")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", help="write the hashes to this JSON file")
    group.add_argument("--compare", help="compare with the hashes in this JSON file")
    p.add_argument("--only", help="only the cases whose scenario or bench case name contains this")
    args = p.parse_args(argv)
    hashes = all_hashes(args.decisions, args.only)
    meta = {"lanesim": lanesim.__version__, "numpy": np.__version__, "decisions": args.decisions}
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "hashes": hashes}, f, indent=1)
        return 0
    with open(args.compare) as f:
        before = json.load(f)
    compared = [k for k in before["hashes"] if args.only is None or k in hashes]
    changed = [k for k in compared if hashes.get(k) != before["hashes"][k]]
    for k in changed:
        print(f"changed: {k}")
    print(f"{len(compared) - len(changed)} of {len(compared)} cases identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
