"""SIGTERM or Ctrl-C during training: the run stops after its current iteration with a checkpoint of that
very step (robotrl.train.stop), on our side and on SB3's side of a comparison."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from robotrl.train.logger import read_metrics


def write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def robotrl(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robotrl.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def signal_when(proc: subprocess.Popen, ready: Path, sig: int, timeout: float = 120.0) -> str:
    """Send `sig` once `ready` exists; the process's stderr after it exits."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{ready} never appeared: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=120)[1]
    finally:
        proc.kill()


def stopped_step(stderr: str, signame: str) -> int:
    found = re.search(rf"stopped by {signame} at step ([\d,]+)", stderr)
    assert found, stderr
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_train_stops_on_a_signal_with_a_checkpoint_of_its_last_step(tmp_path, sig):
    config = write(tmp_path, {
        "algo": "ppo", "seed": 3, "env": {"id": "InvertedPendulum-v5", "num_envs": 2},
        "train": {"total_steps": 10_000_000, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 1024},
        "ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 1}})
    run = tmp_path / "run"
    proc = robotrl("train", config, "--run-dir", str(run), "--no-progress")
    stderr = signal_when(proc, run / "checkpoints" / "latest.pt", sig)
    assert proc.returncode == 128 + sig, stderr
    step = stopped_step(stderr, sig.name)
    assert "--resume continues it" in stderr
    # No step lost: the checkpoint holds the last step the metrics logged, not the periodic one before it.
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["step"] == step
    assert int(read_metrics(run / "metrics.csv")[-1]["step"]) == step
    assert step < 10_000_000
    resumed = subprocess.run([sys.executable, "-m", "robotrl.cli", "train", config, "--run-dir", str(run),
                              "--resume", "--steps", str(step + 128), "--no-progress"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "eval.json").read_text())["steps"] == step + 128


def test_sb3_side_stops_on_sigterm_with_a_checkpoint_and_resumes_from_it(tmp_path):
    config = write(tmp_path, {
        "algo": "sac", "seed": 4, "env": {"id": "InvertedPendulum-v5", "num_envs": 1},
        "policy": {"hidden": [16, 16], "normalize_obs": False},
        "train": {"total_steps": 1_000_000, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 300},
        "sac": {"learning_starts": 100, "batch_size": 32, "buffer_size": 100_000}})
    out = tmp_path / "cmp"
    proc = robotrl("compare", config, "--seeds", "1", "--side", "sb3", "--out", str(out))
    stderr = signal_when(proc, out / "sb3-seed4" / "state.json", signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    step = stopped_step(stderr, "SIGTERM")
    assert "the same command continues it" in stderr
    assert json.loads((out / "sb3-seed4" / "state.json").read_text())["step"] == step
    assert not (out / "sb3-seed4.json").exists()  # not taken for a finished seed
    done = subprocess.run([sys.executable, "-m", "robotrl.cli", "compare", config, "--seeds", "1", "--side",
                           "sb3", "--out", str(out), "--steps", str(step + 50)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "sb3-seed4.json").read_text())
    assert (result["steps"], result["resumed_from"]) == (step + 50, step)


@pytest.mark.slow
def test_a3c_stops_on_sigterm_to_its_process_group_with_a_checkpoint(tmp_path):
    """`timeout`, a batch scheduler or a container stop sends SIGTERM to every process of the job: the
    workers must leave the stop to the trainer, which checkpoints the step it stopped at."""
    config = write(tmp_path, {
        "algo": "a3c", "seed": 2, "env": {"id": "InvertedPendulum-v5", "num_envs": 4},
        "train": {"total_steps": 10_000_000, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 2000},
        "a3c": {"workers": 2, "steps_per_collect": 1000}})
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "robotrl.cli", "train", config, "--run-dir", str(run),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoints" / "latest.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGTERM)
        stderr = proc.communicate(timeout=180)[1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    step = stopped_step(stderr, "SIGTERM")
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["step"] == step
    assert int(read_metrics(run / "metrics.csv")[-1]["step"]) == step
