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


def test_continuous_actions_in_any_memory_layout_reach_the_right_worlds():
    """The action kernel is called through compiled_for (typed for C-order rows): a transposed
    (Fortran-order) or strided batch of actions must be read as the same rows."""
    import gymnasium as gym

    import lanesim  # noqa: F401

    steer = np.array([0.0, 1.0, -0.5, 0.25])
    accel = np.array([0.5, -1.0, 0.2, 0.0])
    rows = np.stack([steer, accel], axis=1)
    layouts = {"C": rows, "F": np.asfortranarray(rows),
               "transposed": np.vstack([steer, accel]).T,
               "strided": np.stack([steer, np.zeros(4), accel], axis=1)[:, ::2]}
    for env_id in ("lanesim/Highway-v0", "lanesim/Intersection-v0"):
        commands = {}
        for name, actions in layouts.items():
            venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point",
                                action="continuous")
            venv.reset(seed=0)
            venv.step(actions)
            commands[name] = venv.unwrapped.core.world.command.copy()
            venv.close()
        for name in layouts:
            np.testing.assert_array_equal(commands[name], commands["C"], err_msg=name)
        assert np.abs(commands["C"][:, 1]).sum() > 0  # world 1's steering reached it
