"""Counter-based random numbers: one independent, reproducible stream per world, drawn for all
worlds in one vectorized call.

A world's numbers depend only on its own seed and on how many draws it has made since that seed
was set, never on which other worlds share the batch. That is what lets sub-environment ``i`` of a
vector env reproduce a single environment reset with the same seed exactly, without a Python loop
over worlds. The generator is SplitMix64's finalizer applied to ``(seed, counter, index)``.
"""

from __future__ import annotations

import math

import numpy as np

from lanesim.sim.jit import kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


class WorldRandom:
    """Per-world random streams for a batch of ``B`` worlds.

    Args:
        n_worlds: B.
    """

    def __init__(self, n_worlds: int) -> None:
        self.seed = np.zeros(n_worlds, dtype=np.uint64)
        self.counter = np.zeros(n_worlds, dtype=np.uint64)

    def reseed(self, worlds: np.ndarray, seeds: np.ndarray) -> None:
        """Restart the streams of ``worlds`` (bool mask or indices) from ``seeds`` (uint64-able)."""
        seeds = np.asarray(seeds, dtype=np.uint64)
        if (isinstance(worlds, np.ndarray) and worlds.dtype == np.bool_
                and worlds.shape == self.seed.shape and seeds.shape == (int(worlds.sum()),)):
            # The common case, compiled: the same numbers as the numpy lines below.
            _reseed_rows(self.seed, self.counter, worlds, seeds)
            return
        with np.errstate(over="ignore"):
            self.seed[worlds] = _mix(seeds * _GOLDEN + _GOLDEN)
        self.counter[worlds] = 0

    def uniform(self, shape: tuple[int, ...], worlds: np.ndarray | None = None) -> np.ndarray:
        """Uniform floats in [0, 1) shaped ``(W, *shape)`` for the selected worlds (default all).

        Each call advances the selected worlds' counters by one.
        """
        n = math.prod(int(k) for k in shape)
        if worlds is None or (isinstance(worlds, np.ndarray) and worlds.dtype == np.bool_):
            # The common case, compiled: the same numbers as the numpy lines below.
            mask = np.ones(len(self.seed), dtype=bool) if worlds is None else worlds
            out = np.empty((np.count_nonzero(mask), n))
            _uniform_rows(self.seed, self.counter, mask, out)
            return out.reshape((len(out), *shape))
        sel = worlds
        seed = self.seed[sel]
        ctr = self.counter[sel]
        with np.errstate(over="ignore"):
            base = _mix(seed ^ (ctr * _GOLDEN + _M1))
            z = _mix(base[:, None] + np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)
            self.counter[sel] = ctr + np.uint64(1)
        # The top 53 bits give an exactly representable double in [0, 1).
        return ((z >> _S11).astype(np.float64) * (1.0 / 2**53)).reshape((len(seed), *shape))

    def normal(self, shape: tuple[int, ...], worlds: np.ndarray | None = None) -> np.ndarray:
        """Standard normal floats shaped ``(W, *shape)`` (Box–Muller on two uniform draws)."""
        u1 = self.uniform(shape, worlds)
        u2 = self.uniform(shape, worlds)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)


# ---------------------------------------------------------------------- the same stream, compiled
# For kernels that draw inside a step: ``stream_base`` is what one call of
# :meth:`WorldRandom.uniform` computes from a world's seed and counter, and ``stream_uniform``
# its ``i``-th value (row-major over the call's shape), so a kernel reproduces exactly the
# numbers that call would have returned.
_mix_scalar = kernel(_mix)  # the same finalizer on one uint64, compiled


@kernel
def stream_base(seed, counter):
    """The base of one draw by a world with ``seed`` and ``counter`` (both ``uint64``)."""
    return _mix_scalar(seed ^ (counter * _GOLDEN + _M1))


@kernel
def stream_uniform(base, i):
    """Value ``i`` (0-based) of the draw with ``base``: a float in [0, 1)."""
    z = _mix_scalar(base + np.uint64(i + 1) * _GOLDEN)
    return float(z >> _S11) * (1.0 / 2.0**53)


@kernel
def _uniform_rows(seed, counter, worlds, out):
    """:meth:`WorldRandom.uniform` for the worlds where ``worlds`` (bool): one row of ``out`` per
    selected world, in order; advances their counters."""
    row = 0
    for b in range(seed.shape[0]):
        if worlds[b]:
            base = stream_base(seed[b], counter[b])
            for i in range(out.shape[1]):
                out[row, i] = stream_uniform(base, i)
            counter[b] += np.uint64(1)
            row += 1


@kernel
def _reseed_rows(seed, counter, worlds, seeds):
    """:meth:`WorldRandom.reseed` for the worlds where ``worlds`` (bool), ``seeds`` one per
    selected world, in order."""
    row = 0
    for b in range(seed.shape[0]):
        if worlds[b]:
            seed[b] = _mix_scalar(seeds[row] * _GOLDEN + _GOLDEN)
            counter[b] = np.uint64(0)
            row += 1
