"""Tabular Q-learning: the model-free baseline for the tabular tasks (e.g. ``LaneGrid-v0``).

It learns only through the Gymnasium API (``reset``, ``step``, the ``Discrete`` spaces), never
from ``env.unwrapped.P``, so comparing its greedy policy with value iteration's on the exact
model checks both.

Update, after each step ``(s, a, r, s')``::

    Q[s, a] += alpha_n * (r + gamma * (0 if terminated else max_a' Q[s', a']) - Q[s, a])

with a per-pair learning rate ``alpha_n = max(lr_min, lr / n(s, a) ** lr_exponent)``, where
``n(s, a)`` counts the updates of that pair (``lr_exponent`` in (0.5, 1] meets the
Robbins-Monro conditions and gives convergence to ``Q*`` when every pair is visited
infinitely often; ``lr_exponent = 0`` is a constant rate). Actions are epsilon-greedy with
epsilon decaying linearly from ``epsilon_start`` to ``epsilon_end`` over
``epsilon_decay`` of the episodes; ties in the greedy choice are broken at random. A
truncated episode bootstraps from ``s'`` (the time limit is not part of the task).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

__all__ = ["QLearningAgent", "QLearningConfig", "QLearningResult", "train_q_learning"]


@dataclass(frozen=True)
class QLearningConfig:
    """Hyper-parameters of :func:`train_q_learning`."""

    episodes: int = 2000
    gamma: float = 0.95
    lr: float = 1.0  # alpha for a pair's first update
    lr_exponent: float = 0.8  # alpha_n = lr / n ** lr_exponent
    lr_min: float = 0.0  # floor on alpha
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    epsilon_decay: float = 0.5  # fraction of the episodes over which epsilon decays
    max_steps: int | None = None  # per episode, on top of the env's own time limit
    initial_q: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            ("episodes", self.episodes >= 1),
            ("gamma", 0.0 <= self.gamma <= 1.0),
            ("lr", 0.0 < self.lr <= 1.0),
            ("lr_exponent", 0.0 <= self.lr_exponent <= 1.0),
            ("lr_min", 0.0 <= self.lr_min <= 1.0),
            ("epsilon_start", 0.0 <= self.epsilon_start <= 1.0),
            ("epsilon_end", 0.0 <= self.epsilon_end <= 1.0),
            ("epsilon_decay", 0.0 < self.epsilon_decay <= 1.0),
            ("max_steps", self.max_steps is None or self.max_steps >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(
                    f"QLearningConfig.{name} = {getattr(self, name)!r} is out of range"
                )

    def epsilon(self, episode: int) -> float:
        """Exploration rate of ``episode`` (0-based)."""
        frac = min(1.0, episode / max(1.0, self.epsilon_decay * self.episodes))
        return self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start)


@dataclass
class QLearningResult:
    """What :func:`train_q_learning` learnt."""

    Q: np.ndarray  # (S, A)
    visits: np.ndarray  # (S, A) updates per pair
    returns: list[float] = field(default_factory=list)  # undiscounted return per episode
    steps: int = 0
    seconds: float = 0.0

    @property
    def policy(self) -> np.ndarray:
        """Greedy policy ``argmax_a Q`` (first maximiser on ties), ``(S,)``."""
        return self.Q.argmax(axis=1)


def train_q_learning(
    env: gym.Env, config: QLearningConfig | None = None, seed: int = 0, **overrides
) -> QLearningResult:
    """Train tabular Q-learning on ``env`` (``Discrete`` observations and actions).

    Deterministic for a given ``seed``: episode ``i`` resets with ``seed + i`` and the
    exploration draws come from ``numpy.random.default_rng(seed)``.

    Args:
        env: a Gymnasium environment with ``Discrete`` observation and action spaces.
        config: hyper-parameters; ``overrides`` replace single fields of it.
        seed: base seed.
    """
    if config is None:
        config = QLearningConfig(**overrides)
    elif overrides:
        config = QLearningConfig(**{**config.__dict__, **overrides})
    obs_space, act_space = env.observation_space, env.action_space
    discrete = gym.spaces.Discrete
    if not isinstance(obs_space, discrete) or not isinstance(act_space, discrete):
        raise TypeError(
            "Q-learning needs Discrete observation and action spaces, "
            f"got {obs_space} and {act_space}"
        )
    n_states, n_actions = int(obs_space.n), int(act_space.n)
    rng = np.random.default_rng(seed)
    Q = np.full((n_states, n_actions), float(config.initial_q))
    visits = np.zeros((n_states, n_actions), dtype=np.int64)
    gamma = config.gamma
    returns: list[float] = []
    total = 0
    start = time.perf_counter()
    for episode in range(config.episodes):
        eps = config.epsilon(episode)
        s, _ = env.reset(seed=seed + episode)
        s = int(s)
        ret, t = 0.0, 0
        while True:
            if rng.random() < eps:
                a = int(rng.integers(n_actions))
            else:
                q = Q[s]
                best = np.flatnonzero(q == q.max())
                a = int(best[0] if len(best) == 1 else best[rng.integers(len(best))])
            s2, r, terminated, truncated, _ = env.step(a)
            s2 = int(s2)
            visits[s, a] += 1
            alpha = max(config.lr_min, config.lr / visits[s, a] ** config.lr_exponent)
            target = r if terminated else r + gamma * Q[s2].max()
            Q[s, a] += alpha * (target - Q[s, a])
            ret += r
            t += 1
            s = s2
            if terminated or truncated or (config.max_steps is not None and t >= config.max_steps):
                break
        total += t
        returns.append(ret)
    return QLearningResult(Q=Q, visits=visits, returns=returns, steps=total,
                           seconds=time.perf_counter() - start)


class QLearningAgent:
    """Greedy policy of a Q table, in the lanesim agent protocol (:mod:`agents.base`)."""

    action_type = None  # any Discrete action space

    def __init__(self, Q: np.ndarray, labels: tuple[str, ...] | None = None) -> None:
        self.Q = np.asarray(Q, dtype=np.float64)
        self.labels = labels
        self._values: np.ndarray | None = None

    def reset(self, env) -> None:
        self._values = None

    def act(self, obs) -> int:
        self._values = self.Q[int(obs)].copy()
        return int(self._values.argmax())

    def annotations(self) -> dict:
        out: dict = {}
        if self._values is not None:
            out["values"] = self._values
            if self.labels is not None:
                out["labels"] = list(self.labels)
        return out
