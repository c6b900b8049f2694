"""The compiled pixel rasterizer paints exactly what RoadRaster's array description says."""

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401
from lanesim.envs.observations import (
    DASHED,
    EGO,
    OBSTACLE,
    OFFROAD,
    ROAD,
    SOLID,
    STALLED,
    TRAFFIC,
)


def reference_markings(r, dash: float = 3.0, period: float = 9.0):
    """Lane boundary cells of every world of RoadRaster ``r``: ``(b, row, col)`` index arrays
    for solid and for dashed lines. A boundary with lanes on both sides is dashed (painted
    ``dash`` m of every ``period``, anchored to the road); with a lane on one side only, solid.
    """
    road = r.world.road
    s, _ = r.cells()
    k = np.arange(road.lanes + 1)
    rows = np.floor((k * road.lane_width - r.top()) / r.my).astype(np.int64)
    left = road.lane_exists(k[None, :, None] - 1, s[:, None, :])  # (B, K, W)
    right = road.lane_exists(k[None, :, None], s[:, None, :])
    solid = left ^ right
    dashed = left & right & ((s[:, None, :] % period) < dash)
    inside = ((rows >= 0) & (rows < r.H))[:, :, None]
    out = []
    for mask in (solid & inside, dashed & inside):
        b, kk, c = np.nonzero(mask)
        out.append((b, rows[b, kk], c))
    return out


def reference_frame(obs) -> np.ndarray:
    """The frame built in numpy: RoadRaster's drivable area and footprints, and the markings."""
    r, w = obs.raster, obs.world
    img = np.where(r.drivable(), ROAD, OFFROAD).astype(np.uint8)
    solid, dashed = reference_markings(r)
    img[dashed] = DASHED
    img[solid] = SOLID
    b, e, rows, cols = r.footprints(slice(1, w.N))
    img[b, rows, cols] = np.where(w.kind[b, e + 1] >= STALLED, OBSTACLE, TRAFFIC)
    b, _, rows, cols = r.footprints(slice(0, 1))
    img[b, rows, cols] = EGO
    return img


@pytest.mark.parametrize(
    "env_id", ["lanesim/Roadworks-v0", "lanesim/Merge-v0", "lanesim/LaneKeeping-v0"]
)
def test_pixels_match_the_reference_rasterizer(env_id):
    vec = gym.make_vec(env_id, num_envs=17, observation="pixels", action="discrete")
    obs, _ = vec.reset(seed=2)
    vec.action_space.seed(0)
    pixels = vec.unwrapped.core.observation
    seen = set()
    for _ in range(12):
        prev = obs
        obs, *_ = vec.step(vec.action_space.sample())
        np.testing.assert_array_equal(obs[:, -1], reference_frame(pixels))
        seen |= set(np.unique(obs[:, -1]).tolist())
        # The stack moves one frame back (sub-environments that just reset excepted).
        moved = ~np.all(obs == obs[:, :1], axis=(1, 2, 3))
        np.testing.assert_array_equal(obs[moved, :-1], prev[moved, 1:])
    assert {OFFROAD, ROAD, EGO} <= seen and ({SOLID, DASHED} & seen)


def test_thread_split_gives_the_same_worlds_and_pixels():
    """Large batches split worlds over threads (the calling thread takes the first range);
    forced here on a small batch, so every machine runs the split path."""
    from concurrent.futures import ThreadPoolExecutor

    out = []
    for split in (False, True):
        vec = gym.make_vec("lanesim/Dense-v0", num_envs=9, observation="pixels", action="meta")
        world = vec.unwrapped.world
        if world._pool is not None:
            world._pool.shutdown()
        world._pool = ThreadPoolExecutor(2) if split else None
        world._splits = [(0, 3), (3, 7), (7, 9)]
        obs, _ = vec.reset(seed=5)
        vec.action_space.seed(1)
        frames = [obs]
        for _ in range(8):
            obs, reward, *_ = vec.step(vec.action_space.sample())
            frames += [obs, reward]
        out.append((frames, world.F.copy()))
        vec.close()
    (a, fa), (b, fb) = out
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(fa, fb)


def test_speed_bar_gauges_the_ego_speed_in_the_top_row_and_leaves_the_rest_of_the_frame():
    kw = dict(observation="pixels", action="meta", policy_hz=1, image_shape=[42, 84])
    plain = gym.make_vec("lanesim/Highway-v0", num_envs=3, **kw)
    gauged = gym.make_vec("lanesim/Highway-v0", num_envs=3, speed_bar=True, **kw)
    a, _ = plain.reset(seed=4)
    b, _ = gauged.reset(seed=4)
    world = gauged.unwrapped.world
    for action in ([3, 3, 4], [3, 1, 4], [1, 1, 1]):
        np.testing.assert_array_equal(a[:, :, 1:], b[:, :, 1:])
        lit = np.rint(world.speed[:, 0] * 84 / world.spec.ego.max_speed).astype(int)
        expected = np.where(np.arange(84)[None, :] < lit[:, None], EGO, OFFROAD)
        np.testing.assert_array_equal(b[:, -1, 0], expected)
        a, *_ = plain.step(np.array(action))
        b, *_ = gauged.step(np.array(action))
    # FASTER and SLOWER moved the gauges apart: it shows speed, not a constant.
    assert len(set(lit.tolist())) == 3


def test_speed_bar_is_refused_on_observations_it_does_not_draw_into():
    from lanesim.envs.options import OptionError

    with pytest.raises(OptionError, match="'speed_bar'.*'camera'"):
        gym.make("lanesim/Highway-v0", observation="camera", speed_bar=True)


def test_the_recipes_q_network_sees_the_speed_bar():
    """A conv trunk of 8-pixel windows at stride 4 drops the last rows of a 42-row frame; the
    gauge must lie where it looks: the same world with and without it gets other values."""
    import torch

    from agents.dqn.network import QNetwork

    kw = dict(observation="pixels", image_shape=[42, 84])
    plain, _ = gym.make("lanesim/Highway-v0", **kw).reset(seed=0)
    gauged, _ = gym.make("lanesim/Highway-v0", speed_bar=True, **kw).reset(seed=0)
    assert not np.array_equal(plain, gauged)
    torch.manual_seed(0)
    net = QNetwork(plain.shape, 5, conv="small", hidden=256)
    with torch.no_grad():
        q = net(torch.as_tensor(np.stack([plain, gauged])))
    assert not torch.allclose(q[0], q[1])
