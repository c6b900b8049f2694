"""The network kernels' faster paths give the bits of what they replace: network.wrap_heading
is road.wrap_angle's for every input, without its fmod call in the common range (the kernels
wrap every car's heading each step); network.lane_point and network.road_foot, which read each
segment's start cosine and sine from a table (NetworkArrays.seg_trig) and reuse one sine and
cosine where the same number's are needed twice, give what road.advance, road.segment_foot and
road.wrap_angle give as they were written before (the references below)."""

import math

import numpy as np
from numba import njit

from lanesim.envs.options import build_network, bundled_scenarios, load_scenario
from lanesim.sim.network import lane_point, lane_reference_s, road_foot, wrap_heading
from lanesim.sim.road import advance, segment_foot, wrap_angle


@njit(cache=False)
def _both(a, fast, slow):
    for i in range(a.shape[0]):
        fast[i] = wrap_heading(a[i])
        slow[i] = wrap_angle(a[i])


def _bits(values) -> tuple[np.ndarray, np.ndarray]:
    a = np.ascontiguousarray(values, dtype=np.float64)
    fast, slow = np.empty_like(a), np.empty_like(a)
    _both(a, fast, slow)
    return fast.view(np.uint64), slow.view(np.uint64)


def _edges() -> np.ndarray:
    """Every boundary of wrap_heading's cases and of wrap_angle's period, with the doubles
    next to each (several ulps either side), signed zeros, infinities, NaN, subnormals and
    huge values."""
    pi, two = math.pi, 2 * math.pi
    marks = [0.0, pi, two, 3 * pi, 2 * two, 5 * pi, 3 * two, 100.0, 1e6, 1e300,
             5e-324, 2.2250738585072014e-308, 1e-300, 1e-17, 1e-16]
    # The angles at which angle + pi meets a case boundary of x = angle + pi.
    marks += [b - pi for b in (0.0, two, 2 * two, -two, -2 * two)]
    out = []
    for m in marks:
        for s in (m, -m):
            v = np.float64(s)
            up = down = v
            for _ in range(40):
                out += [up, down]
                up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
    out += [np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0]
    # The doubles x just inside and outside each case whose x - pi or x + 2 pi rounds.
    for b in (0.0, two, 2 * two, -two):
        x = np.float64(b)
        for _ in range(40):
            out += [x - pi, np.nextafter(x, np.inf) - pi, np.nextafter(x, -np.inf) - pi]
            x = np.nextafter(x, np.inf)
    return np.array(out, dtype=np.float64)


def test_wrap_heading_is_wrap_angle_bit_for_bit_at_every_edge():
    fast, slow = _bits(_edges())
    np.testing.assert_array_equal(fast, slow)


def test_wrap_heading_is_wrap_angle_bit_for_bit_on_random_angles():
    rng = np.random.default_rng(7)
    parts = [
        rng.uniform(-math.pi, math.pi, 400_000),  # wrapped headings
        rng.uniform(-4 * math.pi, 4 * math.pi, 400_000),  # sums and differences, and beyond
        rng.uniform(-50.0, 50.0, 100_000),  # far outside the fast range
        rng.normal(0.0, 1e-6, 100_000),  # tiny angles near the zero boundary
        # Near each case boundary x in {0, 2 pi, 4 pi, -2 pi} (angle = x - pi).
        *(b - math.pi + rng.normal(0.0, 1e-12, 100_000)
          for b in (0.0, 2 * math.pi, 4 * math.pi, -2 * math.pi)),
        # Random bit patterns: every exponent, NaNs and infinities among them.
        rng.integers(0, 2**64 - 1, 400_000, dtype=np.uint64).view(np.float64),
    ]
    fast, slow = _bits(np.concatenate(parts))
    np.testing.assert_array_equal(fast, slow)


def test_wrap_heading_wraps_into_minus_pi_to_pi():
    a = np.array([0.0, math.pi, -math.pi, 3.0, -3.0, 7.0, -7.0, 12.0, -12.0, 40.0])
    fast, _ = _bits(a)
    w = fast.view(np.float64)
    assert np.all((w >= -math.pi) & (w < math.pi))
    np.testing.assert_allclose(np.cos(w), np.cos(a), atol=1e-12)
    np.testing.assert_allclose(np.sin(w), np.sin(a), atol=1e-12)
    assert math.isnan(_bits([np.nan])[0].view(np.float64)[0])


@njit(cache=False)
def _lane_point_reference(net, lane, u, offset):
    """lane_point as it was written on road.advance and road.wrap_angle."""
    i, s = lane_reference_s(net, lane, u)
    s0, _, curv, x0, y0, h0 = net.seg
    x, y, h = advance(x0[i], y0[i], h0[i], s - s0[i], curv[i])
    d = net.lane_d[lane] + net.lane_dir[lane] * offset
    x, y = x + d * math.sin(h), y - d * math.cos(h)
    if net.lane_dir[lane] < 0:
        h += math.pi
    return x, y, wrap_angle(h)


@njit(cache=False)
def _road_foot_reference(net, r, px, py):
    """road_foot as it was written on road.segment_foot and road.advance."""
    s0, length, curv, x0, y0, h0 = net.seg
    first, last = net.road_seg[r], net.road_seg[r + 1] - 1
    best_gap, best_s, best_d, inside = np.inf, 0.0, 0.0, False
    for i in range(first, last + 1):
        k = curv[i]
        raw = segment_foot(net.seg, i, px, py)
        u = min(max(raw, 0.0), length[i])
        fx, fy, fh = advance(x0[i], y0[i], h0[i], u, k)
        gap = math.hypot(px - fx, py - fy)
        if gap < best_gap:
            best_gap, best_s = gap, s0[i] + u
            best_d = (px - fx) * math.sin(fh) - (py - fy) * math.cos(fh)
            inside = not ((i == first and raw < -1e-9) or (i == last and raw > length[i] + 1e-9))
    return best_s, best_d, inside


@njit(cache=False)
def _points(net, lane, u, offset, fast, slow):
    for j in range(lane.shape[0]):
        fast[j] = lane_point(net, lane[j], u[j], offset[j])
        slow[j] = _lane_point_reference(net, lane[j], u[j], offset[j])


@njit(cache=False)
def _feet(net, road, px, py, fast, slow):
    for j in range(road.shape[0]):
        s, d, inside = road_foot(net, road[j], px[j], py[j])
        fast[j, 0], fast[j, 1], fast[j, 2] = s, d, 1.0 if inside else 0.0
        s, d, inside = _road_foot_reference(net, road[j], px[j], py[j])
        slow[j, 0], slow[j, 1], slow[j, 2] = s, d, 1.0 if inside else 0.0


def _networks():
    """Every bundled scenario's network and the road-network ids' (issue #16)."""
    import gymnasium as gym

    import lanesim  # noqa: F401

    for name in bundled_scenarios():
        spec = load_scenario(name)[0]
        if "network" in spec:
            yield name, build_network(spec["network"])
    for env_id in ("Intersection", "Roundabout", "Racetrack", "Exit", "TwoWay"):
        env = gym.make(f"lanesim/{env_id}-v0")
        network = getattr(env.unwrapped.world, "network", None)
        if network is not None:  # Racetrack-v0 and TwoWay-v0 run on one road
            yield env_id, network
        env.close()


def test_lane_point_and_road_foot_are_the_formulas_they_replace_bit_for_bit():
    rng = np.random.default_rng(3)
    networks = 0
    for name, net in _networks():
        networks += 1
        arrays = net.arrays
        n = 20_000
        lane = rng.integers(0, len(net.lanes), n)
        length = arrays.lane_length[lane]
        # Anywhere along the lane, its ends included, on and off its centre.
        u = np.where(rng.random(n) < 0.1, rng.choice([0.0, 1.0], n) * length,
                     rng.random(n) * length)
        offset = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(-4.0, 4.0, n))
        fast, slow = np.zeros((n, 3)), np.zeros((n, 3))
        _points(arrays, lane, u, offset, fast, slow)
        assert np.all(np.isfinite(slow)), name
        np.testing.assert_array_equal(fast.view(np.uint64), slow.view(np.uint64), err_msg=name)
        # The road frame of points near those (within a few lanes), and of far ones.
        road = arrays.lane_road[lane]
        px = slow[:, 0] + rng.normal(0.0, 3.0, n) * np.where(rng.random(n) < 0.9, 1.0, 50.0)
        py = slow[:, 1] + rng.normal(0.0, 3.0, n) * np.where(rng.random(n) < 0.9, 1.0, 50.0)
        fast, slow = np.zeros((n, 3)), np.zeros((n, 3))
        _feet(arrays, road, px, py, fast, slow)
        assert slow[:, 2].mean() > 0.3, name  # many inside the road's ends
        np.testing.assert_array_equal(fast.view(np.uint64), slow.view(np.uint64), err_msg=name)
    assert networks >= 6
