"""A stop asked for by a signal, honoured where the run can be saved whole.

SIGTERM (a scheduler, `kill`, a session's end) or SIGINT (Ctrl-C) during training asks the loop to stop
after its current iteration, where it writes a checkpoint of that very step and then raises
TrainingStopped: `--resume` continues with no step lost, where the default handlers would lose every step
since the last periodic checkpoint (up to `train.checkpoint_every`: minutes for an off-policy run). A
second signal acts at once (KeyboardInterrupt or the default SIGTERM). SIGKILL cannot be caught: a run
killed so still resumes from its last periodic checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(Exception):
    """The run stopped on request after writing a checkpoint at `step`."""

    def __init__(self, step: int, signame: str, where: str) -> None:
        super().__init__(f"stopped by {signame} at step {step:,}; checkpoint written to {where}")
        self.step = step
        self.signame = signame


class StopRequest:
    """While entered (in the main thread and `enabled`; otherwise it does nothing), SIGTERM and SIGINT set
    `signame` instead of stopping the process, once; the loop polls it between iterations."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.signame: str | None = None
        self._previous: dict[int, object] = {}  # None where the handler was not set from Python

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signame = signal.Signals(signum).name
        # The next signal acts at once, as it would have without us.
        self._restore()
        print(f"\n{self.signame}: stopping after this iteration, with a checkpoint (send it again to stop "
              "at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopRequest:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._restore()
        self._previous.clear()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # type: ignore[arg-type]
