"""`robotrl bench deploy`: the control loop with a trained policy against a UDP robot in another process,
and, in the same run, the bare scheduler (no policy, no I/O) as the floor this machine allows.

The shared machine stalls now and then; only the difference to the floor says what the runner adds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deploy.backends.udp import UdpBackend
from deploy.policy import OnnxPolicy
from deploy.runner import LoopConfig, Runner, run_floor
from deploy.safety import SafetyConfig


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


def start_peer(env_id: str, seed: int = 0, rt_priority: int | None = None) -> tuple[subprocess.Popen, int]:
    """A simulated robot in its own process on a free loopback port."""
    cmd = [sys.executable, "-m", "robotrl.tools.udp_robot", "--env", env_id, "--port", "0", "--seed", str(seed)]
    if rt_priority is not None:
        cmd += ["--rt-priority", str(rt_priority)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("port "):
        proc.kill()
        raise RuntimeError(f"the UDP robot process did not start (said {line.strip()!r})")
    return proc, int(line.split()[1])


def bench_deploy(policy_path: str | Path | None = None, rate_hz: float = 1000.0, duration_s: float = 30.0,
                 spin_us: float = 200.0, rt_priority: int | None = None) -> dict[str, Any]:
    """Floor loop, then the policy against the UDP robot; the JSON of `robotrl bench deploy --json`."""
    policy_path = Path(policy_path) if policy_path else find_policy()
    policy = OnnxPolicy(policy_path)
    loop = LoopConfig(rate_hz=rate_hz, duration_s=duration_s, spin_us=spin_us, rt_priority=rt_priority)
    floor = run_floor(loop)
    proc, port = start_peer(policy.spec.env_id, rt_priority=rt_priority)
    try:
        backend = UdpBackend("127.0.0.1", port)
        result = Runner(policy, backend, loop, SafetyConfig(watchdog_s=0.05)).run()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "rate_hz": rate_hz,
        "duration_s": duration_s,
        "rt_priority": rt_priority,
        "spin_us": spin_us,
        "policy": str(policy_path),
        "ticks": result["ticks"],
        "overruns": result["overruns"],
        "skipped": result["skipped"],
        "latency_us": result["latency_us"],
        "inference_us": result["inference_us"],
        "lateness_us": result["lateness_us"],
        "safe_actions": result["safe_actions"],
        "robot": result["robot"],
        "floor": {"ticks": floor["ticks"], "overruns": floor["overruns"], "skipped": floor["skipped"],
                  "lateness_us": floor["lateness_us"]},
        "load_avg_1min": _load(),
    }


def _load() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


def format_bench(r: dict[str, Any]) -> str:
    f = r["floor"]
    return (f"{r['ticks']} ticks at {r['rate_hz']:g} Hz over UDP: {r['overruns']} overruns "
            f"(floor {f['overruns']}); latency us p50 {r['latency_us']['p50']} p99 {r['latency_us']['p99']} "
            f"max {r['latency_us']['max']}; inference us p50 {r['inference_us']['p50']} p99 "
            f"{r['inference_us']['p99']}; lateness us p50 {r['lateness_us']['p50']} p99 {r['lateness_us']['p99']} "
            f"(floor p50 {f['lateness_us']['p50']} p99 {f['lateness_us']['p99']}); load {r['load_avg_1min']}"
            f" at {time.strftime('%H:%M')}")
