"""The protocol every lanesim agent follows, used by the evaluation, the viewer and the CLI.

An agent is any object with three methods::

    agent.reset(env)                  # a new episode has started in env (after env.reset)
    action = agent.act(obs)           # the action for the observation
    agent.annotations()               # {} or some of {"plan", "values", "labels"}

``reset(env)`` hands over the Gymnasium env (wrapped or not) the episode runs in: a
model-based agent keeps it to read ``env.unwrapped.scene()`` (a :class:`lanesim.envs.driving.
Scene`) and ``env.unwrapped.options`` at each ``act``; a model-free agent may ignore it.

``annotations()`` describes the last decision for the viewer's overlay: ``plan`` a list (or
``(n, 2)`` array) of world ``(x, y)`` points the agent intends to drive through, ``values``
an array with one value per action (Q-values, logits...), ``labels`` one name per action.
Every key is optional.

An agent may also set ``action_type`` (e.g. ``"meta"``): the ``action=`` option it needs from
a lanesim driving environment; ``None`` or absent means any action space.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Agent"]


@runtime_checkable
class Agent(Protocol):
    """A lanesim agent."""

    def reset(self, env: Any) -> None:
        """Forget per-episode state; called after every ``env.reset`` with that env."""

    def act(self, obs: Any) -> int | np.ndarray:
        """The action for observation ``obs``."""

    def annotations(self) -> dict[str, Any]:
        """Optional ``plan`` (world (x, y) points), ``values`` (per action), ``labels``."""
