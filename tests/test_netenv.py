"""The road-network environments (Intersection-v0, Roundabout-v0, Exit-v0): Gymnasium's API,
spaces, determinism single and batched, the route's rewards (arrival, wrong turn, progress
that cannot be farmed), info, and the viewer's frames."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lanesim  # noqa: F401
from lanesim.envs.actions import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER
from lanesim.envs.driving import DrivingEnv
from lanesim.envs.netcore import NETWORK_INFO_FIELDS
from lanesim.envs.options import NETWORK_REWARD_TERMS

NETWORK_IDS = ("lanesim/Intersection-v0", "lanesim/Roundabout-v0", "lanesim/Exit-v0")


def episode(env, seed, actions):
    """(observations, rewards, infos) of one episode, action ``actions(t)`` at decision t."""
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info)]
    t, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(actions(t))
        out.append((obs, reward, info))
        done = terminated or truncated
        t += 1
    return out


@pytest.mark.parametrize("env_id", NETWORK_IDS)
@pytest.mark.parametrize("observation", ["kinematics", "occupancy", "pixels"])
def test_gymnasium_checks_pass_and_observations_stay_in_their_space(env_id, observation):
    env = gym.make(env_id, observation=observation, action="meta", duration=4.0)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    space = env.observation_space
    for t in range(15):
        assert space.contains(obs), (observation, obs.dtype, obs.shape)
        obs, _, terminated, truncated, _ = env.step(FASTER if t < 2 else IDLE)
        if terminated or truncated:
            obs, _ = env.reset()
    if observation == "pixels":  # SB3's image convention: channel-first uint8 stacks
        assert space.dtype == np.uint8 and space.shape == (4, 84, 84)


@pytest.mark.parametrize("env_id", NETWORK_IDS)
def test_info_has_the_route_and_every_reward_term(env_id):
    env = gym.make(env_id, action="meta")
    _, info = env.reset(seed=1)
    assert set(NETWORK_INFO_FIELDS) | {"rewards"} == set(info)
    assert info["route_progress"] == 0.0 and info["arrived"] is False
    _, reward, _, _, info = env.step(IDLE)
    assert list(info["rewards"]) == list(NETWORK_REWARD_TERMS)
    assert reward == pytest.approx(sum(info["rewards"].values()))
    assert 0.0 < info["route_progress"] < 1.0 and info["distance"] > 0.0


@pytest.mark.parametrize("env_id", NETWORK_IDS)
def test_same_seed_same_episode(env_id):
    def run():
        env = gym.make(env_id, action="meta", duration=6.0)
        return episode(env, 7, lambda t: (FASTER, IDLE, SLOWER, IDLE)[t % 4])

    a, b = run(), run()
    assert len(a) == len(b)
    for (o1, r1, i1), (o2, r2, i2) in zip(a, b, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and i1 == i2


@pytest.mark.parametrize("env_id", ["lanesim/Intersection-v0", "lanesim/Exit-v0"])
def test_each_world_of_a_vector_env_runs_as_a_single_env_with_its_seed(env_id):
    n, steps = 3, 12
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                        action="meta", observation="pixels")
    obs, _ = venv.reset(seed=[10, 11, 12])
    batched = [obs]
    for _ in range(steps):
        obs, *_ = venv.step(np.full(n, IDLE))
        batched.append(obs)
    for k, seed in enumerate((10, 11, 12)):
        env = gym.make(env_id, action="meta", observation="pixels")
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, batched[0][k])
        for t in range(steps):
            obs, _, terminated, truncated, _ = env.step(IDLE)
            if terminated or truncated:
                break  # the vector env resets this world on its next step
            np.testing.assert_array_equal(obs, batched[t + 1][k])


def test_arriving_at_the_goal_ends_the_episode_with_the_arrival_term():
    # No traffic: the autopilot drives the route straight across the junction to its goal.
    env = gym.make("lanesim/Intersection-v0", action="meta", vehicles=0, goals=["north:-1"],
                   duration=30.0)
    steps = episode(env, 0, lambda t: FASTER)
    *_, (_, reward, info) = steps
    assert info["arrived"] and not info["crashed"] and not info["offroad"]
    assert info["route_progress"] == pytest.approx(1.0, abs=0.02)
    assert info["rewards"]["arrival"] == 10.0 and info["rewards"]["wrong_turn"] == 0.0
    assert sum(s[2]["rewards"]["arrival"] for s in steps) == 10.0  # once
    assert info["lane"] == env.unwrapped.core.network.lane("north:-1")


def test_missing_the_exit_is_a_wrong_turn_that_ends_the_episode():
    # IDLE never leaves lane 1: past the decel stretch the route to the ramp is gone.
    env = gym.make("lanesim/Exit-v0", action="meta", vehicles=0, ego_start_lanes=["approach:1"])
    *_, (_, reward, info) = episode(env, 0, lambda t: IDLE)
    net = env.unwrapped.core.network
    assert net.lane_road(info["lane"]) == "main"
    assert info["rewards"]["wrong_turn"] == -10.0 and not info["arrived"]
    assert reward < -9.0


def test_changing_into_the_exit_lane_reaches_the_ramp():
    env = gym.make("lanesim/Exit-v0", action="meta", vehicles=0, ego_start_lanes=["approach:1"])
    steps = episode(env, 0, lambda t: 2)  # LANE_RIGHT whenever a lane is there
    info = steps[-1][2]
    assert info["arrived"]
    # Two changes (approach:1 -> 2, then into decel:3), each -0.1; the steps from a lane onto
    # its successor are no lane changes.
    assert sum(s[2]["rewards"]["lane_change"] for s in steps[1:]) == pytest.approx(-0.2)
    assert env.unwrapped.core.network.lane_road(info["lane"]) == "ramp"


def test_standing_still_earns_nothing():
    env = gym.make("lanesim/Intersection-v0", action="meta", vehicles=0, ego_speed=[0.0, 0.0],
                   duration=5.0)
    steps = episode(env, 0, lambda t: SLOWER)
    for _, reward, info in steps[1:]:
        assert info["speed"] == 0.0
        assert info["rewards"]["progress"] == 0.0 and info["rewards"]["lane_keeping"] == 0.0
        assert reward <= 0.0


def test_circling_a_roundabout_past_the_exit_earns_nothing():
    # LANE_LEFT takes the ego to the ring's inner lane, from which no exit leaves: it drives
    # past its goal's exit and round again. Progress counts the route's metres once, and lane
    # keeping (scaled by progress) stops paying with it: laps are worth nothing.
    def run(action, duration):
        env = gym.make("lanesim/Roundabout-v0", action="meta", vehicles=0, goals=["east:-1"],
                       duration=duration)
        return env, episode(env, 0, lambda t: action)

    env, steps = run(LANE_LEFT, 200.0)
    info = steps[-1][2]
    assert not info["arrived"] and not info["crashed"] and not info["offroad"]
    o = env.unwrapped.options
    scale = o.reward_speed / o.sim_hz
    credited = sum(s[2]["rewards"]["progress"] for s in steps[1:]) / 0.7 * \
        o.frames_per_decision * scale
    driven = sum(s[2]["speed"] for s in steps[1:]) / o.policy_hz
    start_route = env.unwrapped.core.world.route_length[0]
    assert driven > start_route + 300.0  # it went round again, more than once
    assert credited <= start_route + 1.0
    past = [s for s in steps[1:] if s[2]["distance"] < start_route - 50.0 and
            s[2]["speed"] > 1.0][-10:]  # decisions once the exit was missed
    assert past and all(s[2]["rewards"]["lane_keeping"] == 0.0 for s in past)
    circling = sum(s[1] for s in steps)
    _, arriving = run(IDLE, 200.0)
    assert arriving[-1][2]["arrived"]
    assert circling < sum(s[1] for s in arriving)


def test_moving_onto_the_oncoming_lane_is_no_wrong_turn():
    # Steering left from the minor road's lane crosses onto its oncoming lane (south:-1):
    # overtaking ground, not a turn off the route.
    env = gym.make("lanesim/Intersection-v0", action="continuous", vehicles=0)
    env.reset(seed=0)
    net = env.unwrapped.core.network
    seen = set()
    for t in range(8):
        steer = 0.8 if t < 3 else (-0.8 if t < 6 else 0.0)  # over, then straighten
        _, _, terminated, _, info = env.step(np.array([steer, 0.0], dtype=np.float32))
        seen.add(net.lanes[info["lane"]] if info["lane"] >= 0 else "off")
        assert info["rewards"]["wrong_turn"] == 0.0
        if terminated:
            break
    assert "south:-1" in seen


def test_the_route_is_observable_from_the_start_in_kinematics_and_occupancy():
    turns, rows = {}, {}
    for goal in ("west:-1", "north:-1", "east:-1"):
        env = gym.make("lanesim/Intersection-v0", action="meta", goals=[goal])
        obs, _ = env.reset(seed=0)
        turns[goal] = obs[0, 2]  # goal_turn: + right
        env = gym.make("lanesim/Intersection-v0", action="meta", goals=[goal],
                       observation="occupancy")
        grid, _ = env.reset(seed=0)
        r, c = np.nonzero(grid[4])
        far = c >= 27  # beyond 38 m ahead: past the turn 30-40 m ahead of the start
        rows[goal] = r[far].mean()
        assert (grid[4][:, 8] == 1).any()  # the route starts at the ego's column
    assert turns["west:-1"] < -0.9 and abs(turns["north:-1"]) < 1e-6 and turns["east:-1"] > 0.9
    assert rows["west:-1"] < rows["north:-1"] < rows["east:-1"]
    assert 7.0 <= rows["north:-1"] <= 9.0  # straight on: the grid's middle rows


def test_the_viewer_draws_a_network_with_the_ego_a_third_across():
    env = DrivingEnv(render_mode="rgb_array", scenario="roundabout", action="meta",
                     screen_width=900, screen_height=300, hud=False)
    env.reset(seed=0)
    env.step(IDLE)
    frame = env.render()
    assert frame.shape == (300, 900, 3) and frame.dtype == np.uint8
    from lanesim.render import style

    # The ego's colour at its place: a third of the way across, half way down.
    patch = frame[140:160, 290:310].reshape(-1, 3)
    assert (np.abs(patch.astype(int) - np.array(style.EGO)).sum(axis=1) < 30).any()
    env.close()


def test_the_network_viewer_draws_an_agents_plan_and_values():
    from lanesim.render import annotate, style

    env = DrivingEnv(render_mode="rgb_array", scenario="roundabout", action="meta",
                     screen_width=900, screen_height=300, vehicles=0)
    env.reset(seed=0)
    env.step(IDLE)

    def plan_pixels(frame):
        return (np.abs(frame.astype(int) - np.array(style.PLAN)).sum(axis=2) < 30).sum()

    assert plan_pixels(env.render()) == 0
    w = env.core.world
    x, y, h = float(w.x[0, 0]), float(w.y[0, 0]), float(w.heading[0, 0])
    ahead = np.array([[x + d * np.cos(h), y + d * np.sin(h)] for d in (0.0, 10.0, 20.0)])
    annotate(env, plan=ahead, values=[1.0, 2.0, 0.5], labels=["FASTER", "IDLE", "SLOWER"])
    frame = env.render()
    cols = np.nonzero(np.abs(frame.astype(int) - np.array(style.PLAN)).sum(axis=2) < 30)[1]
    # 20 m ahead of the ego, drawn rightward from it (the ego a third of the way across).
    assert plan_pixels(frame) > 50 and cols.max() > cols.min() + 100
    env.close()


def test_a_network_scene_is_a_snapshot_of_the_world_for_planners():
    env = DrivingEnv(scenario="intersection", action="meta")
    env.reset(seed=0)
    scene = env.scene()
    v = scene.vehicles
    net = scene.network
    assert net.lane_road(int(v.lane[0])) == "south" and v.u[0] == 60.0
    assert scene.goal_lane in {net.lane(g) for g in ("west:-1", "north:-1", "east:-1")}
    assert scene.remaining == pytest.approx(scene.route_length)
    assert scene.ego_target_lane == v.lane[0] and scene.ego_target_speed in (0.0, 4.5, 9.0)
    x0 = v.x.copy()
    env.step(IDLE)
    np.testing.assert_array_equal(scene.vehicles.x, x0)  # a copy: later steps leave it alone
    assert (v.kind[1:] >= 0).sum() > 0  # traffic is there from the start (warm-up)


def test_netrun_resets_worlds_given_as_indices_as_given_as_a_mask():
    """NetRun.reset takes a mask or indices (as NetWorld.reset): world 2 of 3 reset either
    way gets the same goal, route and route length."""
    def reset(worlds):
        venv = gym.make_vec("lanesim/Intersection-v0", num_envs=3,
                            vectorization_mode="vector_entry_point", action="meta")
        venv.reset(seed=[0, 1, 2])
        w = venv.unwrapped.core.world
        w.reset(worlds, np.array([52]))
        return w.goal_of.copy(), w.state.ego_route.copy(), w.route_length.copy()

    by_index = reset(np.array([2]))
    by_mask = reset(np.array([False, False, True]))
    for a, b in zip(by_index, by_mask, strict=True):
        np.testing.assert_array_equal(a, b)
    assert by_index[1][2] == by_index[0][2]  # the route follows the new goal


def test_kinematics_rows_are_in_the_ego_frame_x_ahead_y_right():
    # The ego drives north up the south arm (heading 90°). One car straight ahead in its lane,
    # then one on the east arm coming west toward the junction: ahead and to the right, moving
    # to the ego's left, turned 90° left of it.
    env = gym.make("lanesim/Intersection-v0", observation="kinematics", action="meta",
                   vehicles=1, observed_vehicles=1)
    env.reset(seed=0)
    core = env.unwrapped.core
    world, rng = core.world, env.unwrapped.options.perception_distance
    assert world.heading[0, 0] == pytest.approx(np.pi / 2)
    ego_speed = float(world.speed[0, 0])

    world.place(0, 1, "south:0", float(world.u[0, 0]) + 20.0, ego_speed + 4.0, "north:-1")
    row = core.observation()[0, 1]
    presence, x, y, vx, vy, cos_h, sin_h, _ = row
    assert presence == 1.0
    assert x == pytest.approx(20.0 / rng, abs=1e-4) and y == pytest.approx(0.0, abs=1e-4)
    assert vx == pytest.approx(4.0 / 40.0, abs=1e-4) and vy == pytest.approx(0.0, abs=1e-4)
    assert cos_h == pytest.approx(1.0) and sin_h == pytest.approx(0.0, abs=1e-6)

    world.place(0, 1, "east:0", 95.0, 10.0, "west:-1")
    ahead = float(world.y[0, 1] - world.y[0, 0])  # north of the ego
    right = float(world.x[0, 1] - world.x[0, 0])  # east of it
    assert ahead > 30.0 and right > 5.0
    presence, x, y, vx, vy, cos_h, sin_h, _ = core.observation()[0, 1]
    assert x == pytest.approx(ahead / rng, abs=1e-4) and y == pytest.approx(right / rng, abs=1e-4)
    assert vx == pytest.approx(-ego_speed / 40.0, abs=1e-4)  # crossing: none of it along
    assert vy == pytest.approx(-10.0 / 40.0, abs=1e-4)  # toward the ego's left
    assert cos_h == pytest.approx(0.0, abs=1e-6) and sin_h == pytest.approx(1.0)
    env.close()


def test_weaving_past_the_exit_is_a_wrong_turn_and_earns_less_than_taking_it():
    # Exit-v0 without traffic. Changing lanes back and forth every decision, the ego crosses
    # the end of the decel lanes diagonally onto the highway beyond: no successor of the lane
    # it left, yet a wrong turn (it used to drive on there, paid for every metre, until it
    # left the road). Taking the exit (always right) earns more; no policy is paid for more
    # metres than its route has.
    def run(policy):
        env = gym.make("lanesim/Exit-v0", action="meta", vehicles=0)
        steps = episode(env, 3, policy)
        route = env.unwrapped.core.world.route_length[0]
        assert all(s[2]["distance"] <= route + 1.0 for s in steps[1:])
        return sum(s[1] for s in steps), steps[-1][2], steps

    weaving, info, steps = run(lambda t: LANE_LEFT if t % 2 == 0 else LANE_RIGHT)
    assert len({s[2]["lane"] for s in steps[1:]}) >= 4  # it did change lanes
    assert info["rewards"]["wrong_turn"] < 0.0 and not info["arrived"] and not info["offroad"]
    assert any(s[2]["rewards"]["lane_change"] < 0.0 for s in steps[1:])
    exiting, info, _ = run(lambda t: LANE_RIGHT)
    assert info["arrived"]
    assert weaving < exiting - 20.0


def test_straying_onto_an_overlapping_connector_in_a_junction_is_no_wrong_turn():
    # A left turn (south -> west) that cuts the inside of the corner by 1.9 m at the
    # connector's middle crosses other connectors of the junction box (lanes from which the
    # goal cannot be reached) and comes back onto its exit road: it arrives; only a lane's end
    # taken the wrong way is a wrong turn. The ego's pose is set along the path each step.
    import math

    from lanesim.sim import netstep as nt
    from lanesim.sim.network import lane_point

    env = gym.make("lanesim/Intersection-v0", vehicles=0, action="meta", goals=["west:-1"])
    env.reset(seed=3)
    w = env.unwrapped.core.world
    net = w.network
    a = net.arrays
    start, turn, leave = net.lane("south:0"), net.lane("south.0>west.-1:0"), net.lane("west:-1")
    n = a.lane_length[turn]
    path = [lane_point(a, start, u, 0.0)[:2] for u in np.arange(a.lane_length[start] - 20.0,
                                                                 a.lane_length[start], 0.5)]
    path += [lane_point(a, turn, u, -1.9 * math.sin(math.pi * u / n))[:2]
             for u in np.arange(0.0, n, 0.5)]
    path += [lane_point(a, leave, u, 0.0)[:2] for u in np.arange(0.0, 40.0, 0.5)]
    lanes, ended = set(), []
    for (x0, y0), (x1, y1) in zip(path[:-1], path[1:], strict=True):
        w.x[0, 0], w.y[0, 0] = x0, y0
        w.heading[0, 0] = math.atan2(y1 - y0, x1 - x0)
        w.speed[0, 0] = math.hypot(x1 - x0, y1 - y0) / w.dt
        row = w.run(1, 0.0, 0.0, trace=True)[:, 0, 0]
        lanes.add(int(row[nt.NT_LANE]))
        ended = [k for k in ("NT_WRONG_TURN", "NT_OFFROAD", "NT_ARRIVED") if row[getattr(nt, k)]]
        if ended:
            break
    strayed = {net.lanes[i] for i in lanes} - {"south:0", "south.0>west.-1:0", "west:-1"}
    assert strayed and not any(w.routes.reaches[int(w.state.ego_route[0]), net.lane(s)]
                               for s in strayed)
    assert ended == ["NT_ARRIVED"]
