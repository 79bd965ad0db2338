"""Shared by the Ray tests: finding and signalling Ray actor processes, a run that loses a worker, and
learner weights that the workers can only have if the learner sends them."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable


def actor_pids(class_name: str) -> list[int]:
    """Live child processes of this test that run a Ray actor of class `class_name`."""
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and class_name in " ".join(proc.cmdline()):
                pids.append(proc.pid)
        except psutil.Error:  # exited while we looked
            continue
    return pids


def signal_actor_when(ready: Callable[[], bool], pids: Callable[[], list[int]], sig: int = signal.SIGKILL,
                      pick: int = 0, delay_s: float = 0.0, timeout_s: float = 120.0
                      ) -> tuple[threading.Thread, list[int]]:
    """A started daemon thread that, once `ready()` and an actor is up, waits `delay_s` and sends `sig`
    to `pids()[pick]`; returns it with the list the signalled pid is appended to."""
    signalled: list[int] = []

    def watch() -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if ready() and pids():
                time.sleep(delay_s)
                pid = pids()[pick]
                os.kill(pid, sig)
                signalled.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, signalled


def perturb_weights(policy) -> None:
    """Moves a new policy's weights and observation normalizer away from their initial values: weights the
    workers cannot have unless the learner sends them."""
    import torch

    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
        policy.normalizer.update(torch.randn(64, policy.obs_dim) * 2 + 1)


def metrics_rows(run) -> list[dict[str, str]]:
    """The rows of a run folder's metrics.csv so far (none before the first is written)."""
    import csv

    path = run / "metrics.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def train_killing_a_worker(cfg, run, worker_pids: Callable[[], list[int]]):
    """Trains `cfg` into the folder `run`, SIGKILLing the first of `worker_pids()` once three metrics rows
    are written. Asserts that a worker was killed and that the run finished with one restart (none in its
    first row) and a last checkpoint at its final step; returns (the Trainer's result, the metrics rows,
    the killed pids)."""
    from robotrl.train.trainer import Trainer, load_run

    killer, killed = signal_actor_when(lambda: len(metrics_rows(run)) >= 3, worker_pids)
    result = Trainer(cfg, run, show_progress=False).run()
    killer.join(timeout=5)
    assert killed, "the run ended before a worker could be killed"
    rows = metrics_rows(run)
    assert float(rows[0]["scale/worker_restarts"]) == 0
    assert float(rows[-1]["scale/worker_restarts"]) == 1
    _, state, _ = load_run(run)
    assert state["step"] == result.steps
    return result, rows, killed
