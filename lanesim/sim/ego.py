"""The ego's dynamics (kinematic bicycle) and the lane-following autopilot, compiled."""

from __future__ import annotations

import math

from lanesim.sim.jit import kernel, kernel_inline
from lanesim.sim.models import (
    AUTOPILOT_HEADING_GAIN,
    AUTOPILOT_LATERAL_GAIN,
    AUTOPILOT_MAX_LATERAL_SPEED,
    AUTOPILOT_SPEED_GAIN,
)
from lanesim.sim.road import pose_at, project_near, wrap_angle
from lanesim.sim.state import CURVATURE, HEADING, ROAD_HEADING, SPEED, D, S, X, Y
from lanesim.sim.traffic import pass_lane_end


@kernel
def autopilot(F, lane_width, ego, b, target_lane, target_speed):
    """Ego controls ``(steer (rad), accel (m/s²))`` that bring world ``b``'s ego to
    ``target_lane``'s centre at ``target_speed`` (m/s): the controller behind meta actions.
    ``ego`` is the :class:`~lanesim.sim.models.EgoModel`.

    It asks for a lateral velocity proportional to the lateral error (bounded, so a lane change
    takes about three seconds), turns that into a heading relative to the road, and steers to
    reach that heading while following the road's curvature.
    """
    speed = F[SPEED, b, 0]
    v = max(speed, 1.0)
    error = (target_lane + 0.5) * lane_width - F[D, b, 0]  # m, positive: target to the right
    lateral = min(
        max(AUTOPILOT_LATERAL_GAIN * error, -AUTOPILOT_MAX_LATERAL_SPEED),
        AUTOPILOT_MAX_LATERAL_SPEED,
    )
    want_rel = -math.atan2(lateral, v)  # heading relative to the road; right is negative
    k = F[CURVATURE, b, 0]
    rel = wrap_angle(F[HEADING, b, 0] - F[ROAD_HEADING, b, 0])
    yaw_rate = v * k + AUTOPILOT_HEADING_GAIN * (want_rel - rel)
    steer = min(max(math.atan(yaw_rate * ego.wheelbase / v), -ego.max_steer), ego.max_steer)
    accel = min(
        max(AUTOPILOT_SPEED_GAIN * (target_speed - speed), -ego.max_brake), ego.max_accel
    )
    return steer, accel


@kernel_inline
def move_ego(F, I, road, ego, crashed, b, steer, accel, dt):
    """One step of ``dt`` (s) of world ``b``'s ego with ``steer`` (rad) and ``accel`` (m/s²):
    a kinematic bicycle about the centre of gravity, taken at mid-wheelbase; a crashed ego
    stops. Its road coordinates follow, past a closed road's seam onto the successor lane
    (:func:`lanesim.sim.traffic.pass_lane_end`)."""
    v, h = F[SPEED, b, 0], F[HEADING, b, 0]
    beta = math.atan(0.5 * math.tan(steer))
    F[X, b, 0] += v * math.cos(h + beta) * dt
    F[Y, b, 0] += v * math.sin(h + beta) * dt
    F[HEADING, b, 0] = h + v * math.sin(beta) / (0.5 * ego.wheelbase) * dt
    F[SPEED, b, 0] = 0.0 if crashed else min(max(v + accel * dt, 0.0), ego.max_speed)
    # Its road position is searched near the last one: this step's travel, twice over for the
    # inside of bends, plus a margin; never on another stretch of a road that crosses itself.
    reach = 2.0 * v * dt + 10.0
    s, F[D, b, 0] = project_near(road, F[X, b, 0], F[Y, b, 0], F[S, b, 0], reach)
    if road.seam > 0.0:
        # A foot found across a closed road's seam is this step's travel, not a lap back: keep
        # s running on past the end (or before the start) for pass_lane_end to take over.
        if s - F[S, b, 0] < -0.5 * road.seam:
            s += road.seam
        elif s - F[S, b, 0] > 0.5 * road.seam:
            s -= road.seam
    F[S, b, 0] = s
    pass_lane_end(F, I, road, b, 0)
    _, _, F[ROAD_HEADING, b, 0], F[CURVATURE, b, 0] = pose_at(road.geometry, F[S, b, 0])
