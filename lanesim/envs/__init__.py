"""Gymnasium layer: options, spaces, observations, actions, rewards and the environments."""

from lanesim.envs.actions import ActionError
from lanesim.envs.driving import DrivingEnv, NetworkScene, Scene
from lanesim.envs.options import OptionError, Options, make_options
from lanesim.envs.vector import DrivingVectorEnv

__all__ = [
    "ActionError",
    "DrivingEnv",
    "DrivingVectorEnv",
    "OptionError",
    "Options",
    "NetworkScene",
    "Scene",
    "make_options",
]
