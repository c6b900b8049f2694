"""Agent annotations: what an agent plans and how it values its actions, shown by the viewer.

Any agent can call :func:`annotate` before (or after) ``env.step``; the viewer draws the
latest annotation on every frame until the next call replaces it or the episode resets. It is
stored on ``env.unwrapped``, so it works through wrappers and before the viewer exists.
Annotations never reach the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ATTRIBUTE = "_lanesim_annotation"


@dataclass(frozen=True)
class Annotation:
    """One agent annotation.

    Attributes:
        plan: ``(n, 2)`` world ``(x, y)`` points (m) the agent intends to drive through, or None.
        values: ``(n_actions,)`` per-action values (Q-values, logits, probabilities...), or None.
        labels: a name per action, or None for the action space's default names.
        chosen: index of the action to highlight (default: the argmax of ``values``).
        text: one extra line for the HUD, or None.
    """

    plan: np.ndarray | None = None
    values: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    chosen: int | None = None
    text: str | None = None


def annotate(env, plan=None, values=None, labels: Sequence[str] | None = None,
             chosen: int | None = None, text: str | None = None) -> None:
    """Show an agent's plan and action values in ``env``'s viewer (human or rgb_array).

    Args:
        env: a lanesim environment, wrapped or not (single or vector; a vector env shows
            sub-environment 0, so pass that one's plan and values).
        plan: world ``(x, y)`` points in metres, shape ``(n, 2)``, drawn as a path on the
            road. Road-frame plans convert with ``env.unwrapped.world.road.to_world(s, d)``.
        values: per-action values, shape ``(n_actions,)`` (a ``(num_envs, n_actions)`` batch
            uses row 0), drawn as bars in the HUD.
        labels: one name per value; defaults to the action space's names.
        chosen: the action to highlight; defaults to ``argmax(values)``.
        text: an extra HUD line (e.g. ``"ε = 0.05"``).

    Calling it with no arguments clears the annotation.
    """
    target = getattr(env, "unwrapped", env)
    if plan is None and values is None and text is None:
        setattr(target, ATTRIBUTE, None)
        return
    if plan is not None:
        plan = np.array(plan, dtype=np.float64).reshape(-1, 2) if len(plan) else np.zeros((0, 2))
        if not np.isfinite(plan).all():
            raise ValueError("annotate: plan points must be finite (x, y) pairs in metres")
    if values is not None:
        values = np.array(values, dtype=np.float64)
        if values.ndim == 2:
            values = values[0]
        if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
            raise ValueError(
                f"annotate: values must be a finite (n_actions,) array, got shape {values.shape}"
            )
        if labels is not None and len(labels) != len(values):
            raise ValueError(f"annotate: {len(labels)} labels for {len(values)} values")
        if chosen is None:
            chosen = int(np.argmax(values))
        if not 0 <= chosen < len(values):
            raise ValueError(f"annotate: chosen={chosen} outside 0..{len(values) - 1}")
    setattr(target, ATTRIBUTE, Annotation(
        plan=plan,
        values=values,
        labels=tuple(str(v) for v in labels) if labels is not None else None,
        chosen=chosen if values is not None else None,
        text=text,
    ))


def annotation_of(env) -> Annotation | None:
    """The annotation currently set on ``env`` (or None)."""
    return getattr(getattr(env, "unwrapped", env), ATTRIBUTE, None)
