"""lanesim on the gymnasium version Ray pins (1.2.2), and PPO training through Ray RLlib.

Run with ``scripts/ray-test.sh`` (its own venv ``.venv-ray``; the main venv has a newer
gymnasium and no Ray).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import re
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers.vector import DictInfoToList

import lanesim  # noqa: F401  (registers the ids)

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
RAY_GYMNASIUM = "1.2.2"  # what ray[rllib] pins, and the oldest gymnasium lanesim supports
SMALL = {"observation": "kinematics", "action": "meta", "vehicles": 10}


def test_gymnasium_is_the_version_ray_pins():
    assert gym.__version__ == RAY_GYMNASIUM, (
        f"this venv should hold gymnasium {RAY_GYMNASIUM} (Ray's pin), got {gym.__version__}"
    )
    pins = [
        r
        for r in importlib.metadata.requires("ray") or []
        if re.match(r"gymnasium\b", r) and 'extra == "rllib"' in r
    ]
    assert pins and f"=={RAY_GYMNASIUM}" in pins[0], (
        f"ray[rllib] now requires {pins}: update RAY_GYMNASIUM and lanesim's gymnasium floor"
    )


@pytest.mark.parametrize(
    "options",
    [SMALL, {}, {"observation": "pixels"}, {"observation": "occupancy", "action": "continuous"}],
    ids=["kinematics-meta", "defaults", "pixels", "occupancy-continuous"],
)
def test_check_env_passes(options):
    env = gym.make("lanesim/Highway-v0", **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert not [str(w.message) for w in caught if "gymnasium" in w.filename]


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync"])
def test_vector_rollout(mode):
    envs = gym.make_vec(
        "lanesim/Highway-v0", num_envs=2, vectorization_mode=mode, duration=2.0, **SMALL
    )
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    envs.action_space.seed(0)
    obs, info = envs.reset(seed=3)
    assert obs.shape == (2, 9, 8) and obs.dtype == np.float32
    assert envs.observation_space.contains(obs)
    episode_ended = False
    for _ in range(25):  # 2 s at 5 decisions/s: every world ends and restarts at least once
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert obs.shape == (2, 9, 8) and reward.shape == (2,)
        assert envs.observation_space.contains(obs)
        episode_ended |= bool((terminated | truncated).any())
        assert set(info["rewards"]) and "speed" in info
    assert episode_ended
    envs.close()


def test_dict_info_to_list_as_rllib_uses_it():
    envs = DictInfoToList(gym.make_vec("lanesim/Highway-v0", num_envs=2, **SMALL))
    _, infos = envs.reset(seed=0)
    assert isinstance(infos, list) and len(infos) == 2
    _, _, _, _, infos = envs.step(np.array([1, 3]))
    assert isinstance(infos[1]["rewards"], dict) and "speed" in infos[1]
    envs.close()


def _load_example():
    """examples/rllib_ppo.py as a module, pickled by value so Ray workers need not import it."""
    spec = importlib.util.spec_from_file_location("rllib_ppo", ROOT / "examples" / "rllib_ppo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    ray.cloudpickle.register_pickle_by_value(module)
    return module


def test_ppo_trains_on_local_ray(capsys):
    example = _load_example()
    # Two iterations of 2 runners × 2 worlds × 32 decisions on a local ray.init(num_cpus=2).
    argv = ["--iterations", "2", "--env-runners", "2", "--envs-per-runner", "2"]
    argv += ["--rollout", "32", "--duration", "4", "--num-cpus", "2"]
    result = example.main(argv)
    assert not ray.is_initialized()

    runners = result["env_runners"]
    assert runners["num_env_steps_sampled_lifetime"] >= 2 * 2 * 2 * 32
    assert runners["num_episodes_lifetime"] > 0  # 4 s episodes = 20 decisions
    assert math.isfinite(runners["episode_return_mean"])
    assert runners["episode_len_mean"] <= 20
    learner = result["learners"]["default_policy"]
    assert math.isfinite(learner["total_loss"])
    assert result["training_iteration"] == 2

    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("iter")]
    assert len(lines) == 2 and "mean episode return" in lines[-1]
