"""Bad options and scenario files fail loudly, naming what was wrong and what is accepted."""

import gymnasium as gym
import pytest

import lanesim  # noqa: F401
from lanesim.envs.options import (
    OptionError,
    UnknownOptionError,
    bundled_scenarios,
    make_options,
)


def test_unknown_keyword_suggests_the_closest_option():
    with pytest.raises(OptionError, match=r"unknown option 'vehicels'.*did you mean 'vehicles'"):
        gym.make("lanesim/Highway-v0", vehicels=10)


def test_unknown_keyword_is_a_type_error_in_pythons_words():
    # Callers that probe keywords fall back on TypeError with this text (TorchRL's GymEnv).
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'frameskip'") as caught:
        gym.make("lanesim/Highway-v0", frameskip=1)
    assert isinstance(caught.value, UnknownOptionError)
    assert isinstance(caught.value, OptionError)  # older `except OptionError` still catches it
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'vehicels'"):
        gym.make_vec("lanesim/Highway-v0", num_envs=2, vehicels=3)


def test_bad_value_is_a_value_error_not_a_type_error():
    with pytest.raises(ValueError, match="'lanes' must be an integer") as caught:
        gym.make("lanesim/Highway-v0", lanes=0)
    assert not isinstance(caught.value, TypeError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"observation": "pixel"},
         r"'observation' must be one of kinematics, occupancy, pixels.*'pixels'"),
        ({"action": "steer"}, r"'action' must be one of discrete, meta, continuous"),
        ({"lanes": 0}, r"'lanes' must be an integer between 1 and 8"),
        ({"lanes": 2.5}, r"'lanes' must be an integer"),
        ({"vehicles": -1}, r"'vehicles' must be an integer"),
        ({"lane_width": -3.0}, r"'lane_width' must be between 2 and 6 m"),
        ({"duration": float("nan")}, r"'duration' must be a finite number"),
        ({"road_overlay": "yes"}, r"'road_overlay' must be true or false"),
        ({"sim_hz": 15, "policy_hz": 4},
         r"sim_hz \(15\) must be a whole multiple of policy_hz \(4\)"),
        ({"traffic_speed": [30, 20]}, r"'traffic_speed' must have low <= high"),
        ({"rewards": {"colision": -1}},
         r"unknown reward term 'colision'.*did you mean 'collision'"),
        ({"road": [{"length": 100, "raduis": 50}]}, r"unknown key 'raduis'.*did you mean 'radius'"),
        ({"road": [{"radius": 50}]}, r"needs key 'length'"),
        ({"closures": [{"lane": 7, "start": 10}]},
         r"closures'\[0\].lane is 7, but the road has lanes 0..3"),
        ({"image_shape": [84]}, r"'image_shape' must be \[height, width\]"),
        ({"sim_speed": "fast"}, r"'sim_speed' must be a finite number"),
    ],
)
def test_bad_value_names_the_option_and_what_is_accepted(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_options("highway", **kwargs)


def test_unknown_scenario_suggests_a_bundled_one():
    with pytest.raises(OptionError, match=r"unknown scenario 'higway'.*did you mean 'highway'"):
        gym.make("lanesim/Drive-v0", scenario="higway")


def test_missing_scenario_file_is_named(tmp_path):
    with pytest.raises(OptionError, match=r"scenario file '.*nope.toml' does not exist"):
        make_options(tmp_path / "nope.toml")


def test_malformed_scenario_file_names_file_and_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lanes = [\n")
    with pytest.raises(OptionError, match=r"scenario file .*bad.toml: not valid TOML"):
        make_options(bad)


def test_scenario_file_with_unknown_key_names_file_and_key(tmp_path):
    bad = tmp_path / "typo.toml"
    bad.write_text("lanes = 3\nvehicels = 4\n")
    with pytest.raises(OptionError, match=r"typo.toml: unknown key 'vehicels'.*'vehicles'"):
        make_options(bad)


def test_scenario_file_with_bad_value_names_file_key_and_expectation(tmp_path):
    bad = tmp_path / "value.toml"
    bad.write_text('lanes = "three"\n')
    with pytest.raises(OptionError, match=r"value.toml: option 'lanes' must be an integer"):
        make_options(bad)


def test_every_bundled_scenario_is_valid():
    assert set(bundled_scenarios()) == {
        "highway", "lane_keeping", "merge", "roadworks", "dense", "racetrack", "twoway",
        "intersection", "roundabout", "exit",
    }
    for name in bundled_scenarios():
        make_options(name)




def test_bad_render_mode_is_refused():
    with pytest.raises(OptionError, match="render_mode must be one of human, rgb_array"):
        gym.make("lanesim/Highway-v0", render_mode="rgb")
