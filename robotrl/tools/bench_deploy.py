"""`robotrl bench deploy`: the control loop with a trained policy against a UDP robot in another process,
and, in the same run and process, the bare scheduler (no policy, no I/O) as the floor this machine allows
and the bare inference (the same policy file and session called once per period with the same wait, no
I/O) as the inference time the loop could have.

The shared machine stalls now and then; only the differences to the floor and to the bare inference say
what the runner adds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deploy.backends.udp import UdpBackend
from deploy.cli import add_realtime_arguments, realtime_config
from deploy.policy import OnnxPolicy
from deploy.realtime import RealtimeConfig
from deploy.runner import LoopConfig, Runner, run_bare_inference, run_floor, stalls
from deploy.safety import SafetyConfig
from deploy.states import StartConfig
from deploy.timing import TickLog


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
    run_dir = ckpt.parent.parent
    onnx_file = run_dir / "policy.onnx"
    if not onnx_file.exists() or onnx_file.stat().st_mtime < ckpt.stat().st_mtime:
        from robotrl.export.policy import export_policy

        # The run folder, as `robotrl export RUN` exports it: its delivered policy (best.pt where the run kept
        # its best), since this is the file a user deploys.
        export_policy(run_dir, onnx_file)
    return onnx_file


def peer_command(policy_file: str | Path, seed: int = 0) -> list[str]:
    """The simulated robot's command line: the task the policy file was trained on, its env kwargs included
    (with the env id alone, a policy trained with non-default kwargs met another robot)."""
    return [sys.executable, "-m", "robotrl.tools.udp_robot", "--policy", str(policy_file), "--port", "0",
            "--seed", str(seed)]


def start_peer(policy_file: str | Path, seed: int = 0, rt_priority: int | None = None,
               cpu: int | None = None) -> tuple[subprocess.Popen, int]:
    """A simulated robot in its own process on a free loopback port."""
    cmd = peer_command(policy_file, seed)
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


_SAMPLER = r"""
import os, signal, sys, time
from deploy.realtime import steal_ticks
cpus, interval = {int(c) for c in sys.argv[1].split(",")}, float(sys.argv[2])
if len(sys.argv) > 3:
    os.sched_setaffinity(0, {int(sys.argv[3])})
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
out = []
if steal_ticks(cpus) is not None:
    print("ready", flush=True)
    while not stop:
        out.append(f"{time.monotonic_ns()} {steal_ticks(cpus)}")
        time.sleep(interval)
print("\n".join(out), flush=True)
"""


class StealSampler:
    """The host's steal time of the loop's CPUs, sampled every `interval_s` by a process on another CPU
    (/proc/stat, 10 ms resolution): which of the loop's stalls came while the host ran something else.
    A thread in the loop's process would take the interpreter lock from the loop; a separate process does
    not. Its clock (CLOCK_MONOTONIC) is the loop's (perf_counter_ns on Linux)."""

    def __init__(self, cpus: set[int], interval_s: float = 0.002) -> None:
        others = sorted(set(os.sched_getaffinity(0)) - cpus)
        cmd = [sys.executable, "-c", _SAMPLER, ",".join(map(str, sorted(cpus))), str(interval_s)]
        self.proc = subprocess.Popen(cmd + ([str(others[0])] if others else []), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError("the steal sampler did not start (no /proc/stat?)")

    def stop(self) -> tuple[np.ndarray, np.ndarray]:
        """(times ns, steal in USER_HZ ticks) of every sample."""
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        rows = np.array([line.split() for line in out.splitlines() if line.strip()], dtype=np.int64).reshape(-1, 2)
        return rows[:, 0], rows[:, 1]


def steal_in_stalls(samples: tuple[np.ndarray, np.ndarray], stall_list: list[tuple[int, int]],
                    quiet: list[tuple[int, int]], settle_ns: int = 10_000_000) -> dict[str, Any]:
    """How many stalls saw the host's steal counter move (from the last sample before the stall to the
    first one `settle_ns` after it: the guest accounts steal at its next timer tick), and, as the chance
    level, how many stall-free windows of the same kind (`quiet`) did."""
    t, steal = samples

    def moved(a: int, b: int) -> bool:
        i0 = max(int(np.searchsorted(t, a, "right")) - 1, 0)
        i1 = min(int(np.searchsorted(t, b + settle_ns, "left")), len(t) - 1)
        return bool(steal[i1] > steal[i0])

    return {"stalls": len(stall_list), "stalls_with_steal": sum(moved(a, b) for a, b in stall_list),
            "quiet_windows": len(quiet), "quiet_windows_with_steal": sum(moved(a, b) for a, b in quiet)}


def _quiet_windows(log: TickLog, period_ns: int, stall_list: list[tuple[int, int]],
                   count: int = 200) -> list[tuple[int, int]]:
    """`count` windows between consecutive on-time ticks, spread over the run, as long as the median stall
    (3 periods when there was none): the chance that steal moves in a window without a stall."""
    wake = log.wake_ns[:log.ticks]
    length = int(np.median([b - a for a, b in stall_list])) if stall_list else 3 * period_ns
    span = max(1, round(length / period_ns))
    starts = np.linspace(0, max(0, len(wake) - span - 1), count).astype(int)
    return [(int(wake[k]), int(wake[k + span])) for k in starts
            if len(wake) > k + span and wake[k + span] - wake[k] <= (span + 1) * period_ns]


def _host_share(loop_log: TickLog, period_ns: int, samples: tuple[np.ndarray, np.ndarray] | None,
                report: dict[str, Any]) -> dict[str, Any]:
    """The host's part in one loop's misses: steal and run delay over the run, stalls that saw steal."""
    found = stalls(loop_log, period_ns)
    out = {"steal_ms": report.get("steal_ms"), "run_delay_ms": report.get("run_delay_ms")}
    if samples is not None and samples[0].size >= 2:
        out.update(steal_in_stalls(samples, found, _quiet_windows(loop_log, period_ns, found)))
    return out


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
    cpus = {rt.cpu} if rt.cpu is not None else set(os.sched_getaffinity(0))
    period_ns = round(1e9 / rate_hz)
    floor_log = TickLog(loop.ticks, 1)
    with _sampling(cpus) as samples:
        floor = run_floor(loop, floor_log)
    floor_steal = _host_share(floor_log, period_ns, samples(), floor["realtime"])
    bare = run_bare_inference(policy, loop, np.zeros(policy.spec.obs_dim, dtype=np.float32))
    # One priority below the loop: on a shared CPU the loop's timer must preempt the robot's simulation step
    # (at equal SCHED_FIFO priorities it would wait for the step, an episode reset included, to finish).
    robot_priority = None if rt.priority is None else max(1, rt.priority - 1)
    proc, port = start_peer(policy_path, rt_priority=robot_priority, cpu=robot_cpu)
    try:
        backend = UdpBackend("127.0.0.1", port)
        # The start sequence is short here: the bench measures the loop, not the robot's first seconds.
        runner = Runner(policy, backend, loop, SafetyConfig(watchdog_s=0.05), StartConfig(0.1, 0.1))
        with _sampling(cpus) as samples:
            result = runner.run()
        loop_steal = _host_share(runner.log, period_ns, samples(), result["realtime"])
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
        "host": {"floor": floor_steal, "loop": loop_steal},
        "floor": {k: floor[k] for k in ("ticks", "overruns", "skipped", "skipped_run_max", "lateness_us")},
        "bare": {k: bare[k] for k in ("ticks", "overruns", "skipped", "skipped_run_max", "lateness_us")},
        "load_avg_1min": _load(),
        "load_avg_1min_before": load_before,
    }


@contextlib.contextmanager
def _sampling(cpus: set[int]) -> Iterator[Callable[[], tuple[np.ndarray, np.ndarray] | None]]:
    """Sample the steal of `cpus` during the block; yields a function giving the samples after it (None where
    this machine has no /proc/stat to sample). The sampler process ends with the block, also on an error."""
    try:
        sampler: StealSampler | None = StealSampler(cpus)
    except (RuntimeError, OSError):
        sampler = None
    result: list[tuple[np.ndarray, np.ndarray]] = []
    try:
        yield lambda: result[0] if result else None
    finally:
        if sampler is not None:
            result.append(sampler.stop())


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
            f"{r['obs_age_us']['p50']}; load {r['load_avg_1min']} at {time.strftime('%H:%M')}"
            + "".join(_format_host(name, h) for name, h in r["host"].items()))


def _format_host(name: str, h: dict[str, Any]) -> str:
    text = f"\n{name}: host steal {h['steal_ms']} ms, run delay {h['run_delay_ms']} ms"
    if "stalls" in h:
        text += (f"; {h['stalls_with_steal']} of {h['stalls']} stalls (2+ missed ticks) saw steal, chance "
                 f"{h['quiet_windows_with_steal']} of {h['quiet_windows']} quiet windows")
    return text
