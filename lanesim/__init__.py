"""lanesim: a fast, batched driving simulator for reinforcement learning.

Importing lanesim registers its Gymnasium environments::

    import gymnasium as gym
    import lanesim  # noqa: F401
    env = gym.make("lanesim/Highway-v0", observation="pixels")
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

# id -> bundled scenario. Drive-v0 takes scenario= (a bundled name or a .toml path).
ENVIRONMENTS = {
    "lanesim/Highway-v0": "highway",
    "lanesim/LaneKeeping-v0": "lane_keeping",
    "lanesim/Merge-v0": "merge",
    "lanesim/Roadworks-v0": "roadworks",
    "lanesim/Dense-v0": "dense",
    "lanesim/Racetrack-v0": "racetrack",
    "lanesim/TwoWay-v0": "twoway",
    "lanesim/Intersection-v0": "intersection",
    "lanesim/Roundabout-v0": "roundabout",
    "lanesim/Exit-v0": "exit",
    "lanesim/Drive-v0": None,
}


def _register() -> None:
    for env_id, scenario in ENVIRONMENTS.items():
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point="lanesim.envs.driving:DrivingEnv",
            vector_entry_point="lanesim.envs.vector:DrivingVectorEnv",
            kwargs={"scenario": scenario} if scenario else {},
            disable_env_checker=False,
        )


_register()
if "lanesim/LaneGrid-v0" not in registry:
    # The tabular task: a toy-text style model (env.unwrapped.P) for value iteration.
    register(id="lanesim/LaneGrid-v0", entry_point="lanesim.envs.lanegrid:LaneGridEnv")
