"""Rasters of road networks beside the simulator, for the observations and the viewer alike
(:mod:`lanesim.raster.network`)."""
