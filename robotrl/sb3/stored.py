"""Stored SB3 results (tests/baselines/sb3/<env>__<algo>.json) that the `regression` test tier checks
ours against. Reading them needs no SB3; writing them is `robotrl baselines` (robotrl.sb3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASELINE_DIR = Path(__file__).resolve().parents[2] / "tests" / "baselines" / "sb3"
FIELDS = ("env", "algo", "config", "steps", "seeds", "sb3_version", "returns", "mean", "ci95", "command")


def baseline_path(env_id: str, algo: str, root: Path = BASELINE_DIR) -> Path:
    """One file per env and algorithm; a namespace slash becomes an underscore."""
    return root / f"{env_id.replace('/', '_')}__{algo}.json"


def load_baseline(path: Path) -> dict[str, Any]:
    """A stored baseline, checked for the fields the regression tier needs."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable baseline file: {exc}") from exc
    missing = [k for k in FIELDS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {missing} (expected {list(FIELDS)})")
    return data


def list_baselines(root: Path = BASELINE_DIR) -> list[Path]:
    return sorted(root.glob("*__*.json"))
