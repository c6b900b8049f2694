"""env.unwrapped.scene(): a typed snapshot of the simulator's state for model-based planners."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401
from agents.vi_driver import VIDriver
from lanesim.envs.actions import FASTER, LANE_LEFT, SLOWER
from lanesim.envs.driving import Vehicles
from lanesim.sim.world import CAR, CONE, EGO, STALLED


def assert_scene_is_world(scene, world, b):
    for name in Vehicles.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(scene.vehicles, name), getattr(world, name)[b],
                                      err_msg=name)
    assert scene.time == world.time[b]
    road = world.road
    assert (scene.lanes.count, scene.lanes.width) == (road.lanes, road.lane_width)
    np.testing.assert_array_equal(scene.lanes.start, road.lane_start)
    np.testing.assert_array_equal(scene.lanes.end, road.lane_end)
    np.testing.assert_array_equal(scene.lanes.closes, road.lane_closes)
    np.testing.assert_array_equal(scene.lanes.centre, road.lane_centre)
    assert scene.ego_heading_error == world.ego_lane_frame()[2][b]


def test_scene_matches_the_world_it_snapshots():
    env = gym.make("lanesim/Roadworks-v0", action="meta")
    env.reset(seed=5)
    for action in (LANE_LEFT, FASTER, 1, 1):
        env.step(action)
    scene = env.unwrapped.scene()
    assert_scene_is_world(scene, env.unwrapped.world, 0)
    kinds = scene.vehicles.kind
    assert kinds[0] == EGO and (kinds[1 : 1 + env.unwrapped.options.vehicles] == CAR).all()
    assert set(kinds[1 + env.unwrapped.options.vehicles :]) <= {STALLED, CONE}
    assert scene.lanes.closes.any()  # the roadworks close a lane
    assert scene.ego_model.max_steer > 0 and scene.traffic_model.lane_change_time > 0


def test_scene_is_a_snapshot_that_later_steps_leave_alone():
    env = gym.make("lanesim/Highway-v0", action="meta")
    env.reset(seed=0)
    scene = env.unwrapped.scene()
    s, time = scene.vehicles.s.copy(), scene.time
    env.step(1)
    assert scene.time == time and np.array_equal(scene.vehicles.s, s)
    assert env.unwrapped.scene().time > time
    with pytest.raises(dataclasses.FrozenInstanceError):
        scene.time = 0.0


def test_scene_holds_the_meta_actions_targets():
    env = gym.make("lanesim/Highway-v0", action="meta", lanes=3, ego_lanes=[1],
                   meta_speeds=[20.0, 25.0, 30.0], ego_speed=[25.0, 25.0])
    env.reset(seed=0)
    start = env.unwrapped.scene()
    assert (start.ego_target_lane, start.ego_target_speed) == (1, 25.0)
    env.step(LANE_LEFT)
    env.step(FASTER)
    moved = env.unwrapped.scene()
    assert (moved.ego_target_lane, moved.ego_target_speed) == (0, 30.0)
    env.step(SLOWER)
    assert env.unwrapped.scene().ego_target_speed == 25.0


def test_scene_has_no_targets_without_meta_actions():
    env = gym.make("lanesim/Highway-v0", action="continuous")
    env.reset(seed=0)
    scene = env.unwrapped.scene()
    assert scene.ego_target_lane is None and scene.ego_target_speed is None


def test_vector_scene_is_each_sub_environments_own():
    envs = gym.make_vec("lanesim/Merge-v0", num_envs=3, action="meta")
    envs.reset(seed=7)
    envs.step(np.array([0, 1, 2]))
    world = envs.unwrapped.world
    for i in range(3):
        assert_scene_is_world(envs.unwrapped.scene(i), world, i)
    single = gym.make("lanesim/Merge-v0", action="meta")
    single.reset(seed=7 + 2)
    single.step(2)
    for name in Vehicles.__dataclass_fields__:  # the same world as DrivingEnv.reset(seed + i)
        np.testing.assert_array_equal(getattr(single.unwrapped.scene().vehicles, name),
                                      getattr(envs.unwrapped.scene(2).vehicles, name))
    for bad in (3, -1, 1.0, True):
        with pytest.raises(IndexError, match=r"index must be an integer in \[0, 2\]"):
            envs.unwrapped.scene(bad)


class SceneOnly:
    """An environment that offers a planner its scene and options and nothing else."""

    def __init__(self, env) -> None:
        self._env = env

    @property
    def unwrapped(self):
        return self

    def scene(self):
        return self._env.unwrapped.scene()

    @property
    def options(self):
        return self._env.unwrapped.options


def test_value_iteration_driver_plans_from_the_scene_alone():
    env = gym.make("lanesim/Merge-v0", action="meta")
    obs, _ = env.reset(seed=3)
    through_env, scene_only = VIDriver(), VIDriver()
    through_env.reset(env)
    scene_only.reset(SceneOnly(env))
    for _ in range(5):
        action = through_env.act(obs)
        assert scene_only.act(obs) == action
        np.testing.assert_array_equal(scene_only.annotations()["values"],
                                      through_env.annotations()["values"])
        obs, *_ = env.step(action)
