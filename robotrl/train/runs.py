"""Run folders: whether a folder already holds a run, which run `--resume` continues, and how a finished
run reports itself. The trainer refuses to write over a run; `robotrl train` only parses and dispatches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robotrl.train.trainer import TrainResult

RUN_FILES = ("config.yaml", "metrics.csv", "eval.json", "checkpoints")
"""What the trainer writes into a run folder: any of them there means a run lives in it."""


def latest_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a run rewrites (atomically) at each save and `--resume` continues from."""
    return Path(run_dir) / "checkpoints" / "latest.pt"


def held_run(run_dir: Path) -> str | None:
    """The first of RUN_FILES in `run_dir`, or None for a missing or fresh folder."""
    return next((name for name in RUN_FILES if (Path(run_dir) / name).exists()), None)


def check_fresh(run_dir: Path) -> None:
    """Refuse a folder that holds a run: training into it would replace its checkpoints, metrics and
    config while its older checkpoints and event files stay mixed in."""
    found = held_run(run_dir)
    if found is None:
        return
    if not latest_checkpoint(run_dir).exists() and not (Path(run_dir) / "eval.json").exists():
        raise FileExistsError(f"--run-dir {run_dir}: holds a run that stopped before its first checkpoint "
                              f"({found}; nothing to resume): remove that folder or choose a new one")
    raise FileExistsError(f"--run-dir {run_dir}: holds a run already ({found}); pass --resume to continue "
                          "it, or choose a new folder")


def latest_run(name: str, seed: int, root: Path = Path("runs")) -> Path:
    """The newest run folder of config `name` and `seed` under `root`, which must have a checkpoint: an
    older run would be continued in its place (perhaps a finished one)."""
    runs = sorted(p for p in root.glob(f"{name}-{seed}-*") if p.is_dir())
    if not runs:
        raise FileNotFoundError(f"--resume: no run of {name} with seed {seed} under {root}/ (pass --run-dir)")
    if not latest_checkpoint(runs[-1]).exists():
        raise FileNotFoundError(f"--resume: the newest run of {name} with seed {seed}, {runs[-1]}, stopped before "
                                "its first checkpoint (nothing to resume); pass --run-dir to continue another")
    return runs[-1]


def train_report(result: TrainResult) -> dict[str, Any]:
    """What `robotrl train --json` prints."""
    return {"run_dir": str(result.run_dir), "steps": result.steps, "wall_s": result.wall_s, "eval": result.eval}


def format_train_report(report: dict[str, Any]) -> str:
    ev = report["eval"]
    success = "" if ev["success_rate"] is None else f", success {ev['success_rate']:.2f}"
    return (f"run folder: {report['run_dir']}\n{report['steps']} steps in {report['wall_s']:.0f} s; evaluation "
            f"over {ev['episodes']} episodes: return {ev['return_mean']:.2f} ± {ev['return_std']:.2f}{success}")
