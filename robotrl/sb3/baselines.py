"""Write the stored SB3 baselines: SB3 trained on a shipped config for K seeds, with what made it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stable_baselines3

from policies.checkpoint import atomic_write_bytes
from robotrl.config import load_config
from robotrl.sb3.compare import check_comparable, compare
from robotrl.sb3.stored import BASELINE_DIR, baseline_path


def baseline_record(report: dict[str, Any], config: str, command: str) -> dict[str, Any]:
    """The baseline file's content from the SB3 side of a comparison report."""
    sb3 = report["sb3"]
    return {"env": report["env"], "algo": report["algo"], "config": config, "steps": report["steps"],
            "seeds": report["seeds"], "sb3_version": stable_baselines3.__version__, "returns": sb3["returns"],
            "mean": sb3["mean"], "ci95": sb3["ci95"], "steps_per_s": sb3["steps_per_s"], "command": command,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


REPO = BASELINE_DIR.parents[2]
"""Where a stored baseline's relative `config` path starts (the commands run from the repository root)."""


def repo_config(config: str | Path) -> str:
    """A config's path as a baseline stores it: from the repository root, where the regression tier and the
    recorded command start (`cd launch && robotrl compare cartpole_ppo.yaml` stored `cartpole_ppo.yaml`, a file
    the tier then could not find); absolute for a config outside the repository."""
    for path, repo in ((Path(os.path.abspath(config)), REPO), (Path(config).resolve(), REPO.resolve())):
        try:  # as written first (a link inside the repository stays itself), then with links followed
            return path.relative_to(repo).as_posix()
        except ValueError:
            pass
    return os.path.abspath(config)


def check_baseline_slot(env_id: str, algo: str, config: str, root: Path = BASELINE_DIR) -> None:
    """One baseline per env and algorithm: saving another config's (a swing-up PPO beside the balance PPO on
    CartPole) would replace the stored one that the regression tier holds its config to. Refused before
    anything trains; the same config's baseline is replaced, which is what regenerating means."""
    path = baseline_path(env_id, algo, root)
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text()).get("config")
    except (OSError, json.JSONDecodeError, AttributeError):
        return  # an unreadable file is replaced
    if stored and (REPO / stored).resolve() != Path(config).resolve():
        raise ValueError(f"--save-baseline: {path} holds the baseline of {stored} ({env_id}, {algo}); storing "
                         f"{config}'s would replace it (one baseline per env and algorithm)")


def write_baseline(report: dict[str, Any], config: str, command: str, root: Path = BASELINE_DIR) -> Path:
    check_baseline_slot(report["env"], report["algo"], config, root)
    path = baseline_path(report["env"], report["algo"], root)
    record = baseline_record(report, repo_config(config), command)
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode())
    return path


def check_baseline_seeds(seeds: int) -> None:
    """A baseline is SB3's 95% interval over its seeds: one seed has none (the regression tier would hold ours
    to a single run's return), so it is refused before anything trains."""
    if seeds < 2:
        raise ValueError(f"--seeds {seeds}: a stored baseline needs at least 2 seeds for its 95% interval")


def compare_command(config: str, seeds: int, steps: int | None) -> str:
    """The `robotrl compare ... --save-baseline` command a stored baseline records as its origin."""
    steps_flag = f" --steps {steps}" if steps is not None else ""
    return f"robotrl compare {repo_config(config)} --seeds {seeds}{steps_flag} --save-baseline"


def regenerate(configs: list[str], seeds: int, runs: Path = Path("runs") / "baselines",
               root: Path = BASELINE_DIR) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`robotrl baselines`: SB3 alone on each config at its own budget, each stored as it finishes
    (path, report). Every config is loaded and checked first, so the last one's mistake does not
    surface hours into the first one's training."""
    check_baseline_seeds(seeds)
    unique: dict[Path, str] = {}
    for config in configs:  # one file named twice (launch/a.yaml ./launch/a.yaml) trains once
        unique.setdefault(Path(config).resolve(), config)
    loaded = [(config, load_config(config)) for config in unique.values()]
    for _, cfg in loaded:
        check_comparable(cfg, seeds, sides=("sb3",))
    slots: dict[tuple[str, str], str] = {}
    for config, cfg in loaded:
        check_baseline_slot(cfg.env.id, cfg.algo, config, root)
        key = (cfg.env.id, cfg.algo)
        if key in slots:  # the second would replace the first's file, hours later
            raise ValueError(f"{slots[key]} and {config}: both are {cfg.env.id} with {cfg.algo}, and one baseline "
                             "is stored per env and algorithm; give one of them")
        slots[key] = config
    for config, cfg in loaded:
        report = compare(cfg, seeds, runs / cfg.name, sides=("sb3",))
        command = f"robotrl baselines {repo_config(config)} --seeds {seeds}"
        yield write_baseline(report, config, command, root), report
