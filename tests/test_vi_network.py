"""The value-iteration driver on road networks (agents/vi_network.py, run by VIDriver)."""

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401  (registers the ids)
from agents.baselines import IdleAgent
from agents.vi_driver import VIDriver
from agents.vi_network import VINetworkConfig
from lanesim.envs.actions import LANE_RIGHT, SLOWER
from lanesim.sim.netstep import INACTIVE
from lanesim.sim.state import COMMAND_SPEED


def _quiet(env, seed: int, goal: str | None = None):
    """Reset ``env`` with the first seed from ``seed`` on whose goal is ``goal`` (any if
    None), then take every traffic car off and stop new ones entering."""
    w = env.unwrapped.core.world
    for s in range(seed, seed + 50):
        env.reset(seed=s)
        names = [w.network.lanes[g] for g in w.run_spec.goals]
        if goal is None or names[w.goal_of[0]] == goal:
            break
    else:
        raise AssertionError(f"no seed from {seed} draws goal {goal}")
    st = w.state
    st.kind[0, 1:] = INACTIVE
    st.lane[0, 1:] = -1
    st.speed[0, 1:] = 0.0
    w.params = w.params._replace(spawn_prob=0.0)
    return w


def _drive(env, agent, decisions: int):
    """Run ``agent`` up to ``decisions`` decisions; returns the actions and the last info."""
    agent.reset(env)
    actions, info = [], {}
    for _ in range(decisions):
        a = agent.act(None)
        actions.append(a)
        _, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            break
    return actions, info


def _crossing_setup(env):
    """The ego at 9 m/s 30 m before the junction, bound north (straight on); one main-road
    car coming from the west at 9 m/s, timed to reach the ego's path when a constant-speed ego
    does."""
    w = _quiet(env, 0, goal="north:-1")
    st = w.state
    st.speed[0, 0] = 9.0
    w.command[COMMAND_SPEED, 0] = 9.0
    env.unwrapped.core.action.speed_index[0] = 2
    w.place(0, 1, "west:0", 66.0, 9.0, "east:-1", desired_speed=9.0)
    return w


def test_constant_speed_ego_hits_the_crossing_car():
    # The premise of the next test: driving on at 9 m/s meets the main-road car.
    env = gym.make("lanesim/Intersection-v0", action="meta")
    _crossing_setup(env)
    _, info = _drive(env, IdleAgent(), 40)
    env.close()
    assert info["crashed"]


def test_driver_stops_for_a_crossing_main_road_car():
    env = gym.make("lanesim/Intersection-v0", action="meta")
    w = _crossing_setup(env)
    agent = VIDriver()
    actions, info = _drive(env, agent, 100)
    env.close()
    assert not info["crashed"]
    assert info["arrived"]  # it went on once the car had passed
    assert SLOWER in actions[:5]
    # It let the car through first: the car left the junction before the ego crossed the
    # main road (the car is off the network or past the box when the ego arrives).
    assert w.lane[0, 1] < 0 or w.network.lanes[w.lane[0, 1]] == "east:-1"


def test_driver_changes_right_toward_the_exit_lane():
    env = gym.make("lanesim/Exit-v0", action="meta")
    w = _quiet(env, 0)
    for s in range(60):  # a start in the leftmost lane: two changes right, then the exit lane
        env.reset(seed=s)
        if w.network.lanes[w.lane[0, 0]] == "approach:0":
            break
    _quiet(env, s)
    agent = VIDriver()
    actions, info = _drive(env, agent, 400)
    env.close()
    assert actions[0] == LANE_RIGHT
    assert actions.count(LANE_RIGHT) >= 3  # approach:0 -> 1 -> 2, then decel:2 -> decel:3
    assert info["arrived"] and not info["crashed"]


def test_same_seed_same_plan():
    runs = []
    for _ in range(2):
        env = gym.make("lanesim/Roundabout-v0", action="meta")
        env.reset(seed=3)
        agent = VIDriver()
        agent.reset(env)
        actions, values = [], []
        for _ in range(25):
            actions.append(agent.act(None))
            values.append(agent.last["values"].copy())
            env.step(actions[-1])
        env.close()
        runs.append((actions, np.array(values)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_plan_annotation_lies_on_the_route():
    env = gym.make("lanesim/Roundabout-v0", action="meta")
    w = _quiet(env, 0)
    agent = VIDriver()
    agent.reset(env)
    for _ in range(10):
        env.step(agent.act(None))
    agent.act(None)
    plan = agent.annotations()["plan"]
    route = set(agent.last["route"].tolist())
    env.close()
    assert plan.shape[0] >= 3 and plan.shape[1] == 2
    np.testing.assert_allclose(plan[0], [w.x[0, 0], w.y[0, 0]], atol=0.05)  # the ego now
    lanes, _, offsets = w.network.to_lane(plan[:, 0], plan[:, 1])
    # Each point on a lane of the route (where connectors overlap another lane may be
    # nearer; then the point still lies within its strip), near its centre.
    for x, y, lane, off in zip(plan[:, 0], plan[:, 1], lanes, offsets, strict=True):
        assert lane >= 0
        on_route = [q for q in route if abs(_offset_on(w.network, q, x, y)) < 0.5]
        assert on_route, (x, y, w.network.lanes[lane], off)
    # The plan moves forward along the route (the ego drives on without traffic).
    assert np.all(np.diff(agent.last["path_s"]) >= -1e-9)
    assert agent.last["path_s"][-1] > 10.0


def _offset_on(net, lane, x, y) -> float:
    from lanesim.sim.netego import on_lane

    inside, _, offset = on_lane(net.arrays, lane, x, y)
    return offset if inside else np.inf


@pytest.mark.parametrize("field, value", [("horizon", 0), ("step", 5.0), ("tail_weight", 2.0),
                                          ("max_states", 1.5), ("window_soft", float("nan"))])
def test_config_out_of_range_is_an_error_naming_it(field, value):
    with pytest.raises(ValueError, match=f"VINetworkConfig.{field} must be"):
        VINetworkConfig(**{field: value})


def test_the_driver_refuses_what_it_cannot_plan_on_a_network():
    env = gym.make("lanesim/Intersection-v0", action="continuous")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action='meta'"):
        VIDriver().reset(env)
    meta = gym.make("lanesim/Intersection-v0", action="meta")
    meta.reset(seed=0)
    with pytest.raises(TypeError, match="NetworkPlanner"):
        VIDriver().plan(meta.unwrapped.scene(), meta.unwrapped.options)
