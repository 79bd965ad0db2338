"""The regression tier: ours, trained on a shipped config, must not fall below SB3's stored 95% interval.

`pytest -m regression` runs every stored baseline (hours on 2 cores); `pytest -m regression_ci` runs the
short subset that CI runs (CI_SUBSET, a few minutes). Baselines: tests/baselines/sb3/, made by the command
stored in each file.
"""

import dataclasses
from pathlib import Path

import pytest

from robotrl.config import load_config
from robotrl.core.stats import mean_ci95
from robotrl.sb3.compare import as_compared
from robotrl.sb3.stored import list_baselines, load_baseline
from robotrl.train.multiseed import run_ours

ROOT = Path(__file__).resolve().parents[1]
CI_SUBSET = {"InvertedPendulum-v5__ppo", "robotrl_CartPole-v0__dqn"}


def _cases() -> list:
    cases = []
    for path in list_baselines():
        marks = [pytest.mark.regression]
        if path.stem in CI_SUBSET:
            marks.append(pytest.mark.regression_ci)
        cases.append(pytest.param(path, marks=marks, id=path.stem))
    return cases


def test_stored_baselines_describe_a_shipped_config():
    """Each baseline names a config that exists, with the same env, algorithm and a recorded command."""
    paths = list_baselines()
    assert {p.stem for p in paths} >= CI_SUBSET
    for path in paths:
        base = load_baseline(path)
        cfg = load_config(ROOT / base["config"])
        assert (cfg.env.id, cfg.algo) == (base["env"], base["algo"]), path
        assert len(base["returns"]) == len(base["seeds"]) >= 2, path
        mean, ci = mean_ci95(base["returns"])
        assert mean == pytest.approx(base["mean"]) and list(ci) == pytest.approx(base["ci95"]), path
        assert base["command"].startswith("robotrl "), path


@pytest.mark.parametrize("path", _cases())
def test_ours_is_not_below_sb3_interval(path, tmp_path):
    base = load_baseline(path)
    # Our side trains as `robotrl compare` trains it (train.keep_best off: SB3's baseline is of its last policy).
    cfg = as_compared(load_config(ROOT / base["config"], [f"train.total_steps={base['steps']}"]))
    returns = [run_ours(dataclasses.replace(cfg, seed=seed), tmp_path / f"seed{seed}").final_return
               for seed in base["seeds"]]
    mean, (lo, hi) = mean_ci95(returns)
    assert mean >= base["ci95"][0], (
        f"{path.name}: ours {mean:.2f} [{lo:.2f}, {hi:.2f}] (seeds {base['seeds']}: {returns}) is below SB3's "
        f"95% interval {base['ci95']} (SB3 {base['sb3_version']}, {base['steps']} steps)")
