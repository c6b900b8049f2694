"""Range checks shared by the agents' config dataclasses (DQNConfig, PPOConfig).

Each config lists its checks as ``{"what is accepted": passed}`` and calls :func:`refuse_failed`,
so a bad value gets one error naming every accepted range it missed. :func:`integer` and
:func:`number` turn a value of the wrong type (a bool, a string, None) into one that fails any
comparison, so a check never raises a TypeError of its own.
"""

from __future__ import annotations

from typing import Any


def integer(value: Any) -> float:
    """``value`` if it is an integer (not a bool), else -inf so its check fails."""
    return value if isinstance(value, int) and not isinstance(value, bool) else float("-inf")


def number(value: Any) -> float:
    """``value`` if it is a real number (not a bool), else NaN so its check fails (NaN fails
    every comparison, so a NaN value fails too)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return value if ok else float("nan")


def refuse_failed(what: str, checks: dict[str, bool]) -> None:
    """Raise ``ValueError("invalid WHAT: ...")`` naming every check that failed."""
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise ValueError(f"invalid {what}: {', '.join(failed)}")
