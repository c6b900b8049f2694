"""CNN/MLP DQN with dueling heads, double and n-step targets, and (prioritized) replay.

Only the public Gymnasium API is used: train on any next-step-autoreset
``gymnasium.vector.VectorEnv`` with Discrete actions.
"""

from agents.dqn.agent import DQNAgent
from agents.dqn.checkpoint import CheckpointError
from agents.dqn.config import DQNConfig
from agents.dqn.network import QNetwork
from agents.dqn.replay import ReplayBuffer
from agents.dqn.train import TrainResult, linear_schedule, train_dqn

__all__ = [
    "CheckpointError",
    "DQNAgent",
    "DQNConfig",
    "QNetwork",
    "ReplayBuffer",
    "TrainResult",
    "linear_schedule",
    "train_dqn",
]
