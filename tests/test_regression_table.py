"""The README's table of the regression tier: one row per stored baseline, written by
scripts/regression_table.py, with a duration estimated from the baseline's own seeds, budget and steps/s."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robotrl.sb3.stored import estimated_train_s, list_baselines, regression_table

ROOT = Path(__file__).resolve().parents[1]


def _baseline(root: Path, name: str, seeds: list[int], steps: int, steps_per_s: float | None) -> Path:
    data = {"env": "robotrl/Reacher-v0", "algo": "ppo", "config": "launch/reacher_ppo.yaml", "steps": steps,
            "seeds": seeds, "sb3_version": "2.9.2", "returns": [-5.0] * len(seeds), "mean": -5.0,
            "ci95": [-5.0, -5.0], "command": "robotrl compare launch/reacher_ppo.yaml --save-baseline"}
    if steps_per_s is not None:
        data["steps_per_s"] = steps_per_s
    path = root / f"{name}__ppo.json"
    path.write_text(json.dumps(data))
    return path


def test_each_baseline_gets_a_row_with_seeds_times_steps_over_its_steps_per_s(tmp_path):
    fast = _baseline(tmp_path, "a", [0, 1, 2], 10_000, 250.0)     # 3 x 10,000 / 250 = 120 s
    slow = _baseline(tmp_path, "b", [0, 1], 60_000, 40.0)        # 2 x 60,000 / 40 = 3,000 s
    unknown = _baseline(tmp_path, "c", [4, 5], 1_000, None)
    assert estimated_train_s(json.loads(fast.read_text())) == pytest.approx(120.0)
    lines = regression_table(list_baselines(tmp_path)).splitlines()
    assert len(lines) == 2 + 3 + 1
    assert lines[2] == "| `a__ppo.json` | `launch/reacher_ppo.yaml` | 0, 1, 2 | 10,000 | 250 | ~2 min |"
    assert lines[3].endswith("| 0, 1 | 60,000 | 40 | ~50 min |")
    assert lines[4].endswith("| 4, 5 | 1,000 | not recorded | unknown |") and unknown.name in lines[4]
    assert slow.name in lines[3]
    assert lines[5] == "| all 3 | | | | | ~52 min (1 without a recorded steps/s left out) |"


def test_readme_lists_every_stored_baseline():
    """Adding a baseline without rerunning scripts/regression_table.py leaves the README's durations
    incomplete: this fails until it is rerun."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "regression_table.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    readme = (ROOT / "README.md").read_text()
    for path in list_baselines():
        assert f"`{path.name}`" in readme, path.name


def test_the_script_refuses_a_readme_without_its_markers():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from regression_table import END, START, with_table
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    with pytest.raises(ValueError, match="needs one"):
        with_table("# no table here\n", "| x |")
    text = f"intro\n{START}\n| old |\n{END}\nafter\n"
    assert with_table(text, "| new |") == f"intro\n{START}\n| new |\n{END}\nafter\n"
