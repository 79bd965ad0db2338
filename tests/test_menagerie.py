"""`mjcf: menagerie:NAME[/ENTRY]`: a Menagerie model through the mujoco-menagerie package, here from a
local checkout laid out as the package expects (MENAGERIE_ROOT/NAME/ENTRY.xml), so no network is needed."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import envs
from envs.robots import RobotError, load_robot

pytest.importorskip("mujoco_menagerie")
TINY = Path(__file__).resolve().parents[1] / "envs" / "robots" / "tiny_quad"


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A Menagerie checkout holding one robot, `unitree_go1`, whose `go1` entry is our tiny quadruped."""
    root = tmp_path / "menagerie"
    (root / "unitree_go1").mkdir(parents=True)
    shutil.copy(TINY / "tiny_quad.xml", root / "unitree_go1" / "go1.xml")
    monkeypatch.setenv("MENAGERIE_ROOT", str(root))
    return root


def describe(tmp_path: Path, mjcf: str) -> Path:
    raw = yaml.safe_load((TINY / "robot.yaml").read_text())
    raw["mjcf"] = mjcf
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("ref", ["menagerie:unitree_go1/go1", "menagerie:unitree_go1"])  # go1 is the default
def test_a_menagerie_model_loads_and_trains_like_any_mjcf(checkout, tmp_path, ref):
    path = describe(tmp_path, ref)
    robot = load_robot(path)
    assert robot.mjcf == checkout / "unitree_go1" / "go1.xml"
    env = envs.make("robotrl/Locomotion-v0", robot=str(path))
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(8, np.float32))
    assert obs.shape == (36,)
    env.close()


def test_menagerie_errors_name_the_file_key_and_the_way_out(checkout, tmp_path, monkeypatch):
    with pytest.raises(RobotError, match=r"robot.yaml: mjcf: menagerie:nope: Menagerie has no robot 'nope'"):
        load_robot(describe(tmp_path, "menagerie:nope"))
    with pytest.raises(RobotError, match=r"menagerie:unitree_go1/go3: unitree_go1 has no entry point 'go3' "
                                         r"\(entries: go1, scene\)"):
        load_robot(describe(tmp_path, "menagerie:unitree_go1/go3"))
    with pytest.raises(RobotError, match=r"'unitree_a1' not found under MENAGERIE_ROOT"):
        load_robot(describe(tmp_path, "menagerie:unitree_a1"))
    with pytest.raises(RobotError, match=r"a Menagerie model needs a description: write robot.yaml with "
                                         r"`mjcf: menagerie:unitree_go1`"):
        load_robot("menagerie:unitree_go1")
    monkeypatch.setitem(sys.modules, "mujoco_menagerie", None)
    with pytest.raises(RobotError, match=r"needs the mujoco-menagerie package: pip install mujoco-menagerie"):
        load_robot(describe(tmp_path, "menagerie:unitree_go1"))
