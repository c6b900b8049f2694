"""Gymnasium's ``CarRacing-v3`` (96×96 colour pixels, box2d), the peer of ``bench_camera``:
timed and printed as JSON.

Runs under its own venv (:func:`lanesim_bench.common.ensure_venv` from
``requirements-carracing.txt``), which has gymnasium and Box2D but no lanesim; it imports only
the standard library, gymnasium and :mod:`lanesim_bench.peer_highway_env`'s timing loop (itself
standard library only), with ``lanesim_bench``'s parent on ``PYTHONPATH``::

    PYTHONPATH=SRC VENV/bin/python -m lanesim_bench.peer_car_racing --seconds 2
"""

from __future__ import annotations

import argparse
import json
import sys

from lanesim_bench.peer_highway_env import peak_rss_mib, time_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum length of one run")
    ap.add_argument("--min-steps", type=int, default=3, help="minimum step calls of one run")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs")
    args = ap.parse_args(argv)

    import gymnasium as gym

    env = gym.make("CarRacing-v3")
    result = time_env(env, 1, args.seconds, args.min_steps, args.repeats)
    result.update(simulator="CarRacing-v3", version=gym.__version__,
                  observation_shape=list(env.observation_space.shape),
                  peak_rss_mib=peak_rss_mib())
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
