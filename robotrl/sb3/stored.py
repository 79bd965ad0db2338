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


def estimated_train_s(base: dict[str, Any]) -> float | None:
    """A rough duration of the baseline's regression test: its seeds times its budget at the steps/s the
    SB3 side ran at when the baseline was made (the test trains ours, at our speed, on whatever machine
    runs it); None when the file has no steps_per_s."""
    rate = base.get("steps_per_s")
    return None if not rate else len(base["seeds"]) * base["steps"] / rate


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def regression_table(paths: list[Path]) -> str:
    """The README's table of the regression tier: one row per stored baseline with its seeds, budget, the
    SB3 steps/s it recorded and the estimate above, then the tier's total."""
    rows = ["| baseline (`tests/baselines/sb3/`) | config | seeds | steps per seed | SB3 steps/s (stored) "
            "| estimate |", "|---|---|---|---:|---:|---:|"]
    total, unknown = 0.0, 0
    for path in paths:
        base = load_baseline(path)
        estimate = estimated_train_s(base)
        rate = base.get("steps_per_s")
        if estimate is None:
            unknown += 1
        else:
            total += estimate
        rows.append(f"| `{path.name}` | `{base['config']}` | {', '.join(map(str, base['seeds']))} "
                    f"| {base['steps']:,} | {'not recorded' if not rate else f'{rate:.0f}'} "
                    f"| {'unknown' if estimate is None else '~' + _duration(estimate)} |")
    left_out = f" ({unknown} without a recorded steps/s left out)" if unknown else ""
    rows.append(f"| all {len(paths)} | | | | | ~{_duration(total)}{left_out} |")
    return "\n".join(rows)
