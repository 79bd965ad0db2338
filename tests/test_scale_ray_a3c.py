"""A3C on Ray: gradient-worker actors and a parameter holder that applies gradients as they come."""

import csv

import pytest
import torch

ray = pytest.importorskip("ray")
pytest.importorskip("robotrl.agents.a3c")

from ray_processes import actor_pids, signal_actor_when  # noqa: E402

from robotrl.config import load_config  # noqa: E402
from robotrl.train.trainer import Trainer, load_run  # noqa: E402

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _a3c_config(tmp_path, total: int):
    import yaml

    data = {"algo": "a3c", "seed": 1, "env": {"id": "robotrl/Reacher-v0", "num_envs": 8},
            "train": {"total_steps": total, "eval_every": 0, "final_eval_episodes": 4, "checkpoint_every": 1024},
            "a3c": {"workers": 2, "n_steps": 8, "steps_per_collect": 1024},
            "scale": {"backend": "ray", "timeout_s": 60}}
    path = tmp_path / "a3c.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def _gradient_actor_pids() -> list[int]:
    return actor_pids("GradientActor")


def test_every_gradient_is_applied_once_and_the_agent_holds_the_result(local_ray, tmp_path):
    """4096 steps of 64-step rollouts (8 steps x 8 envs) are 64 gradients, each applied by the holder;
    the checkpoint's Adam step count says so, and it differs from the initial weights."""
    cfg = _a3c_config(tmp_path, 4096)
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.steps == 4096
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert sum(float(r["charts/worker_updates"]) for r in rows) == 64
    _, state, _ = load_run(tmp_path / "run")
    adam_steps = {float(s["step"]) for s in state["agent"]["optimizer"]["state"].values()}
    assert adam_steps == {64.0}
    assert sum(state["agent"]["worker_steps"]) == 4096
    assert state["agent"]["policy"]["normalizer.count"] > 4096


def test_killed_a3c_worker_is_replaced(local_ray, tmp_path):
    cfg = _a3c_config(tmp_path, 8192)
    run = tmp_path / "run"
    _, killed = signal_actor_when((run / "metrics.csv").exists, _gradient_actor_pids, timeout_s=200)
    result = Trainer(cfg, run, show_progress=False).run()
    assert killed and result.steps == 8192
    _, state, _ = load_run(run)
    assert sum(state["agent"]["worker_steps"]) == 8192
    assert torch.isfinite(state["agent"]["policy"]["log_std"]).all()
