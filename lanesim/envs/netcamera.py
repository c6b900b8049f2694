"""The driver's-seat camera's observations on a road network: ``camera`` and ``birdseye``.

The same frames, stacks, spaces and conventions as on one road
(:class:`~lanesim.envs.observations.CameraObservation`,
:class:`~lanesim.envs.observations.BirdseyeObservation`), drawn by
:class:`~lanesim.camera.netraster.NetworkCameraRaster` from the network's ground texture and
the network state's vehicles.
"""

from __future__ import annotations

import numpy as np

from lanesim.camera.birdseye import gather
from lanesim.camera.netraster import NetworkCameraRaster
from lanesim.envs.observations import BirdseyeObservation, FrameStack


def _shift(frames: np.ndarray, worlds: np.ndarray) -> None:
    """Move the stacks of ``worlds`` one frame back, making the newest slot free."""
    frames[worlds, :-1] = frames[worlds, 1:]


class NetworkCamera(FrameStack):
    """``(frame_stack, H, W)`` uint8 grey, or ``(3 × frame_stack, H, W)`` RGB with
    ``camera_color``, frames of the driver's-seat camera (``Options.camera``) on a road
    network, newest last."""

    def __init__(self, options, world) -> None:
        h, w = options.image_shape
        colour = options.camera_color
        super().__init__(world, options.frame_stack, (3, h, w) if colour else (h, w))
        self.raster = NetworkCameraRaster(options.camera, world.network, colour,
                                          world.yield_ends)
        newest = self.frames[:, -1]
        self._newest = newest.transpose(0, 2, 3, 1) if colour else newest

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        if shift:
            _shift(self.frames, worlds)
        self.raster.of_world(self.world, worlds, self._newest)


class NetworkBirdseye(BirdseyeObservation):
    """``(frame_stack, rows, columns)`` uint8 grey, or ``(3 × frame_stack, rows, columns)``
    RGB with ``camera_color``: the network camera's frames warped onto the ``birdseye_extent``
    grid (row 0 the farthest, column 0 the leftmost), newest last."""

    @staticmethod
    def _camera_raster(camera, world, colour: bool):
        return NetworkCameraRaster(camera, world.network, colour, world.yield_ends)

    def _render(self, worlds: np.ndarray, shift: bool) -> None:
        self.raster.of_world(self.world, worlds, self.images)
        if shift:
            _shift(self.frames, worlds)
        gather(*self.warp.maps, self._source, self._newest, worlds, 0, self.world.B)
