"""The native batched vector env (Gymnasium 1.x vector API) and the Stable-Baselines3 adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode

import lanesim  # noqa: F401
from lanesim.envs import ActionError, DrivingVectorEnv, OptionError

ENV = "lanesim/Highway-v0"
# Small worlds and short episodes keep every test fast; traffic is kept (it exercises the most).
SMALL = dict(lanes=2, vehicles=4, duration=2.0)
OBSERVATIONS = ("kinematics", "occupancy", "pixels")
ACTIONS = ("discrete", "meta", "continuous")


def _id_and_options(scenario: str | None, options: dict) -> tuple[str, dict]:
    """``ENV`` shrunk to SMALL, or a bundled scenario as it is (through Drive-v0)."""
    if scenario is None:
        return ENV, {**SMALL, **options}
    return "lanesim/Drive-v0", {"scenario": scenario, **options}


def make_vec(n: int = 3, scenario: str | None = None, **options) -> DrivingVectorEnv:
    env_id, options = _id_and_options(scenario, options)
    return gym.make_vec(env_id, num_envs=n, **options)


def make_single(scenario: str | None = None, **options):
    env_id, options = _id_and_options(scenario, options)
    return gym.make(env_id, **options)


def assert_info_equal(vec_info: dict, single_info: dict, i: int) -> None:
    """Row ``i`` of a vector info equals a single env's info (masks aside)."""
    keys = {k for k in vec_info if not k.startswith("_")}
    assert keys == set(single_info)
    for k in keys:
        if isinstance(single_info[k], dict):
            assert_info_equal(vec_info[k], single_info[k], i)
        else:
            np.testing.assert_array_equal(vec_info[k][i], single_info[k], err_msg=k)


def random_actions(space: gym.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=n)
    return rng.uniform(-1.0, 1.0, size=(n, *space.shape)).astype(np.float32)


def run_against_single_envs(options: dict, n: int, steps: int, seed: int = 3) -> int:
    """Step a vector env and ``n`` single envs side by side with the same seeds and actions,
    emulating next-step autoreset on the singles; assert every output is identical.
    Returns the number of episodes that ended."""
    vec = make_vec(n, **options)
    singles = [make_single(**options) for _ in range(n)]
    obs, info = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        o, inf = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], o)
        assert_info_equal(info, inf, i)
    rng = np.random.default_rng(seed)
    done = np.zeros(n, dtype=bool)
    ended = 0
    for _ in range(steps):
        actions = random_actions(vec.single_action_space, n, rng)
        obs, reward, terminated, truncated, info = vec.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                o, inf = env.reset()
                r, te, tr = 0.0, False, False
            else:
                o, r, te, tr, inf = env.step(actions[i])
            np.testing.assert_array_equal(obs[i], o)
            assert (reward[i], terminated[i], truncated[i]) == (r, te, tr)
            assert_info_equal(info, inf, i)
        done = terminated | truncated
        ended += int(done.sum())
    return ended


# ---------------------------------------------------------------- construction and spaces
def test_make_vec_returns_the_native_vector_env():
    env = gym.make_vec(ENV, num_envs=4, vehicles=3)
    assert type(env) is DrivingVectorEnv  # not SyncVectorEnv / AsyncVectorEnv
    assert env.num_envs == 4
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert DrivingVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.spec is not None and env.spec.id == ENV
    assert env.unwrapped is env
    # Every registered lanesim id has the batched entry point.
    for env_id in lanesim.ENVIRONMENTS:
        assert gym.spec(env_id).vector_entry_point == "lanesim.envs.vector:DrivingVectorEnv"


@pytest.mark.parametrize("observation", OBSERVATIONS)
@pytest.mark.parametrize("action", ACTIONS)
def test_batched_spaces_shapes_and_dtypes(observation, action):
    n = 3
    env = make_vec(n, observation=observation, action=action)
    single = make_single(observation=observation, action=action)
    assert env.single_observation_space == single.observation_space
    assert env.single_action_space == single.action_space
    assert env.observation_space.shape == (n, *single.observation_space.shape)
    assert env.observation_space.dtype == single.observation_space.dtype
    if action == "continuous":
        assert env.action_space.shape == (n, 2) and env.action_space.dtype == np.float32
    else:
        assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
        assert env.action_space.shape == (n,)
        assert (env.action_space.nvec == single.action_space.n).all()
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == env.observation_space.shape and obs.dtype == env.observation_space.dtype
        assert obs in env.observation_space
        assert reward.shape == (n,) and reward.dtype == np.float64
        assert terminated.shape == truncated.shape == (n,)
        assert terminated.dtype == truncated.dtype == np.bool_
    if observation == "pixels":
        assert obs.shape == (n, 4, 84, 84) and obs.dtype == np.uint8


@pytest.mark.parametrize("observation", OBSERVATIONS)
def test_returned_arrays_are_not_overwritten_by_later_steps(observation):
    # Replay buffers keep what step() returns: it must not alias the env's internal buffers.
    vec = make_vec(2, observation=observation, action="meta")
    obs, _ = vec.reset(seed=0)
    kept = [obs.copy()]
    outs = [obs]
    for _ in range(3):
        obs, reward, terminated, truncated, info = vec.step(np.array([0, 2]))
        kept.append(obs.copy())
        outs.append(obs)
        kept_speed, speed = info["speed"].copy(), info["speed"]
    vec.step(np.array([3, 4]))
    for o, k in zip(outs, kept, strict=True):
        np.testing.assert_array_equal(o, k)
    np.testing.assert_array_equal(speed, kept_speed)


def test_info_has_the_layout_of_gymnasiums_own_vector_envs():
    """Same keys, masks, nesting, dtypes and shapes as SyncVectorEnv over single envs."""
    ours = make_vec(3)
    sync = gym.make_vec(ENV, num_envs=3, vectorization_mode="sync", **SMALL)
    _, a = ours.reset(seed=1)
    _, b = sync.reset(seed=1)

    def layout(info):
        return {
            k: layout(v) if isinstance(v, dict) else (v.dtype, v.shape) for k, v in info.items()
        }

    assert layout(a) == layout(b)
    assert a["_speed"].all() and a["rewards"]["_progress"].all()
    a = ours.step(np.zeros(3, dtype=np.int64))[4]
    b = sync.step(np.zeros(3, dtype=np.int64))[4]
    assert layout(a) == layout(b)


def test_gymnasiums_vector_wrappers_work_on_it():
    from gymnasium.wrappers.vector import DictInfoToList, RecordEpisodeStatistics

    env = DictInfoToList(RecordEpisodeStatistics(make_vec(2, vehicles=0, action="meta",
                                                          duration=1.0, policy_hz=5)))
    env.reset(seed=0)
    for _ in range(5):  # every world truncates on the 5th decision
        _, _, _, truncated, infos = env.step(np.ones(2, dtype=np.int64))
    assert truncated.all()
    assert isinstance(infos, list) and len(infos) == 2
    for info in infos:
        assert info["episode"]["l"] == 5
        assert set(info["rewards"]) == {"lane_keeping", "progress", "collision", "offroad",
                                        "lane_change", "comfort"}


# ---------------------------------------------------------------- seeding and equivalence
def test_reset_seed_s_gives_sub_env_i_the_single_env_seeded_s_plus_i():
    vec = make_vec(4, vehicles=10)
    obs, info = vec.reset(seed=42)
    for i in range(4):
        o, inf = make_single(vehicles=10).reset(seed=42 + i)
        np.testing.assert_array_equal(obs[i], o)
        assert_info_equal(info, inf, i)
    # A list gives one seed each; the same list reproduces the same worlds.
    again, _ = vec.reset(seed=[42, 43, 44, 45])
    np.testing.assert_array_equal(again, obs)
    # Unseeded resets draw new worlds from each sub-environment's generator.
    other, _ = vec.reset()
    assert not np.array_equal(other, obs)


@pytest.mark.parametrize(
    "options",
    [
        dict(observation="kinematics", action="discrete"),
        dict(observation="kinematics", action="continuous"),
        dict(observation="occupancy", action="meta"),
        dict(observation="pixels", action="discrete"),
    ],
    ids=lambda o: f"{o['observation']}-{o['action']}",
)
def test_matches_single_envs_over_several_episodes_without_traffic(options):
    # Random steering leaves the road at different times in each world, so resets are staggered.
    ended = run_against_single_envs({**options, "vehicles": 0}, n=3, steps=40)
    assert ended >= 6


@pytest.mark.parametrize("action", ["discrete", "meta"])
def test_matches_single_envs_in_traffic_within_the_first_episode(action):
    # One episode (duration 2 s, 10 decisions): every world resets together.
    run_against_single_envs({"action": action, "vehicles": 12, "lanes": 3}, n=4, steps=9)


@pytest.mark.parametrize(
    "scenario, options",
    [
        # Short recycling distance: cars are recycled (random draws) in some worlds, not others.
        ("highway", {"vehicles": 12, "lanes": 3, "recycle_distance": 60.0}),
        ("dense", {"vehicles": 20}),  # sudden braking: random draws every step
        ("merge", {"vehicles": 10}),  # an on-ramp that ends: mandatory lane changes
        ("roadworks", {"vehicles": 10, "ego_start": 380.0}),  # cones and a closing lane
        ("racetrack", {"ego_start": 1950.0}),  # a closed road: every episode crosses its seam
        ("twoway", {}),  # oncoming traffic, recycled ahead of the ego
    ],
)
def test_matches_single_envs_in_traffic_over_several_episodes(scenario, options):
    # Worlds crash and reset at different steps, so each world's clock (lane-change decisions,
    # recycling) and random stream must be its own, whatever the rest of the batch does.
    ended = run_against_single_envs(
        {"scenario": scenario, "action": "discrete", "duration": 2.0, **options}, n=4, steps=50
    )
    assert ended >= 8


# ---------------------------------------------------------------- autoreset
def test_next_step_autoreset_returns_the_reset_and_ignores_the_action():
    n = 3
    vec = make_vec(n, vehicles=0, action="meta", duration=1.0, policy_hz=5)
    vec.reset(seed=7)
    singles = [make_single(vehicles=0, action="meta", duration=1.0, policy_hz=5) for _ in range(n)]
    for i, env in enumerate(singles):
        env.reset(seed=7 + i)
    idle = np.ones(n, dtype=np.int64)
    for _ in range(5):  # 1 s at 5 decisions per second: every world truncates on the 5th
        obs, reward, terminated, truncated, info = vec.step(idle)
    assert truncated.all() and not terminated.any()
    # The next step resets every world: this action is out of range, yet it is ignored.
    obs, reward, terminated, truncated, info = vec.step(np.array([99, -1, 7]))
    assert (reward == 0.0).all() and not terminated.any() and not truncated.any()
    for i, env in enumerate(singles):
        o, inf = env.reset()  # the next episode of the same seed sequence
        np.testing.assert_array_equal(obs[i], o)
        assert_info_equal(info, inf, i)
    assert (info["distance"] == 0.0).all()
    assert all((v == 0.0).all() for k, v in info["rewards"].items() if not k.startswith("_"))
    # After that, actions count (and are checked) again.
    with pytest.raises(ActionError):
        vec.step(np.array([99, 1, 1]))


def test_pixel_stacks_are_per_sub_env_and_reset_on_autoreset():
    vec = make_vec(2, vehicles=0, observation="pixels", action="meta", duration=1.0, policy_hz=5)
    obs, _ = vec.reset(seed=0)
    for i in range(2):  # a reset fills the stack with copies of the first frame
        assert all(np.array_equal(obs[i, k], obs[i, -1]) for k in range(4))
    prev = obs
    for _ in range(5):
        obs, *_ = vec.step(np.ones(2, dtype=np.int64))
        np.testing.assert_array_equal(obs[:, :-1], prev[:, 1:])  # shifted by one, newest last
        prev = obs
    obs, *_ = vec.step(np.ones(2, dtype=np.int64))  # autoreset
    for i in range(2):
        assert all(np.array_equal(obs[i, k], obs[i, -1]) for k in range(4))


def test_reset_mask_resets_only_the_selected_sub_envs():
    vec = make_vec(3, vehicles=0, action="meta")
    vec.reset(seed=0)
    for _ in range(3):
        before, *_ = vec.step(np.ones(3, dtype=np.int64))
    mask = np.array([False, True, False])
    obs, info = vec.reset(seed=[None, 50, None], options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[[0, 2]], before[[0, 2]])
    np.testing.assert_array_equal(obs[1], make_single(vehicles=0, action="meta").reset(seed=50)[0])
    np.testing.assert_array_equal(info["_speed"], mask)
    with pytest.raises(OptionError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.zeros(3, dtype=bool)})
    with pytest.raises(OptionError, match="reset_mask"):
        vec.reset(options={"reset_mask": [True, False, True]})


def test_max_episode_steps_truncates_exactly_as_make_does():
    # TimeLimit's rule: truncated on the limit's step even when that step also terminates.
    ended = run_against_single_envs({"vehicles": 0, "duration": 40.0, "max_episode_steps": 4},
                                    n=3, steps=30)
    assert ended >= 18


def test_max_episode_steps_beyond_duration_warns_and_duration_ends_the_episode():
    with pytest.warns(UserWarning, match=r"max_episode_steps=1000 is never reached: "
                                         r"duration=2.0 s truncates episodes after 10 decisions"):
        vec = make_vec(2, vehicles=0, action="meta", max_episode_steps=1000)
    vec.reset(seed=0)
    for _ in range(10):
        *_, truncated, _ = vec.step(np.ones(2, dtype=np.int64))
    assert truncated.all()


# ---------------------------------------------------------------- same-step autoreset
def assert_vector_info_equal(a: dict, b: dict, path: str = "info") -> None:
    """Equal keys, masks, dtypes and values, recursively; object arrays (``final_obs``) by item."""
    assert set(a) == set(b), path
    for k in a:
        where = f"{path}[{k!r}]"
        if isinstance(b[k], dict):
            assert_vector_info_equal(a[k], b[k], where)
        elif b[k].dtype == object:
            assert a[k].dtype == object, where
            for x, y in zip(a[k], b[k], strict=True):
                assert (x is None) == (y is None), where
                if y is not None:
                    np.testing.assert_array_equal(x, y, err_msg=where)
        else:
            assert a[k].dtype == b[k].dtype, where
            np.testing.assert_array_equal(a[k], b[k], err_msg=where)


@pytest.mark.parametrize("options", [
    dict(action="discrete"),
    dict(action="continuous", observation="pixels", vehicles=0),
    dict(scenario="roadworks", vehicles=10, ego_start=380.0, duration=2.0, max_episode_steps=7),
], ids=["discrete", "pixels", "roadworks-limit"])
def test_same_step_autoreset_matches_sync_vector_env_episode_for_episode(options):
    n, seed = 3, 4
    env_id, options = _id_and_options(options.pop("scenario", None), options)
    ours = gym.make_vec(env_id, num_envs=n, autoreset_mode=AutoresetMode.SAME_STEP, **options)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **options)
    assert ours.autoreset_mode == ours.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert sync.autoreset_mode == AutoresetMode.SAME_STEP
    (o1, i1), (o2, i2) = ours.reset(seed=seed), sync.reset(seed=seed)
    np.testing.assert_array_equal(o1, o2)
    assert_vector_info_equal(i1, i2)
    rng = np.random.default_rng(seed)
    ended = 0
    for _ in range(40):
        actions = random_actions(ours.single_action_space, n, rng)
        a, b = ours.step(actions), sync.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        assert_vector_info_equal(a[4], b[4])
        done = a[2] | a[3]
        np.testing.assert_array_equal(a[4].get("_final_obs", np.zeros(n, dtype=bool)), done)
        ended += int(done.sum())
    assert ended >= 8


def test_masked_reset_info_matches_sync_vector_env():
    ours = make_vec(3, vehicles=0, action="meta")
    sync = gym.make_vec(ENV, num_envs=3, vectorization_mode="sync",
                        **{**SMALL, "vehicles": 0, "action": "meta"})
    for env in (ours, sync):
        env.reset(seed=0)
        for _ in range(3):
            env.step(np.ones(3, dtype=np.int64))
    mask = np.array([False, True, False])
    o1, i1 = ours.reset(seed=[None, 50, None], options={"reset_mask": mask.copy()})
    o2, i2 = sync.reset(seed=[None, 50, None], options={"reset_mask": mask.copy()})
    np.testing.assert_array_equal(o1, o2)
    assert_vector_info_equal(i1, i2)  # the other rows are zero, masked out


def test_autoreset_mode_is_an_attribute_next_step_by_default():
    vec = make_vec(2)
    assert vec.autoreset_mode == vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    same = make_vec(2, autoreset_mode="SameStep")  # the enum's value, as SyncVectorEnv takes
    assert same.autoreset_mode is AutoresetMode.SAME_STEP


def test_disabled_autoreset_needs_a_masked_reset_of_the_ended_worlds():
    vec = make_vec(2, vehicles=0, action="meta", autoreset_mode=AutoresetMode.DISABLED,
                   max_episode_steps=3)
    vec.reset(seed=0)
    for _ in range(3):
        *_, truncated, _ = vec.step(np.ones(2, dtype=np.int64))
    assert truncated.all()
    with pytest.raises(ResetNeeded, match=r"sub-environments \[0, 1\] ended"):
        vec.step(np.ones(2, dtype=np.int64))
    vec.reset(options={"reset_mask": np.array([True, True])})
    *_, truncated, info = vec.step(np.ones(2, dtype=np.int64))
    assert not truncated.any() and "final_obs" not in info


# ---------------------------------------------------------------- reset options
def test_reset_options_apply_to_every_world_and_persist_across_autoresets():
    n, changes = 3, {"duration": 1.0, "vehicles": 2, "traffic_speed": [15.0, 16.0]}
    vec = make_vec(n, action="meta", vehicles=0)
    obs, info = vec.reset(seed=9, options=changes)
    for i in range(n):
        o, inf = make_single(action="meta", **changes).reset(seed=9 + i)
        np.testing.assert_array_equal(obs[i], o)
        assert_info_equal(info, inf, i)
    for _episode in range(2):  # 1 s at 5 decisions per second, then the autoreset's episode
        for _ in range(5):
            *_, truncated, _ = vec.step(np.ones(n, dtype=np.int64))
        assert truncated.all()
        vec.step(np.ones(n, dtype=np.int64))  # next-step autoreset
    assert vec.options.duration == 1.0 and vec.world.N == 1 + 2


def test_reset_options_with_a_reset_mask_are_refused():
    vec = make_vec(2)
    vec.reset(seed=0)
    with pytest.raises(OptionError, match="reset them all"):
        vec.reset(options={"reset_mask": np.array([True, False]), "vehicles": 1})


def test_sb3_adapter_steps_the_worlds_made_by_reset_options():
    from lanesim.envs.sb3 import SB3VecEnv

    vec = make_vec(2, vehicles=0, action="meta")
    venv = SB3VecEnv(vec)
    vec.reset(seed=0, options={"duration": 1.0})
    venv.reset()
    for _ in range(5):
        *_, dones, _ = venv.step(np.ones(2, dtype=np.int64))
    assert dones.all()


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "action, actions, message",
    [
        ("discrete", np.zeros(4, dtype=np.int64), r"shape \(3,\)"),
        ("discrete", 0, r"shape \(3,\)"),
        ("discrete", np.array([0, 1, 15]), r"\[0, 14\]"),
        ("discrete", np.array([0, -1, 2]), r"\[0, 14\]"),
        ("discrete", np.array([0.0, 1.0, 2.0]), "integer"),
        ("meta", np.array([0, 1, 5]), r"\[0, 4\]"),
        ("continuous", np.zeros(3), r"shape \(3, 2\)"),
        ("continuous", np.zeros((3, 3)), r"shape \(3, 2\)"),
        ("continuous", [[0.0, 0.0], [0.0], [0.0, 0.0]], "ragged"),
        ("continuous", np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 0.0]]), r"\[-1, 1\]"),
        ("continuous", np.array([[0.0, np.nan], [0.0, 0.0], [0.0, 0.0]]), r"\[-1, 1\]"),
    ],
)
def test_bad_actions_raise_action_error(action, actions, message):
    vec = make_vec(3, vehicles=0, action=action)
    vec.reset(seed=0)
    with pytest.raises(ActionError, match=message):
        vec.step(actions)


def test_bad_use_raises_clear_errors():
    with pytest.raises(OptionError, match="num_envs"):
        DrivingVectorEnv(0)
    with pytest.raises(OptionError, match="render_mode must be one of rgb_array or None, got 'hu"):
        DrivingVectorEnv(2, render_mode="human")
    with pytest.raises(OptionError, match="unknown option"):
        gym.make_vec(ENV, num_envs=2, vehicels=3)
    vec = make_vec(2)
    with pytest.raises(ResetNeeded):
        vec.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(OptionError, match="one seed per sub-environment"):
        vec.reset(seed=[1, 2, 3])
    with pytest.raises(OptionError, match="'lanes' cannot change at reset"):
        vec.reset(options={"lanes": 3})
    with pytest.raises(OptionError, match="max_episode_steps must be a positive integer"):
        gym.make_vec(ENV, num_envs=2, max_episode_steps=0)
    with pytest.raises(OptionError, match="autoreset_mode must be an AutoresetMode or one of"):
        gym.make_vec(ENV, num_envs=2, autoreset_mode="same")


# ---------------------------------------------------------------- Stable-Baselines3 adapter
sb3 = pytest.importorskip("stable_baselines3")


def test_sb3_adapter_matches_dummy_vec_env_of_single_envs():
    from stable_baselines3.common.vec_env import DummyVecEnv

    from lanesim.envs.sb3 import make_sb3_vec_env

    n, options = 3, {**SMALL, "vehicles": 0, "action": "continuous"}
    ours = make_sb3_vec_env(ENV, n, seed=11, monitor=False, **options)
    ref = DummyVecEnv([lambda: gym.make(ENV, **options)] * n)
    ref.seed(11)
    np.testing.assert_array_equal(ours.reset(), ref.reset())
    assert ours.reset_infos == ref.reset_infos
    rng = np.random.default_rng(0)
    dones = 0
    for _ in range(30):
        actions = random_actions(ours.action_space, n, rng)
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = ref.step(actions)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        assert r1.dtype == r2.dtype and d1.dtype == d2.dtype
        for a, b in zip(i1, i2, strict=True):
            assert set(a) == set(b)
            np.testing.assert_equal(a, b)
        dones += int(d1.sum())
    assert dones >= 4
    assert ours.reset_infos == ref.reset_infos


def test_sb3_adapter_resets_in_the_same_step_with_terminal_observation():
    from lanesim.envs.sb3 import make_sb3_vec_env

    n = 2
    options = {**SMALL, "vehicles": 0, "action": "meta", "duration": 1.0, "policy_hz": 5}
    venv = make_sb3_vec_env(ENV, n, seed=0, monitor=False, **options)
    obs = venv.reset()
    assert isinstance(obs, np.ndarray) and obs.shape == (n, 9, 8)
    assert obs.dtype == np.float32
    for _ in range(5):
        last = obs
        obs, rewards, dones, infos = venv.step(np.ones(n, dtype=np.int64))
        assert isinstance(infos, list) and len(infos) == n
        assert rewards.shape == (n,) and rewards.dtype == np.float32
    assert dones.all()
    for i, info in enumerate(infos):
        terminal = info["terminal_observation"]
        assert terminal.shape == (9, 8) and not np.array_equal(terminal, obs[i])
        assert not np.array_equal(terminal, last[i])
        assert info["TimeLimit.truncated"] is True
        assert {"speed", "distance", "rewards"} <= set(info)
    assert all(info["distance"] == 0.0 for info in venv.reset_infos)
    # The returned observation already belongs to the new episode.
    expect = gym.make(ENV, **options)
    expect.reset(seed=0)
    np.testing.assert_array_equal(obs[0], expect.reset()[0])


def test_sb3_adapter_truncates_at_max_episode_steps_like_a_time_limit():
    from lanesim.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env(ENV, 2, seed=0, monitor=False, vehicles=0, action="meta",
                            max_episode_steps=3)
    venv.reset()
    for _ in range(3):
        *_, dones, infos = venv.step(np.ones(2, dtype=np.int64))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)


def test_sb3_adapter_attributes_seed_and_errors():
    from lanesim.envs.sb3 import SB3VecEnv, make_sb3_vec_env

    venv = make_sb3_vec_env(ENV, 3, monitor=False, **SMALL)
    assert venv.num_envs == 3
    assert venv.get_attr("observation_space") == [venv.observation_space] * 3
    assert venv.get_attr("options", indices=[1])[0].vehicles == SMALL["vehicles"]
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 3
    assert venv.seed(5) == [5, 6, 7]
    first = venv.reset()
    venv.seed(5)
    np.testing.assert_array_equal(venv.reset(), first)
    venv.set_attr("marker", 1)
    assert venv.get_attr("marker") == [1, 1, 1]
    with pytest.raises(NotImplementedError, match="share one batched simulator"):
        venv.set_attr("marker", 2, indices=[0])
    with pytest.raises(ActionError):
        venv.step(np.zeros(2, dtype=np.int64))
    venv.set_options([None, {"vehicles": 2}, None])  # SB3 resets take no options: refused
    with pytest.raises(OptionError, match=r"reset\(options=...\) is not supported .*vehicles"):
        venv.reset()
    with pytest.raises(TypeError, match="DrivingVectorEnv"):
        SB3VecEnv(gym.make_vec(ENV, num_envs=2, vectorization_mode="sync", **SMALL))


def test_sb3_ppo_trains_on_the_batched_env():
    from stable_baselines3 import PPO

    from lanesim.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env(ENV, 8, seed=0, **SMALL)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0)
    model.learn(256)
    assert model.num_timesteps >= 256


def test_sb3_cnn_policy_takes_channel_first_pixels_without_transpose():
    from stable_baselines3 import PPO
    from stable_baselines3.common.preprocessing import (
        is_image_space,
        is_image_space_channels_first,
    )
    from stable_baselines3.common.vec_env import VecTransposeImage, is_vecenv_wrapped

    from lanesim.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env(ENV, 2, seed=0, observation="pixels", **SMALL)
    space = venv.observation_space
    assert space.shape == (4, 84, 84) and space.dtype == np.uint8
    assert is_image_space(space) and is_image_space_channels_first(space)
    model = PPO("CnnPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0)
    assert not is_vecenv_wrapped(model.get_env(), VecTransposeImage)
    assert model.observation_space.shape == (4, 84, 84)
    model.learn(16)
