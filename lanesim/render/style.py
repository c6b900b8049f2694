"""Colours (RGB) and sizes shared by the viewer's drawing code; tests read them too."""

from __future__ import annotations

from lanesim.sim.road import DASH_LENGTH, DASH_PERIOD

GRASS = (86, 122, 70)
ASPHALT = (84, 86, 92)
MARKING = (236, 236, 236)

EGO = (60, 205, 90)
CAR = (66, 128, 222)
STALLED = (150, 150, 150)
CONE = (255, 136, 20)
CRASHED = (222, 48, 48)

# Overlay.
DRIVABLE_TINT = (90, 170, 255, 46)  # RGBA, blended over the drivable lanes
LANE_CENTRE = (120, 210, 255)
LANE_BOUNDARY = (60, 140, 255)  # camera view only: top-down, the markings show them
OFFSET = (255, 226, 0)
ROAD_DIRECTION = (255, 255, 255)
HEADING = (255, 160, 30)
HEADWAY = (0, 232, 232)
TRAIL = (190, 255, 150)
PLAN = (255, 70, 255)

# HUD.
HUD_BG = (16, 18, 24)
HUD_ALPHA = 170  # of 255
TEXT = (236, 238, 242)
TEXT_DIM = (160, 168, 180)
TEXT_WARN = (255, 110, 100)
BAR = (130, 150, 190)
BAR_CHOSEN = (255, 214, 60)

DASH, DASH_PERIOD = DASH_LENGTH, DASH_PERIOD  # m painted of every period (lanesim.sim.road)
VEHICLE_COLOURS = (EGO, CAR, STALLED, CONE)  # indexed by lanesim.sim.world kind


def line_px(ppm: float) -> int:
    """Width (px) of painted lines: about 15 cm, at least 2 px so they survive downscaling."""
    return max(2, round(0.15 * ppm))


def centre_px(ppm: float) -> int:
    """Width (px) of the overlay's lane-centre lines: about 8 cm, at least 1 px."""
    return max(1, round(0.08 * ppm))


def darker(colour: tuple[int, int, int], f: float = 0.55) -> tuple[int, int, int]:
    return tuple(int(c * f) for c in colour)  # type: ignore[return-value]
