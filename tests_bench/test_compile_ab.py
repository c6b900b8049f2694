"""The side-by-side compile and speed comparison of two checkouts, at tiny sizes (both sides
are this checkout here)."""

from __future__ import annotations

import json
import subprocess
import sys

from numba import njit

from lanesim_bench import compile_ab
from lanesim_bench.bench_env import CASES


def test_compile_timer_records_the_seconds_of_a_function_and_of_the_one_it_calls():
    own = compile_ab._compile_timer()

    @njit
    def ab_timer_callee(x):
        return x + 1.0

    @njit
    def ab_timer_caller(x):
        return ab_timer_callee(x) * 2.0

    assert ab_timer_caller(1.0) == 4.0
    assert {f.py_func.__qualname__ for f in (ab_timer_callee, ab_timer_caller)} <= set(own)
    assert all(seconds > 0.0 for seconds in own.values())


def test_first_step_worker_runs_by_path_and_reports_cpu_and_wall_seconds():
    spec = dict(env_id=CASES["d"].env_id, options=CASES["d"].options)
    proc = subprocess.run(
        [sys.executable, compile_ab.__file__, "--worker", "first-step", "--spec", json.dumps(spec)],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cpu"] > 0.0
    assert result["wall"] >= result["import"] + result["make"] + result["reset"] + result["step"]


def test_step_speeds_of_both_checkouts_go_into_the_report(tmp_path, capsys):
    page = tmp_path / "bench_env.md"
    assert compile_ab.main(["--old", sys.executable, "--cold-rounds", "0", "--rounds", "1",
                            "--cases", "d", "--sizes", "1", "--seconds", "0.05",
                            "--write", str(page)]) == 0
    out = capsys.readouterr().out
    for row in ("| (d) N = 1, steps per CPU s |", "| (d) world.advance(15), CPU µs |",
                "| (a) world.advance(15), CPU µs |"):
        assert row in out
    assert "cold compile" not in out
    report = page.read_text()
    assert "<!-- report of `python -m lanesim_bench.compile_ab --old" in report
    assert out.strip().splitlines()[-1] in report
