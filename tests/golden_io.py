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


CROSS_CPU_TOLERANCE = {np.dtype(np.float64): (1e-5, 1e-7), np.dtype(np.float32): (1e-5, 1e-6)}
"""(rtol, atol) by dtype. Another CPU generation rounds a few of MuJoCo's and numpy's float operations
differently (an AMD EPYC of family 26 replayed these fixtures to one unit in the last place of a float32
observation, and Reacher's float64 rewards, computed from float32 quantities, to 5e-7 relative). A
change of behaviour (a term, a 1% gain, state one physics step old) moves values by 1e-3 and more."""


def assert_replays(now: np.ndarray, then: np.ndarray, err_msg: str) -> None:
    """`now` is the recorded trajectory `then`: the same dtype and shape, flags and integers exactly equal,
    floats within CROSS_CPU_TOLERANCE (exact equality held only on the CPU that recorded them)."""
    now, then = np.asarray(now), np.asarray(then)
    assert now.dtype == then.dtype and now.shape == then.shape, \
        f"{err_msg}: {now.dtype}{now.shape}, recorded {then.dtype}{then.shape}"
    if now.dtype in CROSS_CPU_TOLERANCE:
        rtol, atol = CROSS_CPU_TOLERANCE[now.dtype]
        np.testing.assert_allclose(now, then, rtol=rtol, atol=atol, err_msg=err_msg)
    else:
        np.testing.assert_array_equal(now, then, err_msg=err_msg)
