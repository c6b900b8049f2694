"""Q-network: a Nature-DQN conv trunk (or one of half its channels) for images or an MLP for
vectors, plus a dueling head."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

# Output channels of the three conv layers (kernels 8, 4, 3; strides 4, 2, 1) by trunk name.
# "nature" is the Nature DQN's; "small" has half the channels, a quarter of the arithmetic in
# the inner layers, for the 42x84 frames of issue #18's recipe (docs/time_to_driver.md).
CONV_CHANNELS: dict[str, tuple[int, int, int]] = {"nature": (32, 64, 64), "small": (16, 32, 32)}


def _conv_trunk(
    channels: int, hidden: int, obs_shape: Sequence[int], conv: str
) -> nn.Sequential:
    c1, c2, c3 = CONV_CHANNELS[conv]
    convs = nn.Sequential(
        nn.Conv2d(channels, c1, kernel_size=8, stride=4),
        nn.ReLU(),
        nn.Conv2d(c1, c2, kernel_size=4, stride=2),
        nn.ReLU(),
        nn.Conv2d(c2, c3, kernel_size=3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
    )
    # Size the dense layer from the real output so any image >= 36x36 works.
    with torch.no_grad():
        flat = convs(torch.zeros(1, *obs_shape)).shape[1]
    return nn.Sequential(*convs, nn.Linear(flat, hidden), nn.ReLU())


def _mlp_trunk(inputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )


class QNetwork(nn.Module):
    """Maps observations (B, *obs_shape) to action values (B, n_actions).

    3-D observations (C, H, W) go through the conv trunk (``conv``: a name in
    :data:`CONV_CHANNELS`); they are expected as uint8 and scaled to [0, 1] here so that
    replay and env->device copies stay 1 byte per pixel. 1-D/2-D observations are flattened
    into a two-layer MLP (256 units).

    The conv trunk keeps its weights and activations channels-last (NHWC): oneDNN's CPU
    convolutions then need no layout conversions, and a forward and backward pass at
    batch 32 takes about a quarter less time. The function is the same (floats may differ
    in the last bits: sums run in another order). The replay hands out frame stacks
    already channels-last in memory, so their conversion here is a plain copy.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        dueling: bool = True,
        hidden: int | None = None,
        conv: str = "nature",
    ) -> None:
        super().__init__()
        if conv not in CONV_CHANNELS:
            raise ValueError(f"unknown conv trunk {conv!r}; choose from {sorted(CONV_CHANNELS)}")
        self.obs_shape = tuple(obs_shape)
        self.n_actions = n_actions
        self.dueling = dueling
        self.is_image = len(self.obs_shape) == 3
        if self.is_image:
            hidden = hidden or 512
            self.trunk = _conv_trunk(self.obs_shape[0], hidden, self.obs_shape, conv)
        elif len(self.obs_shape) in (1, 2):
            hidden = hidden or 256
            self.trunk = _mlp_trunk(math.prod(self.obs_shape), hidden)
        else:
            raise ValueError(f"unsupported observation shape {self.obs_shape}")
        if dueling:
            self.value = nn.Linear(hidden, 1)
            self.advantage = nn.Linear(hidden, n_actions)
        else:
            self.head = nn.Linear(hidden, n_actions)
        if self.is_image:
            self.to(memory_format=torch.channels_last)  # conv weights; 2-D weights unchanged

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, *obs_shape) -> (B, n_actions)."""
        # Follow the parameters' dtype so a float64 copy of the net (gradient checks) works.
        dtype = next(self.parameters()).dtype
        if self.is_image:
            # One copy converts type and layout (never the caller's tensor: copy=True), and
            # dividing it in place allocates nothing more.
            x = obs.to(dtype, memory_format=torch.channels_last, copy=True).div_(255.0)
        else:
            x = obs.to(dtype)
        features = self.trunk(x)
        if not self.dueling:
            return self.head(features)
        advantage = self.advantage(features)
        # Subtracting the mean makes V and A identifiable without changing argmax Q.
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)
