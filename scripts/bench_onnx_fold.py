"""ONNX Runtime inference of one exported policy with and without the bounds rescale folded into its last Gemm.

`robotrl export` traces a Gaussian policy through its `export_graph()` (policies.actor_critic
FoldedGaussianActor: Gemm, Max, Min at the end instead of Gemm, Mul, Add, Max, Min). This builds both
files from one run's checkpoint, checks both against the unfolded torch actor on the export's observations
(visited and edge), and times single-observation calls of each, opened as the deploy runner opens them
(deploy.policy.OnnxPolicy: one thread): `session.run` and the loop's `act` (IO binding), alternating old
and new in blocks within one process so that a shared machine's load falls on both alike. Prints one JSON
line: per-call p10/p50/p90 in microseconds per side and path, the median, min and max of the paired block
differences (new - old), how many blocks the folded file was faster in, the parity errors, the load
average before and after.

    .venv/bin/python scripts/bench_onnx_fold.py runs/fold-reacher --blocks 20 --calls 2000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from deploy.policy import OnnxPolicy
from envs.describe import describe_env
from policies.export import INPUT_NAME, OUTPUT_NAME, edge_observations, onnx_actions, parity_error, to_onnx
from policies.normalizer import RunningNormalizer
from robotrl.export.policy import load_actor, visited_observations


class Unfolded(nn.Module):
    """The actor as it computes, with no `export_graph()` for to_onnx to take: the graph before the fold."""

    def __init__(self, actor: nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)


def timed(call: Callable[[], object], calls: int) -> np.ndarray:
    """Nanoseconds of each of `calls` calls."""
    out = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        call()
        out[i] = clock() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder or checkpoint of a Gaussian ActorCritic policy")
    parser.add_argument("--blocks", type=int, default=20, help="timed blocks per side and path, alternating")
    parser.add_argument("--calls", type=int, default=2000, help="single-observation calls per block")
    parser.add_argument("--warmup", type=int, default=2000, help="untimed calls per side and path first")
    parser.add_argument("--out", type=Path, help="folder for old.onnx and new.onnx (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    actor, facts, env_kwargs = load_actor(args.run, None)
    actor.eval()
    described = describe_env(facts["env_id"], **env_kwargs)
    description = {**described, **facts, "source": args.run.name, "quantized": None}
    files = {"old": to_onnx(Unfolded(actor), described["obs_shape"], description),
             "new": to_onnx(actor, described["obs_shape"], description)}
    typical = visited_observations(actor, facts["env_id"], env_kwargs)
    clipped = any(isinstance(m, RunningNormalizer) for m in actor.modules())
    checked = np.concatenate([typical, edge_observations(typical, np.random.default_rng(0), clipped)])
    report: dict[str, object] = {"run": str(args.run), "env_id": facts["env_id"],
                                 "observations_checked": len(checked)}
    for side, model in files.items():
        report[f"{side}_ops"] = " ".join(node.op_type for node in onnx.load_from_string(model).graph.node)
        report[f"{side}_parity_max_abs"] = parity_error(actor, model, checked)
    report["old_vs_new_max_abs"] = float(np.abs(onnx_actions(files["old"], checked)
                                                - onnx_actions(files["new"], checked)).max())

    obs = np.ascontiguousarray(typical[len(typical) // 2][None], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        calls: dict[str, dict[str, Callable[[], object]]] = {"run": {}, "act": {}}
        for side, model in files.items():
            (folder / f"{side}.onnx").write_bytes(model)
            policy = OnnxPolicy(folder / f"{side}.onnx")
            # session.run as a caller without IO binding makes it; OnnxPolicy.act as the deploy loop does.
            calls["run"][side] = partial(policy.session.run, [OUTPUT_NAME], {INPUT_NAME: obs})
            calls["act"][side] = partial(policy.act, obs[0])
        for by_side in calls.values():
            for call in by_side.values():
                timed(call, args.warmup)
        load_before = os.getloadavg()
        samples = {path: {side: [] for side in files} for path in calls}
        for block in range(args.blocks):
            for path, by_side in calls.items():
                for side in (list(files) if block % 2 == 0 else list(files)[::-1]):
                    samples[path][side].append(timed(by_side[side], args.calls))
        load_after = os.getloadavg()
    for path, by_side in samples.items():
        for side, blocks in by_side.items():
            us = np.concatenate(blocks) / 1e3
            report[f"{path}_{side}_us"] = {f"p{q}": round(float(np.percentile(us, q)), 2) for q in (10, 50, 90)}
        # Paired by block: the two sides of one block ran back to back under the same load.
        diffs = [(np.median(n) - np.median(o)) / 1e3 for o, n in zip(by_side["old"], by_side["new"], strict=True)]
        report[f"{path}_block_p50_new_minus_old_us"] = {
            name: round(float(f(diffs)), 2) for name, f in (("median", np.median), ("min", np.min), ("max", np.max))}
        report[f"{path}_blocks_new_faster"] = sum(int(d < 0) for d in diffs)
    report["blocks"], report["calls_per_block"] = args.blocks, args.calls
    report["loadavg"] = [round(v, 2) for v in (*load_before, *load_after)]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
