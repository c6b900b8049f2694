"""A calibrated pinhole camera mounted on the ego car.

Frames
------
*Vehicle frame*: origin on the ground below the car's centre, ``x`` forward, ``y`` left, ``z``
up (m).

*Camera frame* (OpenCV's): origin at the camera's optical centre, ``x`` right, ``y`` down, ``z``
forward along the optical axis (m).

*Ground frame* of the homography: metres ``forward`` and ``left`` on the ground from the point
straight below the camera, along the car's axes.

*Pixels*: ``(u, v)`` with ``u`` to the right and ``v`` down; the centre of pixel (row ``i``,
column ``j``) is ``(u, v) = (j, i)``, as in OpenCV.

Distortion is OpenCV's radial–tangential model with four coefficients ``(k1, k2, p1, p2)``: a
point ``(x, y) = (X / Z, Y / Z)`` on the normalised image plane moves to

    x' = x (1 + k1 r² + k2 r⁴) + 2 p1 x y + p2 (r² + 2 x²)
    y' = y (1 + k1 r² + k2 r⁴) + p1 (r² + 2 y²) + 2 p2 x y,     r² = x² + y²

and lands on pixel ``(fx x' + cx, fy y' + cy)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Camera"]

# Undistortion by fixed-point iteration, as OpenCV's undistortPoints does; these bound it.
_UNDISTORT_ITERATIONS = 50
_UNDISTORT_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Camera:
    """A pinhole camera with lens distortion, mounted on the ego.

    Args:
        intrinsics: ``(fx, fy, cx, cy)`` in pixels: focal lengths and principal point.
        distortion: ``(k1, k2, p1, p2)``, OpenCV's radial (``k``) and tangential (``p``)
            coefficients; zeros (the default) is an ideal pinhole.
        image_size: ``(width, height)`` in pixels.
        height: of the optical centre above the ground (m), > 0.
        forward: of the optical centre ahead of the car's centre (m).
        pitch: rotation of the optical axis below the horizon (rad, down positive), within
            ±80°.
        yaw: rotation of the optical axis to the left of the car's axis (rad), within ±90°.

    Raises:
        ValueError: naming the argument, when a value is not finite or out of its range.
    """

    intrinsics: tuple[float, float, float, float]
    distortion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    image_size: tuple[int, int] = (84, 84)
    height: float = 1.3
    forward: float = 1.0
    pitch: float = 0.0
    yaw: float = 0.0

    def __post_init__(self) -> None:
        intr = _floats("intrinsics", self.intrinsics, 4)
        if intr[0] <= 0 or intr[1] <= 0:
            raise ValueError(f"intrinsics fx and fy must be > 0 pixels, got {intr[:2]}")
        dist = _floats("distortion", self.distortion, 4)
        size = tuple(self.image_size)
        if len(size) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in size):
            raise ValueError(
                f"image_size must be (width, height), two integers >= 1, got {self.image_size!r}"
            )
        for name, lo, hi in (("height", 1e-3, 100.0), ("forward", -50.0, 50.0),
                             ("pitch", -math.radians(80), math.radians(80)),
                             ("yaw", -math.pi / 2, math.pi / 2)):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}, got {v!r}")
            object.__setattr__(self, name, float(v))
        object.__setattr__(self, "intrinsics", intr)
        object.__setattr__(self, "distortion", dist)
        object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))

    @classmethod
    def from_fov(cls, fov: float, image_size: tuple[int, int] = (84, 84), **mount) -> Camera:
        """A camera with square pixels, the principal point at the image centre and a horizontal
        field of view of ``fov`` (rad, between 1° and 170°); ``mount`` takes the other
        keywords (``distortion``, ``height``, ``forward``, ``pitch``, ``yaw``)."""
        if not isinstance(fov, (int, float, np.floating)) or not (
            math.radians(1) <= fov <= math.radians(170)
        ):
            raise ValueError(f"fov must be from 1 to 170 degrees (in radians), got {fov!r}")
        w, h = image_size
        f = 0.5 * w / math.tan(0.5 * fov)
        return cls((f, f, 0.5 * (w - 1), 0.5 * (h - 1)), image_size=image_size, **mount)

    def resized(self, image_size: tuple[int, int]) -> Camera:
        """The same camera (mounting, lens distortion, horizontal field of view, pixel aspect)
        for images of ``image_size`` ``(width, height)``, the principal point at their centre:
        the viewer's camera pane shows what an observation's camera sees, wider or taller."""
        fx, fy, _, _ = self.intrinsics
        w, h = image_size
        f = fx * w / self.image_size[0]
        return Camera((f, f * fy / fx, 0.5 * (w - 1), 0.5 * (h - 1)), self.distortion,
                      (w, h), self.height, self.forward, self.pitch, self.yaw)

    # ------------------------------------------------------------------ matrices
    @property
    def matrix(self) -> np.ndarray:
        """The ``(3, 3)`` camera matrix ``K`` (OpenCV's ``cameraMatrix``)."""
        fx, fy, cx, cy = self.intrinsics
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    @property
    def rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation from the vehicle frame to the camera frame: its rows are the
        camera's right, down and forward axes in vehicle coordinates."""
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        forward = np.array([cp * cy, cp * sy, -sp])
        right = np.array([sy, -cy, 0.0])
        down = np.cross(forward, right)
        return np.stack([right, down, forward])

    @property
    def position(self) -> np.ndarray:
        """The optical centre in the vehicle frame ``(3,)`` (m)."""
        return np.array([self.forward, 0.0, self.height])

    def vehicle_to_camera(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)`` vehicle-frame points to the camera frame (m)."""
        p = np.asarray(points, dtype=np.float64)
        return (p - self.position) @ self.rotation.T

    def ground_homography(self) -> np.ndarray:
        """The ``(3, 3)`` homography ``H`` from the ground to undistorted pixels:
        ``(u, v, 1) ∝ H @ (forward, left, 1)``, ground coordinates in metres from the point
        below the camera. ``np.linalg.inv(H)`` maps pixels back to the ground (inverse
        perspective mapping); only pixels below the horizon have a ground point in front."""
        R = self.rotation
        # A ground point is (forward, left, -height) from the optical centre.
        return self.matrix @ np.column_stack([R[:, 0], R[:, 1], -self.height * R[:, 2]])

    def horizon_row(self, u: float | None = None) -> float:
        """The undistorted image row ``v`` of the horizon at column ``u`` (default: the
        principal point's column): points on the ground lie below it."""
        fx, fy, cx, cy = self.intrinsics
        u = cx if u is None else u
        # Directions with no vertical component in the vehicle frame: R^T (x, y, 1) has z = 0.
        r = self.rotation
        x = (u - cx) / fx
        # r[0, 2] x + r[1, 2] y + r[2, 2] = 0 solved for the normalised y.
        return fy * (-(r[0, 2] * x + r[2, 2]) / r[1, 2]) + cy if r[1, 2] != 0 else math.inf

    # ------------------------------------------------------------------ projection
    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame points ``(N, 3)`` (m) to pixels ``(N, 2)``, distortion included: the
        numbers of OpenCV's ``projectPoints`` with zero rotation and translation.

        Returns:
            ``(pixels, in_front)``: ``in_front`` ``(N,)`` is True where ``Z > 0``; the pixels of
            the other points are NaN, never a mirrored projection.
        """
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {p.shape}")
        z = p[:, 2]
        in_front = z > 0
        safe = np.where(in_front, z, 1.0)
        xy = np.stack([p[:, 0] / safe, p[:, 1] / safe], axis=1)
        uv = self.normalized_to_pixels(self.distort(xy))
        uv[~in_front] = np.nan
        return uv, in_front

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Ideal normalised image points ``(N, 2)`` (``X/Z, Y/Z``) to distorted ones."""
        k1, k2, p1, p2 = self.distortion
        xy = np.asarray(xy, dtype=np.float64)
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 * r2
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        return np.stack([xd, yd], axis=-1)

    def undistort(self, xy: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
        """Distorted normalised image points ``(N, 2)`` to ideal ones: the inverse of
        :meth:`distort`, by fixed-point iteration (OpenCV's method), exact to about 1e-12 for
        the mild distortion of real lenses inside the image. A point whose result, distorted
        again, misses it by more than ``tolerance`` (normalised units; the iteration did not
        converge there, as for strong distortion far off the axis) is NaN, never a wrong
        direction."""
        xy = np.asarray(xy, dtype=np.float64)
        k1, k2, p1, p2 = self.distortion
        if not any(self.distortion):
            return xy.copy()
        xd, yd = xy[..., 0], xy[..., 1]
        x, y = xd.copy(), yd.copy()
        for _ in range(_UNDISTORT_ITERATIONS):
            r2 = x * x + y * y
            radial = 1.0 + k1 * r2 + k2 * r2 * r2
            nx = (xd - 2.0 * p1 * x * y - p2 * (r2 + 2.0 * x * x)) / radial
            ny = (yd - p1 * (r2 + 2.0 * y * y) - 2.0 * p2 * x * y) / radial
            step = max(float(np.max(np.abs(nx - x), initial=0.0)),
                       float(np.max(np.abs(ny - y), initial=0.0)))
            x, y = nx, ny
            if step < _UNDISTORT_TOLERANCE:
                break
        out = np.stack([x, y], axis=-1)
        with np.errstate(invalid="ignore", over="ignore"):
            miss = np.abs(self.distort(out) - xy).max(axis=-1)
        out[~(miss <= tolerance)] = np.nan
        return out

    def one_to_one_radius(self, limit: float = 5.0, steps: int = 2000) -> float:
        """The largest radius ``r`` of the normalised image plane (``tan`` of the angle off the
        optical axis, undistorted) within which the lens distortion is one-to-one in every
        direction (its Jacobian stays positive): beyond it, barrel distortion folds points far
        to the side back onto the image, so a drawing must not project them. ``inf`` without
        distortion; at most ``limit`` (searched in ``steps`` steps)."""
        if not any(self.distortion):
            return math.inf
        angle = np.linspace(0.0, 2 * math.pi, 64, endpoint=False)
        radius = np.linspace(0.0, limit, steps + 1)[1:]
        xy = radius[:, None, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)[None]
        eps = 1e-7
        ddx = self.distort(xy + [eps, 0.0]) - self.distort(xy - [eps, 0.0])
        ddy = self.distort(xy + [0.0, eps]) - self.distort(xy - [0.0, eps])
        folded = (ddx[..., 0] * ddy[..., 1] - ddx[..., 1] * ddy[..., 0]) <= 0
        if not folded.any():
            return float(limit)
        return float(radius[max(int(np.argmax(folded.any(axis=1))) - 1, 0)])

    def normalized_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Normalised image points ``(N, 2)`` to pixels (no distortion applied)."""
        fx, fy, cx, cy = self.intrinsics
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([fx * xy[..., 0] + cx, fy * xy[..., 1] + cy], axis=-1)

    def pixels_to_normalized(self, uv: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` to normalised image points (no distortion removed)."""
        fx, fy, cx, cy = self.intrinsics
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy], axis=-1)

    def pixel_rays(self) -> np.ndarray:
        """``(height, width, 3)``: the unit direction, in the vehicle frame, of the ray through
        the centre of every pixel of the (distorted) image; what a renderer casts."""
        w, h = self.image_size
        v, u = np.mgrid[0:h, 0:w].astype(np.float64)
        return self.rays(np.stack([u, v], axis=-1))

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Distorted pixel positions ``(..., 2)`` (``u, v``, anywhere, e.g. pixel corners) to
        the unit directions ``(..., 3)`` of their rays in the vehicle frame."""
        xy = self.undistort(self.pixels_to_normalized(uv))
        cam = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)
        rays = cam @ self.rotation  # camera frame -> vehicle frame: R^T applied to each row
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)

    def ground_to_pixels(self, ground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground points ``(N, 2)`` (``forward, left`` from the point below the camera, m) to
        distorted pixels, with :meth:`project`'s ``in_front``."""
        g = np.asarray(ground, dtype=np.float64)
        veh = np.column_stack([g[:, 0] + self.forward, g[:, 1], np.zeros(len(g))])
        return self.project(self.vehicle_to_camera(veh))


def _floats(name: str, values, n: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {n} numbers, got {values!r}") from None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be {n} finite numbers, got {values!r}")
    return out
