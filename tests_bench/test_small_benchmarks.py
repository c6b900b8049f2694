"""The render, value-iteration, agent-evaluation and DQN-throughput benchmarks end to end at tiny
sizes: each prints its figures, and writes them into a docs page as the report of its command."""

from __future__ import annotations

import json
import re

import pytest

from lanesim_bench import (
    bench_camera,
    bench_dqn,
    bench_render,
    bench_value_iteration,
    eval_agents,
)


def test_render_benchmark_times_lanesim_frames_in_a_fresh_process(tmp_path, capsys):
    page = tmp_path / "bench_render.md"
    bench_render.main(["--frames", "20", "--repeats", "2", "--no-hud", "--write", str(page)])
    out = capsys.readouterr().out
    rate = re.search(r"overlay=True hud=False: ([\d,]+) frames/s median", out)
    assert rate and int(rate.group(1).replace(",", "")) > 0
    report = page.read_text()
    assert "<!-- report of `python -m lanesim_bench.bench_render --frames 20 --repeats 2 " \
           "--no-hud`: begin -->" in report
    assert rate.group(0) in report


def test_render_benchmark_times_the_camera_view(capsys):
    bench_render.main(["--frames", "5", "--repeats", "1", "--view", "both", "--size", "400x150"])
    out = capsys.readouterr().out
    rate = re.search(r"view=both overlay=True hud=True: ([\d,]+) frames/s median .*wall clock", out)
    assert rate and int(rate.group(1).replace(",", "")) > 0


def test_camera_benchmark_measures_the_camera_observation_in_fresh_processes(tmp_path, capsys):
    page = tmp_path / "bench_camera.md"
    assert bench_camera.main(["--cases", "equal", "--no-peer", "--repeats", "1", "--seconds",
                              "0.05", "--write", str(page)]) == 0
    row = re.search(r"\| equal \| 1 \| 3×96×96 \| \*\*([\d,]+)\*\*", capsys.readouterr().out)
    assert row and int(row.group(1).replace(",", "")) > 0
    assert row.group(0) in page.read_text()


def test_value_iteration_benchmark_checks_its_solution(tmp_path, capsys):
    page = tmp_path / "value_iteration.md"
    status = bench_value_iteration.main(["--states", "300", "--repeats", "1", "--no-quantecon",
                                         "--write", str(page)])
    assert status == 0
    assert "checks: passed" in capsys.readouterr().out
    assert "checks: passed" in page.read_text()


def test_agent_evaluation_writes_its_table(tmp_path, capsys):
    page = tmp_path / "eval_agents.md"
    assert eval_agents.main(["--episodes", "1", "--agents", "idle", "--envs", "Highway-v0",
                             "--options", '{"duration": 4}', "--write", str(page)]) == 0
    row = re.search(r"\| Highway-v0 \| idle \| 1 \| .*\|", capsys.readouterr().out)
    assert row and row.group(0) in page.read_text()


def test_agent_evaluation_gives_network_envs_an_arrival_column(capsys):
    assert eval_agents.main(["--episodes", "1", "--agents", "idle", "--envs", "Highway-v0",
                             "Intersection-v0", "--options", '{"duration": 2}']) == 0
    out = capsys.readouterr().out
    assert "| arrival rate |" in out
    assert re.search(r"\| Highway-v0 \| idle \| 1 \| [\d]+ % \| [\d]+ % \| – \|", out)
    assert re.search(r"\| Intersection-v0 \| idle \| 1 \| [\d]+ % \| [\d]+ % \| [\d]+ % \|", out)


def test_agent_evaluation_rejects_an_unknown_env():
    with pytest.raises(SystemExit, match=r"unknown id\(s\) Highwya-v0; accepted: .*Intersection"):
        eval_agents.main(["--episodes", "1", "--envs", "Highwya-v0"])


def test_dqn_throughput_benchmark_reads_lanesims_checkpoint(tmp_path, capsys):
    """The lanesim worker reads the network size from the run's checksummed checkpoint."""
    assert bench_dqn.main(["--steps", "16", "--learning-starts", "32", "--repeats", "1",
                           "--variants", "lanesim", "--buffer-size", "500", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["variant"] == "lanesim" and row["parameters"] > 1_000_000
    assert row["rate"] > 0
