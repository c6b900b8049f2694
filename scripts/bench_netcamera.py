"""Milliseconds per camera frame on the road networks, beside one road's camera: the renderer
alone (no stepping), one world and a batch, grey 84 × 84 and colour.

    .venv/bin/python scripts/bench_netcamera.py [--batch 64] [--repeats 50]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import lanesim  # noqa: F401


def per_frame(env_id: str, batch: int, colour: bool, repeats: int) -> float:
    """ms per world's frame of the env's camera observation, drawn ``repeats`` times."""
    env = gym.make_vec(env_id, num_envs=batch, observation="camera", camera_color=colour) \
        if batch > 1 else gym.make(env_id, observation="camera", camera_color=colour)
    env.reset(seed=0)
    steps = np.zeros(batch, dtype=np.int64) if batch > 1 else 0
    for _ in range(5):
        env.step(steps)
    obs = env.unwrapped.core.observation if batch == 1 else env.core.observation
    obs.draw()  # compiled and warm
    t = time.perf_counter()
    for _ in range(repeats):
        obs.draw()
    env.close()
    return 1e3 * (time.perf_counter() - t) / repeats / batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=50)
    a = p.parse_args()
    print("| env | colour | ms/frame, 1 world | ms/frame, batch of", a.batch, "|")
    print("|---|---|---|---|")
    for env_id in ("lanesim/Highway-v0", "lanesim/Intersection-v0", "lanesim/Roundabout-v0",
                   "lanesim/Exit-v0"):
        for colour in (False, True):
            one = per_frame(env_id, 1, colour, a.repeats)
            many = per_frame(env_id, a.batch, colour, max(a.repeats // 10, 3))
            print(f"| {env_id} | {colour} | {one:.3f} | {many:.3f} |")


if __name__ == "__main__":
    main()
