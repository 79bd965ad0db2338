"""Every registered algorithm keeps the written Agent contract (robotrl/agents/protocol.py): built through
its registry entry on a tiny env, it starts, collects and updates twice, its state restores a fresh
agent to the same policy, the policy it delivers evaluates, and it closes. About 2 s per algorithm (A3C
starts one real worker process)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from robotrl.agents import ALGORITHMS, algorithm
from robotrl.agents.protocol import Agent
from robotrl.config import RunConfig, from_dict
from robotrl.core.episodes import EpisodeStats
from robotrl.hyper import HYPER
from robotrl.train.trainer import evaluate_policy, make_train_env, resolve_device

CARTPOLE = {"id": "robotrl/CartPole-v0", "num_envs": 2}
GRID = {"bins": [1, 1, 4, 1, 4], "low": [-2.4, 0.9, -0.2, -2, -2], "high": [2.4, 1, 0.2, 2, 2]}
REACHER = {"id": "robotrl/Reacher-v0", "num_envs": 2}

# Per algorithm: the env and the hyperparameters that make one collect + update take milliseconds.
TINY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ppo": (REACHER, {"n_steps": 16, "batch_size": 16, "n_epochs": 1}),
    "a2c": (REACHER, {"n_steps": 5}),
    "a3c": (REACHER, {"workers": 1, "n_steps": 8, "steps_per_collect": 32}),
    "reinforce": (CARTPOLE, {"batch_steps": 16}),
    "dqn": ({**CARTPOLE, "kwargs": {"discretize_actions": 2}},
            {"buffer_size": 500, "learning_starts": 8, "batch_size": 8, "train_freq": 1,
             "target_update_interval": 16, "steps_per_iteration": 32}),
    "qlearning": ({**CARTPOLE, "kwargs": {"discretize_actions": 2, "discretize_obs": GRID}},
                  {"steps_per_collect": 16}),
    "mappo": ({"id": "robotrl/MultiPush-v0", "num_envs": 2, "kwargs": {"n_robots": 2}},
              {"n_steps": 8, "batch_size": 16, "n_epochs": 1}),
    "sac": (REACHER, {"buffer_size": 500, "learning_starts": 8, "batch_size": 8, "steps_per_iteration": 32}),
}


def tiny_config(algo: str) -> RunConfig:
    env, hyper = TINY[algo]
    data = {"algo": algo, "seed": 4, "env": env, algo: hyper,
            "train": {"total_steps": 1000, "eval_every": 0, "checkpoint_every": 1000}}
    return from_dict(data, f"test_agent_protocol[{algo}]")


def test_the_registry_is_the_hyperparameter_registry_and_names_unknown_algorithms():
    assert list(ALGORITHMS) == list(HYPER) == list(TINY)
    assert all(entry.name == name for name, entry in ALGORITHMS.items())
    with pytest.raises(ValueError, match=r"^unknown algorithm 'ddpg' \(expected one of: ppo, a2c, .*mappo, sac\)$"):
        algorithm("ddpg")


def test_algorithms_that_run_on_the_cpu_only_refuse_cuda_in_one_line():
    assert algorithm("a3c").devices == ("cpu",) and algorithm("qlearning").devices == ("cpu",)
    assert algorithm("ppo").devices == ("cpu", "cuda")
    with pytest.raises(ValueError, match=r"^train.device cuda: a3c runs on cpu only$"):
        resolve_device("cuda", "a3c")
    assert resolve_device("auto", "qlearning") == torch.device("cpu")


@pytest.mark.parametrize("algo", list(TINY))
def test_agent_keeps_the_contract(algo):
    cfg = tiny_config(algo)
    entry = algorithm(algo)
    device = torch.device("cpu")
    env = make_train_env(cfg, cfg.env.num_envs)
    other_env = make_train_env(cfg, cfg.env.num_envs)
    agent = entry.agent(cfg, env, device)
    fresh = entry.agent(cfg, other_env, device)
    try:
        assert isinstance(agent, Agent)
        initial = {k: v.clone() for k, v in agent.policy.state_dict().items()}
        agent.start(cfg.seed)
        episodes = EpisodeStats(env.num_envs)
        for iteration in range(2):
            steps = agent.collect(episodes)
            assert steps >= env.num_envs, (iteration, steps)
            metrics = agent.update(0.5 * (iteration + 1))
            assert metrics and all(isinstance(k, str) and isinstance(v, float | int) for k, v in metrics.items())
            assert any(math.isfinite(v) for v in metrics.values())
        state = agent.state_dict()
        learned = agent.policy.state_dict()
        assert any(not torch.equal(initial[k], v) for k, v in learned.items()), "two updates changed nothing"

        fresh.load_state_dict(state)
        restored = fresh.policy.state_dict()
        assert restored.keys() == learned.keys()
        assert all(torch.equal(restored[k], v) for k, v in learned.items())
        # What eval and export load: the policy alone, from state["policy"].
        alone = entry.make_policy(cfg, env)
        alone.load_state_dict(state["policy"])
        assert all(torch.equal(alone.state_dict()[k], v) for k, v in learned.items())

        result = evaluate_policy(alone.eval(), cfg, 1, seed=7, device=device)
        assert result["episodes"] == 1 and math.isfinite(result["return_mean"])
    finally:
        agent.close()
        fresh.close()
        env.close()
        other_env.close()
