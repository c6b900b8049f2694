"""Driving by hand: arrow keys to actions, and :func:`drive`, a complete manual-driving loop.

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

META_KEYS = {pygame.K_LEFT: LANE_LEFT, pygame.K_RIGHT: LANE_RIGHT, pygame.K_UP: FASTER,
             pygame.K_DOWN: SLOWER}


class KeyboardAgent:
    """Arrow keys to an action of ``env``'s action type, each time it is called.

    * ``continuous``: left/right steer (less at speed: ``steer_gain / speed``, as a person
      would, so a tap at 30 m/s is a lane change, not a spin), up accelerates fully, down
      brakes at ``brake`` of full braking (down wins when both are held).
    * ``discrete``: the same request, mapped to the nearest cell of the steering ×
      acceleration grid (no key: straight ahead, holding speed).
    * ``meta``: each key press is one command: left/right change lane, up FASTER, down
      SLOWER; no press: IDLE. Presses are queued, so a quick tap between decisions counts.

    Args:
        env: a human-mode lanesim environment (wrapped or not).
        steer_gain: m/s; normalized steering is ``min(1, steer_gain / speed)``.
        brake: fraction of full braking on the down arrow.
    """

    def __init__(self, env, steer_gain: float = 2.0, brake: float = 0.7) -> None:
        self.env = env
        self.kind = env.unwrapped.options.action
        self.steer_gain, self.brake = steer_gain, brake
        self.max_steer = env.unwrapped.world.spec.ego.max_steer

    def request(self) -> tuple[float, float]:
        """Normalized ``(steer, accel)`` in [-1, 1] from the arrow keys held now."""
        viewer = viewer_of(self.env)
        held = viewer.keys_held if viewer is not None else set()
        turn = (pygame.K_LEFT in held) - (pygame.K_RIGHT in held)  # + left
        speed = float(self.env.unwrapped.world.speed[0, 0])
        steer = turn * min(1.0, self.steer_gain / max(speed, 1e-3))
        accel = -self.brake if pygame.K_DOWN in held else (1.0 if pygame.K_UP in held else 0.0)
        return steer, accel

    def __call__(self, obs=None):
        if self.kind == "meta":
            viewer = viewer_of(self.env)
            while viewer is not None and viewer.key_presses:
                key = viewer.key_presses.popleft()
                if key in META_KEYS:
                    return META_KEYS[key]
            return IDLE
        steer, accel = self.request()
        if self.kind == "continuous":
            return np.array([steer, accel], dtype=np.float32)
        # Discrete: the grid cell nearest the request, in radians and m/s².
        em = self.env.unwrapped.world.spec.ego
        rad = steer * self.max_steer
        mps2 = accel * (em.max_accel if accel >= 0 else em.max_brake)
        i = int(np.argmin(np.abs(np.array(DISCRETE_STEER) - rad)))
        j = int(np.argmin(np.abs(np.array(DISCRETE_ACCEL) - mps2)))
        return i * len(DISCRETE_ACCEL) + j


def drive(env="lanesim/Highway-v0", *, action: str = "continuous", sim_speed: float | str = 1.0,
          seed: int | None = None, episodes: int | None = None, linger: float = 1.0,
          **options) -> list[float]:
    """Drive by hand in a window until it is closed (Esc) or ``episodes`` have ended.

    Args:
        env: an environment id (made with ``render_mode="human"``) or a human-mode env.
        action: action type when ``env`` is an id: ``continuous`` (default), ``discrete`` or
            ``meta``.
        sim_speed: real-time factor when ``env`` is an id.
        seed: seed of the first reset.
        episodes: stop after this many episodes (None: until the window closes).
        linger: seconds an ended episode stays on screen before the next starts.
        **options: more options when ``env`` is an id.

    Returns the return of each finished (terminated or truncated) episode. R restarts the
    episode (the viewer's ``reset_requested``): it never ends the drive, and the restarted
    episode does not count.
    """
    own = isinstance(env, str)
    if own:
        env = gym.make(env, render_mode="human", action=action, sim_speed=sim_speed, **options)
    elif env.unwrapped.render_mode != "human":
        raise ValueError("drive() needs an environment made with render_mode='human'")
    agent = KeyboardAgent(env)
    returns: list[float] = []
    try:
        obs, _ = env.reset(seed=seed)
        viewer = viewer_of(env)
        total = 0.0
        while not viewer.closed:
            obs, reward, terminated, truncated, _ = env.step(agent(obs))
            total += reward
            if terminated or truncated or viewer.reset_requested:
                if terminated or truncated:
                    returns.append(total)
                    if linger > 0:
                        viewer.linger(linger)
                if viewer.closed or (episodes is not None and len(returns) >= episodes):
                    break
                obs, _ = env.reset()
                total = 0.0
    finally:
        if own:
            env.close()
    return returns
