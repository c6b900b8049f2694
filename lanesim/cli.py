"""The ``lanesim`` command: watch, train, evaluate and benchmark agents.

Every subcommand validates its arguments up front; a bad argument prints one line starting
with ``lanesim: error:`` and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path

import gymnasium as gym

from agents.run_dir import SB3_ALGOS

SCENARIO_HELP = ("bundled scenario name or .toml path (default: the road a trained agent was "
                 "trained on, highway for the others)")
AGENT_HELP = (
    "vi (value iteration on meta actions), dqn (the shipped DQN), dqn-camera (the shipped DQN"
    " that drives by the driver's-seat camera), random, idle (lane following),"
    " keyboard (drive yourself), or the path of a training directory of 'lanesim train' or of"
    " its checkpoint (a DQN .pt, an SB3 latest.zip)"
)
TRAIN_ALGOS = ("dqn", *SB3_ALGOS)
# lanesim.envs.options' view choices (tests/test_cli.py keeps them equal).
VIEWS = ("top", "camera", "both")
VIEW_HELP = ("the window's view: top (down), camera (the driver's seat) or both side by side "
             "(default: both for an agent that sees through the camera, camera or birdseye, "
             "else top; key C cycles them)")
# lanesim.envs.options.OBSERVATIONS, for --help (tests/test_cli.py keeps them equal).
OBSERVATION_NAMES = ("kinematics", "occupancy", "pixels", "camera", "birdseye")
BENCH_DESCRIPTION = ("Run the environment benchmark, lanesim against highway-env (python -m "
                     "lanesim_bench.bench_env); every argument after 'bench' goes to it.")
DEMO_VIDEO_EPISODES = 3  # episodes of the demo's video where there is no display


class CLIError(Exception):
    """A bad argument or missing input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as the one ``lanesim: error:`` line every other failure
    prints (not the usage block first); ``--help`` still prints the usage."""

    def error(self, message: str):
        command = self.prog.removeprefix("lanesim").strip()
        hint = f"lanesim {command} --help" if command else "lanesim --help"
        self.exit(2, f"lanesim: error: {message} (see '{hint}')\n")


def _int_at_least(low: int, wanted: str):
    """An argparse type: an integer >= ``low``, else an error saying ``wanted``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _speed(text: str) -> float | str:
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'max', got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite speed >= 0 or 'max', got {text!r}")
    return value


def assignment(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON (bare words are strings): the argparse type of
    ``--env`` and ``--config``, here and in the benchmark scripts."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _scenario_env(scenario: str) -> tuple[str, dict]:
    """Gym id and keywords for a bundled scenario name or a scenario file path."""
    from lanesim.envs.options import OptionError, load_scenario

    try:
        load_scenario(scenario)
    except OptionError as e:
        raise CLIError(str(e)) from None
    return "lanesim/Drive-v0", {"scenario": scenario}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lanesim",
        description="lanesim: a fast, batched driving simulator for reinforcement learning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="watch the value-iteration agent drive Highway-v0",
                       description="Open a window where an agent drives Highway-v0 with the road "
                       "overlay and HUD, episode after episode until you close it (Esc). "
                       "Without a display, write a video of the same drive and print where it "
                       "is.")
    p.add_argument("--agent", choices=("vi", "dqn", "dqn-camera"), default="vi",
                   help="vi (default), the shipped DQN, or the shipped camera DQN")
    p.add_argument("--view", choices=VIEWS, default=None, help=VIEW_HELP)
    p.add_argument("--seed", type=_non_negative_int, default=0, help="episode seed (default 0)")
    p.add_argument("--video", metavar="DIR", default="videos",
                   help="where to write the video when there is no display (default videos/)")
    p.add_argument("--episodes", type=_positive_int, default=None,
                   help="end after this many episodes (default: until the window closes; "
                   f"{DEMO_VIDEO_EPISODES} for a video)")

    p = sub.add_parser("watch", help="watch any agent, or drive yourself, in the window",
                       description="Watch an agent drive in the pygame window. Keys: +/- speed, "
                       "space pause, . step, O overlay, H help, R reset, Esc quit.")
    p.add_argument("--agent", default="vi", help=AGENT_HELP + " (default vi)")
    p.add_argument("--scenario", default=None, help=SCENARIO_HELP)
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="simulation speed: 1 = real time, 0.25 slow motion, 8 faster, max")
    p.add_argument("--view", choices=VIEWS, default=None, help=VIEW_HELP)
    p.add_argument("--seed", type=_non_negative_int, default=0, help="first episode seed")
    p.add_argument("--episodes", type=_positive_int, default=None,
                   help="episodes before exiting (default: until the window closes)")

    p = sub.add_parser("train", help="train an agent headlessly",
                       description="Train headlessly with a progress bar, TensorBoard logs in "
                       "OUT/tb and checkpoints in OUT (latest.pt, best.pt).")
    p.add_argument("algo", choices=TRAIN_ALGOS,
                   help="lanesim's DQN, or a Stable-Baselines3 baseline")
    p.add_argument("--scenario", default="highway", help="bundled scenario or .toml path")
    p.add_argument("--steps", type=_positive_int, required=True, help="environment steps")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed (default 0)")
    p.add_argument("--num-envs", type=_positive_int, default=8,
                   help="worlds stepped together (default 8)")
    # Checked by the environment's options (importing them here would slow every command).
    p.add_argument("--observation", default=None, metavar="|".join(OBSERVATION_NAMES),
                   help="observation (default: pixels for DQNs, kinematics for PPO)")
    p.add_argument("--env", action="append", default=[], metavar="OPTION=VALUE", type=assignment,
                   help="environment option, e.g. --env action=meta --env policy_hz=1 "
                   "(values are TOML/JSON: numbers, true/false, strings, lists)")
    p.add_argument("--config", action="append", default=[], metavar="FIELD=VALUE",
                   type=assignment, help="hyperparameter: a DQNConfig field for dqn, e.g. "
                   "--config lr=2.5e-4 --config prioritized=true; a PPOConfig field "
                   "(agents/sb3_ppo.py) for sb3-ppo, e.g. --config n_steps=64; threads=N "
                   "(torch CPU threads, default 1) for every trainer")

    p = sub.add_parser("eval", help="evaluate an agent over seeded episodes",
                       description="Run seeded episodes and print mean return, collision rate, "
                       "off-road rate, mean speed and RMS lane offset.")
    p.add_argument("--agent", default="vi", help=AGENT_HELP + " (default vi)")
    p.add_argument("--scenario", default=None, help=SCENARIO_HELP)
    p.add_argument("--episodes", type=_positive_int, default=10, help="episodes (default 10)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="first episode seed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="FILE.png",
                   help="write a picture of the per-episode results (and the learning curve of "
                   "a training directory)")
    p.add_argument("--video", metavar="DIR", help="record every episode as a video in DIR")

    p = sub.add_parser("scenarios", help="list bundled scenarios, or show one",
                       description="List the bundled scenarios; 'show NAME' prints one with "
                       "every option it sets.")
    p.add_argument("action", nargs="?", choices=("show",), help="show one scenario")
    p.add_argument("name", nargs="?", help="scenario name or .toml path (with show)")

    # No argparse help: `lanesim bench --help` shows the benchmark's own options (cmd_bench).
    p = sub.add_parser("bench", help="run the speed benchmarks", add_help=False,
                       description=BENCH_DESCRIPTION)
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    return parser


# ---------------------------------------------------------------------- commands
def cmd_scenarios(args) -> int:
    from lanesim.envs.options import (
        NETWORK_OPTIONS,
        ROAD_OPTIONS,
        ROAD_TRAFFIC_OPTIONS,
        Options,
        bundled_scenarios,
        description,
        load_scenario,
    )

    if args.action is None:
        if args.name is not None:
            raise CLIError(f"unexpected argument {args.name!r}; "
                           f"did you mean 'scenarios show {args.name}'?")
        for name in bundled_scenarios():
            print(f"{name:14s} {description(name)}")
        return 0
    if args.name is None:
        raise CLIError("scenarios show needs a scenario NAME")
    values, label = _or_cli_error(load_scenario, args.name)
    print(f"# {label}: {description(args.name)}")
    defaults = Options()
    # Show what applies: a network's roads come from its table, one road's from its options.
    skip = (set(ROAD_OPTIONS) | set(ROAD_TRAFFIC_OPTIONS) if "network" in values
            else set(NETWORK_OPTIONS))
    for key in Options.__dataclass_fields__:
        if key in skip:
            continue
        value = getattr(defaults, key) if key not in values else values[key]
        mark = "" if key in values else "   # default"
        print(f"{key} = {json.dumps(value)}{mark}")
    return 0


def cmd_train(args) -> int:
    from lanesim.envs.options import make_options

    env_id, kw = _scenario_env(args.scenario)
    kw.update(dict(args.env))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: is a file; expected a directory (new or of an earlier run)")
    if args.resume and not (out / "latest.pt").exists() and not (out / "latest.zip").exists():
        raise CLIError(f"--resume: no checkpoint in {out} (expected {out / 'latest.pt'})")
    from agents import run_dir, training

    if args.resume and (out / run_dir.ENV_FILE).exists():
        trained = _or_cli_error(run_dir.read_algo, out) or (
            "dqn" if (out / "latest.pt").exists() else None)
        if trained is not None and trained != args.algo:
            raise CLIError(f"--resume: {out} holds a {trained} run, not {args.algo}")
    if args.algo == "sb3-dqn":
        ignored = [key for key, _ in args.config if key not in training.SB3_SETTINGS]
        if ignored:
            raise CLIError(f"--config {ignored[0]}: {args.algo} takes only "
                           f"{', '.join(training.SB3_SETTINGS)} from --config; the other "
                           "fields are lanesim DQN or SB3 PPO settings")
    config = dict(args.config)
    try:
        # Every option and setting error surfaces here, before any training starts.
        kw = training.train_options(args.algo, kw, args.observation)
        make_options(**kw)
        if args.algo == "sb3-ppo":
            training.ppo_config(args.steps, args.num_envs, config)
        # The DQN's settings, or for the SB3 baselines the trainer's own (threads).
        training.dqn_config(args.steps, args.num_envs, args.seed, config if args.algo == "dqn"
                            else {k: v for k, v in config.items() if k in training.SB3_SETTINGS})
    except ValueError as e:  # OptionError included
        raise CLIError(str(e)) from None
    return training.run(args.algo, env_id, kw, out=out, steps=args.steps,
                        num_envs=args.num_envs, seed=args.seed, resume=args.resume,
                        config=dict(args.config))


def _writable_file(path: str, option: str) -> None:
    """Refuse ``option``'s output file unless matplotlib writes its type and it can be made."""
    from matplotlib.figure import Figure

    kinds = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise CLIError(f"{option} {path}: unknown picture type {Path(path).suffix or '(none)'!r};"
                       f" use one of {', '.join('.' + k for k in sorted(kinds))}")
    target = Path(path)
    if target.is_dir():
        raise CLIError(f"{option} {path}: is a directory; expected a file name")
    existed = target.exists()
    try:
        with open(target, "ab"):
            pass
    except OSError as e:
        raise CLIError(f"{option} {path}: cannot write there ({e.strerror})") from None
    if not existed:
        target.unlink()


def _writable_dir(path: str, option: str) -> None:
    """Make ``option``'s output directory, or refuse it with the reason."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"{option} {path}: cannot make this directory ({e.strerror})") from None
    if not os.access(path, os.W_OK):
        raise CLIError(f"{option} {path}: cannot write into this directory")


def cmd_eval(args) -> int:
    from agents import evaluate as ev

    if args.agent == "keyboard":
        raise CLIError("eval runs headless; drive by hand with 'lanesim watch --agent keyboard'")
    if args.plot:
        _writable_file(args.plot, "--plot")
    if args.video:
        _writable_dir(args.video, "--video")
    loaded, env_id, options, where = _agent_env(args.agent, args.scenario)
    result = ev.evaluate(loaded.agent, env_id, episodes=args.episodes, seed=args.seed,
                         video_dir=args.video, **options)
    keys = ("episodes", "mean_return", "collision_rate", "offroad_rate", "mean_speed",
            "lane_offset_rms")
    if result["arrival_rate"] is not None:  # a scenario with goals (a road network)
        keys += ("arrival_rate",)
    if args.json:
        print(json.dumps({k: result[k] for k in keys}))
    else:
        print(f"agent {args.agent} on {where}, {args.episodes} episodes from seed {args.seed}")
        for k in keys:
            print(f"  {k:16s} {result[k]:.4g}")
    if args.video:
        print(f"videos written to {Path(args.video).resolve()}")
    if args.plot:
        from agents.plots import plot_evaluation

        plot_evaluation(result, args.plot, training_dir=loaded.training_dir)
        print(f"plot written to {Path(args.plot).resolve()}")
    return 0


def _or_cli_error(fn, *a):
    """``fn(*a)``, with a bad or missing input (a ValueError, OptionError included, or a
    FileNotFoundError) as a CLIError. A damaged checkpoint's CheckpointError reaches
    :func:`main`, which prints it as one line too (without importing torch for the others)."""
    try:
        return fn(*a)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None


def _loaded(spec: str):
    """The agent named by an ``--agent`` value, with the options it needs."""
    from agents.zoo import load_agent

    return _or_cli_error(load_agent, spec)


def _agent_env(spec: str, scenario: str | None):
    """``(loaded agent, env id, options, where)`` for ``--agent`` and ``--scenario``: the
    scenario with the options the agent needs or, without ``--scenario``, the environment a
    trained agent was trained on (highway for the others)."""
    loaded = _loaded(spec)
    if scenario is None and loaded.training_options is not None:
        env_id, options = "lanesim/Drive-v0", dict(loaded.training_options)
        where = "its training road"
    else:
        where = scenario or "highway"
        env_id, kw = _scenario_env(where)
        options = {**kw, **loaded.env_options}
    _check_fit(loaded.agent, env_id, options)
    return loaded, env_id, options, where


def _check_fit(agent, env_id: str, options: dict) -> None:
    """Refuse an agent whose network does not fit the environment's observations and actions
    (a checkpoint without its env.json gets pixel options), before any episode starts."""
    from lanesim.envs.options import OptionError

    if not hasattr(agent, "obs_shape"):  # only a network has fixed inputs and outputs
        return
    try:
        env = gym.make(env_id, **options)
    except OptionError as e:
        raise CLIError(str(e)) from None
    try:
        shape, space = tuple(env.observation_space.shape), env.action_space
    finally:
        env.close()
    n = getattr(space, "n", None)
    if shape != tuple(agent.obs_shape) or n != agent.n_actions:
        raise CLIError(
            f"the agent's network takes observations {tuple(agent.obs_shape)} and "
            f"{agent.n_actions} actions, the environment gives {shape} and "
            f"{n if n is not None else space}; a checkpoint needs the env.json of its "
            "training directory beside it (or --scenario with options that fit)")


def watch(agent, env_id: str, seed: int = 0, episodes: int | None = None, linger: float = 1.0,
          **options) -> list[float]:
    """Let ``agent`` drive ``gym.make(env_id, render_mode="human", **options)`` in the window
    (:func:`lanesim.render.keyboard.play`) until it closes or ``episodes`` end. With
    ``episodes``, the HUD says which episode runs and that the run ends after it. Returns the
    return of each finished episode."""
    from lanesim.render.keyboard import play

    env = gym.make(env_id, render_mode="human", **options)
    try:
        return play(env, agent, seed=seed, episodes=episodes, linger=linger,
                    notice="episode {episode} of {episodes}: the run ends after {episodes} "
                    "(--episodes)")
    finally:
        env.close()


def _view(options: dict, view: str | None) -> dict:
    """``options`` with the window's ``view``: as asked, else both panes for an agent that
    sees through the camera (its camera image, or the one its bird's-eye view is warped from,
    beside the top-down view)."""
    if view is None and options.get("observation") in ("camera", "birdseye"):
        view = "both"
    return options if view is None else {**options, "view": view}


def cmd_watch(args) -> int:
    loaded, env_id, options, _ = _agent_env(args.agent, args.scenario)
    returns = watch(loaded.agent, env_id, seed=args.seed, episodes=args.episodes,
                    sim_speed=args.speed, **_view(options, args.view))
    if returns:
        print(f"{len(returns)} episodes, mean return {sum(returns) / len(returns):.2f}")
    return 0


def has_display() -> bool:
    """Whether a real window can open: an X or Wayland display, and no dummy SDL driver."""
    if os.environ.get("SDL_VIDEODRIVER", "") in ("dummy", "offscreen"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in (
        "darwin", "win32")


def cmd_demo(args) -> int:
    from agents import evaluate as ev

    loaded = _loaded(args.agent)
    agent, options = loaded.agent, _view(loaded.env_options, args.view)
    if has_display():
        print(f"Watching the {args.agent} agent on Highway-v0. Press H in the window for the keys.")
        if args.episodes is None:
            print("The demo runs until you close the window (Esc).")
        else:
            print(f"The demo ends after {args.episodes} episodes (--episodes {args.episodes}); "
                  "close the window (Esc) to end it sooner.")
        returns = watch(agent, "lanesim/Highway-v0", seed=args.seed, episodes=args.episodes,
                        **options)
        if args.episodes is not None and len(returns) >= args.episodes:
            print(f"The demo ended: {len(returns)} episodes were asked for (--episodes).")
        return 0
    episodes = args.episodes or DEMO_VIDEO_EPISODES
    print(f"No display found (no DISPLAY/WAYLAND_DISPLAY): recording a video of {episodes} "
          "episodes instead (--episodes to change).")
    ev.evaluate(agent, "lanesim/Highway-v0", episodes=episodes, seed=args.seed,
                video_dir=args.video, **options)
    print(f"videos written to {Path(args.video).resolve()}")
    return 0


def cmd_bench(args) -> int:
    # The benchmarks are their own package, installed with lanesim: imported only here, so
    # nothing else in lanesim depends on them.
    from lanesim_bench import bench_env

    passed = args.args[1:] if args.args[:1] == ["--"] else args.args
    if any(a in ("-h", "--help") for a in passed):
        # The benchmark's own options live in its parser: show them under lanesim's usage.
        print("usage: lanesim bench [BENCHMARK OPTION ...]\n\n" + BENCH_DESCRIPTION
              + "\n\nThe benchmark's options, passed on as they are:\n")
        sys.stdout.flush()
        passed = ["--help"]
    try:
        return bench_env.main(passed, prog="lanesim bench")
    except SystemExit as e:  # argparse's --help and usage errors
        return e.code if isinstance(e.code, int) else 2


COMMANDS = {
    "demo": cmd_demo,
    "watch": cmd_watch,
    "train": cmd_train,
    "eval": cmd_eval,
    "scenarios": cmd_scenarios,
    "bench": cmd_bench,
}


def _terminate(signum, frame):
    # `kill PID` ends a command as Ctrl-C does: training saves its checkpoint first.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _user_error(e: Exception) -> str | None:
    """The one-line message of a failure the user caused (a bad or damaged input file, an
    unwritable path), or None for a bug, which keeps its traceback."""
    from lanesim.envs.options import OptionError
    from lanesim.sim.memory import InsufficientMemoryError

    if isinstance(e, CLIError | OptionError | InsufficientMemoryError):
        return str(e)
    checkpoint = sys.modules.get("agents.dqn.checkpoint")
    if checkpoint is not None and isinstance(e, checkpoint.CheckpointError):
        return str(e)
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return None


def main(argv: list[str] | None = None) -> int:
    import lanesim  # noqa: F401  (registers the environments)

    parser = build_parser()
    # bench hands every argument after it to the benchmark script, options included.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "bench":
        args.args = extra + args.args
    sigterm = signal.signal(signal.SIGTERM, _terminate)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as e:
        print(f"lanesim: interrupted{f' ({e})' if str(e) else ''}", file=sys.stderr)
        return 128 + (signal.SIGTERM if str(e) == "SIGTERM" else signal.SIGINT)
    except Exception as e:
        message = _user_error(e)
        if message is None:
            raise
        print(f"lanesim: error: {message}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, sigterm)


if __name__ == "__main__":
    gym.logger.min_level = 40
    sys.exit(main())
