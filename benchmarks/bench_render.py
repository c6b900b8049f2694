"""Frames per second of the rgb_array viewer.

Steps an environment with a fixed policy and times only ``env.render()`` (the stepping is not
counted), so the number compares with other simulators' renderers. Usage::

    SDL_VIDEODRIVER=dummy python benchmarks/bench_render.py [--env lanesim/Highway-v0]
        [--frames 3000] [--size 600x150] [--no-overlay] [--no-hud] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import lanesim  # noqa: E402, F401


def bench(env_id: str, frames: int, size: tuple[int, int], overlay: bool, hud: bool,
          renders_per_step: int = 1) -> float:
    """Rendered frames per second over ``frames`` renders (about one per simulation step)."""
    env = gym.make(env_id, render_mode="rgb_array", action="meta", screen_width=size[0],
                   screen_height=size[1], road_overlay=overlay)
    env.reset(seed=0)
    env.render()  # creates the viewer
    env.unwrapped._viewer.show_hud = hud
    total, n = 0.0, 0
    while n < frames:
        _, _, term, trunc, _ = env.step(1)
        if term or trunc:
            env.reset()
        for _ in range(renders_per_step):
            t0 = time.perf_counter()
            frame = env.render()
            total += time.perf_counter() - t0
            n += 1
    assert isinstance(frame, np.ndarray) and frame.shape == (size[1], size[0], 3)
    env.close()
    return n / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="lanesim/Highway-v0")
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--size", default="600x150")
    p.add_argument("--no-overlay", action="store_true")
    p.add_argument("--no-hud", action="store_true")
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    size = tuple(int(v) for v in a.size.split("x"))
    args = (a.env, a.frames, size, not a.no_overlay, not a.no_hud)
    if a.profile:
        with cProfile.Profile() as prof:
            fps = bench(*args)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        bench(a.env, 200, size, not a.no_overlay, not a.no_hud)  # warm up: tiles, fonts
        fps = max(bench(*args) for _ in range(3))
    print(f"{a.env} {size[0]}x{size[1]} overlay={not a.no_overlay} hud={not a.no_hud}: "
          f"{fps:,.0f} frames/s")


if __name__ == "__main__":
    main()
