"""The viewer's commands: ``lanesim demo`` runs until its window closes (or says when and why
it ends), R restarts an episode and never ends a run, and every scenario's description says
only what its file holds."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"

import re  # noqa: E402
import tomllib  # noqa: E402
from importlib import resources  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

import lanesim  # noqa: E402, F401
from agents.baselines import IdleAgent  # noqa: E402
from lanesim import cli  # noqa: E402
from lanesim.envs.options import build_network, bundled_scenarios, description  # noqa: E402
from lanesim.render import annotation_of, viewer_of  # noqa: E402
from lanesim.render.keyboard import KeyboardAgent, drive, play  # noqa: E402

SHORT = dict(action="meta", duration=1.0, sim_speed="max")  # 1 s episodes, unpaced


class PressesR(IdleAgent):
    """Idles, pressing R once at its first decision; counts its resets and notes the HUD's
    notice."""

    def __init__(self) -> None:
        super().__init__()
        self.resets, self.pressed, self.notices = 0, False, []

    def reset(self, env) -> None:
        self.env = env
        self.resets += 1

    def act(self, obs):
        self.notices.append(viewer_of(self.env).notice)
        if not self.pressed:
            self.pressed = True
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, unicode="r",
                                                 mod=0))
        return super().act(obs)


def test_reset_key_restarts_the_episode_and_never_ends_the_run():
    agent = PressesR()
    returns = cli.watch(agent, "lanesim/Highway-v0", episodes=1, linger=0.0, **SHORT)
    assert agent.resets == 2  # the first episode, then the one R started
    assert len(returns) == 1  # the restarted episode ran to its end; R's did not count


def test_reset_key_never_ends_a_drive_by_hand():
    env = __import__("gymnasium").make("lanesim/Highway-v0", render_mode="human", **SHORT)
    env.reset(seed=0)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, unicode="r", mod=0))
    returns = drive(env, episodes=1, linger=0.0)
    assert len(returns) == 1 and not viewer_of(env).closed
    env.close()


def test_watch_with_episodes_says_on_screen_when_the_run_ends():
    agent = PressesR()
    cli.watch(agent, "lanesim/Highway-v0", episodes=2, linger=0.0, **SHORT)
    assert agent.notices[0] == "episode 1 of 2: the run ends after 2 (--episodes)"
    assert agent.notices[-1].startswith("episode 2 of 2")


@pytest.mark.parametrize("argv, says, episodes", [
    (["demo"], "runs until you close the window", None),
    (["demo", "--episodes", "2"], "ends after 2 episodes (--episodes 2)", 2),
])
def test_demo_runs_until_its_window_closes_or_says_when_it_ends(monkeypatch, capsys, argv, says,
                                                                episodes):
    asked = {}

    def fake_watch(agent, env_id, seed=0, episodes=None, **options):
        asked["episodes"] = episodes
        return [1.0] * (episodes or 5)

    monkeypatch.setattr(cli, "has_display", lambda: True)
    monkeypatch.setattr(cli, "watch", fake_watch)
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert says in out and asked["episodes"] == episodes
    assert ("The demo ended: 2 episodes were asked for" in out) == (episodes == 2)


# --------------------------------------------------------------------- scenario descriptions
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5}


def claims(text: str) -> dict:
    """What a description says about its road and traffic, as option checks."""
    t = text.lower()
    found = {}
    m = re.search(r"(\d+) cars", t)
    if m:
        found["vehicles"] = int(m.group(1))
    m = re.search(r"\b(two|three|four|five)[- ]lane", t) or re.search(
        r"\b(two|three|four|five) lanes", t)
    if m:
        found["lanes"] = NUMBERS[m.group(1)]
    m = re.search(r"lane of (two|three|four|five)", t)
    if m:
        found["lanes"] = NUMBERS[m.group(1)]
    found["stalled"] = "stalled" in t
    found["ramp"] = "ramp" in t
    found["closures"] = "roadworks" in t or "cone" in t or "close" in t
    found["curves"] = "curve" in t or "winding" in t
    found["straight"] = "straight" in t
    return found


@pytest.mark.parametrize("name", bundled_scenarios())
def test_scenario_description_matches_its_file(name):
    text = resources.files("lanesim.scenarios").joinpath(f"{name}.toml").read_text()
    values = tomllib.loads(text)
    said = claims(description(name))
    assert description(name), f"{name}.toml has no description"
    if "network" in values:
        # A network's roads are in its table: a lane count said is some road's (both ways).
        net = build_network(values["network"])
        counts = {s.lanes + s.lanes_back for s in net.specs.values()}
        if "lanes" in said:
            assert said["lanes"] in counts, f"{name}: roads have {sorted(counts)} lanes"
        assert said["ramp"] == any("ramp" in road for road in net.specs)
        return
    if "vehicles" in said:
        assert values["vehicles"] == said["vehicles"]
    if "lanes" in said:
        assert values["lanes"] == said["lanes"]
    for key in ("stalled", "ramp", "closures"):  # said exactly when the file has one
        assert said[key] == bool(values.get(key)), f"{name}: description vs {key} = " \
            f"{values.get(key)!r}"
    curved = any("radius" in piece for piece in values.get("road", []))
    assert said["curves"] == curved
    if said["straight"]:
        assert not curved


def test_description_claims_read_stalled_cars_ramps_and_counts():
    said = claims("Roadworks close the right lane of three; a stalled car waits. 25 cars.")
    assert said["stalled"] and said["closures"] and said["lanes"] == 3 and said["vehicles"] == 25
    assert not claims("A straight four-lane highway with 50 cars.")["stalled"]


class Annotates(IdleAgent):
    """Idles, annotating each decision with its count as the IDLE value."""

    def reset(self, env) -> None:
        self.decisions = 0

    def act(self, obs):
        self.decisions += 1
        return super().act(obs)

    def annotations(self) -> dict:
        return {"values": [0.0, float(self.decisions), 0.0, 0.0, 0.0]}


def test_play_hands_the_agents_annotations_to_the_viewer():
    env = __import__("gymnasium").make("lanesim/Highway-v0", render_mode="human", **SHORT)
    agent = Annotates()
    play(env, agent, seed=0, episodes=1, linger=0.0)
    assert annotation_of(env).values[1] == agent.decisions > 1
    env.close()


def test_play_and_the_keyboard_agent_refuse_what_they_cannot_drive():
    env = __import__("gymnasium").make("lanesim/Highway-v0", render_mode="rgb_array", **SHORT)
    with pytest.raises(ValueError, match="render_mode='human'"):
        play(env, IdleAgent(), episodes=1)
    with pytest.raises(RuntimeError, match=r"before reset\(env\)"):
        KeyboardAgent().act(None)
    env.close()
