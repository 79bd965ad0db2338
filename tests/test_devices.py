"""Device placement without a GPU: PyTorch's `meta` device stands in for a second device.

State DQN crashed on cuda because one tensor (the observations handed to the normalizer's warm-up
statistics) was made on the CPU while the network lived on the GPU. A meta tensor mixed with a CPU tensor
raises the same "not on the expected device" error, so these tests catch that kind of slip on a CPU-only
machine. Meta tensors hold no data, so only what needs no values (construction, collection up to the
greedy argmax, statistics) runs there; the learning step is checked on the CPU for placement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import yaml

from policies.normalizer import RunningNormalizer
from robotrl.agents import dqn
from robotrl.config import load_config
from robotrl.core.episodes import EpisodeStats
from robotrl.train.trainer import make_train_env

META = torch.device("meta")


def tensors(state: Any, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a (nested) state dict, with its key path."""
    if isinstance(state, torch.Tensor):
        return [(path, state)]
    if isinstance(state, dict):
        return [t for k, v in state.items() for t in tensors(v, f"{path}.{k}")]
    if isinstance(state, list | tuple):
        return [t for i, v in enumerate(state) for t in tensors(v, f"{path}[{i}]")]
    return []


def dqn_agent(tmp_path, device: torch.device, **hyper) -> dqn.Agent:
    data = {"algo": "dqn", "seed": 0,
            "env": {"id": "robotrl/Reacher-v0", "num_envs": 4, "kwargs": {"discretize_actions": 3}},
            "policy": {"hidden": [16], "activation": "relu", "normalize_obs": True},
            "train": {"total_steps": 400, "eval_every": 0, "final_eval_episodes": 1, "checkpoint_every": 400},
            "dqn": {"buffer_size": 256, "learning_starts": 40, "batch_size": 8, "n_step": 3,
                    "steps_per_iteration": 40, **hyper}}
    (tmp_path / "dqn.yaml").write_text(yaml.safe_dump(data))
    cfg = load_config(tmp_path / "dqn.yaml")
    return dqn.Agent(cfg, make_train_env(cfg, cfg.env.num_envs), device)


def test_normalizer_statistics_stay_on_the_module_device_whatever_the_batch_device():
    norm = RunningNormalizer(3).to(META)
    norm.update(torch.randn(5, 3))  # a CPU batch, as a collector reading numpy observations makes
    assert {b.device for b in norm.buffers()} == {META}


@pytest.mark.parametrize("double", [False, True])
def test_dqn_builds_every_tensor_of_its_state_on_the_run_device(tmp_path, double):
    agent = dqn_agent(tmp_path, META, double=double)
    state = tensors(agent.state_dict())
    # The replay is host memory by design (its sampled batches move to the device in Agent._tensors).
    placed = [(k, t.device) for k, t in state if not k.startswith(".replay.")]
    assert len(placed) > 10
    assert [(k, d) for k, d in placed if d != META] == []


def test_dqn_collector_keeps_observation_statistics_on_the_run_device(tmp_path, monkeypatch):
    """Collection on a device other than the CPU, up to the greedy action (which needs values: a fixed one
    stands in for it)."""
    agent = dqn_agent(tmp_path, META)
    monkeypatch.setattr(agent.online, "deterministic", lambda obs: torch.zeros(len(obs), dtype=torch.long))
    agent.collector.reset(seed=0)
    for _ in range(3):
        agent.collector.step(1.0, EpisodeStats(agent.num_envs), update_normalizer=True)
    assert agent.online.normalizer.count.device == META
    assert agent.replay.size > 0


def test_dqn_training_keeps_networks_optimizer_and_average_on_the_agent_device(tmp_path):
    agent = dqn_agent(tmp_path, torch.device("cpu"), average_from=0.5)
    agent.collector.reset(seed=0)
    episodes = EpisodeStats(agent.num_envs)
    while agent.env_steps < 400:
        agent.collect(episodes)
    assert agent.gradient_updates > 0 and agent.average.network is not None
    state = tensors(agent.state_dict())
    assert any(k.startswith(".optimizer.state") for k, _ in state)
    assert {t.device for k, t in state if not k.startswith(".replay.")} == {agent.device}
    assert isinstance(agent.replay.obs, np.ndarray)  # the replay stays in host memory; batches move
    batch = agent._tensors(agent.replay.sample(4, agent.rng))
    assert {t.device for t in vars(batch).values()} == {agent.device}
