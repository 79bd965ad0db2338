"""The wheel a user installs, not the editable checkout `./dev` sets up.

An editable install reads the source tree, so a package missing from the wheel (robotrl.sb3 was, once the
list in pyproject.toml fell behind) is invisible to every other test. This one builds the wheel from a copy
of the tracked files only, installs it non-editable into a fresh venv with the `train` and `sb3` extras,
and runs every `robotrl` subcommand's --help and a tiny `compare` from outside the checkout.

It needs the package index that pip is configured with here (pip's cache or a local wheel folder makes it
quick): torch comes first as the pinned CPU build (FACTS.md: an open `torch` requirement pulls the CUDA
libraries).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TORCH_CPU = "torch==2.13.0"
# Top-level packages the wheel ships (pyproject.toml's packages.find include).
SHIPPED = ("robotrl", "envs", "policies", "deploy")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def tracked_copy(dest: Path) -> Path:
    """The tracked files as they are in the working tree (untracked and ignored ones left out)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in names.decode().split("\0"):
        src = REPO / name
        if name and src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def source_packages(root: Path) -> set[str]:
    """Every package (folder with an __init__.py) under the shipped top-level packages."""
    return {str(p.parent.relative_to(root)).replace("/", ".")
            for top in SHIPPED for p in (root / top).rglob("__init__.py")}


def subcommands(robotrl: Path, cwd: Path, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the installed CLI, read from each --help: argparse lists a command's
    subcommands as `{a,b,...}` at the start of a line under "positional arguments" (an option's choices
    follow the option on its line)."""
    text = run([str(robotrl), *prefix, "--help"], cwd)
    found = [prefix]
    choices = re.search(r"^  \{([a-z0-9_,-]+)\}", text, re.MULTILINE)
    for name in choices.group(1).split(",") if choices else []:
        found += subcommands(robotrl, cwd, (*prefix, name))
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(wheel, venv, a work folder outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    src = tracked_copy(root / "src")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(src)], root)
    (wheel,) = (root / "dist").glob("robotrl-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], root)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, TORCH_CPU], root)
    run([*pip, f"{wheel}[train,sb3]"], root)
    work = root / "work"
    work.mkdir()
    return wheel, venv, work


def test_wheel_holds_every_package_of_the_tracked_tree_and_the_robot_assets(installed, tmp_path):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    expected = source_packages(tracked_copy(tmp_path / "src"))
    assert {"robotrl.sb3", "robotrl.hyper", "robotrl.train", "robotrl.agents"} <= expected
    assert sorted(expected - in_wheel) == []
    assert any(n.startswith("envs/assets/") and n.endswith(".xml") for n in names)


def test_installed_cli_answers_help_for_every_subcommand_outside_the_checkout(installed):
    _, venv, work = installed
    robotrl = venv / "bin" / "robotrl"
    # The installed package, not the checkout, is what runs.
    where = run([str(venv / "bin" / "python"), "-c", "import robotrl.sb3, sys; print(robotrl.sb3.__file__)"], work)
    assert where.startswith(str(venv))
    commands = subcommands(robotrl, work)
    assert {("compare",), ("baselines",), ("bench", "train"), ("train",), ("eval",), ("export",)} <= set(commands)


def test_installed_wheel_runs_a_tiny_compare_against_sb3(installed):
    _, venv, work = installed
    config = work / "tiny_pendulum_ppo.yaml"
    config.write_text(yaml.safe_dump({
        "algo": "ppo", "seed": 1, "env": {"id": "InvertedPendulum-v5", "num_envs": 2},
        "train": {"total_steps": 512, "eval_every": 256, "eval_episodes": 2, "final_eval_episodes": 2,
                  "checkpoint_every": 512},
        "ppo": {"n_steps": 128, "batch_size": 128, "n_epochs": 1}}))
    out = run([str(venv / "bin" / "robotrl"), "compare", str(config), "--seeds", "1", "--out", str(work / "cmp"),
               "--json"], work)
    report = json.loads(out)
    assert report["algo"] == "ppo" and report["steps"] == 512
    assert len(report["ours"]["returns"]) == 1 and len(report["sb3"]["returns"]) == 1
