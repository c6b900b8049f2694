"""Train PPO on a lanesim environment with Ray RLlib, on this machine or on a Ray cluster.

RLlib (new API stack: EnvRunners, RLModules, Learners) builds the environment from its
Gymnasium id. The id is given as ``"lanesim:lanesim/Highway-v0"``: the ``lanesim:`` prefix
makes Gymnasium import lanesim (which registers the ids) inside every Ray worker process.
Each EnvRunner steps ``--envs-per-runner`` worlds in one batched lanesim call (lanesim's own
vector env, ``gym_env_vectorize_mode="vector_entry_point"``).

Install (Ray pins gymnasium==1.2.2, so use a separate venv; ``scripts/ray-test.sh`` makes
one at ``.venv-ray``)::

    pip install torch==2.13.0          # CPU wheel first
    pip install -e ".[ray]"            # or: pip install lanesim[ray]

Run locally (starts a private Ray instance with ``--num-cpus`` CPUs)::

    python examples/rllib_ppo.py --env-runners 2 --iterations 20

Run on a cluster (lanesim and the same Ray version must be installed on every machine)::

    ray get-auth-token --generate                # on the head: prints the cluster token
    RAY_AUTH_MODE=token ray start --head --port=6379                      # on the head
    RAY_AUTH_MODE=token RAY_AUTH_TOKEN=TOKEN ray start --address=HEAD_IP:6379   # on the others
    python examples/rllib_ppo.py --address auto --env-runners 16 --iterations 200   # on the head

From a machine outside the cluster, connect through Ray Client instead:
``RAY_AUTH_MODE=token RAY_AUTH_TOKEN=TOKEN python examples/rllib_ppo.py --address
ray://HEAD_IP:10001``. Each iteration prints the mean return of the episodes finished in it.
"""

from __future__ import annotations

import argparse
import os
import time

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)


def make_config(
    env_id: str = "lanesim/Highway-v0",
    env_runners: int = 2,
    envs_per_runner: int = 4,
    rollout: int = 64,
    minibatch: int = 128,
    epochs: int = 5,
    hidden: int = 64,
    seed: int | None = 0,
    **env_options,
) -> PPOConfig:
    """A PPO config for ``env_id``; ``env_options`` are lanesim options (``gym.make`` kwargs).

    Each iteration collects ``env_runners × envs_per_runner × rollout`` decisions (at least
    one EnvRunner's worth when ``env_runners`` is 0: sampling then runs in the driver).
    """
    options = {"observation": "kinematics", "action": "meta", **env_options}
    batch = max(env_runners, 1) * envs_per_runner * rollout
    return (
        PPOConfig()
        .environment(
            env_id if ":" in env_id else f"lanesim:{env_id}",
            env_config=options,
        )
        .env_runners(
            num_env_runners=env_runners,
            num_envs_per_env_runner=envs_per_runner,
            gym_env_vectorize_mode="vector_entry_point",
            rollout_fragment_length=rollout,
            # Kinematics observations are (1 + observed_vehicles, 8): flatten them for the MLP.
            env_to_module_connector=lambda env, spaces, device: FlattenObservations(),
        )
        .training(
            train_batch_size_per_learner=batch,
            minibatch_size=min(minibatch, batch),
            num_epochs=epochs,
            lr=3e-4,
            gamma=0.95,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[hidden, hidden]))
        .debugging(seed=seed)
    )


def main(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, train, print one line per iteration; returns the last result."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="lanesim/Highway-v0", help="lanesim environment id")
    p.add_argument("--iterations", type=int, default=10, help="training iterations")
    p.add_argument("--env-runners", type=int, default=2, help="remote EnvRunner actors")
    p.add_argument("--envs-per-runner", type=int, default=4, help="worlds per EnvRunner")
    p.add_argument("--rollout", type=int, default=64, help="decisions per world per iteration")
    p.add_argument("--vehicles", type=int, default=10, help="traffic vehicles")
    p.add_argument("--duration", type=float, default=20.0, help="episode length (simulated s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join: 'auto' (on a cluster node) or 'ray://HEAD:10001'; "
        "default: start a local Ray instance",
    )
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--checkpoint", default=None, help="save the trained algorithm to this folder")
    args = p.parse_args(argv)

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)

    config = make_config(
        args.env,
        env_runners=args.env_runners,
        envs_per_runner=args.envs_per_runner,
        rollout=args.rollout,
        seed=args.seed,
        vehicles=args.vehicles,
        duration=args.duration,
    )
    algo = config.build_algo()
    result: dict = {}
    try:
        for i in range(1, args.iterations + 1):
            t0 = time.perf_counter()
            result = algo.train()
            runners = result[ENV_RUNNER_RESULTS]
            ret = runners.get(EPISODE_RETURN_MEAN, float("nan"))
            steps = runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
            print(
                f"iter {i:4d}  mean episode return {ret:8.3f}  "
                f"env steps {int(steps):8d}  ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
        if args.checkpoint:
            algo.save_to_path(os.path.abspath(args.checkpoint))
            print(f"checkpoint saved to {args.checkpoint}")
    finally:
        algo.stop()
        ray.shutdown()
    return result


if __name__ == "__main__":
    main()
