"""The human-mode episode loop, :func:`play`, and driving by hand with it: arrow keys to
actions (:class:`KeyboardAgent`) and :func:`drive`.

Keys are read from the viewer's window events (``Viewer.keys_held`` and
``Viewer.key_presses``), not from ``pygame.key.get_pressed``: the viewer handles every event
during ``env.step`` anyway, and events can be posted in tests.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import gymnasium as gym  # noqa: E402
import pygame  # noqa: E402

from lanesim.envs.actions import (  # noqa: E402
    DISCRETE_ACCEL,
    DISCRETE_STEER,
    FASTER,
    IDLE,
    LANE_LEFT,
    LANE_RIGHT,
    SLOWER,
)
from lanesim.render import viewer_of  # noqa: E402
from lanesim.render.annotate import annotate  # noqa: E402

META_KEYS = {pygame.K_LEFT: LANE_LEFT, pygame.K_RIGHT: LANE_RIGHT, pygame.K_UP: FASTER,
             pygame.K_DOWN: SLOWER}


class KeyboardAgent:
    """Arrow keys to an action of the env's action type, in the agent protocol
    (``reset(env)``, ``act(obs)``, ``annotations()``).

    * ``continuous``: left/right steer (less at speed: ``steer_gain / speed``, as a person
      would, so a tap at 30 m/s is a lane change, not a spin), up accelerates fully, down
      brakes at ``brake`` of full braking (down wins when both are held).
    * ``discrete``: the same request, mapped to the nearest cell of the steering ×
      acceleration grid (no key: straight ahead, holding speed).
    * ``meta``: each key press is one command: left/right change lane, up FASTER, down
      SLOWER; no press: IDLE. Presses are queued, so a quick tap between decisions counts.

    ``reset(env)`` binds it to a human-mode lanesim environment (wrapped or not), whose window
    gives the keys.

    Args:
        steer_gain: m/s; normalized steering is ``min(1, steer_gain / speed)``.
        brake: fraction of full braking on the down arrow.
    """

    action_type = None  # any of lanesim's action types

    def __init__(self, steer_gain: float = 2.0, brake: float = 0.7) -> None:
        self.steer_gain, self.brake = steer_gain, brake
        self.env = None

    def reset(self, env) -> None:
        self.env = env

    def annotations(self) -> dict:
        return {}

    def request(self) -> tuple[float, float]:
        """Normalized ``(steer, accel)`` in [-1, 1] from the arrow keys held now."""
        viewer = viewer_of(self.env)
        held = viewer.keys_held if viewer is not None else set()
        turn = (pygame.K_LEFT in held) - (pygame.K_RIGHT in held)  # + left
        speed = float(self.env.unwrapped.world.speed[0, 0])  # one road or a network
        steer = turn * min(1.0, self.steer_gain / max(speed, 1e-3))
        accel = -self.brake if pygame.K_DOWN in held else (1.0 if pygame.K_UP in held else 0.0)
        return steer, accel

    def act(self, obs=None):
        """The action the keys ask for now (``obs`` is not needed: the keys are the input)."""
        if self.env is None:
            raise RuntimeError("KeyboardAgent.act before reset(env): it reads that env's keys")
        kind = self.env.unwrapped.options.action
        if kind == "meta":
            viewer = viewer_of(self.env)
            while viewer is not None and viewer.key_presses:
                key = viewer.key_presses.popleft()
                if key in META_KEYS:
                    return META_KEYS[key]
            return IDLE
        steer, accel = self.request()
        if kind == "continuous":
            return np.array([steer, accel], dtype=np.float32)
        # Discrete: the grid cell nearest the request, in radians and m/s².
        em = self.env.unwrapped.world.spec.ego
        rad = steer * em.max_steer
        mps2 = accel * (em.max_accel if accel >= 0 else em.max_brake)
        i = int(np.argmin(np.abs(np.array(DISCRETE_STEER) - rad)))
        j = int(np.argmin(np.abs(np.array(DISCRETE_ACCEL) - mps2)))
        return i * len(DISCRETE_ACCEL) + j


def play(env, agent, *, seed: int | None = None, episodes: int | None = None,
         linger: float = 1.0, notice: str | None = None) -> list[float]:
    """Let ``agent`` (the agent protocol: ``reset(env)``, ``act(obs)``, ``annotations()``)
    drive the human-mode ``env`` until its window closes (Esc) or ``episodes`` have ended.

    The agent's plan and action values go to the overlay after every decision. R restarts
    the episode: it never ends the run, and the restarted episode does not count.

    Args:
        env: a lanesim environment made with ``render_mode="human"`` (wrapped or not).
        seed: seed of the first reset.
        episodes: stop after this many finished episodes (None: until the window closes).
        linger: seconds an ended episode stays on screen before the next starts.
        notice: a HUD line shown during each episode, formatted with ``episode`` (1-based)
            and ``episodes``; only with ``episodes``.

    Returns the return of each finished (terminated or truncated) episode.
    """
    if env.unwrapped.render_mode != "human":
        raise ValueError("play() needs an environment made with render_mode='human'")
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    agent.reset(env)
    viewer = viewer_of(env)
    total = 0.0
    while not viewer.closed:
        if notice is not None and episodes is not None:
            viewer.notice = notice.format(episode=len(returns) + 1, episodes=episodes)
        action = agent.act(obs)
        annotate(env, **agent.annotations())
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if terminated or truncated or viewer.reset_requested:
            if terminated or truncated:
                returns.append(total)
                if linger > 0:
                    viewer.linger(linger)
            if viewer.closed or (episodes is not None and len(returns) >= episodes):
                break
            obs, _ = env.reset()
            agent.reset(env)
            total = 0.0
    return returns


def drive(env="lanesim/Highway-v0", *, action: str = "continuous", sim_speed: float | str = 1.0,
          seed: int | None = None, episodes: int | None = None, linger: float = 1.0,
          **options) -> list[float]:
    """Drive by hand (:class:`KeyboardAgent` in :func:`play`) until the window is closed (Esc)
    or ``episodes`` have ended.

    Args:
        env: an environment id (made with ``render_mode="human"``) or a human-mode env.
        action: action type when ``env`` is an id: ``continuous`` (default), ``discrete`` or
            ``meta``.
        sim_speed: real-time factor when ``env`` is an id.
        seed: seed of the first reset.
        episodes: stop after this many episodes (None: until the window closes).
        linger: seconds an ended episode stays on screen before the next starts.
        **options: more options when ``env`` is an id.

    Returns the return of each finished (terminated or truncated) episode.
    """
    own = isinstance(env, str)
    if own:
        env = gym.make(env, render_mode="human", action=action, sim_speed=sim_speed, **options)
    try:
        return play(env, KeyboardAgent(), seed=seed, episodes=episodes, linger=linger)
    finally:
        if own:
            env.close()
