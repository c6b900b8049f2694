"""Car-following (IDM) and lane-changing (MOBIL) models for one car, compiled.

Treiber, Hennecke & Helbing (2000) for the Intelligent Driver Model; Kesting, Treiber &
Helbing (2007) for MOBIL. The simulator kernels call these once per car and step.
"""

from __future__ import annotations

import math

from lanesim.sim.jit import kernel

# IDM's free-road exponent, the usual 4.
IDM_DELTA = 4.0
# Hardest deceleration the model may command (m/s²): a physical limit, not a comfort one.
MAX_BRAKING = 9.0


@kernel
def idm_acceleration(speed, desired_speed, gap, leader_speed, time_headway, max_accel,
                     comfort_decel, min_gap):
    """IDM acceleration (m/s²).

    Args:
        speed: own speed (m/s).
        desired_speed: free-road speed (m/s).
        gap: bumper-to-bumper distance to the leader (m); ``inf`` for a free road.
        leader_speed: the leader's speed (m/s); ignored where ``gap`` is ``inf``.
        time_headway: desired time gap T (s).
        max_accel: a (m/s²).
        comfort_decel: b (m/s², positive).
        min_gap: jam distance s0 (m).
    """
    ratio = speed / max(desired_speed, 0.1)
    free = 1.0 - ratio * ratio * ratio * ratio  # IDM_DELTA = 4
    interaction = 0.0
    if math.isfinite(gap):
        closing = speed - leader_speed
        braking = 2.0 * math.sqrt(max_accel * comfort_decel)
        desired_gap = min_gap + max(0.0, speed * time_headway + speed * closing / braking)
        interaction = (desired_gap / max(gap, 0.05)) ** 2
    return min(max(max_accel * (free - interaction), -MAX_BRAKING), max_accel)


@kernel
def mobil_incentive(own_gain, new_follower_gain, old_follower_gain, politeness):
    """MOBIL's incentive (m/s²): own advantage plus ``politeness`` times the followers' change."""
    return own_gain + politeness * (new_follower_gain + old_follower_gain)
