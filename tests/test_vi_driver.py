"""The value-iteration driver: valid decisions, sensible manoeuvres, overlay data, safety."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401
from agents.base import Agent
from agents.baselines import IdleAgent, RandomAgent
from agents.evaluate import evaluate
from agents.vi_driver import VIDriver
from lanesim.envs.actions import LANE_LEFT, LANE_RIGHT, META_ACTIONS
from lanesim.render import annotate


def drive(env, agent, seed=0, until=None):
    """Run one episode; returns the per-decision log and the last info."""
    obs, info = env.reset(seed=seed)
    agent.reset(env)
    world = env.unwrapped.world
    log = []
    while True:
        action = agent.act(obs)
        log.append({"action": action, "s": float(world.s[0, 0]), "lane": int(world.lane[0, 0]),
                    "others_s": world.s[0, 1:].copy(), "others_lane": world.lane[0, 1:].copy()})
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated or (until is not None and world.s[0, 0] > until):
            return log, info


def test_returns_valid_meta_actions_and_follows_the_protocol():
    env = gym.make("lanesim/Highway-v0", action="meta", duration=4.0)
    agent = VIDriver()
    assert isinstance(agent, Agent) and agent.action_type == "meta"
    log, _ = drive(env, agent, seed=1)
    assert len(log) >= 1
    for step in log:
        assert type(step["action"]) is int and 0 <= step["action"] <= 4


def test_changes_lane_to_pass_a_stalled_car_on_an_empty_road():
    env = gym.make("lanesim/Highway-v0", action="meta", vehicles=0, lanes=3, ego_lanes=[1],
                   ego_speed=[25.0, 25.0], stalled=[{"lane": 1, "s": 330.0}], duration=10.0)
    log, info = drive(env, VIDriver(), until=360.0)
    assert not info["crashed"] and not info["offroad"]
    assert any(step["action"] in (LANE_LEFT, LANE_RIGHT) for step in log)
    passing = [step["lane"] for step in log if 320.0 < step["s"] < 340.0]
    assert passing and 1 not in passing  # beside the stalled car, never in its lane


def test_waits_for_an_occupied_lane_to_clear_before_changing_into_it():
    # Two lanes: a stalled car ahead in the ego's lane 1, a slightly faster car beside it in
    # lane 0. The only way past is lane 0, once that car has moved ahead.
    env = gym.make("lanesim/Highway-v0", action="meta", vehicles=1, lanes=2, ego_lanes=[1],
                   ego_speed=[25.0, 25.0], traffic_speed=[27.0, 27.0],
                   stalled=[{"lane": 1, "s": 340.0}], duration=10.0,
                   meta_speeds=[20.0, 25.0, 30.0])
    agent = VIDriver()
    obs, _ = env.reset(seed=0)
    agent.reset(env)
    world = env.unwrapped.world
    world.place(1, s=float(world.s[0, 0]), lane=0, speed=27.0)  # right beside the ego
    first = agent.act(obs)
    assert first != LANE_LEFT
    # At best LANE_LEFT starts a change and turns back at once: two lane changes' cost.
    worse = 2 * agent.config.lane_change_cost
    assert agent.last["values"][LANE_LEFT] < agent.last["values"].max() - worse
    changed_at = None
    action = first
    while True:
        if action == LANE_LEFT and changed_at is None:
            changed_at = float(world.s[0, 1] - world.s[0, 0])  # the other car's lead then
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated or world.s[0, 0] > 360.0:
            break
        action = agent.act(obs)
    assert not info["crashed"] and not info["offroad"]
    assert changed_at is not None and changed_at > 5.0  # it went only once the car was ahead


def test_leaves_the_merge_ramp_and_the_closing_lane_in_time():
    ramp = gym.make("lanesim/Merge-v0", action="meta", vehicles=0, duration=15.0)
    log, info = drive(ramp, VIDriver(), until=450.0)
    assert not info["crashed"] and not info["offroad"]
    assert all(step["lane"] < 3 for step in log if step["s"] > 380.0)  # ramp ends at 400 m
    works = gym.make("lanesim/Roadworks-v0", action="meta", vehicles=0, ego_lanes=[2],
                     duration=15.0)
    log, info = drive(works, VIDriver(), until=520.0)
    assert not info["crashed"] and not info["offroad"]
    assert all(step["lane"] != 2 for step in log if step["s"] > 440.0)  # cones from 450 m


def test_annotations_hold_the_plan_and_five_action_values():
    env = gym.make("lanesim/Highway-v0", action="meta", render_mode="rgb_array", duration=2.0)
    agent = VIDriver()
    obs, _ = env.reset(seed=2)
    agent.reset(env)
    assert agent.annotations() == {}
    action = agent.act(obs)
    notes = agent.annotations()
    plan = np.asarray(notes["plan"])
    assert plan.ndim == 2 and plan.shape[1] == 2 and len(plan) == agent.config.horizon + 1
    assert np.isfinite(plan).all()
    world = env.unwrapped.world
    np.testing.assert_allclose(plan[0], [world.x[0, 0], world.y[0, 0]], atol=0.5)
    assert np.all(np.diff(plan[:, 0]) > 0)  # straight road heading east: always forward
    assert notes["values"].shape == (5,) and np.isfinite(notes["values"]).all()
    assert int(np.argmax(notes["values"])) == action
    assert list(notes["labels"]) == list(META_ACTIONS)
    annotate(env, **notes)  # the viewer overlay accepts them
    env.step(action)
    assert env.render().ndim == 3


@pytest.mark.slow
def test_drives_faster_than_the_highway_traffic_without_collisions():
    """Ten 10-s Highway-v0 episodes (seeds 0-9): no collision, and a mean speed of at least
    25 m/s, above the 23-24 m/s at which Highway-v0's traffic flows."""
    env = gym.make("lanesim/Highway-v0", action="meta", duration=10.0)
    agent = VIDriver()
    speeds = []
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        agent.reset(env)
        while True:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            speeds.append(info["speed"])
            if terminated or truncated:
                break
        assert not info["crashed"] and not info["offroad"], seed
    assert np.mean(speeds) >= 25.0


def test_passes_a_line_of_slower_cars_in_the_next_lane():
    # Three cars at 22 m/s in lane 0, 20, 50 and 80 m ahead; the ego's lane 1 is free. Passing
    # them means driving close beside each in turn: traffic only moves across to change lanes,
    # which shows in its target lane, so the driver goes to 30 m/s rather than hanging back.
    env = gym.make("lanesim/Highway-v0", action="meta", vehicles=3, lanes=2, ego_lanes=[1],
                   ego_speed=[25.0, 25.0], traffic_speed=[22.0, 22.0], duration=10.0)
    agent = VIDriver()
    obs, _ = env.reset(seed=0)
    agent.reset(env)
    world = env.unwrapped.world
    for car, ahead in enumerate((20.0, 50.0, 80.0), start=1):
        world.place(car, s=float(world.s[0, 0]) + ahead, lane=0, speed=22.0)
    speeds, lanes = [], set()
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        speeds.append(info["speed"])
        lanes.add(int(world.lane[0, 0]))
        if terminated or truncated:
            break
    assert not info["crashed"] and lanes == {1}
    assert np.mean(speeds) > 28.0
    assert (world.s[0, 0] > world.s[0, 1:3] + 10.0).all()  # past the first two by the end


def test_slows_below_20_m_s_behind_a_queue_at_the_roadworks():
    # Roadworks-v0 has target speeds down to 10 m/s: with every lane blocked 40 m ahead by cars
    # at 12 m/s, the driver follows them. With highway speeds (20, 25, 30) it could not.
    def run(**options):
        env = gym.make("lanesim/Roadworks-v0", action="meta", vehicles=3, ego_lanes=[1],
                       ego_speed=[20.0, 20.0], traffic_speed=[12.0, 12.0], duration=10.0,
                       **options)
        agent = VIDriver()
        obs, _ = env.reset(seed=0)
        agent.reset(env)
        world = env.unwrapped.world
        for lane in range(3):
            world.place(1 + lane, s=float(world.s[0, 0]) + 40.0, lane=lane, speed=12.0)
        speeds = []
        while True:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            speeds.append(info["speed"])
            if terminated or truncated:
                return info, min(speeds)

    info, slowest = run()
    assert not info["crashed"] and not info["offroad"] and slowest < 15.0
    info, _ = run(meta_speeds=[20.0, 25.0, 30.0])
    assert info["crashed"]


def test_every_plan_ends_in_one_terminal_state():
    # Collisions and the horizon both end a plan in the MDP's one terminal state, so the value
    # of the greedy plan is the sum of its expected rewards, each weighted by the probability
    # of having come that far without a collision.
    env = gym.make("lanesim/Highway-v0", action="meta", duration=2.0)
    agent = VIDriver()
    env.reset(seed=3)
    details = agent.plan(env.unwrapped.scene(), env.unwrapped.options)
    mdp, result = details["mdp"], details["result"]
    end = mdp.n_states - 1
    assert np.flatnonzero(mdp.terminal).tolist() == [end]
    assert mdp.n_states < details["states"]  # states at the horizon are not MDP states
    assert result.converged
    P = mdp.P.tocsr()
    live_rows = np.repeat(~mdp.terminal, mdp.n_actions)
    np.testing.assert_allclose((P @ np.ones(mdp.n_states))[live_rows], 1.0, atol=1e-12)
    state, reach, value, steps = 0, 1.0, 0.0, 0
    while state != end:
        a = int(result.policy[state])
        value += reach * mdp.R[state, a]
        row = P[[state * mdp.n_actions + a]]
        on = [(j, q) for j, q in zip(row.indices, row.data, strict=True) if j != end]
        state, reach = (on[0][0], reach * on[0][1]) if on else (end, 0.0)
        steps += 1
    assert steps == agent.config.horizon
    assert value == pytest.approx(result.Q[0, details["action"]], abs=1e-9)


def test_decisions_are_the_same_for_the_same_seed():
    env = gym.make("lanesim/Highway-v0", action="meta", duration=3.0)
    agent = VIDriver()
    first, _ = drive(env, agent, seed=4)
    second, _ = drive(env, agent, seed=4)
    assert [s["action"] for s in first] == [s["action"] for s in second]


def test_evaluate_reports_every_metric_for_the_baselines():
    result = evaluate(IdleAgent(), "lanesim/Highway-v0", episodes=2, seed=0, duration=3.0)
    for key in ("episodes", "mean_return", "collision_rate", "offroad_rate", "mean_speed",
                "lane_offset_rms", "lane_changes", "ms_per_decision", "returns", "collisions"):
        assert key in result
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["lane_changes"] == 0.0 and result["lane_offset_rms"] < 0.05
    rand = evaluate(RandomAgent(seed=1), "lanesim/Highway-v0", episodes=2, seed=0, duration=3.0)
    again = evaluate(RandomAgent(seed=1), "lanesim/Highway-v0", episodes=2, seed=0, duration=3.0)
    assert rand["returns"] == again["returns"]


def test_acting_before_reset_names_the_missing_env():
    with pytest.raises(RuntimeError, match=r"before reset\(env\)"):
        VIDriver().act(None)


def test_planner_predicts_the_simulators_speed_control_exactly():
    """The planner's ego model imports the autopilot's speed gain and the ego's limits from
    ``lanesim.sim.models`` instead of copying them, so its speeds are the simulator's."""
    from agents.vi_driver import _advance
    from lanesim.sim.road import Road, Segment
    from lanesim.sim.world import TrafficModel, World, WorldSpec

    road = Road([Segment(3000.0, 0.0)], lanes=2, lane_width=4.0)
    world = World(WorldSpec(road=road, traffic=TrafficModel(vehicles=0)), 1)
    world.reset(np.ones(1, dtype=bool), np.array([0]))
    world.place(0, 200.0, 0, 12.0)
    v = 12.0
    # At the acceleration limit, at the braking limit, then within both (the gain alone).
    for target in (30.0, 5.0, 9.0):
        world.run(20, target_lane=np.array([0]), target_speed=np.array([target]))
        for _ in range(20):
            _, _, _, v = _advance(0.0, 2.0, 0.0, v, 2.0, target, world.dt, 1, 3.0)
        assert world.speed[0, 0] == pytest.approx(v, abs=1e-9)
    assert 8.0 < v < 9.0
