"""SB3 models saved by `lanesim train`: loading never runs code from the file, and a trained
model drives through the agent protocol."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import cloudpickle
import gymnasium as gym
import pytest
import torch
from stable_baselines3 import PPO

import lanesim  # noqa: F401  (registers the lanesim ids)
from agents.dqn.checkpoint import CheckpointError
from agents.sb3 import SB3Policy, load_model

ENV = {"observation": "kinematics", "action": "meta", "vehicles": 5, "duration": 2}


class _Payload:
    """Unpickling this creates ``marker``: what a crafted model file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def saved_ppo(tmp_path: Path) -> Path:
    env = gym.make("lanesim/Highway-v0", **ENV)
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0)
    model.learn(16)
    model.save(tmp_path / "latest.zip")
    env.close()
    return tmp_path / "latest.zip"


def _craft(path: Path, key: str, marker: Path) -> None:
    """Put a code-running pickle into entry ``key`` of the model's data, as SB3 stores one."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    blob = base64.b64encode(cloudpickle.dumps(_Payload(marker))).decode()
    data[key] = {":type:": "<class 'object'>", ":serialized:": blob}
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def test_sb3_itself_would_run_the_crafted_file(saved_ppo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _craft(saved_ppo, "observation_space", marker)
    with pytest.raises(Exception):  # noqa: B017 - SB3 fails later, after unpickling
        PPO.load(saved_ppo)
    assert marker.exists()  # the threat the loader below must not open


@pytest.mark.parametrize("key", ["observation_space", "lr_schedule", "policy_class"])
def test_a_pickled_entry_of_a_known_name_is_replaced_not_unpickled(saved_ppo, tmp_path, key):
    marker = tmp_path / "ran"
    _craft(saved_ppo, key, marker)
    env = gym.make("lanesim/Highway-v0", **ENV)
    model = load_model("sb3-ppo", saved_ppo, env, "kinematics", device="cpu")
    env.close()
    assert not marker.exists()
    assert model.num_timesteps == 16


def test_a_pickled_entry_of_another_name_is_refused(saved_ppo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _craft(saved_ppo, "surprise", marker)
    env = gym.make("lanesim/Highway-v0", **ENV)
    with pytest.raises(CheckpointError, match="refusing to unpickle its entry 'surprise'"):
        load_model("sb3-ppo", saved_ppo, env, "kinematics")
    env.close()
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04" + bytes(100)])
def test_a_damaged_model_file_is_a_checkpoint_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "latest.zip"
    path.write_bytes(content)
    env = gym.make("lanesim/Highway-v0", **ENV)
    with pytest.raises(CheckpointError, match="latest.zip: not a Stable-Baselines3 model"):
        load_model("sb3-ppo", path, env, "kinematics")
    env.close()


def test_a_loaded_model_acts_as_saved(saved_ppo: Path) -> None:
    policy = SB3Policy.load("sb3-ppo", saved_ppo, "lanesim/Highway-v0", ENV)
    reference = PPO.load(saved_ppo, device="cpu")
    env = gym.make("lanesim/Highway-v0", **ENV)
    obs, _ = env.reset(seed=3)
    policy.reset(env)
    for _ in range(5):
        expected, _ = reference.predict(obs, deterministic=True)
        action = policy.act(obs)
        assert action == int(expected)
        obs, *_ = env.step(action)
    env.close()
