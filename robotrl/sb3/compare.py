"""`robotrl compare`: train ours and SB3 on the same config, seeds and budget; evaluate both the same way.

Both sides are evaluated with robotrl.train.evaluate (deterministic actions, the same env and evaluation
seed), periodically at the same step counts (after each update that crosses `train.eval_every`) and at
the end with `train.final_eval_episodes` episodes. Steps/s count training only: the evaluations are
timed and left out on both sides.

Each finished (side, seed) is written to the output folder at once, so a long comparison that is
stopped keeps what it finished, and a rerun with the same folder skips it; a seed stopped midway resumes
from its last checkpoint on either side (ours: `ours-seedK/`, a run folder; SB3: `sb3-seedK/`, see
robotrl.sb3.resume). `sides` runs one side only, so two processes
(or two sessions) can share one comparison folder: one per side, or one per seed with `--set seed=K
--seeds 1`; a last run over all seeds and both sides then only reads their results and reports.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import stable_baselines3
import yaml
from stable_baselines3.common.callbacks import BaseCallback

from policies.checkpoint import atomic_write_bytes
from robotrl.config import ConfigError, RunConfig, list_differences, resume_differences
from robotrl.core.stats import mean_ci95
from robotrl.core.threads import limit_threads
from robotrl.sb3.resume import STATE, SB3Checkpoints
from robotrl.sb3.translate import check_translatable, make_sb3_model, sb3_policy_fn
from robotrl.train.evaluate import evaluate
from robotrl.train.logger import read_metrics
from robotrl.train.multiseed import SeedResult, run_ours
from robotrl.train.stop import StopRequest, TrainingStopped

SIDES = ("ours", "sb3")


def eval_seed(cfg: RunConfig) -> int:
    """The evaluation seed the trainer uses for this config (SB3 is evaluated on the same episodes)."""
    return cfg.seed + 10_000


class _Progress(BaseCallback):
    """Evaluates after each SB3 update that crosses eval_every and checkpoints after each that crosses
    checkpoint_every (both at the next rollout's start, where the replay holds every step counted)."""

    def __init__(self, cfg: RunConfig, checkpoints: SB3Checkpoints | None, state: dict[str, Any] | None,
                 stop: StopRequest) -> None:
        super().__init__()
        self.cfg = cfg
        self.checkpoints = checkpoints
        self.stop = stop  # SIGTERM/SIGINT: checkpoint at the next rollout's start and stop (robotrl.train.stop)
        state = state or {}
        self.eval_every = cfg.train.eval_every
        self.save_every = cfg.train.checkpoint_every
        self.next_eval = int(state.get("next_eval", self.eval_every))
        self.next_save = int(state.get("next_save", self.save_every))
        self.curve: list[tuple[int, float]] = [(int(s), float(r)) for s, r in state.get("curve", [])]
        self.prior_train_s = float(state.get("train_s", 0.0))
        self.start = time.perf_counter()
        self.eval_s = 0.0
        self.save_s = 0.0

    def train_s(self) -> float:
        """Training seconds of the whole run so far: evaluations and checkpoints left out."""
        return self.prior_train_s + time.perf_counter() - self.start - self.eval_s - self.save_s

    def maybe_eval(self) -> None:
        if not self.eval_every or self.num_timesteps < self.next_eval:
            return
        t0 = time.perf_counter()
        ev = evaluate(sb3_policy_fn(self.model), self.cfg.env.id, self.cfg.train.eval_episodes,
                      seed=eval_seed(self.cfg), env_kwargs=self.cfg.env.kwargs)
        self.eval_s += time.perf_counter() - t0
        self.curve.append((self.num_timesteps, ev["return_mean"]))
        while self.next_eval <= self.num_timesteps:
            self.next_eval += self.eval_every

    def save(self) -> None:
        if self.checkpoints is None:
            return
        t0 = time.perf_counter()
        while self.save_every and self.next_save <= self.num_timesteps:
            self.next_save += self.save_every
        self.checkpoints.save(self.model, {"curve": self.curve, "next_eval": self.next_eval,
                                           "next_save": self.next_save, "train_s": self.train_s(),
                                           "config": self.cfg.to_dict(), "sb3_version": SB3_VERSION})
        self.save_s += time.perf_counter() - t0

    def _on_rollout_start(self) -> None:
        self.maybe_eval()
        signame = self.stop.signame if self.checkpoints is not None else None  # read once (see the trainer)
        if signame is not None or (self.save_every and self.num_timesteps >= self.next_save):
            self.save()
        if signame is not None:
            assert self.checkpoints is not None
            raise TrainingStopped(self.num_timesteps, signame, str(self.checkpoints.folder))

    def _on_step(self) -> bool:
        return True


def run_sb3(cfg: RunConfig, folder: Path | None = None) -> SeedResult:
    """SB3 on the translated config, evaluated at the same points as ours; with `folder`, checkpointed
    there every train.checkpoint_every steps and resumed from its last checkpoint (see robotrl.sb3.resume)."""
    limit_threads(cfg.train.threads)
    start = time.perf_counter()
    checkpoints = SB3Checkpoints(folder) if folder is not None else None
    state = checkpoints.state() if checkpoints is not None else None
    if state is not None:
        assert checkpoints is not None
        model = checkpoints.load(cfg, state)
    else:
        model = make_sb3_model(cfg, seed=cfg.seed)
    # A stop request needs a checkpoint to stop at: without a folder, signals act as they always do.
    with StopRequest(enabled=checkpoints is not None) as stop:
        callback = _Progress(cfg, checkpoints, state, stop)
        model.learn(total_timesteps=cfg.train.total_steps - model.num_timesteps, callback=callback,
                    reset_num_timesteps=state is None)
        # A signal during the last rollout or update finds no later rollout start: it is read here, or the
        # seed would be evaluated and the comparison would go on to the next one.
        signame = stop.signame
    callback.maybe_eval()  # the last update crosses the final eval point after the last rollout start
    callback.save()  # the final model, and a budget raised later continues from it
    if signame is not None:
        assert checkpoints is not None
        raise TrainingStopped(int(model.num_timesteps), signame, str(checkpoints.folder))
    train_s = callback.train_s()
    final = evaluate(sb3_policy_fn(model), cfg.env.id, cfg.train.final_eval_episodes, seed=eval_seed(cfg),
                     env_kwargs=cfg.env.kwargs)
    steps = int(model.num_timesteps)
    curve = [(s, r) for s, r in callback.curve if s != steps] + [(steps, final["return_mean"])]
    env = model.get_env()
    if env is not None:
        env.close()
    return SeedResult(cfg.seed, final["return_mean"], curve, steps, train_s, time.perf_counter() - start,
                      int(state["step"]) if state is not None else None)


def summarize(results: list[SeedResult]) -> dict[str, Any]:
    """The JSON block of one side: per-seed returns, mean and 95% t-interval, training steps/s."""
    returns = [r.final_return for r in results]
    mean, (lo, hi) = mean_ci95(returns)
    return {"returns": returns, "mean": mean, "ci95": [lo, hi],
            "steps_per_s": sum(r.steps for r in results) / sum(r.train_s for r in results),
            "wall_s": sum(r.wall_s for r in results), "seeds": [r.seed for r in results],
            "curves": [r.curve for r in results]}


ELSEWHERE = "give another --out to compare this one (robotrl baselines: move that folder away)"
SB3_VERSION = stable_baselines3.__version__


def check_sb3_version(recorded: str | None, path: Path, seed: int) -> None:
    """Refuse to reuse or resume an SB3 seed trained by another stable-baselines3 release: a regenerated
    baseline would stamp this release's version over the older release's returns. A file that records no
    release (written before robotrl recorded it) is refused too: its release is not known."""
    if recorded is None:
        raise ConfigError(f"{path}: this comparison folder's sb3 seed {seed} records no stable-baselines3 release "
                          f"(written before robotrl recorded it), so it cannot be reused as {SB3_VERSION}'s; "
                          f"{ELSEWHERE}")
    if recorded != SB3_VERSION:
        raise ConfigError(f"{path}: this comparison folder's sb3 seed {seed} was trained with stable-baselines3 "
                          f"{recorded}, this is {SB3_VERSION}; {ELSEWHERE}")


def seed_progress(side: str, seed: int, out_dir: Path) -> int:
    """The env steps a side's seed has trained in this folder: its finished result's, else its last
    checkpoint's (SB3's state file; our run's metrics, cheaper to read than a checkpoint with its replay)."""
    result = out_dir / f"{side}-seed{seed}.json"
    if result.is_file():
        return int(json.loads(result.read_text())["steps"])
    if side == "sb3":
        state = out_dir / f"sb3-seed{seed}" / STATE
        return int(json.loads(state.read_text()).get("step", 0)) if state.is_file() else 0
    rows = read_metrics(out_dir / f"ours-seed{seed}" / "metrics.csv") \
        if (out_dir / f"ours-seed{seed}" / "metrics.csv").is_file() else []
    return int(rows[-1]["step"]) if rows else 0


def check_same_config(side: str, cfg: RunConfig, out_dir: Path) -> None:
    """Refuse to reuse or resume a seed of the folder that was trained with another config: its result
    would be reported as this config's (and SB3's model zip would train on with its own hyperparameters).
    The device may differ, and the budget may grow, as on --resume. A smaller budget is refused once the
    seed is past it (its result would be reported under that budget); a seed stopped before it may finish
    there. SB3 checkpoints written before the config was recorded in them are not checked."""
    if side == "ours":
        path = out_dir / f"ours-seed{cfg.seed}" / "config.yaml"
        saved = yaml.safe_load(path.read_text()) if path.is_file() else None
    else:
        path = out_dir / f"sb3-seed{cfg.seed}" / STATE
        state = json.loads(path.read_text()) if path.is_file() else None
        if state is not None:
            check_sb3_version(state.get("sb3_version"), path, cfg.seed)
        saved = state.get("config") if state is not None else None
    if not saved:
        return
    trained = int((saved.get("train") or {}).get("total_steps", 0))
    done = seed_progress(side, cfg.seed, out_dir)
    if trained > cfg.train.total_steps and done > cfg.train.total_steps:
        raise ConfigError(f"{path}: this comparison folder's {side} seed {cfg.seed} was trained for a budget of "
                          f"{trained:,} steps and is at {done:,}, past this config's {cfg.train.total_steps:,}: its "
                          f"result would be reported under the smaller budget; {ELSEWHERE}")
    differences = resume_differences(saved, cfg)
    if differences:
        raise ConfigError(f"{path}: this comparison folder's {side} seed {cfg.seed} was trained with another "
                          f"config: {list_differences(differences, 'trained')}; {ELSEWHERE}")


def run_side(side: str, cfg: RunConfig, out_dir: Path) -> SeedResult:
    """Train one side for cfg.seed, or reuse the result a previous run of this comparison saved."""
    check_same_config(side, cfg, out_dir)
    path = out_dir / f"{side}-seed{cfg.seed}.json"
    if path.exists():
        data = json.loads(path.read_text())
        if side == "sb3":
            check_sb3_version(data.pop("sb3_version", None), path, cfg.seed)
        if data["steps"] >= cfg.train.total_steps:
            return SeedResult(**{**data, "curve": [tuple(p) for p in data["curve"]]})
    if side == "ours":
        run_dir = out_dir / f"ours-seed{cfg.seed}"
        # A seed stopped after its first checkpoint resumes from its last one (replay buffer, optimizer
        # and rng state included); its episodes in progress restart, and the result records the step
        # it resumed from. One stopped before any checkpoint starts again.
        resume = (run_dir / "checkpoints" / "latest.pt").is_file()
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
        result = run_ours(cfg, run_dir, resume=resume)
    else:
        result = run_sb3(cfg, out_dir / f"sb3-seed{cfg.seed}")
    recorded = {**dataclasses.asdict(result), **({"sb3_version": SB3_VERSION} if side == "sb3" else {})}
    atomic_write_bytes(path, json.dumps(recorded).encode())
    return result


def check_comparable(cfg: RunConfig, seeds: int, sides: tuple[str, ...] = SIDES) -> None:
    """Refuse, before anything trains, a comparison that could not finish."""
    if seeds < 1:
        raise ValueError(f"--seeds: expected at least 1, got {seeds}")
    if "sb3" in sides:
        check_translatable(cfg)


def default_out(cfg: RunConfig, root: Path = Path("runs") / "compare") -> Path:
    """runs/compare/<config>-<timestamp>."""
    return root / f"{cfg.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def as_compared(cfg: RunConfig) -> RunConfig:
    """The config our side trains in a comparison: train.keep_best off.

    With keep_best our run delivers its best periodic policy, measured on held-out episodes; SB3 has no such
    step here and delivers its last policy. Both sides deliver their last policy, measured on the same
    episodes, so the comparison is of the learning, not of the choice among its policies."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, keep_best=False))


def compare(cfg: RunConfig, seeds: int, out_dir: Path, sides: tuple[str, ...] = SIDES) -> dict[str, Any]:
    """Train every side for seeds cfg.seed .. cfg.seed+seeds-1; report and plot into out_dir."""
    check_comparable(cfg, seeds, sides)
    if cfg.train.keep_best and "ours" in sides:
        print("train.keep_best is off on our side: SB3 keeps no best policy here, so each side is measured on "
              "its last one", flush=True)
    cfg = as_compared(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_side: dict[str, list[SeedResult]] = {s: [] for s in sides}
    for k in range(seeds):
        seeded = dataclasses.replace(cfg, seed=cfg.seed + k)
        for side in sides:
            per_side[side].append(run_side(side, seeded, out_dir))
    report: dict[str, Any] = {"env": cfg.env.id, "algo": cfg.algo, "steps": cfg.train.total_steps,
                              "seeds": [cfg.seed + k for k in range(seeds)]}
    report.update({side: summarize(results) for side, results in per_side.items()})
    from robotrl.sb3.plot import plot_comparison

    report["plot"] = str(plot_comparison(report, out_dir / "curves.png"))
    atomic_write_bytes(out_dir / "report.json", json.dumps(report, indent=2).encode())
    return report


def format_report(report: dict[str, Any]) -> str:
    """What `robotrl compare` prints: each side's return with its 95% interval, speed and per-seed returns."""
    lines = [f"{report['algo']} on {report['env']}, {report['steps']} steps, seeds {report['seeds']}"]
    for side in SIDES:
        if side in report:
            b = report[side]
            lines.append(f"{side:>4}: return {b['mean']:.2f}, 95% CI [{b['ci95'][0]:.2f}, {b['ci95'][1]:.2f}], "
                         f"{b['steps_per_s']:.0f} steps/s, wall {b['wall_s']:.0f} s; per seed "
                         + ", ".join(f"{r:.2f}" for r in b["returns"]))
    lines.append(f"plot: {report['plot']}")
    return "\n".join(lines)
