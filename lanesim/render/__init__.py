"""Rendering: reads simulator state, never changes it.

* :class:`~lanesim.render.viewer.Viewer` draws an environment's world 0 top-down, from the
  driver's seat (:mod:`lanesim.render.dashcam`) or both side by side, in a window
  (``render_mode="human"``, paced by ``sim_speed``, with keys) or offscreen
  (``render_mode="rgb_array"``). Environments create it themselves.
* :func:`annotate` shows an agent's plan and action values in it; :func:`viewer_of` returns
  an environment's viewer, to change its settings from code.
* :func:`record_video`: Gymnasium's ``RecordVideo`` with every simulation frame.
* :func:`~lanesim.render.keyboard.play` lets an agent drive in the window, episode after
  episode; :func:`drive` and :class:`~lanesim.render.keyboard.KeyboardAgent` drive by hand
  (``python -m lanesim.render`` from a shell).
"""

from lanesim.render.annotate import Annotation, annotate, annotation_of


def viewer_of(env):
    """The :class:`~lanesim.render.viewer.Viewer` of ``env`` (wrapped or not, single or
    vector), or None before its first ``render()`` or ``step()`` with a render mode. Set its
    ``overlay``, ``show_hud``, ``sim_speed``, ``capture`` ... from code."""
    return env.unwrapped.viewer


def record_video(env, video_folder, **kwargs):
    """Gymnasium's ``RecordVideo`` fed every simulation frame (video at ``sim_hz``); see
    :func:`lanesim.render.video.record_video`."""
    from lanesim.render.video import record_video as _record_video

    return _record_video(env, video_folder, **kwargs)


def drive(*args, **kwargs):
    """Drive by hand; see :func:`lanesim.render.keyboard.drive`. (Imported on use, so that
    ``lanesim.render`` stays cheap to import.)"""
    from lanesim.render.keyboard import drive as _drive

    return _drive(*args, **kwargs)


__all__ = ["Annotation", "annotate", "annotation_of", "drive", "record_video", "viewer_of"]
