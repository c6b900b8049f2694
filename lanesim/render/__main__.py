"""Drive by hand: ``python -m lanesim.render [ENV_ID] [--action continuous] [--speed 1]``."""

from __future__ import annotations

import argparse

import lanesim  # noqa: F401  (registers the environments)
from lanesim.render.keyboard import drive


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lanesim.render", description=__doc__)
    p.add_argument("env", nargs="?", default="lanesim/Highway-v0", help="environment id")
    p.add_argument("--action", default="continuous", choices=("continuous", "discrete", "meta"))
    p.add_argument("--speed", default="1", help="real-time factor, or 'max'")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--size", default=None, help="window size WxH (default 1200x400)")
    a = p.parse_args(argv)
    options = {}
    if a.size:
        w, h = (int(v) for v in a.size.lower().split("x"))
        options.update(screen_width=w, screen_height=h)
    speed = a.speed if a.speed == "max" else float(a.speed)
    returns = drive(a.env, action=a.action, sim_speed=speed, seed=a.seed, **options)
    for i, r in enumerate(returns):
        print(f"episode {i}: return {r:+.2f}")


if __name__ == "__main__":
    main()
