"""The vehicle models' parameters and constants: one definition, read by the simulator's kernels
and by anything that predicts them (a planner such as ``agents/vi_driver.py``).

:class:`EgoModel` and :class:`TrafficModel` reach the compiled step whole, as one-element
numpy structured arrays (:func:`as_record`), whose fields the kernels read by name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EgoModel:
    """Ego vehicle: kinematic bicycle model and its limits."""

    length: float = 4.8  # m
    width: float = 1.9  # m
    wheelbase: float = 2.8  # m
    max_steer: float = 0.5  # rad, front-wheel angle
    max_accel: float = 3.0  # m/s²
    max_brake: float = 6.0  # m/s², positive
    max_speed: float = 40.0  # m/s


@dataclass(frozen=True)
class TrafficModel:
    """Traffic behaviour; each vehicle draws its own values from these ranges at spawn."""

    vehicles: int = 20
    desired_speed: tuple[float, float] = (22.0, 30.0)  # m/s
    time_headway: tuple[float, float] = (1.0, 1.8)  # s
    max_accel: tuple[float, float] = (1.2, 2.0)  # m/s²
    comfort_decel: tuple[float, float] = (2.0, 3.0)  # m/s²
    min_gap: tuple[float, float] = (2.0, 3.0)  # m
    politeness: tuple[float, float] = (0.0, 0.5)
    lane_change_threshold: float = 0.2  # m/s², MOBIL's Δa_th
    keep_right_bias: float = 0.1  # m/s² added to the incentive of moving right
    safe_decel: float = 4.0  # m/s², MOBIL's b_safe
    lane_change_time: float = 3.0  # s to cross one lane
    decision_period: float = 1.0  # s between MOBIL decisions
    spawn_spacing: float = 30.0  # m between spawn slots in one lane
    recycle_distance: float = 300.0  # m from the ego beyond which a car is moved
    brake_rate: float = 0.0  # sudden braking events per vehicle per second
    length: tuple[float, float] = (4.2, 5.0)  # m
    width: float = 1.9  # m


def as_record(model) -> np.ndarray:
    """``model`` (:class:`EgoModel` or :class:`TrafficModel`) as a one-element numpy structured
    array with the same field names: the kernels read ``record[0].safe_decel``. A count is an
    int64 field, a range a pair of float64, anything else a float64; a value that the field
    cannot hold exactly is an error.

    Why a record and not a named tuple: numba types a record array from Python as cheaply as
    any array, a named tuple field by field (about 11 ns a float, 0.3 µs for these two models,
    on every step).
    """
    fields = dataclasses.fields(model)
    columns = []
    for f in fields:
        if isinstance(f.default, tuple):
            columns.append((f.name, np.float64, (len(f.default),)))
        else:
            columns.append((f.name, np.int64 if isinstance(f.default, int) else np.float64))
    record = np.zeros(1, dtype=columns)
    for f in fields:
        value = getattr(model, f.name)
        record[f.name] = value
        if not np.array_equal(record[f.name][0], value):
            kind = "an integer" if record.dtype[f.name] == np.int64 else "a number"
            raise ValueError(f"{type(model).__name__}.{f.name} must be {kind}, got {value!r}")
    return record


# ------------------------------------------------------------------ the lane-following autopilot
# It asks for a lateral speed proportional to the distance to the target lane's centre, bounded
# so a lane change takes about three seconds, and a speed toward its target (see
# lanesim.sim.ego.autopilot).
AUTOPILOT_LATERAL_GAIN = 0.8  # 1/s: lateral speed (m/s) per metre from the target centre
AUTOPILOT_MAX_LATERAL_SPEED = 1.5  # m/s
AUTOPILOT_HEADING_GAIN = 3.0  # 1/s: yaw rate (rad/s) per radian of heading error
AUTOPILOT_SPEED_GAIN = 1.5  # 1/s: acceleration (m/s²) per m/s from the target speed

# ------------------------------------------------------------------ IDM and MOBIL
# IDM's free-road exponent is the usual 4, written out as ratio⁴ in traffic.idm_acceleration.
# Hardest deceleration the model may command (m/s²): a physical limit, not a comfort one.
MAX_BRAKING = 9.0
# Driver parameters assumed for the ego when traffic judges how it will react (MOBIL).
ASSUMED_EGO_HEADWAY = 1.5  # s
ASSUMED_EGO_ACCEL = 1.5  # m/s²
ASSUMED_EGO_DECEL = 2.5  # m/s²
ASSUMED_EGO_MIN_GAP = 2.0  # m
# A lane that closes within this distance (m) must be left, whatever it costs others.
MUST_LEAVE_DISTANCE = 250.0
# Cars are spawned and recycled at least this far (m) before a closing lane's stop: room to
# brake from 30 m/s at 4.5 m/s².
SPAWN_MARGIN = 100.0
# Traffic moves toward its target lane's centre at this lateral speed (m/s) per metre away,
# within the bounds below.
TRAFFIC_LATERAL_GAIN = 1.2
# Largest angle (rad) between a traffic car's heading and its lane while it moves across: 15°,
# a firm lane change. Lateral speed is bounded by speed × sin of it, so a slow car moves over
# slowly instead of sliding sideways, and a stopped car does not move across at all. (At 20°
# a car turning out of a queue swung its rear into the next lane: with 5× Dense-v0's sudden
# braking, 6-12 cars collided without the ego in 300 worlds × 300 s; at 15° 0-2.)
MAX_LANE_CHANGE_ANGLE = math.radians(15.0)
# Below that, the sine of the angle is at most LANE_APPROACH_RATE (1/m) × the distance (m) to
# the target lane's centre: a car straightens out as it arrives, over distance travelled (5 m
# per e-fold) rather than time, so a slow car does not swing its rear into the lane it left
# while it centres in the new one. (Above 6 m/s the time-based approach, 1.2 /s, is gentler.)
LANE_APPROACH_RATE = 0.2
# Cars that have not begun to leave a closing lane stop this far (m) before its stop, so that
# one that leaves from a standstill has room to steer its centre across the lane boundary
# (half a lane at MAX_LANE_CHANGE_ANGLE: 7.5 m for 4 m lanes; 12 m suffices up to 6.4 m).
MERGE_RUN_OUT = 12.0
