"""The architecture holds: imports flow cli -> agents / render / envs -> sim, agents use only
public APIs, and every agent follows the one protocol of agents.base."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Every module each ``.py`` file under ``folder`` imports (absolute names, top level and
    inside functions alike)."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def importing(folder: str, package: str) -> list[str]:
    """The files under ``folder`` that import ``package`` or one of its modules."""
    return [
        f"{path} imports {name}"
        for path, names in imported_modules(ROOT / folder).items()
        for name in sorted(names)
        if name == package or name.startswith(package + ".")
    ]


@pytest.mark.parametrize(
    "folder", ["lanesim/sim", "lanesim/camera", "lanesim/raster", "lanesim/envs",
               "lanesim/render"]
)
def test_simulator_camera_envs_and_rendering_never_import_agents(folder):
    assert importing(folder, "agents") == []


@pytest.mark.parametrize("package", ["gymnasium", "pygame", "lanesim.envs", "lanesim.render"])
def test_simulator_imports_neither_gymnasium_nor_pygame_nor_the_layers_above(package):
    assert importing("lanesim/sim", package) == []


@pytest.mark.parametrize("package", ["gymnasium", "pygame", "lanesim.envs", "lanesim.render"])
@pytest.mark.parametrize("folder", ["lanesim/camera", "lanesim/raster"])
def test_camera_and_raster_sit_beside_the_simulator_below_envs_and_rendering(folder, package):
    # The camera and the network raster draw from the simulator's state for the envs and the
    # viewer alike.
    assert importing(folder, package) == []


def test_envs_import_rendering_only_to_open_the_viewer():
    # Observations draw with lanesim.camera and lanesim.raster; lanesim.render is the viewer's.
    lazy = {"lanesim/envs/driving.py imports lanesim.render.viewer",
            "lanesim/envs/vector.py imports lanesim.render.viewer"}
    assert set(importing("lanesim/envs", "lanesim.render")) <= lazy


def test_the_import_walk_sees_imports_inside_functions(tmp_path, monkeypatch):
    # The guard above would pass vacuously if the walk missed lazy imports.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("def f():\n    from agents.mdp import FiniteMDP\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert importing("pkg", "agents") == ["pkg/m.py imports agents.mdp"]


def private_reads(path: Path) -> list[str]:
    """``obj._name`` reads in ``path`` of a private attribute that the file itself does not
    define, on anything but ``self`` / ``cls``: another module's internals."""
    tree = ast.parse(path.read_text(), str(path))
    own = {node.name for node in ast.walk(tree)
           if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    own |= {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") or node.attr in own:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.attr}")
    return found


# pygame documents Surface._pixels_address (the pixel buffer's address) despite its underscore.
OTHER_LIBRARIES_PUBLIC = ("reads ._pixels_address",)


@pytest.mark.parametrize("package", ["agents", "lanesim", "lanesim_bench"])
def test_no_module_reads_a_private_attribute_of_another(package):
    found = [
        hit
        for path in sorted((ROOT / package).rglob("*.py"))
        for hit in private_reads(path)
        if not hit.endswith(OTHER_LIBRARIES_PUBLIC)
    ]
    assert found == []


def test_agents_reach_the_simulator_only_through_the_scene():
    # env.unwrapped.scene() is the planners' view; .core and .world are the envs' internals.
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.attr}"
        for path in sorted((ROOT / "agents").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in ("core", "world")
    ]
    assert found == []


AGENT_CLASSES = [
    "agents.baselines:RandomAgent",
    "agents.baselines:ConstantAgent",
    "agents.baselines:IdleAgent",
    "agents.vi_driver:VIDriver",
    "agents.dqn.agent:DQNAgent",
    "agents.sb3:SB3Policy",
    "agents.qlearning:QLearningAgent",
    "lanesim.render.keyboard:KeyboardAgent",
]


@pytest.mark.parametrize("name", AGENT_CLASSES)
def test_every_agent_follows_the_one_protocol(name):
    module, cls_name = name.split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    params = {method: list(inspect.signature(getattr(cls, method)).parameters)
              for method in ("reset", "act", "annotations")}
    assert params == {"reset": ["self", "env"], "act": ["self", "obs"],
                      "annotations": ["self"]}


def test_dqn_package_keeps_its_train_module_reachable():
    # The package's training function must not shadow the module agents.dqn.train.
    import agents.dqn

    assert inspect.ismodule(agents.dqn.train)
    assert agents.dqn.train_dqn is agents.dqn.train.train_dqn
