"""Inverse perspective mapping: camera images warped onto a metric top-down grid of the ground.

Every cell of the grid is a patch of ground; :class:`BirdseyeWarp` finds, once, the pixel of the
camera's (distorted) image that sees the cell's centre: through
:meth:`~lanesim.camera.Camera.ground_homography` to the undistorted image, then through the lens
distortion to the image the camera actually produced. Each frame is then only a gather,
compiled. Everything is assumed to lie on the ground, as in any inverse perspective mapping:
cars, cones and their shading stretch away from the camera along the rays that see them.
"""

from __future__ import annotations

import math

import numpy as np

from lanesim.camera.model import Camera
from lanesim.sim.jit import kernel_nogil

__all__ = ["BIRDSEYE_FILL", "BirdseyeWarp", "gather"]

# Every channel of a cell the camera does not see (behind it, above the horizon, off the image).
BIRDSEYE_FILL = 0

# A cell is seen only if undistorting its pixel gives back its own direction: with barrel
# distortion, directions far outside the field of view can fold back onto the image.
_ROUND_TRIP = 1e-6  # normalised image units


class BirdseyeWarp:
    """The fixed map from a top-down ground grid to the camera image.

    Args:
        camera: the camera whose images are warped (its ``image_size`` is theirs).
        extent: ``(forward_min, forward_max, half_width)`` (m): the grid covers the ground from
            ``forward_min`` to ``forward_max`` ahead of the point below the camera and
            ``half_width`` to each side, along the car's axes.
        resolution: the side of a square cell (m).

    The grid reads like a map of the road ahead: row 0 is the farthest (``forward_max``), column
    0 the leftmost (``half_width`` to the left), so the road runs up the image. A cell takes
    the bilinear interpolation of the four pixels around the point where the camera sees its
    centre, or :data:`BIRDSEYE_FILL` where the camera does not see it (behind the camera, above
    the horizon, or off the image).

    Attributes:
        shape: ``(rows, columns)`` of the grid.
        pixels: ``(rows, columns, 2)`` float64, the distorted pixel ``(u, v)`` each cell samples;
            NaN where the cell is not seen.
    """

    def __init__(
        self, camera: Camera, extent: tuple[float, float, float], resolution: float
    ) -> None:
        forward_min, forward_max, half_width = (float(v) for v in extent)
        resolution = float(resolution)
        if not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f"resolution must be a positive number of metres, got {resolution!r}")
        if not (forward_min < forward_max and half_width > 0 and all(
                math.isfinite(v) for v in (forward_min, forward_max, half_width))):
            raise ValueError("extent must be (forward_min, forward_max, half_width) with "
                             f"forward_min < forward_max and half_width > 0, got {extent!r}")
        rows = round((forward_max - forward_min) / resolution)
        cols = round(2 * half_width / resolution)
        # Whole cells, or the grid would not cover the extent it was asked for.
        for n, span in ((rows, forward_max - forward_min), (cols, 2 * half_width)):
            if abs(n * resolution - span) > 1e-6 * max(1.0, span) or n < 1:
                raise ValueError(f"the extent {extent!r} is not a whole number of "
                                 f"{resolution:g} m cells")
        self.camera = camera
        self.resolution = float(resolution)
        self.shape = (rows, cols)
        self.forward = forward_max - (np.arange(rows) + 0.5) * resolution  # (rows,) m
        self.left = half_width - (np.arange(cols) + 0.5) * resolution  # (cols,) m
        f, left = np.meshgrid(self.forward, self.left, indexing="ij")
        ground = np.stack([f, left, np.ones_like(f)], axis=-1)  # (rows, cols, 3) homogeneous
        uvw = ground @ camera.ground_homography().T
        # The third coordinate is the point's depth along the optical axis: > 0 in front.
        w = uvw[..., 2]
        seen = w > 1e-9
        uv = uvw[..., :2] / np.where(seen, w, 1.0)[..., None]
        ideal = camera.pixels_to_normalized(uv)
        distorted = camera.distort(ideal)
        pixels = camera.normalized_to_pixels(distorted)
        width, height = camera.image_size
        seen &= (pixels[..., 0] >= 0) & (pixels[..., 0] <= width - 1)
        seen &= (pixels[..., 1] >= 0) & (pixels[..., 1] <= height - 1)
        if any(camera.distortion):
            back = camera.undistort(np.where(seen[..., None], distorted, 0.0))
            seen &= np.abs(back - ideal).max(axis=-1) <= _ROUND_TRIP
        self.pixels = np.where(seen[..., None], pixels, np.nan)
        # The gather's maps: the top-left pixel of the four interpolated (-1: not seen) and the
        # weights of the right and lower neighbours; the last column and row clamp inwards.
        u = np.where(seen, pixels[..., 0], 0.0)
        v = np.where(seen, pixels[..., 1], 0.0)
        j0 = np.minimum(np.floor(u), width - 2).astype(np.int32)
        i0 = np.minimum(np.floor(v), height - 2).astype(np.int32)
        self.maps = (
            np.where(seen, i0, -1).astype(np.int32),
            j0,
            (v - i0).astype(np.float32),
            (u - j0).astype(np.float32),
        )

    def ground(self) -> np.ndarray:
        """``(rows, columns, 2)``: each cell centre's ``(forward, left)`` on the ground (m) from
        the point below the camera."""
        f, left = np.meshgrid(self.forward, self.left, indexing="ij")
        return np.stack([f, left], axis=-1)

    def warp(self, images: np.ndarray) -> np.ndarray:
        """Warp camera images ``(B, H, W)`` grey or ``(B, H, W, 3)`` colour (uint8) to new
        bird's-eye images ``(B, rows, columns)`` or ``(B, 3, rows, columns)``."""
        images = np.asarray(images, dtype=np.uint8)
        grey = images.ndim == 3
        src = images[..., None] if grey else images
        out = np.empty((len(src), src.shape[-1], *self.shape), dtype=np.uint8)
        gather(*self.maps, src, out, np.ones(len(src), dtype=bool), 0, len(src))
        return out[:, 0] if grey else out


@kernel_nogil
def gather(i0, j0, wv, wu, images, out, worlds, first, stop):
    """Warp ``images`` ``(B, H, W, C)`` of worlds ``first .. stop - 1`` selected by ``worlds``
    into ``out`` ``(B, C, rows, columns)`` (either may be a strided view) through the maps of
    :attr:`BirdseyeWarp.maps`; the signature of ``World.over_worlds``' kernels."""
    rows, cols = i0.shape
    channels = images.shape[3]
    for b in range(first, stop):
        if not worlds[b]:
            continue
        for r in range(rows):
            for c in range(cols):
                i = i0[r, c]
                if i < 0:
                    for k in range(channels):
                        out[b, k, r, c] = BIRDSEYE_FILL
                    continue
                j = j0[r, c]
                a, d = wv[r, c], wu[r, c]
                for k in range(channels):
                    top = (1.0 - d) * images[b, i, j, k] + d * images[b, i, j + 1, k]
                    low = (1.0 - d) * images[b, i + 1, j, k] + d * images[b, i + 1, j + 1, k]
                    out[b, k, r, c] = np.uint8(math.floor((1.0 - a) * top + a * low + 0.5))
