"""The scaling model of synchronous on-policy collection on Ray, from a run's measured timings.

One iteration with K workers, each stepping n envs for T steps, costs
    broadcast (ray.put + each worker loading the weights, in parallel)
  + rollout   (one worker's T steps of n envs: policy forward + physics; workers run in parallel)
  + overhead  (Ray call, result transfer: the wait minus the worker's own time)
  + K * n * T * (assemble + update)   (the learner stitches and trains on every sample, alone)
so steps/s(K) = K n T / iteration_s(K), which tends to 1 / (assemble + update) per step: the learner
is the bottleneck once K n T (assemble + update) outweighs the rest. This is weak scaling (each worker
keeps its n envs, the batch grows with K), the usual way to add workers to PPO.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_WORKERS = (1, 2, 8, 32, 128)
"""Worker counts the report predicts unless told others."""


@dataclass(frozen=True)
class ScalingModel:
    steps_per_worker: int
    """n * T: env steps one worker collects per iteration."""
    rollout_s: float
    """Seconds a worker spends stepping its envs and its policy copy per iteration."""
    broadcast_s: float
    """Seconds to put the weights in the object store and load them in a worker."""
    overhead_s: float
    """Seconds of Ray call and transfer per iteration beyond the worker's own work."""
    learner_s_per_step: float
    """Learner seconds per collected step: assembling the storage plus the update."""

    def iteration_s(self, workers: int) -> float:
        fixed = self.broadcast_s + self.rollout_s + self.overhead_s
        return fixed + workers * self.steps_per_worker * self.learner_s_per_step

    def steps_per_s(self, workers: int) -> float:
        return workers * self.steps_per_worker / self.iteration_s(workers)

    def speedup(self, workers: int) -> float:
        """Throughput with `workers` relative to one worker."""
        return self.steps_per_s(workers) / self.steps_per_s(1)

    def per_worker_steps_per_s(self) -> float:
        return self.steps_per_worker / self.rollout_s

    def bottleneck(self, workers: int) -> str:
        parts = {"learner (assemble + update)": workers * self.steps_per_worker * self.learner_s_per_step,
                 "rollout workers": self.rollout_s, "weight broadcast": self.broadcast_s,
                 "Ray call overhead": self.overhead_s}
        return max(parts, key=parts.get)

    @classmethod
    def from_run(cls, run_dir: str | Path, skip: int = 2) -> ScalingModel:
        """Medians over a Ray run's metrics.csv rows, leaving out the first `skip` iterations (start-up);
        medians, because a shared machine's stalls put a long tail on every timing."""
        run_dir = Path(run_dir)
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        rows = [r for r in csv.DictReader((run_dir / "metrics.csv").open()) if r.get("time/rollout_wait_s")]
        if len(rows) <= skip:
            raise ValueError(f"{run_dir}/metrics.csv: {len(rows)} Ray iterations logged, need more than {skip} "
                             "(was the run made with scale.backend: ray?)")
        rows = rows[skip:]

        def median(key: str) -> float:
            return statistics.median(float(r[key]) for r in rows)

        workers = int(cfg["scale"]["workers"])
        n_steps = int(cfg[cfg["algo"]]["n_steps"])
        per_worker = cfg["env"]["num_envs"] // workers * n_steps
        rollout = median("time/worker_act_s") + median("time/worker_env_s")
        learner = (median("time/assemble_s") + median("time/update_s")) / (workers * per_worker)
        overhead = max(median("time/rollout_wait_s") - rollout - median("time/worker_load_s"), 0.0)
        return cls(per_worker, rollout, median("time/broadcast_s") + median("time/worker_load_s"), overhead, learner)

    def report(self, workers: tuple[int, ...] = DEFAULT_WORKERS) -> str:
        lines = [f"per-worker steps/s {self.per_worker_steps_per_s():,.0f} ({self.steps_per_worker} steps in "
                 f"{self.rollout_s * 1e3:.1f} ms); broadcast {self.broadcast_s * 1e3:.2f} ms; Ray overhead "
                 f"{self.overhead_s * 1e3:.1f} ms; learner {self.learner_s_per_step * 1e6:.2f} µs per step",
                 f"{'workers':>8} {'iteration s':>12} {'steps/s':>10} {'speed-up':>9}  bottleneck"]
        for k in workers:
            lines.append(f"{k:>8} {self.iteration_s(k):>12.3f} {self.steps_per_s(k):>10,.0f} "
                         f"{self.speedup(k):>9.2f}  {self.bottleneck(k)}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m robotrl.scale.model RUN_DIR`: print the model fitted to a Ray run; a folder that is not a
    Ray run says why in one line (exit 1) rather than a traceback."""
    parser = argparse.ArgumentParser(prog="python -m robotrl.scale.model", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a run trained with scale.backend: ray (reads its config.yaml and metrics.csv)")
    parser.add_argument("--workers", type=int, nargs="+", default=list(DEFAULT_WORKERS), metavar="K",
                        help="worker counts to predict (default: %(default)s)")
    parser.add_argument("--skip", type=int, default=2,
                        help="first iterations left out as start-up (default: %(default)s)")
    args = parser.parse_args(argv)
    if min(args.workers) < 1 or args.skip < 0:
        parser.error("--workers must be at least 1 and --skip at least 0")
    try:
        model = ScalingModel.from_run(args.run_dir, skip=args.skip)
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"{parser.prog}: {args.run_dir}: no {exc} in its config.yaml or metrics.csv (was the run made "
              "with scale.backend: ray?)", file=sys.stderr)
        return 1
    print(model.report(tuple(args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
