"""`python -m deploy` and the shared half of `robotrl deploy`: options, wiring, output files.

`python -m deploy` runs on a controller with only the base install (numpy, onnxruntime). The sim
backend needs a simulated robot from envs, so it is reached through `robotrl deploy`, which hands
an env factory to `run_deploy`; a pixel policy gets a simulated robot that renders its frames.
The UDP protocol carries one float32 vector per datagram, too small for a pixel policy's frame stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deploy import protocol
from deploy.backends.udp import UdpBackend
from deploy.policy import PROVIDERS, OnnxPolicy
from deploy.runner import OVERRUN_POLICIES, LoopConfig, Runner
from deploy.safety import SAFE_ACTIONS, SafetyConfig

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
    p.add_argument("--safe-action", choices=SAFE_ACTIONS, default="hold")
    p.add_argument("--max-rate", type=float, help="limit each action component's change, units per second")
    p.add_argument("--watchdog-ms", type=float, default=50.0, help="observations older than this are stale")
    p.add_argument("--spin-us", type=float, default=200.0, help="spin before each deadline instead of sleeping")
    p.add_argument("--rt-priority", type=int, help="run the loop at this SCHED_FIFO priority (Linux, 1-99)")
    p.add_argument("--seed", type=int, default=0, help="sim: seed of the first episode")
    p.add_argument("--out", help="folder for ticks.npz and summary.json (default: next to the policy)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


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
    policy = OnnxPolicy(args.policy, args.provider)
    rate = args.rate if args.rate is not None else policy.spec.control_hz
    loop = LoopConfig(rate_hz=rate, duration_s=args.duration, overrun=args.overrun, spin_us=args.spin_us,
                      rt_priority=args.rt_priority)
    safety = SafetyConfig(safe_action=args.safe_action, max_rate=args.max_rate, watchdog_s=args.watchdog_ms / 1000)
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
        runner = Runner(policy, backend, loop, safety)
    except BaseException:
        backend.close()
        raise
    summary = runner.run()
    out_dir = Path(args.out) if args.out else default_out_dir(Path(args.policy), args.backend)
    write_outputs(out_dir, runner, summary)
    return summary, out_dir


def format_summary(s: dict[str, Any]) -> str:
    lat, inf, late = s["latency_us"], s["inference_us"], s["lateness_us"]
    faults = ", ".join(f"{k} {v}" for k, v in s["safe_actions"].items() if v) or "none"
    lines = [
        f"{s['backend']} at {s['rate_hz']:g} Hz: {s['ticks']} ticks, {s['overruns']} overruns, "
        f"{s['skipped']} skipped, stopped by {s['stopped_by']}",
        f"latency us p50 {lat['p50']} p99 {lat['p99']} max {lat['max']}; inference us p50 {inf['p50']} "
        f"p99 {inf['p99']}; lateness us p50 {late['p50']} p99 {late['p99']} max {late['max']}",
        f"safe actions: {faults}",
    ]
    robot = s.get("robot", {})
    if robot.get("episodes"):
        rate = robot.get("success_rate")
        lines.append(f"episodes {robot['episodes']}: return {robot['return_mean']:.2f} ± {robot['return_std']:.2f}"
                     + ("" if rate is None else f", success rate {rate:.2f}"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        summary, out_dir = run_deploy(args)
    except Exception as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"deploy: error: {message}", file=sys.stderr)
        return 1
    print(f"per-tick records: {out_dir}", file=sys.stderr)
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
