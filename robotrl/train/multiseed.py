"""Train our agent on one config for one seed and keep what a comparison needs: the final evaluation
return, the evaluation curve and the training time (collect + update, evaluations left out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robotrl.config import RunConfig
from robotrl.train.logger import read_metrics
from robotrl.train.trainer import Trainer


@dataclass
class SeedResult:
    """One training run: the final evaluation return, the evaluation curve and its timings."""

    seed: int
    final_return: float
    curve: list[tuple[int, float]]
    steps: int
    train_s: float
    wall_s: float
    resumed_from: int | None = None
    """The step a stopped run resumed from (its wall_s counts only the part after it); None: one go."""


def training_seconds(rows: list[dict[str, float]]) -> float:
    """A run's training time from its metrics rows: collect and update, without evaluations."""
    return sum(r.get("time/collect_s", 0.0) + r.get("time/update_s", 0.0) for r in rows)


def run_ours(cfg: RunConfig, run_dir: Path, resume: bool = False) -> SeedResult:
    """Our trainer, as `robotrl train` runs it; training time is the sum of collect and update times.

    With `resume`, a run stopped earlier continues from its last checkpoint (its metrics keep the
    earlier rows, so train_s still covers the whole run).
    """
    trainer = Trainer(cfg, run_dir, resume=resume, show_progress=False)
    resumed_from = trainer.step if resume else None
    result = trainer.run()
    rows = read_metrics(run_dir / "metrics.csv")
    train_s = training_seconds(rows)
    curve = [(int(r["step"]), r["eval/return_mean"]) for r in rows if "eval/return_mean" in r]
    return SeedResult(cfg.seed, result.eval["return_mean"], curve, result.steps, train_s, result.wall_s,
                      resumed_from)
