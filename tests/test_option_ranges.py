"""Option ranges: hangs, absurd memory, tracebacks and impossible scenarios are refused at make
time with an error naming the option and what it accepts (issue #14, section 5)."""

import math
import os

import gymnasium as gym
import numpy as np
import pytest

import lanesim  # noqa: F401
from lanesim.envs.core import CONE_SPACING, build_spec
from lanesim.envs.options import (
    MAX_SPEED,
    OptionError,
    check_option,
    make_options,
    option_help,
)
from lanesim.sim import memory
from lanesim.sim.world import CONE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"road": []}, r"'road' must hold 1 to 100,000 segments, got 0"),
        ({"road": [{"length": 0.01}]}, r"'road\[0\].length' must be between 1 and 100000 m"),
        ({"duration": 1e7}, r"'duration' must be > 0 and <= 14400 s"),
        ({"ego_start": 1e12}, r"'ego_start' must be between 0 and 100000 m"),
        ({"recycle_distance": 1e12}, r"'recycle_distance' must be between 50 and 10000 m"),
        ({"closures": [{"lane": 0, "start": 300, "taper": 1e9}]},
         r"'closures\[0\].taper' must be between 1 and 500 m"),
        ({"policy_hz": 1e-6}, r"'policy_hz' must be between 0.1 and 1000 Hz"),
        ({"sim_hz": 1e9}, r"'sim_hz' must be between 5 and 1000 Hz"),
        ({"observation": "occupancy", "lane_width": 1e-6},
         r"'lane_width' must be between 2 and 6 m"),
        ({"road": [{"length": 1.0}], "duration": 14_400},
         r"must repeat 577,800 times.*at most 100,000 are accepted"),
    ],
)
def test_options_that_would_hang_or_exhaust_memory_are_refused(kwargs, message):
    with pytest.raises(OptionError, match=message):
        gym.make("lanesim/Highway-v0", **kwargs)


def test_scenario_file_with_a_value_out_of_range_names_file_and_range(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text("duration = 1e12\n")
    with pytest.raises(OptionError, match=r"long.toml: option 'duration' must be > 0 and <= 14400"):
        gym.make("lanesim/Drive-v0", scenario=str(path))


def test_too_many_worlds_for_the_machine_are_refused_before_allocating():
    with pytest.raises(OptionError, match=r"1,000,000,000 worlds .* would take about .* available"):
        gym.make_vec("lanesim/Highway-v0", num_envs=10**9)


def test_worlds_beyond_available_memory_are_refused(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    message = r"64 worlds of 51 entities .* but this machine has 1.0 MiB available"
    with pytest.raises(OptionError, match=message):
        gym.make_vec("lanesim/Highway-v0", num_envs=64, vectorization_mode="vector_entry_point")


def test_available_memory_is_positive_and_at_most_physical_memory():
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < memory.available_memory() <= physical


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sim_hz": 1e300}, r"'sim_hz' must be between 5 and 1000 Hz, got 1e\+300"),
        ({"lane_width": 1e-300}, r"'lane_width' must be between 2 and 6 m, got 1e-300"),
        ({"scenario": 123}, r"scenario must be a bundled name or the path of a .toml file"),
    ],
)
def test_extreme_values_get_a_clear_error_not_a_traceback(kwargs, message):
    with pytest.raises(OptionError, match=message):
        gym.make("lanesim/Drive-v0", **kwargs)


def test_scenario_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("description = 'Stra\xdfe'\n".encode("latin-1"))
    message = r"latin1.toml: not UTF-8 text \(byte 0xdf at offset 19\)"
    with pytest.raises(OptionError, match=message):
        make_options(path)


def test_scenario_nested_too_deeply_is_refused(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("road = " + "[" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(OptionError, match=r"deep.toml: arrays or tables nested too deeply"):
        make_options(path)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (None, r"is a directory; give a .toml file"),  # tmp_path itself
        ("/dev/null", r"'/dev/null' is not a regular file"),
        ("/dev/zero", r"'/dev/zero' is not a regular file"),
    ],
)
def test_scenario_path_that_is_not_a_file_says_what_it_is(tmp_path, path, message):
    with pytest.raises(OptionError, match=message):
        make_options(tmp_path if path is None else path)


def test_oversized_scenario_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.toml"
    with open(path, "wb") as f:
        f.truncate(10 << 20)  # sparse: no 10 MiB written
    message = r"huge.toml' has 10,485,760 bytes; a scenario is at most"
    with pytest.raises(OptionError, match=message):
        make_options(path)


def test_numpy_scalars_are_accepted_as_python_numbers():
    o = make_options(
        lanes=np.int64(3),
        duration=np.float32(5.0),
        traffic_speed=[np.float64(20.0), np.float32(25.0)],
        closures=[{"lane": np.int32(2), "start": np.float32(450.0)}],
        hud=np.bool_(False),
    )
    assert (o.lanes, o.duration, o.traffic_speed, o.hud) == (3, 5.0, (20.0, 25.0), False)
    assert type(o.lanes) is int and type(o.duration) is float and type(o.hud) is bool
    assert type(o.closures[0]["lane"]) is int
    check_option("vehicles", np.int16(7))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"traffic_speed": [1e300, 1e300]}, r"'traffic_speed' must be between 0 and 40 m/s"),
        ({"ego_speed": [100, 100]}, r"'ego_speed' must be between 0 and 40 m/s, got 100"),
        ({"meta_speeds": [20, 45]}, r"'meta_speeds' must be between 0 and 40 m/s, got 45"),
        ({"meta_speeds": [-1, 20]}, r"'meta_speeds' must be between 0 and 40 m/s, got -1"),
        ({"meta_speeds": [20, 20]}, r"'meta_speeds' must be strictly increasing, got \[20, 20\]"),
        ({"rewards": {"collision": -1e308}}, r"'rewards.collision' must be between -1e\+06"),
    ],
)
def test_speeds_beyond_the_vehicle_model_are_refused(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_options(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sim_speed": False}, r"'sim_speed' must be a finite number or 'max', got False"),
        ({"sim_speed": 1e-9}, r"'sim_speed' must be between 0.01 and 1000, got 1e-09"),
        ({"ego_lanes": [0] * 17}, r"'ego_lanes' must be a list of up to 16 lane indices"),
        ({"stalled": [{"lane": 0, "s": 900.0}] * 101}, r"'stalled' must hold 0 to 100"),
    ],
)
def test_other_values_outside_their_range_are_refused(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_options(**kwargs)


def test_ego_at_its_top_speed_reports_that_speed():
    env = gym.make("lanesim/Highway-v0", ego_speed=[MAX_SPEED, MAX_SPEED], vehicles=0)
    _, info = env.reset(seed=0)
    assert info["speed"] == MAX_SPEED


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"road": [{"length": 500, "radius": -5}]},
         r"'road'\[0\].radius is -5 m, but the road is 16 m wide \(4 lanes x 4 m\)"),
        ({"closures": [{"lane": lane, "start": 400} for lane in range(4)]},
         r"'closures' closes every through lane \(0..3\); leave one open"),
        ({"ego_lanes": [1], "closures": [{"lane": 1, "start": 190}]},
         r"start lane 1 runs from 0 m to 190 m .* the ego starts at 200 m"),
        ({"stalled": [{"lane": 2, "s": 200}]},
         r"'stalled'\[0\] \(lane 2, s = 200 m\) is in the ego's way"),
        ({"ego_lanes": [4], "ramp": [{"start": 600, "length": 200}]},
         r"start lane 4 runs from 600 m to 800 m"),
        ({"repeat_road": False, "road": [{"length": 1000}], "ego_start": 2000},
         r"'ego_start' reaches 2000 m, beyond the road's end at 1000 m \(repeat_road is false\)"),
        ({"repeat_road": False, "road": [{"length": 1000}], "ego_start": 998},
         r"start lane \d runs from 0 m to 1000 m"),
        ({"sim_hz": 0.001, "policy_hz": 0.001}, r"'sim_hz' must be between 5 and 1000 Hz"),
        ({"duration": 0.1}, r"'duration' \(0.1 s\) is shorter than one decision \(1 / policy_hz"),
    ],
)
def test_impossible_scenarios_are_refused_at_make_time(kwargs, message):
    with pytest.raises(OptionError, match=message):
        gym.make("lanesim/Drive-v0", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stalled": [{"lane": 0, "s": 1e12}]},
         r"'stalled'\[0\] reaches 1e\+12 m, beyond the road"),
        ({"ramp": [{"start": 1e6, "length": 100}]}, r"'ramp'\[0\] reaches 1.0001e\+06 m, beyond"),
        ({"closures": [{"lane": 0, "start": 1e9}]}, r"'closures'\[0\] reaches 1e\+09 m, beyond"),
        ({"ramp": [{"start": 150, "length": 250}], "stalled": [{"lane": 4, "s": 3000}]},
         r"'stalled'\[0\] is at s = 3000 m, but its lane 4 runs from 150 m to 400 m"),
        ({"closures": [{"lane": 3, "start": 450}], "stalled": [{"lane": 3, "s": 600}]},
         r"'stalled'\[0\] is at s = 600 m, but its lane 3 runs from 0 m to 510 m"),
        ({"ramp": [{"start": 100, "length": 9000}]},
         r"'ramp'\[0\] reaches 9100 m, beyond the road's end at 5000 m"),
    ],
)
def test_placements_beyond_the_road_are_refused(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_options("highway", **kwargs)


def test_ego_never_starts_in_a_closed_lane_when_ego_lanes_is_empty():
    o = make_options("roadworks")
    assert o.start_lanes == (0, 1)
    assert build_spec(o).ego_lanes == (0, 1)


def test_repeated_road_covers_the_episode_with_one_pattern_to_spare_at_most():
    o = make_options("lane_keeping", duration=600.0)
    road = build_spec(o).road
    pattern = sum(seg["length"] for seg in o.road)
    needed = o.ego_start + MAX_SPEED * o.duration + 2 * o.recycle_distance
    assert needed <= road.length < needed + pattern
    assert len(road.segments) == len(o.road) * math.ceil(needed / pattern)


def test_closure_taper_sets_the_number_of_cones():
    o = make_options(closures=[{"lane": 3, "start": 400, "taper": 500}])
    cones = [ob for ob in build_spec(o).obstacles if ob.kind == CONE]
    assert len(cones) == int(500 // CONE_SPACING) + 1


@pytest.mark.parametrize(
    ("name", "stated"),
    [
        ("lane_width", "2 to 6"),
        ("sim_hz", "5 to 1,000"),
        ("policy_hz", "0.1 to 1,000"),
        ("duration", "4 h"),
        ("ego_start", "0 to 100,000"),
        ("recycle_distance", "50 to 10,000"),
        ("traffic_speed", "0 to 40"),
        ("closures", "1 to 500"),
    ],
)
def test_help_text_states_the_accepted_range(name, stated):
    assert stated in option_help()[name]
