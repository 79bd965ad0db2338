"""Ray scale-out: the workers fill the same storage as local envs, and a dead worker neither hangs nor
loses the run. One local Ray for the whole module (the local_ray fixture in conftest)."""

import csv
import os
import signal
import time

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray")

from ray_processes import actor_pids, perturb_weights, signal_actor_when, train_killing_a_worker  # noqa: E402

from robotrl.agents.common import OnPolicyCollector  # noqa: E402
from robotrl.agents.ppo import Agent  # noqa: E402
from robotrl.config import load_config  # noqa: E402
from robotrl.core.episodes import EpisodeStats  # noqa: E402
from robotrl.train.trainer import Trainer, load_run  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def _ray_config(tiny_config, **sections):
    sections.setdefault("scale", {"backend": "ray", "workers": 2, "timeout_s": 60})
    return load_config(tiny_config(**sections))


def _worker_pids() -> list[int]:
    return actor_pids("RolloutWorker")


def _gone_within(seconds: float) -> bool:
    """ray.kill is asynchronous: the actor processes exit a moment later."""
    deadline = time.time() + seconds
    while _worker_pids() and time.time() < deadline:
        time.sleep(0.1)
    return not _worker_pids()


def test_ray_workers_fill_the_same_storage_as_local_envs(local_ray, tiny_config):
    """With near-zero action noise, 2 workers x 4 envs give the rollout one local 8-env collector gives:
    same seeds per env, the learner's weights in the workers, the same reward scaling and truncation
    bootstraps (episodes of 5 steps end three times in 16 steps), the same episode statistics."""
    from robotrl.scale.ray_rollouts import RayRollouts

    cfg = _ray_config(tiny_config, env={"num_envs": 8, "kwargs": {"max_episode_steps": 5}},
                      ppo={"n_steps": 16, "batch_size": 128}, policy={"init_log_std": -20.0})
    with RayRollouts(cfg) as rollouts:
        agent = Agent(cfg, rollouts.spec_env(), torch.device("cpu"))
        perturb_weights(agent.policy)
        rollouts.attach(agent)
        remote = agent.storage
        remote_eps = EpisodeStats(8)
        agent.collector.reset(seed=5)
        agent.collector.fill(remote, remote_eps)
        remote_last = agent.collector.last_value()

    import envs

    local_env = envs.make_vec(cfg.env.id, 8, **cfg.env.kwargs)
    local = Agent(cfg, local_env, torch.device("cpu")).storage
    collector = OnPolicyCollector(local_env, agent.policy, cfg.hyper.gamma, True, torch.device("cpu"))
    local_eps = EpisodeStats(8)
    collector.reset(seed=5)
    collector.fill(local, local_eps)
    assert remote.full and local.full
    assert remote.dones.sum() == local.dones.sum() == 3 * 8
    # log_probs are left out: with std e^-20 they measure the noise draw itself, which each process
    # draws from its own generator; actions and values already show the workers ran the learner's net.
    for name in ("obs", "actions", "values", "rewards", "dones"):
        torch.testing.assert_close(getattr(remote, name), getattr(local, name), rtol=1e-5, atol=1e-5, msg=name)
    torch.testing.assert_close(remote_last, collector.last_value(), rtol=1e-5, atol=1e-5)
    assert remote_eps.summary() == pytest.approx(local_eps.summary())
    assert remote_eps.episodes == 24


@pytest.mark.slow
def test_killed_worker_is_replaced_and_the_run_finishes(local_ray, tiny_config, tmp_path):
    cfg = _ray_config(tiny_config, train={"total_steps": 16_384, "checkpoint_every": 2048})
    run = tmp_path / "run"
    result, rows, killed = train_killing_a_worker(cfg, run, _worker_pids)
    assert result.steps == 16_384
    assert [float(r["step"]) for r in rows] == [512.0 * i for i in range(1, 33)]
    assert not (set(killed) & set(_worker_pids())), "the killed worker is still listed"


@pytest.mark.slow
def test_worker_loss_beyond_restarts_stops_cleanly_and_resume_continues(local_ray, tiny_config, tmp_path):
    """With no restarts allowed, a killed worker stops the run with a one-line error naming the setting;
    latest.pt holds the last checkpoint before the loss, and --resume finishes the run."""
    from robotrl.scale.worker_pool import WorkerLostError

    cfg = _ray_config(tiny_config, train={"total_steps": 40_960, "checkpoint_every": 1024,
                                          "keep_checkpoints": False},
                      scale={"backend": "ray", "workers": 2, "max_worker_restarts": 0, "timeout_s": 60})
    run = tmp_path / "run"
    latest = run / "checkpoints" / "latest.pt"

    killer, _ = signal_actor_when(latest.exists, _worker_pids, pick=-1, delay_s=0.3)
    start = time.monotonic()
    with pytest.raises(WorkerLostError, match=r"rollout worker \d lost .*max_worker_restarts=0.*--resume"):
        Trainer(cfg, run, show_progress=False).run()
    assert time.monotonic() - start < 120
    killer.join(timeout=5)
    state = torch.load(latest, weights_only=False)
    stopped_at = state["step"]
    assert 1024 <= stopped_at < 40_960 and stopped_at % 1024 == 0
    assert _gone_within(10), "workers of the stopped run are still alive"
    # As a user would: a longer timeout and restarts allowed this time.
    more = ["train.total_steps=" + str(stopped_at + 2048), "scale.timeout_s=120", "scale.max_worker_restarts=3"]
    resumed = Trainer(load_config(run / "config.yaml", more), run, resume=True, show_progress=False).run()
    assert resumed.steps == stopped_at + 2048


@pytest.mark.slow
def test_hung_worker_times_out_and_is_replaced(local_ray, tiny_config, tmp_path):
    """A worker that stops answering (SIGSTOP) counts as lost after scale.timeout_s: no hang."""
    cfg = _ray_config(tiny_config, train={"total_steps": 6144, "checkpoint_every": 10**9},
                      scale={"backend": "ray", "workers": 2, "timeout_s": 4})
    run = tmp_path / "run"
    _, stopped = signal_actor_when((run / "metrics.csv").exists, _worker_pids, sig=signal.SIGSTOP)
    try:
        result = Trainer(cfg, run, show_progress=False).run()
    finally:
        for pid in stopped:
            with _ignore_missing():
                os.kill(pid, signal.SIGKILL)
    assert stopped
    assert result.steps == 6144
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["scale/worker_restarts"]) == 1
    assert max(float(r["time/rollout_wait_s"]) for r in rows) >= 4


class _ignore_missing:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is ProcessLookupError


def test_env_count_must_split_evenly_over_workers(local_ray, tiny_config):
    from robotrl.scale.ray_rollouts import RayRollouts

    cfg = _ray_config(tiny_config, scale={"backend": "ray", "workers": 3})
    with RayRollouts(cfg) as rollouts, pytest.raises(ValueError, match=r"env.num_envs 8 .* scale.workers 3"):
        rollouts.attach(Agent(cfg, rollouts.spec_env(), torch.device("cpu")))


@pytest.mark.slow
def test_seeded_ray_runs_repeat(local_ray, tiny_config, tmp_path):
    cfg = _ray_config(tiny_config, train={"total_steps": 2048})
    a = Trainer(cfg, tmp_path / "a", show_progress=False).run()
    b = Trainer(cfg, tmp_path / "b", show_progress=False).run()
    _, sa, _ = load_run(a.run_dir)
    _, sb, _ = load_run(b.run_dir)
    for k, v in sa["agent"]["policy"].items():
        assert torch.equal(v, sb["agent"]["policy"][k]), k
    assert np.isfinite(a.eval["return_mean"])


def test_a_lost_worker_is_replaced_until_the_runs_restart_budget_is_spent():
    from robotrl.scale.worker_pool import WorkerLostError, count_restart

    assert count_restart(0, 2, "rollout worker 1", "died") == 1
    assert count_restart(1, 2, "A3C worker 0", "hung") == 2
    with pytest.raises(WorkerLostError, match=r"^A3C worker 0 lost \(hung\) after 2 replacement\(s\) "
                       r"\(scale.max_worker_restarts=2\).*--resume$"):
        count_restart(2, 2, "A3C worker 0", "hung")


def test_address_comes_from_config_then_environment_then_local(monkeypatch):
    from robotrl.config import ScaleConfig
    from robotrl.scale.session import resolve_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(ScaleConfig(backend="ray")) == "local"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert resolve_address(ScaleConfig(backend="ray")) == "10.0.0.5:6379"
    assert resolve_address(ScaleConfig(backend="ray", address="auto")) == "auto"


def test_agents_with_their_own_collector_are_refused_before_workers_start(local_ray, tiny_config):
    from robotrl.scale.ray_rollouts import RayRollouts

    cfg = _ray_config(tiny_config)

    class OwnCollectorAgent:
        collector = object()
        policy = None

    with RayRollouts(cfg) as rollouts, pytest.raises(ValueError, match="Ray rollout workers serve the agents"):
        rollouts.attach(OwnCollectorAgent())
