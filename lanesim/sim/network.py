"""Road networks: roads of parallel lanes, joined lane end to lane start.

A *road* is a :class:`~lanesim.sim.road.Road` placed at a start pose: a reference line of
straight and circular segments with parallel lanes of one width. Lane ``i >= 0`` runs along the
reference direction with its centre at ``d = (i + 0.5) * width`` (to the right of the line, as
on every lanesim road); lane ``-1, -2, ...`` run against it, on its left, at the same formula
(``d = -0.5 * width`` for lane -1), which makes a two-way road. A *network* is roads plus
*links*: the end of one lane meets the start of another, in the direction of travel. Junctions
and roundabouts are roads too: one-lane *connector* roads that the builder bends from one lane
end to the next lane start (:func:`connector_segments`).

Lane coordinates: ``u`` is the distance (m) along the lane's centre line from where the lane
starts, in its direction of travel (exact on arcs: a lane at offset ``d`` on an arc of
curvature ``k`` is ``1 + k d`` times as long as the reference line there); ``offset`` is the
lateral distance (m) from the lane centre to the right of the direction of travel.

Lanes are named ``"road:lane"`` (``"west:0"``, ``"west:-1"``) and numbered globally in the
order of the roads, forward lanes first: :attr:`Network.lanes`.

This module is geometry and validation only; it knows nothing of Gymnasium or pygame.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np
from numba import njit

from lanesim.sim.jit import kernel
from lanesim.sim.road import (
    MEET_DISTANCE,
    MEET_HEADING,
    ClosureError,
    Road,
    Segment,
    pose_miss,
    segment_foot_trig,
    wrap_heading,
)

__all__ = [
    "MARKINGS",
    "Network",
    "NetworkArrays",
    "NetworkBuilder",
    "NetworkError",
    "RoadSpec",
    "connector_segments",
    "lane_point",
    "locate",
    "network_of_road",
    "wrap_heading",
]

MARKINGS = ("solid", "dashed", "none")
# Linked lane ends must meet within MEET_DISTANCE and MEET_HEADING (lanesim.sim.road), as a
# closed road's end meets its start.
MAX_LANES = 8  # per direction of one road, as the single-road option allows
MAX_ROADS = 1_000


class NetworkError(ValueError):
    """A network that cannot be built: the message names the road, lane or link and what is
    accepted. ``path`` is ``(list, index)`` of the offending entry (``("roads", 2)``,
    ``("links", 0)``, ``("connect", 1)``) where one is to blame, so a file's loader can name
    it."""

    def __init__(self, message: str, path: tuple[str, int] | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class RoadSpec:
    """One road of a network.

    Args:
        name: unique within the network; letters, digits and ``_ - . >``.
        segments: the reference line from ``start``.
        start: ``(x, y, heading)`` (m, m, rad) where the reference line starts.
        lanes: lanes along the reference direction (0 to 8).
        lanes_back: lanes against it, on its left (0 to 8); a road needs at least one lane.
        lane_width: m, 2 to 6.
        centre: the marking between the two directions of a two-way road (``"solid"``: no
            overtaking; ``"dashed"``: overtaking allowed; ``"none"``).
        loop: the road closes on itself (a circuit or a roundabout's ring): its end must meet
            its start, and every lane's end links to its own start.
        priority: right of way where this road's lanes (and the connectors leaving them) meet or
            cross another's in a junction, 0 to 9: the lower yields to the higher (a minor road
            0 at a main road 1; a roundabout's entries 0 at its ring 1). A connector takes the
            priority of the road it leaves.
    """

    name: str
    segments: tuple[Segment, ...]
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lanes: int = 1
    lanes_back: int = 0
    lane_width: float = 3.5
    centre: str = "solid"
    loop: bool = False
    priority: int = 0


@dataclass(frozen=True)
class _Lane:
    road: str
    index: int  # >= 0 along the reference direction, < 0 against it
    d: float  # centre's lateral position on its road (m, right of the reference line)
    direction: int  # +1 along the reference line, -1 against it
    length: float  # m along its centre
    left: str  # marking on its left, in its direction of travel
    right: str
    starts: np.ndarray = field(repr=False)  # m along the centre, in the reference direction,
    # from the road's start to each segment's start


class Network:
    """Roads and the links between their lanes, validated.

    Args:
        roads: the roads (:class:`RoadSpec`).
        links: ``(from_lane, to_lane)`` names: the end of ``from_lane`` meets the start of
            ``to_lane``. A loop road links its own lanes.

    Raises:
        NetworkError: a duplicate or bad name, a lane that does not exist, lane ends that do not
            meet, a loop that does not close, a lane on an arc tighter than its offset.
    """

    def __init__(self, roads: Sequence[RoadSpec], links: Iterable[tuple[str, str]] = ()) -> None:
        roads = list(roads)
        if not roads:
            raise NetworkError("a network needs at least one road")
        if len(roads) > MAX_ROADS:
            raise NetworkError(f"a network has at most {MAX_ROADS:,} roads, got {len(roads):,}")
        self.specs: dict[str, RoadSpec] = {}
        self.roads: dict[str, Road] = {}
        lanes: list[_Lane] = []
        for i, spec in enumerate(roads):
            try:
                _check_spec(spec, self.specs)
            except NetworkError as err:
                raise NetworkError(str(err), ("roads", i)) from None
            try:
                road = Road(list(spec.segments), spec.lanes, spec.lane_width, start=spec.start,
                            closed=spec.loop)
            except ClosureError as err:
                message = f"road {spec.name!r} is a loop, but {err}"
                raise NetworkError(message, ("roads", i)) from None
            self.specs[spec.name] = spec
            self.roads[spec.name] = road
            indices = list(range(spec.lanes)) + [-1 - i for i in range(spec.lanes_back)]
            lanes += [_make_lane(spec, road, i) for i in indices]
        self._lanes = lanes
        self.lanes: tuple[str, ...] = tuple(f"{ln.road}:{ln.index}" for ln in lanes)
        self._ids = {name: i for i, name in enumerate(self.lanes)}
        self._successors: list[list[int]] = [[] for _ in lanes]
        self._predecessors: list[list[int]] = [[] for _ in lanes]
        for spec in roads:
            if spec.loop:
                for i, ln in enumerate(lanes):
                    if ln.road == spec.name:
                        self._add_link(i, i)
        for j, (a, b) in enumerate(links):
            try:
                ia, ib = self.lane(a), self.lane(b)
                self._check_meet(ia, ib)
            except NetworkError as err:
                raise NetworkError(str(err), ("links", j)) from None
            self._add_link(ia, ib)

    # ------------------------------------------------------------------ lanes by name
    def lane(self, name: str | tuple[str, int]) -> int:
        """The global id of lane ``"road:lane"`` (or ``(road, lane)``)."""
        if isinstance(name, tuple):
            name = f"{name[0]}:{name[1]}"
        if name in self._ids:
            return self._ids[name]
        road, _, idx = str(name).rpartition(":")
        if road not in self.specs:
            raise NetworkError(
                f"lane {name!r}: no road {road!r} (lanes are named 'road:lane'; roads: "
                f"{', '.join(sorted(self.specs))})"
            )
        spec = self.specs[road]
        raise NetworkError(
            f"lane {name!r}: road {road!r} has lanes {_lane_range(spec)}, not {idx!r}"
        )

    def successors(self, lane: int) -> tuple[int, ...]:
        """Lanes whose start the end of ``lane`` meets."""
        return tuple(self._successors[lane])

    def neighbours(self, lane: int) -> tuple[int, int]:
        """The lanes beside ``lane`` on its road that travel its way: ``(left, right)`` in its
        direction of travel, -1 where there is none (the road's edge or the centre line of a
        two-way road)."""
        ln = self._lanes[lane]
        spec = self.specs[ln.road]
        # Forward lanes 0.. run left to right; lanes -1, -2, .. run the other way, -1 nearest
        # the centre, so their left is toward -1 too.
        left, right = ln.index - 1, ln.index + 1
        if ln.index < 0:
            left, right = ln.index + 1, ln.index - 1
        out = []
        for k in (left, right):
            same_way = (k >= 0) == (ln.index >= 0)
            ok = same_way and (-spec.lanes_back <= k < spec.lanes)
            out.append(self._ids[f"{ln.road}:{k}"] if ok else -1)
        return out[0], out[1]

    def predecessors(self, lane: int) -> tuple[int, ...]:
        """Lanes whose end meets the start of ``lane``."""
        return tuple(self._predecessors[lane])

    def lane_road(self, lane: int) -> str:
        return self._lanes[lane].road

    def lane_length(self, lane: int) -> float:
        """Length (m) of the lane's centre line."""
        return self._lanes[lane].length

    def lane_direction(self, lane: int) -> int:
        """+1 along its road's reference line, -1 against it."""
        return self._lanes[lane].direction

    def markings(self, lane: int) -> tuple[str, str]:
        """The lane's ``(left, right)`` markings in its direction of travel."""
        ln = self._lanes[lane]
        return ln.left, ln.right

    def priority(self, lane: int) -> int:
        """Right of way of ``lane``'s road (:class:`RoadSpec`'s ``priority``)."""
        return self.specs[self.lane_road(lane)].priority

    def lane_width(self, lane: int) -> float:
        return self.specs[self._lanes[lane].road].lane_width

    # ------------------------------------------------------------------ coordinates
    def lane_to_world(self, lane, u, offset=0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World ``(x, y, heading)`` of points ``u`` (m, 0 to the lane's length) along lanes
        ``lane`` (global ids) at ``offset`` (m, to the right of the direction of travel);
        arrays broadcast together, heading in the direction of travel (:func:`lane_point`)."""
        lane, u, offset = np.broadcast_arrays(np.asarray(lane, dtype=np.int64),
                                              np.asarray(u, dtype=np.float64),
                                              np.asarray(offset, dtype=np.float64))
        if lane.size and not (0 <= lane.min() and lane.max() < len(self._lanes)):
            raise NetworkError(f"no lane {int(lane.min() if lane.min() < 0 else lane.max())}: "
                               f"ids run 0 to {len(self._lanes) - 1}")
        length = self.arrays.lane_length[lane]
        bad = ~((u >= -1e-9) & (u <= length + 1e-9))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            j = int(lane.ravel()[i])
            raise NetworkError(f"lane {self.lanes[j]}: u must lie from 0 to its length "
                               f"{self._lanes[j].length:.3f} m, got {u.ravel()[i]:g}")
        out = _lane_points(self.arrays, lane.ravel(), u.ravel(), offset.ravel())
        return tuple(a.reshape(lane.shape) for a in out)

    def to_lane(self, x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lane each world point ``(x, y)`` is on, with its ``u`` and ``offset``
        (:func:`locate`).

        A point is on a lane when it lies within the lane's strip (half a lane width either
        side of the centre) between the lane's ends. Where several lanes hold a point (inside a
        junction, connectors overlap) the one whose centre is nearest wins, ties to the lower
        id. Points on no lane get lane -1 and NaN coordinates. Shapes broadcast together; cost
        is ``O(points × segments)``.
        """
        x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64),
                                   np.asarray(y, dtype=np.float64))
        lane, u, offset = _locate_many(self.arrays, x.ravel(), y.ravel())
        return lane.reshape(x.shape), u.reshape(x.shape), offset.reshape(x.shape)

    def start_pose(self, lane: int) -> tuple[float, float, float]:
        """``(x, y, heading)`` where ``lane`` starts, on its centre, heading along it."""
        x, y, h = self.lane_to_world(lane, 0.0)
        return float(x), float(y), float(h)

    def end_pose(self, lane: int) -> tuple[float, float, float]:
        """``(x, y, heading)`` where ``lane`` ends."""
        x, y, h = self.lane_to_world(lane, self._lanes[lane].length)
        return float(x), float(y), float(h)

    @cached_property
    def arrays(self) -> NetworkArrays:
        """The network as the compiled kernels take it (:func:`lane_point`, :func:`locate`)."""
        return _arrays(self)

    # ------------------------------------------------------------------ files
    @classmethod
    def from_dict(cls, table: Mapping, where: str = "network") -> Network:
        """A network from a scenario file's ``[network]`` table (see README, "Road
        networks"); ``where`` prefixes every error's path (e.g. ``network.roads[2].lanes``).

        Keys: ``lane_width`` (m, default for every road), ``roads`` (a list of tables:
        ``name``, ``start = [x, y, heading_deg]``, ``segments`` (``{length, radius}`` as a
        single road's ``road``), ``lanes``, ``lanes_back``, ``lane_width``, ``centre``,
        ``loop``, ``priority``), ``links`` (``[from, to]`` lane-name pairs that already meet) and
        ``connect`` (``[from, to]`` pairs to join with a connector road).
        """
        if not isinstance(table, Mapping):
            raise NetworkError(f"{where} must be a table, got {type(table).__name__}")
        known = {"lane_width", "roads", "links", "connect"}
        _unknown(table, known, where)
        builder = NetworkBuilder(lane_width=_number(table, "lane_width", where, 2, 6, 3.5))
        roads = table.get("roads")
        if not isinstance(roads, list) or not roads:
            raise NetworkError(f"{where}.roads must be a non-empty list of road tables")
        for i, road in enumerate(roads):
            at = f"{where}.roads[{i}]"
            if not isinstance(road, Mapping):
                raise NetworkError(f"{at} must be a table, got {type(road).__name__}")
            _unknown(road, {"name", "start", "segments", "lanes", "lanes_back", "lane_width",
                            "centre", "loop", "priority"}, at)
            start = road.get("start", [0.0, 0.0, 0.0])
            if (not isinstance(start, list) or len(start) != 3
                    or not all(_is_number(v) and abs(v) <= 1e6 for v in start)):
                raise NetworkError(f"{at}.start must be [x, y, heading] (m, m, degrees), each "
                                   f"within ±1e6, got {start!r}")
            builder.road(
                road.get("name"),
                _segments(road.get("segments"), f"{at}.segments"),
                start=(float(start[0]), float(start[1]), math.radians(start[2])),
                lanes=road.get("lanes", 1),
                lanes_back=road.get("lanes_back", 0),
                lane_width=road.get("lane_width"),
                centre=road.get("centre", "solid"),
                loop=road.get("loop", False),
                priority=road.get("priority", 0),
            )
        for key, add in (("links", builder.link), ("connect", builder.connect)):
            pairs = table.get(key, [])
            if not isinstance(pairs, list):
                raise NetworkError(f"{where}.{key} must be a list of [from, to] lane names")
            for j, pair in enumerate(pairs):
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(isinstance(p, str) for p in pair)):
                    raise NetworkError(f"{where}.{key}[{j}] must be [from, to], two lane names "
                                       f"like \"west:0\", got {pair!r}")
                add(pair[0], pair[1])
        try:
            return builder.build()
        except NetworkError as err:
            if err.path is None:
                raise
            raise NetworkError(f"{where}.{err.path[0]}[{err.path[1]}]: {err}") from None

    # ------------------------------------------------------------------ internals
    def _add_link(self, a: int, b: int) -> None:
        if b not in self._successors[a]:
            self._successors[a].append(b)
            self._predecessors[b].append(a)

    def _check_meet(self, a: int, b: int) -> None:
        xa, ya, ha = self.end_pose(a)
        xb, yb, hb = self.start_pose(b)
        gap, turn = pose_miss((xa, ya, ha), (xb, yb, hb))
        if gap > MEET_DISTANCE or turn > MEET_HEADING:
            raise NetworkError(
                f"link {self.lanes[a]} -> {self.lanes[b]}: the end of {self.lanes[a]} at "
                f"({xa:.2f}, {ya:.2f}) heading {math.degrees(ha):.1f}° does not meet the start "
                f"of {self.lanes[b]} at ({xb:.2f}, {yb:.2f}) heading {math.degrees(hb):.1f}° "
                f"(gap {gap:.2f} m, turn {math.degrees(turn):.1f}°; linked lanes must meet "
                f"within {MEET_DISTANCE} m and {math.degrees(MEET_HEADING):.1f}°: join them with "
                "a connector instead)"
            )


class NetworkBuilder:
    """Builds a :class:`Network` in Python, road by road::

        net = NetworkBuilder(lane_width=3.5)
        net.road("west", [Segment(100.0, 0.0)], start=(-110.0, -1.75, 0.0), lanes=1,
                 lanes_back=1)
        net.road("north", [Segment(100.0, 0.0)], start=(1.75, 10.0, math.pi / 2), lanes=1,
                 lanes_back=1)
        net.connect("west:0", "north:0")  # a left turn, bent by connector_segments
        network = net.build()
    """

    def __init__(self, lane_width: float = 3.5) -> None:
        self.lane_width = lane_width
        self._roads: list[RoadSpec] = []
        self._links: list[tuple[str, str]] = []
        self._connections: list[tuple[str, str, str | None]] = []

    def road(self, name, segments, start=(0.0, 0.0, 0.0), lanes=1, lanes_back=0,
             lane_width=None, centre="solid", loop=False, priority=0) -> NetworkBuilder:
        """Add a road (:class:`RoadSpec`'s arguments; ``lane_width`` defaults to the
        builder's)."""
        width = self.lane_width if lane_width is None else lane_width
        self._roads.append(RoadSpec(name, tuple(segments), tuple(start), lanes, lanes_back,
                                    width, centre, loop, priority))
        return self

    def link(self, a: str, b: str) -> NetworkBuilder:
        """The end of lane ``a`` meets the start of lane ``b`` as placed."""
        self._links.append((a, b))
        return self

    def connect(self, a: str, b: str, name: str | None = None) -> NetworkBuilder:
        """Join the end of lane ``a`` to the start of lane ``b`` with a one-lane connector road
        (named ``name``, default ``"a>b"`` with ``:`` as ``.``), bent by
        :func:`connector_segments`; the lane width is ``a``'s."""
        self._connections.append((a, b, name))
        return self

    def build(self) -> Network:
        """The validated network (raises :class:`NetworkError`)."""
        base = Network(self._roads, self._links)
        roads, links = list(self._roads), list(self._links)
        for j, (a, b, name) in enumerate(self._connections):
            try:
                ia, ib = base.lane(a), base.lane(b)
                p0, p1 = base.end_pose(ia), base.start_pose(ib)
                cname = name or f"{a}>{b}".replace(":", ".")
                roads.append(_connector(cname, connector_segments(p0, p1), p0,
                                        base.lane_width(ia),
                                        base.specs[base.lane_road(ia)].priority))
            except NetworkError as err:
                raise NetworkError(f"connect {a} -> {b}: {err}", ("connect", j)) from None
            links += [(a, f"{cname}:0"), (f"{cname}:0", b)]
        try:
            return Network(roads, links)
        except NetworkError as err:
            # A road or link past the user's own is a connector's: name the connect entry.
            kind, k = err.path or ("", -1)
            n_roads, n_links = len(self._roads), len(self._links)
            if kind == "roads" and k >= n_roads:
                raise NetworkError(str(err), ("connect", k - n_roads)) from None
            if kind == "links" and k >= n_links:
                raise NetworkError(str(err), ("connect", (k - n_links) // 2)) from None
            raise


def connector_segments(p0: tuple[float, float, float],
                       p1: tuple[float, float, float]) -> list[Segment]:
    """Straight and arc pieces that lead from pose ``p0`` to pose ``p1`` (``(x, y, heading)``,
    m and rad), tangent at both ends.

    A turn (headings differ by less than 180°) is a fillet: straight, one arc, straight, where
    the two poses' lines of travel cross ahead of ``p0`` and behind ``p1``. Parallel poses are
    joined straight (in line), by an S of two opposite arcs (side by side, ``p1`` ahead), or for
    opposite headings by a half circle and a straight (a U-turn).

    Raises:
        NetworkError: when no such path exists (``p1`` lies behind ``p0``'s line of travel
            for a turn, or behind it for parallel poses), naming the reason.
    """
    x0, y0, h0 = p0
    x1, y1, h1 = p1
    turn = math.remainder(h1 - h0, math.tau)
    c0, s0 = math.cos(h0), math.sin(h0)
    dx, dy = x1 - x0, y1 - y0
    along = dx * c0 + dy * s0  # m ahead of p0
    left = -dx * s0 + dy * c0  # m to p0's left
    eps = 1e-9
    # Headings within the links' tolerance count as parallel (a quarter circle typed to a few
    # digits is already 1e-6 rad off), and leftover straights shorter than it are dropped.
    if abs(turn) < MEET_HEADING:
        if along <= eps:
            raise NetworkError(f"the target lies {-along:.2f} m behind the start")
        if abs(left) < MEET_DISTANCE:
            return [Segment(along, 0.0)]
        phi = 2.0 * math.atan2(abs(left), along)
        r = along / (2.0 * math.sin(phi))
        k = math.copysign(1.0 / r, left)
        return [Segment(r * phi, k), Segment(r * phi, -k)]
    if abs(abs(turn) - math.pi) < MEET_HEADING:
        if abs(left) < MEET_DISTANCE:
            raise NetworkError("a U-turn needs the target beside the start, not in line")
        k = math.copysign(2.0 / abs(left), left)
        pieces = [Segment(math.pi * abs(left) / 2.0, k)]
        if along > MEET_DISTANCE:
            return [Segment(along, 0.0), *pieces]
        if along < -MEET_DISTANCE:
            return [*pieces, Segment(-along, 0.0)]
        return pieces
    c1, s1 = math.cos(h1), math.sin(h1)
    # p0 + a t0 = p1 - b t1, solved for a and b.
    det = c0 * s1 - s0 * c1
    a = (dx * s1 - dy * c1) / det
    b = (c0 * dy - s0 * dx) / det
    if a <= eps or b <= eps:
        raise NetworkError(
            f"the lines of travel cross {a:.2f} m ahead of the start and {b:.2f} m before the "
            "target; a turn needs both positive"
        )
    tangent = min(a, b)
    r = tangent / math.tan(abs(turn) / 2.0)
    pieces = []
    if a - tangent > MEET_DISTANCE:
        pieces.append(Segment(a - tangent, 0.0))
    pieces.append(Segment(r * abs(turn), math.copysign(1.0 / r, turn)))
    if b - tangent > MEET_DISTANCE:
        pieces.append(Segment(b - tangent, 0.0))
    return pieces


# ---------------------------------------------------------------------- helpers
def _connector(name: str, centre: list[Segment], p0: tuple[float, float, float],
               width: float, priority: int) -> RoadSpec:
    """A one-lane road whose lane centre follows ``centre`` from ``p0``.

    A lane's centre lies half a lane right of its road's reference line, so the reference line
    is the path's parallel half a lane to its left: the same turns, each arc's length scaled by
    ``1 - k h`` and its curvature by ``1 / (1 - k h)`` (``h`` the half width), which is what
    :func:`_make_lane` inverts.
    """
    h = 0.5 * width
    reference = []
    for seg in centre:
        scale = 1.0 - seg.curvature * h
        if scale <= 0.0:
            raise NetworkError(f"its path turns left on a radius of {1 / seg.curvature:.2f} m, "
                               f"tighter than half a lane ({h:g} m)")
        reference.append(Segment(seg.length * scale, seg.curvature / scale))
    x, y, hd = p0
    start = (x - h * math.sin(hd), y + h * math.cos(hd), hd)  # left of heading: (-sin, cos)
    return RoadSpec(name, tuple(reference), start, 1, 0, width, "solid", False, priority)


def _lane_range(spec: RoadSpec) -> str:
    parts = []
    if spec.lanes:
        parts.append(f"0 to {spec.lanes - 1}" if spec.lanes > 1 else "0")
    if spec.lanes_back:
        parts.append(f"-1 to -{spec.lanes_back}" if spec.lanes_back > 1 else "-1")
    return " and ".join(parts)


def _make_lane(spec: RoadSpec, road: Road, index: int) -> _Lane:
    w = spec.lane_width
    d = (index + 0.5) * w
    factor = 1.0 + road.seg_curv * d  # lane length per metre of reference line
    # Both edges of the lane must stay on this side of every arc's centre.
    inner = np.minimum(1.0 + road.seg_curv * (d - 0.5 * w), 1.0 + road.seg_curv * (d + 0.5 * w))
    if np.any(inner <= 0.0):
        i = int(np.argmax(inner <= 0.0))
        edge = abs(d) + 0.5 * w
        raise NetworkError(
            f"road {spec.name!r}: segment {i} has radius {1.0 / abs(road.seg_curv[i]):.2f} m, but "
            f"lane {index} reaches {edge:.2f} m to that side: every radius must exceed the "
            "lanes' reach"
        )
    forward = np.concatenate([[0.0], np.cumsum(road.seg_length * factor)])
    direction = 1 if index >= 0 else -1
    length = float(forward[-1])
    # Boundaries k = -lanes_back .. lanes at d = k w: edges solid, the centre line of a
    # two-way road as specified, the rest dashed.
    def marking(k: int) -> str:
        if k in (-spec.lanes_back, spec.lanes):
            return "solid"
        if k == 0 and spec.lanes_back and spec.lanes:
            return spec.centre
        return "dashed"

    left, right = (marking(index), marking(index + 1)) if direction > 0 else (
        marking(index + 1), marking(index))
    return _Lane(spec.name, index, d, direction, length, left, right, forward[:-1])


def _check_spec(spec: RoadSpec, seen: Mapping[str, RoadSpec]) -> None:
    name = spec.name
    if not isinstance(name, str) or not name or not all(
        ch.isalnum() or ch in "_-.>" for ch in name
    ):
        raise NetworkError(f"road name {name!r}: use letters, digits and '_', '-', '.', '>'")
    if name in seen:
        raise NetworkError(f"road name {name!r} is used twice")
    where = f"road {name!r}"
    for key in ("lanes", "lanes_back"):
        v = getattr(spec, key)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_LANES:
            raise NetworkError(f"{where}: {key} must be an integer 0 to {MAX_LANES}, got {v!r}")
    if spec.lanes + spec.lanes_back == 0:
        raise NetworkError(f"{where}: needs at least one lane (lanes or lanes_back)")
    if not _is_number(spec.lane_width) or not 2 <= spec.lane_width <= 6:
        raise NetworkError(f"{where}: lane_width must be 2 to 6 m, got {spec.lane_width!r}")
    if spec.centre not in MARKINGS:
        raise NetworkError(f"{where}: centre must be one of {', '.join(MARKINGS)}, got "
                           f"{spec.centre!r}")
    if not isinstance(spec.loop, bool):
        raise NetworkError(f"{where}: loop must be true or false, got {spec.loop!r}")
    if (isinstance(spec.priority, bool) or not isinstance(spec.priority, int | np.integer)
            or not 0 <= spec.priority <= 9):
        raise NetworkError(f"{where}: priority must be an integer from 0 to 9, got "
                           f"{spec.priority!r}")
    if len(spec.start) != 3 or not all(_is_number(v) and abs(v) <= 1e6 for v in spec.start):
        raise NetworkError(f"{where}: start must be (x, y, heading), finite, within ±1e6, got "
                           f"{spec.start!r}")
    if not spec.segments:
        raise NetworkError(f"{where}: needs at least one segment")
    for i, seg in enumerate(spec.segments):
        if not isinstance(seg, Segment):
            raise NetworkError(f"{where}: segment {i} must be a Segment, got {seg!r}")
        if not _is_number(seg.length) or not 0.01 <= seg.length <= 100_000:
            raise NetworkError(f"{where}: segment {i} length must be 0.01 to 100,000 m, got "
                               f"{seg.length!r}")
        if not _is_number(seg.curvature) or abs(seg.curvature) > 1.0:
            raise NetworkError(f"{where}: segment {i} curvature must be within ±1 1/m (radius "
                               f"of 1 m or more), got {seg.curvature!r}")


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _number(table: Mapping, key: str, where: str, lo: float, hi: float, default: float) -> float:
    v = table.get(key, default)
    if not _is_number(v) or not lo <= v <= hi:
        raise NetworkError(f"{where}.{key} must be a number from {lo:g} to {hi:g}, got {v!r}")
    return float(v)


def _unknown(table: Mapping, known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        close = difflib.get_close_matches(str(extra[0]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NetworkError(f"{where}: unknown key(s) {', '.join(map(repr, extra))}{hint}; "
                           f"accepted: {', '.join(sorted(known))}")


def _segments(value, where: str) -> list[Segment]:
    if not isinstance(value, list) or not value:
        raise NetworkError(f"{where} must be a non-empty list of {{length, radius}} tables")
    out = []
    for i, seg in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(seg, Mapping):
            raise NetworkError(f"{at} must be a table {{length, radius}}, got {seg!r}")
        _unknown(seg, {"length", "radius"}, at)
        length = seg.get("length")
        if not _is_number(length) or not 0.01 <= length <= 100_000:
            raise NetworkError(f"{at}.length must be 0.01 to 100,000 m, got {length!r}")
        radius = seg.get("radius")
        if radius is None:
            out.append(Segment(float(length), 0.0))
            continue
        if not _is_number(radius) or abs(radius) < 1.0:
            raise NetworkError(f"{at}.radius must be a number with |radius| >= 1 m (+ left, - "
                               f"right; omit for straight), got {radius!r}")
        out.append(Segment(float(length), 1.0 / float(radius)))
    return out


# ---------------------------------------------------------------------- compiled geometry
class NetworkArrays(NamedTuple):
    """The network as compiled code reads it (:attr:`Network.arrays`): every road's segments in
    one set of arrays, and per lane its road, offset, direction and exact length table."""

    seg: tuple  # (s0 within its road, length, curvature, x0, y0, h0), each (segments,)
    road_seg: np.ndarray  # (roads + 1,) int: road r's segments are road_seg[r] .. road_seg[r+1]-1
    road_lanes: np.ndarray  # (roads,) int: lanes along the reference line
    road_back: np.ndarray  # (roads,) int: lanes against it
    road_first_lane: np.ndarray  # (roads,) int: global id of the road's lane 0
    road_width: np.ndarray  # (roads,) lane width (m)
    lane_road: np.ndarray  # (lanes,) int
    lane_d: np.ndarray  # (lanes,) centre's offset right of the reference line (m)
    lane_dir: np.ndarray  # (lanes,) int: +1 along the reference line, -1 against it
    lane_length: np.ndarray  # (lanes,) m
    lane_cum_start: np.ndarray  # (lanes,) int: where the lane's entries of lane_cum begin
    lane_cum: np.ndarray  # per lane, one entry per segment of its road: the distance (m) along
    # the lane's centre, in the reference direction, from the road's start to the segment's
    seg_trig: np.ndarray  # (segments, 2): cos and sin of each segment's start heading (h0), as
    # the kernels compute them (segment_trig), read instead of computed where they are needed


def _arrays(net: Network) -> NetworkArrays:
    names = list(net.roads)
    seg = [[] for _ in range(6)]
    road_seg = [0]
    for name in names:
        road = net.roads[name]
        for k, a in enumerate(road.geometry):
            seg[k].extend(a.tolist())
        road_seg.append(road_seg[-1] + len(road.segments))
    specs = [net.specs[n] for n in names]
    first, lanes_so_far = [], 0
    for spec in specs:
        first.append(lanes_so_far)
        lanes_so_far += spec.lanes + spec.lanes_back
    road_id = {n: i for i, n in enumerate(names)}
    lanes = net._lanes
    cum_start = np.concatenate([[0], np.cumsum([len(ln.starts) for ln in lanes])[:-1]])
    return NetworkArrays(
        tuple(np.array(a, dtype=np.float64) for a in seg),
        np.array(road_seg, dtype=np.int64),
        np.array([s.lanes for s in specs], dtype=np.int64),
        np.array([s.lanes_back for s in specs], dtype=np.int64),
        np.array(first, dtype=np.int64),
        np.array([s.lane_width for s in specs], dtype=np.float64),
        np.array([road_id[ln.road] for ln in lanes], dtype=np.int64),
        np.array([ln.d for ln in lanes], dtype=np.float64),
        np.array([ln.direction for ln in lanes], dtype=np.int64),
        np.array([ln.length for ln in lanes], dtype=np.float64),
        cum_start.astype(np.int64),
        np.concatenate([ln.starts for ln in lanes]),
        segment_trig(np.array(seg[5], dtype=np.float64)),
    )


@kernel
def lane_reference_s(net, lane, u):
    """Segment index (into ``net.seg``) and reference-line ``s`` of the point ``u`` (m, 0 to the
    lane's length) along ``lane``."""
    r = net.lane_road[lane]
    d = net.lane_d[lane]
    fwd = u if net.lane_dir[lane] > 0 else net.lane_length[lane] - u
    s0, _, curv, _, _, _ = net.seg
    first, last = net.road_seg[r], net.road_seg[r + 1] - 1
    c0 = net.lane_cum_start[lane] - first  # lane_cum[c0 + i] belongs to segment i
    i = first
    while i < last and net.lane_cum[c0 + i + 1] <= fwd:
        i += 1
    return i, s0[i] + (fwd - net.lane_cum[c0 + i]) / (1.0 + curv[i] * d)


@kernel
def lane_point(net, lane, u, offset):
    """World ``(x, y, heading)`` of the point ``u`` (m) along ``lane`` at ``offset`` (m, right of
    the direction of travel); heading along the direction of travel, within [-π, π)."""
    i, s = lane_reference_s(net, lane, u)
    return _lane_point(net, lane, i, s, offset, net.seg_trig[i, 0], net.seg_trig[i, 1])


@njit(cache=True)
def segment_trig(h0: np.ndarray) -> np.ndarray:
    """``(segments, 2)``: the cosine and sine of each start heading ``h0`` (rad), computed as
    the kernels compute a heading's (one ``sincos`` call each: the same bits; tested against
    computing them in place, tests/test_network_fastpaths.py)."""
    out = np.zeros((h0.shape[0], 2))
    for i in range(h0.shape[0]):
        out[i, 0], out[i, 1] = math.cos(h0[i]), math.sin(h0[i])
    return out


@kernel
def _lane_point(net, lane, i, s, offset, c0, s0i):
    """:func:`lane_point` at segment ``i`` and reference-line ``s`` (:func:`lane_reference_s`)
    with ``c0, s0i`` the cosine and sine of the segment's start heading."""
    s0, _, curv, x0, y0, h0 = net.seg
    d = net.lane_d[lane] + net.lane_dir[lane] * offset
    k, du = curv[i], s - s0[i]
    # road.advance, written out to use its sine and cosine for the offset too where they are
    # of the same number (the same function of the same double: the same bits, a call less).
    if abs(k * du) < 1e-9:
        x, y, h = x0[i] + du * c0, y0[i] + du * s0i, h0[i] + k * du
        if h == h0[i] and h != 0.0:  # equal and non-zero: the same double
            sn, cs = s0i, c0
        else:
            sn, cs = math.sin(h), math.cos(h)
        x, y = x + d * sn, y - d * cs
    else:
        h = h0[i] + k * du
        sn, cs = math.sin(h), math.cos(h)
        x = x0[i] + (sn - s0i) / k
        y = y0[i] - (cs - c0) / k
        x, y = x + d * sn, y - d * cs
    if net.lane_dir[lane] < 0:
        h += math.pi
    return x, y, wrap_heading(h)


@kernel
def road_foot(net, r, px, py):
    """The road frame of ``(px, py)`` on road ``r``: ``(s, d, inside)``, the nearest foot on its
    reference line and the signed offset (m, right of it); ``inside`` is False when the point lies
    before the road's start or beyond its end."""
    s0, length, curv, x0, y0, h0 = net.seg
    first, last = net.road_seg[r], net.road_seg[r + 1] - 1
    best_gap, best_s, best_d, inside = np.inf, 0.0, 0.0, False
    for i in range(first, last + 1):
        k = curv[i]
        c0, s0i = net.seg_trig[i, 0], net.seg_trig[i, 1]
        raw = segment_foot_trig(net.seg, i, px, py, c0, s0i)
        u = min(max(raw, 0.0), length[i])
        # road.advance written out with the table's start cosine and sine; on an arc its
        # sine and cosine of the foot's heading serve the offset below (the same function of
        # the same double: the same bits).
        if abs(k * u) < 1e-9:
            fx, fy, fh = x0[i] + u * c0, y0[i] + u * s0i, h0[i] + k * u
            arc = False
            sn = cs = 0.0
        else:
            fh = h0[i] + k * u
            sn, cs = math.sin(fh), math.cos(fh)
            fx, fy = x0[i] + (sn - s0i) / k, y0[i] - (cs - c0) / k
            arc = True
        gap = math.hypot(px - fx, py - fy)
        if gap < best_gap:
            best_gap, best_s = gap, s0[i] + u
            if not arc:
                sn, cs = math.sin(fh), math.cos(fh)
            best_d = (px - fx) * sn - (py - fy) * cs
            # Clamping at a joint inside the road is the outside of a bend; at its two ends it
            # is off the road.
            inside = not ((i == first and raw < -1e-9) or (i == last and raw > length[i] + 1e-9))
    return best_s, best_d, inside


@kernel
def lane_u_at(net, lane, s):
    """Distance along ``lane`` at reference-line ``s`` of its road."""
    s0, _, curv, _, _, _ = net.seg
    r = net.lane_road[lane]
    first, last = net.road_seg[r], net.road_seg[r + 1] - 1
    i = first
    while i < last and s0[i + 1] <= s:
        i += 1
    c0 = net.lane_cum_start[lane] - first
    fwd = net.lane_cum[c0 + i] + (s - s0[i]) * (1.0 + curv[i] * net.lane_d[lane])
    return fwd if net.lane_dir[lane] > 0 else net.lane_length[lane] - fwd


@kernel
def locate(net, px, py):
    """The lane the world point ``(px, py)`` is on and its ``(lane, u, offset)``: as
    :meth:`Network.to_lane` (nearest lane centre among the lanes whose strip holds the point,
    ties to the lower id); ``(-1, nan, nan)`` on no lane."""
    best, best_off, best_s, best_d = -1, np.inf, 0.0, 0.0
    for r in range(net.road_lanes.shape[0]):
        s, d, inside = road_foot(net, r, px, py)
        if not inside:
            continue
        w = net.road_width[r]
        idx = int(math.floor(d / w))
        if idx < -net.road_back[r] or idx >= net.road_lanes[r]:
            continue
        off = abs(d - (idx + 0.5) * w)
        gid = net.road_first_lane[r] + (idx if idx >= 0 else net.road_lanes[r] - 1 - idx)
        if off < best_off or (off == best_off and gid < best):
            best, best_off, best_s, best_d = gid, off, s, d
    if best < 0:
        return -1, np.nan, np.nan
    return best, lane_u_at(net, best, best_s), (best_d - net.lane_d[best]) * net.lane_dir[best]


@njit(cache=True)
def _lane_points(net, lane, u, offset):
    n = lane.shape[0]
    x, y, h = np.empty(n), np.empty(n), np.empty(n)
    for j in range(n):
        x[j], y[j], h[j] = lane_point(net, lane[j], u[j], offset[j])
    return x, y, h


@njit(cache=True)
def _locate_many(net, px, py):
    n = px.shape[0]
    lane, u, offset = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)
    for j in range(n):
        lane[j], u[j], offset[j] = locate(net, px[j], py[j])
    return lane, u, offset


# ------------------------------------------------------------------ one road as a network
def network_of_road(road: Road, name: str = "road") -> Network:
    """``road`` (a one-road world's :class:`~lanesim.sim.road.Road`: its ramps, closures,
    oncoming lanes and loop) as a network: the one-road scenarios are special cases of a
    network.

    The road is cut where any lane starts or ends; each piece becomes one road of the lanes
    that run all along it (``"{name}{i}"``, or ``"{name}{i}_{j}"`` for the j-th group where a
    closed lane in the middle splits them), its reference line the road's own shifted right to
    the leftmost such lane (an arc's offset is an arc of radius larger or smaller by the
    shift). Lanes running on from piece to piece are linked; a ramp is a lane that opens (no
    predecessor), a closure one that ends (no successor); oncoming lanes are the pieces'
    ``lanes_back``. A lane keeps its position: lane ``k`` of the road at ``s`` is the network
    lane whose strip holds ``road.to_world(s, (k + 0.5) * lane_width)``. The simulator keeps
    running one-road scenarios on :mod:`lanesim.sim.world` (docs/design.md says why)."""
    w, eps = float(road.lane_width), 1e-6
    back = int(np.sum(road.lane_direction < 0))
    if np.any(road.lane_direction[:back] > 0):
        raise NetworkError(
            "network_of_road: a network road's oncoming lanes are its leftmost; this road's "
            f"lane directions are {road.lane_direction.tolist()} (left to right)")
    if road.closed:  # every lane runs the whole loop
        spec = RoadSpec(name, tuple(_offset_segments(road.segments, back * w)),
                        _offset_pose(road.start, back * w), road.lanes - back, back, w,
                        loop=True)
        return Network([spec])
    cuts = sorted({0.0, float(road.length)} | {
        float(v) for v in np.concatenate([road.lane_start, road.lane_end])
        if eps < v < road.length - eps})
    specs, pieces = [], []
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        present = [k for k in range(back, road.lanes)
                   if road.lane_start[k] <= a + eps and road.lane_end[k] >= b - eps]
        groups = []  # runs of adjacent lanes
        for k in present:
            if groups and groups[-1][-1] == k - 1:
                groups[-1].append(k)
            else:
                groups.append([k])
        segments = _segments_between(road.segments, a, b)
        x, y, h, _ = (float(v) for v in road.reference_pose(np.array(a)))
        if back and not (groups and groups[0][0] == back):
            groups.insert(0, [])  # the oncoming lanes (they run the whole road) on their own
        names = {}  # road lane -> network lane name
        for j, group in enumerate(groups):
            first = group[0] if group else back
            lanes_back = back if first == back else 0
            piece = f"{name}{i}" if len(groups) == 1 else f"{name}{i}_{j}"
            # The piece's reference line runs along the left edge of its forward lane `first`
            # (between the directions where it has oncoming lanes).
            specs.append(RoadSpec(piece, tuple(_offset_segments(segments, first * w)),
                                  _offset_pose((x, y, h), first * w), len(group), lanes_back, w))
            for k in group:
                names[k] = f"{piece}:{k - first}"
            for k in range(lanes_back):  # road lane back - 1 is the nearest the line, -1
                names[k] = f"{piece}:{k - back}"
        pieces.append(names)
    links = []
    for before, after in zip(pieces[:-1], pieces[1:], strict=True):
        for k, lane in before.items():
            if k in after:  # oncoming lanes run from the later piece to the earlier
                links.append((lane, after[k]) if k >= back else (after[k], lane))
    return Network(specs, links)


def _offset_pose(pose, d: float) -> tuple[float, float, float]:
    """``pose`` moved ``d`` m to its right."""
    x, y, h = pose
    return (x + d * math.sin(h), y - d * math.cos(h), h)


def _offset_segments(segments, d: float) -> list[Segment]:
    """The reference line ``segments`` shifted ``d`` m to the right: a straight stays as long,
    an arc of curvature ``k`` becomes one of ``k / (1 + k d)``, ``(1 + k d)`` times as long."""
    return [Segment(s.length * (1.0 + s.curvature * d), s.curvature / (1.0 + s.curvature * d))
            for s in segments]


def _segments_between(segments, a: float, b: float) -> list[Segment]:
    """The part of a reference line's ``segments`` from ``a`` to ``b`` m along it."""
    out, s0 = [], 0.0
    for seg in segments:
        lo, hi = max(a, s0), min(b, s0 + seg.length)
        if hi - lo > 1e-9:
            out.append(Segment(hi - lo, seg.curvature))
        s0 += seg.length
    return out
