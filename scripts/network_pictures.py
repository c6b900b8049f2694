"""Pictures of the three networks of scenarios/networks/ (lanesim.render.netdraw): an RGB
frame each, with cars placed on lanes, the ego's route and the lanes it may take, written to
docs/{intersection,roundabout,exit}.png; with ``--grey DIR`` also each ego's grey observation
frame (84 × 84, shown 4× larger) into DIR; with ``--viewer`` instead the real viewer's frames
(``render_mode="rgb_array"``, 1200 × 400, HUD and road overlay) of the value-iteration driver in
lanesim/Intersection-v0, Roundabout-v0 and Exit-v0, at a moment of each episode given below,
into docs/viewer_{intersection,roundabout,exit}.png; with ``--pixels`` instead the newest frame
of the ``pixels`` observation (the real environments', route band included; 84 × 84, shown 3×
larger) of Intersection-v0 with each goal and of Exit-v0 from its left lane, side by side,
into docs/network_pixels.png; with ``--camera`` instead the driver's-seat camera on the networks,
the value-iteration driver driving to the moments of ``--viewer``: the viewer's camera view
(1200 × 400, both panes) of Intersection-v0 into docs/viewer_network_camera.png, and per
network the ``camera`` observation's newest frame in colour and grey (84 × 84) and the
``birdseye`` one (80 × 40 cells), shown 3× larger, into docs/network_camera.png.

    python scripts/network_pictures.py [--grey /tmp/frames] [--viewer] [--pixels] [--camera]

With ``--roads`` instead the pictures of README's one-road ids Racetrack-v0 and TwoWay-v0 from
the real viewer (:func:`road_pictures`).
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from lanesim.envs.netpixels import network_frames
from lanesim.render.netdraw import NetworkPainter
from lanesim.sim.network import Network

ROOT = Path(__file__).resolve().parents[1]

# Per network: cars as (lane, u) with the ego first, its route, the lanes that yield, the
# frame's centre (m), size (px), scale (px/m) and rotation (None: north up).
SCENES = {
    "intersection": dict(
        cars=[("west:0", 82.0), ("west:0", 60.0), ("east:0", 84.0), ("south:0", 88.0),
              ("north:-1", 25.0), ("east.0>south.-1:0", 6.0), ("west:-1", 40.0)],
        route=["west:0", "west.0>north.-1:0", "north:-1"],
        yields=["south:0", "north:0"], centre=(-12.0, 4.0), size=(800, 560), ppm=9.0),
    "roundabout": dict(
        cars=[("east:0", 48.0), ("ring_north_a:1", 8.0), ("ring_west_b:0", 4.0),
              ("ring_south_a:0", 15.0), ("south:-1", 30.0), ("west:0", 80.0),
              ("ring_east_a:1", 12.0)],
        route=["east:0", "east.0>ring_east_b.1:0", "ring_east_b:1", "ring_north_a:1",
               "ring_north_b:1", "ring_north_b.1>west.-1:0", "west:-1"],
        yields=["east:0", "north:0", "west:0", "south:0"], centre=(8.0, 0.0),
        size=(800, 560), ppm=9.0),
    "exit": dict(
        cars=[("decel:3", 40.0), ("approach:2", 470.0), ("approach:1", 440.0),
              ("decel:1", 50.0), ("main:0", 30.0), ("decel:2", 85.0), ("ramp:0", 30.0)],
        route=["decel:3", "decel.3>ramp.0:0", "ramp:0"],
        yields=[], centre=(590.0, -14.0), size=(1000, 420), ppm=5.0),
}


def load(name: str) -> Network:
    with open(ROOT / "scenarios" / "networks" / f"{name}.toml", "rb") as f:
        return Network.from_dict(tomllib.load(f)["network"])


def scene_rows(net: Network, cars) -> tuple[np.ndarray, ...]:
    """``(N,)`` entity rows of cars at ``(lane name, u)``, one spare inactive slot last."""
    lanes = np.array([net.lane(name) for name, _ in cars])
    x, y, h = net.lane_to_world(lanes, np.array([u for _, u in cars]))
    n = len(cars) + 1
    kind = np.array([0] + [1] * (n - 2) + [-1])
    pad = np.zeros(1)
    return (np.concatenate([x, pad]), np.concatenate([y, pad]), np.concatenate([h, pad]),
            np.full(n, 4.5), np.full(n, 1.9), kind, np.zeros(n, dtype=bool))


# Per id: the episode's seed and the decision whose frame is kept (the ego in the junction).
VIEWER_SHOTS = {"Intersection-v0": (3, 24), "Roundabout-v0": (1, 40), "Exit-v0": (0, 105)}


def drive_to(env, seed: int, keep: int):
    """Reset ``env`` with ``seed`` and let the value-iteration driver drive ``keep`` decisions
    (or to the episode's end); returns the last observation."""
    from agents.vi_driver import VIDriver
    from lanesim.render import annotate

    agent = VIDriver()
    obs, _ = env.reset(seed=seed)
    agent.reset(env)
    for _ in range(keep):
        action = agent.act(obs)
        annotate(env, **agent.annotations())
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return obs


def viewer_pictures() -> None:
    import gymnasium as gym

    import lanesim  # noqa: F401

    for env_id, (seed, keep) in VIEWER_SHOTS.items():
        env = gym.make(f"lanesim/{env_id}", render_mode="rgb_array", action="meta",
                       screen_width=1200, screen_height=400)
        drive_to(env, seed, keep)
        name = env_id.split("-")[0].lower()
        imageio.imwrite(ROOT / "docs" / f"viewer_{name}.png", env.render())
        env.close()
        print(f"docs/viewer_{name}.png")


def road_pictures() -> None:
    """docs/racetrack.png and docs/twoway.png: the real viewer (600 × 300, HUD and overlay)
    with the value-iteration driver at the wheel: on the racetrack 30 decisions into seed 0's
    episode, on the two-way road at the first decision (seed 0 on) at which it overtakes in
    the oncoming lane with an oncoming car in view."""
    import gymnasium as gym

    import lanesim  # noqa: F401
    from agents.vi_driver import VIDriver
    from lanesim.render import annotate

    def drive(env, seed, stop):
        agent = VIDriver()
        obs, _ = env.reset(seed=seed)
        agent.reset(env)
        for t in range(int(env.unwrapped.options.duration * env.unwrapped.options.policy_hz)):
            action = agent.act(obs)
            annotate(env, **agent.annotations())
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                return False
            if stop(t, info, env.unwrapped.world):
                return True
        return False

    def overtaking(t, info, w):
        if info["lane"] != 0:  # lane 0: the oncoming lane
            return False
        ahead = (w.s[0, 1:] - w.s[0, 0] > 20.0) & (w.s[0, 1:] - w.s[0, 0] < 60.0)
        return bool((ahead & (w.lane[0, 1:] == 0)).any())

    for env_id, name, stop in (("Racetrack-v0", "racetrack", lambda t, i, w: t + 1 >= 30),
                               ("TwoWay-v0", "twoway", overtaking)):
        env = gym.make(f"lanesim/{env_id}", render_mode="rgb_array", action="meta",
                       screen_width=600, screen_height=300)
        seed = 0
        while not drive(env, seed, stop):
            seed += 1
            if seed > 50:
                raise RuntimeError(f"no moment found on {env_id} in seeds 0-50")
        imageio.imwrite(ROOT / "docs" / f"{name}.png", env.render())
        env.close()
        print(f"docs/{name}.png (seed {seed})")


# (id, gym.make keywords) of docs/network_pixels.png's frames, left to right: 10 m before the
# minor road's end (the junction in view) with the left, straight-on and right goal; the exit
# from the left lane (two lane changes to the right ahead).
PIXEL_SHOTS = (
    ("Intersection-v0", dict(goals=["west:-1"], ego_start=90.0)),
    ("Intersection-v0", dict(goals=["north:-1"], ego_start=90.0)),
    ("Intersection-v0", dict(goals=["east:-1"], ego_start=90.0)),
    ("Exit-v0", dict(ego_start_lanes=["approach:0"], ego_start=150.0)),
)


def pixel_pictures() -> None:
    import gymnasium as gym

    import lanesim  # noqa: F401

    tiles = []
    for env_id, kwargs in PIXEL_SHOTS:
        env = gym.make(f"lanesim/{env_id}", observation="pixels", action="meta", **kwargs)
        obs, _ = env.reset(seed=0)
        tiles.append(np.pad(np.kron(obs[-1], np.ones((3, 3), np.uint8)), 3,
                            constant_values=255))
        env.close()
    imageio.imwrite(ROOT / "docs" / "network_pixels.png", np.concatenate(tiles, axis=1))
    print("docs/network_pixels.png")


def camera_pictures() -> None:
    import gymnasium as gym

    import lanesim  # noqa: F401

    env = gym.make("lanesim/Intersection-v0", render_mode="rgb_array", action="meta",
                   screen_width=1200, screen_height=400, view="both")
    drive_to(env, *VIEWER_SHOTS["Intersection-v0"])
    imageio.imwrite(ROOT / "docs" / "viewer_network_camera.png", env.render())
    env.close()
    print("docs/viewer_network_camera.png")
    rows = []
    for env_id, (seed, keep) in VIEWER_SHOTS.items():
        tiles = []
        for observation, colour in (("camera", True), ("camera", False), ("birdseye", False)):
            env = gym.make(f"lanesim/{env_id}", action="meta", observation=observation,
                           camera_color=colour)
            obs = drive_to(env, seed, keep)
            frame = obs[-3:].transpose(1, 2, 0) if colour else np.repeat(obs[-1][..., None], 3, 2)
            frame = np.kron(frame, np.ones((3, 3, 1), np.uint8))
            tiles.append(np.pad(frame, ((3, 3 + 252 - frame.shape[0]), (3, 3), (0, 0)),
                                constant_values=255))
            env.close()
        rows.append(np.concatenate(tiles, axis=1))
    imageio.imwrite(ROOT / "docs" / "network_camera.png", np.concatenate(rows, axis=0))
    print("docs/network_camera.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grey", type=Path, help="also write grey observation frames here")
    ap.add_argument("--viewer", action="store_true",
                    help="write the viewer's frames of the value-iteration driver instead")
    ap.add_argument("--roads", action="store_true",
                    help="instead: docs/racetrack.png and docs/twoway.png from the real viewer")
    ap.add_argument("--pixels", action="store_true",
                    help="write the pixel observation's frames on the networks instead")
    ap.add_argument("--camera", action="store_true",
                    help="write the driver's-seat camera's pictures on the networks instead")
    args = ap.parse_args()
    if args.camera:
        camera_pictures()
        return
    if args.pixels:
        pixel_pictures()
        return
    if args.viewer:
        viewer_pictures()
        return
    if args.roads:
        road_pictures()
        return
    for name, sc in SCENES.items():
        net = load(name)
        rows = scene_rows(net, sc["cars"])
        painter = NetworkPainter(net, sc["ppm"], yield_ends=sc["yields"])
        route = [net.lane(v) for v in sc["route"]]
        frame = painter.frame(*rows, centre=sc["centre"], size=sc["size"], route=route,
                              options=net.successors(route[0]))
        imageio.imwrite(ROOT / "docs" / f"{name}.png", frame)
        if args.grey:
            args.grey.mkdir(parents=True, exist_ok=True)
            grey = network_frames(net, (84, 84), 0.5, yield_ends=sc["yields"])
            f = grey(*(a[None] for a in rows[:6]))[0]
            imageio.imwrite(args.grey / f"{name}_grey.png", np.kron(f, np.ones((4, 4), np.uint8)))
        print(f"docs/{name}.png")


if __name__ == "__main__":
    main()
