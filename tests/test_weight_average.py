"""Stochastic weight averaging: the mean is exact, and a DQN run delivers it, saves it and resumes it."""

import torch
import yaml

from policies.checkpoint import load_checkpoint
from robotrl.config import load_config
from robotrl.core.weight_average import WeightAverage
from robotrl.train.trainer import Trainer, load_policy


def test_weight_average_is_the_uniform_mean_and_buffers_follow_the_latest():
    net = torch.nn.BatchNorm1d(3)  # weights and buffers (running_mean)
    avg, snapshots = WeightAverage(), []
    for k in range(5):
        with torch.no_grad():
            net.weight.copy_(torch.randn(3))
            net.running_mean.fill_(k)
        snapshots.append(net.weight.detach().clone())
        avg.update(net)
    assert avg.count == 5
    assert torch.allclose(avg.network.weight, torch.stack(snapshots).mean(0), atol=1e-6)
    assert torch.all(avg.network.running_mean == 4)
    assert not avg.network.weight.requires_grad
    restored = WeightAverage()
    restored.restore(avg.count, avg.network.state_dict(), like=net)
    assert restored.count == 5 and torch.equal(restored.network.weight, avg.network.weight)


RUN = {
    "algo": "dqn", "seed": 1,
    "env": {"id": "robotrl/CartPole-v0", "num_envs": 2, "kwargs": {"discretize_actions": 2}},
    "policy": {"hidden": [16], "activation": "relu"},
    "train": {"total_steps": 1200, "eval_every": 0, "final_eval_episodes": 1, "checkpoint_every": 600},
    "dqn": {"buffer_size": 2000, "learning_starts": 200, "batch_size": 16, "train_freq": 2,
            "target_update_interval": 100, "steps_per_iteration": 200, "average_from": 0.5},
}


def test_dqn_delivers_the_weight_average_and_resume_continues_it(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    Trainer(load_config(tmp_path / "run.yaml"), tmp_path / "run", show_progress=False).run()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]
    # Gradient steps at env steps 600, 604, ..., 1200 (one per train_freq 2 x 2 envs).
    assert state["average_count"] == 600 // 4 + 1
    assert not torch.equal(state["policy"]["head.weight"], state["online"]["head.weight"])
    policy, _, _ = load_policy(tmp_path / "run")
    assert torch.equal(policy.state_dict()["head.weight"], state["policy"]["head.weight"])

    longer = {**RUN, "train": {**RUN["train"], "total_steps": 1600}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(longer))
    Trainer(load_config(tmp_path / "run.yaml"), tmp_path / "run", resume=True, show_progress=False).run()
    resumed = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]
    # The resumed run keeps averaging from where it stopped: 1204, ..., 1600 (all past the new start, 800).
    assert resumed["average_count"] == 600 // 4 + 1 + 400 // 4
