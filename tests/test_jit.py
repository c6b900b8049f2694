"""jit.compiled_for: a kernel's compiled function, called without numba's type dispatch."""

import numpy as np

from lanesim.sim.jit import compiled_for
from lanesim.sim.rng import WorldRandom, stream_base, stream_uniform


def test_compiled_for_computes_what_the_dispatcher_computes():
    rng = WorldRandom(2)
    rng.reseed(np.ones(2, dtype=bool), np.array([4, 5]))
    base = stream_base(rng.seed[1], rng.counter[1])
    direct = compiled_for(stream_uniform, base, 3)
    assert direct is not stream_uniform
    values = [direct(base, i) for i in range(4)]
    assert values == [stream_uniform(base, i) for i in range(4)]
    assert len(set(values)) == 4 and all(0.0 <= v < 1.0 for v in values)
