"""The real-time habits of a control loop, set around the loop and undone after it.

- SCHED_FIFO priority (`--rt-priority`): the loop runs whenever it is ready instead of waiting for a
  time-sharing slice. The kernel still keeps real-time tasks from taking a core for good
  (`sched_rt_runtime_us` 950000 of `sched_rt_period_us` 1000000: normal tasks get 50 ms of each
  second): a loop that spins through most of its period starves them and is then stopped for up to
  50 ms at once. Measured at 1 kHz with SCHED_FIFO: spinning 900 us per tick (92% of a core) stalled
  8-48 ms nine times in 10 s, about once a second; 800 us (86%) 5-10 ms; 500 us (55%) no stall over
  5 ms. So a real-time loop must sleep for at least half of each period: LoopConfig refuses a longer
  spin under --rt-priority. The budget is per CPU and counts every real-time task on it (a robot
  driver pinned beside the loop too).
- Locked memory (mlockall): no page fault in the loop can wait for the disk or the allocator's first
  touch. Needs root or CAP_IPC_LOCK / a memlock limit; without them the runner goes on and says so.
- Garbage collection frozen and disabled for the loop (gc.freeze, gc.disable): a collection of the
  interpreter's heap is a pause the loop did not schedule. Re-enabled after the loop.
- CPU affinity (`--cpu N`): the loop stays on one core, with its caches.
- A wake-up latency request (/dev/cpu_dma_latency, 0 us while the fd is open): the core stays out of
  deep idle states between ticks. Needs root; skipped otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import resource
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MCL_CURRENT, MCL_FUTURE = 1, 2
DMA_LATENCY = "/dev/cpu_dma_latency"


NOT_PERMITTED = ("--rt-priority: not permitted; run as root or grant CAP_SYS_NICE (or an rtprio limit in "
                 "/etc/security/limits.conf)")


@dataclass
class RealtimeConfig:
    priority: int | None = None
    """SCHED_FIFO priority of the loop (Linux; None: the default time-sharing scheduler)."""
    cpu: int | None = None
    """Pin the loop to this CPU (None: leave the affinity alone)."""
    lock_memory: bool | None = None
    """mlockall; None: with a real-time priority (locking a process that holds torch takes ~1 s)."""
    freeze_gc: bool = True
    dma_latency: bool | None = None
    """Hold /dev/cpu_dma_latency at 0; None: with a real-time priority."""

    def __post_init__(self) -> None:
        if self.lock_memory is None:
            self.lock_memory = self.priority is not None
        if self.dma_latency is None:
            self.dma_latency = self.priority is not None
        if self.priority is not None and not hasattr(os, "sched_setscheduler"):
            raise RuntimeError("--rt-priority: this OS has no SCHED_FIFO (Linux only)")
        if self.priority is not None and not 1 <= self.priority <= os.sched_get_priority_max(os.SCHED_FIFO):
            raise ValueError(f"--rt-priority {self.priority}: expected 1..{os.sched_get_priority_max(os.SCHED_FIFO)}")
        if self.cpu is not None and self.cpu not in os.sched_getaffinity(0):
            raise ValueError(f"--cpu {self.cpu}: expected one of the CPUs this process may use "
                             f"{sorted(os.sched_getaffinity(0))}")

    def check_permitted(self) -> None:
        """Try the real-time priority once and restore the scheduler: a missing permission is then said
        before the policy loads and the robot is contacted, not when the loop starts."""
        if self.priority is not None:
            os.sched_setscheduler(0, *_enter_fifo(self.priority))


def _enter_fifo(priority: int) -> tuple[int, os.sched_param]:
    """Run this thread under SCHED_FIFO at `priority`; returns the (policy, param) to restore. A missing
    permission is one line that says how to grant it."""
    previous = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise PermissionError(NOT_PERMITTED) from exc
    return previous


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


@contextlib.contextmanager
def realtime(config: RealtimeConfig | int | None) -> Iterator[dict[str, Any]]:
    """Run the block with the habits `config` asks for; yields a report of what was set (and what was
    not permitted), which `measured()` completes with the page faults and collections of the block."""
    if not isinstance(config, RealtimeConfig):
        config = RealtimeConfig(priority=config, lock_memory=False, freeze_gc=False, dma_latency=False)
    report: dict[str, Any] = {"priority": config.priority, "cpu": config.cpu}
    with contextlib.ExitStack() as stack:
        if config.cpu is not None:
            previous = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {config.cpu})
            stack.callback(os.sched_setaffinity, 0, previous)
        if config.lock_memory:
            report["mlockall"] = _lock_memory(stack)
        if config.dma_latency:
            report["dma_latency"] = _request_latency(stack)
        if config.freeze_gc:
            was_enabled = gc.isenabled()
            gc.collect()
            gc.freeze()
            gc.disable()
            stack.callback(gc.unfreeze)
            if was_enabled:
                stack.callback(gc.enable)
            report["gc"] = "frozen and disabled"
        else:
            report["gc"] = "enabled"
        if config.priority is not None:
            stack.callback(os.sched_setscheduler, 0, *_enter_fifo(config.priority))
        with measured(report):
            yield report


def steal_ticks(cpus: set[int] | None = None) -> int | None:
    """The host's steal time of `cpus` (None: all) so far, in USER_HZ ticks (10 ms here), from /proc/stat:
    the time a virtual machine's CPUs were ready but the host ran something else. None where the kernel does
    not report it (no /proc/stat, not Linux, a kernel without the column)."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return None
    total = 0
    for line in lines:
        if not line.startswith(b"cpu") or line[3:4] == b" ":
            continue
        fields = line.split()
        if cpus is not None and int(fields[0][3:]) not in cpus:
            continue
        if len(fields) < 9:
            return None
        total += int(fields[8])
    return total


def run_delay_ns() -> int | None:
    """How long the calling thread has been ready to run but waiting for a CPU of this (guest) kernel, from
    /proc/thread-self/schedstat; None where the kernel does not keep it."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None


TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 10.0


@contextlib.contextmanager
def measured(report: dict[str, Any]) -> Iterator[None]:
    """Add what happened inside the block to `report`: page faults, garbage collections, the host's steal
    time of the CPUs the block may run on (`steal_ms`, at /proc/stat's 10 ms resolution) and the calling
    thread's wait for a CPU of this kernel (`run_delay_ms`). Steal says the machine's own misses came from
    the host; run delay, from other work on this kernel (a task in a non-preemptible system call, say)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    collections = sum(s["collections"] for s in gc.get_stats())
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    steal, delay = steal_ticks(cpus), run_delay_ns()
    try:
        yield
    finally:
        after = resource.getrusage(resource.RUSAGE_SELF)
        report["page_faults"] = {"minor": after.ru_minflt - usage.ru_minflt, "major": after.ru_majflt - usage.ru_majflt}
        report["gc_collections"] = sum(s["collections"] for s in gc.get_stats()) - collections
        steal_after, delay_after = steal_ticks(cpus), run_delay_ns()
        report["steal_ms"] = (None if steal is None or steal_after is None
                              else round((steal_after - steal) * TICK_MS, 1))
        report["steal_cpus"] = sorted(cpus) if cpus is not None else None
        report["run_delay_ms"] = (None if delay is None or delay_after is None
                                  else round((delay_after - delay) / 1e6, 3))


def _lock_memory(stack: contextlib.ExitStack) -> str:
    libc = _libc()
    if libc is None or not hasattr(libc, "mlockall"):
        return "not available"
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        return f"not permitted ({os.strerror(ctypes.get_errno())}; needs CAP_IPC_LOCK or a memlock limit)"
    stack.callback(libc.munlockall)
    return "locked"


def _request_latency(stack: contextlib.ExitStack) -> str:
    try:
        fd = os.open(DMA_LATENCY, os.O_WRONLY)
    except OSError as exc:
        return f"not permitted ({exc.strerror})"
    os.write(fd, struct.pack("i", 0))
    stack.callback(os.close, fd)  # the request holds while the file is open
    return "0 us"
