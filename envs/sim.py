"""A batch of MuJoCo simulations of one model, stepped together on MuJoCo's C++ thread pool.

`mujoco.batch.Batch` (MuJoCo 4) steps many closed-loop simulations without a Python loop over
them and gives live (nsim, ...) numpy views of the state, so a task's math runs on whole arrays.
"""

from __future__ import annotations

import os
import time
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


_STAGE_NONE = int(mujoco.mjtStage.mjSTAGE_NONE)
_STAGE_VEL = int(mujoco.mjtStage.mjSTAGE_VEL)

MIN_WORK_PER_THREAD_S = 5e-6
"""Physics per step call and thread below which one thread beats MuJoCo's pool. On an idle 2-core
machine a second thread pays off from about 10 us of physics per call (16 envs, measured: Reacher
142k -> 237k env steps/s, CartPole 204k -> 270k). When other processes hold the cores, waking the
pool costs far more (CartPole at 16 envs: 46k on one thread, 22k on two): pass `nthread: 1` in
env.kwargs for runs that share a loaded machine."""


def default_threads(nsim: int) -> int:
    """One thread per core, never more threads than simulations."""
    return max(1, min(nsim, os.cpu_count() or 1))


def threads_for(model: mujoco.MjModel, nsim: int, nstep: int) -> int:
    """Threads worth using for `nsim` simulations advanced `nstep` physics steps per call.

    Times a few steps of the model on a scratch MjData; each extra thread must get at least
    MIN_WORK_PER_THREAD_S of physics per call. Results do not depend on the thread count.
    """
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, 5)
    start = time.perf_counter()
    mujoco.mj_step(model, data, 20)
    work = (time.perf_counter() - start) / 20 * nsim * nstep
    return max(1, min(default_threads(nsim), int(work / MIN_WORK_PER_THREAD_S)))


class BatchSim:
    """nsim persistent simulations of `model`; `qpos`, `qvel`, `ctrl`, ... are live (nsim, ...) views."""

    def __init__(self, model: mujoco.MjModel, nsim: int, nthread: int | None = None) -> None:
        self.model = model
        self.nsim = nsim
        self.nthread = nthread or default_threads(nsim)
        """Threads stepping the batch (what `robotrl bench envs` reports beside its figures)."""
        self.batch = mujoco.batch.Batch(model, nsim, self.nthread, persistent=True)
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.time = self.batch.bind("time")
        raw = getattr(self.batch, "_b", None)
        self._direct_calls = {name: getattr(raw, name) for name in ("reset", "step")
                              if hasattr(raw, name) and hasattr(self.batch, "_check")}
        self._views: dict[str, np.ndarray] = {}

    def bind(self, field: str) -> np.ndarray:
        """A live (nsim, ...) view of any MjData field (see mujoco.batch.DATA_FIELDS)."""
        if field not in self._views:
            self._views[field] = self.batch.bind(field)
        return self._views[field]

    def reset(self, ids: np.ndarray | None = None) -> None:
        """Reset simulations to the model's defaults; the caller then writes its initial state.

        Autoresets hit one or two simulations at a time, many times a second; `Batch.reset` spends
        ~6 of its 9 us validating ids and keyframes in Python (MuJoCo 4.0, measured with CartPole).
        Our ids are already sorted unique indices, so they go straight to the C++ call when this
        MuJoCo has it with the expected signature, and through the public method otherwise."""
        if ids is not None and self._direct("reset", np.asarray(ids, dtype=np.int32), None, _STAGE_NONE):
            return
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)

    def _direct(self, name: str, ids: np.ndarray | None, *args: object) -> bool:
        """Batch's C++ call `name` on int32 `ids` (None: all), its failures reported as Batch reports
        them; False where this MuJoCo has no such call with the expected signature (then the caller
        uses the public method, from then on)."""
        call = self._direct_calls.get(name)
        if call is None:
            return False
        try:
            failed = call(ids, *args)
        except TypeError:
            del self._direct_calls[name]
            return False
        if failed:
            self.batch._check(ids, failed)
        return True

    def forward(self, ids: np.ndarray | None = None) -> None:
        """Recompute positions and velocities derived from a state written by the caller."""
        self.batch.forward(ids, stage=mujoco.mjtStage.mjSTAGE_VEL)

    def step(self, nstep: int, derived: bool = True) -> None:
        """Advance every simulation by nstep physics steps; with `derived`, derived fields (positions,
        velocities of bodies and sites) then match the new state, else they lag one physics step.
        All simulations every call: straight to the C++ call where it exists (see `reset`)."""
        stage = _STAGE_VEL if derived else _STAGE_NONE
        if not self._direct("step", None, nstep, stage):
            self.batch.step(None, nstep, stage=stage)

    def data(self, sim: int = 0) -> mujoco.MjData:
        """Simulation `sim` as an MjData with its derived fields computed, for rendering and the viewer."""
        data = self.batch.get_data(sim)
        mujoco.mj_forward(self.model, data)
        return data
