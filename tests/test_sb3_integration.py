"""Stable-Baselines3 trains on lanesim ids as they are: the example script, for a short while."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import sb3_train  # noqa: E402


def test_sb3_dqn_cnn_policy_trains_on_pixels():
    torch.set_num_threads(1)
    model = sb3_train.train_dqn(300, vehicles=10, duration=10)
    assert model.num_timesteps >= 300
    obs = model.observation_space.sample()
    action, _ = model.predict(obs, deterministic=True)
    assert 0 <= int(action) < 15
    # The CnnPolicy saw channel-first uint8 frames directly: no transpose wrapper in between.
    assert model.observation_space.shape == (4, 84, 84)
    assert type(model.get_env()).__name__ == "DummyVecEnv"


def test_sb3_ppo_mlp_policy_trains_on_the_batched_env():
    torch.set_num_threads(1)
    model = sb3_train.train_ppo(512, num_envs=8, vehicles=10, duration=10, action="meta")
    assert model.num_timesteps >= 512
    assert type(model.get_env()).__name__ in ("SB3VecEnv", "VecMonitor")
    assert model.get_env().num_envs == 8
    actions, _ = model.predict(np.zeros((8, 9, 8), dtype=np.float32), deterministic=True)
    assert actions.shape == (8,)
