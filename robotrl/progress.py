"""A progress bar for long runs: steps, steps/s and the latest return (rich)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Writes to stderr so that `--json` output on stdout stays clean; off when disabled."""

    def __init__(self, total: int, start: int, enabled: bool = True, description: str = "train") -> None:
        self.enabled = enabled
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[sps]:>8} steps/s"), TextColumn("return {task.fields[ret]:>9}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=Console(file=sys.stderr), disable=not enabled, transient=False,
        )
        self._task = self._bar.add_task(description, total=total, completed=start, sps="-", ret="-")

    def __enter__(self) -> Progress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def update(self, step: int, ret: float | None, sps: float) -> None:
        self._bar.update(self._task, completed=step, sps=f"{sps:,.0f}",
                         ret="-" if ret is None else f"{ret:.2f}")
