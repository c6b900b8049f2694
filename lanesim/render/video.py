"""Videos at the simulation rate through Gymnasium's own ``RecordVideo``.

``RecordVideo`` takes one frame per ``step()`` (what ``render()`` returns then) and plays them
at ``metadata["render_fps"]``: for lanesim that is one frame per decision at ``policy_hz``,
a true-speed but choppy video. Gymnasium has no way for an environment to hand it the frames
in between (a render that returns a list is reduced to its last frame), so
:func:`record_video` builds the same wrapper at ``fps = sim_hz`` and lets the environment's
viewer add every other simulation frame to the wrapper's ``recorded_frames`` while it records.
The wrapper then writes, triggers, names and closes its videos exactly as usual.
"""

from __future__ import annotations

from typing import Any


def record_video(env, video_folder: str, **kwargs: Any):
    """Gymnasium's ``RecordVideo`` around ``env``, fed every simulation frame: a video of
    ``sim_hz`` frames per simulated second that plays in real time.

    Args:
        env: a lanesim ``DrivingEnv`` (wrapped or not) made with ``render_mode="rgb_array"``.
        video_folder: where the videos go.
        **kwargs: ``RecordVideo``'s own (``episode_trigger``, ``step_trigger``,
            ``name_prefix``, ``disable_logger``, ...). ``video_length`` counts frames, here
            simulation frames; ``fps`` defaults to ``sim_hz`` (a lower one gives slow motion).

    Returns:
        the ``gymnasium.wrappers.RecordVideo`` instance: step, reset and close it as usual.
    """
    from gymnasium.wrappers import RecordVideo

    base = env.unwrapped
    if not hasattr(type(base), "viewer") or not hasattr(base, "options"):
        raise TypeError(f"record_video needs a lanesim DrivingEnv, got {type(base).__name__}")
    if base.render_mode != "rgb_array":
        raise ValueError(
            "record_video needs render_mode='rgb_array', got "
            f"{base.render_mode!r}: gym.make(id, render_mode='rgb_array', ...)"
        )
    kwargs.setdefault("fps", base.options.sim_hz)
    recorder = RecordVideo(env, video_folder, **kwargs)
    viewer = base.open_viewer()
    viewer.recorders.append(recorder)
    return recorder
