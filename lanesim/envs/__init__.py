"""Gymnasium layer: options, spaces, observations, actions, rewards and the environments."""

from lanesim.envs.actions import ActionError
from lanesim.envs.driving import DrivingEnv
from lanesim.envs.options import OptionError, Options, make_options
from lanesim.envs.vector import DrivingVectorEnv

__all__ = [
    "ActionError",
    "DrivingEnv",
    "DrivingVectorEnv",
    "OptionError",
    "Options",
    "make_options",
]
