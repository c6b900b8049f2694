"""Finite (tabular) Markov decision processes.

:class:`FiniteMDP` holds a validated model with ``S`` states and ``A`` actions:

* ``P``: transition probabilities, stored as a SciPy CSR matrix of shape ``(S*A, S)``
  whose row ``s*A + a`` is the distribution of the next state after action ``a`` in
  state ``s``;
* ``R``: expected immediate reward, shape ``(S, A)``;
* ``gamma``: discount factor in ``[0, 1]``.

Episodes may end. Ending is modelled as moving to an implicit absorbing state whose value
is 0, so it never needs an index of its own: the probability of ending is simply missing
from a row of ``P``. The stored ``P`` is therefore the *continuation* matrix,
``P[s*A + a, s'] = Pr(next state is s' and the episode goes on)``, with row sums ``<= 1``.
Two inputs produce such rows:

* a ``terminal`` mask: a terminal state is absorbing with value 0, so its rows of ``P``
  and its rewards are dropped (stored as zero);
* :meth:`FiniteMDP.from_transitions` with Gymnasium's ``terminated`` flag: the mass of a
  terminated transition is dropped from ``P`` (its reward is kept in ``R``), so the next
  state's value counts as 0 for that transition only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

__all__ = ["FiniteMDP", "ROW_SUM_TOL"]

#: Accepted deviation of a probability row sum from 1: ``|sum_s' P(s'|s, a) - 1| <= 1e-8``.
#: Since the target is 1 this is both the absolute and the relative error. It is far above
#: float64 rounding (a row of 10^6 terms accumulates at most ~1e-10), yet catches every
#: modelling mistake. Accepted rows are then rescaled to sum to 1 to working precision,
#: so the solvers' error bounds hold for the stored model.
ROW_SUM_TOL = 1e-8

_TOL_TEXT = f"{ROW_SUM_TOL:g}".replace("e-0", "e-")  # "1e-8" rather than "1e-08"

# Gymnasium toy-text layout: P[s][a] = [(prob, next_state, reward, terminated), ...].
_TransitionTable = Mapping[int, Any] | Sequence[Any]


class FiniteMDP:
    """A validated finite MDP with sparse transitions.

    Args:
        P: transition probabilities, either dense with shape ``(S, A, S)``
            (``P[s, a, s']``) or a ``scipy.sparse`` matrix of shape ``(S*A, S)`` whose row
            ``s*A + a`` holds ``P(. | s, a)``. Entries must be finite and non-negative and
            every row of a non-terminal state must sum to 1 within :data:`ROW_SUM_TOL`.
        R: rewards, either expected rewards ``R[s, a]`` with shape ``(S, A)`` or
            transition rewards ``R[s, a, s']`` with shape ``(S, A, S)``, which are reduced
            to ``R[s, a] = sum_s' P[s, a, s'] R[s, a, s']``. Must be finite.
        gamma: discount factor in ``[0, 1]``; ``gamma == 1`` (undiscounted, episodic) is
            only accepted when the MDP has terminal states.
        terminal: optional boolean mask of shape ``(S,)``. Terminal states are absorbing
            and worth 0: their rows of ``P`` and their rewards are ignored (they are
            neither checked for summing to 1 nor used; they may be all zero).

    Raises:
        ValueError: with a message naming the offending state ``s`` and action ``a``
            (and next state ``s'`` where relevant) and what is accepted.
    """

    __slots__ = ("_P", "_R", "_gamma", "_terminal", "_episodic")

    def __init__(
        self,
        P: ArrayLike | sp.sparray | sp.spmatrix,
        R: ArrayLike,
        gamma: float,
        terminal: ArrayLike | None = None,
    ) -> None:
        P_csr, n_states, n_actions = _as_csr(P)
        term = _check_terminal(terminal, n_states)
        episodic = bool(term.any())
        _check_gamma(gamma, episodic)
        _check_entries(P_csr, n_actions)
        term_rows = np.repeat(term, n_actions)
        row_sums = P_csr @ np.ones(n_states)  # a mat-vec: faster than P_csr.sum(axis=1)
        _check_row_sums(row_sums, n_actions, skip_rows=term_rows)
        R_sa = _expected_reward(R, P_csr, n_states, n_actions)

        # Rescale rows to sum to 1 to working precision, then drop terminal rows: the
        # stored P is the continuation matrix (see the module docstring).
        scale = np.where(term_rows, 0.0, 1.0 / np.where(term_rows, 1.0, row_sums))
        _scale_rows(P_csr, scale)
        R_sa[term] = 0.0
        self._init(P_csr, R_sa, float(gamma), term, episodic)

    def _init(
        self,
        P: sp.csr_array,
        R: NDArray[np.float64],
        gamma: float,
        terminal: NDArray[np.bool_],
        episodic: bool,
    ) -> None:
        P.sort_indices()
        P.data.setflags(write=False)
        R.setflags(write=False)
        terminal.setflags(write=False)
        self._P, self._R, self._gamma = P, R, gamma
        self._terminal, self._episodic = terminal, episodic

    @classmethod
    def from_model(cls, model: Any, gamma: float) -> FiniteMDP:
        """The MDP of a model with attributes ``P`` (``(S*A, S)``), ``R`` (``(S, A)``) and
        ``terminal`` (``(S,)``), e.g. ``LaneGridEnv.model()``, discounted by ``gamma``."""
        return cls(model.P, model.R, gamma, terminal=model.terminal)

    @classmethod
    def from_transitions(
        cls,
        P_dict: _TransitionTable,
        n_states: int,
        n_actions: int,
        gamma: float,
    ) -> FiniteMDP:
        """Build an MDP from a Gymnasium toy-text table ``P[s][a] = [(p, s', r, terminated)]``.

        Terminated transitions are handled with a per-transition continuation mask: their
        probability is dropped from the stored ``P`` (the episode ends, so ``s'`` is worth
        0 for that transition) while their reward still counts in ``R[s, a]``. The next
        state of a terminated transition is not used. Several entries with the same
        ``s'`` are added up. States are not marked terminal, so ``terminal`` is all False.

        Args:
            P_dict: mapping or sequence indexed as ``P_dict[s][a]`` for every
                ``s < n_states`` and ``a < n_actions``, each a list of
                ``(probability, next_state, reward, terminated)`` tuples whose
                probabilities sum to 1 within :data:`ROW_SUM_TOL`.
            n_states: number of states ``S``.
            n_actions: number of actions ``A``.
            gamma: discount factor in ``[0, 1]``; 1 needs some terminated transition.

        Returns:
            The validated MDP.

        Raises:
            ValueError: naming the state, action and transition that is malformed.
        """
        n_states, n_actions = _check_size(n_states, "n_states"), _check_size(n_actions, "n_actions")
        if not _is_table(P_dict):
            raise ValueError(f"P_dict must be a mapping or sequence of states, got {P_dict!r}")
        if len(P_dict) != n_states:
            raise ValueError(f"P_dict has {len(P_dict)} states, expected n_states={n_states}")
        # The table's shape first: nothing of size S*A is allocated for a table that lacks it.
        tables = []
        for s in range(n_states):
            actions = _entry(P_dict, s, "P_dict", "state")
            if not _is_table(actions):
                raise ValueError(
                    f"P_dict[{s}] is {actions!r}, expected a mapping or sequence of the "
                    f"{n_actions} actions"
                )
            if len(actions) != n_actions:
                raise ValueError(
                    f"P_dict[{s}] has {len(actions)} actions, expected n_actions={n_actions}"
                )
            tables.append(actions)
        rows: list[int] = []
        cols: list[int] = []
        probs: list[float] = []
        R_sa = np.zeros((n_states, n_actions))
        mass = np.zeros(n_states * n_actions)
        ended = 0.0
        for s, actions in enumerate(tables):
            for a in range(n_actions):
                transitions = _entry(actions, a, f"P_dict[{s}]", "action")
                if not _is_table(transitions) or isinstance(transitions, Mapping):
                    raise ValueError(
                        f"P_dict[{s}][{a}] is {transitions!r}, expected a list of "
                        "(prob, next_state, reward, terminated)"
                    )
                row = s * n_actions + a
                for i, item in enumerate(transitions):
                    where = f"P_dict[{s}][{a}][{i}]"
                    prob, nxt, reward, done = _transition(item, where, n_states)
                    mass[row] += prob
                    R_sa[s, a] += prob * reward
                    if done:
                        ended += prob
                    else:
                        rows.append(row)
                        cols.append(nxt)
                        probs.append(prob)
        _check_finite_rewards(R_sa)
        _check_row_sums(mass, n_actions, skip_rows=np.zeros(mass.size, dtype=bool))
        P_csr = sp.csr_array(
            sp.coo_array((probs, (rows, cols)), shape=(n_states * n_actions, n_states))
        )  # duplicates (s, a, s') are summed by the conversion
        _scale_rows(P_csr, 1.0 / mass)  # as in __init__
        episodic = ended > 0
        _check_gamma(gamma, episodic)
        mdp = cls.__new__(cls)
        mdp._init(P_csr, R_sa, float(gamma), np.zeros(n_states, dtype=bool), episodic)
        return mdp

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return self._R.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions ``A``."""
        return self._R.shape[1]

    @property
    def gamma(self) -> float:
        """Discount factor in ``[0, 1]``."""
        return self._gamma

    @property
    def P(self) -> sp.csr_array:
        """Continuation matrix, CSR ``(S*A, S)``, row ``s*A + a``; rows sum to ``<= 1``.

        Rows of terminal states are zero and terminated transitions are left out, so
        ``1 - row sum`` is the probability that the episode ends. Read-only.
        """
        return self._P

    @property
    def R(self) -> NDArray[np.float64]:
        """Expected immediate reward ``(S, A)`` (zero for terminal states). Read-only."""
        return self._R

    @property
    def terminal(self) -> NDArray[np.bool_]:
        """Terminal-state mask ``(S,)``. Read-only."""
        return self._terminal

    @property
    def episodic(self) -> bool:
        """True when episodes can end (terminal states or terminated transitions)."""
        return self._episodic

    def __repr__(self) -> str:
        return (
            f"FiniteMDP(n_states={self.n_states}, n_actions={self.n_actions}, "
            f"gamma={self.gamma}, nnz={self._P.nnz}, episodic={self.episodic})"
        )


# --- validation helpers ------------------------------------------------------------------


def _scale_rows(P: sp.csr_array, scale: NDArray[np.float64]) -> None:
    """Multiply row ``i`` of ``P`` by ``scale[i]`` in place and drop the zeros it makes.

    Factors within 1e-14 of 1 are a rounding-level change and are skipped, which spares
    the (slow) expansion of ``scale`` to one factor per entry for well-normalised input.
    """
    scale = np.where(np.abs(scale - 1.0) <= 1e-14, 1.0, scale)
    if np.any(scale != 1.0):
        P.data *= np.repeat(scale, np.diff(P.indptr))
        P.eliminate_zeros()


def _is_table(x: object) -> bool:
    """A mapping or sequence (not a string) that ``from_transitions`` can index."""
    return isinstance(x, Mapping | Sequence | np.ndarray) and not isinstance(x, str | bytes)


def _entry(table: Any, key: int, name: str, what: str) -> Any:
    try:
        return table[key]
    except (KeyError, IndexError) as err:
        raise ValueError(f"{name} has no entry for {what} {key}") from err


def _real(x: object) -> bool:
    """A real number: Python or numpy int or float, but not a bool or a string."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _transition(item: object, where: str, n_states: int) -> tuple[float, int, float, bool]:
    """Validate one ``(prob, next_state, reward, terminated)`` entry of a transition table."""
    if not _is_table(item) or isinstance(item, Mapping) or len(item) != 4:
        raise ValueError(f"{where} = {item!r}: expected (prob, next_state, reward, terminated)")
    prob, nxt, reward, done = item
    if not (_real(prob) and np.isfinite(prob) and prob >= 0):
        raise ValueError(f"{where} has probability {prob!r}, expected a finite number >= 0")
    if not (_real(reward) and np.isfinite(reward)):
        raise ValueError(f"{where} has reward {reward!r}, expected a finite number")
    is_int = isinstance(nxt, int | np.integer) and not isinstance(nxt, bool)
    if not (is_int and 0 <= nxt < n_states):
        raise ValueError(f"{where} has next state {nxt!r}, expected an int in [0, {n_states})")
    if not isinstance(done, bool | np.bool_):
        raise ValueError(f"{where} has terminated flag {done!r}, expected True or False")
    return float(prob), int(nxt), float(reward), bool(done)


def _check_finite_rewards(R: NDArray[np.float64]) -> None:
    """Expected rewards ``(S, A)`` must be finite; finite inputs can still sum to inf."""
    bad = ~np.isfinite(R)
    if bad.any():
        s, a = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"R[{s}, {a}] = {R[s, a]}: the expected reward overflows float64; scale the "
            "rewards down"
        )


def _check_size(n: object, name: str) -> int:
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return int(n)


def _sa(row: int, n_actions: int) -> str:
    """Format flat row ``s*A + a`` as ``"s, a"``."""
    return f"{row // n_actions}, {row % n_actions}"


def _as_csr(P: object) -> tuple[sp.csr_array, int, int]:
    """Convert ``P`` to a float64 CSR ``(S*A, S)`` array; return it with ``S`` and ``A``."""
    if sp.issparse(P):
        n_rows, n_states = P.shape
        if n_states < 1 or n_rows < n_states or n_rows % n_states:
            raise ValueError(
                f"sparse P has shape {P.shape}, expected (S*A, S) with S >= 1 states, "
                "A >= 1 actions and row s*A + a holding P(. | s, a)"
            )
        P_csr = sp.csr_array(P, dtype=np.float64, copy=True)
        P_csr.sum_duplicates()
        return P_csr, n_states, n_rows // n_states
    arr = _as_array(P, "P", "a dense (S, A, S) array or a scipy.sparse (S*A, S) matrix")
    if arr.ndim != 3 or arr.shape[0] != arr.shape[2] or 0 in arr.shape:
        raise ValueError(
            f"dense P has shape {arr.shape}, expected (S, A, S) with P[s, a, s'] the "
            "probability of s -> s' under action a (or a scipy.sparse (S*A, S) matrix)"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"P has dtype {arr.dtype}, expected real numbers")
    n_states, n_actions = arr.shape[:2]
    flat = sp.csr_array(arr.reshape(n_states * n_actions, n_states), dtype=np.float64)
    return flat, n_states, n_actions


def _check_entries(P: sp.csr_array, n_actions: int) -> None:
    """Probabilities must be finite and non-negative; name the first bad ``(s, a, s')``."""
    for bad, what in ((~np.isfinite(P.data), "is not finite"), (P.data < 0, "is negative")):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            row = int(np.searchsorted(P.indptr, k, side="right") - 1)
            raise ValueError(
                f"P[{_sa(row, n_actions)}, {P.indices[k]}] = {P.data[k]} {what}: "
                f"probabilities must be finite and >= 0 ({int(bad.sum())} such entries)"
            )


def _check_row_sums(
    row_sums: NDArray[np.float64], n_actions: int, skip_rows: NDArray[np.bool_]
) -> None:
    """Each row ``s*A + a`` (unless skipped) must sum to 1 within :data:`ROW_SUM_TOL`."""
    bad = (np.abs(row_sums - 1.0) > ROW_SUM_TOL) & ~skip_rows
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        raise ValueError(
            f"P[{_sa(row, n_actions)}] sums to {row_sums[row]:.10g}, expected 1 "
            f"(tolerance {_TOL_TEXT})" + (f"; {more} more rows are off" if more else "")
        )


def _check_terminal(terminal: ArrayLike | None, n_states: int) -> NDArray[np.bool_]:
    if terminal is None:
        return np.zeros(n_states, dtype=bool)
    term = _as_array(terminal, "terminal", f"a boolean mask of shape ({n_states},)")
    if term.dtype != np.bool_ or term.shape != (n_states,):
        raise ValueError(
            f"terminal has shape {term.shape} and dtype {term.dtype}, "
            f"expected a boolean mask of shape ({n_states},)"
        )
    return term.copy()


def _expected_reward(
    R: ArrayLike, P: sp.csr_array, n_states: int, n_actions: int
) -> NDArray[np.float64]:
    """Validate ``R`` and reduce it to the expected reward ``(S, A)``."""
    arr = _as_array(R, "R", f"({n_states}, {n_actions}) or ({n_states}, {n_actions}, {n_states})")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"R has dtype {arr.dtype}, expected real numbers")
    arr = arr.astype(np.float64)
    if arr.shape == (n_states, n_actions):
        out = arr.copy()
    elif arr.shape == (n_states, n_actions, n_states):
        out = None  # reduced below, after the finiteness check
    else:
        raise ValueError(
            f"R has shape {arr.shape}, expected ({n_states}, {n_actions}) for R[s, a] or "
            f"({n_states}, {n_actions}, {n_states}) for R[s, a, s']"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"R[{', '.join(map(str, idx))}] = {arr[idx]} is not finite: rewards must be "
            f"finite ({int(bad.sum())} such entries)"
        )
    if out is None:
        # sum_s' P[s, a, s'] R[s, a, s'], touching only the stored (non-zero) entries of P.
        flat = arr.reshape(n_states * n_actions, n_states)
        rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
        weighted = P.data * flat[rows, P.indices]
        out = np.bincount(rows, weights=weighted, minlength=P.shape[0]).reshape(n_states, n_actions)
    _check_finite_rewards(out)
    return out


def _as_array(x: object, name: str, expected: str) -> np.ndarray:
    """``np.asarray(x)``, with ragged nesting reported by ``name`` rather than numpy."""
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(
            f"{name} is ragged (its nested lists differ in length): expected {expected}"
        ) from None


def _check_gamma(gamma: object, episodic: bool) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, int | float | np.integer | np.floating):
        raise ValueError(f"gamma must be a real number in [0, 1], got {gamma!r}")
    if not 0.0 <= float(gamma) <= 1.0:  # also rejects NaN
        raise ValueError(f"gamma = {gamma} is out of range: expected 0 <= gamma <= 1")
    if gamma == 1 and not episodic:
        raise ValueError(
            "gamma = 1 (undiscounted) needs episodes that end: pass a terminal mask with at "
            "least one True state (or terminated transitions), or use gamma < 1"
        )
