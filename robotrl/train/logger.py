"""Metrics to metrics.csv and TensorBoard event files, with CleanRL's metric names."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

from policies.checkpoint import atomic_write_bytes, disk_full, no_space


class MetricsLogger:
    """One CSV row per log call (columns grow as new keys appear) and TensorBoard scalars.

    On resume the rows past the checkpoint's step are dropped and TensorBoard purges its events past
    that step, so a killed-and-resumed run shows one clean curve.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "metrics.csv"
        self.rows: list[dict[str, float]] = []
        # Rows already in the file and its columns: a new row with known columns is appended, so a run
        # with thousands of small updates (A2C, DQN) does not rewrite the whole file at every one.
        self.file_rows = 0
        self.keys: list[str] = []
        self.stale = False
        if resume_step is not None and self.path.exists():
            with self.path.open() as f:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
            self.rows = [r for r in self.rows if r.get("step", 0) <= resume_step]
            self._flush()
        # TensorBoard purges the events at steps >= purge_step: the checkpoint's own step stays, as its CSV row does.
        self.writer = SummaryWriter(str(run_dir), purge_step=None if resume_step is None else resume_step + 1)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": float(step), **{k: float(v) for k, v in metrics.items()}}
        if self.rows and self.rows[-1]["step"] == row["step"]:
            self.rows[-1].update(row)  # one row per step, e.g. the final evaluation joins the last update
            self.stale |= len(self.rows) <= self.file_rows
        else:
            self.rows.append(row)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self._flush()

    def _flush(self) -> None:
        fresh = self.rows[self.file_rows:]
        new_keys = [k for row in fresh for k in row if k not in self.keys]
        if self.stale or new_keys or self.file_rows == 0:
            self.keys = []
            for row in self.rows:
                self.keys.extend(k for k in row if k not in self.keys)
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self.keys)
            writer.writeheader()
            writer.writerows(self.rows)
            atomic_write_bytes(self.path, buf.getvalue().encode())
        else:
            size = self.path.stat().st_size
            try:
                with self.path.open("a", newline="") as f:
                    csv.DictWriter(f, fieldnames=self.keys).writerows(fresh)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.truncate(self.path, size)  # no half-written row left behind
                if disk_full(exc):
                    raise no_space(self.path) from exc
                raise
        self.file_rows = len(self.rows)
        self.stale = False

    def flush_events(self) -> None:
        """Write the TensorBoard events held in memory (up to two minutes of them): called before each
        checkpoint, so a run killed after it resumes without a gap in its curves."""
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def read_metrics(path: Path) -> list[dict[str, float]]:
    with Path(path).open() as f:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
