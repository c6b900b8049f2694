"""The driver's-seat camera: a calibrated pinhole model with OpenCV's lens distortion, and the
compiled renderer of what it sees.

:class:`Camera` projects camera-frame points to pixels and gives the ground homography whose
inverse is the inverse perspective mapping. The renderer, the bird's-eye view and the road
overlay in perspective all use it, and it is public for users who build their own perception.
:class:`CameraRaster` draws the camera's view of every world of a simulator batch;
:class:`NetworkCameraRaster` the same on a road network.
"""

from lanesim.camera.model import Camera
from lanesim.camera.netraster import NetworkCameraRaster
from lanesim.camera.raster import CameraRaster

__all__ = ["Camera", "CameraRaster", "NetworkCameraRaster"]
