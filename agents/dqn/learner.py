"""The DQN update: (double) n-step TD target, importance-weighted Huber loss, one step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def td_target(
    returns: torch.Tensor,
    next_obs: torch.Tensor,
    discounts: torch.Tensor,
    online: nn.Module,
    target: nn.Module,
    double: bool = True,
) -> torch.Tensor:
    """y = R + discount * Q_target(s', a*), shape (B,).

    ``returns`` is the n-step discounted reward sum and ``discounts`` is gamma^m for
    the m steps actually taken, already 0 for terminated episodes (the done mask).
    Double DQN picks a* with the online net and evaluates it with the target net,
    which removes most of the max operator's overestimation; plain DQN takes the
    target net's own max.
    """
    with torch.no_grad():
        next_q = target(next_obs)
        chooser = online(next_obs) if double else next_q
        best = chooser.argmax(dim=1, keepdim=True)
        return returns + discounts * next_q.gather(1, best).squeeze(1)


def td_loss(
    q_values: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Importance-weighted Huber loss.

    q_values (B, n_actions), actions (B,) int64, targets and weights (B,).
    Returns (scalar loss, Q(s, a) (B,), new priorities |delta| (B,), detached).
    """
    q_taken = q_values.gather(1, actions.unsqueeze(1)).squeeze(1)
    per_sample = F.huber_loss(q_taken, targets, reduction="none", delta=1.0)
    loss = (weights * per_sample).mean()
    return loss, q_taken, (targets - q_taken).abs().detach()


@dataclass
class UpdateStats:
    # Tensors, not floats: calling .item() every step would stall a GPU pipeline.
    loss: torch.Tensor  # scalar, detached
    mean_q: torch.Tensor  # scalar, mean Q(s, a) over the batch
    priorities: torch.Tensor  # (B,) |TD error| for prioritized replay


def update(
    online: nn.Module,
    target: nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    actions: torch.Tensor,
    returns: torch.Tensor,
    next_obs: torch.Tensor,
    discounts: torch.Tensor,
    weights: torch.Tensor,
    double: bool = True,
    grad_clip: float = 0.0,
) -> UpdateStats:
    """One gradient step on a batch; obs/next_obs (B, *obs_shape), the rest (B,)."""
    targets = td_target(returns, next_obs, discounts, online, target, double)
    loss, q_taken, priorities = td_loss(online(obs), actions, targets, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(online.parameters(), grad_clip)
    optimizer.step()
    return UpdateStats(loss.detach(), q_taken.detach().mean(), priorities)


@torch.no_grad()
def update_target(online: nn.Module, target: nn.Module, tau: float) -> None:
    """Polyak update target <- tau * online + (1 - tau) * target; tau = 1 copies."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        if tau == 1.0:
            t.copy_(o)
        else:
            t.lerp_(o, tau)
