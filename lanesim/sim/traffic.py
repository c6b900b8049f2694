"""Car-following (IDM) and lane-changing (MOBIL) models, as pure functions of arrays.

Treiber, Hennecke & Helbing (2000) for the Intelligent Driver Model, Kesting, Treiber &
Helbing (2007) for MOBIL. Every argument broadcasts; nothing here knows about worlds or lanes.
"""

from __future__ import annotations

import numpy as np

# IDM's free-road exponent, the usual 4.
IDM_DELTA = 4.0
# Hardest deceleration the model may command (m/s²): a physical limit, not a comfort one.
MAX_BRAKING = 9.0


def idm_acceleration(
    speed: np.ndarray,
    desired_speed: np.ndarray,
    gap: np.ndarray,
    leader_speed: np.ndarray,
    time_headway: np.ndarray,
    max_accel: np.ndarray,
    comfort_decel: np.ndarray,
    min_gap: np.ndarray,
) -> np.ndarray:
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
    free = 1.0 - (speed / np.maximum(desired_speed, 0.1)) ** IDM_DELTA
    closing = speed - leader_speed
    desired_gap = min_gap + np.maximum(
        0.0, speed * time_headway + speed * closing / (2.0 * np.sqrt(max_accel * comfort_decel))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        interaction = np.where(np.isfinite(gap), (desired_gap / np.maximum(gap, 0.05)) ** 2, 0.0)
    return np.clip(max_accel * (free - interaction), -MAX_BRAKING, max_accel)


def mobil_incentive(
    own_gain: np.ndarray,
    new_follower_gain: np.ndarray,
    old_follower_gain: np.ndarray,
    politeness: np.ndarray,
) -> np.ndarray:
    """MOBIL's incentive (m/s²): own advantage plus ``politeness`` times the followers' change."""
    return own_gain + politeness * (new_follower_gain + old_follower_gain)
