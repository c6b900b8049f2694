"""The sorted lane index: which entity is ahead of or behind a position in a lane, compiled.

Each world's lane occupancies sit in one array sorted by ``lane * stride + (s + shift)``
(:class:`~lanesim.sim.state.LaneIndex`), so one binary search finds a position in any lane.
"""

from __future__ import annotations

import math

from lanesim.sim.jit import kernel, kernel_inline
from lanesim.sim.state import (
    CAR,
    EGO,
    HEADING,
    KIND,
    LANE,
    LENGTH,
    ROAD_HEADING,
    TARGET_LANE,
    WIDTH,
    D,
    S,
)


@kernel
def lane_exists(lane_start, lane_end, lane, s):
    """Whether ``lane`` (any int) is drivable at ``s``."""
    if lane < 0 or lane >= lane_start.shape[0]:
        return False
    return lane_start[lane] <= s <= lane_end[lane]


@kernel_inline
def _lane_of(d, lane_width, lanes):
    return min(max(int(math.floor(d / lane_width)), 0), lanes - 1)


@kernel_inline
def _key(index, lane, s):
    """The index key of position ``s`` in ``lane``. Every key is made here, in one order of
    operations, so an entity's own query position equals its entry exactly (and it never finds
    itself as its own leader or follower)."""
    return lane * index.stride + (s + index.shift)


@kernel
def second_lane(F, I, lane_width, lanes, b, e):
    """The other lane entity ``e`` blocks: its target lane while changing, else the neighbour
    its footprint reaches into, else -1."""
    lane = I[LANE, b, e]
    target = I[TARGET_LANE, b, e]
    if target != lane:
        return target
    rel = F[HEADING, b, e] - F[ROAD_HEADING, b, e]
    half = 0.5 * F[WIDTH, b, e]
    if rel != 0.0:
        half = half * abs(math.cos(rel)) + 0.5 * F[LENGTH, b, e] * abs(math.sin(rel))
    left = int(math.floor((F[D, b, e] - half) / lane_width))
    right = int(math.floor((F[D, b, e] + half) / lane_width))
    second = -1
    if left != lane:
        second = left
    elif right != lane:
        second = right
    if second < 0 or second >= lanes:
        return -1
    return second


@kernel
def build_index(F, I, lane_width, index, b):
    """Group world ``b``'s lane occupancies by lane, each lane sorted by ``s``.

    Each entity occupies its own lane and, when it straddles or changes lanes, a second one.
    Keys are ``lane * stride + (s + shift)`` (:func:`_key`), so the whole array is sorted
    and one binary search finds a position in any lane. Filling lanes in the ``s`` order of
    ``index.order`` (kept sorted by :func:`sort_by_s`) makes this a linear counting sort.
    ``index.pos[b, e]`` records where entity ``e``'s own-lane entry landed, so its leader is
    simply the next entry.
    """
    keys, ents, counts, pos, order = index.keys, index.ents, index.counts, index.pos, index.order
    lanes = index.lanes
    N = F.shape[2]
    second = index.work[b, :N]
    start = index.work[b, N : N + lanes + 1]
    start[:] = 0
    for e in range(N):
        second[e] = second_lane(F, I, lane_width, lanes, b, e)
        start[I[LANE, b, e] + 1] += 1
        if second[e] >= 0:
            start[second[e] + 1] += 1
    for lane in range(lanes):
        start[lane + 1] += start[lane]
    counts[b] = start[lanes]
    for a in range(N):
        e = order[b, a]
        s = F[S, b, e]
        lane = I[LANE, b, e]
        p = start[lane]
        keys[b, p], ents[b, p], pos[b, e] = _key(index, lane, s), e, p
        start[lane] += 1
        if second[e] >= 0:
            p = start[second[e]]
            keys[b, p], ents[b, p] = _key(index, second[e], s), e
            start[second[e]] += 1


@kernel
def leader(index, b, lane, s):
    """Nearest entity ahead of position ``s`` in ``lane`` of world ``b``; -1 if none. An entity
    exactly at ``s`` does not count, so a car never finds itself. Only ``lane`` is searched:
    where the lane has a successor, a caller that finds nothing goes on with
    :func:`beyond_end`. (The hot searches stay this small: with the successor's search inside
    them, the world step of case (a) measured 65 % slower.)

    (:func:`leader` and :func:`follower` are two functions, not one with a flag: numba compiles
    a function once for each constant a caller passes, and the step would compile three.)"""
    if lane < 0 or lane >= index.lanes:
        return -1
    keys, counts = index.keys, index.counts
    q = _key(index, lane, s)
    lo, hi = 0, counts[b]
    while lo < hi:  # first key > q
        mid = (lo + hi) // 2
        if keys[b, mid] <= q:
            lo = mid + 1
        else:
            hi = mid
    return _entry_in_lane(index, b, lane, lo)


@kernel
def follower(index, b, lane, s):
    """Nearest entity behind position ``s`` in ``lane`` of world ``b``; -1 if none. An entity
    exactly at ``s`` does not count. Only ``lane`` is searched (then :func:`before_start`)."""
    if lane < 0 or lane >= index.lanes:
        return -1
    keys, counts = index.keys, index.counts
    q = _key(index, lane, s)
    lo, hi = 0, counts[b]
    while lo < hi:  # last key < q
        mid = (lo + hi) // 2
        if keys[b, mid] < q:
            lo = mid + 1
        else:
            hi = mid
    return _entry_in_lane(index, b, lane, lo - 1)


@kernel_inline
def _entry_in_lane(index, b, lane, pos):
    """The entity of index entry ``pos`` of world ``b`` if that entry is in ``lane``, else -1."""
    if pos < 0 or pos >= index.counts[b]:
        return -1
    if int(math.floor(index.keys[b, pos] / index.stride)) != lane:
        return -1
    return index.ents[b, pos]


@kernel
def _lane_bound(index, b, lane):
    """Index position of ``lane``'s first entry in world ``b`` (where its key range starts)."""
    keys = index.keys
    q = lane * index.stride
    lo, hi = 0, index.counts[b]
    while lo < hi:  # first key >= q
        mid = (lo + hi) // 2
        if keys[b, mid] < q:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def beyond_end(index, b, lane, s):
    """The nearest entity past the end of ``lane`` (-1 if none or the lane has no successor),
    for a search from position ``s`` that found nothing ahead in ``lane``: the first entity of
    its successor. On a closed road the lane is its own successor, and only entities behind
    ``s`` lie ahead across the seam (one exactly at ``s`` would be a whole lap away: a car
    alone in its lane is not its own leader). The gap to it spans the seam
    (:func:`lanesim.sim.traffic.bumper_gap`)."""
    nxt = index.next[lane]
    if nxt < 0:
        return -1
    p = _lane_bound(index, b, nxt)
    ahead = _entry_in_lane(index, b, nxt, p)
    if ahead >= 0 and nxt == lane and index.keys[b, p] >= _key(index, lane, s):
        return -1
    return ahead


@kernel
def before_start(index, b, lane, s):
    """The nearest entity before the start of ``lane`` (-1 if none or the lane has no
    predecessor), for a search from ``s`` that found nothing behind in ``lane``: the last
    entity of its predecessor (:func:`beyond_end`, mirrored)."""
    prv = index.prev[lane]
    if prv < 0:
        return -1
    p = _lane_bound(index, b, prv + 1) - 1
    behind = _entry_in_lane(index, b, prv, p)
    if behind >= 0 and prv == lane and index.keys[b, p] <= _key(index, lane, s):
        return -1
    return behind


@kernel
def neighbours(index, b, lane, s):
    """``(leader(...), follower(...))`` from one binary search.

    (:func:`leader` keeps its own search: written as one side of this one, the world step of
    case (a) measured 70 % slower.)"""
    keys, ents, counts, stride = index.keys, index.ents, index.counts, index.stride
    if lane < 0 or lane >= index.lanes:
        return -1, -1
    q = _key(index, lane, s)
    lo, hi = 0, counts[b]
    while lo < hi:  # first key > q
        mid = (lo + hi) // 2
        if keys[b, mid] <= q:
            lo = mid + 1
        else:
            hi = mid
    ahead = -1
    if lo < counts[b] and int(math.floor(keys[b, lo] / stride)) == lane:
        ahead = ents[b, lo]
    p = lo - 1
    while p >= 0 and keys[b, p] >= q:  # entities exactly at s count as neither
        p -= 1
    behind = -1
    if p >= 0 and int(math.floor(keys[b, p] / stride)) == lane:
        behind = ents[b, p]
    return ahead, behind


@kernel
def next_in_lane(index, b, e, lane):
    """The entity right ahead of ``e`` in its own lane (-1 if none): the next index entry (then
    :func:`beyond_end`)."""
    p = index.pos[b, e] + 1
    if p < index.counts[b] and index.keys[b, p] < (lane + 1) * index.stride:
        return index.ents[b, p]
    return -1


@kernel
def prev_in_lane(index, b, e, lane):
    """The entity right behind ``e`` in its own lane (-1 if none): the previous index entry; the
    one an oncoming car follows."""
    p = index.pos[b, e] - 1
    if p >= 0 and index.keys[b, p] >= lane * index.stride:
        return index.ents[b, p]
    return -1


@kernel_inline
def direction_of(I, direction, b, e):
    """+1 if entity ``e`` of world ``b`` travels toward +s, -1 if it comes the other way: the
    ego always faces forward (even in an oncoming lane), everything else travels its lane's
    way (``direction``, per lane: traffic never changes into a lane of the other direction)."""
    if I[KIND, b, e] == EGO:
        return 1
    return direction[I[LANE, b, e]]


@kernel
def insert(index, b, lane, s, e):
    """Add entity ``e``'s occupancy of ``lane`` at ``s`` to world ``b``'s index, keeping every
    entity's own-lane position current (so leaders found by position stay right while cars
    decide)."""
    keys, ents, counts, pos = index.keys, index.ents, index.counts, index.pos
    key = _key(index, lane, s)
    j = counts[b] - 1
    while j >= 0 and keys[b, j] > key:
        keys[b, j + 1] = keys[b, j]
        ents[b, j + 1] = ents[b, j]
        if pos[b, ents[b, j]] == j:
            pos[b, ents[b, j]] = j + 1
        j -= 1
    keys[b, j + 1] = key
    ents[b, j + 1] = e
    counts[b] += 1


@kernel
def sort_by_s(F, order, b):
    """Insertion-sort world ``b``'s entity order by ``s``: nearly linear, since the order
    barely changes between steps."""
    for i in range(1, F.shape[2]):
        e = order[b, i]
        j = i - 1
        while j >= 0 and F[S, b, order[b, j]] > F[S, b, e]:
            order[b, j + 1] = order[b, j]
            j -= 1
        order[b, j + 1] = e


@kernel
def refresh_lanes(F, I, lane_width, index, b):
    """Lane under every entity's centre (traffic keeps its own target), then the index."""
    for e in range(F.shape[2]):
        lane = _lane_of(F[D, b, e], lane_width, index.lanes)
        I[LANE, b, e] = lane
        if I[KIND, b, e] != CAR:
            I[TARGET_LANE, b, e] = lane
    sort_by_s(F, index.order, b)
    build_index(F, I, lane_width, index, b)
