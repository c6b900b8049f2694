"""The lanesim command, run for real on tiny budgets."""

import json
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from lanesim.cli import main
from lanesim.sim.jit import COLD_START_NOTICE


def run_cli(*args, timeout=300):
    """Run the installed console entry point in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "lanesim.cli", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**__import__("os").environ, "SDL_VIDEODRIVER": "dummy"})


def test_scenarios_lists_every_bundled_scenario(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("highway", "lane_keeping", "merge", "roadworks", "dense", "racetrack"):
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


def test_agent_names_come_from_one_list_that_includes_the_keyboard():
    from agents.zoo import NAMES, load_agent
    from lanesim.render.keyboard import KeyboardAgent

    with pytest.raises(ValueError, match="choose one of " + ", ".join(NAMES)):
        load_agent("nonsense")
    assert "keyboard" in NAMES
    loaded = load_agent("keyboard")
    assert isinstance(loaded.agent, KeyboardAgent) and loaded.env_options == {
        "action": "continuous"}


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
    first = run_cli("train", algo, "--steps", "64", "--config", "threads=1", *common)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (out / "latest.zip").exists() and (out / "env.json").exists()
    assert list((out / "tb").rglob("events.out.tfevents.*"))
    again = run_cli("train", algo, "--steps", "128", "--resume", *common)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trained 128 steps" in again.stdout
    # What `lanesim train` wrote is evaluable from its directory and from its model file.
    for agent in (out, out / "latest.zip"):
        ev = run_cli("eval", "--agent", str(agent), "--episodes", "1", "--json")
        assert ev.returncode == 0, ev.stderr[-2000:]
        assert json.loads(ev.stdout.splitlines()[0])["episodes"] == 1
    assert not list(out.glob(".*.tmp"))


def test_train_sb3_ppo_applies_its_config_and_the_run_evaluates_from_its_directory(tmp_path):
    from agents.sb3 import load_model

    out = tmp_path / "ppo"
    common = ["--scenario", "highway", "--out", str(out), "--num-envs", "3", "--env",
              "vehicles=5", "--env", "duration=2", "--config", "n_steps=16", "--config",
              "batch_size=24", "--config", "net_arch=[32]", "--config", "lr=1e-3", "--config",
              "lr_end=1e-4"]
    done = run_cli("train", "sb3-ppo", "--steps", "96", *common)
    assert done.returncode == 0, done.stderr[-2000:]
    env = gym.make("lanesim/Highway-v0", observation="kinematics", vehicles=5)
    model = load_model("sb3-ppo", out / "latest.zip", env, "kinematics")
    assert (model.n_steps, model.batch_size) == (16, 24)  # a rollout of 48: 2 minibatches
    assert model.policy.net_arch == [32]
    env.close()
    # Resumed with the same settings, the learning rate still falls from 1e-3 toward 1e-4.
    again = run_cli("train", "sb3-ppo", "--steps", "192", "--resume", *common)
    assert again.returncode == 0, again.stderr[-2000:]
    env = gym.make("lanesim/Highway-v0", observation="kinematics", vehicles=5)
    from agents.sb3_ppo import LinearRate

    model = load_model("sb3-ppo", out / "latest.zip", env, "kinematics",
                       learning_rate=LinearRate(1e-3, 1e-4))
    assert model.lr_schedule(1.0) == pytest.approx(1e-3)
    assert model.lr_schedule(0.0) == pytest.approx(1e-4)
    assert model.num_timesteps == 192
    env.close()
    ev = run_cli("eval", "--agent", str(out), "--episodes", "1", "--json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(ev.stdout.splitlines()[0])["episodes"] == 1


def test_env_json_records_every_option_resolved(tmp_path):
    """A run's env.json holds the scenario's values, not just its name, so a later change to
    the scenario file cannot change the environment a checkpoint is watched on."""
    import json

    from agents.run_dir import read_env_spec, write_env_spec
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


def main_result(args, capsys) -> tuple[int, list[str]]:
    """``lanesim ARGS`` in this process: the exit status and the lines it wrote to stderr."""
    try:
        code = main(args)
    except SystemExit as e:  # argparse exits by itself
        code = e.code
    # A worker whose numba cache is stale announces the compile first: that line is no error.
    lines = capsys.readouterr().err.splitlines()
    return code, [line for line in lines if line.strip() and line != COLD_START_NOTICE]


def assert_one_error_line(code, lines, message):
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("lanesim: error: "), lines
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "--speed", "inf"], "expected a finite speed >= 0 or 'max', got 'inf'"),
        (["eval", "--episodes", "0"], "argument --episodes: expected a positive integer"),
        (["train", "dqn", "--steps", "5"], "the following arguments are required: --out"),
        (["eval", "--nonsense"], "unrecognized arguments: --nonsense"),
        (["eval", "--plot", "/proc/x.png"], "--plot /proc/x.png: cannot write there"),
        (["eval", "--plot", "x.txt"], "--plot x.txt: unknown picture type '.txt'; use one of"),
        (["eval", "--video", "/proc/x"], "--video /proc/x: cannot make this directory"),
        (["train", "dqn", "--steps", "9", "--out", "o", "--env", "action=continuous"],
         "dqn picks one of a finite set of actions: use --env action=discrete or action=meta"),
        (["train", "dqn", "--steps", "9", "--out", "o", "--config", "device=tpu"],
         "device='tpu': expected 'auto', 'cpu' or 'cuda'"),
        (["train", "dqn", "--steps", "9", "--out", "o", "--config", "gamma=x"],
         "DQN setting gamma='x': expected a number"),
        (["train", "dqn", "--steps", "9", "--out", "o", "--config", "lr=Infinity"],
         "DQN setting lr=inf: expected a number"),
        (["train", "dqn", "--steps", "9", "--out", "o", "--config", "dueling=1"],
         "DQN setting dueling=1: expected true or false"),
        (["train", "sb3-dqn", "--steps", "9", "--out", "o", "--config", "lr=1e-3"],
         "--config lr: sb3-dqn takes only threads from --config"),
        (["train", "sb3-ppo", "--steps", "9", "--out", "o", "--config", "n_epoch=2"],
         "unknown PPO setting 'n_epoch' (did you mean 'n_epochs'?)"),
        (["train", "sb3-ppo", "--steps", "9", "--out", "o", "--config", "gamma=1.5"],
         "invalid PPO setting: 0 <= gamma <= 1"),
        (["train", "sb3-ppo", "--steps", "9", "--out", "o", "--config", "threads=-1"],
         "threads >= 0"),
        (["train", "sb3-ppo", "--steps", "9", "--out", "o", "--observation", "kinematics",
          "--env", "observation=pixels"],
         "--observation kinematics contradicts --env observation=pixels"),
        (["eval", "--agent", "/dev/null"], "/dev/null: not a regular file"),
    ],
)
def test_every_user_error_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(*main_result(args, capsys), message)
    assert not (tmp_path / "o").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-envs", "100000000"], "100,000,000 worlds of"),
        (["--config", "buffer_size=100000000000"],
         "a replay memory of 100,000,000,000 transitions"),
    ],
)
def test_more_than_the_machine_can_hold_is_one_line_and_trains_nothing(
    args, message, capsys, tmp_path
):
    out = tmp_path / "o"
    code, lines = main_result(["train", "dqn", "--steps", "9", "--out", str(out), *args], capsys)
    assert_one_error_line(code, lines, message)
    assert "but this machine has" in lines[0]
    assert not (out / "latest.pt").exists()


def test_parser_errors_print_no_usage_block_and_help_still_works():
    bad = run_cli("train", "dqn", "--steps", "-5", "--out", "x")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "lanesim: error: argument --steps: expected a positive integer, got '-5' "
        "(see 'lanesim train --help')"]
    help_text = run_cli("train", "--help")
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: lanesim train")


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "run").write_text("my notes")
    code, lines = main_result(["train", "dqn", "--steps", "9", "--out", str(tmp_path / "run")],
                              capsys)
    assert_one_error_line(code, lines, "is a file; expected a directory")
    assert (tmp_path / "run").read_text() == "my notes"


def _small_checkpoint(path: Path, observation: str = "pixels", **options) -> None:
    """A policy checkpoint whose network fits ``gym.make(Highway-v0, observation=...)``."""
    from agents.dqn.checkpoint import save_checkpoint
    from agents.dqn.network import QNetwork

    env = gym.make("lanesim/Highway-v0", observation=observation, action="discrete", **options)
    shape, n = env.observation_space.shape, env.action_space.n
    env.close()
    net = QNetwork(shape, n, True, 32)
    spec = {"obs_shape": list(shape), "n_actions": int(n), "dueling": True, "hidden": 32}
    save_checkpoint(path, {"network": spec, "online": net.state_dict(), "config": {}, "step": 0})


CORRUPT = {
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
    "random bytes": lambda good: bytes((i * 97 + 13) % 256 for i in range(4096)),
    "text": lambda good: b"these are my notes, not a checkpoint\n",
    "1 KiB overwritten": lambda good: good[:2000] + bytes(1024) + good[3024:],
}


@pytest.mark.parametrize("damage", list(CORRUPT))
def test_a_damaged_checkpoint_is_one_line_and_exit_2_on_every_path(damage, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _small_checkpoint(run / "latest.pt")
    (run / "latest.pt").write_bytes(CORRUPT[damage]((run / "latest.pt").read_bytes()))
    for args in (["eval", "--agent", str(run / "latest.pt"), "--episodes", "1"],
                 ["eval", "--agent", str(run), "--episodes", "1"],
                 ["train", "dqn", "--steps", "16", "--out", str(run), "--resume"]):
        code, lines = main_result(args, capsys)
        assert_one_error_line(code, lines, "latest.pt: ")
        assert "checkpoint" in lines[0]


def test_a_checkpoint_with_only_its_format_tag_is_one_line(tmp_path, capsys):
    from agents.dqn.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "latest.pt", {})
    for args in (["eval", "--agent", str(tmp_path)],
                 ["train", "dqn", "--steps", "16", "--out", str(tmp_path), "--resume"]):
        code, lines = main_result(args, capsys)
        assert_one_error_line(code, lines, "incomplete checkpoint, it lacks network")


def test_a_kinematics_checkpoint_without_its_env_json_is_refused_before_driving(tmp_path, capsys):
    _small_checkpoint(tmp_path / "best.pt", "kinematics")
    code, lines = main_result(["eval", "--agent", str(tmp_path / "best.pt")], capsys)
    assert_one_error_line(code, lines, "needs the env.json of its training directory")
    from agents.run_dir import write_env_spec

    # With the env.json of the environment it was made for, it drives.
    write_env_spec(tmp_path, "lanesim/Highway-v0", {"observation": "kinematics",
                                                    "action": "discrete", "duration": 2})
    code, _ = main_result(["eval", "--agent", str(tmp_path / "best.pt"), "--episodes", "1"],
                          capsys)
    assert code == 0


def test_env_json_values_are_validated_as_gym_make_validates_them(tmp_path, capsys):
    from agents.run_dir import write_env_spec

    _small_checkpoint(tmp_path / "best.pt", "pixels")
    write_env_spec(tmp_path, "lanesim/Highway-v0", {"observation": "pixels", "action": "discrete"})
    spec = json.loads((tmp_path / "env.json").read_text())
    spec["options"]["observation"] = "sonar"
    (tmp_path / "env.json").write_text(json.dumps(spec))
    code, lines = main_result(["eval", "--agent", str(tmp_path)], capsys)
    assert_one_error_line(code, lines, "env.json: ")
    assert "sonar" in lines[0]


SIGTERM_RUNS = {
    "dqn": ["--config", "eval_every=0", "--config", "checkpoint_every=1000000",
            "--config", "buffer_size=500"],
    "sb3-ppo": [],
}


@pytest.mark.parametrize("algo", list(SIGTERM_RUNS))
def test_sigterm_saves_the_checkpoint_as_ctrl_c_does(tmp_path, algo):
    import os
    import re
    import signal
    import time

    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lanesim.cli", "train", algo, "--steps", "100000", "--out",
             str(out), "--num-envs", "2", "--env", "vehicles=5", *SIGTERM_RUNS[algo]],
            stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
        # Wait until the progress bar counts steps: the training loop is running.
        deadline = time.monotonic() + 240
        while not re.search(r"\| *[1-9]\d*/100000", log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        # Generous: the save is quick, but a machine loaded far beyond its cores once took
        # over 120 s to end the process.
        assert proc.wait(timeout=300) == 128 + signal.SIGTERM
    if algo == "dqn":
        from agents.dqn.checkpoint import load_checkpoint

        step = load_checkpoint(out / "latest.pt")["step"]
    else:
        from agents.sb3 import load_model

        env = gym.make("lanesim/Highway-v0", observation="kinematics", vehicles=5)
        step = load_model(algo, out / "latest.zip", env, "kinematics").num_timesteps
        env.close()
    assert 0 < step < 100000
    assert "lanesim: interrupted (SIGTERM)" in log.read_text()
    assert not list(out.glob(".*.tmp"))


def test_ppo_config_defaults_are_sb3s_fitted_to_a_short_run():
    import inspect

    from stable_baselines3 import PPO

    from agents.training import ppo_config, ppo_rollout

    config = ppo_config(steps=800, num_envs=4)
    # One rollout covers the 800 steps in whole minibatches; SB3's 2048 per world would not.
    assert (config.n_steps, config.batch_size) == (ppo_rollout(800, 4), 64) == (208, 64)
    assert ppo_config(steps=10**7, num_envs=4).n_steps == 2048
    assert ppo_config(1000, 8, {"batch_size": 96}).n_steps == ppo_rollout(1000, 8, 96)
    assert ppo_config(1000, 8, {"threads": 2}) == ppo_config(1000, 8)  # the trainer's setting
    sb3 = inspect.signature(PPO.__init__).parameters
    assert config.lr == sb3["learning_rate"].default and config.gamma == sb3["gamma"].default
    assert config.n_epochs == sb3["n_epochs"].default
    assert config.gae_lambda == sb3["gae_lambda"].default
    assert config.ent_coef == sb3["ent_coef"].default
    assert config.clip_range == sb3["clip_range"].default


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_step": 32}, "unknown PPO setting 'n_step' (did you mean 'n_steps'?)"),
    ({"n_epochs": 0}, "1 <= n_epochs <= 1,000"),
    ({"net_arch": [256, "wide"]}, "net_arch 1 to 16 layers of 1 to 16,384 units"),
    ({"net_arch": [10**9]}, "net_arch 1 to 16 layers of 1 to 16,384 units"),
    ({"gamma": 1.5}, "0 <= gamma <= 1"),
    ({"lr": "fast"}, "0 < lr <= 1"),
    ({"n_steps": 10**7}, "n_steps is None or 2 <= n_steps <= 100,000"),
])
def test_bad_ppo_setting_is_named(overrides, message):
    import re

    from agents.training import ppo_config

    with pytest.raises(ValueError, match=re.escape(message)):
        ppo_config(1000, 8, overrides)


def test_ppo_config_takes_a_json_list_as_the_network():
    from agents.sb3_ppo import PPOConfig
    from agents.training import ppo_config

    assert ppo_config(1000, 8, {"net_arch": [128, 32]}).net_arch == (128, 32)
    assert PPOConfig().to_dict()["net_arch"] == [64, 64]


def test_ppo_rollouts_divide_into_whole_minibatches():
    from agents.training import ppo_rollout

    assert ppo_rollout(5000, 8) == 632  # 5056 steps: 79 minibatches of 64
    assert ppo_rollout(10**6, 8) == 2048
    for steps in (16, 64, 100, 999, 5000, 20_000):
        for num_envs in (1, 2, 3, 5, 8, 12):
            n_steps = ppo_rollout(steps, num_envs)
            rollout = n_steps * num_envs
            assert rollout % 64 == 0 and 1 <= n_steps <= 2048
            # A run shorter than one full rollout trains the budget and less than a unit more.
            if steps < 2048 * num_envs:
                assert steps <= rollout < steps + math.lcm(64, num_envs)


def test_bench_help_shows_the_benchmarks_own_options():
    for args in (["bench", "--help"], ["bench", "--", "--help"]):
        out = run_cli(*args)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.startswith("usage: lanesim bench")
        assert "--quick" in out.stdout and "--no-peer" in out.stdout


def test_a_damaged_sb3_model_is_one_line_on_resume_and_eval(tmp_path, capsys):
    from agents.run_dir import write_env_spec

    write_env_spec(tmp_path, "lanesim/Highway-v0", {"observation": "kinematics"}, algo="sb3-ppo")
    (tmp_path / "latest.zip").write_bytes(b"PK\x03\x04 half a model")
    for args in (["eval", "--agent", str(tmp_path)],
                 ["eval", "--agent", str(tmp_path / "latest.zip")],
                 ["train", "sb3-ppo", "--steps", "16", "--out", str(tmp_path), "--resume"]):
        code, lines = main_result(args, capsys)
        assert_one_error_line(code, lines, "latest.zip: not a Stable-Baselines3 model")


def test_resume_refuses_a_run_of_another_algorithm(tmp_path, capsys):
    from agents.run_dir import write_env_spec

    write_env_spec(tmp_path, "lanesim/Highway-v0", {"observation": "pixels"}, algo="sb3-dqn")
    (tmp_path / "latest.zip").write_bytes(b"a model")
    code, lines = main_result(["train", "sb3-ppo", "--steps", "16", "--out", str(tmp_path),
                               "--resume"], capsys)
    assert_one_error_line(code, lines, f"--resume: {tmp_path} holds a sb3-dqn run, not sb3-ppo")


def test_demo_with_an_unwritable_video_directory_is_one_line(capsys, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    code, lines = main_result(["demo", "--episodes", "1", "--video", "/proc/x"], capsys)
    assert_one_error_line(code, lines, "/proc/x")


def test_train_help_names_every_observation():
    from lanesim.cli import OBSERVATION_NAMES
    from lanesim.envs.options import OBSERVATIONS

    assert OBSERVATION_NAMES == OBSERVATIONS


def test_view_choices_are_the_viewers_and_a_camera_agent_watches_both_panes():
    from lanesim.cli import VIEWS, _view
    from lanesim.envs.options import VIEWS as OPTION_VIEWS

    assert VIEWS == OPTION_VIEWS
    assert _view({"observation": "camera"}, None)["view"] == "both"
    assert _view({"observation": "birdseye"}, "top")["view"] == "top"
    assert "view" not in _view({"observation": "pixels"}, None)
    assert _view({"observation": "pixels"}, "camera")["view"] == "camera"


def test_the_shipped_camera_dqn_drives_by_the_camera_without_a_collision():
    """`lanesim watch --agent dqn-camera`: the shipped network sees 4 x 84 x 84 grey camera
    frames of its training road and drives it (seed 0 is a held-out-style episode)."""
    from agents.evaluate import evaluate
    from lanesim.cli import _agent_env

    loaded, env_id, options, where = _agent_env("dqn-camera", None)
    assert where == "its training road" and options["observation"] == "camera"
    assert loaded.agent.obs_shape == (4, 84, 84)
    summary = evaluate(loaded.agent, env_id, episodes=2, seed=2_000_000, **options)
    assert summary["collision_rate"] == 0.0 and summary["mean_speed"] > 20.0


def test_an_unknown_training_observation_is_one_line_naming_the_accepted(capsys, tmp_path):
    code, lines = main_result(["train", "dqn", "--steps", "9", "--out", str(tmp_path / "o"),
                               "--observation", "lidar"], capsys)
    assert code == 2 and len(lines) == 1
    assert "observation" in lines[0] and "camera" in lines[0]


def test_the_cli_runs_on_road_networks(tmp_path):
    """`scenarios`, `eval` (with the arrival rate), `watch` and `train` on the network ids."""
    listed = run_cli("scenarios")
    assert listed.returncode == 0, listed.stderr[-2000:]
    for name in ("intersection", "roundabout", "exit"):
        assert name in listed.stdout
    shown = run_cli("scenarios", "show", "roundabout")
    assert 'network = "roundabout"' in shown.stdout
    ev = run_cli("eval", "--agent", "vi", "--scenario", "roundabout", "--episodes", "1",
                 "--json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result["episodes"] == 1 and result["arrival_rate"] in (0.0, 1.0)
    one_road = run_cli("eval", "--agent", "idle", "--scenario", "highway", "--episodes", "1",
                       "--json")
    assert "arrival_rate" not in json.loads(one_road.stdout.strip().splitlines()[-1])
    watched = run_cli("watch", "--agent", "vi", "--scenario", "intersection", "--speed", "max",
                      "--episodes", "1")
    assert watched.returncode == 0, watched.stderr[-2000:]
    assert watched.stdout.startswith("1 episodes, mean return")
    out = tmp_path / "run"
    trained = run_cli("train", "dqn", "--scenario", "exit", "--steps", "64", "--out", str(out),
                      "--num-envs", "2", "--env", "duration=4", "--config", "batch_size=8",
                      "--config", "buffer_size=200", "--config", "eval_episodes=1")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "trained 64 steps" in trained.stdout
