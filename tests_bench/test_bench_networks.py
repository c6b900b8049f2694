"""The road-network benchmark end to end at tiny sizes: lanesim's side in fresh processes, the
report's tables, an id that cannot be made reported as an error row, and the cases' peers."""

from __future__ import annotations

import re

import pytest

from lanesim_bench import bench_networks, peer_highway_env
from lanesim_bench.bench_networks import CASES, NetCase

TINY = ["--repeats", "1", "--seconds", "0.05", "--batch", "4"]


def _fake_peer(cpu_rate: float):
    """A peer result as ``peer_highway_env`` prints it, for a run without its venv."""
    def run_peer(python, case, args):
        return {"rate": cpu_rate / 2, "cpu_rate": cpu_rate, "episodes_per_1000_steps": 10.0,
                "version": "fake", "observation_shape": [2, 12, 12],
                "action_space": "Box(-1.0, 1.0, (1,), float32)", "traffic_at_reset": [1, 1, 1],
                "effective_config": {"simulation_frequency": 15, "policy_frequency": 5,
                                     "duration": 300, "observation": {"type": "OccupancyGrid"},
                                     "action": {"type": "ContinuousAction"}}}
    return run_peer


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_racetrack_case_measures_lanesim_at_the_peers_scale(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_networks, "ensure_venv", lambda venv, req: tmp_path / "python")
    monkeypatch.setattr(bench_networks, "run_peer", _fake_peer(cpu_rate=50.0))
    page = tmp_path / "bench_networks.md"
    assert bench_networks.main(["--only", "racetrack", *TINY, "--write", str(page)]) == 0
    out = capsys.readouterr().out
    row = re.search(r"\| racetrack \| `lanesim/Racetrack-v0` \| ([\d,.]+) \(([\d,.]+)\) \| "
                    r"([\d,.]+) \(([\d,.]+)\) \| `racetrack-v0` \| 50\.0 \(25\.0\) \| "
                    r"([\d,]+)× \(([\d,]+)×\) \| 300× (.) \|", out)
    assert row, out
    single_cpu, single_wall, batch_cpu, batch_wall = map(_number, row.groups()[:4])
    assert min(single_cpu, single_wall, batch_cpu, batch_wall) > 0
    ratio = single_cpu / 50.0
    assert _number(row.group(5)) == pytest.approx(ratio, abs=0.5)
    assert _number(row.group(6)) == pytest.approx(single_wall / 25.0, abs=0.5)
    assert row.group(7) == ("✓" if ratio >= 300 else "✗")
    # lanesim's settings as its env had them: the case's options reached gym.make.
    assert "| racetrack | lanesim | 15 | 5 | 300 | 1 | kinematics 9x8 | continuous " in out
    assert "| racetrack | highway-env | 15 | 5 | 300 | 1 | OccupancyGrid 2x12x12 |" in out
    assert "  - action: the peer steers only" in out
    report = page.read_text()
    assert "<!-- report of `python -m lanesim_bench.bench_networks --only racetrack " in report
    assert row.group(0) in report


def test_an_id_that_cannot_be_made_is_an_error_row_and_fails_the_run(capsys, monkeypatch):
    ghost = NetCase("ghost", "lanesim/NoSuchRoad-v0", "two-way-v0",
                    dict(observation="kinematics", action="meta"), ("not a real case",))
    monkeypatch.setitem(CASES, "ghost", ghost)
    assert bench_networks.main(["--only", "ghost,twoway", "--no-peer", *TINY]) == 1
    captured = capsys.readouterr()
    assert re.search(r"\| ghost \| `lanesim/NoSuchRoad-v0` \| \*\*error\*\*: NameNotFound: "
                     r"Environment `NoSuchRoad` doesn't exist", captured.out)
    assert "| ghost | — | not made: see its error |" in captured.out
    assert re.search(r"\| twoway \| `lanesim/TwoWay-v0` \| [\d,.]+ \([\d,.]+\) \| [\d,.]+ ",
                     captured.out), "the other case still runs"
    assert "could not make ghost" in captured.err


def test_unknown_case_and_out_of_range_batch_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench_networks.main(["--only", "racetrak"])
    assert "unknown case(s) ['racetrak']; choose from intersection, roundabout" in (
        capsys.readouterr().err)
    with pytest.raises(SystemExit):
        bench_networks.main(["--batch", "1"])
    assert "--batch 1: give 2 to 4,096 sub-environments" in capsys.readouterr().err


def test_every_case_has_its_highway_env_counterpart_at_its_default_config():
    assert set(CASES) == {"intersection", "roundabout", "racetrack", "exit", "twoway"}
    for name, case in CASES.items():
        assert peer_highway_env.PEER_CASES[name] == (case.peer_id, {})
        assert case.options["observation"] == "kinematics"
        # The peer's default action is continuous steering on racetrack-v0 only.
        assert case.options["action"] == ("continuous" if name == "racetrack" else "meta")
