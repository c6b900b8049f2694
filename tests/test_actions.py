"""Actions outside the action space raise; nothing is clipped or remapped."""

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401
from lanesim.envs.actions import ActionError


def env_with(action):
    env = gym.make("lanesim/Highway-v0", action=action, vehicles=0)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("bad", [15, -1, 2.0, True, "3", [1, 2]])
def test_discrete_action_outside_space_raises(bad):
    with pytest.raises(ActionError, match=r"integer in \[0, 14\]"):
        env_with("discrete").step(bad)


@pytest.mark.parametrize("bad", [5, -1, 1.5])
def test_meta_action_outside_space_raises(bad):
    with pytest.raises(ActionError, match=r"\[0, 4\]"):
        env_with("meta").step(bad)


@pytest.mark.parametrize("bad", [[1.5, 0.0], [0.0, -1.01], [np.nan, 0.0]])
def test_continuous_action_out_of_bounds_raises(bad):
    with pytest.raises(ActionError, match=r"\[-1, 1\]"):
        env_with("continuous").step(bad)


def test_continuous_action_with_wrong_shape_raises():
    with pytest.raises(ActionError, match=r"shape \(2,\)"):
        env_with("continuous").step([0.1, 0.2, 0.3])


def test_numpy_integer_and_float64_actions_are_accepted():
    env_with("discrete").step(np.int64(4))
    env_with("continuous").step(np.array([0.1, -0.2], dtype=np.float64))


@pytest.mark.parametrize("action", ["discrete", "meta"])
@pytest.mark.parametrize(
    "bad",
    [[1], np.array([1]), np.array([[1]]), np.array([1], dtype=object), np.array(True)],
    ids=["list", "array1", "array11", "object", "bool0d"],
)
def test_integer_action_wrapped_in_a_sequence_or_array_raises(action, bad):
    with pytest.raises(ActionError, match=r"must be an integer in \[0, \d+\]"):
        env_with(action).step(bad)


def test_zero_dimensional_integer_array_is_an_integer_action():
    env_with("discrete").step(np.array(4))
    env_with("meta").step(np.array(1, dtype=np.int32))


@pytest.mark.parametrize(
    "bad",
    [
        [True, False],
        [True, 0.5],
        np.array([True, False]),
        np.array([0.5, 0.5], dtype=object),
        ["0.5", "0.5"],
        [0.5 + 0j, 0.5],
    ],
    ids=["bools", "bool_and_float", "bool_array", "object", "strings", "complex"],
)
def test_continuous_action_that_is_not_real_numbers_raises(bad):
    with pytest.raises(ActionError, match=r"pair \[steer, accel\] of floats"):
        env_with("continuous").step(bad)


@pytest.mark.parametrize("bad", [[[0.5, 0.5]], np.zeros((1, 2)), np.zeros((2, 1))])
def test_continuous_action_with_a_batch_axis_raises(bad):
    with pytest.raises(ActionError, match=r"shape \(2,\)"):
        env_with("continuous").step(bad)


def test_integer_continuous_action_is_accepted():
    env_with("continuous").step([1, -1])


@pytest.mark.parametrize(
    ("action", "bad", "message"),
    [
        ("discrete", np.array([True, False]), r"2 integers \(shape \(2,\)\) in \[0, 14\]"),
        ("continuous", np.full((2, 2), 0.5, dtype=object), r"pair \[steer, accel\] of floats"),
        ("continuous", np.ones((2, 2), dtype=bool), r"pair \[steer, accel\] of floats"),
    ],
)
def test_vector_env_refuses_bool_and_object_batches(action, bad, message):
    env = gym.make_vec("lanesim/Highway-v0", num_envs=2, action=action, vehicles=0)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=message):
        env.step(bad)


def test_vector_env_of_one_takes_a_batch_of_one():
    env = gym.make_vec("lanesim/Highway-v0", num_envs=1, vehicles=0)
    env.reset(seed=0)
    env.step(np.array([3]))
    env = gym.make_vec("lanesim/Highway-v0", num_envs=1, action="continuous", vehicles=0)
    env.reset(seed=0)
    env.step(np.array([[0.5, 0.5]]))


def test_discrete_grid_steers_the_way_the_table_says():
    env = env_with("discrete")
    # Action 0 is the strongest left steer with braking; 12 the strongest right.
    _, _, _, _, left = env.step(1)  # steer 0.08 rad left, accel 0
    env = env_with("discrete")
    _, _, _, _, right = env.step(13)
    assert left["heading_error"] > 0.01
    assert right["heading_error"] < -0.01


def test_meta_lane_change_moves_to_the_next_lane():
    env = gym.make("lanesim/Highway-v0", action="meta", vehicles=0, ego_lanes=[1])
    env.reset(seed=0)
    for _ in range(5 * 5):
        _, _, terminated, _, info = env.step(2)  # LANE_RIGHT once, then keep asking
        if info["lane"] == 3:
            break
    assert not terminated
    env.reset(seed=0)
    env.step(2)
    for _ in range(5 * 5):
        _, _, _, _, info = env.step(1)  # IDLE holds the new target lane
    assert info["lane"] == 2
    assert abs(info["lane_offset"]) < 0.2
