"""The protocol every lanesim agent follows, used by the evaluation, the viewer and the CLI.

An agent is any object with three methods::

    agent.reset()                     # a new episode starts
    action = agent.act(obs, env)      # env: the Gymnasium env (model-based agents may read
                                      #      env.unwrapped.world and env.unwrapped.options)
    agent.annotations()               # {} or some of {"plan", "values", "labels"}

``annotations()`` describes the last decision for the viewer's overlay: ``plan`` a list (or
``(n, 2)`` array) of world ``(x, y)`` points the agent intends to drive through, ``values``
an array with one value per action, ``labels`` one name per action. Every key is optional.

An agent may also set ``action_type`` (e.g. ``"meta"``): the ``action=`` option it needs from
a lanesim driving environment; ``None`` or absent means any action space.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Agent", "show_annotations"]


@runtime_checkable
class Agent(Protocol):
    """A lanesim agent."""

    def reset(self) -> None:
        """Forget per-episode state; called after every ``env.reset``."""

    def act(self, obs: Any, env: Any) -> int | np.ndarray:
        """The action for observation ``obs`` in ``env``."""

    def annotations(self) -> dict[str, Any]:
        """Optional ``plan`` (world (x, y) points), ``values`` (per action), ``labels``."""


def show_annotations(agent: Agent, env: Any) -> None:
    """Hand ``agent.annotations()`` to the viewer overlay of the lanesim env ``env``."""
    from lanesim.render.annotate import annotate

    notes = agent.annotations()
    annotate(env, plan=notes.get("plan"), values=notes.get("values"), labels=notes.get("labels"))
