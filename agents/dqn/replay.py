"""Replay memory: each frame stored once, stacks and n-step returns rebuilt at sample time.

Layout. Every array is shaped (rows, num_envs, ...). Column ``e`` is env ``e``'s own
time-ordered stream and row ``r`` holds, for each env, the observation seen at one
vector step and what followed it (action, reward, terminated, truncated). With a
Gymnasium next-step-autoreset VectorEnv a stream reads

    o0 a0 r0 | o1 a1 r1 | ... | oT (final obs, then the autoreset step) | o0' ...

so the final observation of an episode, which a truncated episode must bootstrap
from, is simply the row after its last transition. That row's own "transition" is
the autoreset step (action ignored, reward 0) and is never sampled.

Frame stacks. For uint8 (K, H, W) observations only the newest frame ``obs[-1]`` is
kept and the K-stack is gathered from the K latest rows of the same column. Frames
from before an episode's first observation are replaced by that first frame
(repeat-first padding, as gymnasium's ``FrameStackObservation(padding_type="reset")``
does), so a stack never mixes two episodes. 100,000 transitions of 84x84 frames cost
~0.71 GB instead of ~5.6 GB for storing obs and next_obs 4-stacks.

Sampleable rows. A row can start a transition once its n-step lookahead is written
(n rows later) and until the circular write cursor overwrites a frame of its stack;
rows holding a final observation never can. ``valid`` tracks exactly this.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lanesim.sim.memory import check_memory


@dataclass
class Batch:
    """A sampled batch; B = batch size."""

    obs: np.ndarray  # (B, *obs_shape); frame stacks (B, K, H, W) are channels-last in memory
    actions: np.ndarray  # (B,) int64
    returns: np.ndarray  # (B,) float32, sum_i gamma^i r_i over the m <= n steps taken
    next_obs: np.ndarray  # (B, *obs_shape), observation m steps later (to bootstrap from)
    discounts: np.ndarray  # (B,) float32, gamma^m, or 0 when the episode terminated
    weights: np.ndarray  # (B,) float32 importance weights (all 1 for uniform replay)
    indices: np.ndarray  # (B,) int64 slot ids to pass back to update_priorities


class SumTree:
    """Sum tree over ``size`` leaves (padded to a power of two), batched in numpy.

    Node 1 is the root, node i has children 2i and 2i+1, leaves are nodes
    [L, 2L). Both operations loop over the log2(L) levels only, never over items.
    """

    def __init__(self, size: int) -> None:
        self.num_leaves = 1 << max(0, (size - 1).bit_length())
        self.nodes = np.zeros(2 * self.num_leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, leaves: np.ndarray) -> np.ndarray:
        return self.nodes[np.asarray(leaves) + self.num_leaves]

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        """Set leaf values (both (N,)) and refresh their ancestors."""
        pos = np.asarray(leaves, dtype=np.int64) + self.num_leaves
        if pos.size == 0:
            return
        self.nodes[pos] = values
        # Parents are recomputed from their children rather than incremented, so
        # duplicate leaves in one call cannot be double counted and no error drifts in.
        while pos[0] > 1:
            pos = np.unique(pos // 2)
            self.nodes[pos] = self.nodes[2 * pos] + self.nodes[2 * pos + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each prefix-sum value in [0, total), the leaf whose interval contains it."""
        pos = np.ones(len(mass), dtype=np.int64)
        mass = np.array(mass, dtype=np.float64)
        while pos[0] < self.num_leaves:
            left = self.nodes[2 * pos]
            # Never step into an empty subtree, even when rounding says mass >= left.
            go_right = (mass >= left) & (self.nodes[2 * pos + 1] > 0)
            mass = np.where(go_right, mass - left, np.minimum(mass, left))
            pos = 2 * pos + go_right
        return pos - self.num_leaves


class ReplayBuffer:
    """Circular per-env replay with frame-once storage, n-step returns and optional PER.

    Call :meth:`add` once per vector step with the observations the actions were
    taken in (num_envs, *obs_shape) and the step's actions, rewards, terminated and
    truncated (num_envs,). The calls must follow one continuous stream that starts
    right after ``reset()``. ``capacity`` counts transitions over all envs.

    With ``stacked_frames``, a ``(K * C, H, W)`` observation is a stack of ``K`` frames of
    ``frame_channels`` ``C`` channels each, newest last (grey stacks: ``C = 1``; colour
    camera stacks: ``C = 3``), and each frame is stored once.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        obs_dtype: np.dtype | type,
        capacity: int,
        num_envs: int = 1,
        *,
        n_step: int = 1,
        gamma: float = 0.99,
        stacked_frames: bool = True,
        frame_channels: int = 1,
        prioritized: bool = False,
        alpha: float = 0.6,
        eps: float = 1e-6,
        seed: int | None = None,
    ) -> None:
        self.obs_shape = tuple(obs_shape)
        self.num_envs = num_envs
        self.rows = -(-capacity // num_envs)
        c = frame_channels
        if not isinstance(c, int) or c < 1:
            raise ValueError(f"frame_channels must be an integer >= 1, got {c!r}")
        is_stack = stacked_frames and len(self.obs_shape) == 3 and self.obs_shape[0] > c
        if is_stack and self.obs_shape[0] % c:
            raise ValueError(f"observations of {self.obs_shape[0]} channels are no stack of "
                             f"{c}-channel frames")
        self.channels = c if is_stack else 1
        self.stack = self.obs_shape[0] // c if is_stack else 1
        # A grey frame is stored (H, W), a colour one (C, H, W): the oldest layout stays.
        if not is_stack:
            frame_shape = self.obs_shape
        else:
            frame_shape = self.obs_shape[1:] if c == 1 else (c, *self.obs_shape[1:])
        if self.rows <= n_step + self.stack:
            raise ValueError(
                f"capacity {capacity} is too small for {num_envs} envs, n_step={n_step} "
                f"and {self.stack}-frame stacks"
            )
        frame_bytes = math.prod(frame_shape) * np.dtype(obs_dtype).itemsize
        # Per slot: the frame, an int64 action, a float32 reward and five bool flags.
        nbytes = self.rows * num_envs * (frame_bytes + 8 + 4 + 5)
        if prioritized:
            nbytes += 16 * (self.rows * num_envs)  # the sum tree: up to 2x leaves, float64
        check_memory(
            nbytes,
            f"a replay memory of {capacity:,} transitions of {np.dtype(obs_dtype)} "
            f"{self.obs_shape} observations",
            "lower buffer_size",
        )
        self.n_step = n_step
        self.gamma = gamma
        self.prioritized = prioritized
        self.alpha = alpha
        self.eps = eps
        self.rng = np.random.default_rng(seed)

        shape = (self.rows, num_envs)
        self.frames = np.zeros(shape + frame_shape, dtype=obs_dtype)
        self.actions = np.zeros(shape, dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.ended = np.zeros(shape, dtype=bool)  # terminated or truncated
        self.first = np.zeros(shape, dtype=bool)  # row holds an episode's first observation
        self.final = np.zeros(shape, dtype=bool)  # row holds an episode's final observation
        self.valid = np.zeros(shape, dtype=bool)  # row can start a sampled transition
        self.t = 0  # rows written so far; the physical row is t % rows
        self._next_is_final = np.zeros(num_envs, dtype=bool)
        self._next_is_first = np.ones(num_envs, dtype=bool)  # the first add follows reset()
        self._warned_padding = False
        if prioritized:
            self.tree = SumTree(self.rows * num_envs)
            self.max_priority = 1.0

    def __len__(self) -> int:
        """Number of transitions that can currently be sampled."""
        return int(np.count_nonzero(self.valid))

    @property
    def nbytes(self) -> int:
        arrays = [self.frames, self.actions, self.rewards, self.terminated, self.ended]
        arrays += [self.first, self.final, self.valid]
        if self.prioritized:
            arrays.append(self.tree.nodes)
        return sum(a.nbytes for a in arrays)

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Append one vector step: obs (num_envs, *obs_shape), the rest (num_envs,)."""
        r = self.t % self.rows
        # Writing row r breaks the stacks of the stack-1 rows after it (they read row r
        # as history), and row r itself until its lookahead exists again.
        broken = (r + np.arange(self.stack)) % self.rows
        self.valid[broken] = False

        first = self._next_is_first
        if self.stack > 1:
            self.frames[r] = obs[:, -1] if self.channels == 1 else obs[:, -self.channels:]
            if not self._warned_padding and first.any():
                self._check_padding(obs[first])
        else:
            self.frames[r] = obs
        self.first[r] = first
        self.final[r] = self._next_is_final
        self.actions[r] = actions
        self.rewards[r] = rewards
        self.terminated[r] = terminated
        self.ended[r] = np.logical_or(terminated, truncated)

        # The row n steps back now has its whole lookahead (bootstrap frame included).
        ready = None
        if self.t >= self.n_step:
            ready = (self.t - self.n_step) % self.rows
            self.valid[ready] = ~self.final[ready]

        if self.prioritized:
            self._refresh_priorities(broken, ready)
        self._next_is_first = self.final[r].copy()
        self._next_is_final = self.ended[r].copy()
        self.t += 1

    def _check_padding(self, first_obs: np.ndarray) -> None:
        # The rebuilt first stack repeats the first frame; warn if the env pads otherwise
        # (e.g. zeros), since the learner would then see different stacks than the policy.
        c = self.channels
        frames = first_obs.reshape(len(first_obs), self.stack, c, *first_obs.shape[2:])
        if not (frames[:, :-1] == frames[:, -1:]).all():
            warnings.warn(
                "episode-start observations are not repeat-first padded; the replay rebuilds "
                "them by repeating the first frame",
                stacklevel=3,
            )
            self._warned_padding = True

    def _refresh_priorities(self, broken: np.ndarray, ready: int | None) -> None:
        envs = np.arange(self.num_envs)
        leaves = [(broken[:, None] * self.num_envs + envs).ravel()]
        values = [np.zeros(len(leaves[0]))]
        if ready is not None:
            leaves.append(ready * self.num_envs + envs)
            # New transitions get the highest priority seen so they are replayed soon.
            values.append(np.where(self.valid[ready], self.max_priority**self.alpha, 0.0))
        self.tree.set(np.concatenate(leaves), np.concatenate(values))

    def sample(self, batch_size: int, beta: float = 1.0) -> Batch:
        """Sample transitions; with PER, P(i) ~ p_i^alpha and weights (N P(i))^-beta / max."""
        if len(self) == 0:
            raise ValueError("the replay has no complete transition to sample yet")
        if self.prioritized:
            total = self.tree.total
            # Stratified: one draw per equal slice of the total mass, lower variance.
            mass = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
            indices = self.tree.find(mass)
            probs = self.tree.get(indices) / total
            # Normalising by the batch's largest weight makes N cancel out.
            weights = (probs.min() / probs) ** beta
        else:
            indices = self._uniform_indices(batch_size)
            weights = np.ones(batch_size)
        rows, envs = np.divmod(indices, self.num_envs)
        returns, steps, discounts = self._n_step(rows, envs)
        return Batch(
            obs=self._stack(rows, envs),
            actions=self.actions[rows, envs],
            returns=returns.astype(np.float32),
            next_obs=self._stack((rows + steps) % self.rows, envs),
            discounts=discounts.astype(np.float32),
            weights=weights.astype(np.float32),
            indices=indices,
        )

    def _uniform_indices(self, batch_size: int) -> np.ndarray:
        # Rejection sampling over the written rows: invalid slots are few (one final
        # row per episode plus n + stack rows at the cursor), so this rarely loops.
        high = min(self.t, self.rows) * self.num_envs
        valid = self.valid.reshape(-1)
        indices = self.rng.integers(0, high, size=batch_size)
        bad = ~valid[indices]
        while bad.any():
            indices[bad] = self.rng.integers(0, high, size=int(bad.sum()))
            bad = ~valid[indices]
        return indices

    def _n_step(self, rows: np.ndarray, envs: np.ndarray) -> tuple[np.ndarray, ...]:
        """n-step return, steps taken m (B,) and bootstrap discount gamma^m (0 if terminated)."""
        offsets = np.arange(self.n_step)
        look = (rows[:, None] + offsets) % self.rows
        ended = self.ended[look, envs[:, None]]
        # Step i counts only if no earlier step of the window ended the episode.
        alive = (np.cumsum(ended, axis=1) - ended) == 0
        steps = alive.sum(axis=1)
        returns = (alive * self.rewards[look, envs[:, None]] * self.gamma**offsets).sum(axis=1)
        terminal = (alive & self.terminated[look, envs[:, None]]).any(axis=1)
        # Truncation also stops the sum, but bootstraps from the stored final observation.
        discounts = np.where(terminal, 0.0, self.gamma**steps)
        return returns, steps, discounts

    def _stack(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Observations (B, *obs_shape) ending at the given rows."""
        if self.stack == 1:
            return self.frames[rows, envs]
        k = np.arange(self.stack)
        window = (rows[:, None] - k[::-1]) % self.rows  # (B, K), oldest first
        first = self.first[window, envs[:, None]]
        # Positions before the latest episode start in the window repeat that start.
        start = np.where(first, k, 0).max(axis=1)
        window = np.take_along_axis(window, np.maximum(k, start[:, None]), axis=1)
        # Gather into channels-last memory (B, H, W, K) and return it as a (B, K, H, W)
        # view: the conv trunk runs channels-last, and copying the stacks to it from here
        # costs a fraction of transposing them on the way into the network.
        c = self.channels
        hw = self.obs_shape[1:]
        out = np.empty((len(rows), *hw, self.stack * c), self.frames.dtype)
        for i in range(self.stack):
            frame = self.frames[window[:, i], envs]
            if c == 1:
                out[..., i] = frame
            else:  # (B, C, H, W) -> channels i C .. i C + C - 1
                out[..., i * c:(i + 1) * c] = frame.transpose(0, 2, 3, 1)
        return out.transpose(0, 3, 1, 2)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set priorities (|td_error| + eps)^alpha for sampled slots (both (B,))."""
        priorities = np.abs(td_errors).astype(np.float64) + self.eps
        # A slot overwritten since it was sampled must stay at priority 0.
        keep = self.valid.reshape(-1)[indices]
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.set(indices[keep], priorities[keep] ** self.alpha)
