"""A progress bar for long runs: steps, steps/s and the latest return (rich).

On a terminal it is a live bar; in a log file (nohup, CI) it is a plain line every 30 seconds.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

LOG_EVERY_S = 30.0


class Progress:
    """Writes to stderr so that `--json` output on stdout stays clean; silent when disabled."""

    def __init__(self, total: int, start: int, enabled: bool = True, description: str = "train") -> None:
        self.enabled, self.total, self.description = enabled, total, description
        console = Console(file=sys.stderr)
        self.live = enabled and console.is_terminal
        self._last_line = time.monotonic()
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[sps]:>8} steps/s"), TextColumn("return {task.fields[ret]:>9}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=console, disable=not self.live,
        )
        self._task = self._bar.add_task(description, total=total, completed=start, sps="-", ret="-")

    def __enter__(self) -> Progress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def update(self, step: int, ret: float | None, sps: float) -> None:
        ret_text = "-" if ret is None else f"{ret:.2f}"
        self._bar.update(self._task, completed=step, sps=f"{sps:,.0f}", ret=ret_text)
        now = time.monotonic()
        if self.enabled and not self.live and (now - self._last_line >= LOG_EVERY_S or step >= self.total):
            self._last_line = now
            print(f"{self.description}: {step:,}/{self.total:,} steps ({100 * step / self.total:.0f}%), "
                  f"{sps:,.0f} steps/s, return {ret_text}", file=sys.stderr, flush=True)
