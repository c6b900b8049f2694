"""Bundled scenario files (TOML), installed as ``lanesim.scenarios``."""
