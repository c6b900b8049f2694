"""Same seed and actions give bit-identical runs; different seeds give different traffic."""

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401


def rollout(env_id, seed, observation="kinematics", steps=40):
    env = gym.make(env_id, observation=observation)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = [obs.copy()]
    rewards = []
    for _ in range(steps):
        obs, r, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        out.append(obs.copy())
        rewards.append(r)
        if terminated or truncated:
            obs, _ = env.reset()
    w = env.unwrapped.world
    return np.array(out), np.array(rewards), np.stack([w.x, w.y, w.speed])


@pytest.mark.parametrize(
    "env_id",
    [
        "lanesim/Highway-v0", "lanesim/Dense-v0", "lanesim/Merge-v0", "lanesim/Racetrack-v0",
        "lanesim/TwoWay-v0",
    ],
)
def test_same_seed_same_actions_are_bit_identical(env_id):
    a = rollout(env_id, 7)
    b = rollout(env_id, 7)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_pixels_are_deterministic_too():
    a = rollout("lanesim/Roadworks-v0", 3, observation="pixels", steps=10)
    b = rollout("lanesim/Roadworks-v0", 3, observation="pixels", steps=10)
    assert np.array_equal(a[0], b[0])


def test_different_seeds_give_different_traffic():
    env = gym.make("lanesim/Highway-v0")
    env.reset(seed=1)
    first = env.unwrapped.world.s.copy()
    env.reset(seed=2)
    assert not np.array_equal(first, env.unwrapped.world.s)


def test_unseeded_reset_after_seeded_continues_deterministically():
    def two_episodes():
        env = gym.make("lanesim/Highway-v0")
        env.reset(seed=5)
        env.reset()
        return env.unwrapped.world.s.copy()

    assert np.array_equal(two_episodes(), two_episodes())


def test_one_call_or_step_by_step_gives_the_same_world_with_sudden_braking():
    """Randomness is drawn per simulation step (sudden braking) and per decision step
    (recycling), so a decision run in one call equals it run frame by frame, as the viewer
    runs it: rendering cannot change the trajectory."""
    worlds = []
    for split in (False, True):
        env = gym.make("lanesim/Dense-v0", traffic_brake_rate=0.2)
        env.reset(seed=11)
        world = env.unwrapped.world
        frames = env.unwrapped.options.frames_per_decision
        braked = False
        for _ in range(6):
            if split:
                for _ in range(frames):
                    world.run(1, steer=np.zeros(1), accel=np.zeros(1))
            else:
                world.run(frames, steer=np.zeros(1), accel=np.zeros(1))
            braked |= bool((world.brake_timer > 0).any())
        assert braked  # the random braking events did happen
        worlds.append((world.F.copy(), world.I.copy(), world.rng.counter.copy()))
    for a, b in zip(*worlds, strict=True):
        assert np.array_equal(a, b)


def test_rendering_frame_by_frame_keeps_the_trajectory_with_sudden_braking():
    def rollout_render(mode):
        env = gym.make("lanesim/Dense-v0", traffic_brake_rate=0.2, render_mode=mode)
        env.reset(seed=4)
        out = []
        for a in [0, 1, 2] * 4:
            obs, r, *_ = env.step(a)
            out += [obs, r]
        env.close()
        return out

    plain, drawn = rollout_render(None), rollout_render("rgb_array")
    assert all(np.array_equal(a, b) for a, b in zip(plain, drawn, strict=True))


@pytest.mark.parametrize(
    "env_id",
    [
        "lanesim/Highway-v0", "lanesim/Merge-v0", "lanesim/Racetrack-v0", "lanesim/TwoWay-v0",
        "lanesim/Intersection-v0", "lanesim/Roundabout-v0", "lanesim/Exit-v0",
    ],
)
def test_a_seeded_reset_forgets_the_episode_before(env_id):
    """reset(seed=s) after an episode of another length gives the episode a fresh env gives
    (nothing of the episode before, such as a step counter, leaks into the next)."""
    def episode(env, seed, steps):
        obs, _ = env.reset(seed=seed)
        out = [obs.copy()]
        for t in range(steps):
            obs, r, terminated, truncated, _ = env.step(t % 2)
            out.append(obs.copy())
            if terminated or truncated:
                break
        return np.array(out)

    fresh = episode(gym.make(env_id, action="meta"), 7, 30)
    env = gym.make(env_id, action="meta")
    episode(env, 6, 13)
    np.testing.assert_array_equal(episode(env, 7, 30), fresh)
