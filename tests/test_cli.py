"""The lanesim command, run for real on tiny budgets."""

import json
import subprocess
import sys

import pytest

from lanesim.cli import main


def run_cli(*args, timeout=300):
    """Run the installed console entry point in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "lanesim.cli", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**__import__("os").environ, "SDL_VIDEODRIVER": "dummy"})


def test_scenarios_lists_every_bundled_scenario(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("highway", "lane_keeping", "merge", "roadworks", "dense"):
        assert name in out


def test_scenarios_show_prints_options_with_defaults_marked(capsys):
    assert main(["scenarios", "show", "merge"]) == 0
    out = capsys.readouterr().out
    assert "lanes = 3" in out
    assert 'ramp = [{"start": 150.0, "length": 250.0}]' in out
    assert "sim_hz = 15.0   # default" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scenarios", "show", "higway"], "unknown scenario 'higway' (did you mean 'highway'?)"),
        (["eval", "--agent", "nonsense"], "unknown agent 'nonsense'"),
        (["eval", "--agent", "runs/nothing-here/best.pt"], "no such checkpoint"),
        (["train", "dqn", "--steps", "10", "--out", "/tmp/lanesim-none", "--resume"], "--resume: no checkpoint"),
        (["eval", "--scenario", "nope.toml"], "scenario file 'nope.toml' does not exist"),
    ],
)
def test_bad_argument_is_one_clear_line_and_exit_2(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [f"lanesim: error: {message}"] or (len(lines) == 1 and message in lines[0])


@pytest.mark.parametrize("args", [["eval", "--episodes", "0"], ["watch", "--speed", "fast"],
                                  ["train", "dqn", "--steps", "-5", "--out", "x"]])
def test_bad_numbers_are_rejected_by_the_parser(args):
    out = run_cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "expected" in out.stderr


def test_every_command_has_complete_help():
    for command in ("demo", "watch", "train", "eval", "scenarios", "bench"):
        out = run_cli(command, "--help")
        assert out.returncode == 0
        assert "usage: lanesim " + command in out.stdout
