"""Drawing road networks (lanesim.raster, lanesim.render.netdraw): the static layer, RGB
frames of one world, batched grey observation frames and the viewer's scene hook, asserted on
pixels."""

from __future__ import annotations

import math
import tomllib
from functools import cache
from pathlib import Path

import numpy as np
import pygame
import pytest

from lanesim.envs.netpixels import network_frames
from lanesim.envs.observations import DASHED, EGO, OFFROAD, ROAD, SOLID, TRAFFIC
from lanesim.raster.network import junctions
from lanesim.render import style
from lanesim.render.netdraw import NetworkPainter, draw_network_scene
from lanesim.sim.network import Network, NetworkBuilder
from lanesim.sim.road import DASH_LENGTH, DASH_PERIOD, Segment

ROOT = Path(__file__).resolve().parents[1]
PPM = 8.0


@cache
def network(name: str) -> Network:
    with open(ROOT / "scenarios" / "networks" / f"{name}.toml", "rb") as f:
        return Network.from_dict(tomllib.load(f)["network"])


@cache
def painter(name: str, yields: tuple[str, ...] = ()) -> NetworkPainter:
    return NetworkPainter(network(name), PPM, yield_ends=yields)


def entities(points, kinds=None, crashed=None):
    """``(N,)`` rows of cars at ``points`` ``[(x, y, heading), ...]`` (entity 0 the ego)."""
    p = np.array(points, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    kind = np.array(kinds if kinds is not None else [0] + [1] * (n - 1), dtype=np.int64)
    crash = np.array(crashed if crashed is not None else [False] * n)
    return p[:, 0], p[:, 1], p[:, 2], np.full(n, 4.5), np.full(n, 1.9), kind, crash


FAR = [(5000.0, 5000.0, 0.0)]  # an ego parked far off the picture


def pixel_of(x, y, centre, size):
    """Frame pixel (row, column) of world ``(x, y)`` in a north-up frame."""
    w, h = size
    return (int(math.floor(0.5 * h - (y - centre[1]) * PPM)),
            int(math.floor(0.5 * w + (x - centre[0]) * PPM)))


def rgb_at(name, world_xy, rows=FAR, yields=(), **kw):
    """The north-up RGB colour at world point ``world_xy``."""
    size = (64, 48)
    f = painter(name, yields).frame(*entities(rows), centre=world_xy, size=size, **kw)
    i, j = pixel_of(*world_xy, world_xy, size)
    return tuple(int(v) for v in f[i, j])


def test_lane_centre_is_asphalt_and_far_away_is_grass():
    net = network("intersection")
    x, y, _ = net.lane_to_world(net.lane("west:0"), 50.0)
    assert rgb_at("intersection", (float(x), float(y))) == style.ASPHALT
    f = painter("intersection").frame(*entities(FAR), centre=(400.0, 400.0), size=(32, 32))
    assert (f == np.array(style.GRASS, dtype=np.uint8)).all()


def test_grey_frame_shows_road_around_the_ego_and_offroad_beside_the_road():
    net = network("exit")
    x, y, h = net.lane_to_world(net.lane("approach:1"), 200.0)
    frames = network_frames(net, (84, 84), 0.5)
    f = frames(*(a[None] for a in entities([(x, y, h)])[:6]))[0]
    # 10 m ahead of the ego, on its lane's centre: road; 20 m to its right: beyond the road.
    ego_col = int(0.25 * 84)
    assert f[42, ego_col + 20] == ROAD
    assert f[42 + 40, ego_col] == OFFROAD
    assert f[42, ego_col] == EGO


def test_cars_are_drawn_where_they_are_in_their_colours():
    centre = (-40.0, -1.75)
    rows = [(-40.0, -1.75, 0.0), (-30.0, -1.75, 0.0), (-50.0, -1.75, 0.0), (-60.0, 1.75, 0.0)]
    size = (320, 80)
    f = painter("intersection").frame(*entities(rows, kinds=[0, 1, 1, -1],
                                                crashed=[False, False, True, False]),
                                      centre=centre, size=size)

    def at(x, y, dx=-0.4):  # a point between the windscreen and the rear, inside the outline
        i, j = pixel_of(x + dx, y, centre, size)
        return tuple(int(v) for v in f[i, j])

    assert at(-40.0, -1.75) == style.EGO
    assert at(-30.0, -1.75) == style.CAR
    assert at(-50.0, -1.75) == style.CRASHED
    assert at(-60.0, 1.75) == style.ASPHALT  # an inactive slot is not drawn
    assert at(-35.0, -1.75) == style.ASPHALT  # between the cars


def test_rgb_frame_rotated_to_the_ego_heading_puts_a_car_ahead_to_the_right():
    heading = 2.0
    ego = (3.0, 4.0, heading)
    ahead = (3.0 + 12.0 * math.cos(heading), 4.0 + 12.0 * math.sin(heading), heading)
    size = (400, 200)
    f = painter("roundabout").frame(*entities([ego, ahead]), centre=ego[:2], size=size,
                                    theta=heading)
    row, col = size[1] // 2, size[0] // 2 + int(12.0 * PPM) - 3
    assert tuple(int(v) for v in f[row, col]) == style.CAR
    assert tuple(int(v) for v in f[row, size[0] // 2 - 3]) == style.EGO
    assert tuple(int(v) for v in f[row, size[0] // 2 - int(12.0 * PPM)]) != style.CAR


@pytest.mark.parametrize("heading", [0.0, 1.0, -2.5, math.pi])
def test_grey_frame_shows_a_car_ahead_of_the_ego_ahead_whatever_its_heading(heading):
    c, s = math.cos(heading), math.sin(heading)
    ego = (500.0, 500.0, heading)  # off the network: only the two cars on black
    ahead = (500.0 + 10.0 * c, 500.0 + 10.0 * s, heading)
    right = (500.0 + 5.0 * s, 500.0 - 5.0 * c, heading)  # 5 m to the ego's right
    frames = network_frames(network("intersection"), (84, 84), 0.5, behind=0.25)
    f = frames(*(a[None] for a in entities([ego, ahead, right])[:6]))[0]
    ego_col = 21
    assert f[42, ego_col] == EGO
    assert f[42, ego_col + 20] == TRAFFIC  # 10 m ahead: 20 px right of the ego
    assert f[42 + 10, ego_col] == TRAFFIC  # 5 m right: 10 px down
    assert f[42 - 10, ego_col] == OFFROAD  # nothing on its left
    assert f[42, ego_col - 15] == OFFROAD  # nor behind


def test_yield_line_across_a_named_lane_end_only():
    net = network("intersection")
    lane = net.lane("south:0")
    x, y, _ = net.lane_to_world(lane, net.lane_length(lane) - 0.15)
    p = (float(x), float(y))
    assert rgb_at("intersection", p, yields=("south:0",)) == style.MARKING
    assert rgb_at("intersection", p) == style.ASPHALT
    # And in the grey frame: an ego 5 m before the end sees a solid line 5 m ahead.
    for ends, grey in ((("south:0",), SOLID), ((), ROAD)):
        frames = network_frames(net, (84, 84), 0.25, yield_ends=ends)
        ex, ey, eh = net.lane_to_world(lane, net.lane_length(lane) - 5.0)
        f = frames(*(a[None] for a in entities([(ex, ey, eh)])[:6]))[0]
        assert f[42, 21 + 19] == grey  # 4.75 to 5 m ahead: 19 px of 0.25 m


def test_a_junction_is_paved_exactly_where_its_connectors_run():
    # What is drawn as road is where the simulator finds a lane, so an ego that looks on the
    # road is never off it: a point of the box between the connectors' strips is grass.
    net = network("intersection")
    assert len(junctions(net)) == 1 and len(junctions(net)[0]) == 12
    assert net.to_lane(-5.5, -5.5)[0] == -1
    assert rgb_at("intersection", (-5.5, -5.5)) == style.GRASS
    assert net.to_lane(0.0, 0.0)[0] >= 0
    assert rgb_at("intersection", (0.0, 0.0)) == style.ASPHALT


def test_connectors_in_a_junction_are_unmarked_and_arm_edges_are_solid():
    # The straight connector's right edge runs at y = -3.5 through the box, as the arm's edge.
    assert rgb_at("intersection", (0.0, -3.5)) == style.ASPHALT
    assert rgb_at("intersection", (-30.0, -3.5)) == style.MARKING


def test_lane_lines_are_dashed_along_the_road_as_on_a_single_road():
    # Approach: lanes 0..2 from y = 0 down; the line between lanes 0 and 1 at y = -3.5.
    s_dash, s_gap = 10 * DASH_PERIOD + 0.5 * DASH_LENGTH, 10 * DASH_PERIOD + DASH_LENGTH + 2.0
    assert rgb_at("exit", (s_dash, -3.5)) == style.MARKING
    assert rgb_at("exit", (s_gap, -3.5)) == style.ASPHALT
    assert rgb_at("exit", (s_gap, 0.0)) == style.MARKING  # the road's edge: solid
    frames = network_frames(network("exit"), (84, 84), 0.5)
    f = frames(*(a[None] for a in entities([(s_dash - 5.0, -3.5 - 1.75, 0.0)])[:6]))[0]
    assert f[42 - 4, 21 + 10] == DASHED  # 1.75 m left (between 1.5 and 2 m), 5 m ahead


def test_route_band_highlights_route_lanes_only():
    net = network("intersection")
    x, y, _ = net.lane_to_world(net.lane("west:0"), 50.0)
    p = (float(x), float(y))
    plain = rgb_at("intersection", p)
    routed = rgb_at("intersection", p, route=["west:0", "west.0>north.-1:0", "north:-1"])
    assert routed != plain and routed[0] > plain[0] and routed[2] < plain[2]  # toward yellow
    other = rgb_at("intersection", p, route=["east:0", "east.0>west.-1:0", "west:-1"])
    assert other == plain


def test_batched_grey_frames_equal_per_world_frames():
    net = network("roundabout")
    rng = np.random.default_rng(3)
    lanes = rng.integers(0, len(net.lanes), (5, 6))
    u = rng.uniform(0, 1, (5, 6)) * np.array([[net.lane_length(i) for i in row] for row in lanes])
    x, y, h = net.lane_to_world(lanes, u)
    kind = np.ones((5, 6), dtype=np.int64)
    kind[:, 0] = 0
    kind[1, 3] = -1
    rows = (x, y, h, np.full((5, 6), 4.5), np.full((5, 6), 1.9), kind)
    frames = network_frames(net, (64, 96), 0.4, behind=0.3)
    batch = frames(*rows)
    assert batch.shape == (5, 64, 96)
    for b in range(5):
        np.testing.assert_array_equal(batch[b], frames(*(a[b : b + 1] for a in rows))[0])
    assert len(np.unique(batch[0])) > 3  # road, markings, cars: not a blank frame


def test_draw_network_scene_fills_a_pygame_surface_with_the_frame():
    surf = pygame.Surface((120, 90))
    rows = entities([(-20.0, -1.75, 0.0), (-12.0, -1.75, 0.0)])
    frame = draw_network_scene(surf, painter("intersection"), *rows, centre=(-15.0, 0.0),
                               route=[0], overlay=True)
    np.testing.assert_array_equal(pygame.surfarray.array3d(surf).swapaxes(0, 1), frame)
    # The overlay's lane centres (and route) show: the same frame without them differs.
    bare = painter("intersection").frame(*rows, centre=(-15.0, 0.0), size=(120, 90))
    assert (bare != frame).any()


@pytest.mark.parametrize("kwargs, words", [
    ({"pixels_per_metre": 0.0}, "pixels_per_metre"),
    ({"pixels_per_metre": float("nan")}, "pixels_per_metre"),
    ({"pixels_per_metre": 100}, "0.5 to 40"),
    ({"yield_ends": [999]}, "lane ids run 0 to"),
    ({"yield_ends": ["nowhere:0"]}, "no road 'nowhere'"),
])
def test_bad_painter_options_are_refused_naming_what_is_accepted(kwargs, words):
    with pytest.raises(ValueError, match=words):
        NetworkPainter(network("intersection"), **kwargs)


@pytest.mark.parametrize("kwargs, words", [
    ({"shape": (4, 84)}, "integers 8 to 1024"),
    ({"shape": (84,)}, r"shape must be \(H, W\)"),
    ({"shape": (84.0, 84)}, "integers"),
    ({"metres_per_pixel": 0.0}, "metres_per_pixel must be a number from 0.05 to 5"),
    ({"metres_per_pixel": float("inf")}, "metres_per_pixel"),
    ({"behind": 1.5}, "behind must be a number from 0 to 1"),
])
def test_bad_frame_options_are_refused_naming_what_is_accepted(kwargs, words):
    with pytest.raises(ValueError, match=words):
        network_frames(network("intersection"), **kwargs)


def test_frame_arguments_are_checked():
    p = painter("intersection")
    with pytest.raises(ValueError, match="size must be"):
        p.frame(*entities(FAR), centre=(0.0, 0.0), size=(0, 10))
    rows = list(entities([(0.0, 0.0, 0.0), (1.0, 0.0, 0.0)]))
    rows[5] = rows[5][:1]
    with pytest.raises(ValueError, match="all of one length"):
        p.frame(*rows, centre=(0.0, 0.0), size=(10, 10))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        network_frames(network("intersection"))(*entities(FAR)[:6])


def test_a_network_too_large_for_the_scale_is_refused_with_the_scale_that_fits():
    net = NetworkBuilder().road("long", [Segment(20_000.0, 0.0)], lanes=2).road(
        "wide", [Segment(2_000.0, 0.0)], start=(0.0, 0.0, math.pi / 2)).build()
    with pytest.raises(ValueError, match=r"px/m or fewer"):
        NetworkPainter(net, 40.0)
    assert abs(NetworkPainter(net, 0.5).layer.img.shape[1] - 20_040 * 0.5) <= 1


def test_dashes_run_on_across_a_link_instead_of_restarting():
    # decel starts at x = 500 after 500 m of approach: its dashes keep the approach's period,
    # painted where x % 9 < 3, so x = 501 (6 m into a period) is a gap, 505.5 a dash.
    assert 500 % DASH_PERIOD != 0
    assert rgb_at("exit", (501.0, -3.5)) == style.ASPHALT
    assert rgb_at("exit", (505.5, -3.5)) == style.MARKING
    assert rgb_at("exit", (600.0 + 4.5, -3.5)) == style.MARKING  # main: 604.5 % 9 = 1.5


def test_vehicles_at_nan_or_huge_coordinates_are_skipped_not_drawn():
    p = painter("intersection")
    good = entities([(-40.0, -1.75, 0.0), (-30.0, -1.75, 0.0)])
    bad = entities([(-40.0, -1.75, 0.0), (-30.0, -1.75, 0.0), (math.nan, 0.0, 0.0),
                    (1e300, -1e300, 1e300), (-40.0, math.inf, math.nan)])
    for theta in (None, 0.7):
        want = p.frame(*good, centre=(-40.0, 0.0), size=(200, 100), theta=theta)
        got = p.frame(*bad, centre=(-40.0, 0.0), size=(200, 100), theta=theta)
        np.testing.assert_array_equal(got, want)
    frames = network_frames(network("intersection"))
    want = frames(*(a[None] for a in good[:6]))
    got = frames(*(a[None] for a in bad[:6]))
    np.testing.assert_array_equal(got, want)


def test_world_helpers_read_a_network_worlds_named_views():
    # The (B, N) views NetWorld exposes by contract; two worlds, the second one drawn.
    rows = [entities([(-90.0, 0.0, 0.0), (-90.0, 0.0, 0.0)]),
            entities([(-40.0, -1.75, 0.3), (-30.0, -1.75, 0.0)])]
    names = ("x", "y", "heading", "length", "width", "kind", "crashed")
    world = type("World", (), {k: np.stack([r[i] for r in rows]) for i, k in enumerate(names)})
    p = painter("intersection")
    for rotate, theta in ((False, None), (True, 0.3)):
        np.testing.assert_array_equal(
            p.world_frame(world, 1, (100, 60), rotate=rotate),
            p.frame(*rows[1], centre=(-40.0, -1.75), size=(100, 60), theta=theta))
    frames = network_frames(network("intersection"))
    np.testing.assert_array_equal(frames.of_world(world),
                                  frames(*(np.stack([r[i] for r in rows]) for i in range(6))))


@pytest.mark.parametrize("heading", [0.3, math.pi / 4, 1.2])
def test_grey_frame_keeps_a_solid_edge_line_unbroken_at_any_angle(heading):
    # The exit's approach has its left edge on y = 0; the ego drives across it at an angle.
    ego = (200.0, -5.25, heading)
    frames = network_frames(network("exit"), (84, 84), 0.5)
    f = frames(*(a[None] for a in entities([ego])[:6]))[0]
    c, s = math.cos(heading), math.sin(heading)
    crossed = 0
    for j in range(84):
        along = (j + 0.5 - 21) * 0.5
        row = (ego[1] + along * s) / c / 0.5 + 42 - 0.5  # where y = 0 meets column j
        if 2 <= row <= 81 and abs(along) > 4:  # away from the ego's own pixels
            lo = int(row) - 2
            assert (f[lo : lo + 5, j] == SOLID).any(), j
            crossed += 1
    assert crossed > 5


def test_options_tint_the_lanes_the_ego_may_take_only():
    net = network("exit")
    x, y, _ = net.lane_to_world(net.lane("approach:1"), 100.0)
    p = (float(x), float(y))
    plain = rgb_at("exit", p)
    tinted = rgb_at("exit", p, options=["approach:1"])
    # Toward the drivable tint's colour, where the lane is; a lane not named stays as it was.
    tint = np.array(style.DRIVABLE_TINT[:3])
    assert np.abs(np.array(tinted) - tint).sum() < np.abs(np.array(plain) - tint).sum()
    assert rgb_at("exit", p, options=["approach:0"]) == plain
