"""The fixed-rate control loop: read, infer, make safe, send; on absolute deadlines, with per-tick timing.

A tick: wake at its deadline; read the newest observation; when it is new and finite, run the
policy; clamp and rate-limit; send. No new observation: repeat the last command until the watchdog
says the observation is stale, then send the safe action. A tick that ends after the next deadline
is an overrun: `skip` holds the last command and resumes at the next deadline still ahead; `stop`
sends the safe action and ends the run. SIGINT and SIGTERM end the run the same way.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deploy.backends.base import Backend, BackendError
from deploy.metadata import check_compatible
from deploy.policy import OnnxPolicy
from deploy.realtime import realtime
from deploy.safety import Safety, SafetyConfig
from deploy.timing import Scheduler, TickLog, now_ns, percentiles

OVERRUN_POLICIES = ("skip", "stop")


@dataclass
class LoopConfig:
    rate_hz: float
    duration_s: float
    overrun: str = "skip"
    """"skip": hold the last command and resume at the next deadline ahead; "stop": safe action, end."""
    spin_us: float = 200.0
    """Spin on the clock for this long before each deadline instead of sleeping."""
    rt_priority: int | None = None
    """SCHED_FIFO priority of the loop (Linux; None: the default time-sharing scheduler)."""

    def __post_init__(self) -> None:
        if self.overrun not in OVERRUN_POLICIES:
            raise ValueError(f"--overrun {self.overrun!r}: expected one of {OVERRUN_POLICIES}")
        if not self.duration_s > 0:
            raise ValueError(f"--duration: expected a positive number of seconds, got {self.duration_s}")

    @property
    def ticks(self) -> int:
        return max(1, round(self.rate_hz * self.duration_s))


class StopFlag:
    """Set by SIGINT/SIGTERM (or a caller) to end the loop after the current tick."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason


def install_signal_handlers(flag: StopFlag) -> Callable[[], None]:
    """Route SIGINT/SIGTERM to `flag`; returns a function restoring the previous handlers.
    Only the main thread may set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda signum, _frame: flag.set(signal.Signals(signum).name))

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def run_schedule(config: LoopConfig, tick: Callable[[int, int], None], log: TickLog,
                 flag: StopFlag) -> tuple[int, int]:
    """The scheduler alone: call `tick(k, wake_ns)` at each deadline; returns (overruns, skipped)."""
    with realtime(config.rt_priority):
        return _run_ticks(config, tick, log, flag)


def _run_ticks(config: LoopConfig, tick: Callable[[int, int], None], log: TickLog,
               flag: StopFlag) -> tuple[int, int]:
    sched = Scheduler(config.rate_hz, spin_ns=round(config.spin_us * 1000))
    sched.restart(lead_ns=sched.period_ns)
    n = config.ticks
    overruns = skipped = 0
    k = 0
    while k < n and flag.reason is None:
        wake = sched.wait(k)
        i = log.ticks
        log.lateness_us[i] = (wake - sched.deadline(k)) / 1000.0
        log.tick[i] = k
        tick(i, wake)
        log.ticks += 1
        end = now_ns()
        if end > sched.deadline(k + 1):
            overruns += 1
            log.overrun[i] = True
            if config.overrun == "stop":
                flag.set("overrun")
                break
            nxt = sched.next_tick_after(end)
            skipped += max(0, min(nxt, n) - (k + 1))
            k = nxt
        else:
            k += 1
    return overruns, skipped


def run_floor(config: LoopConfig) -> dict[str, Any]:
    """The same scheduler with no policy and no I/O: what this machine's clock and scheduler allow."""
    log = TickLog(config.ticks, 1)
    overruns, skipped = run_schedule(config, lambda i, wake: None, log, StopFlag())
    return {"ticks": log.ticks, "overruns": overruns, "skipped": skipped,
            "lateness_us": percentiles(log.lateness_us[:log.ticks])}


class Runner:
    """Runs `policy` on `backend` at a fixed rate; refuses a robot that does not match the policy."""

    def __init__(self, policy: OnnxPolicy, backend: Backend, loop: LoopConfig,
                 safety: SafetyConfig | None = None) -> None:
        check_compatible(policy.spec, backend.spec(), str(policy.path))
        self.policy, self.backend, self.loop = policy, backend, loop
        self.safety = Safety(policy.spec.action_low, policy.spec.action_high, 1.0 / loop.rate_hz,
                             safety or SafetyConfig())
        self.log = TickLog(loop.ticks, policy.spec.act_dim)
        self.flag = StopFlag()
        self._watchdog_ns = round(self.safety.config.watchdog_s * 1e9)
        self._last_obs_ns: int | None = None
        self.write_errors = 0
        self.repeats = 0

    def _send(self, command: np.ndarray) -> int:
        try:
            self.backend.write(command)
        except BackendError:
            self.write_errors += 1
        return now_ns()

    def _tick(self, i: int, wake: int) -> None:
        safety, log = self.safety, self.log
        faults_before = safety.total
        try:
            reading = self.backend.read()
        except BackendError:
            reading = None
            command = safety.safe("read_error")
        else:
            if reading is not None:
                self._last_obs_ns = reading.received_ns
            if self._last_obs_ns is None:
                command = safety.safe("no_observation")
            elif reading is None:
                if wake - self._last_obs_ns > self._watchdog_ns:
                    command = safety.safe("stale_observation")
                else:
                    self.repeats += 1
                    command = safety.hold()
            elif not safety.finite(reading.obs):
                command = safety.safe("bad_observation")
            else:
                t0 = now_ns()
                try:
                    action = self.policy.act(reading.obs)
                except Exception:  # a failing inference must not end the loop: answer it safely
                    action = np.full(safety.low.shape, np.nan, dtype=np.float32)
                log.inference_us[i] = (now_ns() - t0) / 1000.0
                command = safety.filter(action)
        sent = self._send(command)
        log.safe[i] = safety.total != faults_before
        if reading is not None:
            log.latency_us[i] = (sent - reading.received_ns) / 1000.0
        log.actions[i] = command

    def run(self) -> dict[str, Any]:
        """Run until the duration is over, a signal comes or an overrun stops it; always ends on the safe
        action and closes the backend."""
        restore = install_signal_handlers(self.flag)
        try:
            overruns, skipped = run_schedule(self.loop, self._tick, self.log, self.flag)
        finally:
            self._send(self.safety.safe())
            restore()
            self.backend.close()
        return self.summary(overruns, skipped)

    def summary(self, overruns: int, skipped: int) -> dict[str, Any]:
        log = self.log
        n = log.ticks
        return {
            "backend": self.backend.name,
            "policy": str(self.policy.path),
            "env_id": self.policy.spec.env_id,
            "provider": self.policy.provider,
            "rate_hz": self.loop.rate_hz,
            "ticks": n,
            "overruns": overruns,
            "skipped": skipped,
            "stopped_by": self.flag.reason or "duration",
            "latency_us": percentiles(log.latency_us[:n]),
            "inference_us": percentiles(log.inference_us[:n], ("p50", "p99")),
            "lateness_us": percentiles(log.lateness_us[:n]),
            "safe_actions": dict(self.safety.counts),
            "repeated_commands": self.repeats,
            "write_errors": self.write_errors,
            "robot": self.backend.summary(),
        }
