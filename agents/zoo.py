"""Agents by name, for the command line: ``vi``, ``dqn``, ``random``, ``idle``, ``keyboard``
(the arrow keys of a human-mode window) or the path of a checkpoint or training directory of
``lanesim train`` (a DQN ``.pt``, an SB3 ``latest.zip``).

:func:`load_agent` returns the agent together with the environment options it needs on any
road (a meta-action agent needs ``action="meta"``, a pixel DQN the observation, actions and
decision rate it was trained with) and, for a trained agent, the whole environment it was
trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.baselines import IdleAgent, RandomAgent
from agents.run_dir import read_algo, read_env_spec

# The DQN shipped with lanesim, trained by the command in README's DQN section, and the one
# that drives by the driver's-seat camera (docs/observation_study.md says how it was made).
SHIPPED_DQN = Path(__file__).resolve().parent / "checkpoints" / "dqn_highway"
SHIPPED_CAMERA_DQN = Path(__file__).resolve().parent / "checkpoints" / "dqn_camera"
SHIPPED = {"dqn": SHIPPED_DQN, "dqn-camera": SHIPPED_CAMERA_DQN}
NAMES = ("vi", "dqn", "dqn-camera", "random", "idle", "keyboard")


@dataclass
class LoadedAgent:
    agent: Any
    env_options: dict[str, Any] = field(default_factory=dict)
    training_dir: Path | None = None
    # Every option of the environment it was trained on (its env.json), if known.
    training_options: dict[str, Any] | None = None


# The options that make an environment fit an agent's inputs and outputs; the rest (the road,
# the traffic, the rewards) may differ from training, as when a Highway agent tries Roadworks.
INTERFACE_OPTIONS = (
    "observation",
    "action",
    "image_shape",
    "frame_stack",
    "speed_bar",
    "observed_vehicles",
    "perception_distance",
    "policy_hz",
    "sim_hz",
    "meta_speeds",
    # What the camera and the bird's-eye view show depends on the camera.
    "camera_fov",
    "camera_intrinsics",
    "camera_distortion",
    "camera_height",
    "camera_forward",
    "camera_pitch",
    "camera_yaw",
    "camera_color",
    "birdseye_extent",
    "birdseye_resolution",
)


def _checkpoint_in(path: Path) -> Path:
    """The checkpoint an agent path names: the file itself, or a training directory's
    ``best.pt``, ``latest.pt`` (lanesim's DQN) or ``latest.zip`` (an SB3 baseline)."""
    if path.is_dir():
        for name in ("best.pt", "latest.pt", "latest.zip"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path} holds no best.pt, latest.pt or latest.zip: not a training directory")
    if path.exists():
        return path
    raise FileNotFoundError(f"agent {str(path)!r}: no such checkpoint or directory")


def _trained_from_path(path: Path) -> LoadedAgent:
    ckpt = _checkpoint_in(path)
    run_dir = ckpt.parent
    options: dict[str, Any] = {"observation": "pixels", "action": "discrete"}
    trained_on = None
    if (run_dir / "env.json").exists():
        env_id, trained_on = read_env_spec(run_dir)
        trained_on.pop("scenario", None)
        options = {k: v for k, v in trained_on.items() if k in INTERFACE_OPTIONS}
    if ckpt.suffix != ".zip":
        from agents.dqn.agent import DQNAgent

        return LoadedAgent(DQNAgent.load(ckpt), options, run_dir, trained_on)
    from agents.sb3 import SB3Policy

    algo = read_algo(run_dir) if trained_on is not None else None
    if algo is None:
        raise FileNotFoundError(
            f"{ckpt}: an SB3 model needs the env.json that 'lanesim train sb3-dqn/sb3-ppo' "
            f"wrote beside it (naming its algorithm and environment); {run_dir} has none")
    return LoadedAgent(SB3Policy.load(algo, ckpt, env_id, trained_on), options, run_dir,
                       trained_on)


def load_agent(spec: str, seed: int = 0) -> LoadedAgent:
    """The agent named by ``spec`` and the environment options it needs.

    Raises FileNotFoundError or ValueError (with the accepted names) for a bad ``spec``, and
    :class:`agents.dqn.CheckpointError` for a damaged or foreign checkpoint.
    """
    if spec == "vi":
        from agents.vi_driver import VIDriver

        return LoadedAgent(VIDriver(), {"action": "meta"})
    if spec == "random":
        return LoadedAgent(RandomAgent(seed), {"action": "meta"})
    if spec == "idle":
        return LoadedAgent(IdleAgent(), {"action": "meta"})
    if spec == "keyboard":
        from lanesim.render.keyboard import KeyboardAgent

        return LoadedAgent(KeyboardAgent(), {"action": "continuous"})
    if spec in SHIPPED:
        if not SHIPPED[spec].exists():
            raise FileNotFoundError(f"the shipped DQN checkpoint {SHIPPED[spec]} is missing")
        return _trained_from_path(SHIPPED[spec])
    path = Path(spec)
    if path.suffix in (".pt", ".zip") or path.exists() or "/" in spec:
        return _trained_from_path(path)
    raise ValueError(
        f"unknown agent {spec!r}; choose one of {', '.join(NAMES)} or a checkpoint path"
    )
