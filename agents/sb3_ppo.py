"""Stable-Baselines3's PPO as ``lanesim train sb3-ppo`` runs it: its settings in :class:`PPOConfig`.

The defaults are SB3's own, so ``lanesim train sb3-ppo`` without ``--config`` is SB3's PPO as
shipped (with ``n_steps`` shortened for runs smaller than one rollout:
:func:`agents.training.ppo_config`). README's issue #18 driver recipe changes the fields
that matter on lanesim's batched env: many worlds, short rollouts, large batches, a wider
network. Torch's thread count is no PPO setting: ``--config threads=N`` is
``lanesim train``'s, for every trainer (:data:`agents.training.DEFAULT_THREADS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.settings import integer, number, refuse_failed
from lanesim.envs.options import IMAGE_OBSERVATIONS


@dataclass(frozen=True)
class PPOConfig:
    """Settings of one SB3 PPO run. ``n_steps`` and ``batch_size`` of ``None`` fit SB3's
    defaults (2048 and 64) to the run: a rollout never much exceeds the step budget and divides
    into whole minibatches (:func:`agents.training.ppo_rollout`)."""

    n_steps: int | None = field(
        default=None,
        metadata={"help": "decisions per world per rollout (rollout = n_steps x num_envs "
                  "transitions); None: 2048, fewer when the budget is smaller"},
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "transitions per gradient step; None: 64"},
    )
    n_epochs: int = field(default=10, metadata={"help": "passes over each rollout"})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate"})
    lr_end: float | None = field(
        default=None,
        metadata={"help": "if set, the learning rate falls linearly from lr to lr_end over the "
                  "run's steps"},
    )
    gamma: float = field(default=0.99, metadata={"help": "discount per decision"})
    gae_lambda: float = field(default=0.95, metadata={"help": "GAE lambda"})
    clip_range: float = field(default=0.2, metadata={"help": "PPO's ratio clip"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus weight"})
    net_arch: tuple[int, ...] = field(
        default=(64, 64),
        metadata={"help": "hidden layer widths of the policy and of the value MLP, e.g. "
                  "[256,256] (ignored by the CNN of pixel observations)"},
    )

    def __post_init__(self) -> None:
        # JSON from --config gives lists; a frozen config keeps a tuple.
        if isinstance(self.net_arch, list):
            object.__setattr__(self, "net_arch", tuple(self.net_arch))
        # Upper bounds keep a typo from allocating a rollout or a network that fills memory.
        checks = {
            "n_steps is None or 2 <= n_steps <= 100,000": (
                self.n_steps is None or 2 <= integer(self.n_steps) <= 100_000),
            "batch_size is None or 2 <= batch_size <= 1,000,000": (
                self.batch_size is None or 2 <= integer(self.batch_size) <= 1_000_000),
            "1 <= n_epochs <= 1,000": 1 <= integer(self.n_epochs) <= 1_000,
            "0 < lr <= 1": 0 < number(self.lr) <= 1,
            "lr_end is None or 0 <= lr_end <= 1": (
                self.lr_end is None or 0 <= number(self.lr_end) <= 1),
            "0 <= gamma <= 1": 0 <= number(self.gamma) <= 1,
            "0 <= gae_lambda <= 1": 0 <= number(self.gae_lambda) <= 1,
            "0 < clip_range <= 10": 0 < number(self.clip_range) <= 10,
            "0 <= ent_coef <= 10": 0 <= number(self.ent_coef) <= 10,
            "net_arch 1 to 16 layers of 1 to 16,384 units": (
                isinstance(self.net_arch, tuple) and 1 <= len(self.net_arch) <= 16
                and all(1 <= integer(w) <= 16_384 for w in self.net_arch)),
        }
        refuse_failed("PPO setting", checks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "net_arch": list(self.net_arch)}


def ppo_kwargs(config: PPOConfig, observation: str) -> dict[str, Any]:
    """SB3 ``PPO`` keywords of ``config`` (``n_steps`` and ``batch_size`` resolved), for a
    policy on ``observation``. A decaying learning rate runs over the ``total_timesteps`` of
    each ``learn()`` call. The same keywords rebuild what SB3 pickles when
    :func:`agents.sb3.load_model` loads the run's model again (the schedule)."""
    if config.n_steps is None or config.batch_size is None:
        raise ValueError("n_steps and batch_size must be resolved (agents.training.ppo_config)")
    lr: Any = config.lr
    if config.lr_end is not None:
        lr = LinearRate(config.lr, config.lr_end)
    kwargs: dict[str, Any] = {
        "learning_rate": lr, "n_steps": config.n_steps, "batch_size": config.batch_size,
        "n_epochs": config.n_epochs, "gamma": config.gamma, "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_range, "ent_coef": config.ent_coef,
    }
    if observation not in IMAGE_OBSERVATIONS:  # the MLP's widths; an image CNN keeps SB3's
        kwargs["policy_kwargs"] = {"net_arch": list(config.net_arch)}
    return kwargs


@dataclass(frozen=True)
class LinearRate:
    """SB3 learning-rate schedule from ``start`` to ``end``: SB3 calls it with the fraction of
    the run still to go (1 -> 0)."""

    start: float
    end: float

    def __call__(self, progress_remaining: float) -> float:
        return self.end + (self.start - self.end) * progress_remaining
