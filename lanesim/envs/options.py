"""Every environment option, typed and validated in one place.

Precedence: :class:`Options` defaults < the scenario file < ``gym.make`` keywords. Unknown keys
raise with the closest valid name; bad values name the option and what it accepts; a malformed
scenario file names the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

OBSERVATIONS = ("kinematics", "occupancy", "pixels")
ACTIONS = ("discrete", "meta", "continuous")
REWARD_TERMS = ("lane_keeping", "progress", "collision", "offroad", "lane_change", "comfort")


class OptionError(ValueError):
    """A bad option name or value."""


class UnknownOptionError(OptionError, TypeError):
    """An option name that does not exist.

    A ``TypeError`` as Python raises for an unexpected keyword, so callers that probe keywords
    and fall back on ``TypeError`` (TorchRL's ``GymEnv`` tries ``frameskip=``) work; still an
    :class:`OptionError` (so a ``ValueError``) for ``except OptionError`` and older callers.
    """


class FrozenTable(dict):
    """A read-only dict: the tables inside frozen :class:`Options` (``rewards``, ``road`` ...).

    A ``dict`` subclass so that value checks, ``json`` and ``dataclasses.asdict`` take it as
    they take the user's dict; every mutation raises ``TypeError``.
    """

    def _refuse(self, *args, **kwargs):
        raise TypeError(
            "lanesim options are read-only once the environment is made; pass new values to "
            "gym.make or, for those that can change per episode, to reset(options=...)"
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        # copy, deepcopy and pickle rebuild it whole instead of filling it item by item.
        return FrozenTable, (dict(self),)


def _freeze(value: Any) -> Any:
    """Lists become tuples and dicts :class:`FrozenTable`, all the way down."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return FrozenTable({k: _freeze(v) for k, v in value.items()})
    return value


def _opt(default, help: str, check=None, **kw):
    return field(default=default, metadata={"help": help, "check": check}, **kw)


def _list_opt(default, help: str, check=None):
    return field(default_factory=lambda: list(default), metadata={"help": help, "check": check})


def _dict_opt(default, help: str, check=None):
    return field(default_factory=lambda: dict(default), metadata={"help": help, "check": check})


# ---------------------------------------------------------------- value checks
def _positive(name, v):
    _number(name, v)
    if not v > 0:
        raise OptionError(f"option {name!r} must be > 0, got {v!r}")


def _non_negative(name, v):
    _number(name, v)
    if v < 0:
        raise OptionError(f"option {name!r} must be >= 0, got {v!r}")


def _number(name, v):
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise OptionError(f"option {name!r} must be a finite number, got {v!r}")


def _count(lo, hi=None):
    def check(name, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise OptionError(f"option {name!r} must be an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            span = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise OptionError(f"option {name!r} must be an integer {span}, got {v!r}")

    return check


# highway-env's observation and action types: its users pass {"type": ...} dicts.
HIGHWAY_ENV_TYPES = {
    "Kinematics": "kinematics",
    "OccupancyGrid": "occupancy",
    "GrayscaleObservation": "pixels",
    "DiscreteMetaAction": "meta",
    "DiscreteAction": "discrete",
    "ContinuousAction": "continuous",
}


def _choice(choices):
    def check(name, v):
        if v not in choices:
            hint = _suggest(str(v), choices)
            if isinstance(v, dict) and v.get("type") in HIGHWAY_ENV_TYPES:
                hint = (
                    f" (a highway-env {name} dict; lanesim's counterpart is "
                    f"{name}={HIGHWAY_ENV_TYPES[v['type']]!r})"
                )
            raise OptionError(
                f"option {name!r} must be one of {', '.join(choices)}; got {v!r}{hint}"
            )

    return check


def _flag(name, v):
    if not isinstance(v, bool):
        raise OptionError(f"option {name!r} must be true or false, got {v!r}")


def _range(name, v):
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise OptionError(f"option {name!r} must be a pair [low, high], got {v!r}")
    for x in v:
        _non_negative(name, x)
    if v[0] > v[1]:
        raise OptionError(f"option {name!r} must have low <= high, got {list(v)!r}")


def _sim_speed(name, v):
    if v == "max":
        return
    _non_negative(name, v)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _table(name: str, spec: dict[str, tuple], what: str):
    """Check a list of tables whose entries have the keys in ``spec`` (key -> (check, required))."""

    def check(opt, v):
        if not isinstance(v, list | tuple):
            raise OptionError(f"option {opt!r} must be a list of {what} tables, got {v!r}")
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                raise OptionError(f"option {opt!r}[{i}] must be a table of {what}, got {item!r}")
            for key in item:
                if key not in spec:
                    raise OptionError(
                        f"option {opt!r}[{i}] has unknown key {key!r}{_suggest(key, spec)}; "
                        f"accepted: {', '.join(spec)}"
                    )
            for key, (chk, required) in spec.items():
                if key in item:
                    chk(f"{opt}[{i}].{key}", item[key])
                elif required:
                    raise OptionError(f"option {opt!r}[{i}] needs key {key!r}")

    return check


def _signed(name, v):
    _number(name, v)
    if abs(v) < 1.0:
        raise OptionError(
            f"option {name!r} must have |radius| >= 1 m (sign: + left, - right), got {v!r}"
        )


def _weights(name, v):
    if not isinstance(v, dict):
        raise OptionError(f"option {name!r} must be a table of reward weights, got {v!r}")
    for key, w in v.items():
        if key not in REWARD_TERMS:
            raise OptionError(
                f"option {name!r} has unknown reward term {key!r}{_suggest(key, REWARD_TERMS)}; "
                f"accepted: {', '.join(REWARD_TERMS)}"
            )
        _number(f"{name}.{key}", w)


def _ints(name, v):
    if not isinstance(v, list | tuple):
        raise OptionError(f"option {name!r} must be a list of lane indices, got {v!r}")
    for x in v:
        _count(0)(name, x)


def _shape(name, v):
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise OptionError(f"option {name!r} must be [height, width] in pixels, got {v!r}")
    for x in v:
        _count(16, 1024)(name, x)


_SEGMENT = {"length": (_positive, True), "radius": (_signed, False)}
_RAMP = {"start": (_non_negative, True), "length": (_positive, True)}
_CLOSURE = {"lane": (_count(0), True), "start": (_non_negative, True), "taper": (_positive, False)}
_STALLED = {"lane": (_count(0), True), "s": (_non_negative, True)}

DEFAULT_REWARDS = {
    "lane_keeping": 0.3,
    "progress": 0.7,
    "collision": -10.0,
    "offroad": -10.0,
    "lane_change": -0.1,
    "comfort": -0.05,
}


@dataclass(frozen=True)
class Options:
    """All options of a lanesim environment, with units. Each is a ``gym.make`` keyword and a
    scenario file key.

    Frozen once made: list options become tuples and tables read-only, since an environment
    built from them would not see a later change. Per-episode changes go through
    ``reset(options=...)`` (see :data:`RESET_OPTIONS`).
    """

    # --- the interface
    observation: str = _opt("kinematics", "observation type", _choice(OBSERVATIONS))
    action: str = _opt("discrete", "action type", _choice(ACTIONS))
    # --- road
    lanes: int = _opt(4, "number of through lanes", _count(1, 8))
    lane_width: float = _opt(4.0, "lane width (m)", _positive)
    road: list = _list_opt(
        [{"length": 5000.0}],
        "reference line: tables {length (m), radius (m, + left / - right; omit for straight)}",
        _table("road", _SEGMENT, "segment"),
    )
    repeat_road: bool = _opt(
        True, "repeat the road pattern until it is long enough for the episode", _flag
    )
    ramp: list = _list_opt(
        [], "on-ramps: tables {start (m), length (m)}; each adds a lane on the right", _table(
            "ramp", _RAMP, "ramp")
    )
    closures: list = _list_opt(
        [], "lane closures: tables {lane, start (m), taper (m)} marked by cones",
        _table("closures", _CLOSURE, "closure"),
    )
    stalled: list = _list_opt(
        [], "stalled cars: tables {lane, s (m)}", _table("stalled", _STALLED, "stalled car")
    )
    # --- traffic
    vehicles: int = _opt(20, "traffic cars per world", _count(0, 500))
    traffic_speed: list = _list_opt([22.0, 30.0], "traffic desired speed range (m/s)", _range)
    traffic_politeness: list = _list_opt([0.0, 0.5], "MOBIL politeness range", _range)
    traffic_brake_rate: float = _opt(
        0.0, "sudden braking events per car per second (stop-and-go)", _non_negative
    )
    spawn_spacing: float = _opt(30.0, "largest spawn gap between cars in a lane (m)", _positive)
    recycle_distance: float = _opt(
        300.0, "cars farther than this from the ego are moved to the other side (m)", _positive
    )
    # --- ego
    ego_start: float = _opt(200.0, "ego start along the road (m)", _non_negative)
    ego_lanes: list = _list_opt([], "lanes the ego may start in (empty: any through lane)", _ints)
    ego_speed: list = _list_opt([20.0, 25.0], "ego start speed range (m/s)", _range)
    # --- timing
    sim_hz: float = _opt(15.0, "simulation steps per second", _positive)
    policy_hz: float = _opt(5.0, "decisions per second; sim_hz must be a multiple", _positive)
    duration: float = _opt(40.0, "episode length before truncation (s)", _positive)
    # --- reward
    rewards: dict = _dict_opt(DEFAULT_REWARDS, "reward weights by term", _weights)
    reward_speed: float = _opt(30.0, "speed at which the progress term saturates (m/s)", _positive)
    # --- observations
    observed_vehicles: int = _opt(8, "vehicles in the kinematics observation", _count(1, 64))
    perception_distance: float = _opt(
        100.0, "range of the kinematics observation along the road (m)", _positive
    )
    image_shape: list = _list_opt([84, 84], "pixel observation [height, width]", _shape)
    frame_stack: int = _opt(4, "pixel observation frames stacked", _count(1, 16))
    # --- meta actions
    meta_speeds: list = _list_opt(
        [20.0, 25.0, 30.0], "target speeds (m/s) that FASTER / SLOWER step between", None
    )
    # --- rendering
    screen_width: int = _opt(600, "render width (px)", _count(64, 4096))
    screen_height: int = _opt(150, "render height (px)", _count(32, 4096))
    road_overlay: bool = _opt(True, "draw lane centres, errors and the agent's plan", _flag)
    hud: bool = _opt(True, "draw the HUD: time, speed, lane, reward terms, return", _flag)
    sim_speed: float | str = _opt(
        1.0, "human-mode real-time factor (1 = real time, 0 or 'max' = unpaced)", _sim_speed
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_option(f.name, getattr(self, f.name))
        rewards = dict(DEFAULT_REWARDS)
        rewards.update(self.rewards)
        object.__setattr__(self, "rewards", rewards)
        ratio = self.sim_hz / self.policy_hz
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise OptionError(
                f"sim_hz ({self.sim_hz}) must be a whole multiple of policy_hz ({self.policy_hz})"
            )
        speeds = self.meta_speeds
        if not isinstance(speeds, list | tuple) or not speeds:
            raise OptionError(f"option 'meta_speeds' must be a non-empty list, got {speeds!r}")
        for v in speeds:
            _positive("meta_speeds", v)
        if list(speeds) != sorted(speeds):
            raise OptionError(f"option 'meta_speeds' must be increasing, got {list(speeds)!r}")
        total = self.lanes + len(self.ramp)
        for i, c in enumerate(self.closures):
            if c["lane"] >= total:
                raise OptionError(
                    f"option 'closures'[{i}].lane is {c['lane']}, "
                    f"but the road has lanes 0..{total - 1}"
                )
        for i, c in enumerate(self.stalled):
            if c["lane"] >= total:
                raise OptionError(
                    f"option 'stalled'[{i}].lane is {c['lane']}, "
                    f"but the road has lanes 0..{total - 1}"
                )
        for lane in self.ego_lanes:
            if lane >= total:
                raise OptionError(
                    f"option 'ego_lanes' has lane {lane}; the road has 0..{total - 1}"
                )
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _freeze(getattr(self, f.name)))

    @property
    def frames_per_decision(self) -> int:
        """Simulation steps per decision."""
        return round(self.sim_hz / self.policy_hz)


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(Options))
_CHECKS = {f.name: f.metadata.get("check") for f in dataclasses.fields(Options)}

# What ``reset(options=...)`` may change: traffic, the ego's start, the scenario's closures and
# stalled cars, reward weights and the episode length; none of them changes a space.
RESET_OPTIONS = (
    "vehicles",
    "traffic_speed",
    "traffic_politeness",
    "traffic_brake_rate",
    "spawn_spacing",
    "recycle_distance",
    "ego_start",
    "ego_lanes",
    "ego_speed",
    "closures",
    "stalled",
    "rewards",
    "reward_speed",
    "duration",
)
# Options that shape the observation or action space (occupancy rows count every lane).
SPACE_OPTIONS = (
    "observation",
    "action",
    "lanes",
    "ramp",
    "observed_vehicles",
    "image_shape",
    "frame_stack",
)


# highway-env's config keys, which its users bring along (README "Coming from highway-env"):
# those with an exact lanesim counterpart, and where lanesim puts the idea of the others.
HIGHWAY_ENV_NAMES = {
    "lanes_count": "lanes",
    "vehicles_count": "vehicles",
    "simulation_frequency": "sim_hz",
    "policy_frequency": "policy_hz",
}
HIGHWAY_ENV_HINTS = {
    "config": "lanesim takes options as keywords, e.g. gym.make(id, lanes=3, vehicles=20)",
    "initial_lane_id": "the closest is ego_lanes=[lane]",
    "ego_spacing": "lanesim spaces cars in metres: spawn_spacing",
    "vehicles_density": "lanesim spaces cars in metres: spawn_spacing",
    "collision_reward": "lanesim weighs it as rewards={'collision': w}",
    "lane_change_reward": "lanesim weighs it as rewards={'lane_change': w}",
    "high_speed_reward": "lanesim's speed term is rewards={'progress': w}",
    "reward_speed_range": "progress saturates at reward_speed (m/s)",
    "right_lane_reward": "lanesim rewards lane keeping instead: rewards={'lane_keeping': w}",
    "other_vehicles_type": "traffic is IDM + MOBIL, tuned by traffic_speed, traffic_politeness, "
    "traffic_brake_rate",
    "offroad_terminal": "leaving the road always ends a lanesim episode",
}


def _highway_env_hint(key: str) -> str:
    if key in HIGHWAY_ENV_NAMES:
        return f" (highway-env's name; lanesim calls it {HIGHWAY_ENV_NAMES[key]!r})"
    if key in HIGHWAY_ENV_HINTS:
        return (
            f" (highway-env's name, with no exact counterpart: {HIGHWAY_ENV_HINTS[key]}; "
            "see README, 'Coming from highway-env')"
        )
    return ""


def unknown_option(key: str, names=OPTION_NAMES, scenario: str | None = None) -> UnknownOptionError:
    """The error for an option name that is not one of ``names``, with the closest valid name
    (or, for a highway-env config key, lanesim's counterpart); ``scenario`` names the file the
    key came from, if any.

    A keyword's message opens with Python's own words: TorchRL's ``GymEnv`` retries without
    ``frameskip`` only on a ``TypeError`` whose message says exactly that.
    """
    hint = _highway_env_hint(key) if names is OPTION_NAMES else ""
    hint = hint or _suggest(key, names)
    if scenario is not None:
        return UnknownOptionError(f"scenario file {scenario}: unknown key {key!r}{hint}")
    return UnknownOptionError(
        f"unexpected keyword argument {key!r}: unknown option {key!r}{hint}; "
        f"valid options: {', '.join(names)}"
    )


def check_option(name: str, value: Any) -> None:
    """Validate one option's value on its own; raises OptionError."""
    check = _CHECKS[name]
    if check is not None:
        check(name, value)


def option_help() -> dict[str, str]:
    """Option name -> help text with its default, in declaration order."""
    out = {}
    for f in dataclasses.fields(Options):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = f"{f.metadata['help']} (default {default!r})"
    return out


# ---------------------------------------------------------------- scenarios
def bundled_scenarios() -> list[str]:
    """Names of the scenario files shipped with lanesim."""
    root = resources.files("lanesim.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_scenario(scenario: str | Path) -> tuple[dict[str, Any], str]:
    """Read a scenario by bundled name or file path; returns ``(options dict, source label)``.

    Raises OptionError naming the file and key for anything malformed.
    """
    path = Path(scenario)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise OptionError(f"scenario file {str(path)!r} does not exist")
        text = path.read_text()
        label = str(path)
    else:
        names = bundled_scenarios()
        if str(scenario) not in names:
            raise OptionError(
                f"unknown scenario {str(scenario)!r}{_suggest(str(scenario), names)}; bundled: "
                f"{', '.join(names)}, or the path of a .toml file"
            )
        text = resources.files("lanesim.scenarios").joinpath(f"{scenario}.toml").read_text()
        label = f"{scenario}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise OptionError(f"scenario file {label}: not valid TOML: {e}") from None
    data.pop("description", None)
    for key, value in data.items():
        if key not in OPTION_NAMES:
            raise unknown_option(key, scenario=label)
        try:
            check_option(key, value)
        except OptionError as e:
            raise OptionError(f"scenario file {label}: {e}") from None
    return data, label


def description(scenario: str | Path) -> str:
    """The ``description`` line of a scenario file (empty if it has none)."""
    path = Path(scenario)
    if path.suffix == ".toml" or path.exists():
        text = path.read_text()
    else:
        text = resources.files("lanesim.scenarios").joinpath(f"{scenario}.toml").read_text()
    return str(tomllib.loads(text).get("description", ""))


def with_reset_options(current: Options, changes: dict[str, Any]) -> Options:
    """``current`` with the :data:`RESET_OPTIONS` in ``changes`` applied, validated as by
    :func:`make_options`. ``rewards`` updates the named terms and keeps the others' weights.

    Raises UnknownOptionError for a name that is no option, OptionError for an option that
    cannot change at reset (one that shapes a space, or is fixed when the env is made) and for
    a bad value.
    """
    if not isinstance(changes, dict):
        raise OptionError(f"reset(options=...) must be a dict of options, got {changes!r}")
    for key in changes:
        if key not in OPTION_NAMES:
            raise unknown_option(key)
        if key not in RESET_OPTIONS:
            why = (
                "it changes the observation or action space"
                if key in SPACE_OPTIONS
                else "it is fixed when the environment is made"
            )
            raise OptionError(
                f"option {key!r} cannot change at reset: {why}; pass it to gym.make instead. "
                f"reset(options=...) accepts: {', '.join(RESET_OPTIONS)}"
            )
    values = dict(changes)
    if "rewards" in values:
        check_option("rewards", values["rewards"])
        values["rewards"] = {**current.rewards, **values["rewards"]}
    try:
        return dataclasses.replace(current, **values)
    except OptionError as e:
        raise OptionError(f"reset(options=...): {e}") from None


def refuse_reset_options(options: dict | None) -> None:
    """For an env whose options cannot change per episode (LaneGrid): refuse
    ``reset(options=...)`` rather than ignore it."""
    if options:
        raise OptionError(
            f"reset(options=...) is not supported (got {sorted(options)}); "
            "pass options to gym.make instead"
        )


def make_options(scenario: str | Path | None = None, **overrides: Any) -> Options:
    """Defaults, then the scenario file, then ``overrides``; validated once."""
    for key in overrides:
        if key not in OPTION_NAMES:
            raise unknown_option(key)
    values: dict[str, Any] = {}
    label = None
    if scenario is not None:
        values, label = load_scenario(scenario)
    values.update(overrides)
    try:
        return Options(**values)
    except OptionError as e:
        # Cross-option rules (e.g. sim_hz vs policy_hz) may involve the file's values too.
        where = f" (with scenario file {label})" if label else ""
        raise OptionError(f"{e}{where}") from None
