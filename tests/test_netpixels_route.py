"""The ego's route in the ``pixels`` observation on road networks (issue #16)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401  (registers the environments)
from lanesim.envs.actions import IDLE
from lanesim.envs.netpixels import GREYS, ROUTE, network_frames
from lanesim.envs.observations import EGO, ROAD, SOLID
from lanesim.raster.network import NetworkFrames

NETWORK_IDS = ("lanesim/Intersection-v0", "lanesim/Roundabout-v0", "lanesim/Exit-v0")
H = W = 84
EGO_ROW, EGO_COL = H // 2, W // 4  # the ego's centre: a quarter of the frame from the left
PX = 0.5  # m per pixel


def newest_frame(env_id, seed=0, **kwargs) -> np.ndarray:
    env = gym.make(env_id, observation="pixels", action="meta", **kwargs)
    obs, _ = env.reset(seed=seed)
    return obs[-1]


def route_rows_cols(frame):
    return np.nonzero(frame == ROUTE)


def test_route_grey_differs_from_every_other_grey_and_appears_in_the_frame():
    assert ROUTE not in GREYS
    assert min(abs(ROUTE - g) for g in GREYS) >= 30
    for env_id in NETWORK_IDS:
        frame = newest_frame(env_id)
        assert (frame == ROUTE).sum() > 50, env_id
        assert set(np.unique(frame)) <= {*GREYS, ROUTE}


def test_left_and_right_goals_draw_the_band_into_different_arms_of_the_junction():
    # 20 m before the minor road's end the whole junction is in the frame; no traffic.
    frames = {g: newest_frame("lanesim/Intersection-v0", vehicles=0, goals=[g], ego_start=80.0)
              for g in ("west:-1", "north:-1", "east:-1")}
    left, straight, right = (route_rows_cols(frames[g])[0]
                             for g in ("west:-1", "north:-1", "east:-1"))
    # The ego's heading points right, its left side up: a left turn leaves the ego's rows
    # upward, a right turn downward, straight on stays within a metre of the ego's row.
    assert left.min() < EGO_ROW - 10 and left.max() <= EGO_ROW + 2
    assert right.max() > EGO_ROW + 10 and right.min() >= EGO_ROW - 2
    assert abs(straight - EGO_ROW).max() <= 2
    # The lane ends 20 m (40 px) ahead; past the junction's first metres the two turns' bands
    # share no pixel.
    ahead = slice(EGO_COL + 52, W)
    west, east = (frames[g][:, ahead] == ROUTE for g in ("west:-1", "east:-1"))
    assert west.sum() > 20 and east.sum() > 20 and not (west & east).any()


@pytest.mark.parametrize("env_id", NETWORK_IDS)
def test_band_is_never_drawn_behind_the_ego(env_id):
    env = gym.make(env_id, observation="pixels", action="meta")
    obs, _ = env.reset(seed=3)
    reach = round(1.0 / PX) + 1  # the band's half width, one pixel of rounding
    seen = 0
    for _ in range(25):
        _, cols = route_rows_cols(obs[-1])
        seen += cols.size
        assert cols.size == 0 or cols.min() >= EGO_COL - reach
        obs, _, terminated, truncated, _ = env.step(IDLE)
        if terminated or truncated:
            obs, _ = env.reset()
    assert seen > 0


def test_band_moves_into_the_lane_the_route_changes_into():
    # Exit-v0 from the left lane: the route asks for two lane changes right (toward the exit
    # lane); the band leaves the ego's lane as a diagonal and runs on two lanes to the right.
    frame = newest_frame("lanesim/Exit-v0", vehicles=0, ego_start_lanes=["approach:0"],
                         ego_start=150.0)
    lanes_right = 2 * 3.5 / PX  # rows: Exit-v0's lanes are 3.5 m
    rows, cols = route_rows_cols(frame)
    near = rows[cols < EGO_COL + 8]
    far = rows[cols >= W - 8]
    assert near.size and abs(near.mean() - EGO_ROW) <= 2
    assert far.size and abs(far.mean() - (EGO_ROW + lanes_right)) <= 2
    # In between it descends steadily: every column's band lies between the two.
    mid = [rows[cols == c].mean() for c in range(EGO_COL + 8, W - 8) if (cols == c).any()]
    assert np.all(np.diff(mid) >= 0) and len(mid) > 20


def test_band_covers_only_road_pixels_markings_and_grass_stay():
    env = gym.make("lanesim/Intersection-v0", observation="pixels", action="meta",
                   goals=["west:-1"], ego_start=85.0)
    env.reset(seed=0)
    world = env.unwrapped.core.world
    pixels = env.unwrapped.core.observation
    with_route = pixels.draw()[0]
    plain = network_frames(world.network, (H, W), PX, yield_ends=world.yield_ends)
    without = plain(world.x[:1], world.y[:1], world.heading[:1], world.length[:1],
                    world.width[:1], world.kind[:1])[0]
    changed = with_route != without
    assert changed.sum() > 50
    assert np.all(without[changed] == ROAD) and np.all(with_route[changed] == ROUTE)
    # The yield line across the ego's lane end is in view and left solid across the band.
    assert (without == SOLID).sum() == (with_route == SOLID).sum()
    assert (with_route == EGO).any()


@pytest.mark.parametrize("env_id", NETWORK_IDS)
def test_pixel_stacks_are_sb3_images_and_the_same_seed_gives_the_same_frames(env_id):
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

    def run():
        envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                            observation="pixels", action="meta")
        obs, _ = envs.reset(seed=5)
        out = [obs]
        for _ in range(10):
            obs, *_ = envs.step(np.full(2, IDLE))
            assert envs.observation_space.contains(obs)
            out.append(obs)
        return envs.single_observation_space, np.stack(out)

    space, a = run()
    _, b = run()
    assert is_image_space(space) and is_image_space_channels_first(space)
    assert space.dtype == np.uint8 and space.shape == (4, H, W)
    assert (a == ROUTE).any()
    np.testing.assert_array_equal(a, b)


def test_route_drawing_arguments_are_checked():
    env = gym.make("lanesim/Intersection-v0", observation="pixels")
    env.reset(seed=0)
    world = env.unwrapped.core.world
    rows = (world.x[:1], world.y[:1], world.heading[:1], world.length[:1], world.width[:1],
            world.kind[:1])
    no_grey = NetworkFrames(world.network, greys=GREYS)
    with pytest.raises(ValueError, match="route_grey"):
        no_grey(*rows, route=(np.zeros((1, 2, 2)), np.array([2])))
    with pytest.raises(ValueError, match=r"route must be \(points"):
        network_frames(world.network)(*rows, route=(np.zeros((1, 2, 3)), np.array([2])))
    with pytest.raises(ValueError, match="counts 0 to P"):
        network_frames(world.network)(*rows, route=(np.zeros((1, 2, 2)), np.array([3])))
    with pytest.raises(ValueError, match="route_grey must be a grey level 0 to 255"):
        NetworkFrames(world.network, greys=GREYS, route_grey=300)
    with pytest.raises(ValueError, match="route_width must be a number from 0.1 to 20"):
        NetworkFrames(world.network, greys=GREYS, route_grey=ROUTE, route_width=0.0)
