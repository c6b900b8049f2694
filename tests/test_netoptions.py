"""Options of road-network scenarios: the network, start lanes, goals, and what they refuse."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lanesim.envs.options import (
    DEFAULT_NETWORK_REWARDS,
    OptionError,
    build_network,
    make_options,
    with_reset_options,
)

EXIT = dict(network="exit", ego_start_lanes=["approach:1"], goals=["ramp:0"])


def test_a_bundled_network_is_held_as_its_table_and_builds():
    o = make_options(**EXIT)
    assert isinstance(o.network, dict) and o.network["roads"][0]["name"] == "approach"
    net = build_network(o.network)
    assert net.successors(net.lane("decel:3")) == (net.lane("decel.3>ramp.0:0"),)
    # The table is the whole definition: a saved run's options make the same env.
    plain = json.loads(json.dumps(dataclasses.asdict(o)))
    assert make_options(None, **plain) == o


def test_a_network_scenario_scores_arrival_and_wrong_turns():
    assert make_options(**EXIT).rewards == DEFAULT_NETWORK_REWARDS
    o = make_options(**EXIT, rewards={"arrival": 3.0})
    assert o.rewards["arrival"] == 3.0 and o.rewards["wrong_turn"] == -10.0


def test_a_network_from_a_file_and_as_a_table(tmp_path):
    table = make_options(**EXIT).network
    path = tmp_path / "net.toml"
    path.write_text('[network]\nroads = [{ name = "a", segments = [{ length = 50 }], '
                    'lanes = 2 }]\n')
    o = make_options(network=str(path), ego_start_lanes=["a:1"], ego_start=10.0,
                     goals=["a:1"], goal_distance=40.0)
    assert build_network(o.network).lanes == ("a:0", "a:1")
    assert make_options(network=dict(table), ego_start_lanes=["approach:1"],
                        goals=["ramp:0"]).network == table


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(network="exitt"), r"unknown network 'exitt' \(did you mean 'exit'\?\); bundled: "
                                r"exit, intersection, roundabout"),
        (dict(network=3), r"option 'network' must be a bundled network's name"),
        (dict(network="missing.toml"), r"option 'network': file 'missing.toml' does not exist"),
        (dict(network={"roads": []}), r"option 'network': network.roads must be a non-empty list"),
        (dict(network="exit"), r"needs 'ego_start_lanes'"),
        (dict(EXIT, ego_start_lanes=["approach:7"]),
         r"option 'ego_start_lanes': lane 'approach:7': road 'approach' has lanes 0 to 2"),
        (dict(EXIT, ego_start_lanes=[1]), r"option 'ego_start_lanes' must hold lane names"),
        (dict(EXIT, goals=["main:0", "nowhere:0"]), r"option 'goals': lane 'nowhere:0': no road"),
        (dict(EXIT, ego_start_lanes=["main:0"]),
         r"option 'goals': 'ramp:0' cannot be reached from start lane 'main:0'"),
        (dict(EXIT, ego_start=600.0),
         r"option 'ego_start' \(600 m\) lies beyond the end of start lane 'approach:1' \(500 m\)"),
        (dict(EXIT, ego_start_lanes=["ramp:0"], goals=[], ego_start=135.0),
         r"start lane 'ramp:0' \(\d+\.?\d* m long, a dead end\) leaves no room"),
        (dict(EXIT, goal_distance=137.0), r"option 'goal_distance' \(137 m\) lies too near the "
                                          r"end of goal lane 'ramp:0' .* accepted: 0 to"),
        (dict(EXIT, goals=[]), r"option 'goals' is empty, but this network's exits end"),
        (dict(EXIT, vehicles=300), r"on a road network at most 256 cars"),
        (dict(EXIT, sim_hz=120, policy_hz=5), r"a road network steps at 5 to 100 Hz"),
        (dict(EXIT, traffic_speed=[0.0, 0.5]), r"traffic drives its route at 1 to 40 m/s"),
        (dict(EXIT, duration=0.1), r"option 'duration' \(0.1 s\) is shorter than one decision"),
        (dict(EXIT, lanes=3), r"option 'lanes' shapes the one road .* leave 'lanes' out"),
        (dict(EXIT, closures=[{"lane": 0, "start": 10.0}]), r"option 'closures' shapes the one"),
        (dict(goals=["ramp:0"]), r"option 'goals' names lanes of a road network; this scenario "
                                 r"has one road"),
        (dict(rewards={"arrival": 1.0}), r"option 'rewards' has 'arrival', which score goals on a "
                                         r"road network"),
    ],
)
def test_bad_network_options_are_refused_naming_what_is_wrong(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_options(**kwargs)


def test_start_lanes_and_goals_change_at_reset():
    o = make_options("intersection")
    changed = with_reset_options(o, {"goals": ["north:-1"], "ego_start_lanes": ["east:0"],
                                     "goal_distance": 5.0})
    assert changed.goals == ("north:-1",) and changed.ego_start_lanes == ("east:0",)
    with pytest.raises(OptionError, match=r"reset\(options=...\): option 'goals': lane 'x:0'"):
        with_reset_options(o, {"goals": ["x:0"]})


@pytest.mark.parametrize("scenario", ["intersection", "roundabout", "exit"])
def test_the_network_scenarios_validate(scenario):
    o = make_options(scenario)
    net = build_network(o.network)
    assert o.ego_start_lanes and o.goals
    for name in (*o.ego_start_lanes, *o.goals):
        net.lane(name)


def test_a_scenario_files_network_file_lies_beside_it_and_its_errors_name_it(tmp_path,
                                                                             monkeypatch):
    import gymnasium as gym

    import lanesim  # noqa: F401  (registers the ids)

    (tmp_path / "net.toml").write_text(
        '[network]\nroads = [{ name = "a", segments = [{ length = 50 }], lanes = 2 }]\n')
    (tmp_path / "scenario.toml").write_text(
        'network = "net.toml"\nego_start_lanes = ["a:1"]\nego_start = 10.0\ngoals = ["a:1"]\n'
        'goal_distance = 40.0\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not where the files are
    env = gym.make("lanesim/Drive-v0", scenario=str(tmp_path / "scenario.toml"))
    assert env.unwrapped.core.network.lanes == ("a:0", "a:1")
    env.close()
    # A network file that names a lane its road lacks: the error names that file.
    (tmp_path / "net.toml").write_text(
        '[network]\nroads = [{ name = "a", segments = [{ length = 50 }], lanes = 2 }, '
        '{ name = "b", start = [50, 0, 0], segments = [{ length = 50 }], lanes = 2 }]\n'
        'links = [["a:0", "b:3"]]\n')
    with pytest.raises(OptionError, match=r"scenario\.toml: option 'network': .*net\.toml: "
                                          r".*road 'b' has lanes 0 to 1, not '3'"):
        gym.make("lanesim/Drive-v0", scenario=str(tmp_path / "scenario.toml"))
