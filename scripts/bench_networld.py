"""Simulated steps per second of the network simulator (lanesim.sim.networld) on the three
networks of scenarios/networks/, for one world and for 256, with traffic already on the
network (300 s of warm-up) at the demand of tests/test_networld.py's long runs::

    .venv/bin/python scripts/bench_networld.py

Rows: one compiled call of many steps (the simulator's own rate), ``step()`` called once per
step from Python (its call overhead included), and the ego on the autopilot for 15 steps a
call (an environment's decision at 1 Hz with sim_hz 15).
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import numpy as np

from lanesim.sim.network import Network
from lanesim.sim.networld import CAR, NetWorld, NetWorldSpec

NETWORKS = Path(__file__).resolve().parents[1] / "scenarios" / "networks"
DEMAND = {"intersection": 0.06, "roundabout": 0.1, "exit": 0.15}  # cars/s per entry lane
EGO = {"intersection": "west:0", "roundabout": "east:0", "exit": "approach:1"}


def rate(fn, steps: int, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return steps / best


def main() -> None:
    for name, demand in DEMAND.items():
        with open(NETWORKS / f"{name}.toml", "rb") as f:
            net = Network.from_dict(tomllib.load(f)["network"])
        spec = NetWorldSpec(net, slots=24, spawn_rate=demand, dt=1 / 15, warmup=300.0,
                            ego_lane=EGO[name], ego_u=5.0, ego_speed=0.0)
        for B in (1, 256):
            world = NetWorld(spec, B)
            world.reset()
            cars = (world.kind == CAR).sum(axis=1).mean()
            frames = 3000 if B == 1 else 150
            one_call = rate(lambda w=world, n=frames: w.run(n), frames * B)
            drive = rate(lambda w=world, lane=EGO[name]: w.drive(15, lane, 0.0), 15 * B)
            row = (f"{name:12s} B={B:<3d} {cars:4.1f} cars/world: {one_call:>11,.0f} steps/s in "
                   f"one call, {drive:>11,.0f} on the autopilot 15 a call")
            if B == 1:
                step = rate(lambda w=world: [w.step(0.0, 0.0) for _ in range(1000)], 1000)
                row += f", {step:>9,.0f} step() calls/s"
            print(row)
            world.close()


if __name__ == "__main__":
    main()
