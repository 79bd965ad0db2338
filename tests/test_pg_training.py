"""REINFORCE, A2C and A3C end to end: each learns on InvertedPendulum-v5 within seconds; A3C's
workers stop cleanly, a crashed worker stops the run with a clear error, and a killed run resumes."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from robotrl.config import load_config
from robotrl.train.trainer import Trainer

# A random policy balances InvertedPendulum-v5 for about 5-10 steps (return = steps balanced).
RANDOM_RETURN = 10.0


def write_config(path: Path, algo: str, hyper: dict, **sections) -> str:
    data = {"algo": algo, "seed": 1, "env": {"id": "InvertedPendulum-v5", "num_envs": 8},
            "train": {"total_steps": 10_000, "eval_every": 0, "eval_episodes": 4, "final_eval_episodes": 4,
                      "checkpoint_every": 10**9},
            algo: hyper}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(data))
    return str(path)


def episodic_returns(run: Path) -> list[float]:
    rows = csv.DictReader((run / "metrics.csv").open())
    return [float(r["charts/episodic_return_mean"]) for r in rows if r.get("charts/episodic_return_mean")]


# The learning assertions below: the last logged mean episodic return (its 100-episode window) above
# LEARNED_RETURN. Measured with the tests' settings on seeds 0-7 (the tests run seed 1), then under
# `no_learning` (learning rate 0); the threshold sits 1.7x below the worst learning seed and 3.9x above the
# best control:
#   A2C                   34.05 (seed 6) .. 67.73; seeds 0-7: 49.91 67.73 61.96 50.21 50.94 42.13 34.05 50.56
#   REINFORCE, baseline   38.70 (seed 5) .. 50.71; seeds 0-7: 43.52 40.57 50.71 43.39 45.35 38.70 47.50 43.96
#   REINFORCE, none       35.32 (seed 2) .. 49.80; seeds 0-7: 42.48 39.52 35.32 46.23 49.80 36.97 46.47 46.36
#   learning rate 0       3.92 .. 5.12 (A2C), 3.95 .. 5.03 (REINFORCE), on all 8 seeds
LEARNED_RETURN = 2 * RANDOM_RETURN


def test_a2c_learns_to_balance(tmp_path, learns):
    cfg = load_config(write_config(tmp_path / "a2c.yaml", "a2c", {"n_steps": 5}, train={"total_steps": 8000}))
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    returns = episodic_returns(tmp_path / "run")
    assert returns[0] < RANDOM_RETURN
    assert (returns[-1] > LEARNED_RETURN) == learns, returns[-5:]


# One negative control for the assertion: at learning rate 0 the baseline changes nothing.
@pytest.mark.parametrize(("baseline", "learns"), [(True, True), (False, True),
                                                  pytest.param(True, False, id="lr0-control")])
def test_reinforce_learns_to_balance(tmp_path, baseline, learns, request):
    if not learns:
        request.getfixturevalue("no_learning")
    cfg = load_config(write_config(tmp_path / "rf.yaml", "reinforce",
                                   {"batch_steps": 1000, "learning_rate": 0.01, "baseline": baseline,
                                    "grad_var_chunks": 4}))
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    returns = episodic_returns(tmp_path / "run")
    assert returns[0] < RANDOM_RETURN
    assert (returns[-1] > LEARNED_RETURN) == learns, returns
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert float(rows[-1]["diag/pg_variance_return"]) > 0


def a3c_config(tmp_path: Path, **train) -> str:
    return write_config(tmp_path / "a3c.yaml", "a3c", {"workers": 2, "steps_per_collect": 1000},
                        env={"num_envs": 4}, train=train)


@pytest.mark.slow
def test_a3c_two_workers_learn_and_report_their_speed(tmp_path):
    """About 30 s on an idle machine, most of it starting the two worker processes."""
    cfg = load_config(a3c_config(tmp_path, total_steps=12_000))
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.steps == 12_000
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [int(float(r["step"])) for r in rows] == list(range(1000, 12_001, 1000))
    # Both workers did work, and the total is their sum.
    last = rows[-1]
    assert float(last["charts/SPS_worker0"]) > 0 and float(last["charts/SPS_worker1"]) > 0
    assert float(last["charts/SPS_workers"]) == pytest.approx(
        float(last["charts/SPS_worker0"]) + float(last["charts/SPS_worker1"]))
    returns = episodic_returns(tmp_path / "run")
    assert returns[-1] > max(2 * returns[0], 3 * RANDOM_RETURN), returns


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(c) for c in text.split()]


def worker_pids(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except FileNotFoundError:
            continue
    return out


def wait_for_checkpoint(latest: Path, step: int, proc: subprocess.Popen, timeout: float = 400) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()}")
        if latest.exists() and torch.load(latest, weights_only=False)["step"] >= step:
            return
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint at step {step} within {timeout} s")


def start_train(config: str, run: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "robotrl.cli", "train", config, "--run-dir", str(run), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_a3c_worker_crash_stops_the_run_with_a_clear_error(tmp_path):
    config = a3c_config(tmp_path, total_steps=400_000, checkpoint_every=2000, keep_checkpoints=False)
    run = tmp_path / "run"
    proc = start_train(config, run)
    latest = run / "checkpoints" / "latest.pt"
    try:
        wait_for_checkpoint(latest, 2000, proc)
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        raise AssertionError("the run hung after a worker crashed") from None
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "A3C worker 1 died" in stderr, stderr
    assert len(stderr.strip().splitlines()) <= 2, stderr  # "run folder: ..." and the one-line error
    state = torch.load(latest, weights_only=False)  # the last checkpoint is whole
    assert state["step"] >= 2000 and state["algo"] == "a3c"
    time.sleep(1.0)
    assert not Path(f"/proc/{workers[0]}").exists() or b"zombie" in Path(f"/proc/{workers[0]}/status").read_bytes()


@pytest.mark.slow
def test_a3c_sigkill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    config = a3c_config(tmp_path, total_steps=400_000, checkpoint_every=2000, keep_checkpoints=False)
    run = tmp_path / "run"
    proc = start_train(config, run)
    latest = run / "checkpoints" / "latest.pt"
    try:
        wait_for_checkpoint(latest, 4000, proc)
        workers = worker_pids(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    before = torch.load(latest, weights_only=False)
    killed_at = before["step"]
    # Orphaned workers notice their trainer is gone and exit by themselves (about 30 s on a loaded machine).
    deadline = time.time() + 120
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.2)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "A3C workers outlived their trainer"
    resumed = start_train(config, run, "--resume", "--steps", str(killed_at + 4000))
    try:
        _, stderr = resumed.communicate(timeout=600)
    finally:
        resumed.kill()
    assert resumed.returncode == 0, stderr
    after = torch.load(latest, weights_only=False)
    assert after["step"] == killed_at + 4000
    steps = [float(r["step"]) for r in csv.DictReader((run / "metrics.csv").open())]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) and steps[-1] == killed_at + 4000
    # The shared RMSprop state went on from the saved one: 4000 steps of 20-step worker updates added.
    step_before = float(next(iter(before["agent"]["optimizer"]["state"].values()))["step"])
    step_after = float(next(iter(after["agent"]["optimizer"]["state"].values()))["step"])
    assert step_after == pytest.approx(step_before + 4000 / 20, abs=2)
    assert after["agent"]["worker_steps"][0] + after["agent"]["worker_steps"][1] >= killed_at + 4000


@pytest.mark.parametrize("task", ["inverted_pendulum", "reacher", "cartpole"])
@pytest.mark.parametrize("algo", ["reinforce", "a2c", "a3c"])
def test_shipped_policy_gradient_configs_load(task, algo):
    cfg = load_config(f"launch/{task}_{algo}.yaml")
    assert cfg.algo == algo and cfg.name == f"{task}_{algo}"
    if algo == "a3c":
        assert cfg.hyper.workers == 2


@pytest.mark.slow
def test_inverted_pendulum_a2c_balances_within_100k_steps(tmp_path):
    cfg = load_config("launch/inverted_pendulum_a2c.yaml")
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.steps <= 100_000
    assert result.eval["return_mean"] == pytest.approx(1000.0)


def test_a3c_resumes_at_its_scheduled_learning_rate(tmp_path):
    """The workers read the shared rate, which update() sets only after a collect: a resumed run must start
    its first collect at the schedule's rate for the steps already trained, not at the base rate."""
    import envs
    from robotrl.agents.a3c import Agent

    cfg = load_config(write_config(tmp_path / "a3c.yaml", "a3c", {"workers": 2, "learning_rate": 0.001,
                                                                   "anneal_lr": True}))
    env = envs.make_vec(cfg.env.id, cfg.env.num_envs)
    try:
        agent = Agent(cfg, env, torch.device("cpu"))
        state = agent.state_dict()
        state["worker_steps"] = [4500, 4500]  # 90% of the 10,000-step budget
        agent.load_state_dict(state)
        assert agent.workers.ctl.lr.value == pytest.approx(0.001 * 0.1)
    finally:
        env.close()


def test_a3c_evaluates_with_the_normalizer_its_workers_updated(tmp_path):
    """The workers merge observations into the shared normalizer from their own processes; the trainer's
    evaluations run in this one and must see those statistics, not the ones of its first evaluation."""
    import copy

    import envs
    from robotrl.agents.a3c import Agent
    from robotrl.core.episodes import EpisodeStats

    cfg = load_config(write_config(tmp_path / "a3c.yaml", "a3c", {"workers": 2, "steps_per_collect": 2000}))
    env = envs.make_vec(cfg.env.id, cfg.env.num_envs)
    agent = Agent(cfg, env, torch.device("cpu"))
    try:
        agent.start(cfg.seed)
        obs = torch.randn(16, env.single_observation_space.shape[0])
        before = agent.policy.deterministic(obs)  # as an evaluation before the first collect does
        agent.collect(EpisodeStats(cfg.env.num_envs))
        assert float(agent.policy.normalizer.count) > 1000  # the workers merged their observations
        fresh = copy.deepcopy(agent.policy)  # a process that reads the statistics as they are now
        assert not torch.equal(before, fresh.deterministic(obs))
        assert torch.equal(agent.policy.deterministic(obs), fresh.deterministic(obs))
    finally:
        agent.workers.close()
        env.close()


def test_a3c_checkpoints_each_workers_reward_scaler_and_resumes_from_it(tmp_path):
    """With scale_rewards (every shipped A3C config) each worker divides rewards by its own running return
    std: a resumed run must go on from those statistics, not from a fresh scaler's first few rewards."""
    import envs
    from robotrl.agents.a3c import Agent
    from robotrl.core.episodes import EpisodeStats

    cfg = load_config(write_config(tmp_path / "a3c.yaml", "a3c", {"workers": 2, "steps_per_collect": 1000,
                                                                   "scale_rewards": True}))
    env = envs.make_vec(cfg.env.id, cfg.env.num_envs)
    first = Agent(cfg, env, torch.device("cpu"))
    try:
        first.start(cfg.seed)
        # Until each worker has merged 2,000 returns (on a loaded machine one worker may run ahead).
        for _ in range(40):
            first.collect(EpisodeStats(cfg.env.num_envs))
            saved = first.state_dict()
            if all(c is not None and c["scaler"]["count"] >= 2000 for c in saved["collectors"]):
                break
        else:
            pytest.fail(f"the workers did not report 2,000 returns each: {saved['collectors']}")
    finally:
        first.workers.close()
    counts = [c["scaler"]["count"] for c in saved["collectors"]]
    resumed = Agent(cfg, env, torch.device("cpu"))
    try:
        resumed.load_state_dict(saved)
        resumed.start(cfg.seed + 1000)
        resumed.collect(EpisodeStats(cfg.env.num_envs))  # 1,000 steps: a fresh scaler would count ~1,000 at most
        after = [c["scaler"]["count"] for c in resumed.state_dict()["collectors"]]
    finally:
        resumed.workers.close()
        env.close()
    # Each worker that reported went on from its checkpoint's count; at least one did.
    assert all(a >= n for a, n in zip(after, counts, strict=True)) and any(
        a > n for a, n in zip(after, counts, strict=True)), (counts, after)
