"""The per-world random streams: numpy and compiled draws give the same numbers."""

import numpy as np
from numba import njit

from lanesim.sim.rng import WorldRandom, stream_base, stream_uniform


@njit(cache=False)
def _draw(seed, counter, n):
    """What a kernel sees: one draw of ``n`` values per world, from uint64 state."""
    out = np.empty((seed.shape[0], n))
    for b in range(seed.shape[0]):
        base = stream_base(seed[b], counter[b])
        for i in range(n):
            out[b, i] = stream_uniform(base, i)
    return out


def test_compiled_draws_equal_numpy_draws_at_any_counter():
    rng = WorldRandom(4)
    rng.reseed(np.ones(4, dtype=bool), np.array([0, 1, 2**40, 7]))
    rng.counter[:] = np.array([0, 3, 17, 2**33], dtype=np.uint64)
    seed, counter = rng.seed.copy(), rng.counter.copy()
    expected = rng.uniform((3, 2), np.arange(4))  # index arrays take the numpy path
    got = _draw(seed, counter, 6).reshape(4, 3, 2)
    np.testing.assert_array_equal(got, expected)
    assert np.all((got >= 0) & (got < 1))


def test_streams_depend_only_on_their_own_seed_and_counter():
    a, b = WorldRandom(3), WorldRandom(1)
    a.reseed(np.ones(3, dtype=bool), np.array([5, 6, 7]))
    b.reseed(np.ones(1, dtype=bool), np.array([6]))
    np.testing.assert_array_equal(a.uniform((5,))[1], b.uniform((5,))[0])
    # Advancing only world 0 leaves world 1's next draw unchanged.
    a.uniform((2,), np.array([True, False, False]))
    np.testing.assert_array_equal(a.uniform((5,))[1], b.uniform((5,))[0])


def test_masked_draws_equal_indexed_draws():
    """Bool masks (and None) take the compiled path, index arrays the numpy one."""
    a, b = WorldRandom(5), WorldRandom(5)
    for r in (a, b):
        r.reseed(np.ones(5, dtype=bool), np.arange(5))
    mask = np.array([True, False, True, True, False])
    np.testing.assert_array_equal(a.uniform((3, 2), mask), b.uniform((3, 2), np.flatnonzero(mask)))
    np.testing.assert_array_equal(a.counter, b.counter)
    np.testing.assert_array_equal(a.uniform((4,)), b.uniform((4,), np.arange(5)))


def test_masked_reseed_equals_indexed_reseed():
    """A bool mask reseeds in a compiled loop, index arrays through numpy: the same streams."""
    a, b = WorldRandom(5), WorldRandom(5)
    for r in (a, b):
        r.counter[:] = 9
    mask = np.array([False, True, True, False, True])
    seeds = np.array([0, 2**40 + 3, 11])
    a.reseed(mask, seeds)
    b.reseed(np.flatnonzero(mask), seeds)
    np.testing.assert_array_equal(a.seed, b.seed)
    np.testing.assert_array_equal(a.counter, b.counter)
    assert a.counter.tolist() == [9, 0, 0, 9, 0]
    assert len(set(a.seed[mask].tolist())) == 3
