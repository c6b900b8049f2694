"""The registered environments against Gymnasium's and Stable-Baselines3's API checks."""

import subprocess
import sys
import warnings
import zipfile

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lanesim

IDS = list(lanesim.ENVIRONMENTS)
OBSERVATIONS = ["kinematics", "occupancy", "pixels"]
ACTIONS = ["discrete", "meta", "continuous"]


def make(env_id, **kw):
    if env_id == "lanesim/Drive-v0":
        kw.setdefault("scenario", "highway")
    return gym.make(env_id, **kw)


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env_passes_for_every_id(env_id):
    check_env(make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("observation", OBSERVATIONS)
@pytest.mark.parametrize("action", ACTIONS)
def test_gymnasium_check_env_passes_for_every_space(observation, action):
    check_env(make("lanesim/Highway-v0", observation=observation, action=action,
                   vehicles=10).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("observation", OBSERVATIONS)
def test_sb3_check_env_passes(observation):
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = make("lanesim/Highway-v0", observation=observation, vehicles=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any other SB3 warning is a defect
        # SB3 suggests flattening multi-dimensional vectors; its MlpPolicy does exactly that.
        warnings.filterwarnings("ignore", message=".*unconventional shape.*")
        if observation == "occupancy":
            # A (C, H, W) float feature map for MlpPolicy, which SB3 takes for a camera image.
            warnings.filterwarnings("ignore", message=r".*(is an image|for an image)")
        sb3_check(env, warn=True)


def test_pixel_observation_is_an_sb3_channel_first_image():
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

    space = make("lanesim/Highway-v0", observation="pixels").observation_space
    assert space.shape == (4, 84, 84) and space.dtype == np.uint8
    assert is_image_space(space) and is_image_space_channels_first(space)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("observation", OBSERVATIONS)
def test_observations_stay_in_space_over_an_episode(env_id, observation):
    env = make(env_id, observation=observation, duration=8)
    obs, _ = env.reset(seed=1)
    env.action_space.seed(1)
    done = False
    while not done:
        assert env.observation_space.contains(obs)
        if observation != "pixels":
            assert obs.dtype == np.float32
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        done = terminated or truncated
    assert env.observation_space.contains(obs)


def test_info_holds_the_documented_keys_with_units():
    env = make("lanesim/Highway-v0")
    _, info = env.reset(seed=0)
    _, reward, _, _, info = env.step(7)
    for key in ("rewards", "crashed", "offroad", "speed", "lane", "lane_offset", "heading_error",
                "distance", "headway", "time_to_collision"):
        assert key in info
    assert set(info["rewards"]) == {"lane_keeping", "progress", "collision", "offroad",
                                    "lane_change", "comfort"}
    assert reward == pytest.approx(sum(info["rewards"].values()))
    assert 10.0 < info["speed"] < 40.0
    assert 0.0 < info["distance"] < 40.0 / 5 + 1e-9 + 6.0
    assert isinstance(info["lane"], int)


def test_make_with_module_prefix_works_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('lanesim:lanesim/Highway-v0', vehicles=5)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(obs.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(9, 8)"


def test_make_vec_returns_the_native_batched_env():
    env = gym.make_vec("lanesim/Highway-v0", num_envs=3, vehicles=5)
    assert type(env).__name__ == "DrivingVectorEnv"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 9, 8)


def test_empty_road_with_zero_vehicles():
    env = make("lanesim/Highway-v0", vehicles=0, action="meta")
    obs, _ = env.reset(seed=0)
    assert obs[1:].sum() == 0.0  # nothing but the ego is observed
    for _ in range(20):
        obs, _, terminated, _, info = env.step(1)
        assert not terminated
    assert info["speed"] > 15.0


def test_keywords_override_scenario_file():
    env = make("lanesim/Highway-v0", lanes=3, vehicles=20, sim_hz=5, policy_hz=1, duration=30)
    opts = env.unwrapped.options
    assert (opts.lanes, opts.vehicles, opts.sim_hz, opts.policy_hz,
            opts.duration) == (3, 20, 5, 1, 30)
    assert env.unwrapped.world.N == 1 + 20
    # The scenario file's values stand where no keyword overrides them.
    assert make("lanesim/Highway-v0").unwrapped.options.vehicles == 50


def test_drive_accepts_a_users_scenario_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('description = "two lanes"\nlanes = 2\nvehicles = 3\n')
    env = gym.make("lanesim/Drive-v0", scenario=str(path))
    assert env.unwrapped.options.lanes == 2
    env.reset(seed=0)


def test_truncates_after_duration():
    env = make("lanesim/Highway-v0", vehicles=0, action="meta", duration=3, policy_hz=5)
    env.reset(seed=0)
    steps = 0
    truncated = terminated = False
    while not (truncated or terminated):
        _, _, terminated, truncated, _ = env.step(1)
        steps += 1
    assert truncated and not terminated
    assert steps == 15


def test_scenario_files_are_packaged_in_the_wheel(tmp_path):
    root = __import__("pathlib").Path(lanesim.__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("lanesim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for scenario in ("highway", "lane_keeping", "merge", "roadworks", "dense", "racetrack",
                     "twoway"):
        assert f"lanesim/scenarios/{scenario}.toml" in names
