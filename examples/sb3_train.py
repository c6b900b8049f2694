"""Stable-Baselines3 on lanesim, with no custom wrappers.

    python examples/sb3_train.py dqn --steps 20000   # DQN, CnnPolicy, 4 x 84 x 84 pixels
    python examples/sb3_train.py ppo --steps 100000  # PPO, MlpPolicy, kinematics, 16 batched worlds

DQN trains on a plain ``gym.make`` env: the pixel observation is channel-first uint8, exactly
what SB3's CnnPolicy expects. PPO trains on lanesim's batched simulator through
``make_sb3_vec_env``, SB3's own VecEnv interface over all worlds at once.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from stable_baselines3 import DQN, PPO

import lanesim  # noqa: F401  (registers the ids)
from lanesim.envs.sb3 import make_sb3_vec_env


def train_dqn(steps: int, seed: int = 0, **options) -> DQN:
    env = gym.make("lanesim/Highway-v0", observation="pixels", **options)
    model = DQN("CnnPolicy", env, buffer_size=min(50_000, 10 * steps),
                learning_starts=min(1_000, steps // 4), seed=seed, verbose=0)
    return model.learn(steps)


def train_ppo(steps: int, seed: int = 0, num_envs: int = 16, **options) -> PPO:
    venv = make_sb3_vec_env("lanesim/Highway-v0", num_envs=num_envs, seed=seed,
                            observation="kinematics", **options)
    model = PPO("MlpPolicy", venv, n_steps=max(steps // num_envs // 4, 16), batch_size=64,
                seed=seed, verbose=0)
    return model.learn(steps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=("dqn", "ppo"))
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = (train_dqn if args.algo == "dqn" else train_ppo)(args.steps, args.seed)
    print(f"trained {model.num_timesteps} steps")


if __name__ == "__main__":
    main()
