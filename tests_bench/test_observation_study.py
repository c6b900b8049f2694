"""The observation study (lanesim_bench.observation_study) end to end with tiny settings: one
dqn_learning study per observation, each with that observation, and the side-by-side report."""

from __future__ import annotations

import json

import pytest
import torch

from lanesim_bench import observation_study

TINY = ["--steps", "160", "--seeds", "0", "--eval-episodes", "2", "--curve-every", "80",
        "--curve-episodes", "1", "--checkpoint-every", "160", "--env", "duration=4",
        "--env", "vehicles=5", "--config", "buffer_size=400", "--config", "learning_starts=40",
        "--config", "target_update=80"]


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_each_observation_trains_its_own_study_and_the_report_sets_them_side_by_side(
        tmp_path, capsys):
    out = tmp_path / "study"
    args = [*TINY, "--out", str(out), "--observations", "camera,kinematics"]
    assert observation_study.main(args) == 0
    for obs in ("camera", "kinematics"):
        result = json.loads((out / obs / "lanesim-seed0" / "result.json").read_text())
        assert result["settings"]["env_options"]["observation"] == obs
        assert result["steps"] == 160 and result["final"]["episodes"] == 2
    capsys.readouterr()
    page = tmp_path / "observation_study.md"
    assert observation_study.main(["--report", "--out", str(out), "--observations",
                                   "camera,birdseye,kinematics", "--write", str(page)]) == 0
    text = capsys.readouterr().out
    assert "| camera | 1 |" in text and "| kinematics | 1 |" in text
    assert "Not finished: birdseye." in text
    assert "Camera target, collisions <= 5% in every seed:" in text
    assert "| camera | 0 |" in text and "| kinematics | 0 |" in text  # every run's own row
    assert (out / "observations.png").stat().st_size > 10_000
    assert "| camera | 1 |" in page.read_text()


def test_the_observation_is_the_studys_variable_not_an_env_option():
    with pytest.raises(SystemExit):
        observation_study.parse_args(["--env", "observation=pixels"])
    with pytest.raises(SystemExit):
        observation_study.parse_args(["--observations", "lidar"])
