"""``lanesim/LaneGrid-v0``: a tabular driving task with an exact, published model.

The road is seen from the ego car: a few lanes, a window of road cells around the ego and, in
every lane, at most one other car. Everything is discrete, so the environment exposes its
transition model the way Gymnasium's toy-text environments do (``env.unwrapped.P[s][a]`` is a
list of ``(probability, next_state, reward, terminated)``) and :meth:`LaneGridEnv.model`
returns it as arrays, which ``agents.mdp.FiniteMDP.from_model`` takes for value iteration.
:meth:`LaneGridEnv.step` samples from exactly ``P[s][a]`` with ``self.np_random``, so a
policy computed from the model and one learnt from interaction face the same task.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lanesim.envs.actions import (
    FASTER,
    LANE_LEFT,
    LANE_RIGHT,
    META_ACTIONS,
    SLOWER,
    integer_actions,
)
from lanesim.envs.driving import check_render_mode
from lanesim.envs.options import OptionError, refuse_reset_options, unknown_option

__all__ = ["LaneGridEnv", "LaneGridOptions", "TabularModel"]

MAX_STATES = 200_000
RENDER_MODES = ["ansi"]


class TabularModel(NamedTuple):
    """A finite model with ``S`` states and ``A`` actions, as plain arrays."""

    P: Any  # scipy.sparse CSR (S*A, S): row s*A + a is the next-state distribution of (s, a)
    R: np.ndarray  # (S, A) expected immediate reward
    terminal: np.ndarray  # (S,) bool: absorbing states worth 0


@dataclass(frozen=True)
class LaneGridOptions:
    """The options of :class:`LaneGridEnv`; each is a ``gym.make`` keyword."""

    lanes: int = 3  # lanes, 0 = leftmost
    speeds: int = 3  # ego speed levels: 1 .. speeds cells per step
    traffic: tuple[float, ...] = (0.25, 0.5, 0.25)  # P(a car moves 1, 2, ... cells in a step)
    ahead: int = 6  # cells seen ahead of the ego
    behind: int = 2  # cells seen behind the ego
    spawn_prob: float = 0.3  # P(a car enters an empty lane in a step), half front, half back
    density: float = 0.5  # P(a lane holds a car at the start)
    speed_reward: float = 1.0  # reward per step at top speed (scaled by speed / speeds)
    lane_change_reward: float = -0.1  # per lane change
    collision_reward: float = -10.0  # on the collision step (replaces the speed reward)
    max_steps: int = 200  # steps before truncation

    @property
    def cells(self) -> int:
        """Values of one lane's code: empty, or a car at ``-behind .. ahead``."""
        return self.ahead + self.behind + 2

    @property
    def n_states(self) -> int:
        return self.lanes * self.speeds * self.cells**self.lanes


OPTION_RANGES = {
    "lanes": "an integer in [2, 5]",
    "speeds": "an integer in [1, 5]",
    "traffic": "a list of 1 to 5 probabilities (car moves 1, 2, ... cells) summing to 1",
    "ahead": "an integer in [1, 15]",
    "behind": "an integer in [1, 10]",
    "spawn_prob": "a number in [0, 1]",
    "density": "a number in [0, 1]",
    "speed_reward": "a finite number >= 0",
    "lane_change_reward": "a finite number <= 0",
    "collision_reward": "a finite number <= 0",
    "max_steps": "an integer >= 1",
}


def _bad(name: str, value: Any) -> OptionError:
    return OptionError(f"option {name!r} must be {OPTION_RANGES[name]}, got {value!r}")


def _int_in(name: str, value: Any, lo: int, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise _bad(name, value)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise _bad(name, value)
    if not math.isfinite(value):
        raise _bad(name, value)
    return float(value)


def make_lanegrid_options(**options: Any) -> LaneGridOptions:
    """Validated :class:`LaneGridOptions` from keywords.

    Raises:
        OptionError: for an unknown keyword (with a suggestion) or a value out of range
            (naming the option and what it accepts).
    """
    names = [f.name for f in dataclasses.fields(LaneGridOptions)]
    for key in options:
        if key not in names:
            raise unknown_option(key, names)
    for name in ("lanes", "speeds", "ahead", "behind", "max_steps"):
        if name in options:
            lo, hi = {"lanes": (2, 5), "speeds": (1, 5), "ahead": (1, 15), "behind": (1, 10),
                      "max_steps": (1, math.inf)}[name]
            _int_in(name, options[name], lo, hi)
            options[name] = int(options[name])
    for name in ("spawn_prob", "density"):
        if name in options and not 0.0 <= _real(name, options[name]) <= 1.0:
            raise _bad(name, options[name])
    if "speed_reward" in options and _real("speed_reward", options["speed_reward"]) < 0:
        raise _bad("speed_reward", options["speed_reward"])
    for name in ("lane_change_reward", "collision_reward"):
        if name in options and _real(name, options[name]) > 0:
            raise _bad(name, options[name])
    if "traffic" in options:
        t = options["traffic"]
        if not isinstance(t, list | tuple | np.ndarray) or not 1 <= len(t) <= 5:
            raise _bad("traffic", t)
        probs = tuple(_real("traffic", p) for p in t)
        if min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-9:
            raise _bad("traffic", t)
        options["traffic"] = probs
    for name in ("spawn_prob", "density", "speed_reward", "lane_change_reward",
                 "collision_reward"):
        if name in options:
            options[name] = float(options[name])
    o = LaneGridOptions(**options)
    if o.n_states > MAX_STATES:
        raise OptionError(
            f"lanes={o.lanes}, speeds={o.speeds}, ahead={o.ahead}, behind={o.behind} give "
            f"{o.n_states:,} states, more than the {MAX_STATES:,} allowed; reduce lanes, ahead "
            "or behind"
        )
    return o


class _TransitionTable(Mapping):
    """``P[s][a]``: built per state on first access (vectorized) and cached.

    Behaves like the dict of dicts of Gymnasium's toy-text environments: ``len(P)`` is the
    number of states and ``P[s]`` maps each action to its list of
    ``(probability, next_state, reward, terminated)``.
    """

    def __init__(self, env: LaneGridEnv) -> None:
        self._env = env
        self._cache: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = {}
        self._cumulative: dict[int, list[list[float]]] = {}

    def __len__(self) -> int:
        return self._env.n_states

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._env.n_states))

    def __getitem__(self, s: int) -> dict[int, list[tuple[float, int, float, bool]]]:
        row = self._cache.get(s)
        if row is None:
            if isinstance(s, bool) or not isinstance(s, int | np.integer) or not (
                0 <= s < self._env.n_states
            ):
                raise KeyError(s)
            s = int(s)
            row = self._env._transition_lists(s)
            self._cache[s] = row
            self._cumulative[s] = [list(accumulate(t[0] for t in row[a])) for a in range(5)]
        return row

    def cumulative(self, s: int, a: int) -> list[float]:
        """Running sums of the probabilities of ``P[s][a]``, in its order (for sampling)."""
        if s not in self._cumulative:
            self[s]
        return self._cumulative[s][a]


class LaneGridEnv(gym.Env):
    """A tabular lane-driving task: overtake stochastic traffic without colliding.

    ## Description
    The ego car drives on ``lanes`` parallel lanes and sees a window of road cells, from
    ``behind`` cells behind it to ``ahead`` cells ahead, in every lane. Each lane holds at most
    one other car in the window. Every step the ego moves at its speed level (1 to ``speeds``
    cells per step) and every other car independently moves 1, 2, ... cells with probabilities
    ``traffic``; positions are relative to the ego, so a slower car drifts back and a faster one
    comes closer. A car that leaves the window is gone; an empty lane receives a new car with
    probability ``spawn_prob`` (half of the time at the front edge, half at the back edge). A
    car that ends a step in the ego's cell, or passes through it, collides with the ego.

    The model is exact and public: ``env.unwrapped.P[s][a]`` is the list of
    ``(probability, next_state, reward, terminated)`` of Gymnasium's toy-text environments,
    ``env.unwrapped.model()`` the same model as arrays (:class:`TabularModel`; value iteration
    takes it as ``agents.mdp.FiniteMDP.from_model(model, gamma)``), and
    ``step`` samples the next state from exactly ``P[s][a]`` with ``self.np_random``.

    ## Action Space
    ``Discrete(5)``, the indices of lanesim's meta actions:

    | action | name | effect |
    |---|---|---|
    | 0 | ``LANE_LEFT`` | move one lane left (none at the leftmost lane) |
    | 1 | ``IDLE`` | keep lane and speed |
    | 2 | ``LANE_RIGHT`` | move one lane right (none at the rightmost lane) |
    | 3 | ``FASTER`` | one speed level up (stays at the top) |
    | 4 | ``SLOWER`` | one speed level down (stays at level 1) |

    A lane change is instantaneous: the ego is in the new lane for the whole step.

    ## Observation Space
    ``Discrete(n)`` with ``n = lanes × speeds × (ahead + behind + 2) ** lanes``; the
    observation is the state index

    ``s = (ego_lane × speeds + (speed − 1)) × C**lanes + Σ_i code_i × C**i``,
    ``C = ahead + behind + 2``,

    where lane ``i``'s ``code_i`` is 0 when it is empty and ``x + behind + 1`` for a car at
    ``x`` cells ahead of the ego (``-behind <= x <= ahead``; negative: behind).
    :meth:`decode` and :meth:`encode` convert. The default options give 9,000 states.

    ## Rewards
    Each step: ``speed_reward × speed / speeds`` (progress in lane), plus
    ``lane_change_reward`` when the ego changes lane; on a collision ``collision_reward``
    replaces the speed reward.

    ## Starting State
    The ego is in a uniformly random lane at the middle speed level ``(speeds + 1) // 2``;
    each lane independently holds a car with probability ``density``, at a uniformly random
    cell of the window, never in the ego's own cell. The distribution is
    ``env.unwrapped.initial_state_distrib``.

    ## Episode End
    ``terminated`` on a collision. A collision state (a car in the ego's cell) is absorbing:
    every action leads back to it with reward 0 and ``terminated=True``, as the holes of
    FrozenLake do. ``truncated`` after ``max_steps`` steps.

    ## Arguments
    ``gym.make("lanesim/LaneGrid-v0", render_mode=None, **options)``; ``render_mode`` is None
    or ``"ansi"`` (a text picture of the window). Options, with defaults:

    | option | default | accepted | meaning |
    |---|---|---|---|
    | ``lanes`` | 3 | 2 .. 5 | lanes |
    | ``speeds`` | 3 | 1 .. 5 | ego speed levels (cells per step) |
    | ``traffic`` | (0.25, 0.5, 0.25) | 1 to 5 probabilities, sum 1 | P(car moves 1, 2, ... cells) |
    | ``ahead`` | 6 | 1 .. 15 | cells seen ahead |
    | ``behind`` | 2 | 1 .. 10 | cells seen behind |
    | ``spawn_prob`` | 0.3 | [0, 1] | P(a car enters an empty lane) per step |
    | ``density`` | 0.5 | [0, 1] | P(a lane holds a car at the start) |
    | ``speed_reward`` | 1.0 | >= 0 | reward per step at top speed |
    | ``lane_change_reward`` | -0.1 | <= 0 | per lane change |
    | ``collision_reward`` | -10.0 | <= 0 | on a collision |
    | ``max_steps`` | 200 | >= 1 | steps before truncation |

    At most 200,000 states are allowed. An unknown keyword raises
    :class:`lanesim.envs.OptionError` naming it (with a suggestion); a bad value raises it
    naming the option and what it accepts.

    ## Info
    ``prob`` (probability of the sampled transition), ``crashed``, ``lane``, ``speed``.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        check_render_mode(render_mode, RENDER_MODES)
        self.options = make_lanegrid_options(**options)
        o = self.options
        self.render_mode = render_mode
        self.n_states = o.n_states
        self.n_actions = 5
        self.observation_space = spaces.Discrete(self.n_states)
        self.action_space = spaces.Discrete(self.n_actions)
        self._traffic_states = o.cells**o.lanes
        self._powers = o.cells ** np.arange(o.lanes, dtype=np.int64)
        self._traffic = np.array(o.traffic)
        self.P = _TransitionTable(self)
        self.initial_state_distrib = self._initial_distribution()
        self._initial_cdf = np.cumsum(self.initial_state_distrib)
        self.s = 0
        self.lastaction: int | None = None
        self.steps = 0
        self._crashed = False

    # ------------------------------------------------------------------ state codes
    def encode(self, lane: int, speed: int, cars: list[int | None]) -> int:
        """State index of the ego in ``lane`` at ``speed`` (1 .. speeds) with ``cars[i]`` the
        position (cells ahead, negative behind) of lane ``i``'s car or None."""
        o = self.options
        if not (0 <= lane < o.lanes and 1 <= speed <= o.speeds and len(cars) == o.lanes):
            raise ValueError(f"bad ego lane {lane}, speed {speed} or {len(cars)} car entries")
        t = 0
        for i, x in enumerate(cars):
            if x is not None and not -o.behind <= x <= o.ahead:
                raise ValueError(f"car position {x} outside the window [-{o.behind}, {o.ahead}]")
            t += (0 if x is None else x + o.behind + 1) * int(self._powers[i])
        return (lane * o.speeds + speed - 1) * self._traffic_states + t

    def decode(self, s: int) -> tuple[int, int, list[int | None]]:
        """``(lane, speed, cars)``, the inverse of :meth:`encode`."""
        lane, level, codes = self._decode(np.array([s]))
        b = self.options.behind
        cars = [None if c == 0 else int(c) - b - 1 for c in codes[0]]
        return int(lane[0]), int(level[0]) + 1, cars

    def _decode(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.options
        ego, t = np.divmod(s, self._traffic_states)
        lane, level = np.divmod(ego, o.speeds)
        codes = (t[:, None] // self._powers[None, :]) % o.cells
        return lane, level, codes

    def crash_states(self) -> np.ndarray:
        """Boolean mask ``(n_states,)`` of collision states (a car in the ego's cell)."""
        lane, _, codes = self._decode(np.arange(self.n_states))
        return codes[np.arange(self.n_states), lane] == self.options.behind + 1

    # ------------------------------------------------------------------ the model
    def _outcomes(self, states: np.ndarray, action):
        """All outcomes of ``action`` (an int, or one per state) in ``states`` ``(n,)``,
        unmerged and padded.

        Returns ``(prob, next_state, reward, terminated)``, each ``(n, M)`` with
        ``M = max(len(traffic), 3) ** lanes`` (padding has probability 0).
        """
        o = self.options
        n, L = len(states), o.lanes
        lane, level, codes = self._decode(states)
        crashed_now = codes[np.arange(n), lane] == o.behind + 1
        action = np.broadcast_to(np.asarray(action), (n,))
        side = np.where(action == LANE_LEFT, -1, np.where(action == LANE_RIGHT, 1, 0))
        new_lane = lane + side
        new_lane = np.where((new_lane >= 0) & (new_lane < L), new_lane, lane)
        changed = new_lane != lane
        dv = np.where(action == FASTER, 1, np.where(action == SLOWER, -1, 0))
        new_level = np.clip(level + dv, 0, o.speeds - 1)
        v = new_level + 1

        nt = len(self._traffic)
        M = max(nt, 3)
        present = codes > 0
        x = codes - o.behind - 1  # (n, L)
        move = np.arange(1, nt + 1)
        nx = x[:, :, None] + move[None, None, :] - v[:, None, None]  # (n, L, nt)
        in_ego_lane = (np.arange(L)[None, :] == new_lane[:, None])[:, :, None]
        lo, hi = np.minimum(x[:, :, None], nx), np.maximum(x[:, :, None], nx)
        hit = in_ego_lane & (lo <= 0) & (hi >= 0)  # ends in, or passes through, the ego's cell
        inside = (nx >= -o.behind) & (nx <= o.ahead)
        car_code = np.where(hit, o.behind + 1, np.where(inside, nx + o.behind + 1, 0))
        prob = np.zeros((n, L, M))
        code = np.zeros((n, L, M), dtype=np.int64)
        crash = np.zeros((n, L, M), dtype=bool)
        # Lanes with a car: it moves 1 .. nt cells.
        prob[:, :, :nt] = np.where(present[:, :, None], self._traffic[None, None, :], 0.0)
        code[:, :, :nt] = np.where(present[:, :, None], car_code, 0)
        crash[:, :, :nt] = present[:, :, None] & hit
        # Empty lanes: stay empty, or a car enters at the front or the back edge.
        empty = ~present
        sp = o.spawn_prob
        prob[:, :, :3] += np.where(empty[:, :, None], np.array([1.0 - sp, sp / 2, sp / 2]), 0.0)
        code[:, :, :3] += np.where(empty[:, :, None], np.array([0, o.ahead + o.behind + 1, 1]), 0)

        # The product over lanes: outcome index = Σ_i m_i M^i.
        p_all = np.ones((n, 1))
        t_all = np.zeros((n, 1), dtype=np.int64)
        c_all = np.zeros((n, 1), dtype=bool)
        for i in range(L):
            p_all = (p_all[:, None, :] * prob[:, i, :, None]).reshape(n, -1)
            t_all = (t_all[:, None, :] + code[:, i, :, None] * self._powers[i]).reshape(n, -1)
            c_all = (c_all[:, None, :] | crash[:, i, :, None]).reshape(n, -1)
        ego = (new_lane * o.speeds + new_level) * self._traffic_states
        nxt = ego[:, None] + t_all
        progress = o.speed_reward * v / o.speeds
        reward = np.where(c_all, o.collision_reward, progress[:, None])
        reward = reward + np.where(changed, o.lane_change_reward, 0.0)[:, None]
        # A collision state is absorbing: back to itself, reward 0, terminated.
        if crashed_now.any():
            p_all[crashed_now] = 0.0
            p_all[crashed_now, 0] = 1.0
            nxt[crashed_now] = states[crashed_now, None]
            reward[crashed_now] = 0.0
            c_all[crashed_now] = True
        return p_all, nxt, reward, c_all

    def _transition_lists(self, s: int) -> dict[int, list[tuple[float, int, float, bool]]]:
        """``P[s]``: per action, the outcomes with the same next state merged, in next-state
        order."""
        P, NXT, R, TERM = self._outcomes(np.full(5, s), np.arange(5))
        row = {}
        for a in range(5):
            keep = P[a] > 0
            p, nxt, r, term = P[a][keep], NXT[a][keep], R[a][keep], TERM[a][keep]
            # The next state and the collision flag fix the reward: merging on both is exact.
            uniq, first, inverse = np.unique(nxt * 2 + term, return_index=True,
                                             return_inverse=True)
            total = np.bincount(inverse, weights=p, minlength=len(uniq))
            row[a] = [
                (float(total[j]), int(nxt[first[j]]), float(r[first[j]]), bool(term[first[j]]))
                for j in range(len(uniq))
            ]
        return row

    def model(self) -> TabularModel:
        """The exact model over all ``n_states`` states, as arrays (built vectorized).

        Collision states are the terminal states (value 0): they are reached only by the
        transitions ``P[s][a]`` marks terminated, so a solver that treats ``terminal`` states
        as worth 0 gets the values of ``P`` itself. ``agents.mdp.FiniteMDP.from_model(model,
        gamma)`` makes it a validated MDP for value iteration.
        """
        import scipy.sparse as sp

        S, A = self.n_states, self.n_actions
        R = np.zeros((S, A))
        parts = []
        chunk = max(1, 2_000_000 // (A * max(len(self._traffic), 3) ** self.options.lanes))
        for start in range(0, S, chunk):
            states = np.arange(start, min(start + chunk, S))
            rows, cols, data = [], [], []
            for a in range(A):
                p, nxt, r, _ = self._outcomes(states, a)
                R[states, a] = (p * r).sum(axis=1)
                keep = p > 0
                rows.append(np.broadcast_to((states * A + a)[:, None], p.shape)[keep] - start * A)
                cols.append(nxt[keep])
                data.append(p[keep])
            shape = (len(states) * A, S)
            block = sp.coo_array(
                (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=shape
            )
            parts.append(sp.csr_array(block))
        P = sp.csr_array(sp.vstack(parts, format="csr"))
        return TabularModel(P, R, self.crash_states())

    def _initial_distribution(self) -> np.ndarray:
        o = self.options
        lane, level, codes = self._decode(np.arange(self.n_states))
        window = o.ahead + o.behind + 1
        per_lane = np.where(codes == 0, 1.0 - o.density, o.density / window)
        own = codes[np.arange(self.n_states), lane]
        # In the ego's lane the car is never in the ego's cell: the other cells share its mass.
        per_lane[np.arange(self.n_states), lane] = np.where(
            own == 0, 1.0 - o.density, np.where(own == o.behind + 1, 0.0, o.density / (window - 1))
        )
        d = per_lane.prod(axis=1) * (level == (o.speeds + 1) // 2 - 1)
        return d / d.sum()

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        refuse_reset_options(options)
        u = self.np_random.random()
        self.s = min(int(np.searchsorted(self._initial_cdf, u, side="right")), self.n_states - 1)
        self.lastaction = None
        self.steps = 0
        self._crashed = False
        return self.s, {"prob": float(self.initial_state_distrib[self.s]), **self._info()}

    def step(self, action):
        if type(action) is int and 0 <= action < 5:  # noqa: E721  (the fast path: a plain int)
            a = action
        else:
            a = int(integer_actions(action, 5, 1, batched=False)[0])
        transitions = self.P[self.s][a]
        # Inverse-CDF sampling of P[s][a]: the first outcome whose running sum exceeds u.
        cumulative = self.P.cumulative(self.s, a)
        i = bisect_right(cumulative, self.np_random.random())
        i = min(i, len(transitions) - 1)  # rounding of the running sum
        p, s, r, terminated = transitions[i]
        self.s = s
        self.lastaction = a
        self.steps += 1
        self._crashed = terminated
        truncated = self.steps >= self.options.max_steps and not terminated
        return s, r, terminated, truncated, {"prob": p, **self._info()}

    def _info(self) -> dict:
        lane, level = divmod(self.s // self._traffic_states, self.options.speeds)
        return {"crashed": bool(self._crashed), "lane": lane, "speed": level + 1}

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        return self._text()

    def _text(self) -> str:
        o = self.options
        lane, speed, cars = self.decode(self.s)
        rows = []
        for i in range(o.lanes):
            cells = ["."] * (o.ahead + o.behind + 1)
            if cars[i] is not None:
                cells[cars[i] + o.behind] = "C"
            if i == lane:
                cells[o.behind] = "X" if cars[i] == 0 else "E"
            rows.append("|" + "".join(cells) + "|")
        last = "" if self.lastaction is None else f", last action {META_ACTIONS[self.lastaction]}"
        rows.append(f"step {self.steps}, speed {speed}/{o.speeds}{last}")
        return "\n".join(rows) + "\n"

