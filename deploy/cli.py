"""`python -m deploy` and the shared half of `robotrl deploy`: options, wiring, output files.

`python -m deploy` runs on a controller with only the base install (numpy, onnxruntime). The sim
backend needs a simulated robot from envs, so it is reached through `robotrl deploy`, which hands
an env factory to `run_deploy`; a pixel policy gets a simulated robot that renders its frames.
The UDP protocol carries one float32 vector per datagram, too small for a pixel policy's frame stack.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deploy import protocol
from deploy.backends.udp import UdpBackend, resolve
from deploy.policy import PROVIDERS, OnnxPolicy
from deploy.realtime import RealtimeConfig
from deploy.runner import OVERRUN_POLICIES, LoopConfig, Runner
from deploy.safety import SAFE_ACTIONS, SafetyConfig
from deploy.states import StartConfig

SIM_NEEDS_TRAIN = ("--backend sim runs a MuJoCo robot from envs: use `robotrl deploy --backend sim` "
                   "with the train extra (pip install 'robotrl[train]')")
EnvFactory = Callable[..., Any]
"""env id and env kwargs -> an env with Gymnasium's reset/step."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", help="exported policy (.onnx, from robotrl export)")
    p.add_argument("--backend", choices=["sim", "udp"], required=True)
    p.add_argument("--env", help="sim: env id (default: the policy's)")
    p.add_argument("--host", default="127.0.0.1", help="udp: the robot's address")
    p.add_argument("--port", type=int, default=9870, help="udp: the robot's port")
    p.add_argument("--rate", type=float, help="control rate in Hz (default: the policy's)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to run")
    p.add_argument("--provider", choices=list(PROVIDERS), default="cpu")
    p.add_argument("--overrun", choices=OVERRUN_POLICIES, default="skip",
                   help="a tick past the next deadline: skip (hold the command) or stop (safe action, end)")
    p.add_argument("--safe-action", choices=SAFE_ACTIONS, default="auto",
                   help="the safe state's command; auto: by the policy's action mode (torque: zero, position: hold)")
    p.add_argument("--max-rate", type=float, help="limit each action component's change, units per second")
    p.add_argument("--watchdog-ms", type=float, default=None,
                   help="no valid observation for this long: go safe (default 50, or 3 control periods where "
                        "that is longer; at least 2 periods)")
    p.add_argument("--passive-s", type=float, default=0.5,
                   help="start sequence: passive for this long after the first observation")
    p.add_argument("--ramp-s", type=float, default=2.0,
                   help="start sequence: move to the default pose (torque: fade the policy in) over this long")
    p.add_argument("--spin-us", type=float, default=200.0, help="spin before each deadline instead of sleeping")
    add_realtime_arguments(p, default_priority=None)
    p.add_argument("--seed", type=int, default=0, help="sim: seed of the first episode")
    p.add_argument("--out", help="folder for ticks.npz and summary.json (default: next to the policy)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def add_realtime_arguments(p: argparse.ArgumentParser, default_priority: int | None) -> None:
    """The real-time habits (deploy/realtime.py), shared by `deploy` and `bench deploy`."""
    p.add_argument("--rt-priority", type=int, default=default_priority,
                   help="run the loop at this SCHED_FIFO priority (Linux, 1-99; 0: time-sharing)")
    p.add_argument("--cpu", type=int, help="pin the loop to this CPU (-1: no pinning)")
    p.add_argument("--no-mlock", action="store_true", help="do not lock memory (mlockall) under --rt-priority")
    p.add_argument("--no-dma-latency", action="store_true",
                   help="do not hold /dev/cpu_dma_latency at 0 under --rt-priority")
    p.add_argument("--keep-gc", action="store_true", help="leave garbage collection on during the loop")
    p.add_argument("--no-prewarm", action="store_true",
                   help="do not run the policy once on its last input (and the tick's checks, without "
                   "sending) after each sleep (cache warm-up)")


def realtime_config(args: argparse.Namespace) -> RealtimeConfig:
    """The RealtimeConfig of the parsed flags (add_realtime_arguments); --rt-priority 0 means time-sharing.
    A namespace without one of the flags is an error, not a silent default."""
    cpu = args.cpu
    return RealtimeConfig(priority=args.rt_priority or None, cpu=None if cpu is None or cpu < 0 else cpu,
                          lock_memory=False if args.no_mlock else None, freeze_gc=not args.keep_gc,
                          dma_latency=False if args.no_dma_latency else None)


def default_watchdog_ms(rate_hz: float) -> float:
    """50 ms, or three control periods at slow rates: a lock-step robot's observation is nearly a period old
    when the tick reads it, so a watchdog of a period or less would find every observation stale."""
    return max(50.0, 3000.0 / rate_hz)


def run_configs(args: argparse.Namespace, rate_hz: float) -> tuple[LoopConfig, SafetyConfig, StartConfig]:
    """The loop, safety and start settings of the parsed deploy flags (add_arguments). The single robot and
    every runner of a team deploy (robotrl/export/team.py) take them from here, so no runner falls back to
    a default that a flag was given to change."""
    loop = LoopConfig(rate_hz=rate_hz, duration_s=args.duration, overrun=args.overrun, spin_us=args.spin_us,
                      prewarm=not args.no_prewarm, realtime=realtime_config(args))
    watchdog_ms = args.watchdog_ms if args.watchdog_ms is not None else default_watchdog_ms(rate_hz)
    safety = SafetyConfig(safe_action=args.safe_action, max_rate=args.max_rate, watchdog_s=watchdog_ms / 1000)
    safety.check_period(rate_hz)
    return loop, safety, StartConfig(passive_s=args.passive_s, ramp_s=args.ramp_s)


def _check_number(flag: str, value: float | None, low: float, low_ok: bool) -> None:
    if value is None:
        return
    if not (math.isfinite(value) and (value >= low if low_ok else value > low)):
        raise ValueError(f"{flag} {value}: expected a finite number {'>=' if low_ok else '>'} {low:g}")


def check_flags(args: argparse.Namespace) -> None:
    """Every flag checked before anything starts, each error naming its flag (the spin against the
    period is checked once the rate is known, by LoopConfig)."""
    _check_number("--rate", args.rate, 0, False)
    _check_number("--duration", args.duration, 0, False)
    _check_number("--spin-us", args.spin_us, 0, True)
    _check_number("--watchdog-ms", args.watchdog_ms, 0, False)
    _check_number("--max-rate", args.max_rate, 0, False)
    _check_number("--passive-s", args.passive_s, 0, True)
    _check_number("--ramp-s", args.ramp_s, 0, True)
    realtime_config(args).check_permitted()
    if args.backend == "udp":
        resolve(args.host, args.port)


def check_writable(out_dir: Path) -> None:
    """Before the robot is contacted: outputs are written after the run, and a folder the robot's service
    user cannot write would lose the whole run's records at its end."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out_dir, prefix=".write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"--out {out_dir}: cannot write the run's records there ({exc.strerror or exc}); pass "
                      "--out with a writable folder") from exc


def default_out_dir(policy: Path, backend: str) -> Path:
    return policy.parent / f"{policy.stem}-deploy-{backend}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(out_dir: Path, runner: Runner, summary: dict[str, Any]) -> None:
    """ticks.npz (per-tick timings, actions, flags) and summary.json, each written atomically."""
    import io

    buffer = io.BytesIO()
    np.savez(buffer, rate_hz=np.float64(runner.loop.rate_hz), **runner.log.arrays())
    _atomic_write(out_dir / "ticks.npz", buffer.getvalue())
    _atomic_write(out_dir / "summary.json", json.dumps(summary, indent=2).encode())


def run_deploy(args: argparse.Namespace, make_sim_env: EnvFactory | None = None) -> tuple[dict[str, Any], Path]:
    """Load the policy, open the backend, run, write the outputs; returns (summary, output folder)."""
    if args.backend == "sim" and make_sim_env is None:
        raise RuntimeError(SIM_NEEDS_TRAIN)
    check_flags(args)
    policy = OnnxPolicy(args.policy, args.provider)  # a mistyped path leaves no output folder behind
    out_dir = Path(args.out) if args.out else default_out_dir(Path(args.policy), args.backend)
    check_writable(out_dir)
    rate = args.rate if args.rate is not None else policy.spec.control_hz
    if args.rate is None and not rate > 0:  # an env without a time step records 0
        raise ValueError(f"{args.policy}: the policy records no control rate (control_hz {rate:g}); pass --rate")
    loop, safety, start = run_configs(args, rate)
    show_transitions()
    if args.backend == "sim":
        from deploy.backends.sim import SimBackend

        backend = SimBackend(make_sim_env(args.env or policy.spec.env_id, **policy.spec.env_kwargs()), seed=args.seed)
    else:
        if policy.spec.obs_dim > protocol.MAX_VALUES:
            raise ValueError(f"{args.policy}: the policy takes {policy.spec.obs_dtype} observations of shape "
                             f"{list(policy.spec.obs_shape)} ({policy.spec.obs_dim} values); a UDP datagram carries "
                             f"at most {protocol.MAX_VALUES} float32 values: use --backend sim")
        backend = UdpBackend(args.host, args.port)
    try:
        runner = Runner(policy, backend, loop, safety, start)
    except BaseException:
        backend.close()
        raise
    summary = runner.run()
    write_outputs(out_dir, runner, summary)
    return summary, out_dir


class _Stderr(logging.Handler):
    """Writes to the sys.stderr of the moment (a StreamHandler keeps the one it was made with)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:  # logging's rule: a failing handler reports itself and does not raise
            self.handleError(record)


def show_transitions() -> None:
    """State transitions go to stderr as they happen (one short line each; they are rare)."""
    logger = logging.getLogger("deploy")
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("deploy: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def format_summary(s: dict[str, Any]) -> str:
    lat, inf, late, age = s["latency_us"], s["inference_us"], s["lateness_us"], s["obs_age_us"]
    faults = ", ".join(f"{k} {v}" for k, v in s["safe_actions"].items() if v) or "none"
    moves = ", ".join(f"{k} {v}" for k, v in s["states"]["transitions"].items())
    lines = [
        f"{s['backend']} at {s['rate_hz']:g} Hz: {s['ticks']} ticks, {s['overruns']} overruns, "
        f"{s['skipped']} skipped, blind ticks max {s['blind_ticks_max']}, stopped by {s['stopped_by']}",
        f"latency us p50 {lat['p50']} p99 {lat['p99']} max {lat['max']}; inference us p50 {inf['p50']} "
        f"p99 {inf['p99']}; lateness us p50 {late['p50']} p99 {late['p99']} max {late['max']}; observation "
        f"age us p50 {age['p50']} p99 {age['p99']}",
        f"safe actions ({s['safe_command']}): {faults}; states: {moves}",
    ]
    robot = s.get("robot", {})
    if robot.get("episodes"):
        rate = robot.get("success_rate")
        lines.append(f"episodes {robot['episodes']}: return {robot['return_mean']:.2f} ± {robot['return_std']:.2f}"
                     + ("" if rate is None else f", success rate {rate:.2f}"))
    return "\n".join(lines)


OPERATOR_STOPS = ("duration", "SIGINT", "SIGTERM", "SIGHUP")
"""How a run ends when nothing went wrong: its --duration, or the operator's signal (systemd's stop, Ctrl-C,
a dropped SSH link). Any other `stopped_by` (an overrun under --overrun stop, a refused robot) is a fault."""


def fault_stop(summary: dict[str, Any]) -> str | None:
    """The fault that ended a run early, None when it ended as planned; a team's first robot's fault."""
    runs = summary.get("robots") or [summary]
    return next((r["stopped_by"] for r in runs if r.get("stopped_by", "duration") not in OPERATOR_STOPS), None)


def error_line(exc: BaseException) -> str:
    """An error as the one line a command prints: its message's first line, or its type's name when the
    message is empty."""
    message = str(exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        summary, out_dir = run_deploy(args)
    except KeyboardInterrupt:  # outside the loop (handshake, loading): no command was sent yet
        print("deploy: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"deploy: error: {error_line(exc)}", file=sys.stderr)
        return 1
    print(f"per-tick records: {out_dir}", file=sys.stderr)
    print(json.dumps(summary) if args.json else format_summary(summary))
    fault = fault_stop(summary)
    if fault is not None:  # the records are written; a supervisor (systemd, a script) must still see it
        print(f"deploy: error: stopped early by a fault: {fault}", file=sys.stderr)
        return 1
    return 0
