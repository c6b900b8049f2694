"""Checkpoints: atomic writes, and loads that fail clearly when missing, corrupt or mismatched."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "lanesim-dqn/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the environment/network."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` so that ``path`` is always either the old or the new complete file."""
    path = Path(path)
    # The temp file must live in the same directory: os.replace is only atomic
    # within one filesystem.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_checkpoint(
    path: str | os.PathLike[str], expect: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load a checkpoint onto the CPU.

    ``expect`` maps keys of the checkpoint's ``"network"`` entry (obs_shape, obs_dtype,
    n_actions, dueling, hidden) to the values the caller needs; any difference raises
    :class:`CheckpointError` naming the file and every mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        # CPU first: RNG states must stay CPU tensors; load_state_dict moves the rest.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    network = ckpt["network"]
    mismatches = [
        f"{key}: checkpoint has {network.get(key)!r}, expected {want!r}"
        for key, want in (expect or {}).items()
        if network.get(key) != want
    ]
    if mismatches:
        raise CheckpointError(f"{path}: checkpoint does not match: " + "; ".join(mismatches))
    return ckpt


# What a policy needs: the greedy agent reads the network spec and the online weights; the
# config and step say where it came from. Optimiser, target network, replay state and RNGs are
# training-only.
POLICY_KEYS = ("network", "online", "config", "step")


def export_policy(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], dtype: torch.dtype = torch.float16
) -> dict[str, Any]:
    """Write a policy-only copy of checkpoint ``src`` to ``dst`` (atomically), its weights cast
    to ``dtype``: what ships in a repository (the Nature-CNN DQN: 27 MB as a training
    checkpoint, 3.4 MB exported in float16). :class:`agents.dqn.DQNAgent` loads either; the
    weights go back to float32 on loading. Returns what was written (less the format tag)."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    ckpt = load_checkpoint(src)
    missing = [key for key in POLICY_KEYS if key not in ckpt]
    if missing:
        raise CheckpointError(f"{src}: checkpoint lacks {missing}")
    policy = {key: ckpt[key] for key in POLICY_KEYS}
    policy["online"] = {k: v.to(dtype) if v.is_floating_point() else v
                        for k, v in ckpt["online"].items()}
    save_checkpoint(dst, policy)
    return policy
