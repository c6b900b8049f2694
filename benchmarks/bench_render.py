"""Frames per second of the rgb_array viewer, optionally beside highway-env's renderer.

Steps an environment with random actions (seeded) and times only ``env.render()`` (stepping is
not counted), so the figure compares with other simulators' renderers. Each run renders
``--frames`` frames; the best of ``--repeats`` runs is reported. The clock is this thread's
CPU time by default, so other processes on a busy machine do not count (``--wall`` for
wall-clock time). ``--peer`` times highway-env's ``highway-v0`` (600×150, its default) the
same way, in the peer venv made by ``bench_env.py`` (``benchmarks/.venv-peer``)::

    python benchmarks/bench_render.py                     # the defaults: overlay and HUD on
    python benchmarks/bench_render.py --no-overlay --no-hud --peer
    python benchmarks/bench_render.py --profile           # where the time goes
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

PEER_PYTHON = Path(__file__).parent / ".venv-peer" / "bin" / "python"

# Run by the peer venv's python: the same loop for highway-env, importing no lanesim code.
TIMING_LOOP = """
import os, sys, time
os.environ.setdefault("SDL_VIDEODRIVER", "dummy"); os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
import warnings; warnings.filterwarnings("ignore")
import gymnasium as gym
{imports}
def rate(env, frames, clock):
    total, n = 0.0, 0
    while n < frames:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        t0 = clock(); frame = env.render(); total += clock() - t0; n += 1
    assert frame.shape == ({h}, {w}, 3), frame.shape
    return n / total
env = {make}
env.reset(seed=0); env.action_space.seed(0); env.render()
{setup}
clock = time.perf_counter if {wall} else time.thread_time
print(max(rate(env, {frames}, clock) for _ in range({repeats})))
"""


def loop_source(env_id: str, size: tuple[int, int], overlay: bool, hud: bool, frames: int,
                repeats: int, wall: bool, peer: bool = False) -> str:
    w, h = size
    if peer:
        imports, setup = "import highway_env", ""
        make = 'gym.make("highway-v0", render_mode="rgb_array")'
    else:
        imports = "import lanesim"
        make = (f'gym.make("{env_id}", render_mode="rgb_array", screen_width={w}, '
                f"screen_height={h}, road_overlay={overlay})")
        setup = f"env.unwrapped._viewer.show_hud = {hud}"
    return TIMING_LOOP.format(imports=imports, make=make, setup=setup, frames=frames,
                              repeats=repeats, wall=wall, w=w, h=h)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="lanesim/Highway-v0")
    p.add_argument("--frames", type=int, default=1000, help="frames per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", default="600x150")
    p.add_argument("--no-overlay", action="store_true")
    p.add_argument("--no-hud", action="store_true")
    p.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    p.add_argument("--peer", action="store_true", help="also time highway-env's renderer")
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    size = tuple(int(v) for v in a.size.split("x"))
    overlay, hud = not a.no_overlay, not a.no_hud
    src = loop_source(a.env, size, overlay, hud, a.frames, a.repeats, a.wall)
    if a.profile:
        with cProfile.Profile() as prof:
            exec(compile(src, "bench", "exec"), {"__name__": "bench"})
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    fps = float(subprocess.run([sys.executable, "-c", src], check=True, capture_output=True,
                               text=True).stdout.split()[-1])
    clock = "wall clock" if a.wall else "thread CPU time"
    print(f"lanesim {a.env} {size[0]}x{size[1]} overlay={overlay} hud={hud}: "
          f"{fps:,.0f} frames/s ({clock}, best of {a.repeats} × {a.frames} frames)")
    if a.peer:
        if not PEER_PYTHON.exists():
            sys.exit(f"no peer venv at {PEER_PYTHON}; run benchmarks/bench_env.py once to make it")
        t0 = time.perf_counter()
        peer = loop_source("", (600, 150), False, False, min(a.frames, 300), a.repeats, a.wall,
                           peer=True)
        out = subprocess.run([str(PEER_PYTHON), "-c", peer], check=True, capture_output=True,
                             text=True).stdout.split()[-1]
        print(f"highway-env highway-v0 600x150: {float(out):,.0f} frames/s "
              f"({time.perf_counter() - t0:.0f} s to measure)")


if __name__ == "__main__":
    main()
