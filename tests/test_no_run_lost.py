"""No run lost: an existing run is never overwritten, a resume never silently changes the run, a full disk
says so with the path and leaves the files whole, and a bad value fails when the config loads, before
any folder is made or anything trains."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import envs
from policies import checkpoint
from robotrl.cli import main
from robotrl.config import ConfigError, load_config, override_env_kwargs
from robotrl.train.trainer import Trainer, new_run_dir


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "robotrl.cli", *args], capture_output=True, text=True,
                          cwd=cwd or root, env={**os.environ, "PYTHONPATH": str(root)})


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def trained(tiny_config, tmp_path):
    """A tiny finished Reacher run: (its config file, its folder)."""
    config = tiny_config(train={"total_steps": 1024, "checkpoint_every": 512})
    Trainer(load_config(config), tmp_path / "run", show_progress=False).run()
    return config, tmp_path / "run"


def test_train_onto_an_existing_run_without_resume_refuses_in_one_line_and_changes_nothing(trained):
    config, run = trained
    before = snapshot(run)
    proc = cli("train", config, "--run-dir", str(run), "--no-progress")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == (f"robotrl train: error: --run-dir {run}: holds a run already (config.yaml); "
                        "pass --resume to continue it, or choose a new folder")
    assert snapshot(run) == before


def test_resume_with_other_values_refuses_naming_every_differing_key(trained, tmp_path):
    config, run = trained
    before = snapshot(run)
    proc = cli("train", config, "--run-dir", str(run), "--resume", "--set", "ppo.learning_rate=0.001",
               "--set", "env.num_envs=4", "--steps", "2048", "--no-progress")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "differs from the run's" in lines[0]
    assert "env.num_envs (run 8, given 4)" in lines[0] and "ppo.learning_rate (run 0.0003, given 0.001)" in lines[0]
    listed = lines[0].split(" in ", 1)[1].split("; only")[0]
    assert "train.total_steps" not in listed  # a resume may raise the budget
    assert snapshot(run) == before


def test_resume_of_another_config_over_a_run_refuses(trained, tmp_path):
    _, run = trained
    before = snapshot(run)
    proc = cli("train", "launch/cartpole_ppo.yaml", "--run-dir", str(run), "--resume", "--no-progress")
    assert proc.returncode == 1
    assert "env.id (run robotrl/Reacher-v0, given robotrl/CartPole-v0)" in proc.stderr
    assert snapshot(run) == before


def test_resume_differences_leave_out_only_the_documented_keys(tiny_config):
    from robotrl.config import RESUMABLE_KEYS, resume_differences

    run = load_config(tiny_config())
    operational = ["train.threads=2", "scale.address=auto", "scale.num_cpus=8", "scale.worker_cpus=0.5",
                   "scale.max_worker_restarts=9", "scale.timeout_s=900", "scale.start_timeout_s=600"]
    given = load_config(tiny_config(), ["train.total_steps=99999", "train.device=auto", "seed=5",
                                        "env.kwargs.control_cost=0.5", "policy.hidden=[32]", *operational,
                                        "scale.backend=ray", "scale.workers=4"])
    assert set(RESUMABLE_KEYS) == {"train.total_steps", "train.device"} | {o.split("=")[0] for o in operational}
    assert resume_differences(run.to_dict(), given) == [
        ("seed", 1, 5), ("env.kwargs.control_cost", None, 0.5), ("policy.hidden", [64, 64], [32]),
        ("scale.backend", "local", "ray"), ("scale.workers", 2, 4)]


class _DiskFull:
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.f.write(data[: self.room])  # what fitted lands in the file, as on a real disk
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def test_a_full_disk_says_so_with_the_path_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "latest.pt"
    checkpoint.save_checkpoint(path, {"step": 1, "w": torch.zeros(10)})
    before = path.read_bytes()
    real_fdopen = checkpoint.os.fdopen
    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: _DiskFull(real_fdopen(fd, mode), 600))
    with pytest.raises(OSError, match=rf"^{path}: No space left on device") as caught:
        checkpoint.save_checkpoint(path, {"step": 2, "w": torch.zeros(100_000)})
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temporary file left behind


def test_a_full_disk_while_appending_metrics_names_the_file_and_leaves_its_rows_whole(tmp_path, monkeypatch):
    from robotrl.train.logger import MetricsLogger

    logger = MetricsLogger(tmp_path)
    logger.log(1, {"a": 1.0})
    logger.log(2, {"a": 2.0})  # known columns: appended, not rewritten
    before = (tmp_path / "metrics.csv").read_bytes()
    real_open = Path.open

    def full_open(self, mode="r", *args, **kwargs):
        f = real_open(self, mode, *args, **kwargs)
        return _DiskFull(f, 3) if "a" in mode else f

    monkeypatch.setattr(Path, "open", full_open)
    with pytest.raises(OSError, match=rf"^{tmp_path / 'metrics.csv'}: No space left on device"):
        logger.log(3, {"a": 3.0})
    monkeypatch.undo()
    logger.close()
    assert (tmp_path / "metrics.csv").read_bytes() == before


PROBE = """
import torch
from policies.checkpoint import save_checkpoint
save_checkpoint("{dir}/latest.pt", {{"w": torch.zeros(10)}})
try:
    save_checkpoint("{dir}/latest.pt", {{"w": torch.zeros(100_000)}})
except OSError as exc:
    print(exc)
print(torch.load("{dir}/latest.pt")["w"].shape[0])
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a private tmpfs")
def test_a_full_tmpfs_reports_no_space_instead_of_torchs_enforce_message(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    root = Path(__file__).resolve().parents[1]
    mount_it = f"mount -t tmpfs -o size=64k tmpfs {mount}"
    allowed = subprocess.run(["unshare", "-rm", "sh", "-c", mount_it], capture_output=True, text=True)
    if allowed.returncode != 0:
        pytest.skip(f"no private tmpfs here: {allowed.stderr.strip()}")
    script = f"{mount_it} && {sys.executable} -c '{PROBE.format(dir=mount)}'"
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{mount}/latest.pt: No space left on device (the previous file is "
                                        "left as it was)", "10"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.checkpoint_every=0", "train.checkpoint_every: expected a positive integer, got 0"),
        ("train.total_steps=0", "train.total_steps: expected a positive integer, got 0"),
        ("train.total_steps=-5", "train.total_steps: expected a positive integer, got -5"),
        ("train.eval_every=-1", "train.eval_every: expected 0 (only at the end) or a positive integer, got -1"),
        ("train.eval_episodes=0", "train.eval_episodes: expected a positive integer, got 0"),
        ("train.final_eval_episodes=0", "train.final_eval_episodes: expected a positive integer, got 0"),
        ("train.threads=0", "train.threads: expected a positive integer, got 0"),
        ("train.device=gpu", "train.device: expected cpu, cuda, cuda:N or auto, got 'gpu'"),
        ("env.num_envs=0", "env.num_envs: expected a positive integer, got 0"),
        ("policy.activation=sigmoidd", "policy.activation: expected one of ['tanh', 'relu', 'elu'], got 'sigmoidd'"),
        ("policy.hidden=[0]", "policy.hidden: expected positive layer sizes, got [0]"),
        ("policy.hidden=[64, -2]", "policy.hidden: expected positive layer sizes, got [64, -2]"),
        ("seed=-1", "seed: expected a non-negative integer, got -1"),
        ("scale.num_cpus=0", "scale.num_cpus: expected a positive integer, got 0"),
        ("ppo.learning_rate=0", "ppo.learning_rate: expected a positive number, got 0.0"),
        ("ppo.clip_range=0", "ppo.clip_range: expected a positive number, got 0.0"),
        ("ppo.max_grad_norm=-1", "ppo.max_grad_norm: expected a positive number, got -1.0"),
        ("ppo.ent_coef=-0.1", "ppo.ent_coef: expected a non-negative number, got -0.1"),
        ("ppo.target_kl=0", "ppo.target_kl: expected a positive number, got 0.0"),
        # NaN passes every range check and inf most: no setting of a run means either.
        ("ppo.learning_rate=.inf", "ppo.learning_rate: expected a finite number, got inf"),
        ("ppo.ent_coef=.nan", "ppo.ent_coef: expected a finite number, got nan"),
        ("policy.init_log_std=.inf", "policy.init_log_std: expected a finite number, got inf"),
        ("scale.timeout_s=.nan", "scale.timeout_s: expected a finite number, got nan"),
        # PyYAML reads 2e6 as a string; an integer-valued one is the integer.
        ("train.total_steps=2.5e3", None),
        ("hyper.learning_rate=0.1", "hyper: unknown key (hyperparameters go in the 'ppo' section)"),
        ("ppo=3", "ppo: expected a mapping of hyperparameters, got int 3"),
    ],
)
def test_a_bad_value_fails_at_load_naming_its_key(tiny_config, override, message):
    if message is None:
        assert load_config(tiny_config(), [override]).train.total_steps == 2500
        assert load_config(tiny_config(), ["train.total_steps=2e6"]).train.total_steps == 2_000_000
        with pytest.raises(ConfigError, match=r"train.total_steps: expected an integer, got float 2500.5"):
            load_config(tiny_config(), ["train.total_steps=2.5005e3"])
        return
    with pytest.raises(ConfigError) as caught:
        load_config(tiny_config(), [override])
    assert str(caught.value) == f"{tiny_config()}: {message}"


@pytest.mark.parametrize(
    ("algo", "override", "message"),
    [
        ("a2c", "learning_rate=-1", "a2c.learning_rate: expected a positive number, got -1.0"),
        ("dqn", "learning_rate=0", "dqn.learning_rate: expected a positive number, got 0.0"),
        ("dqn", "exploration_fraction=0", "dqn.exploration_fraction: expected a number in (0, 1], got 0.0"),
        ("dqn", "max_grad_norm=0", "dqn.max_grad_norm: expected a positive number, got 0.0"),
        ("mappo", "learning_rate=0", "mappo.learning_rate: expected a positive number, got 0.0"),
        ("reinforce", "learning_rate=0", "reinforce.learning_rate: expected a positive number, got 0.0"),
        ("qlearning", "exploration_fraction=0", "qlearning.exploration_fraction: expected a number in (0, 1], got 0.0"),
        ("a3c", "workers=0", "a3c.workers: expected a positive integer, got 0"),
        # Values that loaded before and failed later or silently (NaN weights, a run that never learns):
        ("a2c", "rmsprop_alpha=1.5", "a2c.rmsprop_alpha: expected a number in (0, 1), got 1.5"),
        ("a3c", "rmsprop_alpha=1", "a3c.rmsprop_alpha: expected a number in (0, 1), got 1.0"),
        ("dqn", "batch_size=64", "dqn.batch_size: expected at most buffer_size (32), got 64"),
        ("dqn", "gradient_steps=0", "dqn.gradient_steps: expected a positive integer, got 0"),
        ("sac", "ent_coef_init=.nan", "sac.ent_coef_init: expected a finite number, got nan"),
        ("sac", "learning_rate=.nan", "sac.learning_rate: expected a finite number, got nan"),
        ("sac", "target_entropy=.nan", "sac.target_entropy: expected a finite number, got nan"),
        ("sac", "batch_size=64", "sac.batch_size: expected at most buffer_size (32), got 64"),
        ("qlearning", "exploration_final_eps=-0.1",
         "qlearning.exploration_final_eps: expected a number in [0, 1], got -0.1"),
        ("reinforce", "value_steps=0", "reinforce.value_steps: expected a positive integer with baseline on (0 "
                                       "would subtract an untrained critic's values), got 0"),
    ],
)
def test_a_bad_hyperparameter_fails_at_load_naming_its_key(tmp_path, algo, override, message):
    path = tmp_path / "c.yaml"
    path.write_text(f"algo: {algo}\nenv: {{id: robotrl/CartPole-v0}}\n")
    # A small buffer, so that a larger batch is the only thing wrong (both keys exist for DQN and SAC).
    small = [f"{algo}.buffer_size=32"] if override.startswith("batch_size") else []
    with pytest.raises(ConfigError) as caught:
        load_config(path, [*small, f"{algo}.{override}"])
    assert str(caught.value) == f"{path}: {message}"


def test_broken_yaml_names_the_line_and_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("algo: ppo\ntrain:\n  total_steps: 1000\n  eval_every: [1, 2\nseed: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    first = str(caught.value).splitlines()[0]
    assert first.startswith(f"{path}:5:5: not valid YAML: "), first


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    """PyYAML keeps the last of two equal keys: a second `train:` section would silently reset the first's
    values to the defaults."""
    path = tmp_path / "c.yaml"
    path.write_text("algo: ppo\ntrain:\n  total_steps: 1000\nseed: 3\ntrain:\n  keep_best: false\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:5:1: not valid YAML: duplicate key 'train'"


def test_a_set_value_that_is_not_yaml_names_the_flag(tiny_config):
    with pytest.raises(ConfigError) as caught:
        load_config(tiny_config(), ["policy.hidden=[64, 64"])
    assert str(caught.value).startswith("--set 'policy.hidden=[64, 64': the value is not valid YAML: ")


def test_a_config_that_fails_validation_leaves_no_run_folder(tiny_config, tmp_path):
    proc = cli("train", tiny_config(), "--set", "train.checkpoint_every=0", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"robotrl train: error: {tiny_config()}: train.checkpoint_every: expected a positive integer, got 0"]
    assert not (tmp_path / "runs").exists()


def test_a_run_whose_agent_cannot_start_leaves_no_run_folder(tiny_config, tmp_path):
    # A value only the env can judge (an unknown task option) fails when the env is built.
    cfg = load_config(tiny_config(), ["env.kwargs.no_such_option=1"])
    with pytest.raises(TypeError):
        Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert not (tmp_path / "run").exists()


def test_eval_with_zero_episodes_is_refused_before_anything_loads(reacher_run, capsys):
    assert main(["eval", str(reacher_run), "--episodes", "0"]) == 1
    assert capsys.readouterr().err.strip() == "robotrl eval: error: --episodes 0: expected at least 1"


@pytest.mark.parametrize("config", ["launch/cartpole_reinforce.yaml", "launch/cartpole_double_dqn.yaml",
                                    "launch/cartpole_qlearning.yaml", "launch/cartpole_a3c.yaml",
                                    "launch/multipush_mappo.yaml"])
def test_compare_refuses_a_config_sb3_cannot_train(config):
    from robotrl.sb3.translate import check_translatable

    with pytest.raises(ValueError, match=r"SB3 has no|has no SB3 translation"):
        check_translatable(load_config(config))


def test_compare_refuses_before_training_anything(tmp_path, capsys):
    config = tmp_path / "reinforce.yaml"
    config.write_text("algo: reinforce\nenv: {id: robotrl/CartPole-v0, num_envs: 2}\n"
                      "train: {total_steps: 512, eval_every: 0, final_eval_episodes: 2}\n"
                      "reinforce: {batch_steps: 256}\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(config), "--seeds", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("robotrl compare: error: algo 'reinforce' has no SB3 translation (supported: ppo, a2c, "), err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_the_saved_config_of_a_run_round_trips_through_the_checks(trained):
    from robotrl.config import resume_differences

    _, run = trained
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert resume_differences(saved, load_config(run / "config.yaml")) == []


def test_baselines_check_every_config_before_training_any(tiny_config, monkeypatch):
    from robotrl.sb3 import baselines

    monkeypatch.setattr(baselines, "compare", lambda *a, **k: pytest.fail("trained before checking every config"))
    with pytest.raises(ValueError, match=r"algo 'reinforce' has no SB3 translation"):
        list(baselines.regenerate([tiny_config(), "launch/cartpole_reinforce.yaml"], seeds=2))


def test_a_resumed_run_restarts_its_episodes_away_from_the_evaluation_episodes():
    """A resumed run reseeds its training envs from (seed, step). With seed + step, a checkpoint at step
    10,000 or 20,000 restarted training on the very episodes the evaluations (seed + 10,000) and the kept
    best policy's held-out check (seed + 20,000) score."""
    from robotrl.train.trainer import EVAL_SEED_OFFSET, HELD_OUT_SEED_OFFSET, resume_env_seed

    for seed in range(5):
        judged = set(range(seed + EVAL_SEED_OFFSET, seed + EVAL_SEED_OFFSET + 1000)) | \
            set(range(seed + HELD_OUT_SEED_OFFSET, seed + HELD_OUT_SEED_OFFSET + 1000))
        for step in [*range(1000, 200_001, 1000), 10_000 - seed, 20_000 - seed]:
            first = resume_env_seed(seed, step)
            assert first == resume_env_seed(seed, step)  # the same checkpoint resumes the same way
            assert not judged & set(range(first, first + 4096)), (seed, step)


def test_a_resumed_run_keeps_the_terrain_curriculums_levels(tiny_config, tmp_path, monkeypatch):
    """The curriculum's levels outlive episodes: without them in the checkpoint a resumed rough-terrain run
    sent every robot back to the first band and had to climb the curriculum again."""
    from envs.tasks.locomotion import LocomotionTask

    terrain = {"type": "rough", "curriculum": True, "levels": 4, "size": 8.0}
    config = tiny_config(env={"id": "robotrl/Locomotion-v0", "num_envs": 2,
                              "kwargs": {"robot": "tiny_quad", "terrain": terrain}},
                         train={"total_steps": 64, "checkpoint_every": 32},
                         ppo={"n_steps": 16, "batch_size": 32, "n_epochs": 1})
    run = tmp_path / "run"
    Trainer(load_config(config), run, show_progress=False).run()
    latest = run / "checkpoints" / "latest.pt"
    state = checkpoint.load_checkpoint(latest)
    assert set(state["env"]) == {"terrain_level"} and state["env"]["terrain_level"].shape == (2,)
    state["env"]["terrain_level"][:] = (3, 2)  # as if the robots had climbed
    checkpoint.save_checkpoint(latest, state)

    seen: list[list[int]] = []
    reset_ids = LocomotionTask.reset_ids

    def spy(self, ids, rngs):
        seen.append(self.terrain.level.tolist())
        reset_ids(self, ids, rngs)

    monkeypatch.setattr(LocomotionTask, "reset_ids", spy)
    Trainer(load_config(config, overrides=["train.total_steps=96"]), run, resume=True, show_progress=False).run()
    assert seen[0] == [3, 2]  # the resumed run's first episodes start on the levels of the checkpoint


def test_a_checkpoints_task_state_that_does_not_fit_the_env_is_refused():
    import numpy as np

    import envs

    env = envs.make_vec("robotrl/Locomotion-v0", 2, robot="tiny_quad",
                        terrain={"type": "rough", "curriculum": True, "levels": 4, "size": 8.0})
    with pytest.raises(ValueError, match=r"task state 'terrain_level' has shape \(3,\), expected \(2,\)"):
        env.unwrapped.restore_carried_state({"terrain_level": np.zeros(3, np.int64)})
    flat = envs.make_vec("robotrl/Locomotion-v0", 2, robot="tiny_quad")
    with pytest.raises(ValueError, match=r"has keys \['terrain_level'\], this task carries \[\]"):
        flat.unwrapped.restore_carried_state({"terrain_level": np.zeros(2, np.int64)})
    env.close()
    flat.close()


def test_a_run_stopped_before_its_first_checkpoint_is_named_as_such(tiny_config, tmp_path):
    """A folder with only config.yaml (the first iteration crashed) cannot be resumed: saying "pass
    --resume" sent the user into "no checkpoint"; and a plain --resume must not continue an older run."""
    from robotrl.train.runs import check_fresh, latest_run

    stopped = tmp_path / "tiny-1-20261130-120000"
    stopped.mkdir()
    (stopped / "config.yaml").write_text("algo: ppo\n")
    with pytest.raises(FileExistsError, match=r"stopped before its first checkpoint \(config.yaml; nothing to "
                                              r"resume\): remove that folder or choose a new one"):
        check_fresh(stopped)
    older = tmp_path / "tiny-1-20261129-120000"
    (older / "checkpoints").mkdir(parents=True)
    (older / "checkpoints" / "latest.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"the newest run of tiny with seed 1, .*tiny-1-20261130-120000, "
                                                r"stopped before its first checkpoint"):
        latest_run("tiny", 1, tmp_path)
    shutil.rmtree(stopped)
    assert latest_run("tiny", 1, tmp_path) == older


def test_resume_refuses_a_checkpoint_of_another_format(trained):
    config, run = trained
    latest = run / "checkpoints" / "latest.pt"
    state = checkpoint.load_checkpoint(latest)
    state["format"] = 99
    checkpoint.save_checkpoint(latest, state)
    with pytest.raises(ValueError, match=r"checkpoint format 99, expected 1 \(not a training checkpoint"):
        Trainer(load_config(config, ["train.total_steps=2048"]), run, resume=True, show_progress=False)


def test_a_resume_removes_the_checkpoint_write_a_killed_process_left_half_done(trained, capsys):
    # kill -9 (or a power loss) during a save leaves the temporary file beside latest.pt: gigabytes for a
    # pixel DQN's replay, on every kill, and nothing else ever removes it.
    config, run = trained
    leftover = run / "checkpoints" / ".latest.pt.k1ll3d.tmp"
    leftover.write_bytes(b"\0" * 1000)
    Trainer(load_config(config, ["train.total_steps=1536"]), run, resume=True, show_progress=False)
    assert not leftover.exists() and (run / "checkpoints" / "latest.pt").is_file()
    assert f"--resume: removed {leftover}, a checkpoint write the previous process did not finish" in \
        capsys.readouterr().out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_run_resumes_cudas_random_streams(tiny_config, tmp_path, monkeypatch):
    """On the GPU, PPO's action noise and minibatch order come from CUDA's generators: a resumed run replayed
    them from the seed (step 0's stream) when only the CPU generator was checkpointed."""
    config = tiny_config(train={"total_steps": 1024, "checkpoint_every": 512, "device": "cuda"})
    Trainer(load_config(config), tmp_path / "run", show_progress=False).run()
    state = checkpoint.load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    saved = state["rng"]["cuda"]
    assert saved is not None and len(saved) == torch.cuda.device_count()
    restored = []
    set_all = torch.cuda.set_rng_state_all
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: (restored.append(states), set_all(states)))
    Trainer(load_config(config, ["train.total_steps=2048"]), tmp_path / "run", resume=True, show_progress=False).run()
    assert len(restored) == 1 and all(torch.equal(a, b) for a, b in zip(restored[0], saved, strict=True))


def test_env_kwargs_written_like_2e_3_reach_the_env_as_numbers(tiny_config, tmp_path):
    """PyYAML leaves 2e-3 a string; the typed fields read it as a number, and so do the env's kwargs."""
    config = tmp_path / "noisy.yaml"
    text = Path(tiny_config()).read_text()
    config.write_text(text.replace("num_envs: 8", "num_envs: 8\n  kwargs: {obs_noise: 1e-2}"))
    cfg = load_config(str(config), ["env.kwargs.timestep=2e-3", "env.kwargs.mass_scale=[9e-1, 1.1e0]"])
    assert cfg.env.kwargs == {"obs_noise": 0.01, "timestep": 0.002, "mass_scale": [0.9, 1.1]}
    assert override_env_kwargs({}, ["env.kwargs.obs_noise=5e-2"]) == {"obs_noise": 0.05}
    env = envs.make("robotrl/Reacher-v0", **cfg.env.kwargs)  # a string here was "'>' not supported"
    env.close()


def test_runs_started_in_the_same_second_get_their_own_folders(tiny_config, tmp_path):
    cfg = load_config(tiny_config())
    first, second = new_run_dir(cfg, tmp_path), new_run_dir(cfg, tmp_path)
    assert first != second and first.is_dir() and second.is_dir()  # made, so a third process skips both


def test_a_second_run_that_raced_into_the_same_folder_is_refused_and_the_first_is_kept(tiny_config, tmp_path):
    """Both passed the check for a fresh folder before either wrote; the first to write its config owns it."""
    cfg = load_config(tiny_config(train={"total_steps": 1024, "eval_every": 0, "final_eval_episodes": 2,
                                          "checkpoint_every": 1024}))
    run = tmp_path / "run"
    first, second = Trainer(cfg, run, show_progress=False), Trainer(cfg, run, show_progress=False)
    first.run()
    kept = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(FileExistsError, match="another run started in this folder at the same time"):
        second.run()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == kept


def test_a_new_run_that_cannot_start_leaves_no_folder(tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert main(["train", tiny_config(), "--set", "train.device=cuda:7", "--no-progress"]) == 1
    capsys.readouterr()
    assert list((tmp_path / "runs").iterdir()) == []


def test_baselines_refuse_two_configs_of_one_env_and_algo_before_training_any(tiny_config, tmp_path, monkeypatch):
    """Both would be stored in the one file of their env and algorithm: the second replaced the first hours in."""
    from robotrl.sb3 import baselines

    monkeypatch.setattr(baselines, "compare", lambda *a, **k: pytest.fail("trained before checking every config"))
    first = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2})
    second = tmp_path / "other.yaml"
    second.write_text(Path(first).read_text())
    with pytest.raises(ValueError, match=r"both are InvertedPendulum-v5 with ppo, and one baseline is stored"):
        list(baselines.regenerate([first, str(second)], seeds=2, root=tmp_path / "stored"))


def test_a_baseline_stores_its_config_from_the_repository_root(monkeypatch):
    """Saved from inside launch/, the baseline named `cartpole_ppo.yaml`, which the regression tier (run from
    the root) and the recorded command could not find."""
    from robotrl.sb3.baselines import REPO, compare_command, repo_config

    monkeypatch.chdir(REPO / "launch")
    assert repo_config("cartpole_ppo.yaml") == "launch/cartpole_ppo.yaml"
    assert compare_command("cartpole_ppo.yaml", 3, None).startswith("robotrl compare launch/cartpole_ppo.yaml ")
    assert repo_config("/tmp/x.yaml") == os.path.abspath("/tmp/x.yaml")


def test_baselines_train_a_config_named_twice_once(tiny_config, tmp_path, monkeypatch):
    from robotrl.sb3 import baselines

    trained = []
    monkeypatch.setattr(baselines, "compare", lambda cfg, *a, **k: trained.append(cfg.name) or {"sb3": {}})
    monkeypatch.setattr(baselines, "write_baseline", lambda report, config, command, root: tmp_path / "stored.json")
    first = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2})
    again = os.path.join(os.path.dirname(first), ".", os.path.basename(first))
    assert len(list(baselines.regenerate([first, again], seeds=2, root=tmp_path / "stored"))) == 1
    assert len(trained) == 1
