"""Every DQN hyperparameter in one place, each with a default and a help string."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of :func:`agents.dqn.train.train_dqn`.

    Frozen so a run's settings cannot drift mid-training; derive variants with
    ``dataclasses.replace(config, lr=1e-4)``. Counts named "steps" are environment
    transitions summed over all parallel envs, so changing ``num_envs`` keeps the
    schedules and the replay ratio unchanged.
    """

    seed: int = field(default=0, metadata={"help": "seed for torch, numpy and the environments"})
    total_steps: int = field(
        default=2_000_000, metadata={"help": "environment transitions to train for"}
    )
    num_envs: int = field(
        default=8,
        metadata={
            "help": "parallel envs for scripts that build the VectorEnv; train() itself "
            "uses the env's num_envs"
        },
    )
    device: str = field(
        default="auto", metadata={"help": "'auto' (cuda if available, else cpu), 'cpu' or 'cuda'"}
    )
    threads: int = field(
        default=0,
        metadata={
            "help": "torch CPU threads while training (0: leave torch's setting, one per "
            "core); on a machine shared with other jobs 1 avoids a spinning thread pool"
        },
    )
    # Network
    dueling: bool = field(default=True, metadata={"help": "dueling heads Q = V + A - mean(A)"})
    hidden: int | None = field(
        default=None,
        metadata={"help": "width of the last hidden layer; None = 512 (conv) or 256 (MLP)"},
    )
    stacked_frames: bool = field(
        default=True,
        metadata={
            "help": "treat axis 0 of uint8 (C, H, W) observations as stacked frames (newest "
            "last) and store each frame once; set False for e.g. RGB images"
        },
    )
    # Replay
    buffer_size: int = field(
        default=100_000,
        metadata={
            "help": "replay capacity in transitions (all envs together), an integer >= 1 that "
            "fits in memory; a memory smaller than the run forgets the exploration phase's "
            "crashes (docs/dqn_ablations.md)"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "transitions per gradient step"})
    n_step: int = field(default=3, metadata={"help": "n-step return length (1 = one-step TD)"})
    prioritized: bool = field(
        default=False, metadata={"help": "proportional prioritized replay (sum-tree)"}
    )
    per_alpha: float = field(default=0.6, metadata={"help": "priority exponent alpha"})
    per_beta0: float = field(
        default=0.4, metadata={"help": "initial importance-weight exponent, annealed to 1"}
    )
    per_eps: float = field(
        default=1e-6, metadata={"help": "added to |TD error| so no transition gets priority 0"}
    )
    # Optimisation
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    lr_end: float | None = field(
        default=None,
        metadata={
            "help": "learning rate at total_steps, reached linearly from lr over the run "
            "(None: lr throughout)"
        },
    )
    adam_eps: float = field(default=1.5e-4, metadata={"help": "Adam epsilon"})
    gamma: float = field(default=0.99, metadata={"help": "discount factor"})
    double: bool = field(
        default=True, metadata={"help": "double DQN: online argmax, target evaluation"}
    )
    grad_clip: float = field(
        default=10.0, metadata={"help": "max global gradient norm (0 disables clipping)"}
    )
    learning_starts: int = field(
        default=20_000, metadata={"help": "transitions in replay before learning starts"}
    )
    train_freq: int = field(default=4, metadata={"help": "env steps between gradient phases"})
    gradient_steps: int = field(default=1, metadata={"help": "gradient steps per phase"})
    target_update: int = field(
        default=8_000, metadata={"help": "env steps between target-network updates"}
    )
    tau: float = field(
        default=1.0,
        metadata={"help": "target <- tau*online + (1-tau)*target at each update; 1 = hard copy"},
    )
    # Exploration
    eps_start: float = field(default=1.0, metadata={"help": "initial epsilon"})
    eps_end: float = field(default=0.01, metadata={"help": "final epsilon"})
    eps_fraction: float = field(
        default=0.1, metadata={"help": "fraction of total_steps over which epsilon decays"}
    )
    # Evaluation, logging, checkpoints
    eval_every: int = field(
        default=50_000,
        metadata={"help": "env steps between greedy evaluations (0: only one at the end)"},
    )
    eval_episodes: int = field(default=10, metadata={"help": "episodes per evaluation"})
    checkpoint_every: int = field(
        default=50_000, metadata={"help": "env steps between latest.pt saves"}
    )
    log_every: int = field(
        default=1_000, metadata={"help": "env steps between TensorBoard loss/Q/SPS scalars"}
    )
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar"})

    def __post_init__(self) -> None:
        checks = {
            "total_steps > 0": self.total_steps > 0,
            "num_envs >= 1": self.num_envs >= 1,
            "threads >= 0": self.threads >= 0,
            "buffer_size is an integer >= 1": isinstance(self.buffer_size, int)
            and not isinstance(self.buffer_size, bool)
            and self.buffer_size >= 1,
            "batch_size >= 1": self.batch_size >= 1,
            "lr > 0": self.lr > 0,
            "lr_end is None or lr_end >= 0": self.lr_end is None or self.lr_end >= 0,
            "n_step >= 1": self.n_step >= 1,
            "0 <= gamma <= 1": 0.0 <= self.gamma <= 1.0,
            "0 < tau <= 1": 0.0 < self.tau <= 1.0,
            "train_freq >= 1": self.train_freq >= 1,
            "target_update >= 1": self.target_update >= 1,
            "0 <= per_beta0 <= 1": 0.0 <= self.per_beta0 <= 1.0,
            "per_eps > 0": self.per_eps > 0,
            "0 <= eps_fraction <= 1": 0.0 <= self.eps_fraction <= 1.0,
            "eval_episodes >= 1": self.eval_episodes >= 1,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid DQNConfig: {', '.join(failed)}")

    def resolved_device(self) -> torch.device:
        """The torch device, with 'auto' resolved to cuda when available."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DQNConfig:
        """Build a config from a dict, rejecting unknown keys (catches typos)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DQNConfig fields: {unknown}")
        return cls(**values)
