"""Every DQN hyperparameter in one place, each with a default and a help string."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from agents.dqn.network import CONV_CHANNELS
from agents.settings import integer, number, refuse_failed


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
    conv: str = field(
        default="nature",
        metadata={
            "help": "conv trunk for images: 'nature' (the Nature DQN's 32, 64, 64 channels) or "
            "'small' (16, 32, 32, the same kernels and strides: about 40 % less time per "
            "update on 42x84 frames, issue #18's recipe); ignored for vector observations"
        },
    )
    stacked_frames: bool = field(
        default=True,
        metadata={
            "help": "treat axis 0 of uint8 (C, H, W) observations as stacked frames (newest "
            "last) and store each frame once (3 channels a frame for lanesim's colour camera, "
            "else 1); set False for other multi-channel images"
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
        default=50_000, metadata={"help": "env steps between latest.pt saves (0: only at the end)"}
    )
    log_every: int = field(
        default=1_000,
        metadata={"help": "env steps between TensorBoard loss/Q/SPS scalars (0: none)"},
    )
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar"})

    def __post_init__(self) -> None:
        # Upper bounds keep a typo from allocating a network or a batch that fills memory (the
        # replay's size is checked against free memory when it is allocated).
        checks = {
            "1 <= total_steps <= 10^12": 1 <= integer(self.total_steps) <= 10**12,
            "1 <= num_envs": integer(self.num_envs) >= 1,  # its worlds pass the memory check
            "threads >= 0 and <= 1,024": 0 <= integer(self.threads) <= 1_024,
            "hidden is None or 1 <= hidden <= 16,384": (
                self.hidden is None or 1 <= integer(self.hidden) <= 16_384),
            "conv 'nature' or 'small'": self.conv in CONV_CHANNELS,
            "buffer_size is an integer >= 1": integer(self.buffer_size) >= 1,
            "1 <= batch_size <= 65,536": 1 <= integer(self.batch_size) <= 65_536,
            "1 <= n_step <= 1,000": 1 <= integer(self.n_step) <= 1_000,
            "0 <= per_alpha <= 10": 0 <= number(self.per_alpha) <= 10,
            "0 <= per_beta0 <= 1": 0.0 <= number(self.per_beta0) <= 1.0,
            "0 < per_eps <= 1": 0 < number(self.per_eps) <= 1,
            "0 < lr <= 1": 0 < number(self.lr) <= 1,
            "lr_end is None or 0 <= lr_end <= 1": (
                self.lr_end is None or 0 <= number(self.lr_end) <= 1),
            "0 < adam_eps <= 1": 0 < number(self.adam_eps) <= 1,
            "0 <= gamma <= 1": 0.0 <= number(self.gamma) <= 1.0,
            "0 <= grad_clip <= 10^6": 0 <= number(self.grad_clip) <= 1e6,
            "0 <= learning_starts": integer(self.learning_starts) >= 0,
            "1 <= train_freq": integer(self.train_freq) >= 1,
            "1 <= gradient_steps <= 1,000": 1 <= integer(self.gradient_steps) <= 1_000,
            "1 <= target_update": integer(self.target_update) >= 1,
            "0 < tau <= 1": 0.0 < number(self.tau) <= 1.0,
            "0 <= eps_start <= 1": 0 <= number(self.eps_start) <= 1,
            "0 <= eps_end <= 1": 0 <= number(self.eps_end) <= 1,
            "0 <= eps_fraction <= 1": 0.0 <= number(self.eps_fraction) <= 1.0,
            "0 <= eval_every": integer(self.eval_every) >= 0,
            "1 <= eval_episodes <= 100,000": 1 <= integer(self.eval_episodes) <= 100_000,
            "0 <= checkpoint_every": integer(self.checkpoint_every) >= 0,
            "0 <= log_every": integer(self.log_every) >= 0,
        }
        refuse_failed("DQNConfig", checks)

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
