"""MAPPO / IPPO on Ray: multi-robot workers fill the same MultiRollout as local envs, a run writes its
folder, and a killed worker is replaced as on the PPO path."""

import csv
import json

import pytest
import torch
import yaml

ray = pytest.importorskip("ray")

from ray_processes import actor_pids, perturb_weights, train_killing_a_worker  # noqa: E402

from robotrl.agents.mappo import Agent, MultiCollector  # noqa: E402
from robotrl.config import load_config  # noqa: E402
from robotrl.core.episodes import EpisodeStats  # noqa: E402
from robotrl.train.trainer import Trainer, load_policy, make_train_env  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def _mappo_ray_config(tmp_path, **sections):
    data = {"algo": "mappo", "seed": 1,
            "env": {"id": "robotrl/MultiPush-v0", "num_envs": 4, "kwargs": {"n_robots": 2}},
            "train": {"total_steps": 2000, "eval_every": 0, "eval_episodes": 2, "final_eval_episodes": 2,
                      "checkpoint_every": 1000},
            "mappo": {"n_steps": 50, "batch_size": 200, "n_epochs": 2},
            "scale": {"backend": "ray", "workers": 2, "timeout_s": 60}}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    path = tmp_path / "mappo_ray.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def _worker_pids() -> list[int]:
    return actor_pids("MultiRolloutWorker")


@pytest.mark.parametrize("critic", ["central", "local"])
def test_ray_workers_fill_the_same_multi_rollout_as_local_envs(local_ray, tmp_path, critic):
    """With near-zero action noise, 2 workers x 2 envs give the MultiRollout one local 4-env collector gives:
    same seeds per env, the learner's weights in the workers, the team reward with truncation bootstraps
    (episodes of 5 steps end twice in 12 steps), V(last state) for GAE, the same episode statistics."""
    from robotrl.scale.ray_rollouts import RayRollouts

    cfg = _mappo_ray_config(tmp_path, env={"kwargs": {"n_robots": 2, "max_episode_steps": 5}},
                            mappo={"n_steps": 12, "batch_size": 96, "critic": critic},
                            policy={"init_log_std": -20.0})
    with RayRollouts(cfg) as rollouts:
        agent = Agent(cfg, rollouts.spec_env(), torch.device("cpu"))
        perturb_weights(agent.policy)
        with torch.no_grad():
            agent.policy.critic_normalizer.update(torch.randn(64, agent.policy.critic_dim) * 2 + 1)
            agent.policy.value_norm.update(torch.tensor([0.0, 4.0]))  # so V is not ~0 and the bootstrap shows
        rollouts.attach(agent)
        remote, remote_eps = agent.storage, EpisodeStats(4)
        agent.collector.reset(seed=5)
        agent.collector.fill(remote, remote_eps)
        remote_last = agent.collector.last_value()

    local_env = make_train_env(cfg, 4)
    local = Agent(cfg, local_env, torch.device("cpu")).storage
    collector = MultiCollector(local_env, agent.policy, cfg.hyper, torch.device("cpu"))
    local_eps = EpisodeStats(4)
    collector.reset(seed=5)
    collector.fill(local, local_eps)
    assert remote.dones.sum() == local.dones.sum() == 2 * 4 * 2  # 2 ends x 4 envs x 2 robots
    # log_probs are left out: with std e^-20 they measure the noise draw itself, which each process
    # draws from its own generator; actions and values already show the workers ran the learner's net.
    for name in ("obs", "critic_in", "agent", "actions", "values", "rewards", "dones"):
        torch.testing.assert_close(getattr(remote, name), getattr(local, name), rtol=1e-5, atol=1e-5, msg=name)
    torch.testing.assert_close(remote_last, collector.last_value(), rtol=1e-5, atol=1e-5)
    assert remote_eps.summary() == pytest.approx(local_eps.summary())
    assert remote_eps.episodes == 8


def test_mappo_ray_run_writes_its_run_folder_and_a_loadable_checkpoint(local_ray, tmp_path):
    cfg = _mappo_ray_config(tmp_path)
    run = tmp_path / "run"
    result = Trainer(cfg, run, show_progress=False).run()
    assert result.steps == 2000
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [float(r["step"]) for r in rows] == [200.0 * i for i in range(1, 11)]
    assert float(rows[-1]["scale/worker_restarts"]) == 0 and float(rows[-1]["time/worker_env_s"]) > 0
    assert (run / "checkpoints" / "latest.pt").exists() and (run / "checkpoints" / "step_000001000.pt").exists()
    ev = json.loads((run / "eval.json").read_text())
    assert ev["episodes"] == 2 and ev["success_rate"] is not None
    policy, loaded, state = load_policy(run)
    assert loaded.scale.backend == "ray" and state["step"] == 2000
    assert policy.num_agents == 2


@pytest.mark.slow
def test_killed_mappo_worker_is_replaced_and_the_run_finishes(local_ray, tmp_path):
    cfg = _mappo_ray_config(tmp_path, train={"total_steps": 6000})
    run = tmp_path / "run"
    result, _, _ = train_killing_a_worker(cfg, run, _worker_pids)
    assert result.steps == 6000
