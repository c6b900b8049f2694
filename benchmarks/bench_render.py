"""Frames per second of the viewer: rgb_array frames (optionally beside highway-env's renderer),
or the human window's drawn frame rate and real-time factor.

rgb_array: steps an environment with random actions (seeded) and times only ``env.render()``
(stepping is not counted), so the figure compares with other simulators' renderers. Each run
renders ``--frames`` frames; the median (and range) of ``--repeats`` runs is reported. The clock
is this thread's CPU time by default, so other processes on a busy machine do not count
(``--wall`` for wall-clock time). ``--peer`` times highway-env's ``highway-v0`` (600×150, its
default) the same way, in the peer venv made by ``bench_env.py`` (``benchmarks/.venv-peer``).

``--human``: opens the real window (``render_mode="human"``, its default 1200×400) and drives
random meta actions (lane changes, faster, slower: episodes last, as an agent's do) for about
``--seconds`` of wall-clock time at each of ``--speeds`` (``sim_speed``; ``max`` = unpaced),
reporting the drawn frames per second (median of the intervals between window flips, and
flips over wall time) and the real-time factor achieved (simulated over wall-clock seconds,
so a busy machine lowers it). It needs a display: without ``DISPLAY`` it runs itself under
``xvfb-run`` when that exists, else on SDL's dummy video driver (which skips the real
window's presentation cost; the output says which)::

    python benchmarks/bench_render.py                     # the defaults: overlay and HUD on
    python benchmarks/bench_render.py --no-overlay --no-hud --peer
    python benchmarks/bench_render.py --profile           # where the time goes
    python benchmarks/bench_render.py --human             # the window at sim_speed 1, 16, max
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

USER_VIDEO_DRIVER = os.environ.get("SDL_VIDEODRIVER")  # the window benchmark keeps the user's
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
clock = time.perf_counter if {wall} else time.thread_time
print(*(rate(env, {frames}, clock) for _ in range({repeats})))
"""

# Run in a fresh process with a real video driver: the window at each sim_speed.
HUMAN_LOOP = """
import math, os, statistics, sys, time
import warnings; warnings.filterwarnings("ignore")
import gymnasium as gym
import pygame
import lanesim
flips = []
_flip = pygame.display.flip
def flip():
    _flip()
    flips.append(time.perf_counter())
pygame.display.flip = flip  # the viewer calls pygame.display.flip(): count every drawn frame
env = gym.make("{env_id}", render_mode="human", sim_speed="max", road_overlay={overlay},
               hud={hud}, action="meta")
env.reset(seed=0)
env.action_space.seed(0)
viewer = env.unwrapped.viewer
dt = 1.0 / env.unwrapped.options.policy_hz
def drive(sim_seconds, wall_seconds=math.inf):
    sim, start = 0.0, time.perf_counter()
    while sim < sim_seconds - 1e-9 and time.perf_counter() - start < wall_seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        sim += dt
        if terminated or truncated:
            env.reset()
    return sim
drive(2.0)  # warm up: compiled kernels, sprites, road tiles
print("driver", pygame.display.get_driver(), "window", *pygame.display.get_surface().get_size())
for speed in {speeds!r}:
    viewer.set_speed(math.inf if speed == "max" else float(speed))
    del flips[:]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if speed == "max":
        sim = drive(math.inf, {seconds})
    else:
        sim = drive({seconds} * speed)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    gaps = [b - a for a, b in zip(flips, flips[1:])]
    median = 1.0 / statistics.median(gaps) if gaps else 0.0
    print("speed", speed, "sim", sim, "wall", wall, "cpu", cpu, "flips", len(flips),
          "median_fps", median)
env.close()
"""


def loop_source(env_id: str, size: tuple[int, int], overlay: bool, hud: bool, frames: int,
                repeats: int, wall: bool, peer: bool = False) -> str:
    w, h = size
    if peer:
        imports = "import highway_env"
        make = 'gym.make("highway-v0", render_mode="rgb_array")'
    else:
        imports = "import lanesim"
        make = (f'gym.make("{env_id}", render_mode="rgb_array", screen_width={w}, '
                f"screen_height={h}, road_overlay={overlay}, hud={hud})")
    return TIMING_LOOP.format(imports=imports, make=make, frames=frames,
                              repeats=repeats, wall=wall, w=w, h=h)


def human(a) -> None:
    """The window benchmark (``--human``): see the module docstring."""
    speeds = [v if v == "max" else float(v) for v in a.speeds.split(",")]
    src = HUMAN_LOOP.format(env_id=a.env, overlay=not a.no_overlay, hud=not a.no_hud,
                            speeds=speeds, seconds=a.seconds)
    env = dict(os.environ)
    cmd = [sys.executable, "-c", src]
    if USER_VIDEO_DRIVER is None:
        env.pop("SDL_VIDEODRIVER", None)
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            if shutil.which("xvfb-run"):
                cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", *cmd]
            else:
                env["SDL_VIDEODRIVER"] = "dummy"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the window benchmark failed:\n{proc.stderr}")
    out = proc.stdout
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "driver":
            print(f"lanesim {a.env} window {f[3]}x{f[4]} (SDL video driver {f[1]}), "
                  f"overlay={not a.no_overlay} hud={not a.no_hud}, random meta actions:")
        elif f and f[0] == "speed":
            v = dict(zip(f[::2], f[1::2], strict=True))
            sim, wall, cpu = float(v["sim"]), float(v["wall"]), float(v["cpu"])
            flips = int(v["flips"])
            print(f"  sim_speed {v['speed']:>4}: {sim:.1f} s simulated in {wall:.2f} s wall "
                  f"= {sim / wall:.1f}x real time; drawn {float(v['median_fps']):.1f} frames/s "
                  f"(median interval), {flips / wall:.1f} (frames / wall s); "
                  f"process CPU {100 * cpu / wall:.0f}% of one core")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="lanesim/Highway-v0")
    p.add_argument("--frames", type=int, default=1000, help="frames per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", default="600x150")
    p.add_argument("--no-overlay", action="store_true")
    p.add_argument("--no-hud", action="store_true")
    p.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    p.add_argument("--peer", action="store_true", help="also time highway-env's renderer")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--human", action="store_true", help="time the window instead (see above)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="--human: wall-clock seconds per speed (sim_speed × this simulated)")
    p.add_argument("--speeds", default="1,16,max",
                   help="--human: sim_speed values, comma-separated")
    a = p.parse_args()
    if a.human:
        human(a)
        return
    size = tuple(int(v) for v in a.size.split("x"))
    overlay, hud = not a.no_overlay, not a.no_hud
    src = loop_source(a.env, size, overlay, hud, a.frames, a.repeats, a.wall)
    if a.profile:
        with cProfile.Profile() as prof:
            exec(compile(src, "bench", "exec"), {"__name__": "bench"})
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    runs = [float(v) for v in subprocess.run([sys.executable, "-c", src], check=True,
                                             capture_output=True, text=True).stdout.split()]
    clock = "wall clock" if a.wall else "thread CPU time"
    print(f"lanesim {a.env} {size[0]}x{size[1]} overlay={overlay} hud={hud}: "
          f"{statistics.median(runs):,.0f} frames/s median ({min(runs):,.0f}-{max(runs):,.0f}; "
          f"{clock}, {a.repeats} runs × {a.frames} frames)")
    if a.peer:
        if not PEER_PYTHON.exists():
            sys.exit(f"no peer venv at {PEER_PYTHON}; run benchmarks/bench_env.py once to make it")
        t0 = time.perf_counter()
        peer = loop_source("", (600, 150), False, False, min(a.frames, 300), a.repeats, a.wall,
                           peer=True)
        out = [float(v) for v in subprocess.run([str(PEER_PYTHON), "-c", peer], check=True,
                                                capture_output=True, text=True).stdout.split()]
        print(f"highway-env highway-v0 600x150: {statistics.median(out):,.0f} frames/s median "
              f"({min(out):,.0f}-{max(out):,.0f}; {time.perf_counter() - t0:.0f} s to measure)")


if __name__ == "__main__":
    main()
