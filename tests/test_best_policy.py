"""train.keep_best: the run delivers its best-evaluated policy and measures it on other episodes."""

import pytest
import torch
import yaml

from policies.checkpoint import load_checkpoint
from robotrl.config import ConfigError, load_config
from robotrl.train.best_policy import BestPolicy
from robotrl.train.logger import read_metrics
from robotrl.train.trainer import Trainer, evaluate_policy, load_policy

RUN = {
    "algo": "dqn", "seed": 5,
    "env": {"id": "robotrl/CartPole-v0", "num_envs": 2, "kwargs": {"discretize_actions": 2}},
    "policy": {"hidden": [32], "activation": "relu"},
    "train": {"total_steps": 1600, "eval_every": 400, "eval_episodes": 2, "final_eval_episodes": 3,
              "checkpoint_every": 800, "keep_best": True},
    "dqn": {"buffer_size": 5000, "learning_starts": 200, "batch_size": 32, "train_freq": 2,
            "target_update_interval": 100, "learning_rate": 0.003, "steps_per_iteration": 200},
}


def _config(tmp_path, data):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_keep_best_delivers_the_best_evaluated_policy_measured_on_held_out_episodes(tmp_path):
    cfg = _config(tmp_path, RUN)
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    evals = [(int(r["step"]), r["eval/return_mean"]) for r in read_metrics(tmp_path / "run" / "metrics.csv")
             if "eval/best_return_mean" in r]
    assert [s for s, _ in evals] == [400, 800, 1200, 1600]
    top = max(r for _, r in evals)
    best_step = max(s for s, r in evals if r == top)  # the later of equal scores
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert saved["step"] == best_step and saved["best"]["return_mean"] == top
    assert set(saved["agent"]) == {"policy"}  # weights only: no replay in best.pt
    assert result.eval["best"]["step"] == best_step and result.eval["best"]["selection_return_mean"] == top

    # eval, export and view load the delivered policy from the run folder.
    policy, _, state = load_policy(tmp_path / "run")
    assert state["step"] == best_step
    for name, value in policy.state_dict().items():
        assert torch.equal(value, saved["agent"]["policy"][name]), name
    # eval.json measures it on episodes other than the ones it was chosen on.
    held_out = evaluate_policy(policy, cfg, 3, cfg.seed + 20_000, torch.device("cpu"))
    assert result.eval["return_mean"] == pytest.approx(held_out["return_mean"])
    assert result.eval["best"]["evaluation_seed"] == cfg.seed + 20_000 != result.eval["best"]["selection_seed"]


def test_bench_deploy_exports_the_runs_delivered_policy_not_its_last_checkpoint(tmp_path):
    """`robotrl bench deploy` exports the newest run into its policy.onnx, the file `robotrl export RUN`
    writes and a user deploys: with keep_best that must stay the best policy, not latest.pt."""
    import json

    import onnx

    from robotrl.tools.bench_deploy import find_policy

    data = {**RUN, "train": {**RUN["train"], "total_steps": 800, "eval_every": 200}}
    cfg = _config(tmp_path, data)
    Trainer(cfg, tmp_path / "runs" / "run", show_progress=False).run()
    # Mark the kept policy with a step no checkpoint has, whichever evaluation it came from.
    best_file = tmp_path / "runs" / "run" / "checkpoints" / "best.pt"
    best = load_checkpoint(best_file)
    torch.save({**best, "step": 123}, best_file)
    onnx_file = find_policy("robotrl/CartPole-v0", tmp_path / "runs")
    meta = json.loads({p.key: p.value for p in onnx.load(onnx_file).metadata_props}["robotrl.policy"])
    assert meta["train_steps"] == 123


def test_best_policy_keeps_the_later_of_equal_scores_and_keeps_its_best_across_a_resume(tmp_path):
    path, net = tmp_path / "best.pt", torch.nn.Linear(2, 1)
    best = BestPolicy(path, {"format": 1})
    for step, score in [(100, 50.0), (200, 80.0), (300, 20.0), (400, 80.0)]:
        with torch.no_grad():
            net.weight.fill_(step)
        best.consider(step, step // 100, {"return_mean": score}, net)
    assert (best.step, best.score) == (400, 80.0)
    assert torch.all(best.policy_like(net).weight == 400)
    assert load_checkpoint(path)["step"] == 400

    resumed = BestPolicy(path, {"format": 1}, resume_step=400)
    assert (resumed.step, resumed.score) == (400, 80.0)
    # Killed after best.pt was written at 400 but before latest.pt: the resumed run starts from 300. The best
    # of step 400 replaced the one of step 200 in best.pt, so dropping it would lose both: it is kept.
    orphan = BestPolicy(path, {"format": 1}, resume_step=300)
    assert (orphan.step, orphan.score) == (400, 80.0) and torch.all(orphan.policy_like(net).weight == 400)
    assert not orphan.consider(400, 4, {"return_mean": 70.0}, net)  # the resumed path's worse score


def test_keep_best_without_periodic_evaluations_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"train.*keep_best.*eval_every must be positive, got 0"):
        _config(tmp_path, {**RUN, "train": {**RUN["train"], "eval_every": 0}})
