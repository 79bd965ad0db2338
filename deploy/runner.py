"""The fixed-rate control loop: read, infer, make safe, send; on absolute deadlines, with per-tick timing.

A tick: wake at its deadline; read the newest observation; move the safety state machine
(deploy/states.py: passive -> ramp -> policy, safe on a stale observation); compute the state's
command (the policy runs in ramp and policy); clamp and rate-limit; send. No new observation:
repeat the last command until the watchdog says the observation is stale (older than --watchdog-ms
since it arrived, see observed_ns), then go safe. A new observation that is already older than
--watchdog-ms when its tick wakes is stale too: counted, never used for a command (before the session's
first fresh observation it leaves the machine in passive). A tick
that ends after the next deadline is an overrun: `skip` holds the last command and resumes at the
next deadline still ahead; `stop` sends the safe command and ends the run. SIGINT and SIGTERM end
the run the same way. A backend with sessions (UDP) that reports a new one restarts the start
sequence for the restarted robot.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deploy.backends.base import Backend, BackendError, Reading, RobotRefused
from deploy.metadata import check_compatible
from deploy.policy import OnnxPolicy
from deploy.realtime import RealtimeConfig, realtime
from deploy.safety import Safety, SafetyConfig
from deploy.states import PASSIVE, POLICY, RAMP, SAFE, ActionMode, StartConfig, StateMachine
from deploy.timing import Scheduler, TickLog, now_ns, percentiles

OVERRUN_POLICIES = ("skip", "stop")
RT_MAX_SPIN = 0.5
"""The largest share of a period a real-time loop may spin (see deploy/realtime.py for the measurement)."""


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
    prewarm: bool = True
    """After each sleep, before the spin: the policy once on its last input and the tick's checks, clamp and
    packing without sending (Runner.warm, Scheduler.warm)."""
    realtime: RealtimeConfig | None = field(default=None)
    """The other real-time habits (CPU, locked memory, GC, wake-up latency); None: the defaults for
    `rt_priority`."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"--rate {self.rate_hz}: expected a positive finite rate in Hz")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"--duration {self.duration_s}: expected a positive finite number of seconds")
        if self.overrun not in OVERRUN_POLICIES:
            raise ValueError(f"--overrun {self.overrun!r}: expected one of {OVERRUN_POLICIES}")
        period_us = 1e6 / self.rate_hz
        if not (math.isfinite(self.spin_us) and 0 <= self.spin_us < period_us):
            raise ValueError(f"--spin-us {self.spin_us}: expected 0 <= spin < the period ({period_us:g} us at "
                             f"{self.rate_hz:g} Hz)")
        if self.realtime is None:
            self.realtime = RealtimeConfig(priority=self.rt_priority)
        elif self.rt_priority is None:
            self.rt_priority = self.realtime.priority
        if self.rt_priority is not None and self.spin_us > RT_MAX_SPIN * period_us:
            raise ValueError(f"--spin-us {self.spin_us:g} with --rt-priority: expected at most "
                             f"{RT_MAX_SPIN * period_us:g} ({RT_MAX_SPIN:.0%} of the {period_us:g} us period); a "
                             "real-time loop that spins longer starves the kernel's normal tasks and is stopped "
                             "for up to 50 ms (RT throttling)")
        if self.ticks > 100_000_000:
            raise ValueError(f"--duration {self.duration_s:g} at --rate {self.rate_hz:g}: {self.ticks} ticks, "
                             "expected at most 100,000,000 (per-tick records are kept in memory)")

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
    """Route SIGINT/SIGTERM/SIGHUP to `flag`; returns a function restoring the previous handlers.
    Only the main thread may set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    # SIGHUP too: a deploy started over SSH gets it when the link drops, and its default ends the process
    # at once, without the safe command or the robot's goodbye.
    for sig in (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())):
        previous[sig] = signal.signal(sig, lambda signum, _frame: flag.set(signal.Signals(signum).name))

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def run_schedule(config: LoopConfig, tick: Callable[[int, int], None], log: TickLog,
                 flag: StopFlag, report: dict[str, Any] | None = None,
                 warm: Callable[[], object] | None = None) -> tuple[int, int]:
    """The scheduler alone: call `tick(i, wake_ns)` at each deadline; returns (overruns, skipped). What the
    real-time set-up did (and the page faults and collections of the loop) goes into `report`; `warm` runs
    after each sleep when config.prewarm says so."""
    with realtime(config.realtime) as done:
        result = _run_ticks(config, tick, log, flag, warm if config.prewarm else None)
    if report is not None:
        report.update(done)
    return result


def _run_ticks(config: LoopConfig, tick: Callable[[int, int], None], log: TickLog,
               flag: StopFlag, warm: Callable[[], object] | None) -> tuple[int, int]:
    sched = Scheduler(config.rate_hz, spin_ns=round(config.spin_us * 1000), warm=warm)
    sched.restart(lead_ns=sched.period_ns)
    n = config.ticks
    overruns = skipped = 0
    k = 0
    while k < n and flag.reason is None:
        wake = sched.wait(k)
        i = log.ticks
        log.lateness_us[i] = (wake - sched.deadline(k)) / 1000.0
        log.wake_ns[i] = wake
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


def skipped_run_max(log: TickLog) -> int:
    """The longest run of consecutive skipped ticks: what the machine alone makes the loop miss at once."""
    gaps = np.diff(log.tick[:log.ticks]) - 1
    return int(gaps.max()) if gaps.size else 0


def run_floor(config: LoopConfig, log: TickLog | None = None) -> dict[str, Any]:
    """The same scheduler with no policy and no I/O: what this machine's clock and scheduler allow. `log`
    (made here when not given) keeps the per-tick records for the caller."""
    log = log if log is not None else TickLog(config.ticks, 1)
    report: dict[str, Any] = {}
    overruns, skipped = run_schedule(config, lambda i, wake: None, log, StopFlag(), report)
    return {"ticks": log.ticks, "overruns": overruns, "skipped": skipped, "skipped_run_max": skipped_run_max(log),
            "lateness_us": percentiles(log.lateness_us[:log.ticks]), "realtime": report}


def run_bare_inference(policy: OnnxPolicy, config: LoopConfig, obs: np.ndarray,
                       log: TickLog | None = None) -> dict[str, Any]:
    """The same scheduler and wait calling only the policy, once per period, with no I/O: the inference
    time the loop could have on this machine at this moment."""
    log = log if log is not None else TickLog(config.ticks, 1)
    act, times = policy.act, log.inference_us

    def tick(i: int, wake: int) -> None:
        t0 = now_ns()
        act(obs)
        times[i] = (now_ns() - t0) / 1000.0

    report: dict[str, Any] = {}
    overruns, skipped = run_schedule(config, tick, log, StopFlag(), report, warm=policy.warm)
    return {"ticks": log.ticks, "overruns": overruns, "skipped": skipped, "skipped_run_max": skipped_run_max(log),
            "inference_us": percentiles(log.inference_us[:log.ticks], ("p50", "p99")),
            "lateness_us": percentiles(log.lateness_us[:log.ticks]), "realtime": report}


def stalls(log: TickLog, period_ns: int, missed: int = 2) -> list[tuple[int, int]]:
    """(start, end) wake-up times (perf_counter_ns) of each pair of consecutive executed ticks that lie at
    least `missed` + 1 periods apart: the loop missed `missed` or more deadlines in a row between them."""
    wake = log.wake_ns[:log.ticks]
    gaps = np.flatnonzero(np.diff(wake) >= (missed + 1) * period_ns)
    return [(int(wake[k]), int(wake[k + 1])) for k in gaps]


def blind_ticks_max(tick: np.ndarray, fresh: np.ndarray) -> int | None:
    """The longest run of consecutive scheduled ticks (skipped ones included) after the first fresh one
    that sent no command computed from a fresh observation; every scheduled tick when none was fresh (a
    run that never saw a valid observation was blind throughout, which None would hide); None without ticks."""
    if tick.size == 0:
        return None
    fresh_ticks = tick[fresh]
    if fresh_ticks.size == 0:
        return int(tick[-1] - tick[0] + 1)
    gaps = np.diff(fresh_ticks) - 1
    tail = int(tick[-1] - fresh_ticks[-1])
    return max(int(gaps.max()) if gaps.size else 0, tail)


def observed_ns(reading: Reading) -> int:
    """When the watchdog counts an observation from: its arrival (the kernel's receive timestamp) where the
    backend has it, else when the runner read it. Counting from the read would let an observation that sat
    in the socket, or a runner that stalled before reading it, restart the watchdog's clock late. An
    arrival after the read can only be a realtime-clock step between the two (the kernel stamps in
    CLOCK_REALTIME): the read time then bounds it, so a step never delays the watchdog."""
    arrived = reading.arrived_ns
    return reading.received_ns if arrived is None else min(arrived, reading.received_ns)


class Runner:
    """Runs `policy` on `backend` at a fixed rate; refuses a robot that does not match the policy."""

    def __init__(self, policy: OnnxPolicy, backend: Backend, loop: LoopConfig,
                 safety: SafetyConfig | None = None, start: StartConfig | None = None,
                 name: str | None = None) -> None:
        """`name` prefixes the logged state transitions (the robot's, where one process runs several)."""
        check_compatible(policy.spec, backend.spec(), str(policy.path))
        self.policy, self.backend, self.loop = policy, backend, loop
        self.mode = ActionMode(policy.spec, str(policy.path))
        self.safety = Safety(policy.spec.action_low, policy.spec.action_high, 1.0 / loop.rate_hz,
                             safety or SafetyConfig(), torque=self.mode.torque)
        self.states = StateMachine(start or StartConfig(), name)
        self.log = TickLog(loop.ticks, policy.spec.act_dim)
        self.flag = StopFlag()
        self._watchdog_ns = round(self.safety.config.watchdog_s * 1e9)
        self.safety.config.check_period(loop.rate_hz)
        self._last_obs_ns: int | None = None
        """When the last command computed from a fresh observation was sent for (that observation's time)."""
        self._refused = False
        self._backend_warm = getattr(backend, "warm", None)
        self._backend_warm_io = getattr(backend, "warm_io", None)
        self._ask = getattr(backend, "ask", None)
        self._asked_ns: int | None = None
        self._sessions = hasattr(backend, "session")
        self._session = getattr(backend, "session", None)
        self._ramp_from = np.zeros(policy.spec.act_dim, dtype=np.float32)
        self._ramp_cmd = np.zeros(policy.spec.act_dim, dtype=np.float32)
        self.realtime: dict[str, Any] = {}
        self.write_errors = 0
        self.repeats = 0
        self.inference_errors = 0
        self.unreachable_ticks = 0
        """Fresh observations in passive whose pose no command within the action bounds can hold."""
        self._unreachable_since: int | None = None
        self.first_inference_error: str | None = None

    def warm(self) -> None:
        """After each sleep (LoopConfig.prewarm): the backend's system calls where it has a warm-up for them
        (first: they evict what runs before them), the policy on its last input, then the safety checks and
        clamp on that input and action without changing state, so the tick's own code is in the caches
        again when the observation comes."""
        if self._backend_warm_io is not None:
            self._backend_warm_io()
        policy = self.policy
        policy.warm()
        self.safety.warm(policy.last_input, policy.last_action)
        if self._backend_warm is not None:
            self._backend_warm(self.safety.last)

    def _send_last(self, command: np.ndarray | None) -> None:
        """The exit's command, when there is one (no observation is asked for at exit; a refused robot is
        sent nothing, its commands have another size)."""
        if command is not None and not self._refused:
            try:
                self.backend.write(command)
            except BackendError:
                self.write_errors += 1

    def _ask_robot(self) -> None:
        """No command to send (nothing sent to this robot yet): ask the backend for a new observation, at most
        once per watchdog period, so a lock-step robot whose observation was lost or stale sends another."""
        t = now_ns()
        if self._asked_ns is not None and t - self._asked_ns < self._watchdog_ns:
            return
        self._asked_ns = t
        try:
            self._ask()
        except BackendError:
            self.write_errors += 1

    def _robot_restarted(self, i: int) -> None:
        """A new session: the start sequence again, from the new robot's first observation."""
        self._session = self.backend.session
        self._last_obs_ns = None
        self.safety.forget()
        try:
            check_compatible(self.policy.spec, self.backend.spec(), str(self.policy.path))
        except ValueError as exc:
            # Another robot (another act_dim, say) on the same address: it is sent nothing, and the run ends.
            self._refused = True
            self.flag.set(f"restarted robot refused: {exc}")
            self.states.to(SAFE, int(self.log.tick[i]), "restarted robot refused")
            return
        self.states.to(PASSIVE, int(self.log.tick[i]), f"robot restarted (session {self._session})")

    def _blind(self, i: int, wake: int, command: np.ndarray | None) -> np.ndarray | None:
        """A tick that has no command from a fresh observation (a failed read, a non-finite observation or
        action) sends `command`, the safe command of that tick; once the last fresh one is older than the
        watchdog, the machine goes safe, so the way back is the whole start sequence: a stream of NaN
        observations blinds the runner as much as silence does."""
        if self._last_obs_ns is not None and wake - self._last_obs_ns > self._watchdog_ns:
            return self._stale(i, "no valid observation")
        return command

    def _act(self, i: int, obs: np.ndarray) -> np.ndarray:
        t0 = now_ns()
        try:
            action = self.policy.act(obs)
        except Exception as exc:  # a failing inference must not end the loop: answer it safely
            # Counted apart from a policy's non-finite output, with its first message in the summary: a
            # provider failing on every tick would otherwise read as a policy that outputs NaN.
            self.inference_errors += 1
            if self.first_inference_error is None:
                self.first_inference_error = f"tick {int(self.log.tick[i])}: {type(exc).__name__}: " + (
                    str(exc).strip().splitlines() or [""])[0]
            action = np.full(self.safety.low.shape, np.nan, dtype=np.float32)
        self.log.inference_us[i] = (now_ns() - t0) / 1000.0
        return action

    def _fresh(self, i: int, wake: int, obs: np.ndarray) -> np.ndarray | None:
        """The command for a fresh, finite observation outside the policy state (the tick serves that one
        itself): the state machine moves on first."""
        states, safety, mode = self.states, self.safety, self.mode
        before = states.state
        if not mode.torque and before != RAMP and not self._reachable(i, mode.measured(obs)):
            # A target there would be clamped into the bounds and move the joint, in passive with the
            # robot's full gains, and the ramp would start from the bound: send nothing until it is within.
            states.wait_in_passive(int(self.log.tick[i]))
            return None
        progress = states.advance(int(self.log.tick[i]), wake)
        state = states.state
        if state == PASSIVE:
            return safety.zero() if mode.torque else safety.clamp(mode.measured(obs))
        if state == RAMP:
            if mode.torque:
                action = self._act(i, obs)
                return safety.filter(np.multiply(action, np.float32(progress), out=self._ramp_cmd))
            if before != RAMP:
                self._ramp_from[:] = mode.measured(obs)
            return safety.filter(np.multiply(self._ramp_from, np.float32(1.0 - progress), out=self._ramp_cmd))
        return safety.filter(self._act(i, obs))

    def _reachable(self, i: int, pose: np.ndarray) -> bool:
        """Whether the action that targets the measured pose lies within the policy's action bounds; each
        stretch of ticks where it does not is logged once, naming the joint furthest out."""
        low, high = self.safety.low, self.safety.high
        outside = np.maximum(low - pose, pose - high)
        if not outside.max() > 1e-6:
            self._unreachable_since = None
            return True
        self.unreachable_ticks += 1
        if self._unreachable_since is None:
            self._unreachable_since = int(self.log.tick[i])
            k = int(outside.argmax())
            self.states.warn(self._unreachable_since, f"passive: the measured pose is outside the policy's action "
                             f"bounds (joint {k} at action {float(pose[k]):.3f}, bounds [{float(low[k]):.3f}, "
                             f"{float(high[k]):.3f}]); sending nothing until it is within")
        return False

    def _stale(self, i: int, reason: str) -> np.ndarray | None:
        """The watchdog's answer: count it, move to safe, send the safe command. Before the session's first
        fresh observation the start sequence has not begun (an observation that waited in the socket while
        the loop was set up, say): the tick sends what a tick without an observation sends, in passive."""
        self.safety.count("stale_observation")
        if self._last_obs_ns is None and self.states.state == PASSIVE:
            return self.safety.zero() if self.mode.torque else self.safety.hold()
        if self.states.state != SAFE:
            self.states.to(SAFE, int(self.log.tick[i]), reason)
        return self.safety.safe()

    def _tick(self, i: int, wake: int) -> None:
        safety, log, states = self.safety, self.log, self.states
        faults_before = safety.total
        fresh = False
        try:
            reading = self.backend.read()
        except RobotRefused as exc:
            reading, command = None, safety.safe()
            self.flag.set(f"robot refused: {exc}")
        except BackendError:
            reading, command = None, safety.safe("read_error")
        if self._sessions and self.backend.session != self._session:
            self._robot_restarted(i)
        if self.flag.reason is not None:
            reading, command = None, None if self._refused else safety.safe()
        elif reading is None:
            if faults_before != safety.total:
                command = self._blind(i, wake, command)  # a failed read: its safe command is set
            elif self._last_obs_ns is None:
                safety.count("no_observation")
                command = safety.zero() if self.mode.torque else safety.hold()
            elif wake - self._last_obs_ns > self._watchdog_ns:
                command = self._stale(i, "stale observation")
            else:
                self.repeats += 1
                command = safety.hold()
        elif (((after := reading.arrived_after_ns) is None or wake - after > self._watchdog_ns)
              and wake - observed_ns(reading) > self._watchdog_ns):
            # New to the runner but older than the watchdog already (it waited in the socket, or the robot's
            # link delayed it): not used for a command. A backend's lower bound on the arrival that is within
            # the watchdog proves it fresh without converting the kernel's timestamp (the usual tick).
            command = self._stale(i, "observation stale on arrival")
        elif not safety.finite(reading.obs):
            command = self._blind(i, wake, safety.safe("bad_observation"))
        else:
            obs = reading.obs
            # In the steady state the tick calls the policy and the filter itself, and sends inline below:
            # every Python call between the read and the send costs about a microsecond on the loaded 2-core VM.
            command = safety.filter(self._act(i, obs)) if states.state == POLICY else self._fresh(i, wake, obs)
            fresh = safety.total == faults_before
            if not fresh:  # a non-finite action: answered safely, and blind until the policy recovers
                command = self._blind(i, wake, command)
        if command is not None:
            try:
                self.backend.write(command)
            except BackendError:
                self.write_errors += 1
        elif self._ask is not None:  # nothing to send yet: ask for an observation instead
            self._ask_robot()
        sent = now_ns()
        # After the send: what only later ticks need stays out of the observation-to-command latency.
        if fresh:
            self._last_obs_ns = observed_ns(reading)
        states.ticks[states.state] += 1
        log.state[i] = states.state
        log.fresh[i] = fresh
        log.safe[i] = safety.total != faults_before
        if reading is not None:
            log.latency_us[i] = (sent - reading.received_ns) / 1000.0
            if reading.arrived_ns is not None:
                log.obs_age_us[i] = (sent - reading.arrived_ns) / 1000.0
        if command is not None:
            log.actions[i] = command

    def run(self) -> dict[str, Any]:
        """Run until the duration is over, a signal comes or an overrun stops it; always ends in the safe
        state on its command and closes the backend."""
        restore = install_signal_handlers(self.flag)
        overruns = skipped = 0
        try:
            overruns, skipped = run_schedule(self.loop, self._tick, self.log, self.flag, self.realtime,
                                             warm=self.warm)
        finally:
            reason = self.flag.reason or "end of run"
            if self.states.state != SAFE:
                self.states.to(SAFE, int(self.log.tick[self.log.ticks - 1]) + 1 if self.log.ticks else 0, reason)
            try:
                self._send_last(self.safety.safe())
            finally:
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
            "action_mode": self.policy.spec.action_mode,
            "provider": self.policy.provider,
            "rate_hz": self.loop.rate_hz,
            "ticks": n,
            "overruns": overruns,
            "skipped": skipped,
            "blind_ticks_max": blind_ticks_max(log.tick[:n], log.fresh[:n]),
            "stopped_by": self.flag.reason or "duration",
            "latency_us": percentiles(log.latency_us[:n]),
            "obs_age_us": percentiles(log.obs_age_us[:n]),
            "inference_us": percentiles(log.inference_us[:n], ("p50", "p99")),
            "lateness_us": percentiles(log.lateness_us[:n]),
            "safe_actions": dict(self.safety.counts),
            "safe_command": self.safety.safe_mode,
            "settings": {"spin_us": self.loop.spin_us, "prewarm": self.loop.prewarm, "overrun": self.loop.overrun,
                         "watchdog_ms": self.safety.config.watchdog_s * 1000, "max_rate": self.safety.config.max_rate,
                         "passive_s": self.states.config.passive_s, "ramp_s": self.states.config.ramp_s},
            "states": self.states.summary(),
            "repeated_commands": self.repeats,
            "write_errors": self.write_errors,
            "inference_errors": self.inference_errors,
            "unreachable_pose_ticks": self.unreachable_ticks,
            "first_inference_error": self.first_inference_error,
            "realtime": self.realtime,
            "robot": self.backend.summary(),
        }
