"""The scale section of a run config, and the scaling model's arithmetic (no Ray needed)."""

import pytest

from robotrl.config import ConfigError, load_config
from robotrl.scale.model import ScalingModel


def test_scale_is_off_by_default_and_checked(tiny_config):
    cfg = load_config(tiny_config())
    assert cfg.scale.backend == "local"
    assert cfg.to_dict()["scale"]["backend"] == "local"
    with pytest.raises(ConfigError, match=r"scale\.backend: expected one of \['local', 'ray'\], got 'spark'"):
        load_config(tiny_config(scale={"backend": "spark"}))
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        load_config(tiny_config(scale={"backend": "ray", "workers": 0}))
    with pytest.raises(ConfigError, match=r"scale\.adress: unknown key"):
        load_config(tiny_config(scale={"backend": "ray", "adress": "auto"}))


def test_scaling_model_arithmetic():
    # 1000 steps per worker in 0.1 s; 0.01 s broadcast, 0.01 s overhead; 10 µs of learner per step.
    m = ScalingModel(steps_per_worker=1000, rollout_s=0.1, broadcast_s=0.01, overhead_s=0.01,
                     learner_s_per_step=1e-5)
    assert m.per_worker_steps_per_s() == pytest.approx(10_000)
    assert m.iteration_s(1) == pytest.approx(0.13)          # 0.12 fixed + 1000 * 1e-5
    assert m.iteration_s(8) == pytest.approx(0.20)          # 0.12 + 8000 * 1e-5
    assert m.steps_per_s(8) == pytest.approx(8000 / 0.20)
    assert m.speedup(8) == pytest.approx((8000 / 0.20) / (1000 / 0.13))
    assert m.bottleneck(8) == "rollout workers"             # 0.1 s against 0.08 s of learner
    assert m.bottleneck(32) == "learner (assemble + update)"
    # The learner caps throughput at 1 / 1e-5 = 100k steps/s however many workers there are.
    assert m.steps_per_s(10**6) == pytest.approx(100_000, rel=1e-3)


def _ray_run(run, wait_s: float = 0.13) -> None:
    """A Ray run's config.yaml and metrics.csv, written by hand: 2 workers of 4 envs x 64 steps (256 steps
    each), a 100 ms rollout, 8 ms of broadcast and load, and 51.2 ms of learner per iteration (0.1 ms per
    step). The first two rows (start-up) are ten times slower: skipped, not half the medians."""
    import csv

    import yaml

    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"algo": "ppo", "env": {"num_envs": 8},
                                                     "ppo": {"n_steps": 64}, "scale": {"workers": 2}}))
    row = {"step": 0, "time/worker_act_s": 0.02, "time/worker_env_s": 0.08, "time/worker_load_s": 0.005,
           "time/broadcast_s": 0.003, "time/rollout_wait_s": wait_s, "time/assemble_s": 0.002,
           "time/update_s": 0.0492}
    with (run / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        for i in range(4):
            scale = 10 if i < 2 else 1
            writer.writerow({k: (v * scale if k.startswith("time/") else 512 * (i + 1)) for k, v in row.items()})


def test_scale_model_command_prints_its_help():
    """`python -m robotrl.scale.model --help` once read --help as the run folder and failed on
    '--help/config.yaml'."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "robotrl.scale.model", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m robotrl.scale.model") and "RUN_DIR" in proc.stdout
    assert "--workers" in proc.stdout and not proc.stderr


def test_scale_model_command_fits_a_ray_run_and_refuses_other_folders_in_one_line(tmp_path, capsys):
    from robotrl.scale.model import main

    _ray_run(tmp_path / "ray")
    assert main([str(tmp_path / "ray"), "--workers", "1", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # overhead: 130 ms waited - 100 ms rollout - 5 ms load = 25 ms; iteration(K) = 133 ms + K * 25.6 ms:
    # 256 / 0.1586 = 1,614 steps/s with one worker, 1024 / 0.2354 = 4,350 with four (2.69x).
    assert lines[0] == ("per-worker steps/s 2,560 (256 steps in 100.0 ms); broadcast 8.00 ms; Ray overhead "
                        "25.0 ms; learner 100.00 µs per step")
    assert lines[2].split() == ["1", "0.159", "1,614", "1.00", "rollout", "workers"]
    assert lines[3].split()[:4] == ["4", "0.235", "4,350", "2.69"] and len(lines) == 4

    assert main([str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "No such file or directory" in err and len(err.splitlines()) == 1
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "config.yaml").write_text("algo: ppo\n")
    (tmp_path / "local" / "metrics.csv").write_text("step,charts/SPS\n512,1000\n")
    assert main([str(tmp_path / "local")]) == 1
    assert "0 Ray iterations logged" in capsys.readouterr().err
