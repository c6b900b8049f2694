"""highway-env users' habits meet errors that name lanesim's way (README, 'Coming from
highway-env')."""

import gymnasium as gym
import pytest

import lanesim  # noqa: F401
from lanesim.envs.options import (
    HIGHWAY_ENV_HINTS,
    HIGHWAY_ENV_NAMES,
    HIGHWAY_ENV_TYPES,
    OPTION_NAMES,
    OptionError,
    UnknownOptionError,
    make_options,
)


@pytest.mark.parametrize(("theirs", "ours"), sorted(HIGHWAY_ENV_NAMES.items()))
def test_highway_env_key_with_exact_meaning_names_lanesims_option(theirs, ours):
    with pytest.raises(
        UnknownOptionError,
        match=rf"unknown option '{theirs}' \(highway-env's name; lanesim calls it '{ours}'\)",
    ):
        make_options(**{theirs: 1})


def test_every_named_counterpart_is_a_real_option():
    assert set(HIGHWAY_ENV_NAMES.values()) <= set(OPTION_NAMES)
    assert not set(HIGHWAY_ENV_HINTS) & set(OPTION_NAMES)
    assert not set(HIGHWAY_ENV_NAMES) & set(OPTION_NAMES)


def test_highway_env_key_without_counterpart_points_to_the_migration_section():
    with pytest.raises(UnknownOptionError, match=r"rewards=\{'collision': w\}.*Coming from"):
        make_options(collision_reward=-1.0)
    with pytest.raises(UnknownOptionError, match=r"options as keywords"):
        gym.make("lanesim/Highway-v0", config={"lanes_count": 3})


def test_scenario_file_with_highway_env_key_names_lanesims_option(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("vehicles_count = 10\n")
    with pytest.raises(UnknownOptionError, match=r"mine.toml.*lanesim calls it 'vehicles'"):
        make_options(scenario=path)


@pytest.mark.parametrize(("kind", "theirs"), [
    ("observation", "Kinematics"),
    ("observation", "OccupancyGrid"),
    ("observation", "GrayscaleObservation"),
    ("action", "DiscreteMetaAction"),
    ("action", "DiscreteAction"),
    ("action", "ContinuousAction"),
])
def test_highway_env_type_dict_names_lanesims_choice(kind, theirs):
    ours = HIGHWAY_ENV_TYPES[theirs]
    with pytest.raises(OptionError, match=rf"highway-env {kind} dict.*{kind}='{ours}'"):
        make_options(**{kind: {"type": theirs}})
    # ... and the named choice is accepted as it stands.
    assert getattr(make_options(**{kind: ours}), kind) == ours


def test_configure_is_refused_with_the_lanesim_way():
    env = gym.make("lanesim/Highway-v0")
    with pytest.raises(TypeError, match=r"no configure\(\).*reset\(options=\.\.\.\)"):
        env.unwrapped.configure({"lanes_count": 3})
    assert env.unwrapped.options.lanes == 4  # nothing changed
    env.close()


def test_unrelated_unknown_key_keeps_the_did_you_mean():
    with pytest.raises(UnknownOptionError, match=r"did you mean 'vehicles'"):
        make_options(vehicels=3)
