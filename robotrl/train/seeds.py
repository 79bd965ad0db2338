"""`robotrl seeds CONFIG`: does a shipped config meet its target on every seed, not just the one it shipped with?

Each seed trains as its own run folder (`runs/seeds/<config>-<seed>/`), so a killed invocation resumes where
its checkpoint left off and a later session continues the seeds an earlier one did not reach. Each finished
run is evaluated over `episodes` episodes (the seed `robotrl eval` uses by default, so `robotrl eval RUN
--episodes 100 --json` gives the same numbers) against the config's `target:`.

Results merge into a committed record, `docs/seeds.json` (command, CPU model, wall time per seed), from
which `docs/seeds.md` is redrawn: one table per config, the table filled across invocations and sessions.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from policies.checkpoint import atomic_write_bytes
from robotrl.config import ConfigError, RunConfig, load_config, resume_differences
from robotrl.train.evaluate import check_target_measured
from robotrl.train.logger import read_metrics
from robotrl.train.multiseed import training_seconds
from robotrl.train.runs import latest_checkpoint
from robotrl.train.trainer import Trainer, evaluate_policy, load_policy

EVAL_SEED = 123_456
"""`robotrl eval`'s default episode seed: the table's numbers are what `robotrl eval RUN` reports."""
RECORD = "seeds.json"
TABLE = "seeds.md"
MIN_SEEDS_MET = 4
"""Issue 18's bar: a config meets its target on at least 4 of 5 seeds."""


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,2,7` or a mix (`0-2,5`) -> sorted distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if low > high:
                    raise ValueError
                seeds.update(range(low, high + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise ValueError(f"--seeds {text!r}: expected seeds like 0-4 or 0,2,5") from None
    if any(s < 0 for s in seeds):
        raise ValueError(f"--seeds {text!r}: seeds are non-negative")
    return sorted(seeds)


def cpu_model() -> str:
    """The CPU as far as it decides a trajectory: floating point, and so each run, differs between CPU
    generations and between the instruction sets torch's kernels use (AVX2 and AVX-512 sum in other
    orders). A virtual machine can name every EPYC generation "AMD EPYC", so the family and model are kept
    too."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model"):
                fields.setdefault(key, value.strip())
            elif not key:  # the first processor's block ends
                break
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    detail = []
    if "cpu family" in fields and "model" in fields:
        detail.append(f"family {fields['cpu family']} model {fields['model']}")
    detail.append(f"torch {torch.backends.cpu.get_cpu_capability()}")
    return f"{name} ({', '.join(detail)})"


@dataclass
class SeedRow:
    """One seed's line of the table."""

    seed: int
    run_dir: str
    steps: int
    """The step of the policy evaluated: with `train.keep_best`, the step of its best evaluation."""
    trained_steps: int
    """The steps the run trained (its last iteration may pass the budget)."""
    budget: int
    """The train.total_steps the seed was trained with: a row counts only while the config keeps it."""
    train_wall_s: float
    """Wall time of the training that finished the run (a resumed run: only the last invocation's part; a run
    trained outside `robotrl seeds` and found finished: the collect + update time its metrics.csv records)."""
    resumed: bool
    eval_wall_s: float
    episodes: int
    return_mean: float
    success_rate: float | None
    measured: float | None
    """The target's metric (None without a target)."""
    target_met: bool | None
    cpu: str
    date: str
    target_metric: str = ""
    """The metric `measured` is of: a row counts only while the config's target keeps it."""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The config the seed's run was trained with (its config.yaml): a row counts only while the config
    being checked trains the same way (seed, target, device and budget aside; the budget is `budget`)."""


def run_dir_of(cfg: RunConfig, seed: int, root: Path) -> Path:
    return root / f"{cfg.name}-{seed}"


def finished(run_dir: Path, total_steps: int) -> bool:
    """The trainer writes eval.json after the last step: a run folder with it and the full budget is done."""
    path = run_dir / "eval.json"
    return path.is_file() and json.loads(path.read_text()).get("steps", 0) >= total_steps


def recorded_training(run_dir: Path) -> tuple[float, bool]:
    """(training seconds, resumed) of a finished run trained elsewhere, from its own files: the collect and
    update times in metrics.csv, and more than one TensorBoard event file (one per invocation)."""
    rows = read_metrics(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    return training_seconds(rows), len(list(run_dir.glob("events.out.tfevents.*"))) > 1


def set_aside(run_dir: Path, why: str) -> Path:
    """Move a run folder out of the way (never delete a run): `<name>.<why>-<timestamp>`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.{why}-{stamp}")
    shutil.move(str(run_dir), str(target))
    return target


def stale_keys(cfg: RunConfig, run_dir: Path) -> list[str]:
    """The keys where the config being checked differs from the one the seed's run was trained with
    (besides its device and target): such a run measures another config, so its row would lie."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return []
    saved = yaml.safe_load(path.read_text())
    try:
        keys = [key for key, _, _ in resume_differences(saved, cfg)]
    except ConfigError as exc:  # trained by an older version whose keys this one no longer reads
        return [f"a config this version no longer reads ({str(exc).split(': ', 1)[-1]})"]
    # `train --resume` may raise a budget; a seed's row may not: exploration and learning-rate schedules
    # run over the budget, so a run stretched to it is not the config trained from scratch.
    if saved.get("train", {}).get("total_steps") != cfg.train.total_steps:
        keys.append("train.total_steps")
    else:
        # config.yaml holds the latest budget: a run resumed to it from a smaller one says so in eval.json.
        path = run_dir / "eval.json"
        budgets = json.loads(path.read_text()).get("budgets", []) if path.is_file() else []
        if len(set(budgets)) > 1:
            keys.append(f"train.total_steps (stretched from {budgets[0]:,})")
    return keys


def train_seed(cfg: RunConfig, run_dir: Path, show_progress: bool) -> tuple[float, bool]:
    """Train (or resume, or skip if finished) one seed's run; (wall seconds spent here, resumed).

    A run trained with another config (the shipped file changed since) is set aside and trained anew."""
    changed = stale_keys(cfg, run_dir)
    if changed:
        moved = set_aside(run_dir, "stale")
        print(f"{run_dir}: trained with another config ({', '.join(changed[:6])}); set aside as {moved.name}",
              flush=True)
    if finished(run_dir, cfg.train.total_steps):
        return 0.0, False
    resume = latest_checkpoint(run_dir).is_file()
    if run_dir.exists() and not resume:
        # Killed before its first checkpoint: nothing to continue; set it aside rather than delete it.
        set_aside(run_dir, "unfinished")
    start = time.perf_counter()
    trainer = Trainer(cfg, run_dir, resume=resume, show_progress=show_progress)
    if len(set(trainer.budgets)) > 1:
        moved = set_aside(run_dir, "stale")
        print(f"{run_dir}: resumed from a budget of {trainer.budgets[0]:,} (its schedules stretched); set aside "
              f"as {moved.name}", flush=True)
        trainer, resume = Trainer(cfg, run_dir, show_progress=show_progress), False
    trainer.run()
    return time.perf_counter() - start, resume


def evaluate_seed(cfg: RunConfig, run_dir: Path, episodes: int) -> tuple[dict[str, Any], float]:
    """The run's delivered policy over `episodes` episodes, as `robotrl eval RUN --episodes N` measures it."""
    start = time.perf_counter()
    policy, run_cfg, state = load_policy(run_dir)
    # The run's own config (its env kwargs), with the target of the config being checked.
    run_cfg = dataclasses.replace(run_cfg, target=cfg.target)
    result = evaluate_policy(policy, run_cfg, episodes, EVAL_SEED, torch.device("cpu"))
    result["steps"] = int(state["step"])
    # eval.json's step is the run's last: with keep_best the delivered policy's step can be earlier.
    result["trained_steps"] = int(json.loads((run_dir / "eval.json").read_text())["steps"])
    result["run_config"] = run_cfg.to_dict()
    return result, time.perf_counter() - start


def run_seeds(config: str, seeds: list[int], episodes: int = 100, root: Path = Path("runs/seeds"),
              docs: Path = Path("docs"), overrides: list[str] | None = None, command: str = "",
              show_progress: bool = False) -> dict[str, Any]:
    """Train and evaluate each seed, merge the rows into docs/seeds.json, redraw docs/seeds.md; returns this
    config's entry of the record."""
    if episodes < 1:
        raise ValueError(f"--episodes must be positive, got {episodes}")
    config = record_key(config)
    base = load_config(config, overrides)
    if base.target is None:
        raise ValueError(f"{config}: no target: key, so there is nothing to check the seeds against")
    try:
        check_target_measured(base.target, base.env.id, base.env.kwargs)  # before hours of training
    except ValueError as exc:
        raise ValueError(f"{config}: {exc}") from None
    entry: dict[str, Any] = {}
    for seed in seeds:
        cfg = dataclasses.replace(base, seed=seed)
        run_dir = run_dir_of(cfg, seed, root)
        train_s, resumed = train_seed(cfg, run_dir, show_progress)
        result, eval_s = evaluate_seed(cfg, run_dir, episodes)
        previous = _load(docs).get("configs", {}).get(config, {}).get("seeds", {}).get(str(seed))
        if train_s == 0.0 and previous is not None:
            # Trained earlier: keep the wall time and CPU of the invocation that trained it.
            train_s, resumed, cpu = previous["train_wall_s"], previous["resumed"], previous["cpu"]
        elif train_s == 0.0:
            # Found finished but never recorded (trained by `robotrl train` with this config, then moved here).
            train_s, resumed = recorded_training(run_dir)
            cpu = cpu_model()
        else:
            cpu = cpu_model()
        row = SeedRow(seed, str(run_dir), result["steps"], result["trained_steps"], cfg.train.total_steps,
                      round(train_s, 3), resumed, round(eval_s, 1), result["episodes"], result["return_mean"],
                      result.get("success_rate"), base.target.measured(result), result["target_met"], cpu,
                      datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), base.target.metric,
                      result["run_config"])
        # Recorded as each seed finishes: an invocation killed later keeps the seeds it completed.
        entry = record(docs, config, base, [row], command, overrides or [])
    return entry


def record_key(config: str) -> str:
    """The config's name in the record: its path relative to the working folder where it lies below it, so
    `launch/x.yaml`, `./launch/x.yaml` and its absolute path fill one table, not three."""
    path = Path(config).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _load(docs: Path) -> dict[str, Any]:
    path = docs / RECORD
    return json.loads(path.read_text()) if path.is_file() else {"configs": {}}


def record(docs: Path, config: str, cfg: RunConfig, rows: list[SeedRow], command: str,
           overrides: list[str]) -> dict[str, Any]:
    """Merge `rows` into the record (a seed measured again replaces its old row) and redraw the table."""
    docs.mkdir(parents=True, exist_ok=True)
    # Two invocations (two configs, or two sessions' terminals) may finish a seed at the same moment: the
    # read-merge-write holds a lock so neither drops the other's row.
    with open(docs / f"{RECORD}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _merge(docs, config, cfg, rows, command, overrides)


def _merge(docs: Path, config: str, cfg: RunConfig, rows: list[SeedRow], command: str,
           overrides: list[str]) -> dict[str, Any]:
    data = _load(docs)
    entry = data["configs"].setdefault(config, {"seeds": {}})
    target = dataclasses.asdict(cfg.target) if cfg.target else None
    entry.update({"target": target, "total_steps": cfg.train.total_steps, "overrides": overrides})
    for row in rows:
        entry["seeds"][str(row.seed)] = {**dataclasses.asdict(row), "command": command}
    entry["seeds"] = dict(sorted(entry["seeds"].items(), key=lambda kv: int(kv[0])))
    # Rows of another config (the file, its budget, its --set or its target's metric changed since; seeds
    # this invocation did not retrain keep theirs) stay visible but are not counted. A changed threshold
    # only re-judges the measured value.
    for row in entry["seeds"].values():
        row["not_counted"] = not_counted(row, cfg)
        if row["not_counted"] is None and row["measured"] is not None and cfg.target is not None:
            row["target_met"] = cfg.target.holds(row["measured"])
    met = [s["target_met"] for s in entry["seeds"].values() if s["not_counted"] is None]
    entry["met"], entry["measured_seeds"] = sum(m is True for m in met), len(met)
    # Atomic: the record merges seeds measured across sessions, and a killed write must not lose them.
    atomic_write_bytes(docs / RECORD, (json.dumps(data, indent=2) + "\n").encode())
    atomic_write_bytes(docs / TABLE, markdown(data).encode())
    return entry


def trained_steps(row: dict[str, Any]) -> int:
    """A recorded row's steps trained (rows written before `trained_steps` existed: `steps`)."""
    return int(row.get("trained_steps", row["steps"]))


def not_counted(row: dict[str, Any], cfg: RunConfig) -> str | None:
    """Why a recorded row does not measure `cfg` (None: it does). Rows written before a field existed are
    judged by what they carry: no `budget`, by the steps trained; no `config` or `target_metric`, not on them."""
    total = cfg.train.total_steps
    if "budget" in row:
        if int(row["budget"]) != total:
            return f"budget {int(row['budget']):,}"
    elif trained_steps(row) < total:
        return "older budget"
    metric = row.get("target_metric") or None
    if cfg.target is not None and metric is not None and metric != cfg.target.metric:
        return f"target metric {metric}"
    if row.get("config"):
        try:
            keys = [k for k, _, _ in resume_differences(row["config"], dataclasses.replace(cfg, seed=row["seed"]))]
        except ConfigError:
            return "trained with a config this version no longer reads"
        if keys:
            return "trained with other " + ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")
    return None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(data: dict[str, Any]) -> str:
    """docs/seeds.md: per config, one row per seed, and whether it meets its target on >= 4 of 5 seeds."""
    lines = ["# Targets per seed", "",
             "Written by `robotrl seeds CONFIG` from `docs/seeds.json` (do not edit by hand: rerun the command).",
             "Each seed is its own run folder (`runs/seeds/<config>-<seed>/`), evaluated over the episodes given",
             f"with `robotrl eval`'s default episode seed ({EVAL_SEED}). A config passes with its target met on",
             f"at least {MIN_SEEDS_MET} of 5 seeds. Wall times are of the invocation that trained the seed, on a",
             "shared machine: compare them only with the load they ran beside.", ""]
    for config, entry in sorted(data["configs"].items()):
        target = entry["target"]
        verdict = ("meets its target" if entry["met"] >= MIN_SEEDS_MET else
                   "below its target" if entry["measured_seeds"] - entry["met"] > 5 - MIN_SEEDS_MET else "open")
        lines += [f"## {config}", "",
                  f"Target `{target['metric']} {target['op']} {target['value']:g}`, {entry['total_steps']:,} steps"
                  + (f", overrides {entry['overrides']}" if entry["overrides"] else "")
                  + f": met on **{entry['met']} of {entry['measured_seeds']}** seeds measured ({verdict}).", "",
                  "| seed | steps | target metric | pass | return | success | episodes | train wall s | CPU | date |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for seed, s in entry["seeds"].items():
            passed = "-" if s["target_met"] is None else "pass" if s["target_met"] else "**fail**"
            trained = trained_steps(s)
            if s.get("not_counted"):
                passed += f" ({s['not_counted']}, not counted)"
            steps = f"{trained:,}" + (f" (policy of step {s['steps']:,})" if s["steps"] != trained else "")
            wall = f"{s['train_wall_s']:.0f}" + (" (resumed)" if s["resumed"] else "")
            lines.append(f"| {seed} | {steps} | {_fmt(s['measured'], 3)} | {passed} | "
                         f"{_fmt(s['return_mean'])} | {_fmt(s['success_rate'])} | {s['episodes']} | {wall} | "
                         f"{s['cpu']} | {s['date']} |")
        commands = sorted({s["command"] for s in entry["seeds"].values() if s["command"]})
        lines += [""] + [f"`{c}`" for c in commands] + [""]
    return "\n".join(lines)


def format_rows(entry: dict[str, Any], seeds: list[int]) -> str:
    """The per-seed table `robotrl seeds` prints for the seeds of this invocation."""
    target = entry["target"]
    out = [f"target {target['metric']} {target['op']} {target['value']:g}",
           f"{'seed':>4}  {'measured':>9}  {'pass':>4}  {'return':>9}  {'train s':>8}"]
    for seed in seeds:
        s = entry["seeds"][str(seed)]
        passed = "-" if s["target_met"] is None else "yes" if s["target_met"] else "NO"
        out.append(f"{seed:>4}  {_fmt(s['measured'], 3):>9}  {passed:>4}  {_fmt(s['return_mean']):>9}  "
                   f"{s['train_wall_s']:>8.0f}")
    out.append(f"met on {entry['met']} of {entry['measured_seeds']} seeds measured (bar: {MIN_SEEDS_MET} of 5)")
    return "\n".join(out)
