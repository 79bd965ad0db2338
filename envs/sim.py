"""A batch of MuJoCo simulations of one model, stepped together on MuJoCo's C++ thread pool.

`mujoco.batch.Batch` (MuJoCo 4) steps many closed-loop simulations without a Python loop over
them and gives live (nsim, ...) numpy views of the state, so a task's math runs on whole arrays.
"""

from __future__ import annotations

import os
from pathlib import Path

import mujoco
import mujoco.batch
import numpy as np

ASSETS = Path(__file__).resolve().parent / "assets"


def load_model(xml: str | Path) -> mujoco.MjModel:
    """Load an MJCF model by file name (looked up in envs/assets/) or path."""
    path = Path(xml)
    if not path.is_absolute() and not path.exists():
        path = ASSETS / path
    if not path.exists():
        raise FileNotFoundError(f"MJCF model not found: {path}")
    return mujoco.MjModel.from_xml_path(str(path))


def default_threads(nsim: int) -> int:
    """One thread per core, never more threads than simulations."""
    return max(1, min(nsim, os.cpu_count() or 1))


class BatchSim:
    """nsim persistent simulations of `model`; `qpos`, `qvel`, `ctrl`, ... are live (nsim, ...) views."""

    def __init__(self, model: mujoco.MjModel, nsim: int, nthread: int | None = None) -> None:
        self.model = model
        self.nsim = nsim
        self.batch = mujoco.batch.Batch(model, nsim, nthread or default_threads(nsim), persistent=True)
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.time = self.batch.bind("time")
        self._views: dict[str, np.ndarray] = {}

    def bind(self, field: str) -> np.ndarray:
        """A live (nsim, ...) view of any MjData field (see mujoco.batch.DATA_FIELDS)."""
        if field not in self._views:
            self._views[field] = self.batch.bind(field)
        return self._views[field]

    def reset(self, ids: np.ndarray | None = None) -> None:
        """Reset simulations to the model's defaults; the caller then writes its initial state."""
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)

    def forward(self, ids: np.ndarray | None = None) -> None:
        """Recompute positions and velocities derived from a state written by the caller."""
        self.batch.forward(ids, stage=mujoco.mjtStage.mjSTAGE_VEL)

    def step(self, nstep: int) -> None:
        """Advance every simulation by nstep physics steps; derived fields then match the new state."""
        self.batch.step(None, nstep, stage=mujoco.mjtStage.mjSTAGE_VEL)

    def data(self, sim: int = 0) -> mujoco.MjData:
        """Simulation `sim` as an MjData, for rendering and the viewer."""
        return self.batch.get_data(sim)
