"""value_iteration: exact answers, brute-force optimality and the certified error bound."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from agents.mdp import FiniteMDP
from agents.value_iteration import ValueIterationResult, value_iteration


def random_mdp(n_states: int, n_actions: int, seed: int, end_prob: float = 0.0):
    """Dense ``P`` ``(S, A, S)``, ``R`` ``(S, A)``; with ``end_prob > 0`` the last state is
    terminal and every other (s, a) reaches it with probability at least ``end_prob``."""
    rng = np.random.default_rng(seed)
    P = rng.random((n_states, n_actions, n_states)) ** 3  # skewed, some near-ties
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(n_states, n_actions))
    if end_prob:
        P *= 1 - end_prob
        P[:, :, -1] += end_prob
    return P, R


def best_over_deterministic_policies(P: np.ndarray, R: np.ndarray, gamma: float) -> np.ndarray:
    """``V*`` by exact evaluation (a linear solve) of all ``A**S`` deterministic policies.

    ``P`` is the continuation matrix ``(S, A, S)`` (rows may sum to < 1 when episodes end).
    An optimal deterministic policy maximises every state's value at once.
    """
    n_states, n_actions = R.shape
    best = np.full(n_states, -np.inf)
    for policy in itertools.product(range(n_actions), repeat=n_states):
        v = policy_value(P, R, gamma, np.array(policy))
        best = np.maximum(best, v)
    return best


def policy_value(P: np.ndarray, R: np.ndarray, gamma: float, policy: np.ndarray) -> np.ndarray:
    states = np.arange(R.shape[0])
    return np.linalg.solve(np.eye(R.shape[0]) - gamma * P[states, policy], R[states, policy])


def assert_tol_optimal(
    result: ValueIterationResult, P, R, gamma: float, tol: float, v_tol: float
) -> None:
    """The policy's exact value is within ``error_bound <= tol`` of ``V*``; ``V`` within
    ``v_tol``. The 1e-12 slack covers the rounding of the linear solves."""
    v_star = best_over_deterministic_policies(P, R, gamma)
    v_policy = policy_value(P, R, gamma, result.policy)
    assert result.converged
    assert result.error_bound <= tol
    assert np.all(v_star - v_policy <= result.error_bound + 1e-12)
    assert np.all(v_policy <= v_star + 1e-12)
    np.testing.assert_allclose(result.V, v_star, rtol=0, atol=v_tol + 1e-12)


# --- exact answers -------------------------------------------------------------------------


def test_two_state_mdp_matches_hand_solution() -> None:
    # State 0: "stay" pays 1 and stays; "go" pays 0 and moves to state 1.
    # State 1: "stay" pays 3 and stays; "back" pays 0 and moves to state 0. gamma = 1/2.
    # Staying in 1 forever: V(1) = 3 / (1 - 1/2) = 6 (going back: 0 + 3/2 < 6).
    # In 0: stay forever is worth 1 / (1/2) = 2, going is worth 0 + 6/2 = 3, so V(0) = 3.
    # Q* = [[1 + 3/2, 3], [6, 0 + 3/2]] = [[2.5, 3], [6, 1.5]]; policy [go, stay] = [1, 0].
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    R = np.array([[1.0, 0.0], [3.0, 0.0]])
    result = value_iteration(FiniteMDP(P, R, 0.5), tol=1e-10)
    assert result.converged
    np.testing.assert_allclose(result.V, [3.0, 6.0], atol=1e-10)
    np.testing.assert_allclose(result.Q, [[2.5, 3.0], [6.0, 1.5]], atol=1e-10)
    np.testing.assert_array_equal(result.policy, [1, 0])


def test_undiscounted_episodic_chain_matches_hand_solution() -> None:
    # States 0, 1 and terminal 2; every step pays -1, gamma = 1.
    # "walk" moves 0 -> 1 -> 2; "gamble" ends with probability 0.6, else stays put.
    # V(1) = max(walk: -1, gamble: -1 + 0.4 V(1) = -5/3) = -1.
    # V(0) = max(walk: -1 + V(1) = -2, gamble: V(0) = -1 + 0.4 V(0) => -5/3) = -5/3.
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[1, 0, 2] = 1.0
    P[0, 1, 2], P[0, 1, 0] = 0.6, 0.4
    P[1, 1, 2], P[1, 1, 1] = 0.6, 0.4
    P[2, :, 2] = 1.0
    R = np.array([[-1.0, -1.0], [-1.0, -1.0], [0.0, 0.0]])
    terminal = np.array([False, False, True])
    result = value_iteration(FiniteMDP(P, R, 1.0, terminal=terminal), tol=1e-9)
    assert result.converged and result.error_bound <= 1e-9
    np.testing.assert_allclose(result.V, [-5 / 3, -1.0, 0.0], atol=1e-9)
    np.testing.assert_array_equal(result.policy[:2], [1, 0])


def test_myopic_mdp_with_gamma_zero_picks_the_best_immediate_reward() -> None:
    P, R = random_mdp(6, 3, seed=3)
    result = value_iteration(FiniteMDP(P, R, 0.0))
    assert result.converged and result.error_bound == 0.0
    np.testing.assert_array_equal(result.V, R.max(axis=1))
    np.testing.assert_array_equal(result.policy, R.argmax(axis=1))


# --- brute force over deterministic policies ----------------------------------------------


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("tol", [1e-2, 1e-6])
@pytest.mark.parametrize("seed", range(5))
def test_policy_is_tol_optimal_against_brute_force(seed: int, tol: float, gamma: float) -> None:
    P, R = random_mdp(5, 3, seed)
    result = value_iteration(FiniteMDP(P, R, gamma), tol=tol)
    assert_tol_optimal(result, P, R, gamma, tol, v_tol=tol / 2)  # tol/2: not episodic


@pytest.mark.parametrize("gamma", [0.9, 1.0])
@pytest.mark.parametrize("seed", range(5))
def test_episodic_policy_is_tol_optimal_against_brute_force(seed: int, gamma: float) -> None:
    P, R = random_mdp(5, 3, seed, end_prob=0.3)
    terminal = np.array([False] * 4 + [True])
    tol = 1e-6
    result = value_iteration(FiniteMDP(P, R, gamma, terminal=terminal), tol=tol)
    P_cont, R_cont = P.copy(), R.copy()
    P_cont[-1], R_cont[-1] = 0.0, 0.0  # terminal: absorbing, worth 0
    assert_tol_optimal(result, P_cont, R_cont, gamma, tol, v_tol=tol)
    assert result.V[-1] == 0.0


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_from_transitions_with_terminated_transitions_is_optimal(gamma: float) -> None:
    rng = np.random.default_rng(7)
    n_states, n_actions = 4, 2
    table = {}
    P_cont = np.zeros((n_states, n_actions, n_states))  # the semantics, written out by hand
    R_exp = np.zeros((n_states, n_actions))
    for s in range(n_states):
        table[s] = {}
        for a in range(n_actions):
            probs = rng.dirichlet(np.ones(3))
            items = []
            for k, p in enumerate(probs):
                nxt, reward, done = int(rng.integers(n_states)), float(rng.normal()), k == 0
                items.append((float(p), nxt, reward, done))
                R_exp[s, a] += p * reward
                if not done:
                    P_cont[s, a, nxt] += p
            table[s][a] = items
    mdp = FiniteMDP.from_transitions(table, n_states, n_actions, gamma)
    result = value_iteration(mdp, tol=1e-8)
    assert_tol_optimal(result, P_cont, R_exp, gamma, 1e-8, v_tol=1e-8)


def test_frozen_lake_values_match_policy_evaluation() -> None:
    gym = pytest.importorskip("gymnasium")
    env = gym.make("FrozenLake-v1").unwrapped  # slippery 4x4: holes and goal terminate
    mdp = FiniteMDP.from_transitions(env.P, 16, 4, gamma=0.95)
    result = value_iteration(mdp, tol=1e-9)
    assert result.converged
    P = mdp.P.toarray().reshape(16, 4, 16)
    v_policy = policy_value(P, mdp.R, 0.95, result.policy)
    np.testing.assert_allclose(result.V, v_policy, atol=2e-9)
    # Bellman optimality of the evaluated policy: no one-step deviation helps.
    q = mdp.R + 0.95 * P @ v_policy
    assert np.all(q.max(axis=1) - v_policy <= 1e-9)
    assert result.V[15] == 0.0 and 0.15 < result.V[0] < 0.25  # goal state; start value


# --- equivalent inputs ---------------------------------------------------------------------


def test_dense_and_sparse_inputs_give_the_same_result() -> None:
    P, R = random_mdp(8, 4, seed=11)
    dense = value_iteration(FiniteMDP(P, R, 0.95))
    sparse = value_iteration(FiniteMDP(sp.csr_array(P.reshape(32, 8)), R, 0.95))
    assert dense.iterations == sparse.iterations
    np.testing.assert_array_equal(dense.policy, sparse.policy)
    np.testing.assert_allclose(dense.V, sparse.V, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dense.Q, sparse.Q, rtol=0, atol=1e-12)


def test_transition_rewards_give_the_same_result_as_expected_rewards() -> None:
    P, _ = random_mdp(6, 3, seed=12)
    R3 = np.random.default_rng(0).normal(size=(6, 3, 6))
    full = value_iteration(FiniteMDP(P, R3, 0.9))
    reduced = value_iteration(FiniteMDP(P, (P * R3).sum(axis=2), 0.9))
    np.testing.assert_array_equal(full.policy, reduced.policy)
    np.testing.assert_allclose(full.V, reduced.V, rtol=0, atol=1e-12)


# --- the result ----------------------------------------------------------------------------


def test_result_is_consistent_q_policy_and_residual() -> None:
    P, R = random_mdp(7, 3, seed=5)
    mdp = FiniteMDP(P, R, 0.9)
    result = value_iteration(mdp, tol=1e-8)
    np.testing.assert_allclose(result.Q, R + 0.9 * P @ result.V, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.policy, result.Q.argmax(axis=1))
    assert result.residual == pytest.approx(np.abs(result.Q.max(axis=1) - result.V).max())
    assert result.policy.shape == (7,) and np.issubdtype(result.policy.dtype, np.integer)
    with pytest.raises(AttributeError):
        result.iterations = 0  # frozen


@pytest.mark.parametrize("max_iter", [1, 2, 3, 5, 8])
def test_unconverged_run_reports_a_valid_error_bound(max_iter: int) -> None:
    P, R = random_mdp(5, 3, seed=2)
    result = value_iteration(FiniteMDP(P, R, 0.9), tol=1e-12, max_iter=max_iter)
    assert not result.converged and result.iterations == max_iter
    gap = best_over_deterministic_policies(P, R, 0.9) - policy_value(P, R, 0.9, result.policy)
    assert np.all(gap <= result.error_bound + 1e-12)


def test_stopping_needs_far_fewer_sweeps_than_the_sup_norm_rule() -> None:
    P, R = random_mdp(30, 4, seed=9)
    gamma, tol = 0.99, 1e-6
    result = value_iteration(FiniteMDP(P, R, gamma), tol=tol)
    # The sup-norm rule ||d|| < tol (1 - gamma) / (2 gamma) needs about
    # log(tol (1 - gamma) / (2 gamma) / ||d_0||) / log(gamma) ~ 2000 sweeps here.
    assert result.converged and result.iterations < 100


def test_undiscounted_mdp_with_a_never_ending_policy_is_not_certified() -> None:
    # State 0: "wait" loops forever for 0; "exit" pays 1 and ends. V* = [1, 0], but
    # Q*(0, wait) = 0 + V*(0) = 1 ties with "exit": being greedy for V* does not rule out
    # the never-ending policy (worth 0), so no bound can be certified from the sweeps.
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.array([[0.0, 1.0], [0.0, 0.0]])
    result = value_iteration(FiniteMDP(P, R, 1.0, terminal=np.array([False, True])))
    assert not result.converged and result.error_bound == np.inf
    np.testing.assert_allclose(result.V, [1.0, 0.0])
    np.testing.assert_allclose(result.Q[0], [1.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"tol": 0.0}, ValueError, r"tol = 0.0, expected a finite number > 0"),
        ({"tol": float("nan")}, ValueError, "expected a finite number > 0"),
        ({"max_iter": 0}, ValueError, r"max_iter = 0, expected an int >= 1"),
        ({"max_iter": 2.5}, ValueError, "expected an int >= 1"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message: str) -> None:
    P, R = random_mdp(3, 2, seed=0)
    with pytest.raises(error, match=message):
        value_iteration(FiniteMDP(P, R, 0.9), **kwargs)


def test_rejects_a_non_mdp() -> None:
    with pytest.raises(TypeError, match="mdp must be a FiniteMDP"):
        value_iteration(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(("reward", "gamma"), [(1e308, 0.9), (1e303, 0.99), (-1e306, 0.5)])
def test_rewards_whose_discounted_sum_overflows_are_refused(reward: float, gamma: float) -> None:
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = P[1, 0, 0] = 1.0
    mdp = FiniteMDP(P, np.full((2, 1), reward), gamma)
    with pytest.raises(ValueError, match=r"overflow float64 in value iteration; scale the rewards"):
        value_iteration(mdp)


def test_undiscounted_rewards_that_overflow_over_the_horizon_are_refused() -> None:
    # Two steps on average before the end: 1e307 per step overflows once the margin is added.
    P = np.zeros((2, 1, 2))
    P[0, 0, :] = 0.5
    mdp = FiniteMDP(P, np.full((2, 1), 1e307), 1.0, terminal=np.array([False, True]))
    with pytest.raises(ValueError, match=r"gamma = 1 .* overflow float64"):
        value_iteration(mdp)


def test_huge_rewards_below_the_overflow_limit_give_finite_values() -> None:
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = P[1, 0, 0] = 1.0
    result = value_iteration(FiniteMDP(P, np.full((2, 1), 1e300), 0.9))
    np.testing.assert_allclose(result.V, 1e301)
    assert result.converged
