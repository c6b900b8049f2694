"""Every environment option, typed and validated in one place.

Precedence: :class:`Options` defaults < the scenario file < ``gym.make`` keywords. Unknown keys
raise with the closest valid name; bad values name the option and what it accepts; a malformed
scenario file names the file and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import stat
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from lanesim.camera import Camera
from lanesim.sim.network import Network, NetworkError
from lanesim.sim.road import (
    MEET_DISTANCE,
    MEET_HEADING,
    ClosureError,
    Road,
    Segment,
    along_offset,
)
from lanesim.sim.world import OBSTACLE_SIZE, STALLED, EgoModel

OBSERVATIONS = ("kinematics", "occupancy", "pixels", "camera", "birdseye")
IMAGE_OBSERVATIONS = ("pixels", "camera", "birdseye")  # uint8 channel-first frame stacks
ACTIONS = ("discrete", "meta", "continuous")
VIEWS = ("top", "camera", "both")  # the viewer's views, in the order its key C cycles them
REWARD_TERMS = ("lane_keeping", "progress", "collision", "offroad", "lane_change", "comfort")
# A road network's episodes add two terms: reaching the goal, and taking a turn off its route.
NETWORK_REWARD_TERMS = (*REWARD_TERMS, "arrival", "wrong_turn")
NETWORK_OBSERVATIONS = OBSERVATIONS  # every observation draws road networks too


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
# Ranges come from physics and sense, and keep every scenario's time and memory bounded: a
# decision is at most 10,000 simulation steps (sim_hz / policy_hz), an episode at most 4 h, the
# repeated road at most MAX_ROAD_SEGMENTS segments, a closure at most 101 cones.
MAX_SPEED = EgoModel().max_speed  # m/s, the ego's top speed bounds every speed option
MAX_ROAD_SEGMENTS = 100_000
MAX_DURATION = 4 * 3600.0  # s
MAX_WEIGHT = 1e6  # largest |reward weight|: an episode's return stays finite in float32
DEFAULT_TAPER = 60.0  # m, a closure's taper when its table has none
STALLED_LENGTH = OBSTACLE_SIZE[STALLED][0]  # m
EGO_HALF_LENGTH = 0.5 * EgoModel().length  # m, the camera stays inside the ego
DEFAULT_CAMERA_FOV = 90.0  # deg
BIRDSEYE_CELLS = (16, 1024)  # the bird's-eye grid's rows and columns, as image_shape's sides


def _plain(value, depth: int = 2):
    """numpy scalars (``np.int64``, ``np.float32``, ``np.bool_``) as Python values, also inside
    the lists and tables options hold (nested at most ``depth`` deep)."""
    if isinstance(value, np.generic):
        return value.item()
    if depth and isinstance(value, list | tuple):
        return type(value)(_plain(x, depth - 1) for x in value)
    if depth and isinstance(value, dict):
        return {k: _plain(x, depth - 1) for k, x in value.items()}
    return value


def _number(name, v):
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise OptionError(f"option {name!r} must be a finite number, got {v!r}")


def _between(lo, hi, unit="", open_low=False):
    """A number in ``[lo, hi]``, or in ``(lo, hi]`` when ``open_low``."""
    span = f"> {lo:g} and <= {hi:g}" if open_low else f"between {lo:g} and {hi:g}"
    unit = f" {unit}" if unit else ""

    def check(name, v):
        _number(name, v)
        if not (v > lo if open_low else v >= lo) or v > hi:
            raise OptionError(f"option {name!r} must be {span}{unit}, got {v!r}")

    return check


def _non_negative(name, v):
    _number(name, v)
    if v < 0:
        raise OptionError(f"option {name!r} must be >= 0, got {v!r}")


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


def _pair(lo, hi, unit=""):
    """A range ``[low, high]`` with both ends in ``[lo, hi]``."""
    each = _between(lo, hi, unit)

    def check(name, v):
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise OptionError(f"option {name!r} must be a pair [low, high], got {v!r}")
        for x in v:
            each(name, x)
        if v[0] > v[1]:
            raise OptionError(f"option {name!r} must have low <= high, got {list(v)!r}")

    return check


def _sim_speed(name, v):
    if v == "max" or (v == 0 and not isinstance(v, bool)):
        return
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise OptionError(f"option {name!r} must be a finite number or 'max', got {v!r}")
    _between(0.01, 1000)(name, v)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _table(spec: dict[str, tuple], what: str, most: int, fewest: int = 0):
    """Check a list of ``fewest`` to ``most`` tables whose entries have the keys in ``spec``
    (key -> (check, required))."""

    def check(opt, v):
        if not isinstance(v, list | tuple):
            raise OptionError(f"option {opt!r} must be a list of {what} tables, got {v!r}")
        if not fewest <= len(v) <= most:
            raise OptionError(
                f"option {opt!r} must hold {fewest:,} to {most:,} {what}s, got {len(v):,}"
            )
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
        if key not in NETWORK_REWARD_TERMS:
            raise OptionError(
                f"option {name!r} has unknown reward term {key!r}"
                f"{_suggest(key, NETWORK_REWARD_TERMS)}; accepted: {', '.join(REWARD_TERMS)}, "
                "and on a road network arrival and wrong_turn"
            )
        _between(-MAX_WEIGHT, MAX_WEIGHT)(f"{name}.{key}", w)


def _ints(name, v):
    if not isinstance(v, list | tuple) or len(v) > 16:
        raise OptionError(f"option {name!r} must be a list of up to 16 lane indices, got {v!r}")
    for x in v:
        _count(0, 15)(name, x)


def _shape(name, v):
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise OptionError(f"option {name!r} must be [height, width] in pixels, got {v!r}")
    for x in v:
        _count(16, 1024)(name, x)


def _numbers(n: int, ranges, what: str):
    """A list of ``n`` numbers, the ``i``-th within ``ranges[i]`` ``(lo, hi)``; ``what`` names
    them for the message."""

    def check(name, v):
        if not isinstance(v, list | tuple) or len(v) != n:
            raise OptionError(f"option {name!r} must be a list of {n} numbers {what}, got {v!r}")
        for x, (lo, hi) in zip(v, ranges, strict=True):
            _number(name, x)
            if not lo <= x <= hi:
                raise OptionError(
                    f"option {name!r} must be {what} with each value within the ranges "
                    f"{', '.join(f'[{a:g}, {b:g}]' for a, b in ranges)}, got {list(v)!r}"
                )

    return check


def _optional(check):
    """``check``, or None (the option is not given)."""

    def optional(name, v):
        if v is not None:
            check(name, v)

    return optional


def _extent(name, v):
    what = "[forward_min, forward_max, half_width] (m)"
    _numbers(3, [(-100, 500), (-100, 500), (0.5, 100)], what)(name, v)
    if v[0] >= v[1]:
        raise OptionError(f"option {name!r} must have forward_min < forward_max, got {list(v)!r}")


def _speeds(name, v):
    if not isinstance(v, list | tuple) or not 1 <= len(v) <= 16:
        raise OptionError(f"option {name!r} must be a list of 1 to 16 speeds (m/s), got {v!r}")
    for x in v:
        _between(0, MAX_SPEED, "m/s")(name, x)
    if list(v) != sorted(v) or len(set(v)) != len(v):
        raise OptionError(f"option {name!r} must be strictly increasing, got {list(v)!r}")


_SEGMENT = {"length": (_between(1, 100_000, "m"), True), "radius": (_signed, False)}
_RAMP = {"start": (_non_negative, True), "length": (_between(1, 100_000, "m"), True)}
_CLOSURE = {
    "lane": (_count(0), True),
    "start": (_non_negative, True),
    "taper": (_between(1, 500, "m"), False),
}
_STALLED = {"lane": (_count(0), True), "s": (_non_negative, True)}

DEFAULT_REWARDS = {
    "lane_keeping": 0.3,
    "progress": 0.7,
    "collision": -10.0,
    "offroad": -10.0,
    "lane_change": -0.1,
    "comfort": -0.05,
}
# On a road network: arriving at the goal ends the episode with a bonus; a wrong turn (onto a
# lane from which the goal cannot be reached) ends it with a penalty.
DEFAULT_NETWORK_REWARDS = {**DEFAULT_REWARDS, "arrival": 10.0, "wrong_turn": -10.0}
MAX_NETWORK_BYTES = 1 << 20


def _thaw(value: Any) -> Any:
    """Tuples as lists and read-only tables as dicts, all the way down: the plain TOML values
    that :meth:`Network.from_dict` reads."""
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def network_table(value: Any) -> dict:
    """The ``[network]`` table that option ``network``'s value names: a bundled network's name
    (``scenarios/networks/<name>.toml``), the path of a .toml file with a ``[network]`` table,
    or the table itself. Raises OptionError."""
    return _network_source(value)[0]


def _network_source(value: Any) -> tuple[dict, str | None]:
    """:func:`network_table`'s table and the file it came from (None for a table given)."""
    if isinstance(value, dict):
        return _thaw(value), None
    if not isinstance(value, str):
        raise OptionError(
            f"option 'network' must be a bundled network's name ({', '.join(bundled_networks())}"
            f"), the path of a .toml file with a [network] table, or that table; got {value!r}"
        )
    root = resources.files("lanesim.scenarios").joinpath("networks")
    if not value.endswith(".toml"):
        names = bundled_networks()
        if value not in names:
            raise OptionError(
                f"option 'network': unknown network {value!r}{_suggest(value, names)}; bundled: "
                f"{', '.join(names)}, or the path of a .toml file with a [network] table"
            )
        text, label = root.joinpath(f"{value}.toml").read_text("utf-8"), f"networks/{value}.toml"
    else:
        path = Path(value)
        if not path.is_file():
            raise OptionError(f"option 'network': file {value!r} does not exist")
        if path.stat().st_size > MAX_NETWORK_BYTES:
            raise OptionError(f"option 'network': file {value!r} is over {MAX_NETWORK_BYTES:,} "
                              "bytes")
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise OptionError(f"option 'network': file {value!r} cannot be read: {e}") from None
        label = value
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise OptionError(f"option 'network': {label}: not valid TOML: {e}") from None
    if not isinstance(data.get("network"), dict):
        raise OptionError(f"option 'network': {label} has no [network] table")
    return data["network"], label


def bundled_networks() -> list[str]:
    """Names of the road networks shipped with lanesim (``scenarios/networks``)."""
    root = resources.files("lanesim.scenarios").joinpath("networks")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def build_network(value: Any) -> Network:
    """The validated :class:`Network` of option ``network``'s value; OptionError otherwise,
    naming the network file where the network came from one."""
    table, label = _network_source(value)
    try:
        return Network.from_dict(table)
    except NetworkError as e:
        where = f"{label}: " if label is not None else ""
        raise OptionError(f"option 'network': {where}{e}") from None


def _network(name, v):
    build_network(v)


def _lane_names(name, v):
    if not isinstance(v, list | tuple) or len(v) > 64:
        raise OptionError(
            f"option {name!r} must be a list of up to 64 lane names like \"south:0\", got {v!r}"
        )
    for x in v:
        if not isinstance(x, str):
            raise OptionError(
                f"option {name!r} must hold lane names like \"south:0\" (strings), got {x!r}"
            )


@dataclass(frozen=True)
class Options:
    """All options of a lanesim environment, with units. Each is a ``gym.make`` keyword and a
    scenario file key.

    Frozen once made: list options become tuples and tables read-only, since an environment
    built from them would not see a later change. Per-episode changes go through
    ``reset(options=...)`` (see :data:`RESET_OPTIONS`).
    """

    # --- the interface
    observation: str = _opt("kinematics", "observation type; every type works on a network too",
                            _choice(OBSERVATIONS))
    action: str = _opt("discrete", "action type", _choice(ACTIONS))
    # --- road
    lanes: int = _opt(4, "number of through lanes, 1 to 8", _count(1, 8))
    lane_width: float = _opt(4.0, "lane width (m), 2 to 6", _between(2, 6, "m"))
    oncoming_lanes: int = _opt(
        0,
        "a two-way road: how many of the through lanes, from the left (lane 0 on), carry "
        "oncoming traffic (toward the road's start, heading + 180°); 0 to lanes - 1, not with "
        "loop, no closures there and the ego starts in a forward lane",
        _count(0, 7),
    )
    road: list = _list_opt(
        [{"length": 5000.0}],
        "reference line: 1 or more tables {length (m, 1 to 100,000), radius (m, + left / - "
        "right, |radius| above the road's width; omit for straight)}",
        _table(_SEGMENT, "segment", MAX_ROAD_SEGMENTS, fewest=1),
    )
    repeat_road: bool = _opt(
        True,
        "repeat the road pattern until it is long enough for the episode (at most "
        f"{MAX_ROAD_SEGMENTS:,} segments in all)",
        _flag,
    )
    loop: bool = _opt(
        False,
        "the road is a closed circuit: its end must meet its start (within "
        f"{MEET_DISTANCE:g} m and {math.degrees(MEET_HEADING):.1f}°), cars drive on round it "
        "and traffic circulates instead of being recycled; needs repeat_road = false, no "
        "ramps or closures",
        _flag,
    )
    ramp: list = _list_opt(
        [],
        "up to 8 on-ramps: tables {start (m), length (m, 1 to 100,000)}, on the road; each adds "
        "a lane on the right",
        _table(_RAMP, "ramp", 8),
    )
    closures: list = _list_opt(
        [],
        "up to 16 lane closures: tables {lane, start (m), taper (m, 1 to 500, default 60)} "
        "marked by cones, on the road; at least one through lane stays open",
        _table(_CLOSURE, "closure", 16),
    )
    stalled: list = _list_opt(
        [],
        "up to 100 stalled cars: tables {lane, s (m)}, on the road",
        _table(_STALLED, "stalled car", 100),
    )
    network: dict | str | None = _opt(
        None,
        "a road network instead of one road: a bundled network's name (intersection, "
        "roundabout, exit), the path of a .toml file with a [network] table (from a scenario "
        "file: relative to its folder), or the table itself (docs/roads.md); the road options "
        "above then do not apply",
        _optional(_network),
    )
    # --- traffic
    vehicles: int = _opt(20, "traffic cars per world, 0 to 500", _count(0, 500))
    traffic_speed: list = _list_opt(
        [22.0, 30.0],
        "traffic desired speed range (m/s), within 0 to 40",
        _pair(0, MAX_SPEED, "m/s"),
    )
    traffic_politeness: list = _list_opt(
        [0.0, 0.5], "MOBIL politeness range, within 0 to 1", _pair(0, 1)
    )
    traffic_brake_rate: float = _opt(
        0.0,
        "sudden braking events per car per second (stop-and-go), 0 to 1",
        _between(0, 1, "per second"),
    )
    spawn_spacing: float = _opt(
        30.0, "largest spawn gap between cars in a lane (m), 6 to 1,000", _between(6, 1000, "m")
    )
    recycle_distance: float = _opt(
        300.0,
        "cars farther than this from the ego are moved to the other side (m), 50 to 10,000; "
        "not on a closed road (loop), where traffic circulates",
        _between(50, 10_000, "m"),
    )
    # --- ego
    ego_start: float = _opt(
        200.0, "ego start along the road (m), 0 to 100,000, on the road", _between(0, 100_000, "m")
    )
    ego_lanes: list = _list_opt(
        [], "lanes the ego may start in, there at ego_start (empty: any open through lane)", _ints
    )
    ego_speed: list = _list_opt(
        [20.0, 25.0], "ego start speed range (m/s), within 0 to 40", _pair(0, MAX_SPEED, "m/s")
    )
    ego_start_lanes: list = _list_opt(
        [],
        "network only: the lanes (names like \"south:0\", up to 64) the ego may start on, one "
        "drawn per episode, ego_start m along it",
        _lane_names,
    )
    goals: list = _list_opt(
        [],
        "network only: goal lanes (names, up to 64), one drawn per episode, each reachable from "
        "every start lane; the ego arrives goal_distance m along it (empty, only on a network "
        "without dead ends such as a circuit: no goal, it drives on)",
        _lane_names,
    )
    goal_distance: float = _opt(
        20.0,
        "network only: how far along its goal lane the ego has arrived (m), 0 to 10,000, at "
        "least 40 m / sim_hz (a step at top speed) before the lane's end",
        _between(0, 10_000, "m"),
    )
    # --- timing
    sim_hz: float = _opt(
        15.0,
        "simulation steps per second, 5 to 1,000 (slower steps let cars pass through each other)",
        _between(5, 1000, "Hz"),
    )
    policy_hz: float = _opt(
        5.0,
        "decisions per second, 0.1 to 1,000; sim_hz must be a multiple",
        _between(0.1, 1000, "Hz"),
    )
    duration: float = _opt(
        40.0,
        "episode length before truncation (s), one decision to 4 h (14,400 s)",
        _between(0, MAX_DURATION, "s", open_low=True),
    )
    # --- reward
    rewards: dict = _dict_opt(DEFAULT_REWARDS, "reward weights by term, each -1e6 to 1e6", _weights)
    reward_speed: float = _opt(
        30.0,
        "speed at which the progress term saturates (m/s), 1 to 40",
        _between(1, MAX_SPEED, "m/s"),
    )
    # --- observations
    observed_vehicles: int = _opt(
        8, "vehicles in the kinematics observation, 1 to 64", _count(1, 64)
    )
    perception_distance: float = _opt(
        100.0,
        "range of the kinematics observation along the road (m), 10 to 1,000",
        _between(10, 1000, "m"),
    )
    image_shape: list = _list_opt(
        [84, 84],
        "[height, width] of pixel and camera frames (and of the camera image the bird's-eye view "
        "warps), each 16 to 1,024",
        _shape,
    )
    frame_stack: int = _opt(
        4, "pixel, camera and bird's-eye frames stacked, 1 to 16", _count(1, 16)
    )
    speed_bar: bool = _opt(
        False,
        "observation 'pixels' only: the top row of every frame becomes a gauge of the ego's "
        "speed, its first round(width x speed / ego top speed) cells in the ego's grey and the "
        "rest off-road grey (otherwise a frame shows speed only by motion between frames)",
        _flag,
    )
    # --- the driver's-seat camera (observations "camera" and "birdseye")
    camera_fov: float | None = _opt(
        None,
        f"camera's horizontal field of view (deg), 1 to 170; {DEFAULT_CAMERA_FOV:g} when "
        "camera_intrinsics is not given either",
        _optional(_between(1, 170, "deg")),
    )
    camera_intrinsics: list | None = _opt(
        None,
        "camera's [fx, fy, cx, cy] in pixels of the image_shape image, instead of camera_fov: "
        "focal lengths 1 to 100,000, the principal point inside the image",
        _optional(_numbers(4, [(1, 1e5)] * 2 + [(0, 1023)] * 2, "[fx, fy, cx, cy] (px)")),
    )
    camera_distortion: list = _list_opt(
        [0.0, 0.0, 0.0, 0.0],
        "camera's lens distortion [k1, k2, p1, p2] (OpenCV's radial-tangential model): k1, k2 "
        "within ±1, p1, p2 within ±0.1, one-to-one over the image (each pixel sees one "
        "direction) and undone to within 1e-6 at its border",
        _numbers(4, [(-1, 1)] * 2 + [(-0.1, 0.1)] * 2, "[k1, k2, p1, p2]"),
    )
    camera_height: float = _opt(
        1.3, "camera's height above the ground (m), 0.2 to 5", _between(0.2, 5, "m")
    )
    camera_forward: float = _opt(
        1.0,
        f"camera's place ahead of the car's centre (m), within ±{EGO_HALF_LENGTH:g}: inside the "
        "ego, which the camera does not draw",
        _between(-EGO_HALF_LENGTH, EGO_HALF_LENGTH, "m"),
    )
    camera_pitch: float = _opt(
        5.0, "camera's pitch below the horizon (deg, down positive), -80 to 80",
        _between(-80, 80, "deg"),
    )
    camera_yaw: float = _opt(
        0.0, "camera's yaw from the car's axis (deg, + left), -90 to 90", _between(-90, 90, "deg")
    )
    camera_color: bool = _opt(
        False, "RGB camera and bird's-eye frames, (3 × frame_stack, H, W), instead of grey", _flag
    )
    birdseye_extent: list = _list_opt(
        [2.0, 42.0, 10.0],
        "bird's-eye grid [forward_min, forward_max, half_width] (m) on the ground from the point "
        "below the camera: forward within -100 to 500 with min < max, half_width 0.5 to 100",
        _extent,
    )
    birdseye_resolution: float = _opt(
        0.5,
        "bird's-eye cell size (m), 0.02 to 10; the extent must be whole cells, 16 to 1,024 each "
        "way",
        _between(0.02, 10, "m"),
    )
    # --- meta actions
    meta_speeds: list = _list_opt(
        [20.0, 25.0, 30.0],
        "1 to 16 increasing target speeds (m/s, each 0 to 40; 0 stops the car, as yielding at "
        "a junction needs) that FASTER / SLOWER step between",
        _speeds,
    )
    # --- rendering
    screen_width: int = _opt(600, "render width (px), 64 to 4,096", _count(64, 4096))
    screen_height: int = _opt(150, "render height (px), 32 to 4,096", _count(32, 4096))
    road_overlay: bool = _opt(True, "draw lane centres, errors and the agent's plan", _flag)
    hud: bool = _opt(True, "draw the HUD: time, speed, lane, reward terms, return", _flag)
    sim_speed: float | str = _opt(
        1.0,
        "human-mode real-time factor, 0.01 to 1,000 (1 = real time; 0 or 'max' = unpaced)",
        _sim_speed,
    )
    view: str = _opt(
        "top",
        "the viewer's start view: top (top-down), camera (the driver's seat) or both side by "
        "side, on one road and on a network; key C cycles them",
        _choice(VIEWS),
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _plain(getattr(self, f.name)))
            check_option(f.name, getattr(self, f.name))
        if isinstance(self.network, str):  # a name or path: hold the table itself
            object.__setattr__(self, "network", network_table(self.network))
        rewards = dict(DEFAULT_NETWORK_REWARDS if self.network is not None else DEFAULT_REWARDS)
        extra = [k for k in self.rewards if k not in REWARD_TERMS]
        if extra and self.network is None:
            raise OptionError(
                f"option 'rewards' has {', '.join(map(repr, extra))}, which score goals on a "
                "road network; this is a one-road scenario (no 'network'), whose terms are "
                f"{', '.join(REWARD_TERMS)}"
            )
        rewards.update(self.rewards)
        object.__setattr__(self, "rewards", rewards)
        ratio = self.sim_hz / self.policy_hz
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise OptionError(
                f"sim_hz ({self.sim_hz}) must be a whole multiple of policy_hz ({self.policy_hz})"
            )
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
        if self.speed_bar and self.observation != "pixels":
            raise OptionError(
                f"option 'speed_bar' draws into the 'pixels' observation's frames; observation "
                f"is {self.observation!r}: set observation='pixels' or leave speed_bar false"
            )
        if self.network is not None:
            _check_network(self)
        else:
            for key in ("ego_start_lanes", "goals"):
                if getattr(self, key):
                    raise OptionError(
                        f"option {key!r} names lanes of a road network; this scenario has one "
                        "road (no 'network'): use ego_lanes and ego_start instead"
                    )
            _check_oncoming(self)
            _check_camera(self)
            _check_scenario(self)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _freeze(getattr(self, f.name)))

    @property
    def frames_per_decision(self) -> int:
        """Simulation steps per decision."""
        return round(self.sim_hz / self.policy_hz)

    @property
    def road_repeats(self) -> int:
        """Copies of the ``road`` pattern laid end to end: enough that the ego cannot reach the
        end and traffic always has room ahead (1 without ``repeat_road``)."""
        if not self.repeat_road:
            return 1
        needed = self.ego_start + MAX_SPEED * self.duration + 2 * self.recycle_distance
        return max(1, math.ceil(needed / sum(seg["length"] for seg in self.road)))

    @property
    def road_length(self) -> float:
        """Length of the road as built (m): the pattern times :attr:`road_repeats`."""
        return self.road_repeats * sum(seg["length"] for seg in self.road)

    @property
    def camera(self) -> Camera:
        """The driver's-seat camera of the ``camera_*`` options, for images of ``image_shape``."""
        h, w = self.image_shape
        mount = dict(
            distortion=tuple(self.camera_distortion),
            height=self.camera_height,
            forward=self.camera_forward,
            pitch=math.radians(self.camera_pitch),
            yaw=math.radians(self.camera_yaw),
        )
        if self.camera_intrinsics is not None:
            return Camera(tuple(self.camera_intrinsics), image_size=(w, h), **mount)
        fov = DEFAULT_CAMERA_FOV if self.camera_fov is None else self.camera_fov
        return Camera.from_fov(math.radians(fov), (w, h), **mount)

    @property
    def birdseye_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the bird's-eye grid: ``birdseye_extent`` in cells of
        ``birdseye_resolution``."""
        forward_min, forward_max, half_width = self.birdseye_extent
        return (
            round((forward_max - forward_min) / self.birdseye_resolution),
            round(2 * half_width / self.birdseye_resolution),
        )

    @property
    def start_lanes(self) -> tuple[int, ...]:
        """Lanes the ego may start in: ``ego_lanes``, or else every through lane without a
        closure."""
        closed = {c["lane"] for c in self.closures}
        forward = range(self.oncoming_lanes, self.lanes)
        return tuple(self.ego_lanes) or tuple(i for i in forward if i not in closed)

    @property
    def lane_directions(self) -> list[int]:
        """Per lane, ramps included: +1 for forward lanes, -1 for the ``oncoming_lanes``."""
        forward = self.lanes + len(self.ramp) - self.oncoming_lanes
        return [-1] * self.oncoming_lanes + [1] * forward


# One-road options, which a network scenario must leave at their defaults.
ROAD_OPTIONS = ("lanes", "lane_width", "oncoming_lanes", "road", "repeat_road", "loop", "ramp",
                "closures", "stalled", "recycle_distance", "ego_lanes")
MAX_NETWORK_VEHICLES = 256  # traffic slots of a network world (lanesim.sim.networld)
MAX_NETWORK_SIM_HZ = 100.0  # a network step is at least 0.01 s (lanesim.sim.networld)
# Options of a network scenario only.
NETWORK_OPTIONS = ("network", "ego_start_lanes", "goals", "goal_distance")
# Traffic options of one road that network traffic has no counterpart for yet.
ROAD_TRAFFIC_OPTIONS = ("traffic_politeness", "traffic_brake_rate")


def _check_network(o: Options) -> None:
    """A network scenario: its roads come from ``network``; the ego starts on a named lane, with
    room for its first decision, and each goal is reachable from each start lane."""
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING
                         else f.default_factory()) for f in dataclasses.fields(Options)}
    for key in ROAD_OPTIONS:
        if _thaw(getattr(o, key)) != _thaw(defaults[key]):
            raise OptionError(
                f"option {key!r} shapes the one road of a scenario without a network; with "
                "'network' the roads, lanes and widths come from its table: leave "
                f"{key!r} out"
            )
    for key in ROAD_TRAFFIC_OPTIONS:
        if _thaw(getattr(o, key)) != _thaw(defaults[key]):
            raise OptionError(
                f"option {key!r} tunes one road's traffic; network traffic (routes, right of way, "
                "lane changes its route needs) does not take it yet: leave it out"
            )
    if o.duration < 1 / o.policy_hz - 1e-9:
        raise OptionError(
            f"option 'duration' ({o.duration:g} s) is shorter than one decision "
            f"(1 / policy_hz = {1 / o.policy_hz:g} s)"
        )
    # The network simulator's ranges (lanesim.sim.networld.NetWorldSpec).
    if o.vehicles > MAX_NETWORK_VEHICLES:
        raise OptionError(
            f"option 'vehicles' is {o.vehicles}; on a road network at most "
            f"{MAX_NETWORK_VEHICLES} cars are on it at once (0 to {MAX_NETWORK_VEHICLES})"
        )
    if o.sim_hz > MAX_NETWORK_SIM_HZ:
        raise OptionError(
            f"option 'sim_hz' is {o.sim_hz:g}; a road network steps at 5 to "
            f"{MAX_NETWORK_SIM_HZ:g} Hz"
        )
    if o.traffic_speed[0] < 1.0:
        raise OptionError(
            f"option 'traffic_speed' is {list(o.traffic_speed)}; on a road network traffic "
            "drives its route at 1 to 40 m/s (a car that never moves would block its entry)"
        )
    net = build_network(o.network)
    if not o.ego_start_lanes:
        raise OptionError("a network scenario needs 'ego_start_lanes': the lanes (names like "
                          "\"south:0\") the ego may start on")
    for key in ("ego_start_lanes", "goals"):
        for name in getattr(o, key):
            try:
                net.lane(name)
            except NetworkError as e:
                raise OptionError(f"option {key!r}: {e}") from None
    reach = o.ego_speed[1] / o.policy_hz + 0.5 * EgoModel().length
    for name in o.ego_start_lanes:
        length = net.lane_length(net.lane(name))
        if o.ego_start + reach > length and not net.successors(net.lane(name)):
            raise OptionError(
                f"option 'ego_start' ({o.ego_start:g} m) on start lane {name!r} ({length:g} m "
                f"long, a dead end) leaves no room for the first decision ({reach:g} m: "
                "ego_speed[1] / policy_hz plus half the ego): start earlier on the lane"
            )
        if o.ego_start > length:
            raise OptionError(
                f"option 'ego_start' ({o.ego_start:g} m) lies beyond the end of start lane "
                f"{name!r} ({length:g} m); accepted: 0 to {length:g} m"
            )
        for goal in o.goals:
            if not _reachable(net, net.lane(name), net.lane(goal)):
                raise OptionError(
                    f"option 'goals': {goal!r} cannot be reached from start lane {name!r} "
                    "along the network's links and lane changes"
                )
    # Arrival is seen after a simulation step: the point must lie a step's travel at top speed
    # before the goal lane's end, or the ego could pass it between two looks.
    room = MAX_SPEED / o.sim_hz
    for goal in o.goals:
        length = net.lane_length(net.lane(goal))
        if o.goal_distance > length - room:
            raise OptionError(
                f"option 'goal_distance' ({o.goal_distance:g} m) lies too near the end of goal "
                f"lane {goal!r} ({length:g} m): arrival is checked every simulation step, in "
                f"which the ego covers up to {room:g} m; accepted: 0 to {length - room:g} m"
            )
    if not o.goals and any(not net.successors(i) for i in range(len(net.lanes))):
        raise OptionError(
            "option 'goals' is empty, but this network's exits end (lanes without a successor): "
            "an episode without a goal would end off the road at the first exit; name the goal "
            "lanes (all the exits, to accept any)"
        )


def _reachable(net: Network, start: int, goal: int) -> bool:
    """Whether ``goal`` can be reached from ``start`` by links and same-road lane changes."""
    seen, todo = {start}, [start]
    while todo:
        lane = todo.pop()
        if lane == goal:
            return True
        for nxt in (*net.successors(lane), *net.neighbours(lane)):
            if nxt >= 0 and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _check_oncoming(o: Options) -> None:
    """Oncoming lanes leave a forward lane, run the whole open road, and the ego starts in a
    forward lane."""
    n = o.oncoming_lanes
    if n == 0:
        return
    if n >= o.lanes:
        raise OptionError(
            f"option 'oncoming_lanes' is {n}, but the road has {o.lanes} through lanes: at least "
            f"one must travel forward (0 to {o.lanes - 1} accepted)"
        )
    if o.loop:
        raise OptionError(
            f"option 'oncoming_lanes' ({n}) makes a two-way road, and 'loop' a circuit, whose "
            "lanes all travel one way: use one of them"
        )
    for i, c in enumerate(o.closures):
        if c["lane"] < n:
            raise OptionError(
                f"option 'closures'[{i}] closes lane {c['lane']}, an oncoming lane (lanes "
                f"0..{n - 1} with oncoming_lanes = {n}); close a forward lane ({n} on)"
            )
    for lane in o.ego_lanes:
        if lane < n:
            raise OptionError(
                f"option 'ego_lanes' has lane {lane}, an oncoming lane (lanes 0..{n - 1} with "
                f"oncoming_lanes = {n}); the ego starts in a forward lane ({n} on)"
            )


def _check_scenario(o: Options) -> None:
    """Refuse what no episode can use: a road too long to build, curves that fold the road,
    placements off the road, no open lane, and an ego that crashes or leaves the road in its
    first decision, before the agent can act."""
    if o.duration < 1 / o.policy_hz - 1e-9:
        raise OptionError(
            f"option 'duration' ({o.duration:g} s) is shorter than one decision "
            f"(1 / policy_hz = {1 / o.policy_hz:g} s)"
        )
    segments = o.road_repeats * len(o.road)
    if segments > MAX_ROAD_SEGMENTS:
        raise OptionError(
            f"the road pattern ({o.road_length / o.road_repeats:g} m) must repeat "
            f"{o.road_repeats:,} times to cover the episode (ego_start + {MAX_SPEED:g} m/s x "
            f"duration + 2 x recycle_distance), {segments:,} segments; at most "
            f"{MAX_ROAD_SEGMENTS:,} are accepted: use longer segments or a shorter duration"
        )
    lanes = o.lanes + len(o.ramp)
    width = lanes * o.lane_width
    for i, seg in enumerate(o.road):
        if "radius" in seg and abs(seg["radius"]) <= width:
            raise OptionError(
                f"option 'road'[{i}].radius is {seg['radius']:g} m, but the road is {width:g} m "
                f"wide ({lanes} lanes x {o.lane_width:g} m): |radius| must exceed the width, or "
                "the road folds over itself"
            )
    if o.loop:
        _check_loop(o)
    length = o.road_length
    places = [(f"'ramp'[{i}]", r["start"] + r["length"]) for i, r in enumerate(o.ramp)]
    places += [
        (f"'closures'[{i}]", c["start"] + c.get("taper", DEFAULT_TAPER))
        for i, c in enumerate(o.closures)
    ]
    places += [(f"'stalled'[{i}]", c["s"]) for i, c in enumerate(o.stalled)]
    places += [("'ego_start'", o.ego_start)]
    built = "the pattern repeated for the episode" if o.repeat_road else "repeat_road is false"
    for what, end in places:
        if end > length:
            raise OptionError(
                f"option {what} reaches {end:g} m, beyond the road's end at {length:g} m "
                f"({built}); place it on the road"
            )
    closed = {c["lane"] for c in o.closures}
    if all(lane in closed for lane in range(o.oncoming_lanes, o.lanes)):
        forward = "forward " if o.oncoming_lanes else ""  # the ego's lanes on a two-way road
        raise OptionError(
            f"option 'closures' closes every {forward}through lane ({o.oncoming_lanes}.."
            f"{o.lanes - 1}); leave one open"
        )
    _check_start(o, length)


def road_segments(o: Options) -> list[Segment]:
    """The reference line as built: the ``road`` pattern times :attr:`Options.road_repeats`."""
    pattern = [
        Segment(seg["length"], 1.0 / seg["radius"] if "radius" in seg else 0.0) for seg in o.road
    ]
    return pattern * o.road_repeats


def _check_loop(o: Options) -> None:
    """A closed road (``loop``) is one lap of ``road`` that closes, with every lane running all
    round it."""
    for name, value in (("repeat_road", o.repeat_road), ("ramp", o.ramp),
                        ("closures", o.closures)):
        if value:
            raise OptionError(
                f"option 'loop' makes the road a closed circuit, which takes no {name!r} (got "
                f"{value!r}): {'set repeat_road = false' if name == 'repeat_road' else 'remove it'}"
            )
    try:
        Road(road_segments(o), o.lanes, o.lane_width, closed=True)
    except ClosureError as err:
        raise OptionError(
            f"option 'loop': the road (option 'road', {len(o.road)} segments, "
            f"{o.road_length:g} m) is a closed circuit, but {err}"
        ) from None


def _check_camera(o: Options) -> None:
    """The camera options agree with each other and with ``image_shape``: one way to give the
    focal length, the principal point on the image, a lens that does not fold the image, and
    a bird's-eye extent of whole cells."""
    if o.camera_fov is not None and o.camera_intrinsics is not None:
        raise OptionError(
            "options 'camera_fov' and 'camera_intrinsics' both set the focal length: give one "
            "(camera_fov in degrees, or camera_intrinsics [fx, fy, cx, cy] in pixels)"
        )
    h, w = o.image_shape
    if o.camera_intrinsics is not None:
        cx, cy = o.camera_intrinsics[2:]
        if not (0 <= cx <= w - 1 and 0 <= cy <= h - 1):
            raise OptionError(
                f"option 'camera_intrinsics' puts the principal point at (cx, cy) = ({cx:g}, "
                f"{cy:g}) px, outside the image_shape image: cx must be within 0 to {w - 1} and "
                f"cy within 0 to {h - 1}"
            )
    _check_distortion(o.camera)
    forward_min, forward_max, half_width = o.birdseye_extent
    lo, hi = BIRDSEYE_CELLS
    for what, span in (("forward_max - forward_min", forward_max - forward_min),
                       ("2 × half_width", 2 * half_width)):
        cells = span / o.birdseye_resolution
        if abs(cells - round(cells)) > 1e-6:
            raise OptionError(
                f"option 'birdseye_extent': {what} ({span:g} m) must be a whole number of "
                f"birdseye_resolution ({o.birdseye_resolution:g} m) cells, got {cells:g}"
            )
        if not lo <= round(cells) <= hi:
            raise OptionError(
                f"options 'birdseye_extent' and 'birdseye_resolution' make {round(cells):,} "
                f"cells across {what} ({span:g} m at {o.birdseye_resolution:g} m); the grid "
                f"must be {lo} to {hi:,} cells each way"
            )


# The lens check walks out from the principal point along these many directions, in steps of
# the normalised image plane's radius up to tan(85°) (a 170° field of view, the widest accepted).
_LENS_DIRECTIONS, _LENS_STEPS, _LENS_REACH = 256, 1024, math.tan(math.radians(85))
_UNDISTORT_ERROR = 1e-6  # normalised units: under 0.001 px at any accepted focal length
_MILDER = "use smaller coefficients or a narrower field of view"


def _check_distortion(camera: Camera) -> None:
    """Refuse a lens distortion that is not one-to-one over the image.

    Along every direction from the principal point the distorted point must move outwards
    (the Jacobian of the distortion stays positive) until it leaves the image. Otherwise the
    image folds over: two directions land on one pixel, a pixel has no single ray to render
    and undistortion (hence the bird's-eye view) is ambiguous; OpenCV's iterative
    undistortion also stops converging there. Strong barrel distortion (k1 < 0) with a wide
    field of view is the usual cause.
    """
    if not any(camera.distortion):
        return
    w, h = camera.image_size
    x0, y0 = camera.pixels_to_normalized(np.array([0.0, 0.0]))
    x1, y1 = camera.pixels_to_normalized(np.array([w - 1.0, h - 1.0]))
    angle = np.linspace(0.0, 2 * math.pi, _LENS_DIRECTIONS, endpoint=False)
    radius = np.linspace(0.0, _LENS_REACH, _LENS_STEPS + 1)[1:]
    xy = radius[:, None, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)[None]
    xd = camera.distort(xy)
    inside = (xd[..., 0] >= x0) & (xd[..., 0] <= x1) & (xd[..., 1] >= y0) & (xd[..., 1] <= y1)
    eps = 1e-7
    ddx = camera.distort(xy + [eps, 0.0]) - camera.distort(xy - [eps, 0.0])
    ddy = camera.distort(xy + [0.0, eps]) - camera.distort(xy - [0.0, eps])
    det = ddx[..., 0] * ddy[..., 1] - ddx[..., 1] * ddy[..., 0]
    left = np.cumsum(~inside, axis=0) > 0  # from the first step outside the image on
    folds = (det <= 0) & ~left
    coefficients = f"option 'camera_distortion' {list(camera.distortion)!r}"
    if folds.any() or not left[-1].all():
        step = np.argmax(folds.any(axis=1)) if folds.any() else len(radius) - 1
        raise OptionError(
            f"{coefficients} folds the image: at {math.degrees(math.atan(radius[step])):.0f}° "
            "from the optical axis, inside the image, the distortion stops moving points "
            f"outwards, so two directions would share a pixel; {_MILDER}"
        )
    # The border holds the largest radii, where the iteration converges last if at all.
    u, v = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    border = np.concatenate([
        np.column_stack([u, np.zeros(w)]), np.column_stack([u, np.full(w, h - 1.0)]),
        np.column_stack([np.zeros(h), v]), np.column_stack([np.full(h, w - 1.0), v]),
    ])
    distorted = camera.pixels_to_normalized(border)
    error = np.abs(camera.distort(camera.undistort(distorted, math.inf)) - distorted).max()
    if not error <= _UNDISTORT_ERROR:
        raise OptionError(
            f"{coefficients} cannot be undone at the image's border: undistortion (OpenCV's "
            f"fixed-point iteration, which gives every pixel its ray) misses by {error:.2g} "
            f"(normalised image units, at most {_UNDISTORT_ERROR:g} accepted); {_MILDER}"
        )


def _lane_extent(o: Options, lane: int, length: float) -> tuple[float, float, float]:
    """Where ``lane`` exists along the road, ``(start, end)`` (m), and where its first
    closure's cones begin (``end`` if it has none)."""
    if lane < o.lanes:
        start, end = 0.0, (math.inf if o.loop else length)  # a circuit's lanes run on
    else:
        ramp = o.ramp[lane - o.lanes]
        start, end = ramp["start"], ramp["start"] + ramp["length"]
    cones = end
    for c in o.closures:
        if c["lane"] == lane:
            end = min(end, c["start"] + c.get("taper", DEFAULT_TAPER))
            cones = min(cones, c["start"])
    return start, end, cones


def _check_start(o: Options, length: float) -> None:
    """Stalled cars stand on their lanes, and the ego, in any of its start lanes, must not
    leave its lane or hit a stalled car during its first decision, in which it covers up to
    ``ego_speed[1] / policy_hz`` m."""
    for i, c in enumerate(o.stalled):
        start, end, _ = _lane_extent(o, c["lane"], length)
        if not start <= c["s"] <= end:
            raise OptionError(
                f"option 'stalled'[{i}] is at s = {c['s']:g} m, but its lane {c['lane']} runs "
                f"from {start:g} m to {end:g} m (road, ramp or closure); place it on the lane"
            )
    half = 0.5 * EgoModel().length
    lo, hi = o.ego_start - half, o.ego_start + half + o.ego_speed[1] / o.policy_hz
    where = (
        f"the ego starts at {o.ego_start:g} m and covers up to {hi - o.ego_start - half:g} m in "
        "its first decision (ego_speed[1] / policy_hz)"
    )
    for lane in o.start_lanes:
        start, _, end = _lane_extent(o, lane, length)
        if not start <= o.ego_start <= end or hi > end:
            raise OptionError(
                f"start lane {lane} runs from {start:g} m to {end:g} m (road, ramp or closure), "
                f"but {where}: it would leave the lane before the agent can act; move ego_start "
                "or the lane's end, or choose ego_lanes"
            )
        for i, c in enumerate(o.stalled):
            # On a circuit a car lies ahead or behind the shorter way round the seam.
            s = o.ego_start + along_offset.py_func(c["s"] - o.ego_start, length if o.loop else 0.0)
            if c["lane"] == lane and lo - STALLED_LENGTH / 2 < s < hi + STALLED_LENGTH / 2:
                raise OptionError(
                    f"option 'stalled'[{i}] (lane {lane}, s = {c['s']:g} m) is in the ego's way: "
                    f"{where} in lane {lane}; move the car or ego_start, or choose ego_lanes"
                )


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
    "ego_start_lanes",
    "goals",
    "goal_distance",
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
    "speed_bar",
    "camera_color",
    "birdseye_extent",
    "birdseye_resolution",
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
        check(name, _plain(value))


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


MAX_SCENARIO_BYTES = 1 << 20  # a scenario is a page of TOML; this keeps a wrong path cheap


def _scenario_text(scenario: str | Path) -> tuple[str, str]:
    """The TOML text of a bundled scenario name or a file path, and its label."""
    if not isinstance(scenario, str | Path):
        raise OptionError(
            f"scenario must be a bundled name or the path of a .toml file, got {scenario!r}"
        )
    path = Path(scenario)
    try:
        is_path = path.suffix == ".toml" or path.exists()
        info = path.stat() if is_path else None
    except FileNotFoundError:
        info = None
    except (OSError, ValueError) as e:
        raise OptionError(f"scenario file {str(path)!r} cannot be read: {e}") from None
    if is_path:
        label = str(path)
        if info is None:
            raise OptionError(f"scenario file {label!r} does not exist")
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise OptionError(f"scenario file {label!r} is {kind}; give a .toml file")
        if info.st_size > MAX_SCENARIO_BYTES:
            raise OptionError(
                f"scenario file {label!r} has {info.st_size:,} bytes; a scenario is at most "
                f"{MAX_SCENARIO_BYTES:,}"
            )
        try:
            data = path.read_bytes()
        except OSError as e:
            raise OptionError(f"scenario file {label!r} cannot be read: {e}") from None
    else:
        names = bundled_scenarios()
        if str(scenario) not in names:
            raise OptionError(
                f"unknown scenario {str(scenario)!r}{_suggest(str(scenario), names)}; bundled: "
                f"{', '.join(names)}, or the path of a .toml file"
            )
        data = resources.files("lanesim.scenarios").joinpath(f"{scenario}.toml").read_bytes()
        label = f"{scenario}.toml"
    try:
        return data.decode("utf-8"), label
    except UnicodeDecodeError as e:
        raise OptionError(
            f"scenario file {label}: not UTF-8 text (byte {data[e.start]:#04x} at offset "
            f"{e.start}); TOML files are UTF-8"
        ) from None


def _parse_scenario(scenario: str | Path) -> tuple[dict[str, Any], str]:
    text, label = _scenario_text(scenario)
    try:
        return tomllib.loads(text), label
    except tomllib.TOMLDecodeError as e:
        raise OptionError(f"scenario file {label}: not valid TOML: {e}") from None
    except RecursionError:
        raise OptionError(
            f"scenario file {label}: arrays or tables nested too deeply to be options"
        ) from None


def load_scenario(scenario: str | Path) -> tuple[dict[str, Any], str]:
    """Read a scenario by bundled name or file path; returns ``(options dict, source label)``.

    Raises OptionError naming the file and key for anything malformed or unreadable.
    """
    data, label = _parse_scenario(scenario)
    data.pop("description", None)
    network = data.get("network")
    if (isinstance(network, str) and network.endswith(".toml") and not Path(network).is_absolute()
            and label.endswith(".toml")):
        # A network file named in a scenario file lies beside it (as bundled ones do).
        data["network"] = str(Path(label).parent / network)
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
    return str(_parse_scenario(scenario)[0].get("description", ""))


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
