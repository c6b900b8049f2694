"""LaneGrid-v0: the published model is exact, step() samples it, VI and Q-learning agree."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

from agents.mdp import FiniteMDP
from agents.qlearning import QLearningAgent, train_q_learning
from agents.value_iteration import value_iteration
from lanesim.envs import ActionError, OptionError
from lanesim.envs.lanegrid import LaneGridEnv

ENV_ID = "lanesim/LaneGrid-v0"

# 2 lanes, 2 speeds, cells -1..3: 144 states, small enough to check everything exactly.
SMALL = dict(lanes=2, speeds=2, ahead=3, behind=1, traffic=(0.5, 0.5), max_steps=30)


def check_transitions(env: LaneGridEnv, states) -> None:
    crash = env.crash_states()
    for s in states:
        row = env.P[s]
        assert sorted(row) == [0, 1, 2, 3, 4]
        for a in range(5):
            transitions = row[a]
            probs = np.array([t[0] for t in transitions])
            assert np.all(probs > 0), (s, a)
            assert abs(probs.sum() - 1.0) < 1e-12, (s, a, probs.sum())
            nxt = [t[1] for t in transitions]
            assert len(set(zip(nxt, [t[3] for t in transitions], strict=True))) == len(nxt)
            for _, s2, r, done in transitions:
                assert isinstance(s2, int) and 0 <= s2 < env.n_states
                assert np.isfinite(r) and isinstance(done, bool)
                # Terminated exactly when the ego ends up sharing its cell with a car.
                assert done == bool(crash[s2]), (s, a, s2)


def test_every_transition_row_is_a_probability_distribution():
    env = LaneGridEnv(lanes=3, speeds=2, ahead=2, behind=1)  # 750 states: all of them
    check_transitions(env, range(env.n_states))
    default = LaneGridEnv()  # 9,000 states: a sample of the table, all rows via the MDP
    check_transitions(default, np.random.default_rng(0).choice(default.n_states, 100))
    # FiniteMDP rejects any row that is not a distribution.
    mdp = FiniteMDP.from_model(default.model(), 0.95)
    live = np.repeat(~default.crash_states(), 5)
    np.testing.assert_allclose((mdp.P @ np.ones(mdp.n_states))[live], 1.0, atol=1e-12)


def test_collision_states_are_absorbing_and_worth_nothing():
    env = LaneGridEnv(**SMALL)
    s = env.encode(lane=0, speed=1, cars=[0, None])
    assert env.crash_states()[s]
    for a in range(5):
        assert env.P[s][a] == [(1.0, s, 0.0, True)]


def test_mdp_equals_the_transition_table():
    env = LaneGridEnv(**SMALL)
    direct = FiniteMDP.from_model(env.model(), 0.9)
    table = FiniteMDP.from_transitions(env.P, env.n_states, 5, 0.9)
    live = ~env.crash_states()
    rows = np.repeat(live, 5)
    # Terminated transitions: dropped by from_transitions, sent to a terminal state by model().
    to_live = direct.P.toarray()[:, live]
    np.testing.assert_allclose(to_live[rows], table.P.toarray()[:, live][rows], atol=1e-15)
    np.testing.assert_allclose(direct.R[live], table.R[live], atol=1e-12)
    a, b = value_iteration(direct, tol=1e-10), value_iteration(table, tol=1e-10)
    np.testing.assert_allclose(a.V[live], b.V[live], atol=1e-9)
    assert np.array_equal(a.policy[live], b.policy[live])


def test_step_samples_next_states_with_the_model_probabilities():
    env = LaneGridEnv()
    env.reset(seed=0)
    # Cars ahead in every lane and an empty spot to spawn into: 27 distinct outcomes.
    s = env.encode(lane=1, speed=2, cars=[4, 5, None])
    a = 3  # FASTER
    transitions = env.P[s][a]
    assert len(transitions) >= 9
    index = {(t[1], t[3]): i for i, t in enumerate(transitions)}
    counts = np.zeros(len(transitions))
    n = 20_000
    for _ in range(n):
        env.s = s
        s2, r, terminated, _, info = env.step(a)
        i = index[(s2, terminated)]
        counts[i] += 1
        assert r == transitions[i][2] and info["prob"] == transitions[i][0]
    expected = n * np.array([t[0] for t in transitions])
    chi2 = ((counts - expected) ** 2 / expected).sum()
    p_value = stats.chi2.sf(chi2, df=len(transitions) - 1)
    assert p_value > 1e-3, (chi2, p_value)


def test_value_iteration_policy_avoids_collisions_in_rollouts():
    # The default task with a collision 5 times as costly: at gamma 0.95 the optimal policy
    # of the default rewards accepts a rare collision for speed.
    env = gym.make(ENV_ID, collision_reward=-50.0)
    policy = value_iteration(FiniteMDP.from_model(env.unwrapped.model(), 0.95), tol=1e-6).policy
    crashes = {"vi": 0, "idle": 0}
    speeds = []
    for name in crashes:
        for episode in range(30):
            s, _ = env.reset(seed=episode)
            while True:
                s, _, terminated, truncated, info = env.step(int(policy[s]) if name == "vi" else 1)
                if name == "vi":
                    speeds.append(info["speed"])
                if terminated or truncated:
                    crashes[name] += terminated
                    break
    assert crashes["vi"] == 0
    assert crashes["idle"] >= 20  # the task is not trivially safe
    assert np.mean(speeds) > 2.5  # and the policy is not safe by crawling (top speed 3)


def test_q_learning_learns_the_value_iteration_policy():
    """Q-learning through the Gymnasium API reaches value iteration's greedy policy.

    Compared: every non-collision state in which Q-learning updated each of the 5 actions at
    least 20 times and value iteration's best action beats the second best by more than 0.01
    (exact ties have no single answer). All of them must agree, and there must be at least
    40 such states (of 120 non-collision states).
    """
    env = gym.make(ENV_ID, **SMALL)
    gamma = 0.8
    vi = value_iteration(FiniteMDP.from_model(env.unwrapped.model(), gamma), tol=1e-10)
    learnt = train_q_learning(env, episodes=5000, gamma=gamma, seed=0, epsilon_start=1.0,
                              epsilon_end=0.5, epsilon_decay=0.5, lr_exponent=0.6)
    q_sorted = np.sort(vi.Q, axis=1)
    gap = q_sorted[:, -1] - q_sorted[:, -2]
    compared = ~env.unwrapped.crash_states() & (learnt.visits.min(axis=1) >= 20) & (gap > 0.01)
    assert compared.sum() >= 40
    assert np.array_equal(learnt.policy[compared], vi.policy[compared])
    agent = QLearningAgent(learnt.Q)
    s = int(np.flatnonzero(compared)[0])
    assert agent.act(s) == vi.policy[s]
    assert agent.annotations()["values"].shape == (5,)


def test_q_learning_is_deterministic_for_a_seed():
    env = gym.make(ENV_ID, **SMALL)
    a = train_q_learning(env, episodes=50, seed=3)
    b = train_q_learning(env, episodes=50, seed=3)
    assert np.array_equal(a.Q, b.Q) and a.returns == b.returns


def test_episode_is_truncated_at_max_steps():
    env = LaneGridEnv(max_steps=5, spawn_prob=0.0, density=0.0)
    env.reset(seed=0)
    for i in range(5):
        _, _, terminated, truncated, _ = env.step(1)
        assert not terminated and truncated == (i == 4)


def test_bad_options_raise_errors_naming_them():
    with pytest.raises(OptionError, match=r"unknown option 'lane'.*did you mean 'lanes'"):
        LaneGridEnv(lane=3)
    with pytest.raises(OptionError, match=r"'lanes' must be an integer in \[2, 5\], got 9"):
        LaneGridEnv(lanes=9)
    with pytest.raises(OptionError, match=r"'speeds' must be an integer in \[1, 5\]"):
        LaneGridEnv(speeds=2.5)
    with pytest.raises(OptionError, match=r"'traffic' must be .* summing to 1"):
        LaneGridEnv(traffic=(0.5, 0.6))
    with pytest.raises(OptionError, match=r"'spawn_prob' must be a number in \[0, 1\]"):
        LaneGridEnv(spawn_prob=1.5)
    with pytest.raises(OptionError, match=r"'collision_reward' must be a finite number <= 0"):
        LaneGridEnv(collision_reward=5.0)
    with pytest.raises(OptionError, match=r"more than the 200,000 allowed"):
        LaneGridEnv(lanes=5, ahead=10, behind=4)
    with pytest.raises(OptionError, match="render_mode must be one of ansi or None, got 'human'"):
        LaneGridEnv(render_mode="human")
    env = LaneGridEnv()
    env.reset(seed=0)
    for bad in (5, -1, True, 1.0, [1], np.int64(7), np.array([1])):
        # The same check, and the same error, as the driving envs' meta actions.
        with pytest.raises(ActionError, match=r"action must be an integer in \[0, 4\]"):
            env.step(bad)
    assert env.step(np.int64(1))[4]["lane"] == env.step(np.array(1))[4]["lane"]


def test_registered_env_passes_the_gymnasium_checker():
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ENV_ID, render_mode="ansi")
    check_env(env.unwrapped, skip_render_check=False)
    env.reset(seed=0)
    text = env.render()
    assert text.count("|") == 2 * 3 and "E" in text
    lane, speed, cars = env.unwrapped.decode(env.unwrapped.s)
    assert env.unwrapped.encode(lane, speed, cars) == env.unwrapped.s
