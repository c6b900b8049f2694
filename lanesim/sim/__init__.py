"""The batched driving simulator: road geometry, vehicles, traffic models and collisions.

It knows nothing of Gymnasium or pygame; :mod:`lanesim.envs` adapts it.
"""
