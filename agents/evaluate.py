"""Evaluate lanesim agents: seeded episodes, safety, speed and lane-keeping statistics.

``evaluate(agent, env_id, episodes=100, seed=0, **options)`` runs ``episodes`` episodes of
``gym.make(env_id, **options)`` (episode ``i`` resets with ``seed + i``), calls
``agent.reset(env)`` after each reset and ``agent.act(obs)`` for each decision, and returns
a dict with

* ``episodes``: the number of episodes;
* ``mean_return``: mean undiscounted return;
* ``collision_rate``, ``offroad_rate``: fraction of episodes that ended in a collision, or off
  the road without one;
* ``mean_speed`` (m/s): mean over episodes of the mean over decisions of ``info["speed"]``;
* ``lane_offset_rms`` (m): root mean square of ``info["lane_offset"]`` over all decisions;
* ``lane_changes``: mean per episode of the number of lane boundaries crossed (changes of
  ``info["lane"]`` between decisions; on a road network, whose lane ids are global, the
  env's ``lane_change`` reward term over its weight);
* ``ms_per_decision``: median wall-clock milliseconds of ``agent.act`` (env time excluded);
* ``arrival_rate``: on a road network (an env whose info has ``arrived``), the fraction of
  episodes that ended with the ego at its goal; None elsewhere;
* per-episode lists ``returns``, ``collisions``, ``offroads``, ``speeds``,
  ``lane_changes_per_episode``, ``lengths`` (decisions), ``ms_per_episode`` (median ms
  per decision) and ``arrivals`` (empty where there is no goal).

Agents that set ``action_type`` (e.g. ``"meta"``) get that ``action=`` option unless
``options`` names one. Baseline agents to compare with are in :mod:`agents.baselines`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import gymnasium as gym
import numpy as np

import lanesim  # noqa: F401  (registers the lanesim ids)
from lanesim.render.annotate import annotate

__all__ = ["evaluate"]


def _get(info: dict, key: str) -> float:
    value = info.get(key, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _network_changes(env, info: dict) -> int:
    """Lane changes in the last decision on a road network: its ``lane_change`` reward term
    over that term's weight (0 where the weight is 0)."""
    weight = env.unwrapped.options.rewards["lane_change"]
    term = info.get("rewards", {}).get("lane_change", 0.0)
    return int(round(float(term) / weight)) if weight else 0


def evaluate(agent, env_id: str, episodes: int = 100, seed: int = 0,
             video_dir: str | None = None, **options: Any) -> dict:
    """Run ``episodes`` seeded episodes of ``agent`` on ``env_id``; see the module docstring.

    Args:
        agent: follows :class:`agents.base.Agent` (``reset(env)``, ``act(obs)``).
        env_id: a registered Gymnasium id, e.g. ``"lanesim/Highway-v0"``.
        episodes: number of episodes (>= 1).
        seed: episode ``i`` resets with ``seed + i``.
        video_dir: record every episode there with Gymnasium's ``RecordVideo`` (the env
            renders ``rgb_array`` frames; the agent's plan and values are drawn too), through
            :func:`lanesim.render.record_video` for lanesim's driving envs: every simulation
            frame, at ``sim_hz``.
        **options: ``gym.make`` keywords.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    wanted = getattr(agent, "action_type", None)
    if wanted is not None and "action" not in options and env_id.startswith("lanesim/") and (
        "LaneGrid" not in env_id
    ):
        options["action"] = wanted
    if video_dir is not None:
        options["render_mode"] = "rgb_array"
    env = gym.make(env_id, **options)
    if video_dir is not None:
        from gymnasium.wrappers import RecordVideo

        from lanesim.render import record_video

        name = env_id.split("/")[-1]
        # lanesim envs: every simulation frame (sim_hz); others: a frame per step.
        record = record_video if hasattr(type(env.unwrapped), "viewer") else RecordVideo
        env = record(env, str(video_dir), episode_trigger=lambda _: True, name_prefix=name,
                     disable_logger=True)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    returns, collisions, offroads, speeds, changes, lengths, ms_ep = [], [], [], [], [], [], []
    arrivals: list[bool] = []
    offsets: list[float] = []
    all_ms: list[float] = []
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            agent.reset(env)
            ret, n, crossed = 0.0, 0, 0
            lane = _get(info, "lane")
            ep_speeds, ep_ms = [], []
            crashed = offroad = False
            while True:
                start = time.perf_counter()
                action = agent.act(obs)
                ep_ms.append(1e3 * (time.perf_counter() - start))
                if video_dir is not None:
                    annotate(env, **agent.annotations())
                obs, reward, terminated, truncated, info = env.step(action)
                ret += float(reward)
                n += 1
                ep_speeds.append(_get(info, "speed"))
                offsets.append(_get(info, "lane_offset"))
                new_lane = _get(info, "lane")
                if "arrived" in info:
                    # On a network lane ids are global: count the env's own lane changes.
                    crossed += _network_changes(env, info)
                elif not (math.isnan(lane) or math.isnan(new_lane)):
                    crossed += int(abs(new_lane - lane))
                lane = new_lane
                crashed = bool(info.get("crashed", False))
                offroad = bool(info.get("offroad", False))
                if terminated or truncated:
                    break
            returns.append(ret)
            if "arrived" in info:
                arrivals.append(bool(info["arrived"]))
            collisions.append(crashed)
            offroads.append(offroad and not crashed)
            speeds.append(float(np.mean(ep_speeds)))
            changes.append(crossed)
            lengths.append(n)
            ms_ep.append(float(np.median(ep_ms)))
            all_ms.extend(ep_ms)
    finally:
        env.close()
    offs = np.array(offsets)
    return {
        "episodes": episodes,
        "mean_return": float(np.mean(returns)),
        "collision_rate": float(np.mean(collisions)),
        "offroad_rate": float(np.mean(offroads)),
        "mean_speed": float(np.mean(speeds)),
        "lane_offset_rms": (
            float(np.sqrt(np.nanmean(offs**2))) if np.isfinite(offs).any() else math.nan
        ),
        "lane_changes": float(np.mean(changes)),
        "ms_per_decision": float(np.median(all_ms)),
        "arrival_rate": float(np.mean(arrivals)) if arrivals else None,
        "returns": returns,
        "collisions": collisions,
        "offroads": offroads,
        "speeds": speeds,
        "lane_changes_per_episode": changes,
        "lengths": lengths,
        "ms_per_episode": ms_ep,
        "arrivals": arrivals,
    }
