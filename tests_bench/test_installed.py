"""`lanesim bench` works from an installed package, not only from a source checkout: the
benchmarks ship in lanesim's wheel as the package lanesim_bench, with their data files, and
find nothing through the checkout's paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_lanesim_bench_from_the_wheel_runs_outside_the_checkout(tmp_path):
    # Built from a copy: a build writes build/ and egg-info next to the sources.
    source = tmp_path / "source"
    source.mkdir()
    for path in ("pyproject.toml", "README.md", "lanesim", "agents", "scenarios", "lanesim_bench"):
        copy = shutil.copytree if (ROOT / path).is_dir() else shutil.copy
        copy(ROOT / path, source / path,
             **({"ignore": shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc")}
                if copy is shutil.copytree else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("lanesim-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("bench_env.py", "peer_highway_env.py", "common.py", "requirements-peer.txt",
                 "requirements-vi.txt"):
        assert f"lanesim_bench/{name}" in names
    # Only lanesim_bench from the wheel; lanesim itself stays the checkout's (its compiled
    # kernels are cached there, and the test is about the benchmarks).
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site, [n for n in names if n.startswith("lanesim_bench/")])
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), SDL_VIDEODRIVER="dummy",
               SDL_AUDIODRIVER="dummy")
    where = subprocess.run([sys.executable, "-c",
                            "import lanesim_bench; print(lanesim_bench.__file__)"],
                           cwd=run_dir, env=env, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(site)
    lanesim = shutil.which("lanesim", path=str(Path(sys.executable).parent))
    out = subprocess.run([lanesim, "bench", "--quick", "--no-peer", "--no-cold", "--cases", "d",
                          "--sizes", "1", "--repeats", "1", "--seconds", "0.05"],
                         cwd=run_dir, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| d | 1 |" in out.stdout
    assert "python -m lanesim_bench.bench_env --quick" in out.stdout
