"""Real-time scheduling for the control loop (Linux SCHED_FIFO), as robot controllers run it.

Under the default time-sharing scheduler a busy machine preempts the loop for milliseconds; a FIFO
priority lets it run whenever it is ready. The kernel's RT throttling (sched_rt_runtime_us) still
keeps a spinning loop from taking a whole core forever.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def realtime(priority: int | None) -> Iterator[None]:
    """Run the block at SCHED_FIFO `priority` (1-99); None leaves scheduling alone. Restores on exit."""
    if priority is None:
        yield
        return
    if not hasattr(os, "sched_setscheduler"):
        raise RuntimeError("--rt-priority: this OS has no SCHED_FIFO (Linux only)")
    if not 1 <= priority <= os.sched_get_priority_max(os.SCHED_FIFO):
        raise ValueError(f"--rt-priority {priority}: expected 1..{os.sched_get_priority_max(os.SCHED_FIFO)}")
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise PermissionError("--rt-priority: not permitted; run as root or grant CAP_SYS_NICE "
                              "(or an rtprio limit in /etc/security/limits.conf)") from exc
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)
