"""The single lanesim Gymnasium environment, :class:`DrivingEnv`, and the public snapshot of
its simulator's state for model-based planners, :class:`Scene`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from lanesim.envs.actions import MetaActions
from lanesim.envs.core import DrivingCore
from lanesim.envs.netcore import NetworkCore, NetworkScene, make_core, network_scene_of
from lanesim.envs.options import OptionError, make_options, with_reset_options
from lanesim.sim.road import Road
from lanesim.sim.world import EgoModel, TrafficModel

RENDER_MODES = ["human", "rgb_array"]
SEED_BOUND = 2**63 - 1


@dataclass(frozen=True)
class Vehicles:
    """Every road user of one world, each field ``(N,)``: row 0 is the ego, then the ``V``
    traffic cars, then the static obstacles (stalled cars, cones).

    Attributes:
        x, y: world position of the centre (m; x east, y north).
        heading: rad, counter-clockwise from +x.
        speed: m/s along the heading.
        s, d: road frame (m): along the road's reference line, and to the right of it.
        lane: lane under the centre (0 = leftmost).
        target_lane: the lane a traffic car is changing into (its lane when it keeps it);
            for the ego and obstacles their lane (the meta action's target lane is
            :attr:`Scene.ego_target_lane`).
        length, width: m.
        kind: ``EGO`` (0), ``CAR`` (1), ``STALLED`` (2) or ``CONE`` (3) of
            :mod:`lanesim.sim.world`.
        crashed: has collided this episode.
    """

    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    s: np.ndarray
    d: np.ndarray
    lane: np.ndarray
    target_lane: np.ndarray
    length: np.ndarray
    width: np.ndarray
    kind: np.ndarray
    crashed: np.ndarray


@dataclass(frozen=True)
class Lanes:
    """The road's lanes; arrays ``(count,)``.

    Attributes:
        count: lanes, ramps included (0 = leftmost).
        width: m, every lane.
        centre: ``d`` of each lane's centre (m).
        start, end: where each lane exists along the road (m of ``s``): an on-ramp starts late,
            a closed lane (roadworks, the end of a ramp) ends early.
        closes: the lane ends before the road does.
        direction: +1 where traffic travels toward +s, -1 in an oncoming lane of a two-way
            road (its cars travel toward -s, heading + π; their ``speed`` is a magnitude, so
            their velocity along the road is ``-speed``). The ego always travels +1.
    """

    count: int
    width: float
    centre: np.ndarray
    start: np.ndarray
    end: np.ndarray
    closes: np.ndarray
    direction: np.ndarray


@dataclass(frozen=True)
class Scene:
    """A snapshot of one world: what a model-based planner needs to predict it.

    Arrays are copies: later steps do not change a scene. ``road`` converts between the
    road frame and the world (``road.to_world(s, d)``, ``road.to_road(x, y)``); on a closed
    road (``road.closed``) ``s`` restarts at 0 past ``road.length``, and
    ``road.offset(s, ego_s)`` gives positions along the road the shorter way round; ``ego_model``
    and ``traffic_model`` are the vehicle models' constants (the ego's limits; traffic's
    driver ranges and ``lane_change_time``).

    Attributes:
        time: simulated seconds since the episode's reset.
        vehicles: every road user (:class:`Vehicles`; row 0 the ego).
        lanes: the road's lanes (:class:`Lanes`).
        road: the road's geometry (:class:`lanesim.sim.road.Road`; do not change it).
        ego_heading_error: rad in [-π, π), the ego's heading from the road direction, + left.
        ego_target_lane, ego_target_speed: the meta action's current targets (lane index, m/s),
            which the lane-following controller tracks; None for the other action types.
        ego_model, traffic_model: the simulator's vehicle models.
    """

    time: float
    vehicles: Vehicles
    lanes: Lanes
    road: Road
    ego_heading_error: float
    ego_target_lane: int | None
    ego_target_speed: float | None
    ego_model: EgoModel
    traffic_model: TrafficModel


def scene_of(core: DrivingCore | NetworkCore, b: int) -> Scene | NetworkScene:
    """The :class:`Scene` of world ``b`` of ``core``; on a road network its
    :class:`~lanesim.envs.netcore.NetworkScene`."""
    if isinstance(core, NetworkCore):
        return network_scene_of(core, b)
    w, road = core.world, core.world.road
    vehicles = Vehicles(
        **{name: getattr(w, name)[b].copy() for name in Vehicles.__dataclass_fields__}
    )
    lanes = Lanes(road.lanes, road.lane_width, road.lane_centre.copy(), road.lane_start.copy(),
                  road.lane_end.copy(), road.lane_closes.copy(), road.lane_direction.copy())
    action = core.action
    meta = isinstance(action, MetaActions)
    return Scene(
        time=float(w.time[b]),
        vehicles=vehicles,
        lanes=lanes,
        road=road,
        ego_heading_error=float(w.ego_lane_frame()[2][b]),
        ego_target_lane=int(action.target_lane[b]) if meta else None,
        ego_target_speed=float(action.speeds[action.speed_index[b]]) if meta else None,
        ego_model=w.spec.ego,
        traffic_model=w.spec.traffic,
    )


def check_render_mode(render_mode, modes: list[str]) -> None:
    """Refuse a ``render_mode`` that is neither None nor one of the env's ``modes``."""
    if render_mode is not None and render_mode not in modes:
        raise OptionError(
            f"render_mode must be one of {', '.join(modes)} or None, got {render_mode!r}"
        )


class DrivingEnv(gym.Env):
    """A car on a multi-lane road among traffic.

    ## Description
    The ego car (a kinematic bicycle model) drives along a road of straight and curved segments
    with several lanes, lanes that open (on-ramps) or close (roadworks), traffic that follows
    its leader (IDM) and changes lanes (MOBIL), and static obstacles. It is rewarded for keeping
    its lane and making progress, and the episode ends when it crashes or leaves the road. With
    ``loop`` the road is a closed circuit (Racetrack-v0): past its end every car drives on from
    its start (``s`` restarts at 0, the seam), and traffic circulates instead of being recycled.
    With ``oncoming_lanes`` the road is two-way (TwoWay-v0): its leftmost lanes carry oncoming
    traffic toward the road's start; the ego starts in a forward lane and may overtake through
    an oncoming lane (a head-on collision ends the episode; driving there is not penalized).

    ## Action Space
    Chosen by ``action``:

    | ``action`` | space | meaning |
    |---|---|---|
    | ``"discrete"`` (default) | ``Discrete(15)`` | ``i`` → steering ``(0.08, 0.03, 0, -0.03, -0.08)[i // 3]`` rad (+ left) × acceleration ``(-4, 0, 2)[i % 3]`` m/s², held for the decision |
    | ``"meta"`` | ``Discrete(5)`` | 0 LANE_LEFT, 1 IDLE, 2 LANE_RIGHT, 3 FASTER, 4 SLOWER, carried out by a lane-following controller (target speeds ``meta_speeds``) |
    | ``"continuous"`` | ``Box(-1, 1, (2,), float32)`` | ``[steer, accel]``: steer × 0.5 rad; accel × 3 m/s² (≥ 0) or × 6 m/s² braking (< 0) |

    An action outside the space raises ``ActionError``; nothing is clipped or remapped.

    ## Observation Space
    Chosen by ``observation``:

    | ``observation`` | space | content |
    |---|---|---|
    | ``"kinematics"`` (default) | ``Box(-1, 1, (1 + observed_vehicles, 8), float32)`` | row 0 the ego, then the nearest vehicles and obstacles within ``perception_distance``, nearest first; absent rows are zero |
    | ``"occupancy"`` | ``Box(-1, 1, (4, 4 × lanes, 32), float32)`` | road-frame grid, 4 m × ¼ lane cells, 32 m behind to 96 m ahead; channels occupancy, relative speed / 40 m/s, drivable area, ego |
    | ``"pixels"`` | ``Box(0, 255, (frame_stack, H, W), uint8)`` | top-down grey frames of the straightened road around the ego (default 4 × 84 × 84; 1 m per pixel along, 0.5 m across, a quarter of the view behind), newest last |
    | ``"camera"`` | ``Box(0, 255, (frame_stack, H, W), uint8)``, with ``camera_color`` ``(3 × frame_stack, H, W)`` | the driver's-seat camera's frames (default 4 × 84 × 84 grey: 90° wide, 1.3 m up, 1 m ahead of the car's centre, 5° down), newest last |
    | ``"birdseye"`` | ``Box(0, 255, (frame_stack, rows, cols), uint8)``, with ``camera_color`` ``(3 × frame_stack, rows, cols)`` | the camera's frames warped onto the ground ahead (inverse perspective mapping), ``birdseye_extent`` in cells of ``birdseye_resolution`` (default 80 × 40 cells of 0.5 m: 2 to 42 m ahead, 10 m to each side), the road running up, newest last |

    Kinematics columns: ``presence``; ``x`` (along the road / ``perception_distance``; on a
    circuit the shorter way round its seam);
    ``y`` (across the road, to the right: for the ego its place on the road from -1 at the left
    edge to 1 at the right, for others the offset from the ego / road width); ``vx``, ``vy``
    (velocity along and across the road / 40 m/s, relative to the ego's for others); ``cos_h``,
    ``sin_h`` (heading relative to the road, + left); ``lane_offset`` (from the own lane's centre
    / half a lane width, + right). Values saturate at ±1.

    Pixel grey levels: off-road 0, road 60, dashed lane line 130, solid edge line (and a two-way
    road's centre line) 190,
    traffic 160, obstacles 230, ego 255. Frames are channel-first grey stacks, as
    ``AtariPreprocessing`` + ``FrameStackObservation`` give them: resize with ``image_shape``,
    not ``ResizeObservation`` (which takes channel-last images). With ``speed_bar`` the top
    row of each frame is a speed gauge instead of road: its first ``round(W × speed / 40 m/s)``
    cells are 255, the rest 0, as CarRacing's frames carry their speed indicator.

    Camera frames are rendered from the simulator's state, compiled, at ``image_shape``
    through the pinhole camera of the ``camera_*`` options (``Options.camera``, a
    :class:`lanesim.camera.Camera`: ``camera_fov`` or ``camera_intrinsics``,
    ``camera_distortion``, ``camera_height``, ``camera_forward``, ``camera_pitch``,
    ``camera_yaw``): sky, ground, road, lane markings, vehicles and obstacles as shaded boxes;
    the ego itself is not drawn. Colour stacks (``camera_color``) hold the frames in order, RGB
    within each: channels ``3 k .. 3 k + 2`` are frame ``k``. A bird's-eye cell is the bilinear
    interpolation of the camera pixels around the point that sees the cell's centre on the
    ground (through ``Camera.ground_homography()``, then the lens distortion); cells the camera
    does not see are 0. Row 0 is the farthest, column 0 the leftmost. The warped image is the
    camera's at ``image_shape``: far ahead its rows are sparse on the ground (about x² / (fy ×
    camera_height) m per row at x m), so raise ``image_shape`` for a sharper far field.
    Everything is taken to lie on the ground, so vehicles stretch away from the camera, as in
    any inverse perspective mapping.

    ## Rewards
    Each term is reported weighted in ``info["rewards"]``; the reward is their sum. Weights are
    the ``rewards`` option (defaults in parentheses).

    | term | per decision |
    |---|---|
    | ``progress`` (0.7) | mean over simulation steps of speed along the road / ``reward_speed``, in [-1, 1] |
    | ``lane_keeping`` (0.3) | mean of (1 − (lane_offset / half lane)²)₊ × cos(heading_error)₊ × progress₊ |
    | ``collision`` (-10) | 1 on the decision the ego crashes |
    | ``offroad`` (-10) | 1 on the decision its centre leaves the road (if it did not crash) |
    | ``lane_change`` (-0.1) | number of lane boundaries the ego's centre crossed |
    | ``comfort`` (-0.05) | squared change of the normalized steering and acceleration |

    Reward traps, and how they are closed: *standing still* earns nothing, since lane keeping
    is scaled by forward progress; *weaving* between lanes pays the lane-change cost and loses
    lane keeping at every crossing; *circling* or driving backwards earns negative progress and
    no lane keeping (the alignment factor is zero once the car faces away from the road).

    ## Starting State
    The ego starts at ``ego_start`` metres, centred in a random lane of ``ego_lanes`` (default
    any through lane), aligned with the road, at a random speed in ``ego_speed``. Traffic
    takes random free slots around it with randomized desired speeds and driver parameters.

    ## Episode End
    ``terminated`` when the ego collides with anything or its centre leaves the drivable area;
    ``truncated`` after ``duration`` simulated seconds (``duration × policy_hz`` decisions).
    ``gym.make(id, max_episode_steps=n)`` truncates after ``n`` decisions as well, whichever
    comes first: raise ``duration`` for episodes longer than 200 decisions.

    ## Info
    ``rewards`` (dict of weighted terms), ``crashed``, ``offroad``, ``speed`` (m/s), ``lane``
    (index, 0 = leftmost), ``lane_offset`` (m, + right), ``heading_error`` (rad, + left),
    ``distance`` (m along the road since reset, on a circuit lap after lap), ``headway`` (s) and ``time_to_collision`` (s)
    to the leader in the ego's lane (``inf`` if none), ``traffic_collisions`` (int: traffic
    cars' collisions with anything but the ego this episode).

    ## Rendering
    ``render_mode`` is one of ``metadata["render_modes"]``:

    | ``render_mode`` | ``render()`` returns | what is drawn |
    |---|---|---|
    | ``None`` (default) | None, with a warning | nothing; no viewer is made |
    | ``"rgb_array"`` | ``(H, W, 3)`` uint8, new per call | the state now |
    | ``"human"`` | None | a pygame window, during ``reset()`` and ``step()`` |

    ``H, W`` are ``screen_height, screen_width``; after ``step()`` the state is that of the
    decision's last simulation step. The window is resizable and paced by ``sim_speed``.

    The picture is a top-down view of the world that follows the ego (rotated so the road at
    the ego points right, 100 m across): road and markings, vehicles and obstacles, the
    ``road_overlay`` (lane centres and boundaries, the ego's lateral offset, heading error,
    trail and headway to its leader, an agent's plan) and the ``hud`` (simulated time, speed,
    lane and offset, the last reward and its terms, the return, an agent's action values).
    Rendering reads the simulator and never changes it. Options: ``screen_width``,
    ``screen_height`` (the window opens the 600×150 default at 1200×400), ``road_overlay``,
    ``hud``, ``sim_speed`` (human mode's real-time factor; 0 or ``"max"``: unpaced).

    ``metadata["render_fps"]`` is ``policy_hz``: rendering once per ``step()`` gives that many
    frames per simulated second, so Gymnasium's ``RecordVideo`` writes a true-speed video of a
    frame per decision. ``lanesim.render.record_video(env, folder)`` is the same wrapper fed
    every simulation frame, at ``sim_hz``. The :attr:`viewer` property exposes the viewer
    (keys, pause, speed; see ``lanesim.render``) and ``lanesim.render.annotate`` draws an
    agent's plan and values.

    ## Scene
    ``env.unwrapped.scene()`` returns a :class:`Scene`: a typed snapshot of the simulator's
    state (every vehicle's and obstacle's pose, speed, road coordinates, lane, target lane,
    size, kind and crashed flag; the lanes; the time; the meta action's targets; the vehicle
    models). Model-based planners such as ``agents.vi_driver.VIDriver`` plan from it.

    ## Arguments
    ``gym.make(id, render_mode=None, scenario=None, **options)``: every option of
    :class:`lanesim.envs.options.Options` is a keyword and overrides the scenario file. Run
    ``lanesim.envs.options.option_help()`` for the full list with units and defaults. An
    unknown keyword raises ``UnknownOptionError`` (a ``TypeError`` and an ``OptionError``), a
    bad value ``OptionError`` (a ``ValueError``). Options are frozen once made.

    ``reset(options={...})`` changes the options in
    :data:`~lanesim.envs.options.RESET_OPTIONS` (traffic, the ego's start, ``closures``,
    ``stalled``, reward weights, ``duration``) for that episode and the ones after it, checked
    as ``gym.make`` checks them; an option that shapes a space, or any other, is refused.

    ## Vectorized environment
    ``gym.make_vec(id, num_envs=N, **options)`` returns :class:`DrivingVectorEnv`, which steps
    all N worlds in one batched simulator call.

    ## Version History
    * v0: initial version.
    """  # noqa: E501  (Gymnasium-style markdown tables: a row cannot be wrapped)

    metadata = {"render_modes": RENDER_MODES, "render_fps": 15}

    def __init__(self, render_mode: str | None = None, scenario: str | None = None, **options: Any):
        check_render_mode(render_mode, RENDER_MODES)
        self.options = make_options(scenario, **options)
        self.scenario = scenario
        self.core = make_core(self.options, 1)
        self.world = self.core.world
        self.observation_space = self.core.observation.space
        self.action_space = self.core.action.space
        self.render_mode = render_mode
        # Recorders (Gymnasium's RecordVideo) take one frame per step(): one per decision.
        self.metadata = dict(self.metadata, render_fps=self.options.policy_hz)
        self._viewer = None
        self._obs = None
        self._one = np.ones(1, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options:
            self._apply_options(with_reset_options(self.options, options))
        world_seed = self.np_random.integers(0, SEED_BOUND)
        obs = self.core.reset(self._one, np.array([world_seed]))
        self._obs = obs[0]
        info = self.core.info_of(0)
        if self.render_mode == "human" and self._viewer is None:
            self.open_viewer()
        if self._viewer is not None:
            self._viewer.on_reset()  # human mode: shows the new episode on the next display slot
        return obs[0], info

    def _apply_options(self, options) -> None:
        """Rebuild the worlds for new per-episode options; the spaces stay the same objects."""
        self.options = options
        self.core = make_core(options, 1)
        self.world = self.core.world
        if self._viewer is not None:  # it draws the old world: a fresh one draws the new
            self._viewer.close()
            self._viewer = None

    def configure(self, config: dict) -> None:
        """Refused: highway-env's way to change options. lanesim's are fixed once made."""
        raise TypeError(
            "lanesim environments have no configure(): pass options to gym.make(id, **options) "
            "with lanesim's names, or the per-episode ones to reset(options=...); see README, "
            "'Coming from highway-env'"
        )

    def step(self, action):
        frame = self._viewer.on_frame if self._viewer is not None else None
        if self.render_mode is not None and self._viewer is None:
            self.open_viewer()
            frame = self._viewer.on_frame
        obs, reward, terminated, truncated = self.core.step(action, on_frame=frame, batched=False)
        self._obs = obs[0]
        info = self.core.info_of(0)
        if self._viewer is not None:
            self._viewer.on_decision(float(reward[0]), info)
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def scene(self) -> Scene | NetworkScene:
        """A snapshot of the simulator's state (the ego, every vehicle and obstacle, the
        lanes, the time, the meta action's targets): :class:`Scene`, or on a road network
        :class:`~lanesim.envs.netcore.NetworkScene`. For model-based planners, which read it
        instead of the simulator's internals."""
        return scene_of(self.core, 0)

    @property
    def viewer(self):
        """The :class:`~lanesim.render.viewer.Viewer` drawing this environment: None without a
        render mode, and until the first ``step()`` or ``render()`` (and again after
        ``close()``). Its ``overlay``, ``show_hud``, ``sim_speed``, ``paused`` ... can be set
        from code."""
        return self._viewer

    def open_viewer(self):
        """The viewer (:attr:`viewer`), made now if there is none yet."""
        if self._viewer is not None:
            return self._viewer
        from lanesim.render.viewer import Viewer

        self._viewer = Viewer(self, mode=self.render_mode)
        return self._viewer

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' or 'human'"
            )
            return None
        if self._viewer is None:
            self.open_viewer()
        return self._viewer.render()

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
