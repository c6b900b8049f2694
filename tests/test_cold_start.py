"""The first compile of lanesim's kernels says so on stderr, once; a cached run says nothing."""

import os
import subprocess
import sys

from lanesim.sim.jit import COLD_START_NOTICE

# One small kernel, called twice (the second call must not repeat the notice), then a numba
# function of the user's own, which is none of lanesim's business.
CODE = """
import numba
import numpy as np
from lanesim.sim.lane_index import lane_exists
for _ in range(2):
    lane_exists(np.zeros(1), np.ones(1), 0, 0.5)
numba.njit(lambda x: x + 1)(1)
"""


def run(cache_dir) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                         check=True)
    return out.stderr


def test_first_compile_prints_one_line_with_how_to_precompile_and_cached_runs_are_silent(
    tmp_path,
):
    assert "python -m lanesim.warmup" in COLD_START_NOTICE
    cold = run(tmp_path)
    assert cold.count(COLD_START_NOTICE) == 1
    assert cold.strip() == COLD_START_NOTICE  # the one line, nothing else
    assert run(tmp_path) == ""  # loaded from the cache this time
