"""Frames per second of the viewer: rgb_array frames (optionally beside highway-env's renderer),
or the human window's drawn frame rate and real-time factor.

rgb_array: steps an environment with random actions (seeded) and times only ``env.render()``
(stepping is not counted), so the figure compares with other simulators' renderers. Each run
renders ``--frames`` frames; the median (and range) of ``--repeats`` runs is reported. The clock
is this thread's CPU time by default, so other processes on a busy machine do not count
(``--wall`` for wall-clock time). ``--peer`` times highway-env's ``highway-v0`` (600×150, its
default) the same way, in the peer venv that ``bench_env`` makes (``--peer-venv``).

``--human``: opens the real window (``render_mode="human"``, its default 1200×400) and drives
random meta actions (lane changes, faster, slower: episodes last, as an agent's do) for about
``--seconds`` of wall-clock time at each of ``--speeds`` (``sim_speed``; ``max`` = unpaced),
reporting the drawn frames per second (median of the intervals between window flips, and
flips over wall time) and the real-time factor achieved (simulated over wall-clock seconds,
so a busy machine lowers it). It needs a display: without ``DISPLAY`` it runs itself under
``xvfb-run`` when that exists, else on SDL's dummy video driver (which skips the real
window's presentation cost; the output says which)::

    python -m lanesim_bench.bench_render                  # the defaults: overlay and HUD on
    python -m lanesim_bench.bench_render --no-overlay --no-hud --peer
    python -m lanesim_bench.bench_render --profile        # where the time goes
    python -m lanesim_bench.bench_render --human          # the window at sim_speed 1, 16, max
    python -m lanesim_bench.bench_render --human --view camera --speeds 1   # the camera view
    python -m lanesim_bench.bench_render --peer --write docs/bench_render.md   # into the report
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lanesim_bench import peer_highway_env
from lanesim_bench.common import PEER_VENV, command, printed_report
from lanesim_bench.peer_highway_env import render_rates

MODULE = "lanesim_bench.bench_render"


def rgb_worker(env_id: str, size: tuple[int, int], overlay: bool, hud: bool, frames: int,
               repeats: int, wall: bool, view: str = "top") -> list[float]:
    """lanesim's rgb_array frames per second, one figure per run (see :func:`render_rates`)."""
    import gymnasium as gym

    import lanesim  # noqa: F401  (registers the ids)

    w, h = size
    env = gym.make(env_id, render_mode="rgb_array", screen_width=w, screen_height=h,
                   road_overlay=overlay, hud=hud, view=view)
    return render_rates(env, frames, repeats, wall)


def human_worker(env_id: str, overlay: bool, hud: bool, speeds: list, seconds: float,
                 view: str = "top") -> None:
    """The window at each ``sim_speed`` (run in a fresh process with a real video driver):
    prints the video driver and window size, then one line of figures per speed."""
    import gymnasium as gym
    import pygame

    import lanesim  # noqa: F401

    flips = []
    flip_window = pygame.display.flip

    def counted_flip():
        flip_window()
        flips.append(time.perf_counter())

    pygame.display.flip = counted_flip  # the viewer calls pygame.display.flip(): every frame
    env = gym.make(env_id, render_mode="human", sim_speed="max", road_overlay=overlay, hud=hud,
                   action="meta", view=view)
    env.reset(seed=0)
    env.action_space.seed(0)
    viewer = env.unwrapped.viewer
    dt = 1.0 / env.unwrapped.options.policy_hz

    def drive(sim_seconds: float, wall_seconds: float = math.inf) -> float:
        sim, start = 0.0, time.perf_counter()
        while sim < sim_seconds - 1e-9 and time.perf_counter() - start < wall_seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            sim += dt
            if terminated or truncated:
                env.reset()
        return sim

    drive(2.0)  # warm up: compiled kernels, sprites, road tiles
    print("driver", pygame.display.get_driver(), "window",
          *pygame.display.get_surface().get_size())
    for speed in speeds:
        viewer.set_speed(math.inf if speed == "max" else float(speed))
        del flips[:]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        sim = drive(math.inf, seconds) if speed == "max" else drive(seconds * speed)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        gaps = [b - a for a, b in zip(flips[:-1], flips[1:], strict=True)]
        median = 1.0 / statistics.median(gaps) if gaps else 0.0
        print("speed", speed, "sim", sim, "wall", wall, "cpu", cpu, "flips", len(flips),
              "median_fps", median, flush=True)
    env.close()


def human(a) -> None:
    """The window benchmark (``--human``): see the module docstring."""
    env = dict(os.environ)  # the user's SDL_VIDEODRIVER, if any: the window benchmark keeps it
    cmd = [sys.executable, "-m", MODULE, "--human-worker", *_shared_flags(a),
           "--speeds", a.speeds, "--seconds", str(a.seconds)]
    if "SDL_VIDEODRIVER" not in env:
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
                  f"view={a.view} overlay={not a.no_overlay} hud={not a.no_hud}, random meta "
                  "actions:")
        elif f and f[0] == "speed":
            v = dict(zip(f[::2], f[1::2], strict=True))
            sim, wall, cpu = float(v["sim"]), float(v["wall"]), float(v["cpu"])
            flips = int(v["flips"])
            print(f"  sim_speed {v['speed']:>4}: {sim:.1f} s simulated in {wall:.2f} s wall "
                  f"= {sim / wall:.1f}x real time; drawn {float(v['median_fps']):.1f} frames/s "
                  f"(median interval), {flips / wall:.1f} (frames / wall s); "
                  f"process CPU {100 * cpu / wall:.0f}% of one core")


def _shared_flags(a) -> list[str]:
    """The options a worker process needs to measure what this one was asked to."""
    flags = ["--env", a.env, "--size", a.size, "--frames", str(a.frames),
             "--repeats", str(a.repeats), "--view", a.view]
    return flags + [f for f, on in (("--no-overlay", a.no_overlay), ("--no-hud", a.no_hud),
                                    ("--wall", a.wall)) if on]


def _speeds(text: str) -> list:
    return [v if v == "max" else float(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lanesim_bench.bench_render",
                                description=__doc__.splitlines()[0])
    p.add_argument("--env", default="lanesim/Highway-v0")
    p.add_argument("--frames", type=int, default=1000, help="frames per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", default="600x150")
    p.add_argument("--view", default="top", choices=("top", "camera", "both"),
                   help="the viewer's view; camera and both draw on several threads, so they "
                   "are timed on the wall clock")
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
    p.add_argument("--peer-venv", default=str(PEER_VENV),
                   help="the venv that `python -m lanesim_bench.bench_env` made for highway-env")
    p.add_argument("--write", metavar="FILE.md",
                   help="also write the figures to this file (docs/bench_render.md is this)")
    p.add_argument("--rgb-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--human-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if not (a.human or a.human_worker):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # rgb_array frames need no window
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    size = tuple(int(v) for v in a.size.split("x"))
    overlay, hud = not a.no_overlay, not a.no_hud
    # One thread's CPU time would miss the camera pane's drawing threads.
    a.wall = a.wall or a.view != "top"
    if a.human_worker:
        human_worker(a.env, overlay, hud, _speeds(a.speeds), a.seconds, a.view)
        return
    if a.rgb_worker:
        print(json.dumps(rgb_worker(a.env, size, overlay, hud, a.frames, a.repeats, a.wall,
                                    a.view)))
        return
    if a.profile:
        with cProfile.Profile() as prof:
            rgb_worker(a.env, size, overlay, hud, a.frames, a.repeats, a.wall, a.view)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    cmd = command(MODULE, sys.argv[1:] if argv is None else argv)
    printed_report(a.write, cmd, lambda: human(a) if a.human else frames(a, size))


def frames(a, size: tuple[int, int]) -> None:
    """The rgb_array benchmark: lanesim's frames per second, then highway-env's with --peer."""
    overlay, hud = not a.no_overlay, not a.no_hud
    # A fresh process, so the figures are not of a process that has done other work.
    runs = json.loads(subprocess.run([sys.executable, "-m", MODULE, "--rgb-worker",
                                      *_shared_flags(a)], check=True, capture_output=True,
                                     text=True).stdout.splitlines()[-1])
    clock = "wall clock" if a.wall else "thread CPU time"
    print(f"lanesim {a.env} {size[0]}x{size[1]} view={a.view} overlay={overlay} hud={hud}: "
          f"{statistics.median(runs):,.0f} frames/s median ({min(runs):,.0f}-{max(runs):,.0f}; "
          f"{clock}, {a.repeats} runs × {a.frames} frames)")
    if a.peer:
        peer_python = Path(a.peer_venv) / "bin" / "python"
        if not peer_python.exists():
            sys.exit(f"no peer venv at {a.peer_venv}; run `python -m lanesim_bench.bench_env` "
                     "once to make it")
        t0 = time.perf_counter()
        cmd = [str(peer_python), peer_highway_env.__file__, "--render", str(min(a.frames, 300)),
               "--repeats", str(a.repeats), *(["--wall"] if a.wall else [])]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                        text=True).stdout.splitlines()[-1])["rates"]
        print(f"highway-env highway-v0 600x150: {statistics.median(out):,.0f} frames/s median "
              f"({min(out):,.0f}-{max(out):,.0f}; {time.perf_counter() - t0:.0f} s to measure)")


if __name__ == "__main__":
    main()
