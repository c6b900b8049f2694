"""The lanesim command, run for real on tiny budgets."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
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
        (["train", "dqn", "--steps", "10", "--out", "/tmp/lanesim-none", "--resume"],
         "--resume: no checkpoint"),
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


def test_train_dqn_eval_and_plot_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    trained = run_cli("train", "dqn", "--scenario", "highway", "--steps", "96", "--out", str(out),
                      "--num-envs", "4", "--env", "vehicles=5", "--env", "duration=2",
                      "--config", "batch_size=8", "--config", "buffer_size=200",
                      "--config", "eval_episodes=1")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (out / "latest.pt").exists() and (out / "env.json").exists()
    assert list((out / "tb").rglob("events.out.tfevents.*"))
    resumed = run_cli("train", "dqn", "--steps", "128", "--out", str(out), "--num-envs", "4",
                      "--env", "vehicles=5", "--env", "duration=2", "--config", "batch_size=8",
                      "--config", "buffer_size=200", "--config", "eval_episodes=1", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "trained 128 steps" in resumed.stdout
    plot = tmp_path / "eval.png"
    ev = run_cli("eval", "--agent", str(out), "--episodes", "2", "--json", "--plot", str(plot))
    assert ev.returncode == 0, ev.stderr[-2000:]
    result = json.loads(ev.stdout.splitlines()[0])
    assert set(result) == {"episodes", "mean_return", "collision_rate", "offroad_rate",
                           "mean_speed", "lane_offset_rms"}
    assert result["episodes"] == 2
    assert plot.stat().st_size > 10_000


def test_eval_table_and_videos_for_a_baseline(tmp_path):
    out = run_cli("eval", "--agent", "idle", "--scenario", "lane_keeping", "--episodes", "1",
                  "--video", str(tmp_path / "videos"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "collision_rate" in out.stdout and "lane_offset_rms" in out.stdout
    assert list((tmp_path / "videos").glob("*.mp4"))


def test_demo_without_a_display_writes_a_video(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "lanesim.cli", "demo", "--episodes", "1",
                          "--video", str(tmp_path / "v")], capture_output=True, text=True,
                         timeout=600, env={**env, "SDL_VIDEODRIVER": "dummy"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "No display found" in out.stdout
    assert list((tmp_path / "v").glob("*.mp4"))


def test_watch_drives_an_agent_in_the_window_until_the_episodes_end():
    out = run_cli("watch", "--agent", "idle", "--scenario", "highway", "--speed", "max",
                  "--episodes", "1", "--seed", "3")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("1 episodes, mean return")


def test_bench_runs_the_benchmark_harness():
    out = run_cli("bench", "--quick", "--no-peer", "--cases", "d", "--sizes", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| d | 1 |" in out.stdout


@pytest.mark.parametrize("algo", ["sb3-dqn", "sb3-ppo"])
def test_train_sb3_baselines_write_a_model_and_resume(tmp_path, algo):
    out = tmp_path / algo
    common = ["--scenario", "highway", "--out", str(out), "--num-envs", "2", "--env", "vehicles=5",
              "--env", "duration=2"]
    first = run_cli("train", algo, "--steps", "64", *common)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (out / "latest.zip").exists() and (out / "env.json").exists()
    assert list((out / "tb").rglob("events.out.tfevents.*"))
    again = run_cli("train", algo, "--steps", "128", "--resume", *common)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trained 128 steps" in again.stdout


def test_env_json_records_every_option_resolved(tmp_path):
    """A run's env.json holds the scenario's values, not just its name, so a later change to
    the scenario file cannot change the environment a checkpoint is watched on."""
    import json

    from agents.training import read_env_spec, write_env_spec
    from lanesim.envs.options import make_options

    write_env_spec(tmp_path, "lanesim/Roadworks-v0", {"action": "meta", "lanes": 3})
    env_id, options = read_env_spec(tmp_path)
    expected = make_options("roadworks", action="meta", lanes=3)
    assert env_id == "lanesim/Roadworks-v0"
    assert "scenario" not in options and "screen_width" not in options
    assert options["closures"] == json.loads(json.dumps(expected.closures))
    assert options["spawn_spacing"] == expected.spawn_spacing
    assert make_options(None, **options) == expected  # the file alone rebuilds the env
    # The shipped checkpoint carries every option it was trained with (the learning study's
    # Highway: traffic at 23-30 m/s, 64 m spawn slots), whatever highway.toml says later.
    root = Path(__file__).resolve().parents[1]
    _, shipped = read_env_spec(root / "agents" / "checkpoints" / "dqn_highway")
    assert shipped["traffic_speed"] == [23.0, 30.0] and shipped["spawn_spacing"] == 64.0
    assert shipped["observation"] == "pixels" and shipped["action"] == "meta"
    assert make_options(None, **shipped).vehicles == 50


def test_a_trained_agent_runs_on_its_training_road_unless_a_scenario_is_given():
    from lanesim.cli import _agent_env

    loaded, env_id, options, where = _agent_env("dqn", None)
    assert where == "its training road" and options == loaded.training_options
    assert options["traffic_speed"] == [23.0, 30.0] and options["recycle_distance"] == 800.0
    # --scenario wins, with only the options the agent's inputs and outputs need.
    loaded, env_id, options, where = _agent_env("dqn", "roadworks")
    assert where == "roadworks" and options["scenario"] == "roadworks"
    assert "closures" not in options and "traffic_speed" not in options
    assert options["observation"] == "pixels" and options["action"] == "meta"
    assert options["policy_hz"] == 1
    env = gym.make(env_id, **options)
    assert env.unwrapped.options.closures  # the roadworks are there
    env.close()
    _, _, options, where = _agent_env("vi", None)
    assert where == "highway" and options == {"scenario": "highway", "action": "meta"}
