"""lanesim_bench.time_to_driver with tiny settings, and README's issue #18 driver recipe
kept equal to the benchmark's."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from lanesim_bench import time_to_driver

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_benchmark_evaluates_each_run_off_the_clock_and_reports(tmp_path, capsys):
    out = tmp_path / "ttd"
    page, plot_png = tmp_path / "page.md", tmp_path / "curve.png"
    argv = ["--out", str(out), "--seeds", "0", "--budget", "2", "--every", "1",
            "--episodes", "2", "--env", "duration=3", "--env", "vehicles=10"]
    assert time_to_driver.main(argv) == 0
    for run in time_to_driver.RUNS:
        result = json.loads((out / f"{run}-seed0.json").read_text())
        curve = result["curve"]
        assert len(curve) >= 1
        for i, point in enumerate(curve, start=1):
            # An evaluation starts once its point of training time has passed; the time it
            # takes is reported apart, so the next point still needs a further second.
            assert point["train_seconds"] >= i * 1.0
            assert point["eval_seconds"] > 0 and 0 <= point["collision_rate"] <= 1
            assert len(point["load"]) == 3
        steps = [p["steps"] for p in curve]
        assert steps == sorted(steps)
        assert result["episodes"] == 2 and result["eval_seed"] == time_to_driver.FINAL_EVAL_SEED
        assert result["env_options"]["duration"] == 3
        assert result["command"].startswith("python -m lanesim_bench.time_to_driver --out")
    driver = json.loads((out / "driver-seed0.json").read_text())
    assert driver["num_envs"] == time_to_driver.RECIPE_NUM_ENVS
    assert driver["config"]["conv"] == "small" and driver["config"]["hidden"] == 256
    assert driver["env_options"]["image_shape"] == [42, 84]
    dqn = json.loads((out / "dqn-seed0.json").read_text())
    assert dqn["env_options"]["observation"] == "pixels" and dqn["config"]["conv"] == "nature"
    assert "image_shape" not in dqn["env_options"]  # the study's 84x84
    sb3 = json.loads((out / "sb3-ppo-seed0.json").read_text())
    assert sb3["env_options"]["observation"] == "kinematics"
    assert (sb3["num_envs"], sb3["config"]["n_steps"], sb3["config"]["batch_size"]) == (8, 2048,
                                                                                       64)
    assert (out / "time_to_driver.png").stat().st_size > 0

    # The report goes between its markers in a page whose prose stays.
    page.write_text("# Time to a competent driver\n\nprose\n")
    capsys.readouterr()
    assert time_to_driver.main([*argv, "--report", "--plot", str(plot_png),
                                "--write", str(page)]) == 0
    table = capsys.readouterr().out
    assert "| driver | 0 |" in table and "| dqn | 0 |" in table and "| sb3-ppo | 0 |" in table
    text = page.read_text()
    assert text.startswith("# Time to a competent driver\n\nprose\n")
    assert "<!-- report of `python -m lanesim_bench.time_to_driver --out" in text
    assert "| driver | 0 |" in text and plot_png.stat().st_size > 0

    # Finished runs are skipped, not retrained.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert time_to_driver.main(argv) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*.json")}


def _point(ret: float, collisions: float, t: float) -> dict:
    return {"train_seconds": t, "mean_return": ret, "collision_rate": collisions}


def test_target_is_the_first_point_with_both_return_and_safety():
    curve = [_point(34.0, 0.05, 30), _point(32.9, 0.0, 60), _point(33.0, 0.02, 90),
             _point(34.0, 0.0, 120)]
    assert time_to_driver.first_reached(curve)["train_seconds"] == 90
    assert time_to_driver.first_reached(curve[:2]) is None


def test_readme_driver_recipe_is_the_benchmarks():
    """README's `lanesim train dqn` recipe for issue #18 trains what the benchmark's driver runs
    train: the same environment, worlds, steps, DQN settings and torch threads; it evaluates on
    the held-out episodes."""
    from agents.training import dqn_config
    from lanesim.cli import build_parser

    text = (ROOT / "README.md").read_text()
    start = text.index("lanesim train dqn --scenario highway --steps "
                       f"{time_to_driver.RECIPE_STEPS} --out runs/driver")
    block = text[start:text.index("\n```", start)]
    command = block.split("\nlanesim ")[0]
    args = build_parser().parse_args(shlex.split(command.replace("\\\n", " "))[1:])
    assert args.algo == "dqn" and args.scenario == "highway"
    assert args.num_envs == time_to_driver.RECIPE_NUM_ENVS
    assert args.steps == time_to_driver.RECIPE_STEPS
    assert {"observation": args.observation or "pixels", **dict(args.env)} == (
        time_to_driver.RECIPE_ENV)
    assert dqn_config(args.steps, args.num_envs, args.seed, dict(args.config)) == dqn_config(
        time_to_driver.RECIPE_STEPS, time_to_driver.RECIPE_NUM_ENVS, args.seed,
        time_to_driver.RECIPE_CONFIG)
    evaluation = block.split("\nlanesim eval ")[1]
    ev = build_parser().parse_args(["eval", *shlex.split(evaluation.splitlines()[0])])
    assert (ev.episodes, ev.seed) == (100, time_to_driver.FINAL_EVAL_SEED)


def test_a_run_that_ends_between_points_is_evaluated_at_its_end():
    from agents.baselines import IdleAgent

    options = {**time_to_driver.RECIPE_ENV, "duration": 2, "vehicles": 5}
    clock = time_to_driver.Clock(budget=100.0, every=50.0, episodes=1, env_options=options)
    clock.finish(IdleAgent(), 128)
    clock.finish(IdleAgent(), 128)  # already evaluated at this step: not again
    assert [p["steps"] for p in clock.curve] == [128]
