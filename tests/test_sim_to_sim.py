"""Sim-to-sim: the perturbation options (integrator, observation latency, half timestep) and the report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest

import envs
from robotrl.tools.sim_to_sim import format_sim_to_sim, nominal_kwargs, perturbed_kwargs, sim_to_sim

ROOT = Path(__file__).resolve().parents[1]
ID = "robotrl/Locomotion-v0"
TINY = {"robot": "tiny_quad", "command_vx": 0.3, "command_vy": 0.0, "command_yaw": 0.0}


def test_observation_latency_shows_each_observation_one_policy_step_late():
    fresh, late = envs.make(ID, **TINY), envs.make(ID, **TINY, obs_delay=1)
    o_fresh, _ = fresh.reset(seed=2)
    o_late, _ = late.reset(seed=2)
    np.testing.assert_array_equal(o_fresh, o_late)  # an episode starts with its first observation
    rng = np.random.default_rng(0)
    previous = o_fresh
    for _ in range(20):
        a = rng.uniform(-1, 1, 8).astype(np.float32)
        o_fresh, *_ = fresh.step(a)
        o_late, *_ = late.step(a)
        np.testing.assert_array_equal(o_late, previous)
        previous = o_fresh
    fresh.close()
    late.close()


def test_half_the_timestep_keeps_the_control_rate_and_rk4_is_set():
    env = envs.make(ID, robot="tiny_quad", timestep=0.0025, integrator="RK4")
    task = env.unwrapped.task
    assert task.frame_skip == 8 and task.control_dt == pytest.approx(0.02)
    assert int(task.sim.model.opt.integrator) == int(mujoco.mjtIntegrator.mjINT_RK4)
    env.close()
    with pytest.raises(ValueError, match=r"sim-to-real option integrator: expected one of"):
        envs.make(ID, robot="tiny_quad", integrator="Verlet")


def test_the_perturbed_copy_and_the_side_by_side_report():
    kwargs = perturbed_kwargs(ID, {**TINY, "mass_scale": [0.9, 1.1]})
    assert kwargs["timestep"] == pytest.approx(0.0025) and kwargs["frame_skip"] == 8
    assert kwargs["mass_scale"] == [0.8, 1.2] and kwargs["obs_delay"] == 1 and kwargs["integrator"] == "RK4"

    def stand(obs):
        return np.zeros((len(obs), 8), np.float32)

    report = sim_to_sim(stand, ID, {**TINY, "mass_scale": [0.9, 1.1]}, episodes=3, seed=0)
    for side in ("nominal", "perturbed"):
        figures = report[side]
        assert figures["falls"] == 0.0  # holding the default pose: no fall either way
        assert figures["velocity_error"] == pytest.approx(0.3, abs=0.05)  # standing misses 0.3 m/s
    lines = format_sim_to_sim(report).splitlines()
    assert lines[1].split() == ["nominal", "perturbed"]
    assert lines[3].startswith("velocity error") and lines[3].count("m/s") == 2


def _lag_of_episode(seed: int) -> int:
    """0 or 1: which latency an obs_delay=[0, 1] env drew for the episode of `seed`."""
    fresh, ranged = envs.make(ID, **TINY), envs.make(ID, **TINY, obs_delay=[0, 1])
    rng = np.random.default_rng(seed)
    previous, _ = fresh.reset(seed=seed)
    ranged.reset(seed=seed)
    lags = set()
    for _ in range(5):
        a = rng.uniform(-1, 1, 8).astype(np.float32)
        o_fresh, *_ = fresh.step(a)
        o_ranged, *_ = ranged.step(a)
        lags.add(0 if np.array_equal(o_ranged, o_fresh) else 1 if np.array_equal(o_ranged, previous) else -1)
        previous = o_fresh
    fresh.close()
    ranged.close()
    assert len(lags) == 1 and -1 not in lags, f"seed {seed}: not one whole-step latency per episode: {lags}"
    return lags.pop()


def test_a_latency_range_is_drawn_per_episode_and_repeats_with_the_seed():
    lags = [_lag_of_episode(seed) for seed in range(8)]
    assert set(lags) == {0, 1}, lags  # both latencies occur over 8 episodes (p of one value only: 2**-7)
    assert [_lag_of_episode(seed) for seed in range(3)] == lags[:3]
    with pytest.raises(ValueError, match=r"obs_delay: expected k >= 0 or \[low, high\] \(integers\), got \[2, 1\]"):
        envs.make(ID, **TINY, obs_delay=[2, 1])


def test_another_frame_skip_keeps_the_command_period_settle_time_and_pushes_in_seconds():
    """frame_skip changes the control rate: the task's times (seconds) become other numbers of steps."""
    kwargs = {**TINY, "command_period": 5.0, "settle_time": 1.0, "push_velocity": 0.5, "push_interval": [2.0, 4.0]}
    base, slow = envs.make(ID, **kwargs).unwrapped.task, envs.make(ID, **kwargs, frame_skip=8).unwrapped.task
    assert slow.control_dt == pytest.approx(2 * base.control_dt)
    for task in (base, slow):
        assert task.command_steps == round(5.0 / task.control_dt)
        assert task.settle_steps == round(1.0 / task.control_dt)
        assert task.push_steps == (round(2.0 / task.control_dt), round(4.0 / task.control_dt))


@pytest.mark.parametrize(("flags", "named"), [(["--video", "out.mp4"], "--video"), (["--viewer"], "--viewer"),
                                              (["--set", "env.kwargs.terrain=rough"], "--set"),
                                              (["--episodes", "0"], "--episodes")])
def test_eval_sim_to_sim_refuses_the_flags_it_would_ignore(tmp_path, capsys, flags, named):
    from robotrl.cli import main

    assert main(["eval", str(tmp_path / "run"), "--sim-to-sim", *flags]) != 0
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1, err


def test_a_pixel_policys_latency_reaches_its_frames():
    pixels = {"size": 84, "stack": 4, "camera": "track", "skip": 2}
    kwargs = perturbed_kwargs("robotrl/CartPole-v0", {"pixels": pixels, "discretize_actions": 2})
    # The state's obs_delay is discarded by the renders; the frames themselves come one decision late.
    assert kwargs["pixels"] == {**pixels, "delay": 1} and kwargs["discretize_actions"] == 2
    # A camera trained with a latency keeps it in the nominal env (the exported file describes it), and the
    # perturbed one shows its frames a decision later still.
    trained = {"pixels": {**pixels, "delay": 2}, "obs_delay": 1}
    assert nominal_kwargs(trained) == {"pixels": {**pixels, "delay": 2}}
    assert perturbed_kwargs("robotrl/CartPole-v0", trained)["pixels"]["delay"] == 3


def test_a_pixel_run_trains_evaluates_and_meets_sim_to_sim_without_mujoco_gl_set(tmp_path):
    """A headless user who did not export MUJOCO_GL: the commands pick an offscreen OpenGL themselves
    (MuJoCo would take GLFW, which needs a display)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    run = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "robotrl.cli", "train", "launch/cartpole_pixels_dqn.yaml",
                            "--steps", "1000", "--run-dir", str(run), "--no-progress",
                            "--set", "train.eval_episodes=1", "--set", "train.final_eval_episodes=1"],
                           env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert train.returncode == 0, train.stderr
    check = subprocess.run([sys.executable, "-m", "robotrl.cli", "eval", str(run), "--sim-to-sim", "--episodes",
                            "1", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["perturbation"]["pixels"]["delay"] == 1
    assert report["nominal"]["length_mean"] > 0 and report["perturbed"]["length_mean"] > 0
    # The exported file on the simulated robot, whose camera renders the policy's frames.
    cli = [sys.executable, "-m", "robotrl.cli"]
    export = subprocess.run([*cli, "export", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr
    deploy = subprocess.run([*cli, "deploy", str(run / "policy.onnx"), "--backend", "sim", "--duration", "0.3",
                             "--passive-s", "0", "--ramp-s", "0", "--out", str(tmp_path / "deploy"), "--json"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stderr
    assert json.loads(deploy.stdout)["ticks"] > 0
