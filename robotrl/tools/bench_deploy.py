"""`robotrl bench deploy`: the control loop with a trained policy against a UDP robot in another process,
and, in the same run and process, the bare scheduler (no policy, no I/O) as the floor this machine allows
and the bare inference (the same policy file and session called once per period with the same wait, no
I/O) as the inference time the loop could have.

The shared machine stalls now and then; only the differences to the floor and to the bare inference say
what the runner adds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deploy.backends.udp import UdpBackend
from deploy.cli import add_realtime_arguments, realtime_config
from deploy.policy import OnnxPolicy
from deploy.realtime import RealtimeConfig
from deploy.runner import LoopConfig, Runner, run_bare_inference, run_floor
from deploy.safety import SafetyConfig
from deploy.states import StartConfig


def find_policy(env_id: str = "robotrl/Reacher-v0", root: Path = Path("runs")) -> Path:
    """The newest run of `env_id` with a checkpoint, exported to its policy.onnx if not yet."""
    import yaml

    candidates = []
    for ckpt in root.glob("*/checkpoints/latest.pt"):
        cfg_file = ckpt.parent.parent / "config.yaml"
        if cfg_file.exists() and (yaml.safe_load(cfg_file.read_text()) or {}).get("env", {}).get("id") == env_id:
            candidates.append(ckpt)
    if not candidates:
        raise FileNotFoundError(f"no trained {env_id} run under {root}/: train one (robotrl train "
                                "launch/reacher_ppo.yaml) or pass --policy FILE.onnx")
    ckpt = max(candidates, key=lambda p: p.stat().st_mtime)
    onnx_file = ckpt.parent.parent / "policy.onnx"
    if not onnx_file.exists() or onnx_file.stat().st_mtime < ckpt.stat().st_mtime:
        from robotrl.export.policy import export_policy

        export_policy(ckpt, onnx_file)
    return onnx_file


def start_peer(env_id: str, seed: int = 0, rt_priority: int | None = None,
               cpu: int | None = None) -> tuple[subprocess.Popen, int]:
    """A simulated robot in its own process on a free loopback port."""
    cmd = [sys.executable, "-m", "robotrl.tools.udp_robot", "--env", env_id, "--port", "0", "--seed", str(seed)]
    if rt_priority is not None:
        cmd += ["--rt-priority", str(rt_priority)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("port "):
        proc.kill()
        raise RuntimeError(f"the UDP robot process did not start (said {line.strip()!r})")
    return proc, int(line.split()[1])


def bench_deploy(policy_path: str | Path | None = None, rate_hz: float = 1000.0, duration_s: float = 30.0,
                 spin_us: float = 200.0, rt_priority: int | None = None, realtime: RealtimeConfig | None = None,
                 robot_cpu: int | None = None, prewarm: bool = True) -> dict[str, Any]:
    """Floor loop, bare inference loop, then the policy against the UDP robot (each `duration_s`); the JSON
    of `robotrl bench deploy --json`."""
    policy_path = Path(policy_path) if policy_path else find_policy()
    policy = OnnxPolicy(policy_path)
    loop = LoopConfig(rate_hz=rate_hz, duration_s=duration_s, spin_us=spin_us, rt_priority=rt_priority,
                      prewarm=prewarm, realtime=realtime)
    rt = loop.realtime
    load_before = _load()
    floor = run_floor(loop)
    bare = run_bare_inference(policy, loop, np.zeros(policy.spec.obs_dim, dtype=np.float32))
    # One priority below the loop: on a shared CPU the loop's timer must preempt the robot's simulation step
    # (at equal SCHED_FIFO priorities it would wait for the step, an episode reset included, to finish).
    robot_priority = None if rt.priority is None else max(1, rt.priority - 1)
    proc, port = start_peer(policy.spec.env_id, rt_priority=robot_priority, cpu=robot_cpu)
    try:
        backend = UdpBackend("127.0.0.1", port)
        # The start sequence is short here: the bench measures the loop, not the robot's first seconds.
        result = Runner(policy, backend, loop, SafetyConfig(watchdog_s=0.05), StartConfig(0.1, 0.1)).run()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "rate_hz": rate_hz,
        "duration_s": duration_s,
        "rt_priority": rt.priority,
        "robot_rt_priority": robot_priority,
        "spin_us": spin_us,
        "prewarm": prewarm,
        "cpu": rt.cpu,
        "robot_cpu": robot_cpu,
        "policy": str(policy_path),
        "ticks": result["ticks"],
        "overruns": result["overruns"],
        "skipped": result["skipped"],
        "blind_ticks_max": result["blind_ticks_max"],
        "latency_us": result["latency_us"],
        "obs_age_us": result["obs_age_us"],
        "inference_us": result["inference_us"],
        "bare_inference_us": bare["inference_us"],
        "lateness_us": result["lateness_us"],
        "safe_actions": result["safe_actions"],
        "states": {k: v for k, v in result["states"].items() if k != "log"},
        "realtime": result["realtime"],
        "robot": result["robot"],
        "floor": {k: floor[k] for k in ("ticks", "overruns", "skipped", "skipped_run_max", "lateness_us")},
        "bare": {k: bare[k] for k in ("ticks", "overruns", "skipped", "skipped_run_max", "lateness_us")},
        "load_avg_1min": _load(),
        "load_avg_1min_before": load_before,
    }


def _load() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `robotrl bench deploy`."""
    p.add_argument("--policy", help="exported policy (default: export the newest Reacher-v0 run)")
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--duration", type=float, default=30.0, help="seconds for each of the three loops")
    # A controller's set-up: real-time priority, locked memory, frozen GC, a wake-up latency request, a cache
    # warm-up after each sleep and a short busy-wait to the deadline. The real-time load of the loop's CPU
    # (spin, tick, and the simulated robot beside it) must stay well under the kernel's RT throttling limit
    # (95%): spinning 900 us stalled the loop 38-51 ms; at 400 us with the robot on the same CPU it still
    # stalled up to 19 ms at load 12-20, at 200 us no more than the bare scheduler did (20 s runs).
    add_realtime_arguments(p, default_priority=50)
    p.add_argument("--spin-us", type=float, default=200.0, help="spin before each deadline instead of sleeping")
    # Loop and simulated robot share the last CPU: a wake-up across CPUs costs the loop's send 20-25 us more
    # (an inter-processor interrupt, a VM exit here), and the other CPUs stay with the rest of the machine.
    last = max(os.sched_getaffinity(0))
    p.set_defaults(cpu=last)
    p.add_argument("--robot-cpu", type=int, help="pin the simulated robot process to this CPU (default: --cpu's; "
                   "-1: no pinning)")
    p.add_argument("--json", action="store_true")


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """`robotrl bench deploy` with its parsed flags."""
    robot_cpu = args.cpu if args.robot_cpu is None else args.robot_cpu
    robot_cpu = None if robot_cpu is None or robot_cpu < 0 else robot_cpu
    if robot_cpu is not None and robot_cpu not in os.sched_getaffinity(0):
        raise ValueError(f"--robot-cpu {robot_cpu}: expected one of {sorted(os.sched_getaffinity(0))} or -1")
    return bench_deploy(args.policy, args.rate, args.duration, spin_us=args.spin_us, realtime=realtime_config(args),
                        robot_cpu=robot_cpu, prewarm=not args.no_prewarm)


def format_bench(r: dict[str, Any]) -> str:
    f = r["floor"]
    return (f"{r['ticks']} ticks at {r['rate_hz']:g} Hz over UDP: {r['overruns']} overruns, {r['skipped']} skipped "
            f"(floor {f['overruns']}, {f['skipped']}), blind ticks max {r['blind_ticks_max']} (floor's longest "
            f"skip {f['skipped_run_max']}); latency us p50 "
            f"{r['latency_us']['p50']} p99 {r['latency_us']['p99']} max {r['latency_us']['max']}; inference us p50 "
            f"{r['inference_us']['p50']} p99 {r['inference_us']['p99']} (bare p50 {r['bare_inference_us']['p50']} "
            f"p99 {r['bare_inference_us']['p99']}); lateness us p50 {r['lateness_us']['p50']} p99 "
            f"{r['lateness_us']['p99']} max {r['lateness_us']['max']} (floor p50 {f['lateness_us']['p50']} p99 "
            f"{f['lateness_us']['p99']} max {f['lateness_us']['max']}); observation age us p50 "
            f"{r['obs_age_us']['p50']}; load {r['load_avg_1min']} at {time.strftime('%H:%M')}")
