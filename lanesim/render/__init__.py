"""Rendering: reads simulator state, never changes it."""
