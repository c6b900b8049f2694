"""The simulator's state by name: the packed entity arrays' rows and the named structures the
compiled kernels take whole.

The state of ``B`` worlds × ``N`` entities is two arrays: ``F`` ``(N_FLOAT, B, N)`` float64 and
``I`` ``(N_INT, B, N)`` int64, plus ``crashed`` ``(B, N)`` bool; the field constants below name
their rows. :class:`lanesim.sim.world.World` exposes each row as a named view (``world.s`` is
``F[S]``), so numpy code and the kernels read and write the same memory. The packed layout
stays: a step walks every field of one entity after another, and one array per kind keeps that
walk in a few cache lines.

The named tuples group what a kernel needs (:class:`LaneIndex`, :class:`WorldState`,
:class:`Timing`, with :class:`~lanesim.sim.road.RoadArrays`; the ego's and traffic's models
come as records, :func:`lanesim.sim.models.as_record`). numba compiles them and caches the
result because their classes live in importable modules.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Float fields, F[field, world, entity].
X, Y, HEADING, SPEED, S, D, LAT_SPEED, LENGTH, WIDTH = range(9)
DESIRED_SPEED, TIME_HEADWAY, MAX_ACCEL, COMFORT_DECEL, MIN_GAP, POLITENESS, BRAKE_TIMER = range(
    9, 16
)
# The road under each entity: its direction (rad) and curvature (1/m), kept with ``s``.
ROAD_HEADING, CURVATURE = 16, 17
# Traffic: the acceleration (m/s²) of the last step (car following, before sudden braking).
ACCEL = 18
# Half the diagonal of each entity's rectangle (m), refreshed by every collision check.
REACH = 19
# Length (m) of the lanes an entity has left behind since it was placed: past a lane's end it
# continues on the successor lane with s restarting there, so s + PASSED is the distance it
# has come along its lanes (the ego's progress), without a jump at a closed road's seam.
PASSED = 20
N_FLOAT = 21
# Integer fields, I[field, world, entity].
LANE, TARGET_LANE, KIND = range(3)
# Traffic: how often the car collided without the ego since its world's reset (kept when the
# car is recycled), so traffic-only crashes can be counted per episode.
CRASHES_WITHOUT_EGO = 3
N_INT = 4
# Entity kinds.
EGO, CAR, STALLED, CONE = 0, 1, 2, 3

# Rows of the ego command that the step follows: fixed controls or autopilot targets.
COMMAND_STEER, COMMAND_ACCEL, COMMAND_LANE, COMMAND_SPEED = range(4)
N_COMMAND = 4
# Rows of the ego trace that the step records after every simulation step.
TRACE_ALONG, TRACE_OFFSET, TRACE_HEADING_ERROR, TRACE_LANE, TRACE_OFFROAD, TRACE_CRASHED = range(6)
N_TRACE = 6


class LaneIndex(NamedTuple):
    """Per world, the lane occupancies sorted by ``lane * stride + (s + shift)``
    (:func:`lanesim.sim.lane_index.build_index`), and the entities sorted by ``s``."""

    keys: np.ndarray  # (B, 3 N) float: room for own lane, a straddled one and a target
    ents: np.ndarray  # (B, 3 N) int: the entity of each entry
    counts: np.ndarray  # (B,) int: entries per world
    pos: np.ndarray  # (B, N) int: where each entity's own-lane entry sits
    order: np.ndarray  # (B, N) int: entities sorted by s
    work: np.ndarray  # (B, N + lanes + 1) int: scratch space for rebuilding
    stride: float  # m between lanes' key ranges
    shift: float  # m added to s so every key of a lane lies in its range
    lanes: int
    # The road's lane graph (the arrays of RoadArrays): a search that runs off a lane's end
    # goes on in its successor, off its start in its predecessor.
    next: np.ndarray  # (lanes,) int: RoadArrays.lane_next
    prev: np.ndarray  # (lanes,) int: RoadArrays.lane_prev
    seam: float  # m: RoadArrays.seam
    # Which way each lane's traffic travels (RoadArrays.lane_direction): on a -1 lane the car
    # a car follows is the next one toward -s.
    direction: np.ndarray  # (lanes,) int: +1 or -1


class WorldState(NamedTuple):
    """Everything a step changes, ``B`` worlds of ``N`` entities."""

    F: np.ndarray  # (N_FLOAT, B, N) float fields
    I: np.ndarray  # (N_INT, B, N) int fields  # noqa: E741
    crashed: np.ndarray  # (B, N) bool
    steps: np.ndarray  # (B,) int: simulation steps since reset
    clock: np.ndarray  # (B,) s since reset
    applied: np.ndarray  # (2, B): the ego's last steering (rad) and acceleration (m/s²)
    rng_seed: np.ndarray  # (B,) uint64: each world's random stream (lanesim.sim.rng)
    rng_counter: np.ndarray  # (B,) uint64


class Timing(NamedTuple):
    """The simulation's clock."""

    dt: float  # s per simulation step
    period: int  # simulation steps between traffic decisions


def plain(*structures) -> tuple:
    """``structures`` as plain tuples, for a hot compiled entry point called from Python, which
    names them again: numba types a plain tuple of arrays from a cached fingerprint, a named
    tuple field by field (measured: 0.7 µs for three tuples of seven fields, 2.2 µs named)."""
    return tuple(tuple(s) for s in structures)
