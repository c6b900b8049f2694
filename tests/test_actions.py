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
