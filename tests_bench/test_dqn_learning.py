"""The DQN learning study (lanesim_bench.dqn_learning) end to end with tiny settings: results,
skipping finished runs, resuming an interrupted run from its checkpoint, and the report."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest
import stable_baselines3
import torch

import agents.dqn.train as dqn_train
from lanesim_bench import dqn_learning

ROOT = Path(__file__).resolve().parents[1]

# 320 transitions (40 vector steps of 8 worlds), episodes of 5 decisions; learning starts after
# 100 transitions, a learning-curve point and a checkpoint every 160.
TINY = ["--steps", "320", "--seeds", "0", "--eval-episodes", "2", "--curve-every", "160",
        "--curve-episodes", "2", "--checkpoint-every", "160", "--env", "duration=5",
        "--env", "vehicles=10", "--config", "buffer_size=1000", "--config", "learning_starts=100",
        "--config", "target_update=160"]


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def study(out: Path, *extra: str) -> int:
    return dqn_learning.main([*TINY, "--out", str(out), *extra])


def test_both_agents_finish_skip_when_done_and_report(tmp_path, capsys):
    out = tmp_path / "study"
    assert study(out) == 0
    for agent in ("lanesim", "sb3"):
        path = out / f"{agent}-seed0" / "result.json"
        result = json.loads(path.read_text())
        assert result["agent"] == agent and result["seed"] == 0 and result["steps"] == 320
        for which in ("final", "best"):
            ev = result[which]
            assert ev["episodes"] == 2 and len(ev["returns"]) == 2
            assert 0.0 <= ev["collision_rate"] <= 1.0
            assert 15.0 < ev["mean_speed"] < 35.0  # m/s: meta speeds are 20, 25 and 30
            assert -20.0 < ev["mean_return"] < 10.0  # 5 decisions of at most ~1 each
        assert result["best"]["step"] in (160, 320)
        assert [p["step"] for p in result["curve"]] == [160, 320]
        assert all(0.0 <= p["collision_rate"] <= 1.0 for p in result["curve"])
        assert result["train_seconds"] > 0 and result["steps_per_s"] > 0
        assert result["train_seconds_complete"]
        assert result["eval_seed"] == dqn_learning.FINAL_EVAL_SEED
    lanesim = json.loads((out / "lanesim-seed0" / "result.json").read_text())["settings"]
    sb3 = json.loads((out / "sb3-seed0" / "result.json").read_text())["settings"]
    assert lanesim["config"]["train_freq"] == 8 and sb3["sb3"]["train_freq"] == [1, "step"]
    assert sb3["sb3"]["gradient_steps"] == 1 and sb3["sb3"]["buffer_size"] == 1000
    assert not (out / "sb3-seed0" / "replay.npz").exists()  # only needed to resume

    # Again: both runs are finished, nothing is retrained or rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/result.json")}
    capsys.readouterr()
    assert study(out) == 0
    assert capsys.readouterr().out.count("finished before, skipped") == 2
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/result.json")}

    page = tmp_path / "dqn_learning.md"
    assert study(out, "--report", "--write", str(page)) == 0
    table = (out / "report.md").read_text()
    assert table.strip() in page.read_text()
    assert page.read_text().startswith("<!-- report of `python -m lanesim_bench.dqn_learning "
                                       "--steps 320")
    assert "| lanesim | 0 |" in table and "| sb3 | 0 |" in table
    assert "mean of 1 seed(s)" in table and "2 of 2 runs finished" in table
    assert "lanesim's mean return above SB3's" in table
    collisions = json.loads((out / "lanesim-seed0" / "result.json").read_text())["final"][
        "collision_rate"]
    assert f"- lanesim: collision rate per seed 0: {100 * collisions:g} % (each <= 5 %: " in table
    assert "| always SLOWER |" in table and "| value-iteration driver |" in table
    assert ("- lanesim DQN (dueling, double, 3-step, prioritized), replay 1,000, lr 0.00025\n"
            in table)
    assert "- SB3 DQN CnnPolicy (1-step, uniform replay), replay 1,000, lr 0.00025\n" in table
    assert (out / "learning_curves.png").stat().st_size > 10_000


def test_run_label_follows_the_config_it_was_trained_with():
    config = {"dueling": True, "double": True, "n_step": 3, "prioritized": True}
    assert dqn_learning.label_of("lanesim", config) == (
        "lanesim DQN (dueling, double, 3-step, prioritized)")
    ablated = {"dueling": False, "double": False, "n_step": 1, "prioritized": False}
    assert dqn_learning.label_of("lanesim", ablated) == (
        "lanesim DQN (single head, max target, 1-step, uniform replay)")
    assert dqn_learning.label_of("sb3", {}) == dqn_learning.SB3_LABEL


def test_a_decaying_learning_rate_reaches_sb3_as_its_linear_schedule():
    args = dqn_learning.parse_args(["--steps", "1000", "--config", "lr_end=2.5e-5"])
    cfg = dqn_learning.study_config(args, seed=0)
    settings = dqn_learning.run_settings("sb3", 0, args, {}, cfg)["sb3"]
    assert settings["learning_rate"] == 2.5e-4 and settings["learning_rate_end"] == 2.5e-5
    schedule = dqn_learning.sb3_model_kwargs(settings)["learning_rate"]
    # SB3 calls it with the fraction of the run remaining: 1 at the start, 0 at the end.
    assert [schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([2.5e-4, 1.375e-4, 2.5e-5])
    # Without lr_end SB3 gets the constant rate, and its settings do not mention an end.
    constant = dqn_learning.sb3_kwargs(dqn_learning.study_config(
        dqn_learning.parse_args(["--steps", "1000"]), seed=0))
    assert "learning_rate_end" not in constant
    assert dqn_learning.sb3_model_kwargs(constant)["learning_rate"] == 2.5e-4
    lanesim = dqn_learning.run_settings("lanesim", 0, args, {}, cfg)
    assert lanesim["config"]["lr_end"] == 2.5e-5
    for agent, recorded in (("lanesim", lanesim), ("sb3", {"sb3": settings})):
        result = {"agent": agent, "settings": recorded}
        assert dqn_learning.setup_of(result).endswith("replay 60,000, lr 0.00025 to 2.5e-05")
    # A constant rate is recorded as before lr_end existed, so those runs still resume.
    old = dqn_learning.run_settings("lanesim", 0, dqn_learning.parse_args([]), {},
                                    dqn_learning.study_config(dqn_learning.parse_args([]), 0))
    assert "lr_end" not in old["config"]


def _fail_after(updates: int, exc: type[BaseException]):
    """A stand-in for a gradient-step function that raises on its ``updates + 1``-th call."""

    def wrap(fn):
        calls = 0

        def failing(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls > updates:
                raise exc("simulated crash")
            return fn(*args, **kwargs)

        return failing

    return wrap


@pytest.mark.parametrize("agent,exc", [("lanesim", RuntimeError), ("sb3", RuntimeError),
                                       ("sb3", KeyboardInterrupt)])
def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch, agent, exc):
    out = tmp_path / "study"
    run_dir = out / f"{agent}-seed0"
    # 15 gradient steps after learning starts (~step 100-140): the run dies at step ~220-260,
    # after its checkpoint at 160. A crash saves nothing; Ctrl-C / SIGTERM saves first.
    fail = _fail_after(15, exc)
    if agent == "lanesim":
        monkeypatch.setattr(dqn_train, "update", fail(dqn_train.update))
    else:
        monkeypatch.setattr(stable_baselines3.DQN, "train", fail(stable_baselines3.DQN.train))
    if exc is KeyboardInterrupt:
        assert study(out, "--agents", agent) == 130
    else:
        with pytest.raises(exc, match="simulated crash"):
            study(out, "--agents", agent)
    assert not (run_dir / "result.json").exists()
    checkpoint = dqn_learning.LanesimRun if agent == "lanesim" else dqn_learning.SB3Run
    saved = checkpoint(run_dir, None, {}).steps_done()
    if exc is KeyboardInterrupt:
        assert 160 < saved < 320
    else:
        assert saved == 160
    monkeypatch.undo()

    assert study(out, "--agents", agent) == 0
    result = json.loads((run_dir / "result.json").read_text())
    first, second = result["sessions"]
    assert first["ended"] == ("interrupted" if exc is KeyboardInterrupt else
                              "failed: RuntimeError: simulated crash")
    assert first["end_step"] == saved
    assert second["start_step"] == saved and second["end_step"] == 320
    assert second["ended"] == "finished"
    assert result["steps"] == 320
    # Steps evaluated again after the resume appear once on the curve.
    assert [p["step"] for p in result["curve"]] == [160, 320]


def _replay_memory():
    import numpy as np
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    return ReplayBuffer(6, spaces.Box(0, 255, (2, 3), np.uint8), spaces.Discrete(5), n_envs=2)


def test_the_sb3_replay_memory_round_trips_as_plain_arrays(tmp_path):
    import numpy as np

    memory = _replay_memory()
    rng = np.random.default_rng(0)
    for _ in range(4):
        obs = rng.integers(0, 256, (2, 2, 3), dtype=np.uint8)
        memory.add(obs, obs[::-1], rng.integers(0, 5, (2, 1)), rng.random(2), np.array([0, 1]),
                   [{}, {}])
    dqn_learning.save_replay(memory, tmp_path / "replay.npz")
    restored = _replay_memory()
    dqn_learning.load_replay(restored, tmp_path / "replay.npz")
    assert (restored.pos, restored.full) == (memory.pos, memory.full) == (1, True)
    for name in dqn_learning.REPLAY_ARRAYS:
        np.testing.assert_array_equal(getattr(restored, name), getattr(memory, name))


class _Payload:
    """Unpickling this creates ``marker``: what a crafted replay file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_replay_file_holding_a_pickle_is_refused_without_unpickling(tmp_path):
    import pickle

    import numpy as np

    marker = tmp_path / "ran"
    crafted = tmp_path / "replay.npz"
    np.savez(crafted, observations=np.array([_Payload(marker)], dtype=object), pos=0, full=False)
    with pytest.raises(SystemExit, match="replay.npz: not a replay memory of plain arrays"):
        dqn_learning.load_replay(_replay_memory(), crafted)
    crafted.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(SystemExit, match="replay.npz: not a replay memory of plain arrays"):
        dqn_learning.load_replay(_replay_memory(), crafted)
    assert not marker.exists()


def test_a_run_refuses_other_settings_on_resume(tmp_path):
    out = tmp_path / "study"
    run_dir = out / "lanesim-seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "settings.json").write_text(json.dumps({"agent": "lanesim", "seed": 0}))
    with pytest.raises(SystemExit, match="other settings"):
        study(out, "--agents", "lanesim")


def test_a_run_another_process_is_running_is_skipped(tmp_path, capsys):
    out = tmp_path / "study"
    run_dir = out / "sb3-seed0"
    run_dir.mkdir(parents=True)
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert study(out, "--agents", "sb3") == 0
    assert "another process is running it, skipped" in capsys.readouterr().out
    assert not (run_dir / "settings.json").exists()


def test_readme_training_recipe_is_the_studys_lanesim_run():
    """README's `lanesim train dqn` recipe trains what the study's runs with a 200,000 memory
    and a decaying learning rate trained: the same environment options and DQN settings."""
    import shlex

    from agents.training import dqn_config
    from lanesim.cli import build_parser

    text = (ROOT / "README.md").read_text()
    start = text.index("lanesim train dqn --scenario highway --steps 200000")
    block = text[start:text.index("\n```", start)]
    command = block.split("\nlanesim ")[0]
    args = build_parser().parse_args(shlex.split(command.replace("\\\n", " "))[1:])
    assert args.algo == "dqn" and args.scenario == "highway" and args.num_envs == 8
    assert {"observation": args.observation or "pixels", **dict(args.env)} == (
        dqn_learning.STUDY_ENV)
    trained = dqn_config(args.steps, args.num_envs, args.seed, dict(args.config))
    study_args = dqn_learning.parse_args(["--config", "buffer_size=200000",
                                          "--config", "lr_end=2.5e-5"])
    study = dqn_learning.study_config(study_args, seed=0)
    run_management = {"checkpoint_every", "log_every", "progress"}
    differ = {k for k, v in trained.to_dict().items()
              if v != study.to_dict()[k] and k not in run_management}
    assert differ == set()
    # ... and it evaluates on the study's held-out episodes.
    evaluation = block.split("\nlanesim eval ")[1]
    ev = build_parser().parse_args(["eval", *shlex.split(evaluation.splitlines()[0])])
    assert (ev.episodes, ev.seed) == (100, dqn_learning.FINAL_EVAL_SEED)
