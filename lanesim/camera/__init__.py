"""The driver's-seat camera: a calibrated pinhole model with OpenCV's lens distortion.

:class:`Camera` projects camera-frame points to pixels and gives the ground homography whose
inverse is the inverse perspective mapping. The renderer, the bird's-eye view and the road
overlay in perspective all use it, and it is public for users who build their own perception.
"""

from lanesim.camera.model import Camera

__all__ = ["Camera"]
