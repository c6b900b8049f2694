"""The files of a training directory: ``env.json`` (the environment a run trained on, and
for an SB3 baseline its algorithm) and atomic writes, so a killed run never leaves a torn
file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import gymnasium as gym

ENV_FILE = "env.json"
# `lanesim train` names of the Stable-Baselines3 baselines (lanesim's own DQN is "dqn").
SB3_ALGOS = ("sb3-dqn", "sb3-ppo")


# How to watch is the viewer's choice, not part of the environment an agent was trained on.
_VIEWING_OPTIONS = ("screen_width", "screen_height", "road_overlay", "hud", "sim_speed")


def write_env_spec(
    out: Path, env_id: str, options: dict[str, Any], algo: str | None = None
) -> None:
    """Record the environment of a training run (atomically): every option resolved (the
    registered id's defaults, its scenario file, then ``options``), so the run can be watched and
    evaluated on the same environment even after a scenario file changes. ``algo`` (an SB3
    baseline's ``lanesim train`` name) says which SB3 class its ``latest.zip`` is."""
    from lanesim.envs.options import make_options

    kwargs = {**gym.spec(env_id).kwargs, **options}
    scenario = kwargs.pop("scenario", None)
    resolved = dataclasses.asdict(make_options(scenario, **kwargs))
    for key in _VIEWING_OPTIONS:
        resolved.pop(key)
    spec = {"id": env_id, "options": resolved, **({"algo": algo} if algo else {})}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / ENV_FILE, json.dumps(spec, indent=2))


def _env_json(out: Path) -> dict[str, Any]:
    path = Path(out) / ENV_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: not a lanesim training directory")
    try:
        spec = json.loads(path.read_text())
        if not isinstance(spec, dict) or "id" not in spec or not isinstance(
            spec.get("options"), dict
        ):
            raise ValueError("not an object with an 'id' and an 'options' object")
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{path} is corrupt ({e}); expected {{'id': ..., 'options': {{...}}}}"
        ) from None
    return spec


def read_env_spec(out: Path) -> tuple[str, dict[str, Any]]:
    """The environment id and options a training directory was made for, validated as
    ``gym.make`` validates them: a ValueError names the file and the bad id or option."""
    from lanesim.envs.options import OptionError, make_options

    path = Path(out) / ENV_FILE
    spec = _env_json(out)
    env_id, options = spec["id"], dict(spec["options"])
    if env_id not in gym.registry or not str(env_id).startswith("lanesim/"):
        raise ValueError(f"{path}: unknown environment id {env_id!r}; expected a lanesim/ id")
    try:
        make_options(**{k: v for k, v in options.items() if k != "scenario"})
    except OptionError as e:
        raise ValueError(f"{path}: {e}") from None
    return env_id, options


def read_algo(out: Path) -> str | None:
    """The SB3 baseline (``sb3-dqn``, ``sb3-ppo``) a training directory holds, if its env.json
    names one."""
    algo = _env_json(out).get("algo")
    if algo is not None and algo not in SB3_ALGOS:
        raise ValueError(f"{Path(out) / ENV_FILE}: unknown algo {algo!r}; expected one of "
                         f"{', '.join(SB3_ALGOS)}")
    return algo


def remove_stale_temp_files(out: Path) -> None:
    """Delete the temp files that atomic writes into ``out`` leave when their process is killed
    mid-write (``.NAME.XXXXXXXX.tmp``); a run calls it as it starts."""
    for tmp in Path(out).glob(".*.*.tmp"):
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file)`` so that ``path`` is always either the old or the new whole file (a
    temp file ``.NAME.XXXXXXXX.tmp`` in the same directory, since ``os.replace`` is atomic
    only within one filesystem, synced, then renamed); a failed write leaves no temp file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of ``text`` (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode()))
