"""TorchRL drives lanesim through its own Gymnasium adapters (torchrl is in the test extra)."""

import gymnasium as gym
import numpy as np
import torch
import torchrl.envs as torchrl_envs  # in the test extra: pip install -e ".[test]"
from gymnasium.vector import AutoresetMode

import lanesim  # noqa: F401

ENV = "lanesim/Highway-v0"


def test_gym_env_makes_a_lanesim_id():
    # GymEnv first passes frameskip= and retries without it on an "unexpected keyword" TypeError.
    torch.manual_seed(0)  # rollout's random actions
    env = torchrl_envs.GymEnv(ENV, vehicles=5)
    env.set_seed(0)
    td = env.rollout(5, break_when_any_done=False)
    assert td["observation"].shape == (5, 9, 8)
    assert td["next", "reward"].shape == (5, 1)
    firsts = []
    for seed in (0, 0, 1):
        again = torchrl_envs.GymEnv(ENV, vehicles=5)
        again.set_seed(seed)
        firsts.append(again.reset()["observation"].numpy())
    np.testing.assert_array_equal(firsts[0], firsts[1])  # same seed, same world
    assert not np.array_equal(firsts[0], firsts[2])


def test_gym_wrapper_takes_the_native_vector_env_and_resets_ended_worlds():
    # TorchRL asks for SAME_STEP or DISABLED autoreset and prefers DISABLED: it resets the ended
    # worlds itself, through reset(options={"reset_mask": ...}).
    vec = gym.make_vec(ENV, num_envs=2, vehicles=0, action="meta", max_episode_steps=5,
                       autoreset_mode=AutoresetMode.DISABLED)
    env = torchrl_envs.GymWrapper(vec)
    assert tuple(env.batch_size) == (2,)
    env.set_seed(0)
    torch.manual_seed(0)
    td = env.rollout(12, break_when_any_done=False)
    truncated = td["next", "truncated"].squeeze(-1).numpy()
    assert truncated.shape == (2, 12)  # (worlds, decisions)
    expected = np.zeros((2, 12), dtype=bool)
    expected[:, [4, 9]] = True  # every 5th decision, in each world
    np.testing.assert_array_equal(truncated, expected)
    assert not td["next", "terminated"].any()
