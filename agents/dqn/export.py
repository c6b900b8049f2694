"""Export a trained DQN for shipping: ``python -m agents.dqn.export RUN_DIR OUT_DIR``.

Takes ``RUN_DIR/best.pt`` (or a checkpoint file given instead of a directory), writes
``OUT_DIR/best.pt`` with only the policy (online network in float16, its spec, config and step)
and copies the run's ``env.json``, so ``lanesim watch --agent OUT_DIR`` drives on the road it
was trained on. This is how ``agents/checkpoints/dqn_highway`` is made.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from agents.dqn.checkpoint import CheckpointError, export_policy

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def export_run(src: Path, out_dir: Path, dtype: torch.dtype = torch.float16) -> Path:
    """Export ``src`` (a run directory's best.pt, or a checkpoint file) into ``out_dir``."""
    ckpt = src / "best.pt" if src.is_dir() else src
    env_json = ckpt.parent / "env.json"
    if not env_json.is_file():
        raise CheckpointError(
            f"{env_json} not found: a shipped policy needs the environment it was trained on")
    out_dir.mkdir(parents=True, exist_ok=True)
    export_policy(ckpt, out_dir / "best.pt", dtype)
    shutil.copyfile(env_json, out_dir / "env.json")
    return out_dir / "best.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="training directory (its best.pt) or a checkpoint")
    ap.add_argument("out_dir", type=Path, help="directory to write best.pt and env.json into")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float16",
                    help="weight type of the exported network (default float16)")
    args = ap.parse_args(argv)
    try:
        path = export_run(args.src, args.out_dir, DTYPES[args.dtype])
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
