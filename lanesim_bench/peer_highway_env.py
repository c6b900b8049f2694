"""highway-env's side of ``bench_env``, ``bench_render`` and ``bench_networks``: one case, timed,
printed as JSON.

Runs under the peer venv (made by :func:`lanesim_bench.common.ensure_venv` from
``requirements-peer.txt``), never lanesim's, and imports nothing but the standard library,
gymnasium and highway-env, so the peer venv runs it by its path::

    PEER_VENV/bin/python PATH/TO/lanesim_bench/peer_highway_env.py --case b
    PEER_VENV/bin/python PATH/TO/lanesim_bench/peer_highway_env.py --render 300

The timing loops, :func:`time_env` and :func:`render_rates`, are shared with lanesim's side so
both simulators are measured the same way: random actions from the env's own action space, an
episode that ends is reset inside the loop, and the figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import time

# Every case: (gym id, config overrides). The lanesim side of each case is in bench_env.py.
ACTION_POOL = 1024  # random actions drawn before timing, used in turn

PEER_CASES = {
    "a": ("highway-v0", {}),  # 4 lanes, 50 vehicles, 15 Hz simulation, 1 Hz decisions, kinematics
    "b": ("highway-fast-v0", {}),  # 3 lanes, 20 vehicles, 5 Hz, 1 Hz
    "c": (
        "highway-fast-v0",
        {
            "observation": {
                "type": "GrayscaleObservation",
                "observation_shape": (128, 64),
                "stack_size": 4,
                "weights": [0.2989, 0.5870, 0.1140],
                "scaling": 1.75,
            }
        },
    ),
    "d": ("lane-keeping-v0", {}),  # one car on a winding road
    # bench_networks' cases, each its id's default config (the lanesim side matches it there)
    "intersection": ("intersection-v0", {}),
    "roundabout": ("roundabout-v0", {}),
    "racetrack": ("racetrack-v0", {}),
    "exit": ("exit-v0", {}),
    "twoway": ("two-way-v0", {}),
}
# Config keys that only concern drawing, left out of a report's copy of a peer's config.
RENDER_KEYS = ("screen_width", "screen_height", "centering_position", "scaling",
               "show_trajectories", "render_agent", "offscreen_rendering", "manual_control",
               "real_time_rendering")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (MiB); Linux reports KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_env(env, batch: int, seconds: float, min_steps: int, repeats: int, warmup: int = 2,
             seed: int = 0, clock=time.perf_counter) -> dict:
    """Steps per second of ``env`` under random actions (a pool of ``ACTION_POOL`` drawn from
    its action space beforehand, used in turn), over ``repeats`` timed runs.

    ``env`` is a Gymnasium ``Env`` (``batch == 1``) or a next-step autoreset ``VectorEnv``
    (``batch == num_envs``; it resets its own sub-environments). Each run lasts at least
    ``seconds`` and ``min_steps`` calls to ``step``; the rate counts environment steps, i.e.
    ``batch`` per call. Returns the median rate, every run's rate, the calls to ``step`` and
    how many episodes ended (and were reset) per 1000 environment steps. ``clock`` is the wall
    clock, or ``time.process_time`` for steps per CPU second of the process (all its threads).
    Whatever the clock, ``cpu_rate`` (with every run's in ``cpu_rates``) is the same runs' steps
    per CPU second of the process: on a loaded machine it stays what the step costs, where the
    wall-clock rate also counts the time other processes held the cores.
    """
    env.reset(seed=seed)
    env.action_space.seed(seed)
    vector = batch > 1 or hasattr(env, "num_envs")
    # Random actions are drawn before timing: Gymnasium's Box.sample() alone costs tens of
    # microseconds, which would be timed as the environment's.
    pool = [env.action_space.sample() for _ in range(ACTION_POOL)]
    count = itertools.count()

    def one_step() -> int:
        action = pool[next(count) % ACTION_POOL]
        _, _, terminated, truncated, _ = env.step(action)
        if vector:
            return int((terminated | truncated).sum())
        if terminated or truncated:
            env.reset()
            return 1
        return 0

    for _ in range(warmup):
        one_step()
    rates, cpu_rates, calls, episodes = [], [], [], 0
    for _ in range(repeats):
        n = 0
        cpu_start = time.process_time()
        start = clock()
        while True:
            episodes += one_step()
            n += 1
            elapsed = clock() - start
            if elapsed >= seconds and n >= min_steps:
                break
        cpu = time.process_time() - cpu_start
        rates.append(n * batch / elapsed)
        cpu_rates.append(n * batch / max(cpu, 1e-9))  # a clock tick can exceed a short run
        calls.append(n)
    steps = sum(calls) * batch
    return {
        "rate": statistics.median(rates),
        "rates": rates,
        "cpu_rate": statistics.median(cpu_rates),
        "cpu_rates": cpu_rates,
        "calls": calls,
        "episodes_per_1000_steps": 1000.0 * episodes / steps,
    }


def render_rates(env, frames: int, repeats: int, wall: bool = False, seed: int = 0) -> list[float]:
    """Frames per second of ``env.render()`` (an ``rgb_array`` env), one figure per run of
    ``frames`` frames: random actions, only ``render()`` timed, on this thread's CPU clock
    (other processes on a busy machine do not count) or, with ``wall``, the wall clock."""
    clock = time.perf_counter if wall else time.thread_time
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.render()
    rates = []
    for _ in range(repeats):
        total = 0.0
        for _ in range(frames):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
            t0 = clock()
            env.render()
            total += clock() - t0
        rates.append(frames / total)
    return rates


def first_step(make_env, started: float) -> dict:
    """A cold start's phases: seconds from ``started`` (this process's start of imports) to
    making an env with ``make_env()``, then making, resetting and stepping it once."""
    t0 = time.perf_counter()
    env = make_env()
    t1 = time.perf_counter()
    env.reset(seed=0)
    t2 = time.perf_counter()
    env.step(env.action_space.sample())
    t3 = time.perf_counter()
    env.close()
    return {"import": t0 - started, "make": t1 - t0, "reset": t2 - t1, "step": t3 - t2}


def _traffic_at_reset(env, seed: int) -> int:
    env.reset(seed=seed)
    road = env.unwrapped.road
    return len(road.vehicles) - len(env.unwrapped.controlled_vehicles)


def main() -> int:
    started = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(PEER_CASES))
    ap.add_argument("--render", type=int, metavar="FRAMES",
                    help="time highway-v0's rgb_array renderer (600x150) instead: frames per run")
    ap.add_argument("--wall", action="store_true", help="--render: wall clock, not CPU time")
    ap.add_argument("--first-step", action="store_true",
                    help="time import, make, reset and one step of a fresh env instead")
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum length of one run")
    ap.add_argument("--min-steps", type=int, default=3, help="minimum env steps of one run")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if (args.case is None) == (args.render is None):
        ap.error("give one of --case or --render")

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # GrayscaleObservation renders offscreen
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from importlib import metadata

    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the highway-env ids)

    if args.render:
        env = gym.make("highway-v0", render_mode="rgb_array")
        json.dump({"version": metadata.version("highway-env"),
                   "rates": render_rates(env, args.render, args.repeats, args.wall)}, sys.stdout)
        print()
        return 0
    env_id, config = PEER_CASES[args.case]
    if args.first_step:
        json.dump(first_step(lambda: gym.make(env_id, config=config), started), sys.stdout)
        print()
        return 0
    baseline = peak_rss_mib()
    env = gym.make(env_id, config=config)
    result = time_env(env, 1, args.seconds, args.min_steps, args.repeats)
    result.update(
        simulator="highway-env",
        version=metadata.version("highway-env"),
        env_id=env_id,
        config=config,
        observation_shape=list(env.observation_space.shape or ()),
        action_space=str(env.action_space),
        peak_rss_mib=peak_rss_mib(),
        baseline_rss_mib=baseline,
        # What the case ran (its id's defaults with the overrides), and the traffic cars (all
        # but the ego) just after reset, of the first 3 seeds: the scale the lanesim side matches.
        effective_config=json.loads(json.dumps(
            {k: v for k, v in env.unwrapped.config.items() if k not in RENDER_KEYS}, default=str)),
        traffic_at_reset=[_traffic_at_reset(env, seed) for seed in range(3)],
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
