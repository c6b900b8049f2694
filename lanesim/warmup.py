"""Compile and cache lanesim's numba kernels: ``python -m lanesim.warmup``.

The first use of the simulator on a machine compiles its kernels (10 to 30 s on 2 cores, most of
it in the first ``reset()`` and ``step()``; a line on stderr says so) and caches them next to the
sources; every later process loads them in about a second. Running this once after installing
moves that cost out of the first episode.
"""

import sys
import time

import gymnasium as gym

import lanesim  # noqa: F401
from lanesim.envs.options import OBSERVATIONS
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
    env = gym.make("lanesim/Highway-v0", render_mode="rgb_array")  # the viewer's kernels
    env.reset(seed=0)
    env.step(0)
    env.render()
    env.close()
    vec = gym.make_vec("lanesim/Highway-v0", num_envs=2)
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
    vec.close()
    print(f"lanesim kernels ready ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
