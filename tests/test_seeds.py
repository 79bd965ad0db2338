"""Targets as data (`target:` in a run config) and `robotrl seeds`, which checks one on several seeds."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from robotrl.cli import main
from robotrl.config import ConfigError, TargetConfig, from_dict, load_config
from robotrl.train.best_policy import BEST_FILE
from robotrl.train.seeds import SeedRow, cpu_model, parse_seeds, record, run_seeds
from robotrl.train.trainer import load_run

# The goals the issues set for the shipped configs (issue 2: PPO; 3: robot suite; 4: A2C; 5: value-based;
# 8: MAPPO; 20: the realistic robots). A target may only get stricter: loosening one here and in the
# config together is a visible change.
GOALS = {
    "reacher_ppo": ("success_rate", ">=", 0.9),
    "inverted_pendulum_ppo": ("return_mean", ">=", 1000),
    "cartpole_ppo": ("success_rate", ">=", 1.0),
    "diffdrive_ppo": ("success_rate", ">=", 0.9),
    "inverted_pendulum_a2c": ("return_mean", ">=", 1000),
    "reacher_a2c": ("success_rate", ">=", 0.9),
    "cartpole_qlearning": ("success_rate", ">=", 0.9),
    "cartpole_dqn": ("success_rate", ">=", 1.0),
    "cartpole_double_dqn": ("success_rate", ">=", 1.0),
    "reacher_dqn": ("success_rate", ">=", 0.8),
    "reacher_double_dqn": ("success_rate", ">=", 0.8),
    "cartpole_pixels_dqn": ("success_rate", ">=", 0.8),
    "multipush_mappo": ("success_rate", ">=", 0.8),
    "arm_reach_ppo": ("success_rate", ">=", 0.95),
    "legged_flat_ppo": ("info_means.velocity_error", "<=", 0.15),
    "legged_flat_dr_ppo": ("info_means.velocity_error", "<=", 0.15),
    # Set on December 1 from each task's own goal (no issue named one): the configs' comments say it.
    "cartpole_a2c": ("success_rate", ">=", 0.9),
    "cartpole_reinforce": ("success_rate", ">=", 0.9),
    "cartpole_swingup_ppo": ("success_rate", ">=", 0.9),
    "inverted_pendulum_reinforce": ("return_mean", ">=", 1000),
    "cartpole_a3c": ("success_rate", ">=", 0.9),
    "inverted_pendulum_a3c": ("return_mean", ">=", 1000),
    "multipush_ippo": ("success_rate", ">=", 0.8),
}


@pytest.mark.parametrize("name", sorted(GOALS))
def test_shipped_config_carries_its_task_goal_as_target(name):
    metric, op, value = GOALS[name]
    target = load_config(f"launch/{name}.yaml").target
    assert target is not None and target.metric == metric and target.op == op
    assert target.value >= value if op.startswith(">") else target.value <= value


def test_target_compares_its_metric_and_reports_none_without_a_measurement():
    target = TargetConfig("success_rate", ">=", 0.9)
    assert target.met({"success_rate": 0.9}) is True and target.met({"success_rate": 0.89}) is False
    assert target.met({"success_rate": None}) is None
    error = TargetConfig("info_means.velocity_error", "<", 0.15)
    assert error.met({"info_means": {"velocity_error": 0.1}}) is True
    assert error.met({"info_means": {"velocity_error": 0.15}}) is False
    assert str(error) == "info_means.velocity_error < 0.15"


@pytest.mark.parametrize(("target", "message"), [
    ({"metric": "succes_rate", "value": 0.9}, r"f\.yaml: target.*metric.*expected one of success_rate"),
    ({"metric": "success_rate", "op": "=>", "value": 0.9}, r"f\.yaml: target\.op: expected one of"),
    ({"metric": "success_rate", "value": "high"}, r"f\.yaml: target\.value: expected a number"),
    ({"metric": "success_rate", "value": 0.9, "episodes": 10}, r"target\.episodes: unknown key"),
])
def test_bad_target_names_the_key(target, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"algo": "ppo", "target": target}, "f.yaml")


def test_parse_seeds_takes_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,0-1,3") == [0, 1, 3]
    for bad in ("4-0", "a", "-1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def _config(tiny_config, target: dict) -> str:
    return tiny_config(train={"total_steps": 1024, "checkpoint_every": 512}, target=target)


def test_eval_reports_the_run_target_and_whether_it_is_met(tiny_config, tmp_path, capsys):
    config = _config(tiny_config, {"metric": "return_mean", "op": "<", "value": 0})
    assert main(["train", config, "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == {"metric": "return_mean", "op": "<", "value": 0.0}
    assert out["target_met"] is (out["return_mean"] < 0) is True  # Reacher's returns are negative distances
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2"]) == 0
    assert "target return_mean < 0: met" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["target_met"] is True


def test_seeds_trains_each_seed_as_its_own_run_and_merges_the_table_across_invocations(tiny_config, tmp_path):
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    entry = run_seeds(config, [0, 1], episodes=2, root=root, docs=docs, command="robotrl seeds tiny")
    assert (root / "tiny-0" / "eval.json").is_file() and (root / "tiny-1" / "eval.json").is_file()
    assert entry["met"] == 2 and entry["measured_seeds"] == 2
    first = entry["seeds"]["1"]
    assert first["steps"] == 1024 and first["episodes"] == 2 and first["train_wall_s"] > 0 and first["cpu"]

    # A killed seed resumes from its checkpoint; seed 0 stays in the table as it was.
    (root / "tiny-1" / "eval.json").unlink()
    entry = run_seeds(config, [1], episodes=2, root=root, docs=docs)
    assert entry["seeds"]["1"]["resumed"] is True and entry["seeds"]["1"]["steps"] == 1024
    assert entry["seeds"]["0"] == json.loads((docs / "seeds.json").read_text())["configs"][config]["seeds"]["0"]
    assert entry["measured_seeds"] == 2

    # A finished seed is evaluated again, not retrained: it keeps the wall time of the run that trained it.
    again = run_seeds(config, [1], episodes=2, root=root, docs=docs)
    assert again["seeds"]["1"]["train_wall_s"] == entry["seeds"]["1"]["train_wall_s"]
    table = (docs / "seeds.md").read_text()
    assert f"## {config}" in table and "met on **2 of 2** seeds" in table
    rows = [line for line in table.splitlines() if line.startswith(("| 0 |", "| 1 |"))]
    assert len(rows) == 2 and all("| pass |" in row for row in rows)


def test_a_seed_trained_with_another_config_is_set_aside_and_trained_again(tiny_config, tmp_path, capsys):
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    run_seeds(config, [0], episodes=2, root=root, docs=docs)
    old = (root / "tiny-0" / "eval.json").read_text()
    # The shipped file changed (here through --set): the finished run measures the old config, so its row
    # would describe a config nobody ships any more. A raised budget too: schedules run over the budget.
    entry = run_seeds(config, [0], episodes=2, root=root, docs=docs, overrides=["policy.hidden=[8]"])
    assert "trained with another config (policy.hidden)" in capsys.readouterr().out
    stale = [p for p in root.iterdir() if p.name.startswith("tiny-0.stale-")]
    assert len(stale) == 1 and (stale[0] / "eval.json").read_text() == old
    assert (root / "tiny-0" / "eval.json").read_text() != old and entry["seeds"]["0"]["train_wall_s"] > 0
    saved = (root / "tiny-0" / "config.yaml").read_text()
    assert "- 8" in saved or "[8]" in saved

    run_seeds(config, [0], episodes=2, root=root, docs=docs, overrides=["policy.hidden=[8]", "train.total_steps=2048"])
    assert "trained with another config (train.total_steps)" in capsys.readouterr().out
    assert json.loads((root / "tiny-0" / "eval.json").read_text())["steps"] == 2048


def _row(seed: int, budget: int, steps: int | None = None, trained: int | None = None) -> SeedRow:
    trained = budget if trained is None else trained
    return SeedRow(seed, f"runs/tiny-{seed}", trained if steps is None else steps, trained, budget, 1.0, False, 1.0,
                   2, 0.0, None, 0.0, True, "cpu", "today")


def test_rows_of_another_budget_stay_in_the_table_but_are_not_counted(tiny_config, tmp_path):
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    docs = tmp_path / "docs"
    cfg = load_config(config)
    budget = cfg.train.total_steps
    # The last iteration may pass the budget: a row of 1,024 + 64 steps trained still measures budget 1,024.
    assert record(docs, config, cfg, [_row(0, budget, trained=budget + 64)], "", [])["met"] == 1
    raised = load_config(config, [f"train.total_steps={2 * budget}"])
    entry = record(docs, config, raised, [_row(1, 2 * budget)], "", [])
    assert (entry["met"], entry["measured_seeds"]) == (1, 1)
    table = (docs / "seeds.md").read_text()
    assert "| 0 | 1,088 |" in table and "pass (budget 1,024, not counted)" in table and "| 1 | 2,048 |" in table
    # Lowered again (the file went back to 1,024): the larger budget's row is not counted either.
    entry = record(docs, config, cfg, [], "", [])
    assert (entry["met"], entry["measured_seeds"]) == (1, 1) and "pass (budget 2,048, not counted)" in (
        docs / "seeds.md").read_text()


def test_a_kept_best_policy_from_before_the_budget_counts_as_trained_to_it(tiny_config, tmp_path):
    """With train.keep_best the delivered policy can be an earlier step's: its row is of the full budget."""
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    docs = tmp_path / "docs"
    cfg = load_config(config)
    budget = cfg.train.total_steps
    best = _row(0, budget, steps=budget // 2)
    # A row of the record written before trained_steps and budget existed counts by its policy's step.
    old = {k: v for k, v in dataclasses.asdict(_row(1, budget, steps=budget // 2)).items()
           if k not in ("trained_steps", "budget")} | {"command": ""}
    entry = record(docs, config, cfg, [best], "", [])
    assert (entry["met"], entry["measured_seeds"]) == (1, 1)
    table = (docs / "seeds.md").read_text()
    assert "| 0 | 1,024 (policy of step 512) | 0.000 | pass |" in table and "not counted" not in table
    data = json.loads((docs / "seeds.json").read_text())
    data["configs"][config]["seeds"]["1"] = old
    (docs / "seeds.json").write_text(json.dumps(data))
    entry = record(docs, config, cfg, [], "", [])
    assert (entry["met"], entry["measured_seeds"]) == (1, 1)
    assert "older budget, not counted" in (docs / "seeds.md").read_text()


def test_seeds_records_the_trained_budget_and_the_kept_policy_step(tiny_config, tmp_path):
    config = tiny_config(train={"total_steps": 1024, "checkpoint_every": 512, "eval_every": 512, "keep_best": True},
                         target={"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    row = run_seeds(config, [0], episodes=2, root=root, docs=docs)["seeds"]["0"]
    _, kept, path = load_run(root / "tiny-0")
    assert path.name == BEST_FILE and row["trained_steps"] == row["budget"] == 1024
    assert row["steps"] == kept["step"] <= 1024


def test_seeds_refuses_a_config_without_target(tiny_config, tmp_path, capsys):
    assert main(["seeds", tiny_config(), "--root", str(tmp_path / "r"), "--docs", str(tmp_path / "d")]) == 1
    assert "no target: key" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("env", "target", "message"), [
    ({"id": "robotrl/Reacher-v0", "num_envs": 8}, {"metric": "info_means.distnace", "op": "<", "value": 0.02},
     "target info_means.distnace: robotrl/Reacher-v0 reports no 'distnace' (its measurements: "),
    ({"id": "InvertedPendulum-v5", "num_envs": 2}, {"metric": "success_rate", "op": ">=", "value": 0.9},
     "target success_rate: InvertedPendulum-v5 reports no is_success"),
])
def test_seeds_refuses_a_target_the_env_never_measures_before_training(tiny_config, tmp_path, capsys, env, target,
                                                                       message):
    config = tiny_config(env=env, target=target)
    assert main(["seeds", config, "--root", str(tmp_path / "r"), "--docs", str(tmp_path / "d")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()


def test_a_run_trained_by_robotrl_train_joins_the_table_with_its_recorded_training_time(tiny_config, tmp_path):
    """A seed trained earlier with `robotrl train` and the same config is evaluated, not trained again."""
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    assert main(["train", config, "--seed", "3", "--run-dir", str(root / "tiny-3"), "--no-progress"]) == 0
    trained = (root / "tiny-3" / "checkpoints" / "latest.pt").stat().st_mtime
    entry = run_seeds(config, [3], episodes=2, root=root, docs=docs)
    assert (root / "tiny-3" / "checkpoints" / "latest.pt").stat().st_mtime == trained  # not trained again
    row = entry["seeds"]["3"]
    assert row["steps"] == 1024 and row["resumed"] is False and 0 < row["train_wall_s"] < 120


def test_rows_of_seeds_trained_before_the_config_changed_are_not_counted(tiny_config, tmp_path):
    """Retraining some seeds after an edit must not count the others' rows, which measure the old config."""
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    run_seeds(config, [0, 1], episodes=2, root=root, docs=docs)
    entry = run_seeds(config, [0], episodes=2, root=root, docs=docs, overrides=["policy.hidden=[8]"])
    assert entry["seeds"]["1"]["not_counted"] == "trained with other policy.hidden"
    assert entry["seeds"]["0"]["not_counted"] is None and (entry["met"], entry["measured_seeds"]) == (1, 1)
    assert "| 1 |" in (docs / "seeds.md").read_text() and "(trained with other policy.hidden, not counted)" in (
        docs / "seeds.md").read_text()


def test_a_changed_threshold_rejudges_the_rows_and_another_metric_does_not_count_them(tiny_config, tmp_path):
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    docs = tmp_path / "docs"
    cfg = load_config(config)
    row = dataclasses.replace(_row(0, cfg.train.total_steps), measured=-5.0, target_metric="return_mean")
    assert record(docs, config, cfg, [row], "", [])["met"] == 1
    stricter = load_config(config, ["target.value=0"])
    entry = record(docs, config, stricter, [], "", [])
    assert entry["seeds"]["0"]["target_met"] is False and (entry["met"], entry["measured_seeds"]) == (0, 1)
    other = load_config(config, ["target.metric=length_mean"])
    entry = record(docs, config, other, [], "", [])
    assert entry["seeds"]["0"]["not_counted"] == "target metric return_mean" and entry["measured_seeds"] == 0


def test_a_seed_resumed_to_a_raised_budget_is_set_aside_and_trained_from_scratch(tiny_config, tmp_path, capsys):
    """config.yaml holds a resumed run's latest budget: only the budgets it trained under show that its
    schedules were stretched, so such a run cannot pass for the config trained at that budget."""
    from robotrl.train.trainer import Trainer

    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    run_seeds(config, [0], episodes=2, root=root, docs=docs)
    Trainer(load_config(config, ["seed=0", "train.total_steps=2048"]), root / "tiny-0", resume=True,
            show_progress=False).run()
    assert json.loads((root / "tiny-0" / "eval.json").read_text())["budgets"] == [1024, 2048]
    entry = run_seeds(config, [0], episodes=2, root=root, docs=docs, overrides=["train.total_steps=2048"])
    assert "train.total_steps (stretched from 1,024)" in capsys.readouterr().out
    assert json.loads((root / "tiny-0" / "eval.json").read_text())["budgets"] == [2048]
    assert entry["seeds"]["0"]["budget"] == 2048 and entry["seeds"]["0"]["resumed"] is False

    # Killed while stretched (no eval.json of the raised budget yet): the checkpoint's budgets say it.
    Trainer(load_config(config, ["seed=1"]), root / "tiny-1", show_progress=False).run()
    Trainer(load_config(config, ["seed=1", "train.total_steps=2048"]), root / "tiny-1", resume=True,
            show_progress=False).run()
    (root / "tiny-1" / "eval.json").unlink()
    entry = run_seeds(config, [1], episodes=2, root=root, docs=docs, overrides=["train.total_steps=2048"])
    assert "resumed from a budget of 1,024 (its schedules stretched)" in capsys.readouterr().out
    assert json.loads((root / "tiny-1" / "eval.json").read_text())["budgets"] == [2048]
    assert entry["seeds"]["1"]["resumed"] is False


def test_one_config_written_two_ways_fills_one_table(tiny_config, tmp_path, monkeypatch):
    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    monkeypatch.chdir(tmp_path)
    root, docs = tmp_path / "runs", tmp_path / "docs"
    run_seeds(config, [0], episodes=2, root=root, docs=docs)  # absolute
    run_seeds("./tiny.yaml", [0], episodes=2, root=root, docs=docs)
    assert list(json.loads((docs / "seeds.json").read_text())["configs"]) == ["tiny.yaml"]


def test_a_seed_trained_by_a_version_whose_config_no_longer_reads_is_set_aside(tiny_config, tmp_path, capsys):
    import yaml

    config = _config(tiny_config, {"metric": "return_mean", "op": ">", "value": -1e9})
    root, docs = tmp_path / "runs", tmp_path / "docs"
    run_seeds(config, [0], episodes=2, root=root, docs=docs)
    saved = yaml.safe_load((root / "tiny-0" / "config.yaml").read_text())
    saved["ppo"]["a_key_since_renamed"] = 1
    (root / "tiny-0" / "config.yaml").write_text(yaml.safe_dump(saved))
    run_seeds(config, [0], episodes=2, root=root, docs=docs)
    out = capsys.readouterr().out
    assert "trained with another config (a config this version no longer reads (ppo.a_key_since_renamed: unknown" in out
    assert any(p.name.startswith("tiny-0.stale-") for p in root.iterdir())


def test_each_row_names_the_cpu_generation_and_torch_kernels_that_trained_it():
    # A virtual machine names several EPYC generations "AMD EPYC"; their runs of one seed differ, so the row
    # keeps the family and model and the instruction set of torch's kernels.
    cpu = cpu_model()
    assert cpu.endswith(f"torch {torch.backends.cpu.get_cpu_capability()})")
    info = Path("/proc/cpuinfo")
    if info.is_file() and "cpu family" in info.read_text():
        assert re.search(r"\(family \d+ model \d+, torch ", cpu), cpu
