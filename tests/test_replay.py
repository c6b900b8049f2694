"""Replay memory: frame stacks, wrap-around, n-step returns, sum-tree and prioritized sampling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import FrameStackObservation
from scipy import stats

from agents.dqn.config import DQNConfig
from agents.dqn.replay import ReplayBuffer, SumTree
from lanesim.sim import memory


def _ids(obs: np.ndarray) -> np.ndarray:
    """Observation ids of vector observations shaped (B, 1)."""
    return obs[:, 0].astype(int)


def _sample_all(replay: ReplayBuffer, draws: int = 4000) -> dict[int, dict]:
    """Sample until every sampleable transition was seen; key them by observation id."""
    batch = replay.sample(draws)
    seen = {}
    for i, obs_id in enumerate(_ids(batch.obs)):
        seen[obs_id] = {
            "return": batch.returns[i],
            "next": int(batch.next_obs[i, 0]),
            "discount": batch.discounts[i],
            "action": batch.actions[i],
        }
    return seen


# --- memory -------------------------------------------------------------------------


def test_nbytes_of_100k_atari_transitions_is_about_0_7_gb() -> None:
    # np.zeros is lazily committed by the OS, so this costs no real memory.
    replay = ReplayBuffer((4, 84, 84), np.uint8, 100_000, num_envs=8, n_step=3)
    frames = 100_000 * 84 * 84  # one uint8 frame per transition: 0.706 GB
    assert frames <= replay.nbytes < 0.75e9
    # The 4-stack of obs and next_obs stored per transition would be 5.6 GB.
    assert replay.nbytes < 100_000 * 2 * 4 * 84 * 84 / 7


def test_vector_observations_are_stored_whole() -> None:
    replay = ReplayBuffer((3,), np.float32, 100, num_envs=2)
    assert replay.frames.shape == (50, 2, 3)


def test_too_small_capacity_is_rejected() -> None:
    with pytest.raises(ValueError, match="too small"):
        ReplayBuffer((4, 8, 8), np.uint8, 14, num_envs=2, n_step=3)


def test_replay_larger_than_available_memory_is_refused_before_allocating() -> None:
    # 10^11 transitions of 84x84 frames: about 660 TiB.
    message = r"replay memory of 100,000,000,000 transitions .* TiB, .* lower buffer_size"
    with pytest.raises(ValueError, match=message):
        ReplayBuffer((4, 84, 84), np.uint8, 10**11, num_envs=8, n_step=3)


def test_replay_memory_estimate_is_compared_with_what_is_available(monkeypatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda: 10 << 20)
    ReplayBuffer((3,), np.float32, 100_000, num_envs=2)  # about 2.5 MiB
    with pytest.raises(ValueError, match=r"would take about 27.7 MiB, but this machine has 10.0"):
        ReplayBuffer((3,), np.float32, 1_000_000, num_envs=2)


@pytest.mark.parametrize("size", [1e11, 100_000.0, True, 0])
def test_config_buffer_size_must_be_a_positive_integer(size) -> None:
    with pytest.raises(ValueError, match=r"buffer_size is an integer >= 1"):
        DQNConfig(buffer_size=size)


# --- n-step returns (vector observations carrying their step id) ----------------------


def test_n_step_returns_stop_at_terminated_and_truncated() -> None:
    # One env, gamma 0.5, n = 3. The stream, as a next-step autoreset VectorEnv emits it
    # (obs id: reward, flag); "final" rows are the final observations, whose own step
    # is the autoreset step (reward 0, action ignored) and must never be sampled.
    #   ep 1: 0: 1 | 1: 2 | 2: 3 | 3: 4 terminated | 4 final | (autoreset)
    #   ep 2: 5: 10 | 6: 20 truncated | 7 final | (autoreset)
    #   ep 3: 8.. 13: reward 100 each, still running
    stream = [(0, 1, 0, 0), (1, 2, 0, 0), (2, 3, 0, 0), (3, 4, 1, 0), (4, 0, 0, 0)]
    stream += [(5, 10, 0, 0), (6, 20, 0, 1), (7, 0, 0, 0)]
    stream += [(i, 100, 0, 0) for i in range(8, 14)]
    replay = ReplayBuffer((1,), np.float32, 64, num_envs=1, n_step=3, gamma=0.5, seed=0)
    for obs_id, reward, terminated, truncated in stream:
        replay.add(
            np.array([[obs_id]], np.float32), np.array([obs_id % 2]),
            np.array([reward], np.float32), np.array([terminated]), np.array([truncated]),
        )
    seen = _sample_all(replay)
    # Worked by hand: R = sum gamma^i r_i over the steps up to the episode end or n.
    expected = {
        0: (1 + 0.5 * 2 + 0.25 * 3, 3, 0.125),  # full 3 steps, bootstrap from obs 3
        1: (2 + 0.5 * 3 + 0.25 * 4, 4, 0.0),  # ends terminated: no bootstrap
        2: (3 + 0.5 * 4, 4, 0.0),
        3: (4.0, 4, 0.0),
        5: (10 + 0.5 * 20, 7, 0.25),  # truncated: bootstrap from final obs 7 with gamma^2
        6: (20.0, 7, 0.5),
        8: (100 + 50 + 25, 11, 0.125),
        9: (175.0, 12, 0.125),
        10: (175.0, 13, 0.125),  # 11..13 lack a 3-step lookahead yet
    }
    assert set(seen) == set(expected)  # final rows 4 and 7 never sampled
    for obs_id, (ret, nxt, discount) in expected.items():
        assert seen[obs_id]["return"] == pytest.approx(ret)
        assert seen[obs_id]["next"] == nxt
        assert seen[obs_id]["discount"] == pytest.approx(discount)
        assert seen[obs_id]["action"] == obs_id % 2


# --- frame stacks: a real gymnasium VectorEnv stream ----------------------------------


class CounterEnv(gym.Env):
    """2x3 frames that encode (env id, global step counter); random episode ends."""

    def __init__(self, env_id: int) -> None:
        self.env_id = env_id
        self.counter = 0
        self.observation_space = spaces.Box(0, 255, (2, 3), np.uint8)
        self.action_space = spaces.Discrete(3)

    def _frame(self) -> np.ndarray:
        self.counter += 1
        c = self.counter
        return np.array([[c % 256, c // 256, self.env_id], [0, 0, 0]], np.uint8)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self._frame(), {}

    def step(self, action):
        roll = self.np_random.random()
        reward = float(self.np_random.integers(-3, 4))
        return self._frame(), reward, bool(roll < 0.12), bool(0.12 <= roll < 0.2), {}


def _key(frame: np.ndarray) -> tuple[int, int]:
    return int(frame[0, 2]), int(frame[0, 0]) + 256 * int(frame[0, 1])


def _reference(history: list[dict], env: int, t: int, n: int, gamma: float) -> dict:
    """Brute-force n-step transition starting at vector step t of one env."""
    ret, discount = 0.0, 1.0
    for i in range(n):
        step = history[t + i]
        ret += discount * step["reward"][env]
        discount *= gamma
        if step["terminated"][env]:
            return {"return": ret, "next": step["next_obs"][env], "discount": 0.0}
        if step["truncated"][env]:
            break
    return {"return": ret, "next": step["next_obs"][env], "discount": discount}


@pytest.mark.parametrize("prioritized", [False, True])
def test_stacks_and_returns_match_a_brute_force_reference(prioritized: bool) -> None:
    """Sampled transitions equal the env's own stacks (FrameStackObservation, repeat-first
    padding) and brute-force n-step returns, through many episode ends and wrap-arounds;
    exactly the transitions still fully held by the circular buffer are sampled."""
    num_envs, n, gamma, rows = 3, 3, 0.9, 20
    envs = gym.vector.SyncVectorEnv(
        [lambda i=i: FrameStackObservation(CounterEnv(i), 4) for i in range(num_envs)]
    )
    replay = ReplayBuffer(
        (4, 2, 3), np.uint8, rows * num_envs, num_envs, n_step=n, gamma=gamma,
        prioritized=prioritized, seed=1,
    )
    rng = np.random.default_rng(2)
    obs, _ = envs.reset(seed=3)
    history = []
    for t in range(150):  # 7.5 wraps of the 20 rows
        actions = rng.integers(0, 3, num_envs)
        next_obs, reward, terminated, truncated, _ = envs.step(actions)
        replay.add(obs, actions, reward, terminated, truncated)
        history.append(dict(obs=obs, action=actions, reward=reward, terminated=terminated,
                            truncated=truncated, next_obs=next_obs))
        obs = next_obs
        if t < 30 or t % 17:
            continue
        # Which transitions should be sampleable now: not the autoreset steps, with an
        # n-step lookahead written, and whose 4-frame history is not overwritten.
        expected = {}
        for s in range(max(0, t + 1 - rows + 3), t + 1 - n):
            for e in range(num_envs):
                before = history[s - 1] if s > 0 else None
                if before is None or not (before["terminated"][e] or before["truncated"][e]):
                    expected[_key(history[s]["obs"][e][-1])] = (s, e)
        batch = replay.sample(600)  # ~42 expected transitions: all are drawn
        sampled = set()
        for i in range(600):
            s, e = expected[_key(batch.obs[i][-1])]
            sampled.add((s, e))
            ref = _reference(history, e, s, n, gamma)
            np.testing.assert_array_equal(batch.obs[i], history[s]["obs"][e])
            np.testing.assert_array_equal(batch.next_obs[i], ref["next"])
            assert batch.actions[i] == history[s]["action"][e]
            assert batch.returns[i] == pytest.approx(ref["return"], rel=1e-6)
            assert batch.discounts[i] == pytest.approx(ref["discount"], rel=1e-6)
        assert sampled == set(expected.values())
    envs.close()


def test_stack_repeats_first_frame_and_never_mixes_episodes() -> None:
    # Frames are filled with their step id; episode 1 = ids 1-3 (+ final obs 4), episode 2
    # starts at id 5. The stack of id 6 must be [5, 5, 5, 6], not [3, 4, 5, 6].
    replay = ReplayBuffer((4, 1, 1), np.uint8, 32, n_step=1, seed=0)

    def add(stack: list[int], terminated: bool = False) -> None:
        obs = np.array(stack, np.uint8).reshape(1, 4, 1, 1)
        replay.add(obs, np.array([0]), np.array([0.0]), np.array([terminated]), np.array([False]))

    for stack, done in [([1, 1, 1, 1], False), ([1, 1, 1, 2], False), ([1, 1, 2, 3], True),
                        ([1, 2, 3, 4], False), ([5, 5, 5, 5], False), ([5, 5, 5, 6], False),
                        ([5, 5, 6, 7], False)]:
        add(stack, done)
    batch = replay.sample(500)
    stacks = {tuple(o.ravel()) for o in batch.obs} | {tuple(o.ravel()) for o in batch.next_obs}
    assert stacks == {(1, 1, 1, 1), (1, 1, 1, 2), (1, 1, 2, 3), (1, 2, 3, 4),
                      (5, 5, 5, 5), (5, 5, 5, 6), (5, 5, 6, 7)}


def test_wrap_around_keeps_only_intact_stacks() -> None:
    # 10 rows, one endless episode of ids 0..24: rows hold ids 15..24 after wrapping.
    # Ids 15..17 lost part of their history (12..14) and 24 has no next obs yet.
    replay = ReplayBuffer((4, 1, 1), np.uint8, 10, n_step=1, seed=0)
    for i in range(25):
        stack = np.array([max(i - 3 + k, 0) for k in range(4)], np.uint8).reshape(1, 4, 1, 1)
        replay.add(stack, np.array([0]), np.array([1.0]), np.array([False]), np.array([False]))
    batch = replay.sample(1000)
    newest = batch.obs[:, -1, 0, 0].astype(int)
    assert set(newest) == set(range(18, 24))
    assert len(replay) == 6
    np.testing.assert_array_equal(batch.obs[:, :, 0, 0], newest[:, None] + np.arange(-3, 1))
    np.testing.assert_array_equal(batch.next_obs[:, -1, 0, 0], newest + 1)


def test_sampled_stacks_are_channels_last_in_memory() -> None:
    # (B, K, H, W) views of (B, H, W, K) memory: what the channels-last conv trunk reads.
    torch = pytest.importorskip("torch")
    replay = ReplayBuffer((4, 3, 5), np.uint8, 64, num_envs=2, n_step=2, seed=0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 2, 3, 5), dtype=np.uint8)
    for t in range(12):
        stack = frames[np.maximum(np.arange(t - 3, t + 1), 0)].transpose(1, 0, 2, 3)
        replay.add(stack, np.zeros(2, int), np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    batch = replay.sample(16)
    for obs in (batch.obs, batch.next_obs):
        assert obs.shape == (16, 4, 3, 5)
        assert obs.transpose(0, 2, 3, 1).flags.c_contiguous
        assert torch.as_tensor(obs).is_contiguous(memory_format=torch.channels_last)
    rows, envs = np.divmod(batch.indices, 2)
    for i, (row, env) in enumerate(zip(rows, envs, strict=True)):
        expected = frames[np.maximum(np.arange(row - 3, row + 1), 0), env]
        np.testing.assert_array_equal(batch.obs[i], expected)


def test_warns_when_env_pads_first_stack_with_zeros() -> None:
    replay = ReplayBuffer((4, 1, 1), np.uint8, 32)
    obs = np.array([0, 0, 0, 9], np.uint8).reshape(1, 4, 1, 1)
    with pytest.warns(UserWarning, match="repeat"):
        replay.add(obs, np.array([0]), np.array([0.0]), np.array([False]), np.array([False]))


def test_sampling_an_empty_replay_raises() -> None:
    with pytest.raises(ValueError, match="no complete transition"):
        ReplayBuffer((2,), np.float32, 32).sample(4)


# --- sum tree and prioritized replay --------------------------------------------------


def test_sum_tree_batched_set_and_prefix_search() -> None:
    rng = np.random.default_rng(0)
    tree = SumTree(37)  # padded to 64 leaves
    assert tree.num_leaves == 64
    values = rng.random(37) * (rng.random(37) > 0.3)  # include empty leaves
    tree.set(np.arange(37), values)
    tree.set(np.array([5, 5, 9]), np.array([2.0, 3.0, 0.0]))  # duplicates: last write wins
    values[5], values[9] = 3.0, 0.0
    assert tree.total == pytest.approx(values.sum())
    mass = rng.random(10_000) * tree.total
    expected = np.searchsorted(np.cumsum(values), mass, side="right")
    np.testing.assert_array_equal(tree.find(mass), expected)
    assert (values[tree.find(mass)] > 0).all()


def _filled_vector_replay(alpha: float, steps: int = 12) -> ReplayBuffer:
    replay = ReplayBuffer((1,), np.float32, 64, num_envs=2, n_step=1, prioritized=True,
                          alpha=alpha, eps=1e-6, seed=0)
    for i in range(steps):
        replay.add(np.full((2, 1), i, np.float32), np.zeros(2, int), np.zeros(2),
                   np.zeros(2, bool), np.zeros(2, bool))
    return replay


def test_prioritized_sampling_frequencies_follow_priorities() -> None:
    alpha = 0.7
    replay = _filled_vector_replay(alpha)
    slots = np.flatnonzero(replay.valid.reshape(-1))
    assert len(slots) == 22  # 11 complete rows x 2 envs
    td_errors = np.linspace(0.1, 4.0, len(slots))
    replay.update_priorities(slots, td_errors)
    expected = (td_errors + 1e-6) ** alpha
    expected /= expected.sum()
    counts = np.zeros(replay.rows * replay.num_envs)
    for _ in range(50):
        np.add.at(counts, replay.sample(4000).indices, 1)
    assert counts.sum() == counts[slots].sum()  # nothing outside the valid slots
    observed = counts[slots]
    # Pearson chi-square goodness of fit (21 dof), fixed seed: p must not be tiny.
    chi2 = ((observed - expected * observed.sum()) ** 2 / (expected * observed.sum())).sum()
    assert stats.chi2.sf(chi2, df=len(slots) - 1) > 0.01
    np.testing.assert_allclose(observed / observed.sum(), expected, rtol=0.05)


def test_importance_weights_are_normalised_by_the_batch_maximum() -> None:
    replay = _filled_vector_replay(alpha=1.0, steps=2)  # one complete row: slots 0 and 1
    replay.update_priorities(np.array([0, 1]), np.array([1.0, 4.0]) - 1e-6)
    batch = replay.sample(10, beta=0.5)
    # P = [0.2, 0.8]; w = (N P)^-beta / max w = (P_min / P)^beta = [1, 0.25^0.5 = 0.5].
    assert set(batch.indices) == {0, 1}
    np.testing.assert_allclose(batch.weights[batch.indices == 0], 1.0)
    np.testing.assert_allclose(batch.weights[batch.indices == 1], 0.5)
    assert (replay.sample(10, beta=0.0).weights == 1).all()  # beta 0: no correction


def test_new_transitions_get_the_max_priority_seen() -> None:
    replay = _filled_vector_replay(alpha=0.5, steps=3)
    replay.update_priorities(np.array([0, 1]), np.array([9.0, 0.5]))
    replay.add(np.full((2, 1), 3, np.float32), np.zeros(2, int), np.zeros(2),
               np.zeros(2, bool), np.zeros(2, bool))
    new_slots = np.array([4, 5])  # row 2 became complete
    np.testing.assert_allclose(replay.tree.get(new_slots), (9.0 + 1e-6) ** 0.5)
    assert replay.tree.get(np.array([6, 7])).sum() == 0  # row 3 has no lookahead yet


def test_colour_stacks_store_each_three_channel_frame_once_and_rebuild_exactly():
    # Frame t of env e is filled with 10 t + e in channel 0, +1 in channel 1, +2 in channel 2;
    # a stack of 3 frames is 9 channels, newest last, repeat-first padded at episode starts.
    num_envs = 2

    def frame(t, e):
        return np.stack([np.full((2, 3), 10 * t + e + c, np.uint8) for c in range(3)])

    def stack(ts, e):
        return np.concatenate([frame(t, e) for t in ts])

    replay = ReplayBuffer((9, 2, 3), np.uint8, 64, num_envs, n_step=1, frame_channels=3, seed=0)
    assert replay.frames.shape[2:] == (3, 2, 3)  # one colour frame a slot
    seen = []
    for t in range(12):
        ts = [max(t - 2, 0), max(t - 1, 0), t]
        obs = np.stack([stack(ts, e) for e in range(num_envs)])
        seen.append(obs)
        replay.add(obs, np.zeros(num_envs, np.int64), np.zeros(num_envs), np.zeros(num_envs, bool),
                   np.zeros(num_envs, bool))
    batch = replay.sample(200)
    expected = {o.tobytes() for obs in seen for o in obs}
    assert {o.tobytes() for o in batch.obs} <= expected
    assert len({o.tobytes() for o in batch.obs}) > 10


def test_a_channel_count_that_is_no_stack_of_colour_frames_is_refused():
    with pytest.raises(ValueError, match="observations of 10 channels are no stack of 3-channel"):
        ReplayBuffer((10, 2, 3), np.uint8, 64, 1, frame_channels=3)


@pytest.mark.parametrize("mode", ["native", "sync"])
def test_the_trainer_reads_colour_camera_frames_from_any_vector_env(mode):
    from agents.dqn.train import frame_channels

    kwargs = dict(observation="camera", camera_color=True, image_shape=[32, 32], vehicles=2)
    envs = gym.make_vec("lanesim/Highway-v0", num_envs=2, vectorization_mode=(
        "vector_entry_point" if mode == "native" else "sync"), **kwargs)
    grey = gym.make_vec("lanesim/Highway-v0", num_envs=2, vectorization_mode=(
        "vector_entry_point" if mode == "native" else "sync"), observation="camera",
        image_shape=[32, 32], vehicles=2)
    assert frame_channels(envs) == 3 and frame_channels(grey) == 1
    envs.close()
    grey.close()
