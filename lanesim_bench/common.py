"""What the benchmarks share: the machine description every report prints, and the peers'
venvs (highway-env pulls pygame-ce, which breaks lanesim's pygame; quantecon pins its own
numba), kept outside lanesim's environment."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
PEER_REQUIREMENTS = HERE / "requirements-peer.txt"
VI_REQUIREMENTS = HERE / "requirements-vi.txt"
# The peers' venvs live in the user's cache, not beside these files: an installed package's
# directory may be read-only, and a venv there would be lost on every reinstall.
VENV_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lanesim-bench"
PEER_VENV = VENV_HOME / "venv-peer"
VI_VENV = VENV_HOME / "venv-vi"


def ensure_venv(venv: Path, requirements: Path) -> Path:
    """The python of ``venv`` with ``requirements`` installed: made once, and made again when
    the requirements file changes (the venv holds the hash of the file it was made from).
    torch lines install first, alone: the pinned CPU wheel, before anything that would pull
    an unpinned (CUDA) torch."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    print(f"setting up {venv} from {requirements.name} (one-time)...", file=sys.stderr)
    base = shutil.which("python3.11") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    reqs = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    reqs = [r for r in reqs if r]
    first = [r for r in reqs if r.startswith("torch")]
    for group in (first, [r for r in reqs if r not in first]):
        if group:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *group], check=True)
    stamp.write_text(want)
    return python


def command(module: str, argv: list[str]) -> str:
    """The command line that reruns ``module`` with ``argv``, for a report (without a
    ``--write FILE``: where the report goes is not part of what it measured)."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--write="):
            skip = False
        elif arg == "--write":
            skip = True
        else:
            kept.append(arg)
    return " ".join(["python", "-m", module, *kept])


def machine() -> dict:
    """Date, load averages (1/5/15 min), CPU model, usable cores and Python of this run."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "cpu": model,
        "cores": cores,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_report(path: Path, command: str, text: str) -> None:
    """Put ``text``, the report of ``command``, into the markdown file ``path``: between the
    markers that name ``command`` where the file has them, else appended with them (a new
    file is made). A docs page keeps its prose, and each report in it is the last run's of the
    command its markers name."""
    path = Path(path)
    begin, end = f"<!-- report of `{command}`: begin -->", f"<!-- report of `{command}`: end -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    page = path.read_text() if path.exists() else ""
    start, stop = page.find(begin), page.find(end)
    if start >= 0 and stop > start:
        page = page[:start] + block + page[stop + len(end):]
    else:
        page = (page.rstrip() + "\n\n" if page.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    print(f"report written to {path}", file=sys.stderr)


def printed_report(path: Path | None, command: str, measure: Callable[[], T]) -> T:
    """Run ``measure()``, which prints its figures, and with a ``path`` also write what it
    printed there as the report of ``command`` (:func:`write_report`, in a code block)."""
    if path is None:
        return measure()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = measure()
    print(out.getvalue(), end="")
    write_report(Path(path), command, f"```\n{out.getvalue().rstrip()}\n```")
    return result


def run_json(cmd: list[str], env: dict | None = None) -> dict:
    """Run a benchmark worker ``cmd`` headless and return the JSON object on its last output
    line; a failed worker raises ``RuntimeError`` naming the command."""
    env = dict(os.environ if env is None else env, SDL_VIDEODRIVER="dummy",
               SDL_AUDIODRIVER="dummy")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({proc.returncode}): {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
