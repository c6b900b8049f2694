"""DQN agent: network, TD target and loss, training loop, checkpoints, and a learning check."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from unittest.mock import patch

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from torch import nn
from torch.optim import Adam

from agents.dqn import (
    CheckpointError,
    DQNAgent,
    DQNConfig,
    QNetwork,
    linear_schedule,
    train_dqn,
)
from agents.dqn.checkpoint import load_checkpoint, save_checkpoint
from agents.dqn.learner import td_loss, td_target, update_target
from agents.dqn.train import epsilon_greedy


@pytest.fixture(autouse=True)
def _one_thread():
    # `make test` runs two workers on two cores: more threads per worker oversubscribe
    # the cores and torch's spinning thread pool then slows down many-fold.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class CorridorEnv(gym.Env):
    """One-hot position in a corridor; reward 1 (terminated) on reaching the right end.

    Start at the left end; action 1 moves right, 0 left, any other stays; truncated after
    24 steps. A uniformly random policy with 2 actions reaches the end of the 8-cell
    corridor in time in about 26% of episodes (measured over 3,481 episodes).
    """


    def __init__(self, length: int = 8, n_actions: int = 2) -> None:
        self.length = length
        self.observation_space = spaces.Box(0, 1, (length,), np.float32)
        self.action_space = spaces.Discrete(n_actions)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.pos] = 1
        return obs

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, self.pos + {0: -1, 1: 1}.get(int(action), 0))
        self.t += 1
        goal = self.pos == self.length - 1
        return self._obs(), float(goal), goal, self.t >= 24, {}


class LitColumnEnv(gym.Env):
    """36x36 frames, 4 stacked (repeat-first padding), newest last. Each frame lights one
    of 4 column bands at random; reward 1 for choosing the band lit in the newest frame,
    else info["crashed"] = True. 8 steps per episode: random policy returns 2, best 8."""

    size, bands, length = 36, 4, 8

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (4, self.size, self.size), np.uint8)
        self.action_space = spaces.Discrete(self.bands)

    def _push_frame(self) -> None:
        self.lit = int(self.np_random.integers(self.bands))
        frame = np.zeros((self.size, self.size), np.uint8)
        width = self.size // self.bands
        frame[:, self.lit * width : (self.lit + 1) * width] = 255
        self.stack = np.concatenate([self.stack[1:], frame[None]])

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.stack = np.zeros(self.observation_space.shape, np.uint8)
        self._push_frame()
        self.stack[:] = self.stack[-1]
        self.t = 0
        return self.stack.copy(), {}

    def step(self, action):
        hit = int(action) == self.lit
        self.t += 1
        self._push_frame()
        return self.stack.copy(), float(hit), False, self.t >= self.length, {"crashed": not hit}


class CountingVectorEnv(SyncVectorEnv):
    """Counts step() calls; raises KeyboardInterrupt on call number ``interrupt_at``."""

    def __init__(self, env_fns, interrupt_at: int | None = None) -> None:
        super().__init__(env_fns)
        self.calls, self.interrupt_at = 0, interrupt_at

    def step(self, actions):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return super().step(actions)


def corridor_envs(num_envs: int = 2, interrupt_at: int | None = None, **kwargs) -> SyncVectorEnv:
    return CountingVectorEnv([lambda: CorridorEnv(**kwargs)] * num_envs, interrupt_at)


def tiny_config(**overrides) -> DQNConfig:
    base = dict(
        seed=0, total_steps=200, num_envs=2, device="cpu", hidden=16, buffer_size=500,
        batch_size=16, n_step=2, learning_starts=50, train_freq=2, target_update=50,
        eps_fraction=0.5, eval_every=100, eval_episodes=2, checkpoint_every=100,
        log_every=50, progress=False,
    )
    return DQNConfig(**{**base, **overrides})


# --- network ------------------------------------------------------------------------


def test_dueling_head_is_value_plus_centred_advantage() -> None:
    torch.manual_seed(0)
    net = QNetwork((6,), 5, dueling=True)
    obs = torch.randn(10, 6)
    features = net.trunk(obs)
    value, advantage = net.value(features), net.advantage(features)
    q = net(obs)
    torch.testing.assert_close(q, value + advantage - advantage.mean(dim=1, keepdim=True))
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)  # V is identifiable
    assert torch.equal(q.argmax(dim=1), advantage.argmax(dim=1))


def test_conv_trunk_scales_uint8_and_sizes_itself_from_the_observation() -> None:
    torch.manual_seed(0)
    for shape in [(4, 84, 84), (4, 36, 36), (3, 64, 48)]:
        net = QNetwork(shape, 6, dueling=False)
        obs = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
        q = net(obs)
        assert q.shape == (3, 6)
        torch.testing.assert_close(q, net.head(net.trunk(obs.float() / 255)))
    assert isinstance(QNetwork((4, 84, 84), 6).trunk[0], nn.Conv2d)
    assert isinstance(QNetwork((3, 7), 2).trunk[1], nn.Linear)  # 2-D vectors: flattened MLP


def test_small_conv_trunk_has_half_the_channels_and_fits_42x84_frames() -> None:
    torch.manual_seed(0)
    convs = {
        name: [m for m in QNetwork((4, 42, 84), 5, conv=name).trunk if isinstance(m, nn.Conv2d)]
        for name in ("nature", "small")
    }
    assert [c.out_channels for c in convs["nature"]] == [32, 64, 64]
    assert [c.out_channels for c in convs["small"]] == [16, 32, 32]
    for nature, small in zip(convs["nature"], convs["small"], strict=True):
        assert (small.kernel_size, small.stride) == (nature.kernel_size, nature.stride)
    net = QNetwork((4, 42, 84), 5, hidden=256, conv="small")
    assert net(torch.randint(0, 256, (2, 4, 42, 84), dtype=torch.uint8)).shape == (2, 5)
    with pytest.raises(ValueError,
                       match=r"unknown conv trunk 'tiny'; choose from \['nature', 'small'\]"):
        QNetwork((4, 42, 84), 5, conv="tiny")


def test_conv_trunk_runs_channels_last_and_leaves_the_input_alone() -> None:
    torch.manual_seed(0)
    net = QNetwork((4, 36, 36), 5)
    assert net.trunk[0].weight.is_contiguous(memory_format=torch.channels_last)
    # The same function as the usual (contiguous) layout, to float rounding.
    reference = QNetwork((4, 36, 36), 5).to(memory_format=torch.contiguous_format)
    reference.load_state_dict(net.state_dict())
    assert reference.trunk[0].weight.is_contiguous()
    obs = torch.randint(0, 256, (6, 4, 36, 36), dtype=torch.uint8)
    torch.testing.assert_close(net(obs), reference(obs))
    # Float input (any layout) is scaled in a copy, never in place.
    x = obs.float()
    before = x.clone()
    torch.testing.assert_close(net(x), net(obs))
    assert torch.equal(x, before)


# --- TD target and loss ---------------------------------------------------------------


class Table(nn.Module):
    """A "network" whose Q-values are a fixed table indexed by the observation id."""

    def __init__(self, q: list[list[float]]) -> None:
        super().__init__()
        self.q = torch.tensor(q, dtype=torch.float64)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q[obs]


def test_double_dqn_target_by_hand() -> None:
    online = Table([[1.0, 5.0], [3.0, 2.0], [0.0, 0.5]])
    target = Table([[4.0, 2.0], [7.0, 9.0], [1.0, -1.0]])
    next_obs = torch.tensor([0, 1, 2])
    returns = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    # gamma^n for n = 1, 2 with gamma 0.9; the third transition terminated (done mask 0).
    discounts = torch.tensor([0.9, 0.81, 0.0], dtype=torch.float64)
    # Double: online argmax a* = [1, 0, 1]; target values there [2, 7, -1]:
    #   1 + 0.9 * 2 = 2.8,  0.5 + 0.81 * 7 = 6.17,  2 + 0 * -1 = 2.
    y = td_target(returns, next_obs, discounts, online, target, double=True)
    torch.testing.assert_close(y, torch.tensor([2.8, 6.17, 2.0], dtype=torch.float64))
    # Plain DQN: target's own max [4, 9, 1]: 1 + 3.6 = 4.6, 0.5 + 7.29 = 7.79, 2.
    y = td_target(returns, next_obs, discounts, online, target, double=False)
    torch.testing.assert_close(y, torch.tensor([4.6, 7.79, 2.0], dtype=torch.float64))


def test_weighted_huber_loss_and_priorities_by_hand() -> None:
    q_values = torch.tensor([[1.0, 2.0], [0.0, 5.0]])
    actions = torch.tensor([1, 0])
    targets = torch.tensor([2.5, 3.0])
    weights = torch.tensor([1.0, 0.5])
    loss, q_taken, priorities = td_loss(q_values, actions, targets, weights)
    # delta = [0.5, 3]: Huber = [0.5 * 0.5^2, 3 - 0.5] = [0.125, 2.5];
    # weighted mean = (1 * 0.125 + 0.5 * 2.5) / 2 = 0.6875.
    assert loss.item() == pytest.approx(0.6875)
    torch.testing.assert_close(q_taken, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(priorities, torch.tensor([0.5, 3.0]))


def test_loss_gradient_wrt_head_matches_finite_differences() -> None:
    torch.manual_seed(0)
    net = QNetwork((5,), 3, dueling=True, hidden=8).double()
    obs = torch.randn(6, 5, dtype=torch.float64)
    actions = torch.tensor([0, 1, 2, 0, 1, 2])
    weights = torch.rand(6, dtype=torch.float64) + 0.5
    with torch.no_grad():
        q_taken = net(obs).gather(1, actions[:, None]).squeeze(1)
    # TD errors on both sides of the Huber kink (|delta| = 1), well away from it.
    targets = q_taken + torch.tensor([0.3, -2.5, 1.7, -0.4, 0.05, 3.0], dtype=torch.float64)

    def loss() -> torch.Tensor:
        return td_loss(net(obs), actions, targets, weights)[0]

    loss().backward()
    h = 1e-6
    for param in [net.value.weight, net.value.bias, net.advantage.weight, net.advantage.bias]:
        numeric = torch.zeros_like(param)
        flat = param.data.view(-1)
        for i in range(flat.numel()):
            original = flat[i].item()
            flat[i] = original + h
            up = loss().item()
            flat[i] = original - h
            down = loss().item()
            flat[i] = original
            numeric.view(-1)[i] = (up - down) / (2 * h)
        torch.testing.assert_close(param.grad, numeric, rtol=1e-6, atol=1e-9)


def test_target_update_hard_and_polyak() -> None:
    torch.manual_seed(0)
    online, target = QNetwork((3,), 2, hidden=4), QNetwork((3,), 2, hidden=4)
    before = [p.clone() for p in target.parameters()]
    update_target(online, target, tau=0.25)
    for t, o, b in zip(target.parameters(), online.parameters(), before, strict=True):
        torch.testing.assert_close(t, 0.25 * o + 0.75 * b)
    update_target(online, target, tau=1.0)
    pairs = zip(target.parameters(), online.parameters(), strict=True)
    assert all(torch.equal(t, o) for t, o in pairs)


def test_linear_schedule() -> None:
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1000) == pytest.approx(0.1)
    assert linear_schedule(0.4, 1.0, 0, 5) == 1.0


def test_config_validates_and_round_trips() -> None:
    config = DQNConfig(lr=3e-4)
    assert DQNConfig.from_dict(config.to_dict()) == config
    assert all(f.metadata.get("help") for f in dataclasses.fields(DQNConfig))
    with pytest.raises(ValueError, match="gamma"):
        DQNConfig(gamma=1.5)
    with pytest.raises(ValueError, match="unknown"):
        DQNConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]
    for bad, name in ((dict(lr=0.0), "0 < lr <= 1"), (dict(lr_end=-1e-5), "lr_end")):
        with pytest.raises(ValueError, match=name):
            DQNConfig(**bad)


@pytest.mark.parametrize(
    "field, value, accepted",
    [
        ("hidden", 0, "hidden is None or 1 <= hidden <= 16,384"),
        ("hidden", 10**9, "hidden is None or 1 <= hidden <= 16,384"),
        ("batch_size", 10**8, "1 <= batch_size <= 65,536"),
        ("gradient_steps", 0, "1 <= gradient_steps <= 1,000"),
        ("learning_starts", -1, "0 <= learning_starts"),
        ("eps_end", 1.5, "0 <= eps_end <= 1"),
        ("adam_eps", float("nan"), "0 < adam_eps <= 1"),
        ("grad_clip", -1.0, "0 <= grad_clip"),
        ("n_step", "3", "1 <= n_step <= 1,000"),
        ("checkpoint_every", -1, "0 <= checkpoint_every"),
        ("conv", "tiny", "conv 'nature' or 'small'"),
    ],
)
def test_config_refuses_values_outside_their_range_naming_the_range(field, value, accepted):
    with pytest.raises(ValueError, match=re.escape(f"invalid DQNConfig: {accepted}")):
        DQNConfig(**{field: value})


def test_learning_rate_decays_linearly_over_the_run_and_resumes(tmp_path: Path) -> None:
    lr_at = {}

    class Recorder(Adam):
        def step(self, closure=None):
            lr_at[len(lr_at)] = self.param_groups[0]["lr"]
            return super().step(closure)

    config = tiny_config(lr=1e-3, lr_end=1e-4, total_steps=200)
    with patch("torch.optim.Adam", Recorder):
        first = train_dqn(corridor_envs(), config, tmp_path)
    # One update per vector step of 2 envs once learning has started; the update after the
    # vector step that reaches step s uses linear_schedule(1e-3, 1e-4, 200, s), so the
    # updates' rates fall by 2 * 9e-4 / 200 each and the last one, at step 200, is 1e-4.
    rates = np.array(list(lr_at.values()))
    assert len(rates) == first.updates > 50
    first_step = 200 - 2 * (len(rates) - 1)
    expected = [linear_schedule(1e-3, 1e-4, 200, s) for s in range(first_step, 201, 2)]
    np.testing.assert_allclose(rates, expected, rtol=1e-9)
    assert rates[0] < 1e-3 and rates[-1] == pytest.approx(1e-4)
    # Resumed with a longer run, the schedule follows the new total from the saved step.
    lr_at.clear()
    with patch("torch.optim.Adam", Recorder):
        train_dqn(corridor_envs(), dataclasses.replace(config, total_steps=400), tmp_path,
              resume=True)
    # (The replay memory refills first, so updates restart a little after step 200.)
    rates = np.array(list(lr_at.values()))
    first_step = 400 - 2 * (len(rates) - 1)
    assert 200 < first_step < 300
    expected = [linear_schedule(1e-3, 1e-4, 400, s) for s in range(first_step, 401, 2)]
    np.testing.assert_allclose(rates, expected, rtol=1e-9)
    # Without lr_end the rate is constant, also when resuming a run that decayed it: the
    # optimizer state from the checkpoint does not bring its rate along.
    for out, resume in ((tmp_path / "constant", False), (tmp_path, True)):
        lr_at.clear()
        with patch("torch.optim.Adam", Recorder):
            train_dqn(corridor_envs(), tiny_config(lr=1e-3, total_steps=600), out, resume=resume)
        assert lr_at and set(lr_at.values()) == {1e-3}
        optimizer = load_checkpoint(out / "latest.pt")["optimizer"]
        assert optimizer["param_groups"][0]["lr"] == 1e-3


# --- training loop, checkpoints, resume -------------------------------------------------


class CountingNet(nn.Module):
    """Greedy action = the observation's id; records how many rows it was asked about."""

    n_actions = 5

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        self.rows.append(len(obs))
        return nn.functional.one_hot(obs[:, 0].long(), self.n_actions).float()


def test_epsilon_greedy_only_asks_the_network_about_greedy_envs() -> None:
    obs = np.arange(8).reshape(8, 1) % 5
    for epsilon in (0.0, 0.3, 0.7, 1.0):
        net = CountingNet()
        actions = epsilon_greedy(net, obs, epsilon, np.random.default_rng(1), torch.device("cpu"))
        # The same draws, in the same order, as deciding every env first and then overriding.
        rng = np.random.default_rng(1)
        explore = rng.random(8) < epsilon
        expected = np.where(explore, rng.integers(0, 5, 8), obs[:, 0])
        np.testing.assert_array_equal(actions, expected)
        assert sum(net.rows) == int((~explore).sum())
    assert net.rows == []  # the last epsilon, 1: the network is not run at all


def test_a_seed_makes_a_pixel_run_reproducible(tmp_path: Path) -> None:
    config = tiny_config(
        total_steps=320, num_envs=4, hidden=32, buffer_size=1000, batch_size=16, n_step=3,
        learning_starts=64, train_freq=4, target_update=64, eval_every=0, eval_episodes=4,
        checkpoint_every=0, prioritized=True,
    )
    make = lambda: SyncVectorEnv([LitColumnEnv for _ in range(4)])  # noqa: E731
    weights = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        result = train_dqn(make, dataclasses.replace(config, seed=seed), tmp_path / name)
        assert result.updates > 0
        weights.append(load_checkpoint(tmp_path / name / "latest.pt")["online"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_train_writes_checkpoints_that_the_agent_loads(tmp_path: Path) -> None:
    result = train_dqn(lambda: corridor_envs(), tiny_config(prioritized=True), tmp_path)
    assert result.steps == 200 and result.updates > 0
    assert result.last_eval is not None and result.last_eval.collision_rate is None
    assert {p.name for p in tmp_path.iterdir()} == {"latest.pt", "best.pt", "tb"}
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    assert ckpt["step"] == 200 and ckpt["updates"] == result.updates
    assert ckpt["network"] == {
        "obs_shape": [8], "obs_dtype": "float32", "n_actions": 2, "dueling": True, "hidden": 16,
        "conv": "nature",
    }
    assert ckpt["config"] == tiny_config(prioritized=True).to_dict()
    assert ckpt["best_eval_return"] == result.best_eval_return

    agent = DQNAgent.load(tmp_path / "latest.pt")
    net = QNetwork([8], 2, dueling=True, hidden=16)
    net.load_state_dict(ckpt["online"])
    obs = np.eye(8, dtype=np.float32)[3]
    values = agent.action_values(obs)
    assert values.shape == (2,) and values.dtype == np.float32
    np.testing.assert_allclose(values, net(torch.as_tensor(obs)[None])[0].detach().numpy())
    assert agent.act(obs) == int(values.argmax())
    with pytest.raises(ValueError, match="shape"):
        agent.act(np.zeros((1, 8), np.float32))


def test_dqn_agent_annotates_the_q_values_of_its_last_decision() -> None:
    torch.manual_seed(0)
    agent = DQNAgent(QNetwork([8], 3, dueling=True, hidden=16))
    agent.reset(None)
    assert agent.annotations() == {}
    for i in (2, 5):
        obs = np.eye(8, dtype=np.float32)[i]
        action = agent.act(obs)
        values = agent.annotations()["values"]
        np.testing.assert_array_equal(values, agent.action_values(obs))
        assert action == int(values.argmax())
    agent.reset(None)
    assert agent.annotations() == {}


def test_resume_continues_the_step_count(tmp_path: Path) -> None:
    envs = corridor_envs()  # an instance: no eval env, so every step counted is training
    first = train_dqn(envs, tiny_config(), tmp_path)
    assert first.steps == 200 and envs.calls == 100
    resumed = train_dqn(envs, tiny_config(total_steps=400), tmp_path, resume=True)
    assert resumed.steps == 400
    assert envs.calls == 200  # only the missing 100 vector steps (200 transitions) were run
    assert resumed.updates > first.updates
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 400
    envs.close()


def test_callback_sees_the_online_network_and_ends_training_early(tmp_path: Path) -> None:
    envs = corridor_envs()
    seen: list[tuple[int, bool]] = []

    def callback(step: int, q_net) -> bool:
        seen.append((step, isinstance(q_net, QNetwork)))
        return step < 60

    result = train_dqn(envs, tiny_config(), tmp_path, callback=callback)
    assert seen == [(s, True) for s in range(2, 62, 2)]  # after every vector step of 2 envs
    assert result.steps == 60 and envs.calls == 30
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 60  # saved as at the end
    envs.close()


def test_resume_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    latest = tmp_path / "latest.pt"
    with pytest.raises(CheckpointError, match="latest.pt: checkpoint file not found"):
        train_dqn(lambda: corridor_envs(), tiny_config(), tmp_path, resume=True)

    train_dqn(lambda: corridor_envs(), tiny_config(total_steps=20, eval_every=0), tmp_path)
    with pytest.raises(CheckpointError, match=r"latest.pt: .*obs_shape: checkpoint has \[8\]"):
        train_dqn(lambda: corridor_envs(length=6), tiny_config(), tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="n_actions: checkpoint has 2, expected 3"):
        train_dqn(lambda: corridor_envs(n_actions=3), tiny_config(), tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="dueling"):
        train_dqn(lambda: corridor_envs(), tiny_config(dueling=False), tmp_path, resume=True)

    latest.write_bytes(latest.read_bytes()[:1000])  # truncated, as after a crash mid-copy
    with pytest.raises(CheckpointError, match="latest.pt: damaged checkpoint"):
        train_dqn(lambda: corridor_envs(), tiny_config(), tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="latest.pt: damaged"):
        DQNAgent.load(latest)
    torch.save({"something": "else"}, latest)
    with pytest.raises(CheckpointError, match="not a lanesim-dqn"):
        DQNAgent.load(latest)


def test_a_checkpoint_damaged_anywhere_is_refused(tmp_path: Path) -> None:
    train_dqn(lambda: corridor_envs(), tiny_config(total_steps=20, eval_every=0), tmp_path)
    latest = tmp_path / "latest.pt"
    good = latest.read_bytes()
    middle = len(good) // 2
    latest.write_bytes(good[:middle] + bytes(1024) + good[middle + 1024:])
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        DQNAgent.load(latest)
    rng = np.random.default_rng(0)
    for _ in range(20):
        start = int(rng.integers(len(good) - 256))
        data = bytearray(good)
        data[start:start + 256] = rng.integers(0, 256, 256, dtype=np.uint8).tobytes()
        latest.write_bytes(bytes(data))
        with pytest.raises(CheckpointError):
            DQNAgent.load(latest)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"lanesim-dqn/2 sha256=", "unknown header"),
        (bytes(range(256)) * 8, "unknown header"),
        (b"a note, not a checkpoint\n", "unknown header"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path, content, message) -> None:
    path = tmp_path / "latest.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"latest.pt: .*{message}"):
        DQNAgent.load(path)


def test_a_checkpoint_without_its_entries_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "tag_only.pt", {})
    with pytest.raises(CheckpointError, match="incomplete checkpoint, it lacks network, online"):
        DQNAgent.load(tmp_path / "tag_only.pt")
    save_checkpoint(tmp_path / "odd.pt", {"network": [4], "online": {}, "config": {}, "step": 0})
    with pytest.raises(CheckpointError, match="it lacks network \\(a table of its shape\\)"):
        DQNAgent.load(tmp_path / "odd.pt")
    train_dqn(lambda: corridor_envs(), tiny_config(total_steps=20, eval_every=0), tmp_path)
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    del ckpt["optimizer"]
    save_checkpoint(tmp_path / "latest.pt", ckpt)
    DQNAgent.load(tmp_path / "latest.pt")  # acting needs no optimizer state; resuming does
    with pytest.raises(CheckpointError, match="it lacks optimizer"):
        train_dqn(lambda: corridor_envs(), tiny_config(), tmp_path, resume=True)


def test_a_checkpoint_from_before_the_checksum_still_acts(tmp_path: Path) -> None:
    train_dqn(lambda: corridor_envs(), tiny_config(total_steps=20, eval_every=0), tmp_path)
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    torch.save({**ckpt, "format": "lanesim-dqn/1"}, tmp_path / "old.pt")  # the first format
    old, new = DQNAgent.load(tmp_path / "old.pt"), DQNAgent.load(tmp_path / "latest.pt")
    obs = np.eye(8, dtype=np.float32)[3]
    np.testing.assert_array_equal(old.action_values(obs), new.action_values(obs))
    # A file without a checksum cannot claim the format that has one.
    torch.save({**ckpt, "format": "lanesim-dqn/2"}, tmp_path / "posing.pt")
    with pytest.raises(CheckpointError, match="not a lanesim-dqn/2 checkpoint"):
        DQNAgent.load(tmp_path / "posing.pt")


def lit_column_config(**overrides) -> DQNConfig:
    return tiny_config(**{**dict(
        total_steps=64, num_envs=4, hidden=32, buffer_size=1000, batch_size=16,
        learning_starts=32, train_freq=4, target_update=32, eval_every=0, checkpoint_every=0,
    ), **overrides})


def lit_column_envs() -> SyncVectorEnv:
    return SyncVectorEnv([LitColumnEnv for _ in range(4)])


def test_a_small_conv_run_saves_resumes_and_acts_with_its_trunk(tmp_path: Path) -> None:
    train_dqn(lit_column_envs, lit_column_config(conv="small"), tmp_path)
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    assert ckpt["network"]["conv"] == "small"
    agent = DQNAgent.load(tmp_path / "latest.pt")
    assert agent.q_net.trunk[0].out_channels == 16
    obs = LitColumnEnv().reset(seed=1)[0]
    net = QNetwork((4, 36, 36), 4, hidden=32, conv="small")
    net.load_state_dict(ckpt["online"])
    np.testing.assert_allclose(agent.action_values(obs),
                               net(torch.as_tensor(obs)[None])[0].detach().numpy())
    resumed = train_dqn(lit_column_envs, lit_column_config(conv="small", total_steps=128),
                        tmp_path, resume=True)
    assert resumed.steps == 128
    with pytest.raises(CheckpointError, match="conv: checkpoint has 'small', expected 'nature'"):
        train_dqn(lit_column_envs, lit_column_config(total_steps=192), tmp_path, resume=True)


def test_a_checkpoint_from_before_the_conv_choice_acts_and_resumes_as_nature(
    tmp_path: Path,
) -> None:
    train_dqn(lit_column_envs, lit_column_config(), tmp_path)
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    del ckpt["network"]["conv"]  # as written before the option existed
    (tmp_path / "old").mkdir()
    save_checkpoint(tmp_path / "old" / "latest.pt", {k: v for k, v in ckpt.items()
                                                     if k != "format"})
    old, new = DQNAgent.load(tmp_path / "old" / "latest.pt"), DQNAgent.load(tmp_path / "latest.pt")
    assert old.q_net.trunk[0].out_channels == 32
    obs = LitColumnEnv().reset(seed=1)[0]
    np.testing.assert_array_equal(old.action_values(obs), new.action_values(obs))
    resumed = train_dqn(lit_column_envs, lit_column_config(total_steps=128), tmp_path / "old",
                        resume=True)
    assert resumed.steps == 128


def test_a_device_or_directory_is_no_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="/dev/null: not a regular file"):
        load_checkpoint("/dev/null")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)


def test_a_new_run_removes_the_temp_files_of_a_killed_save(tmp_path: Path) -> None:
    stale = [tmp_path / ".latest.pt.k3j4_x9a.tmp", tmp_path / ".best.pt.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    train_dqn(lambda: corridor_envs(), tiny_config(total_steps=20, eval_every=0), tmp_path)
    assert not any(path.exists() for path in stale)
    assert (tmp_path / "notes.tmp").exists()


def test_checkpoint_writes_are_atomic(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"network": {}, "step": 1})
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises
        save_checkpoint(path, {"network": {}, "step": 2, "bad": lambda: None})
    assert load_checkpoint(path, keys=("step",))["step"] == 1  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temp file left


def test_keyboard_interrupt_saves_latest(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        train_dqn(corridor_envs(interrupt_at=76), tiny_config(checkpoint_every=0), tmp_path)
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 150  # 75 vector steps done


def test_rejects_same_step_autoreset_and_non_discrete_actions(tmp_path: Path) -> None:
    same_step = SyncVectorEnv([CorridorEnv], autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="next-step"):
        train_dqn(same_step, tiny_config(), tmp_path)
    continuous = SyncVectorEnv([lambda: gym.make("Pendulum-v1")])
    with pytest.raises(ValueError, match="Discrete"):
        train_dqn(continuous, tiny_config(), tmp_path)


# --- learning -------------------------------------------------------------------------


def test_pixel_dqn_learns_to_pick_the_lit_column(tmp_path: Path) -> None:
    """Conv trunk + frame-once replay: greedy return 8 of 8 vs 2 for a random policy."""
    config = tiny_config(
        total_steps=1200, num_envs=4, hidden=64, buffer_size=5000, batch_size=32, lr=1e-3,
        gamma=0.5, n_step=1, learning_starts=200, train_freq=4, target_update=200,
        eps_end=0.05, eval_every=600, eval_episodes=20, checkpoint_every=0,
    )
    make = lambda: SyncVectorEnv([LitColumnEnv for _ in range(4)])  # noqa: E731
    result = train_dqn(make, config, tmp_path)
    assert result.last_eval.mean_return >= 7.0  # random: 2.0, seeds 0-5 all reach 8.0
    # Episodes with at least one miss; random: 1 - 0.25^8, i.e. nearly all.
    assert result.last_eval.collision_rate <= 0.15
    agent = DQNAgent.load(tmp_path / "best.pt")
    env = LitColumnEnv()
    obs, _ = env.reset(seed=123)
    hits = 0
    for _ in range(20):
        hits += agent.act(obs) == env.lit
        obs, *_ = env.step(0)
        if env.t >= env.length:
            obs, _ = env.reset()
    assert hits >= 18


def test_vector_dqn_with_per_and_n_step_walks_the_corridor(tmp_path: Path) -> None:
    """MLP trunk, prioritized 3-step double DQN: the reward is 7 steps away, so values
    must be bootstrapped. Greedy return 1.0 vs about 0.26 for a random policy."""
    config = tiny_config(
        total_steps=2000, num_envs=4, hidden=64, buffer_size=5000, batch_size=32, lr=1e-3,
        gamma=0.9, n_step=3, prioritized=True, learning_starts=200, train_freq=4,
        target_update=200, eps_end=0.05, eval_every=0, eval_episodes=8, checkpoint_every=0,
    )
    result = train_dqn(lambda: corridor_envs(4), config, tmp_path)
    assert result.last_eval.mean_return >= 0.9  # seeds 0-5 all reach 1.0; untrained: 0.0


def test_export_keeps_the_policy_in_half_precision(tmp_path: Path) -> None:
    from agents.dqn.export import main as export_main

    run = tmp_path / "run"
    train_dqn(lambda: corridor_envs(), tiny_config(), run)
    (run / "env.json").write_text('{"id": "x", "options": {}}')
    out = tmp_path / "shipped"
    assert export_main([str(run), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "env.json"]
    assert (out / "env.json").read_text() == (run / "env.json").read_text()
    full, small = load_checkpoint(run / "best.pt"), load_checkpoint(out / "best.pt")
    assert set(small) == {"format", "network", "online", "config", "step"}
    assert small["network"] == full["network"] and small["step"] == full["step"]
    assert all(w.dtype == torch.float16 for w in small["online"].values())
    for k, w in full["online"].items():  # float16 rounding only: 11 significant bits
        torch.testing.assert_close(small["online"][k].float(), w, rtol=1e-3, atol=1e-4)
    assert (out / "best.pt").stat().st_size < (run / "best.pt").stat().st_size / 3
    exact, shipped = DQNAgent.load(run / "best.pt"), DQNAgent.load(out / "best.pt")
    for i in range(8):
        obs = np.eye(8, dtype=np.float32)[i]
        np.testing.assert_allclose(shipped.action_values(obs), exact.action_values(obs),
                                   rtol=1e-2, atol=1e-3)


def test_export_errors_name_what_is_missing(tmp_path: Path, capsys) -> None:
    from agents.dqn.checkpoint import export_policy
    from agents.dqn.export import main as export_main

    assert export_main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "env.json" in capsys.readouterr().err
    (tmp_path / "env.json").write_text("{}")
    assert export_main([str(tmp_path), str(tmp_path / "out")]) == 2
    assert "best.pt: checkpoint file not found" in capsys.readouterr().err
    save_checkpoint(tmp_path / "partial.pt", {"network": {}, "online": {}})
    with pytest.raises(CheckpointError, match="incomplete checkpoint, it lacks config, step"):
        export_policy(tmp_path / "partial.pt", tmp_path / "x.pt")
    with pytest.raises(ValueError, match="floating-point torch dtype"):
        export_policy(tmp_path / "partial.pt", tmp_path / "x.pt", torch.int8)
