"""Golden-trajectory fixtures: record every case's rollout into one .npz, and read it back.

tests/golden.py (Reacher-v0, Reach-v0) and tests/legged_golden.py (Quadruped-v0, Locomotion-v0) each
define their cases and rollout; the file format (keys `<case>/<array>`) is this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def record_cases(cases: Mapping[str, Any], rollout: Callable[[Any], dict[str, np.ndarray]], path: Path) -> None:
    """Write every case's trajectory to `path` (keys `<case>/<array>`)."""
    arrays = {f"{name}/{key}": value for name, case in cases.items() for key, value in rollout(case).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_fixture(path: Path) -> dict[str, np.ndarray]:
    """Every array of a recorded fixture, by its `<case>/<array>` key."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
