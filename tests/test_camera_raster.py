"""The camera renderer against the camera model and the road's own geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lanesim.camera import Camera, CameraRaster, raster
from lanesim.sim.road import LaneSpan, Road, Segment
from lanesim.sim.world import CONE, Obstacle, TrafficModel, World, WorldSpec

LANE_WIDTH = 3.5


def make_world(lanes=3, vehicles=0, n_worlds=1, segments=None, spans=None, obstacles=()):
    road = Road(segments or [Segment(2000.0, 0.0)], lanes, LANE_WIDTH, spans)
    spec = WorldSpec(road, traffic=TrafficModel(vehicles=vehicles), obstacles=tuple(obstacles))
    world = World(spec, n_worlds)
    world.reset(np.ones(n_worlds, dtype=bool), np.arange(n_worlds))
    return world


def put_car(world, e, s, lane, length=4.5, width=1.9):
    world.length[:, e], world.width[:, e] = length, width
    world.place(e, s, lane, 20.0)


def camera(size=(160, 120), **kw):
    return Camera.from_fov(math.radians(90), size, pitch=math.radians(5), **kw)


def ground_pixel(cam, world, s, d, b=0):
    """The pixel ``(u, v)`` where the road point ``(s, d)`` appears, by the camera model and
    the road's own geometry, independently of the renderer."""
    x, y, _ = world.road.to_world(np.array([s]), np.array([d]))
    ex, ey, eh = world.x[b, 0], world.y[b, 0], world.heading[b, 0]
    dx, dy = x[0] - ex, y[0] - ey
    forward = math.cos(eh) * dx + math.sin(eh) * dy
    left = math.cos(eh) * dy - math.sin(eh) * dx
    uv, ok = cam.ground_to_pixels(np.array([[forward - cam.forward, left]]))
    assert ok[0]
    return uv[0]


def assert_line_at(img, u, v):
    """A painted line passes through the pixel nearest to ``(u, v)`` or one next to it: one
    of them is at least a third of the way from the road's grey to the paint's."""
    i, j = int(round(v)), int(round(u))
    near = img[i - 1 : i + 2, j - 1 : j + 2].astype(int)
    assert near.max() >= raster.ROAD_GREY + (raster.SOLID_GREY - raster.ROAD_GREY) / 3, (
        u, v, near)


def shows(r, world, e):
    """``(H, W)`` bool: the pixels where entity ``e`` shows in world 0, those that change when
    it is moved out of sight."""
    img = r.image()
    world.x[:, e] += 1e4
    changed = img != r.image()
    world.x[:, e] -= 1e4
    return changed.any(axis=-1) if changed.ndim == 3 else changed


def crashed_mask(rgb):
    """Pixels of the crashed colour, any face (red far above green)."""
    r, g = rgb[..., 0].astype(int), rgb[..., 1].astype(int)
    return r > g + 80


# ---------------------------------------------------------------------- the road
# Lines are checked at a resolution where they are a few pixels wide; at 84 × 84 a far line
# is rightly a faint smear over several pixels.
FINE = (640, 480)


def test_road_edges_and_lane_lines_appear_where_the_camera_model_projects_them():
    world = make_world()
    world.place(0, 95.0, 1, 20.0)
    cam = camera(FINE)
    img = CameraRaster(cam, world).image()
    # Dashes are painted where s % 9 < 3: these points put s % 9 at 1.5.
    for s in (109.5, 118.5):
        for d in (0.0, LANE_WIDTH, 2 * LANE_WIDTH, 3 * LANE_WIDTH):
            assert_line_at(img, *ground_pixel(cam, world, s, d))
        # Between the lines: plain road; beyond the edges: the ground.
        for d, grey in ((0.5 * LANE_WIDTH, raster.ROAD_GREY), (-3.0, raster.GROUND_GREY),
                        (3 * LANE_WIDTH + 3.0, raster.GROUND_GREY)):
            u, v = ground_pixel(cam, world, s, d)
            assert img[int(round(v)), int(round(u))] == grey


def test_dashes_are_anchored_to_the_road_and_stream_past():
    world = make_world()
    cam = camera()
    r = CameraRaster(cam, world)
    world.place(0, 100.0, 1, 20.0)
    u, v = np.round(ground_pixel(cam, world, 109.5, LANE_WIDTH)).astype(int)  # on a dash
    first = r.image()
    world.place(0, 104.5, 1, 20.0)  # half a period on: a gap is under that pixel now
    assert first[v, u] > r.image()[v, u]
    world.place(0, 109.0, 1, 20.0)  # a whole period on: the same picture
    np.testing.assert_array_equal(r.image(), first)


def test_sky_fills_the_image_above_the_horizon_and_only_there():
    world = make_world()
    world.place(0, 100.0, 1, 20.0)
    cam = camera()
    img = CameraRaster(cam, world).image()
    for u in (0, 40, 80, 159):
        h = cam.horizon_row(u)
        assert (img[: int(math.floor(h - 0.5)), u] == raster.SKY_GREY).all()
        assert (img[int(math.ceil(h + 0.5)) :, u] != raster.SKY_GREY).all()


def test_lens_distortion_moves_the_lines_where_the_camera_model_says():
    world = make_world()
    world.place(0, 95.0, 1, 20.0)
    barrel = camera(FINE, distortion=(-0.25, 0.05, 0.0, 0.0))
    img = CameraRaster(barrel, world).image()
    for s, d in ((100.0, 0.0), (101.0, 3 * LANE_WIDTH), (103.0, 0.0), (105.0, 3 * LANE_WIDTH)):
        u, v = ground_pixel(barrel, world, s, d)
        assert_line_at(img, u, v)
        # The distortion moves the line by pixels, so this tests something.
        assert np.hypot(*(ground_pixel(camera(FINE), world, s, d) - (u, v))) > 3.0


@pytest.mark.parametrize("radius", [60.0, -60.0])
def test_a_curve_bends_the_lines_the_way_the_road_turns(radius):
    world = make_world(segments=[Segment(100.0, 0.0), Segment(300.0, 1.0 / radius)])
    world.place(0, 95.0, 1, 20.0)
    cam = camera(FINE)
    img = CameraRaster(cam, world).image()
    for s in (112.0, 125.0):
        for d in (0.0, 3 * LANE_WIDTH):
            assert_line_at(img, *ground_pixel(cam, world, s, d))
    # The road's edge 30 m on, against where a straight road would put it.
    u_curve, _ = ground_pixel(cam, world, 125.0, 0.0)
    straight = make_world()
    straight.place(0, 95.0, 1, 20.0)
    u_straight, _ = ground_pixel(cam, straight, 125.0, 0.0)
    assert (u_curve < u_straight - 20) if radius > 0 else (u_curve > u_straight + 20)


def test_a_ramp_lane_is_paved_and_edged_only_where_it_exists():
    full = LaneSpan(0.0, 2000.0)
    world = make_world(lanes=3, spans=[full, full, LaneSpan(150.0, 400.0)])
    world.place(0, 130.0, 1, 20.0)
    cam = camera(FINE)
    img = CameraRaster(cam, world).image()
    ramp_centre = 2.5 * LANE_WIDTH
    u, v = ground_pixel(cam, world, 160.0, ramp_centre)
    assert img[int(round(v)), int(round(u))] == raster.ROAD_GREY
    u, v = ground_pixel(cam, world, 140.0, ramp_centre)
    assert img[int(round(v)), int(round(u))] == raster.GROUND_GREY
    assert_line_at(img, *ground_pixel(cam, world, 140.0, 2 * LANE_WIDTH))  # edge before it
    assert_line_at(img, *ground_pixel(cam, world, 155.0, 3 * LANE_WIDTH))  # its outer edge


def test_a_closure_shows_its_cones_and_the_edge_follows_its_taper():
    full = LaneSpan(0.0, 2000.0)
    start, taper = 130.0, 40.0
    cones = [Obstacle(CONE, 2, start + f * taper, 1.35 * (1 - 2 * f)) for f in (0.0, 0.5, 1.0)]
    world = make_world(spans=[full, full, LaneSpan(0.0, start + taper, taper)], obstacles=cones)
    world.place(0, 115.0, 1, 20.0)
    cam = camera(FINE)
    rgb = CameraRaster(cam, world, colour=True).image()
    r, g, b = np.moveaxis(rgb.astype(int), -1, 0)
    orange = (r > g + 50) & (g > b + 50)  # any face of a cone
    for cone in cones:
        # The cone's middle, 0.375 m up, in the vehicle frame.
        x, y, _ = world.road.to_world(np.array([cone.s]), np.array([2.5 * LANE_WIDTH
                                                                     + cone.offset]))
        p = np.array([[x[0] - world.x[0, 0], y[0] - world.y[0, 0], 0.375]])
        (u, v), = cam.project(cam.vehicle_to_camera(p))[0]
        assert orange[int(round(v)), int(round(u))]
    # Half way along the taper the closing lane's right edge has moved half a lane in.
    grey = CameraRaster(cam, world).image()
    assert_line_at(grey, *ground_pixel(cam, world, start + 0.5 * taper, 2.5 * LANE_WIDTH))
    u, v = ground_pixel(cam, world, start + 0.5 * taper, 2.85 * LANE_WIDTH)
    assert grey[int(round(v)), int(round(u))] == raster.GROUND_GREY


# ---------------------------------------------------------------------- vehicles
def box_pixels(cam, world, e, grow):
    """Pixel centres inside the convex hull of entity ``e``'s box corners as the camera model
    projects them, its outline moved ``grow`` pixels out (< 0: in)."""
    from scipy.spatial import ConvexHull

    hl, hw = 0.5 * world.length[0, e], 0.5 * world.width[0, e]
    ex, ey = world.x[0, 0], world.y[0, 0]
    corners = np.array([[world.x[0, e] + sx * hl - ex, world.y[0, e] + sy * hw - ey, z]
                        for sx in (-1, 1) for sy in (-1, 1) for z in (0.0, 1.5)])
    uv, ok = cam.project(cam.vehicle_to_camera(corners))
    assert ok.all()
    hull = ConvexHull(uv)  # its facets: normal . p + offset <= 0 inside
    w, h = cam.image_size
    v, u = np.mgrid[0:h, 0:w]
    p = np.column_stack([u.ravel(), v.ravel()])
    inside = (p @ hull.equations[:, :2].T + hull.equations[:, 2] <= grow).all(axis=1)
    return inside.reshape(h, w)


def test_a_car_ahead_covers_the_pixels_its_box_projects_to():
    world = make_world(vehicles=1)
    world.place(0, 100.0, 1, 20.0)
    put_car(world, 1, 115.0, 0)
    cam = camera()
    seen = shows(CameraRaster(cam, world, colour=True), world, 1)
    assert seen[box_pixels(cam, world, 1, -1.0)].all()
    assert not seen[~box_pixels(cam, world, 1, 1.0)].any()
    assert seen.sum() > 100


def test_a_car_hides_the_car_behind_it():
    world = make_world(vehicles=2)
    world.place(0, 100.0, 1, 20.0)
    put_car(world, 1, 115.0, 1)
    put_car(world, 2, 125.0, 1)
    world.crashed[:, 2] = True  # drawn in its own colour, to tell the two apart
    r = CameraRaster(camera(), world, colour=True)
    assert not crashed_mask(r.image()).any()
    world.place(1, 115.0, 0, 20.0)  # the front car moves a lane over: the other appears
    assert crashed_mask(r.image()).sum() > 20


def test_a_car_beside_and_partly_behind_the_camera_is_never_mirrored():
    world = make_world(vehicles=1)
    world.place(0, 100.0, 1, 20.0)
    put_car(world, 1, 102.5, 0)  # beside the camera (at s = 101), its back behind it
    r = CameraRaster(camera(), world, colour=True)
    seen = shows(r, world, 1)
    w = seen.shape[1]
    assert seen[:, : w // 4].sum() > 100  # its side fills the left edge of the view
    assert not seen[:, w // 2 :].any()  # and nothing of it shows on the right
    world.place(1, 90.0, 0, 20.0)  # wholly behind the camera: nothing at all
    assert not shows(r, world, 1).any()


def test_crashed_cars_are_drawn_in_the_crashed_colour():
    world = make_world(vehicles=1)
    world.place(0, 100.0, 1, 20.0)
    put_car(world, 1, 115.0, 1)
    r, grey = CameraRaster(camera(), world, colour=True), CameraRaster(camera(), world)
    car = shows(r, world, 1)
    assert not crashed_mask(r.image()).any()
    world.crashed[:, 1] = True
    np.testing.assert_array_equal(crashed_mask(r.image()), car)
    assert (grey.image()[car] <= raster.CRASHED_GREY).all()


def test_the_ego_is_never_drawn():
    world = make_world()
    world.place(0, 100.0, 1, 20.0)
    r = CameraRaster(camera(), world, colour=True)
    world.length[:, 0] = 0.0  # a box the camera is not inside: the picture is the same
    empty = r.image()
    world.length[:, 0] = 4.8
    np.testing.assert_array_equal(r.image(), empty)


def test_faces_are_shaded_by_their_angle_to_the_sun():
    world = make_world(vehicles=1)
    world.place(0, 100.0, 1, 20.0)
    put_car(world, 1, 112.0, 0)  # ahead on the left: its back and its right side show
    r = CameraRaster(camera(FINE), world)
    img = r.image()
    levels, counts = np.unique(img[shows(r, world, 1)], return_counts=True)
    big = levels[counts > 200]  # whole faces, not their edges
    # The road runs east, so the car's back faces west and its right side south.
    sun = np.array(raster.SUN)
    lit = [raster.AMBIENT + (1 - raster.AMBIENT) * max(n @ sun, 0.0)
           for n in (np.array([-1.0, 0, 0]), np.array([0, -1.0, 0]))]
    assert sorted(big.tolist()) == sorted(round(raster.CAR_GREY * v) for v in lit)


def test_nothing_is_drawn_beyond_the_draw_distance():
    world = make_world(vehicles=1, segments=[Segment(3000.0, 0.0)])
    world.place(0, 100.0, 1, 20.0)
    cam = camera(FINE)
    r = CameraRaster(cam, world)
    img = r.image()
    for ahead, grey in ((150.0, raster.ROAD_GREY), (300.0, raster.GROUND_GREY)):
        u, v = ground_pixel(cam, world, 101.0 + ahead, 1.5 * LANE_WIDTH)  # straight ahead
        assert img[int(round(v)), int(round(u))] == grey
    put_car(world, 1, 101.0 + raster.DRAW_DISTANCE - 5.0, 1)
    assert shows(r, world, 1).any()
    put_car(world, 1, 101.0 + raster.DRAW_DISTANCE + 5.0, 1)
    assert not shows(r, world, 1).any()


def test_a_box_smaller_than_a_pixel_still_covers_the_pixel_nearest_its_middle():
    # A cone 150 m ahead is a fifth of a pixel wide at 84 x 84: it falls between pixel
    # centres, yet it must not vanish (or blink as it moves).
    world = make_world(obstacles=[Obstacle(CONE, 1, 250.0, 0.8)])  # 0.8 m right of the lane
    cam = camera((84, 84))
    r = CameraRaster(cam, world)
    for ego_s in (100.0, 100.3, 100.6):
        world.place(0, ego_s, 1, 20.0)
        seen = shows(r, world, 1)
        assert seen.sum() == 1
        mid = np.array([[250.0 - ego_s, -0.8, 0.375]])  # its middle, vehicle frame
        (u, v), = cam.project(cam.vehicle_to_camera(mid))[0]
        assert seen[int(round(v)), int(round(u))]


def test_grey_and_colour_images_agree_in_geometry():
    world = make_world(vehicles=2)
    world.place(0, 100.0, 1, 20.0)
    put_car(world, 1, 112.0, 0)
    put_car(world, 2, 130.0, 1)
    # Crashed: darker than anything else in grey, so no car pixel can match the grey under it
    # by chance (a partly painted line can take any level between the road's and the paint's).
    world.crashed[:, 1:] = True
    cam = camera()
    grey, rgb = CameraRaster(cam, world), CameraRaster(cam, world, colour=True)
    for e in (1, 2):
        seen = shows(grey, world, e)
        assert seen.sum() > 20
        np.testing.assert_array_equal(seen, shows(rgb, world, e))


# ---------------------------------------------------------------------- batches
def test_same_state_same_image_and_a_batch_draws_each_world_as_alone():
    world = make_world(vehicles=6, n_worlds=16)  # enough worlds for the thread pool
    for _ in range(5):
        world.step(np.zeros(16), np.zeros(16))
    cam = camera((84, 84))
    for colour in (False, True):
        r = CameraRaster(cam, world, colour=colour)
        out = np.zeros((16, *r.shape), dtype=np.uint8)
        r.draw(np.ones(16, dtype=bool), out)
        again = np.zeros_like(out)
        r.draw(np.ones(16, dtype=bool), again)
        np.testing.assert_array_equal(out, again)
        for b in range(16):
            np.testing.assert_array_equal(r.image(b), out[b])
        assert len({img.tobytes() for img in out}) > 1  # the worlds differ


def test_only_the_selected_worlds_are_written_even_into_a_strided_view():
    world = make_world(vehicles=3, n_worlds=3)
    r = CameraRaster(camera((84, 84)), world)
    frames = np.full((3, 4, 84, 84), 7, dtype=np.uint8)
    r.draw(np.array([True, False, True]), frames[:, -1])
    assert (frames[1] == 7).all() and (frames[:, :-1] == 7).all()
    np.testing.assert_array_equal(frames[0, -1], r.image(0))
    np.testing.assert_array_equal(frames[2, -1], r.image(2))


@pytest.mark.parametrize(
    "worlds, out, message",
    [
        (np.ones(2, dtype=bool), np.zeros((3, 84, 84), np.uint8), "worlds must be a bool mask"),
        (np.ones(3), np.zeros((3, 84, 84), np.uint8), "worlds must be a bool mask"),
        (np.ones(3, dtype=bool), np.zeros((3, 84, 84), np.float32), "out must be a uint8"),
        (np.ones(3, dtype=bool), np.zeros((3, 84, 84, 3), np.uint8), "out must be a uint8"),
        (np.ones(3, dtype=bool), np.zeros((3, 80, 84), np.uint8), r"\(3, 84, 84\) for grey"),
    ],
)
def test_bad_draw_arguments_name_what_is_wrong(worlds, out, message):
    r = CameraRaster(camera((84, 84)), make_world(n_worlds=3))
    with pytest.raises(ValueError, match=message):
        r.draw(worlds, out)


def test_bad_constructor_and_image_arguments_name_what_is_wrong():
    world = make_world(n_worlds=2)
    with pytest.raises(TypeError, match="camera must be a lanesim.camera.Camera"):
        CameraRaster((84, 84), world)
    with pytest.raises(TypeError, match="world must be a lanesim.sim.world.World"):
        CameraRaster(camera(), None)
    with pytest.raises(ValueError, match="b must be a world index from 0 to 1"):
        CameraRaster(camera(), world).image(2)
