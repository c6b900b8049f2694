"""Checkpoints: atomic writes with a checksum, and loads that fail clearly when missing, damaged,
incomplete or mismatched.

A checkpoint file is one header line, ``lanesim-dqn/2 sha256=<hex digest>``, then the payload as
written by ``torch.save``. The digest covers every payload byte, so a file damaged anywhere (a
torn copy, a bad sector, an edit) is refused instead of loading with changed weights; the payload
is read with ``torch.load(weights_only=True)``, which builds tensors and plain containers only and
never runs code from the file. Files of the first format (``lanesim-dqn/1``: a bare ``torch.save``
zip without a digest) still load, unverified; a resumed run rewrites ``latest.pt`` with a digest.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "lanesim-dqn/2"
LEGACY_FORMAT = "lanesim-dqn/1"
_HEADER = FORMAT.encode() + b" sha256="
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's zip container: the legacy format

# What a policy needs: the greedy agent reads the network spec and the online weights; the
# config and step say where it came from. Optimiser, target network, replay state and RNGs are
# training-only.
POLICY_KEYS = ("network", "online", "config", "step")
TRAINING_KEYS = (*POLICY_KEYS, "target", "optimizer", "updates", "best_eval_return", "rng")
NETWORK_KEYS = ("obs_shape", "n_actions", "dueling", "hidden")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the environment/network."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` so that ``path`` is always either the old or the new complete file."""
    from agents.run_dir import atomic_write

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    body = buffer.getvalue()
    header = _HEADER + hashlib.sha256(body).hexdigest().encode() + b"\n"
    atomic_write(Path(path), lambda f: f.write(header + body))


def _payload_bytes(path: Path) -> tuple[bytes, str]:
    """The verified ``torch.save`` bytes of checkpoint ``path`` and the format they must tag."""
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file; expected a checkpoint (.pt)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({e.strerror})") from None
    if not data:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    if data.startswith(_ZIP_MAGIC):
        return data, LEGACY_FORMAT  # no digest to check
    header, newline, body = data.partition(b"\n")
    if not header.startswith(_HEADER) or not newline:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint (unknown header)")
    if hashlib.sha256(body).hexdigest().encode() != header[len(_HEADER):]:
        raise CheckpointError(
            f"{path}: damaged checkpoint (its content does not match its sha256 checksum)"
        )
    return body, FORMAT


def load_checkpoint(
    path: str | os.PathLike[str],
    expect: dict[str, Any] | None = None,
    keys: tuple[str, ...] = POLICY_KEYS,
) -> dict[str, Any]:
    """Load a checkpoint onto the CPU.

    ``keys`` are the entries the caller needs (:data:`POLICY_KEYS` to act,
    :data:`TRAINING_KEYS` to resume). ``expect`` maps keys of the checkpoint's ``"network"``
    entry (obs_shape, obs_dtype, n_actions, dueling, hidden, conv) to the values the caller needs.
    A missing, damaged or incomplete file, or any mismatch, raises :class:`CheckpointError`
    naming the file and what is wrong.
    """
    path = Path(path)
    body, tag = _payload_bytes(path)
    try:
        # CPU first: RNG states must stay CPU tensors; load_state_dict moves the rest.
        ckpt = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        reason = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({type(e).__name__}: {reason})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != tag:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    missing = [key for key in keys if key not in ckpt]
    network = ckpt.get("network")
    if "network" in keys and "network" in ckpt:
        if isinstance(network, dict):
            missing += [f"network.{key}" for key in NETWORK_KEYS if key not in network]
        else:
            missing.append("network (a table of its shape)")
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, it lacks {', '.join(missing)}")
    if isinstance(network, dict):
        # Checkpoints from before the choice of conv trunk all have the Nature DQN's.
        network.setdefault("conv", "nature")
    mismatches = [
        f"{key}: checkpoint has {network.get(key)!r}, expected {want!r}"
        for key, want in (expect or {}).items()
        if network.get(key) != want
    ]
    if mismatches:
        raise CheckpointError(f"{path}: checkpoint does not match: " + "; ".join(mismatches))
    return ckpt


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
    policy = {key: ckpt[key] for key in POLICY_KEYS}
    policy["online"] = {k: v.to(dtype) if v.is_floating_point() else v
                        for k, v in ckpt["online"].items()}
    save_checkpoint(dst, policy)
    return policy
