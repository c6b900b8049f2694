"""Compile and cache lanesim's numba kernels: ``python -m lanesim.warmup``.

The first use of the simulator on a machine compiles its kernels (10 to 30 s on 2 cores, most of
it in the first ``reset()`` and ``step()``; a line on stderr says so) and caches them next to the
sources; every later process loads them in about a second. Running this once after installing
moves that cost out of the first episode.
"""

import math
import sys
import time

import gymnasium as gym
import numpy as np

import lanesim  # noqa: F401
from lanesim.camera import Camera, CameraRaster
from lanesim.envs.options import NETWORK_OBSERVATIONS, OBSERVATIONS
from lanesim.sim.jit import cold_start_notice


def main() -> None:
    start = time.perf_counter()
    cold_start_notice.enabled = False  # this is the ahead-of-time compile it recommends
    print("lanesim: compiling (or loading) the simulator's kernels ...", file=sys.stderr)
    for observation in OBSERVATIONS:
        env = gym.make("lanesim/Highway-v0", observation=observation, action="meta")
        env.reset(seed=0)
        env.step(1)
        env.close()
    # The viewer's kernels, the top-down and the camera view's.
    env = gym.make("lanesim/Highway-v0", render_mode="rgb_array", view="both")
    env.reset(seed=0)
    env.step(0)
    env.render()
    env.close()
    _warm_camera()
    vec = gym.make_vec("lanesim/Highway-v0", num_envs=2)
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
    vec.close()
    _warm_network()
    print(f"lanesim kernels ready ({time.perf_counter() - start:.1f} s)")


def _warm_network() -> None:
    """The road-network path: its world step, the autopilot and fixed controls, its
    observations and the viewer's network painter."""
    for observation in NETWORK_OBSERVATIONS:
        for action in ("meta", "continuous"):
            env = gym.make("lanesim/Intersection-v0", observation=observation, action=action)
            env.reset(seed=0)
            env.step(env.action_space.sample())
            env.close()
    env = gym.make("lanesim/Roundabout-v0", render_mode="rgb_array", action="meta")
    env.reset(seed=0)
    env.step(1)
    env.render()
    env.close()
    vec = gym.make_vec("lanesim/Exit-v0", num_envs=2, action="meta")
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
    vec.close()


def _warm_camera() -> None:
    """The camera renderer, grey and colour, into whole arrays and into strided views (a frame
    stack's newest frame): each is its own compiled variant."""
    env = gym.make("lanesim/Highway-v0")
    env.reset(seed=0)
    world = env.unwrapped.world
    every = np.ones(world.B, dtype=bool)
    for colour in (False, True):
        raster = CameraRaster(Camera.from_fov(math.radians(90)), world, colour=colour)
        stack = np.zeros((world.B, 2, *raster.shape), dtype=np.uint8)
        raster.draw(every, stack[:, -1])
        raster.draw(every, stack[:, -1].copy())
        raster.image(0)
    env.close()


if __name__ == "__main__":
    main()
