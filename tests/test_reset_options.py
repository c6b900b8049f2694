"""Options are frozen once an env is made; per-episode changes go through reset(options=...)."""

import copy
import dataclasses
import json
import pickle

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401
from lanesim.envs.options import RESET_OPTIONS, OptionError, UnknownOptionError, make_options

ENV = "lanesim/Highway-v0"
# Per-episode values that differ from highway.toml's in every respect reset() can change.
CHANGES = {
    "vehicles": 6,
    "traffic_speed": [15.0, 18.0],
    "traffic_politeness": [0.2, 0.3],
    "traffic_brake_rate": 0.05,
    "spawn_spacing": 20.0,
    "recycle_distance": 150.0,
    "ego_start": 300.0,
    "ego_lanes": [2],
    "ego_speed": [10.0, 11.0],
    "closures": [{"lane": 0, "start": 350.0}],
    "stalled": [{"lane": 1, "s": 400.0}],
    "rewards": {"collision": -3.0},
    "reward_speed": 20.0,
    "duration": 2.0,
}


def episode(env, seed=None, options=None, action=7):
    """Observations, rewards and infos of one episode with a fixed action."""
    obs, info = env.reset(seed=seed, options=options)
    out = [(obs, 0.0, info)]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, info))
        done = terminated or truncated
    return out


def assert_same_episode(a, b):
    assert len(a) == len(b)
    for (o1, r1, i1), (o2, r2, i2) in zip(a, b, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and i1 == i2


# A road network's start lanes and goals change at reset too; tests/test_netoptions.py covers
# them (Highway-v0 has one road, which refuses them).
NETWORK_RESET = {"ego_start_lanes", "goals", "goal_distance"}


def test_every_reset_option_is_covered_here():
    assert set(CHANGES) | NETWORK_RESET == set(RESET_OPTIONS)


# ---------------------------------------------------------------- immutability
def test_changing_an_option_after_make_is_refused():
    env = gym.make(ENV)
    options = env.unwrapped.options
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.duration = 2.0
    with pytest.raises(TypeError, match="read-only"):
        options.rewards["collision"] = 0.0
    with pytest.raises(TypeError, match="read-only"):
        options.road[0]["length"] = 10.0
    with pytest.raises(AttributeError):
        options.traffic_speed.append(40.0)  # a tuple now
    assert options.duration == 40.0 and options.rewards["collision"] == -10.0


def test_frozen_options_copy_pickle_and_serialize_like_the_originals():
    options = make_options("roadworks")
    assert copy.deepcopy(options) == options
    assert pickle.loads(pickle.dumps(options)) == options
    plain = json.loads(json.dumps(dataclasses.asdict(options)))
    assert make_options(None, **plain) == options  # a saved run's options make the same env


# ---------------------------------------------------------------- reset(options=...)
def test_reset_options_make_the_episode_a_fresh_env_with_them_would():
    changed = episode(gym.make(ENV), seed=5, options=CHANGES)
    fresh = episode(gym.make(ENV, **CHANGES), seed=5)
    assert_same_episode(changed, fresh)
    assert len(changed) == 1 + 10  # duration 2 s at 5 decisions per second


def test_reset_options_persist_until_changed_again():
    env = gym.make(ENV, action="meta", vehicles=0)
    assert len(episode(env, seed=0, options={"duration": 1.0}, action=1)) == 1 + 5
    assert len(episode(env, action=1)) == 1 + 5  # the next episode keeps them
    assert env.unwrapped.options.duration == 1.0
    assert len(episode(env, options={"duration": 2.0}, action=1)) == 1 + 10


def test_reset_rewards_change_the_named_terms_and_keep_the_others():
    env = gym.make(ENV, rewards={"lane_change": -0.5})
    env.reset(seed=0, options={"rewards": {"collision": -3.0}})
    rewards = env.unwrapped.options.rewards
    assert rewards["collision"] == -3.0 and rewards["lane_change"] == -0.5
    _, reward, *_, info = env.step(7)
    assert info["rewards"]["collision"] == 0.0
    assert reward == pytest.approx(sum(info["rewards"].values()))


@pytest.mark.parametrize("key, value", [("observation", "pixels"), ("lanes", 3),
                                        ("frame_stack", 2), ("action", "meta")])
def test_reset_option_that_would_change_a_space_is_refused(key, value):
    env = gym.make(ENV)
    with pytest.raises(OptionError, match=rf"'{key}' cannot change at reset: it changes the "
                                          r"observation or action space.*gym.make"):
        env.reset(seed=0, options={key: value})


def test_reset_option_fixed_at_make_is_refused_with_the_accepted_list():
    with pytest.raises(OptionError, match=r"'sim_hz' cannot change at reset.*accepts: vehicles"):
        gym.make(ENV).reset(options={"sim_hz": 30.0})


def test_unknown_reset_option_suggests_the_closest_name():
    with pytest.raises(UnknownOptionError, match=r"'vehicels'.*did you mean 'vehicles'"):
        gym.make(ENV).reset(options={"vehicels": 3})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"vehicles": -1}, r"'vehicles' must be an integer"),
        ({"traffic_speed": [30.0, 20.0]}, r"'traffic_speed' must have low <= high"),
        ({"closures": [{"lane": 9, "start": 10.0}]}, r"closures'\[0\].lane is 9"),
        ({"rewards": {"colision": -1.0}}, r"unknown reward term 'colision'"),
    ],
)
def test_bad_reset_option_value_is_refused_as_make_refuses_it(changes, message):
    env = gym.make(ENV)
    with pytest.raises(OptionError, match=message):
        make_options("highway", **changes)
    with pytest.raises(OptionError, match=message):
        env.reset(options=changes)
    assert env.unwrapped.options == make_options("highway")  # nothing half-applied


def test_reset_options_keep_the_spaces():
    env = gym.make(ENV, observation="occupancy")
    space = env.observation_space
    obs, _ = env.reset(seed=0, options={"vehicles": 0, "closures": [{"lane": 3, "start": 250.0}]})
    assert env.observation_space == space and obs in space


def test_viewer_draws_the_worlds_made_by_reset_options():
    env = gym.make(ENV, render_mode="rgb_array")
    env.reset(seed=0)
    env.render()
    env.reset(seed=0, options={"vehicles": 0})
    frame = env.render()
    assert frame.shape == (150, 600, 3)
    assert env.unwrapped.viewer.world is env.unwrapped.world
