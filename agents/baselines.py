"""Baseline agents to compare with, in the agent protocol (:mod:`agents.base`): random meta
actions, a constant meta action, and lane following at the start speed."""

from __future__ import annotations

import numpy as np

from lanesim.envs.actions import IDLE

__all__ = ["ConstantAgent", "IdleAgent", "RandomAgent"]


class RandomAgent:
    """Uniformly random actions from the env's action space, seeded once per agent."""

    action_type = "meta"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._n = 0  # the env's number of actions, known at reset

    def reset(self, env) -> None:
        self._n = env.action_space.n

    def act(self, obs) -> int:
        return int(self._rng.integers(self._n))

    def annotations(self) -> dict:
        return {}


class ConstantAgent:
    """The same meta action at every decision, e.g. ``SLOWER`` (4): settle at the lowest
    target speed and keep the lane."""

    action_type = "meta"

    def __init__(self, action: int) -> None:
        self.action = action

    def reset(self, env) -> None:
        pass

    def act(self, obs) -> int:
        return self.action

    def annotations(self) -> dict:
        return {}


class IdleAgent(ConstantAgent):
    """Always meta action IDLE: the lane-following controller at the start speed."""

    def __init__(self) -> None:
        super().__init__(IDLE)
