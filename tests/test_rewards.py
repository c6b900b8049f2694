"""Every reward term has the documented sign, and the known reward traps do not pay."""

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401

IDLE, LANE_RIGHT = 1, 2


def empty_road(**kw):
    kw.setdefault("vehicles", 0)
    env = gym.make("lanesim/Highway-v0", **kw)
    env.reset(seed=0)
    return env


def test_progress_and_lane_keeping_are_positive_when_driving_centred():
    env = empty_road(action="meta")
    _, reward, _, _, info = env.step(IDLE)
    assert info["rewards"]["progress"] > 0.3
    assert info["rewards"]["lane_keeping"] > 0.15
    assert reward > 0.5


def test_standing_still_earns_nothing():
    env = empty_road(action="continuous", ego_speed=[0.0, 0.0])
    for _ in range(10):
        _, reward, _, _, info = env.step([0.0, -1.0])  # keep braking at zero speed
    assert info["speed"] == 0.0
    assert info["rewards"]["progress"] == 0.0
    assert info["rewards"]["lane_keeping"] == 0.0
    assert reward <= 0.0


def test_collision_term_is_negative_and_terminates():
    env = gym.make("lanesim/Highway-v0", vehicles=0, action="meta",
                   stalled=[{"lane": 1, "s": 260.0}], ego_lanes=[1], ego_speed=[25.0, 25.0])
    env.reset(seed=0)
    for _ in range(100):
        _, reward, terminated, _, info = env.step(IDLE)
        if terminated:
            break
    assert info["crashed"] and terminated
    assert info["rewards"]["collision"] == pytest.approx(-10.0)


def test_offroad_term_is_negative_and_terminates():
    env = empty_road(action="continuous", ego_lanes=[0])
    for _ in range(100):
        _, reward, terminated, _, info = env.step([0.3, 0.0])  # steer left off the road
        if terminated:
            break
    assert info["offroad"] and terminated and not info["crashed"]
    assert info["rewards"]["offroad"] == pytest.approx(-10.0)


def test_lane_change_costs_once_per_boundary_crossed():
    env = empty_road(action="meta", ego_lanes=[1])
    total = 0.0
    env.step(LANE_RIGHT)
    for _ in range(30):
        _, _, _, _, info = env.step(IDLE)
        total += info["rewards"]["lane_change"]
    assert total == pytest.approx(-0.1)


def test_comfort_term_penalizes_control_changes_only():
    env = empty_road(action="continuous")
    env.step([0.0, 0.0])
    _, _, _, _, steady = env.step([0.0, 0.0])
    _, _, _, _, jerk = env.step([0.2, 0.5])
    assert steady["rewards"]["comfort"] == 0.0
    assert jerk["rewards"]["comfort"] < 0.0


def episode_return(env, policy, steps):
    total = 0.0
    for t in range(steps):
        _, reward, terminated, truncated, _ = env.step(policy(t))
        total += reward
        if terminated or truncated:
            break
    return total


def test_weaving_between_lanes_pays_less_than_keeping_the_lane():
    straight = episode_return(empty_road(action="meta", ego_lanes=[1]), lambda t: IDLE, 100)
    # Change lanes right and back left every two seconds.
    weave = episode_return(
        empty_road(action="meta", ego_lanes=[1]),
        lambda t: (LANE_RIGHT if (t // 10) % 2 == 0 else 0) if t % 10 == 0 else IDLE,
        100,
    )
    assert weave < straight - 1.0


def test_circling_earns_less_than_driving_on():
    # Eight wide lanes leave room for tight circles without leaving the road.
    kw = dict(action="continuous", lanes=8, ego_lanes=[4], ego_speed=[8.0, 8.0])
    straight = episode_return(empty_road(**kw), lambda t: [0.0, 0.0], 60)
    circle_env = empty_road(**kw)
    circle = episode_return(circle_env, lambda t: [1.0, 0.0], 60)
    assert not circle_env.unwrapped.core.offroad[0]
    assert circle < 0.3 * straight


def test_driving_against_the_road_earns_negative_progress():
    env = empty_road(action="continuous", ego_speed=[10.0, 10.0])
    world = env.unwrapped.world
    world.heading[0, 0] += np.pi  # turn the car around on the spot
    _, _, _, _, info = env.step([0.0, 0.0])
    assert info["rewards"]["progress"] < 0.0
    assert info["rewards"]["lane_keeping"] == 0.0


def test_reward_weights_scale_terms():
    env = empty_road(action="meta", rewards={"progress": 2.0, "lane_keeping": 0.0})
    _, _, _, _, info = env.step(IDLE)
    base = empty_road(action="meta")
    _, _, _, _, info0 = base.step(IDLE)
    assert info["rewards"]["progress"] == pytest.approx(info0["rewards"]["progress"] / 0.7 * 2.0)
    assert info["rewards"]["lane_keeping"] == 0.0


def test_info_fields_and_reward_terms_carry_the_quantity_they_name():
    """The kernels write info fields and reward terms by name (``core.INFO``, ``core.TERM``,
    derived from ``INFO_FIELDS`` and ``REWARD_TERMS``), so each name carries its own value."""
    env = empty_road(action="continuous", lanes=3, ego_lanes=[2], ego_speed=[20.0, 20.0])
    o = env.unwrapped.options
    _, _, _, _, info = env.step([0.0, 0.0])  # hold 20 m/s on the centre of lane 2
    assert info["speed"] == 20.0
    assert info["lane"] == 2
    assert info["lane_offset"] == pytest.approx(0.0, abs=1e-9)
    assert info["heading_error"] == pytest.approx(0.0, abs=1e-9)
    assert info["distance"] == pytest.approx(20.0 / o.policy_hz)
    assert info["headway"] == np.inf and info["time_to_collision"] == np.inf
    assert info["traffic_collisions"] == 0 and not info["crashed"] and not info["offroad"]
    progress = 20.0 / o.reward_speed
    rewards = info["rewards"]
    assert rewards["progress"] == pytest.approx(o.rewards["progress"] * progress)
    assert rewards["lane_keeping"] == pytest.approx(o.rewards["lane_keeping"] * progress)
    assert rewards["collision"] == rewards["offroad"] == rewards["lane_change"] == 0.0
