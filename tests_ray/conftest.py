"""Tests for the Ray RLlib integration. They need Ray, which pins gymnasium==1.2.2, so they run
in their own venv: ``scripts/ray-test.sh`` (not part of ``make test``)."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
# Ray worker processes inherit these; keep Ray from phoning home or starting a dashboard.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
