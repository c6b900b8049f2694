"""A trained DQN as a greedy policy in the agent protocol (:mod:`agents.base`), for the
viewer, the evaluation and the command line."""

from __future__ import annotations

import os

import numpy as np
import torch

from agents.dqn.checkpoint import CheckpointError, load_checkpoint
from agents.dqn.network import QNetwork


class DQNAgent:
    """Greedy policy over a Q-network; observations are single, unbatched. Its annotations
    are the Q-values of the last decision, which the viewer names by the environment's action
    type (meta actions, or the steering x acceleration grid)."""

    def __init__(self, q_net: QNetwork, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.q_net = q_net.to(self.device).eval()
        self._values: np.ndarray | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> DQNAgent:
        """Load the online network of a ``latest.pt`` / ``best.pt`` checkpoint; a checkpoint
        whose weights do not build its network raises :class:`CheckpointError`."""
        ckpt = load_checkpoint(path)
        spec = ckpt["network"]
        try:
            q_net = QNetwork(spec["obs_shape"], spec["n_actions"], spec["dueling"], spec["hidden"],
                             spec["conv"])
            q_net.load_state_dict(ckpt["online"])
        except (RuntimeError, TypeError, ValueError, AttributeError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(
                f"{path}: its weights do not fit its network ({reason})") from None
        return cls(q_net, device)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.q_net.obs_shape

    @property
    def n_actions(self) -> int:
        return self.q_net.n_actions

    @torch.no_grad()
    def action_values(self, obs: np.ndarray) -> np.ndarray:
        """Q(obs, a) for every action: obs (*obs_shape) -> (n_actions,) float32."""
        obs = np.asarray(obs)
        if obs.shape != self.obs_shape:
            raise ValueError(f"expected one observation of shape {self.obs_shape}, got {obs.shape}")
        q = self.q_net(torch.as_tensor(obs, device=self.device).unsqueeze(0))
        return q.squeeze(0).float().cpu().numpy()

    def reset(self, env) -> None:
        """A new episode starts (the network needs nothing of ``env``)."""
        self._values = None

    def act(self, obs: np.ndarray) -> int:
        """The greedy action for one observation (*obs_shape)."""
        self._values = self.action_values(obs)
        return int(np.argmax(self._values))

    def annotations(self) -> dict:
        """``values``: the Q-values of the last decision (none before the first)."""
        return {} if self._values is None else {"values": self._values}
