"""FiniteMDP: input forms, stored model, from_transitions and validation messages."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from agents.mdp import ROW_SUM_TOL, FiniteMDP


def random_dense_mdp(n_states: int, n_actions: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``P`` ``(S, A, S)`` with some zero entries and ``R`` ``(S, A)``."""
    rng = np.random.default_rng(seed)
    shape = (n_states, n_actions, n_states)
    P = rng.random(shape) * (rng.random(shape) < 0.6)
    P[..., 0] += 1e-3  # no all-zero row
    P /= P.sum(axis=2, keepdims=True)
    return P, rng.normal(size=(n_states, n_actions))


def valid_inputs() -> tuple[np.ndarray, np.ndarray]:
    return random_dense_mdp(5, 3, seed=0)


# --- input forms and the stored model ------------------------------------------------------


def test_stores_p_as_csr_with_row_s_times_a_plus_a() -> None:
    P, R = valid_inputs()
    mdp = FiniteMDP(P, R, 0.9)
    assert (mdp.n_states, mdp.n_actions, mdp.gamma) == (5, 3, 0.9)
    assert isinstance(mdp.P, sp.csr_array) and mdp.P.shape == (15, 5)
    np.testing.assert_allclose(mdp.P.toarray().reshape(5, 3, 5), P, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(mdp.R, R)
    assert not mdp.episodic and not mdp.terminal.any()


def test_dense_and_sparse_inputs_store_the_same_model() -> None:
    P, R = valid_inputs()
    dense = FiniteMDP(P, R, 0.9)
    for fmt in (sp.csr_array, sp.csr_matrix, sp.coo_array, sp.csc_matrix):
        sparse = FiniteMDP(fmt(P.reshape(15, 5)), R, 0.9)
        assert (sparse.P != dense.P).nnz == 0
        np.testing.assert_array_equal(sparse.R, dense.R)


def test_transition_rewards_are_reduced_to_expected_rewards() -> None:
    P, _ = valid_inputs()
    R3 = np.random.default_rng(1).normal(size=(5, 3, 5))
    mdp = FiniteMDP(P, R3, 0.9)
    np.testing.assert_allclose(mdp.R, (P * R3).sum(axis=2), rtol=1e-13, atol=1e-15)
    sparse = FiniteMDP(sp.csr_array(P.reshape(15, 5)), R3, 0.9)
    np.testing.assert_allclose(sparse.R, mdp.R, rtol=1e-13, atol=1e-15)


def test_rows_within_tolerance_are_rescaled_to_sum_to_one() -> None:
    P, R = valid_inputs()
    P[2, 1] *= 1 + 0.5 * ROW_SUM_TOL
    mdp = FiniteMDP(P, R, 0.9)
    np.testing.assert_allclose(mdp.P.sum(axis=1), 1.0, rtol=0, atol=1e-15)


def test_terminal_states_are_absorbing_with_no_reward_and_unchecked_rows() -> None:
    P, R = valid_inputs()
    P[4] = 0.0  # a terminal state may have no outgoing transitions at all
    terminal = np.array([False, False, False, False, True])
    mdp = FiniteMDP(P, R, 1.0, terminal=terminal)
    assert mdp.episodic
    np.testing.assert_array_equal(mdp.terminal, terminal)
    dense = mdp.P.toarray().reshape(5, 3, 5)
    assert not dense[4].any() and not mdp.R[4].any()
    np.testing.assert_allclose(dense[:4], P[:4], rtol=1e-15)


def test_stored_arrays_are_read_only() -> None:
    P, R = valid_inputs()
    mdp = FiniteMDP(P, R, 0.9)
    with pytest.raises(ValueError):
        mdp.R[0, 0] = 1.0
    with pytest.raises(ValueError):
        mdp.P.data[0] = 1.0


# --- from_transitions ----------------------------------------------------------------------


def test_from_transitions_drops_terminated_mass_but_keeps_its_reward() -> None:
    table = {
        0: {
            0: [(0.5, 1, 1.0, False), (0.25, 1, 3.0, False), (0.25, 0, 2.0, True)],
            1: [(1.0, 0, -1.0, False)],
        },
        1: {0: [(1.0, 1, 0.0, True)], 1: [(1.0, 0, 0.5, False)]},
    }
    mdp = FiniteMDP.from_transitions(table, n_states=2, n_actions=2, gamma=1.0)
    assert mdp.episodic and not mdp.terminal.any()
    P = mdp.P.toarray().reshape(2, 2, 2)
    # (0, 0): the two entries to state 1 are summed; the terminated quarter is dropped.
    np.testing.assert_allclose(P[0, 0], [0.0, 0.75])
    np.testing.assert_allclose(P[0, 1], [1.0, 0.0])
    np.testing.assert_allclose(P[1, 0], [0.0, 0.0])
    np.testing.assert_allclose(P[1, 1], [1.0, 0.0])
    np.testing.assert_allclose(mdp.R, [[0.5 + 0.75 + 0.5, -1.0], [0.0, 0.5]])


def test_from_transitions_accepts_gymnasium_toy_text_tables() -> None:
    gym = pytest.importorskip("gymnasium")
    env = gym.make("CliffWalking-v1").unwrapped  # next states there are numpy ints
    mdp = FiniteMDP.from_transitions(env.P, env.observation_space.n, env.action_space.n, 0.9)
    assert mdp.P.shape == (48 * 4, 48)
    assert mdp.episodic  # reaching the goal terminates


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({0: {0: [(1.0, 0, 0.0, False)]}}, r"P_dict has 1 states, expected n_states=2"),
        ([{0: [(1.0, 0, 0.0, False)]}, {}], r"P_dict\[1\] has 0 actions, expected n_actions=1"),
        (
            [{0: [(0.7, 1, 0.0, False)]}, {0: [(1.0, 0, 0.0, False)]}],
            r"P\[0, 0\] sums to 0.7, expected 1 \(tolerance 1e-8\)",
        ),
        (
            [{0: [(1.0, 0, 0.0, False)]}, {0: [(1.5, 0, 0.0, False), (-0.5, 1, 0.0, False)]}],
            r"P_dict\[1\]\[0\]\[1\] has probability -0.5, expected a finite number >= 0",
        ),
        (
            [{0: [(1.0, 2, 0.0, False)]}, {0: [(1.0, 0, 0.0, False)]}],
            r"P_dict\[0\]\[0\]\[0\] has next state 2, expected an int in \[0, 2\)",
        ),
        (
            [{0: [(1.0, 0, float("nan"), False)]}, {0: [(1.0, 0, 0.0, False)]}],
            r"P_dict\[0\]\[0\]\[0\] has reward nan, expected a finite number",
        ),
        (
            [{0: [(1.0, 0, 0.0)]}, {0: [(1.0, 0, 0.0, False)]}],
            r"expected \(prob, next_state, reward, terminated\)",
        ),
    ],
)
def test_from_transitions_rejects_malformed_tables(table, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FiniteMDP.from_transitions(table, n_states=2, n_actions=1, gamma=0.9)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([{0: [("1.0", 0, 0.0, False)]}], r"P_dict\[0\]\[0\]\[0\] has probability '1.0', expected"),
        ([{0: [(True, 0, 0.0, False)]}], r"has probability True, expected a finite number"),
        ([{0: [(1.0, True, 0.0, False)]}], r"has next state True, expected an int in \[0, 1\)"),
        ([{0: [(1.0, 0.0, 0.0, False)]}], r"has next state 0.0, expected an int"),
        ([{0: [(1.0, 0, "2", False)]}], r"has reward '2', expected a finite number"),
        ([{0: [(1.0, 0, 0.0, "no")]}], r"has terminated flag 'no', expected True or False"),
        ([{0: [(1.0, 0, 0.0, None)]}], r"has terminated flag None, expected True or False"),
        ([{0: [(None, 0, 0.0, False)]}], r"has probability None, expected"),
        ([{0: [None]}], r"P_dict\[0\]\[0\]\[0\] = None: expected \(prob, next_state"),
        ([{0: None}], r"P_dict\[0\]\[0\] is None, expected a list of \(prob"),
        ([None], r"P_dict\[0\] is None, expected a mapping or sequence of the 1 actions"),
        (None, r"P_dict must be a mapping or sequence of states, got None"),
        ("x", r"P_dict must be a mapping or sequence of states, got 'x'"),
    ],
)
def test_from_transitions_names_entries_of_the_wrong_type(table, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FiniteMDP.from_transitions(table, n_states=1, n_actions=1, gamma=0.9)


def test_from_transitions_checks_the_table_before_allocating_for_it() -> None:
    table = [{0: [(1.0, 0, 0.0, False)]}]
    # S*A = 10^12 would be 7.3 TiB of rewards; the table's size is refused first.
    with pytest.raises(ValueError, match=r"P_dict\[0\] has 1 actions, expected n_actions=10+"):
        FiniteMDP.from_transitions(table, 1, 10**12, 0.9)


@pytest.mark.parametrize(
    ("P", "R", "message"),
    [
        ([[[1.0, 0.0]], [[0.0]]], np.zeros((2, 1)), r"P is ragged .* expected a dense \(S, A, S\)"),
        (np.ones((1, 1, 1)), [[0.0, 1.0], [2.0]], r"R is ragged .* expected \(1, 1\) or"),
        (np.ones((1, 1, 1)), [[None]], r"R has dtype object, expected real numbers"),
        (np.ones((1, 1, 1)), [["1.0"]], r"R has dtype <U3, expected real numbers"),
        (np.ones((1, 1, 1)), [[True]], r"R has dtype bool, expected real numbers"),
        ([[[None]]], np.zeros((1, 1)), r"P has dtype object, expected real numbers"),
    ],
)
def test_ragged_or_non_numeric_arrays_get_a_clear_error(P, R, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FiniteMDP(P, R, 0.9)


def test_ragged_terminal_mask_gets_a_clear_error() -> None:
    P, R = valid_inputs()
    with pytest.raises(ValueError, match=r"terminal is ragged .* a boolean mask of shape \(5,\)"):
        FiniteMDP(P, R, 0.9, terminal=[[True], [False, True]])


def test_expected_reward_that_overflows_is_refused() -> None:
    # A row within the tolerance above 1 times the largest float is beyond float64.
    P = np.array([[[0.5 + 5e-9, 0.5]], [[0.5, 0.5]]])
    R = np.full((2, 1, 2), np.finfo(np.float64).max)
    with pytest.raises(ValueError, match=r"R\[0, 0\] = inf: the expected reward overflows"):
        FiniteMDP(P, R, 0.9)


def test_from_transitions_with_gamma_one_needs_a_terminated_transition() -> None:
    table = [{0: [(1.0, 1, 0.0, False)]}, {0: [(1.0, 0, 0.0, False)]}]
    with pytest.raises(ValueError, match="gamma = 1 .* needs episodes that end"):
        FiniteMDP.from_transitions(table, n_states=2, n_actions=1, gamma=1.0)


# --- validation messages -------------------------------------------------------------------


def test_rejects_dense_p_of_wrong_shape() -> None:
    _, R = valid_inputs()
    with pytest.raises(ValueError, match=r"dense P has shape \(5, 3, 4\), expected \(S, A, S\)"):
        FiniteMDP(np.full((5, 3, 4), 0.25), R, 0.9)
    with pytest.raises(ValueError, match=r"dense P has shape \(15, 5\), expected \(S, A, S\)"):
        FiniteMDP(np.full((15, 5), 0.2), R, 0.9)


def test_rejects_sparse_p_whose_rows_are_not_a_multiple_of_its_columns() -> None:
    _, R = valid_inputs()
    with pytest.raises(ValueError, match=r"sparse P has shape \(14, 5\), expected \(S\*A, S\)"):
        FiniteMDP(sp.csr_array(np.full((14, 5), 0.2)), R, 0.9)


def test_rejects_reward_of_wrong_shape_and_says_what_is_accepted() -> None:
    P, _ = valid_inputs()
    with pytest.raises(ValueError, match=r"R has shape \(3, 5\), expected \(5, 3\) .* \(5, 3, 5\)"):
        FiniteMDP(P, np.zeros((3, 5)), 0.9)


def test_rejects_negative_probability_naming_state_action_and_next_state() -> None:
    P, R = valid_inputs()
    P[2, 1, 3] = -0.1
    P[2, 1, 0] += 0.1
    with pytest.raises(ValueError, match=r"P\[2, 1, 3\] = -0.1 is negative"):
        FiniteMDP(P, R, 0.9)


def test_rejects_row_not_summing_to_one_naming_state_and_action() -> None:
    P, R = valid_inputs()
    P[3, 1] *= 0.7
    P[4, 0] *= 2.0
    expected = r"P\[3, 1\] sums to 0.7, expected 1 \(tolerance 1e-8\); 1 more rows are off"
    with pytest.raises(ValueError, match=expected):
        FiniteMDP(P, R, 0.9)
    with pytest.raises(ValueError, match=r"P\[3, 1\] sums to 0.7"):
        FiniteMDP(sp.csr_array(P.reshape(15, 5)), R, 0.9)


def test_rejects_row_just_outside_the_tolerance() -> None:
    P, R = valid_inputs()
    P[0, 2] *= 1 + 3 * ROW_SUM_TOL
    with pytest.raises(ValueError, match=r"P\[0, 2\] sums to 1.00000003"):
        FiniteMDP(P, R, 0.9)


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan"), float("inf")])
def test_rejects_gamma_out_of_range(gamma: float) -> None:
    P, R = valid_inputs()
    with pytest.raises(ValueError, match=r"gamma = .* is out of range: expected 0 <= gamma <= 1"):
        FiniteMDP(P, R, gamma)


def test_rejects_non_numeric_gamma() -> None:
    P, R = valid_inputs()
    with pytest.raises(ValueError, match="gamma must be a real number"):
        FiniteMDP(P, R, "0.9")


def test_rejects_gamma_one_without_terminal_states() -> None:
    P, R = valid_inputs()
    with pytest.raises(ValueError, match=r"gamma = 1 \(undiscounted\) needs episodes that end"):
        FiniteMDP(P, R, 1.0)
    with pytest.raises(ValueError, match="needs episodes that end"):
        FiniteMDP(P, R, 1.0, terminal=np.zeros(5, dtype=bool))


def test_rejects_nan_probability_naming_the_entry() -> None:
    P, R = valid_inputs()
    P[1, 2, 4] = np.nan
    with pytest.raises(ValueError, match=r"P\[1, 2, 4\] = nan is not finite"):
        FiniteMDP(P, R, 0.9)


def test_rejects_nan_reward_naming_the_entry() -> None:
    P, R = valid_inputs()
    R[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"R\[4, 0\] = nan is not finite"):
        FiniteMDP(P, R, 0.9)
    R3 = np.zeros((5, 3, 5))
    R3[0, 1, 2] = np.inf
    with pytest.raises(ValueError, match=r"R\[0, 1, 2\] = inf is not finite"):
        FiniteMDP(P, R3, 0.9)


def test_rejects_terminal_mask_of_wrong_shape_or_dtype() -> None:
    P, R = valid_inputs()
    with pytest.raises(ValueError, match=r"expected a boolean mask of shape \(5,\)"):
        FiniteMDP(P, R, 0.9, terminal=np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match=r"expected a boolean mask of shape \(5,\)"):
        FiniteMDP(P, R, 0.9, terminal=[0, 0, 0, 0, 1])
