"""Software in the loop: the exported policy driving a MuJoCo robot through the runner and the CLI."""

import json

import numpy as np
import pytest
from runcheck import eval_json

import envs
from deploy.backends.sim import SimBackend
from deploy.policy import OnnxPolicy
from deploy.runner import LoopConfig, Runner
from deploy.states import StartConfig
from robotrl.cli import main


def test_a_sim_episode_in_the_loop_equals_the_same_episode_offline(exported_reacher):
    """Lock-step: however late a tick is, the robot advances one control step per command, so the
    loop's first episode is the offline rollout of the same seed, to the last bit of reward."""
    policy = OnnxPolicy(exported_reacher[1])
    backend = SimBackend(envs.make("robotrl/Reacher-v0"), seed=5)
    # No start sequence: the policy drives from the first observation, as in the offline rollout.
    s = Runner(policy, backend, LoopConfig(rate_hz=100, duration_s=3.0), start=StartConfig(0.0, 0.0)).run()
    assert s["robot"]["episodes"] >= 1 or s["skipped"] > 0
    if not backend.returns:
        pytest.skip(f"the loaded machine skipped {s['skipped']} ticks; no episode finished")
    env = envs.make("robotrl/Reacher-v0")
    obs, _ = env.reset(seed=5)
    total = 0.0
    for _ in range(200):
        obs, reward, _, truncated, _ = env.step(policy.act_batch(obs[None])[0])
        total += reward
    env.close()
    assert truncated and backend.lengths[0] == 200
    assert backend.returns[0] == pytest.approx(total, abs=1e-9)


def test_robotrl_deploy_sim_writes_summary_ticks_and_plots(exported_reacher, tmp_path, capsys):
    rc = main(["deploy", str(exported_reacher[1]), "--backend", "sim", "--rate", "250", "--duration", "1",
               "--out", str(tmp_path), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "sim" and summary["env_id"] == "robotrl/Reacher-v0"
    assert summary["ticks"] + summary["skipped"] == 250
    assert summary["robot"]["episodes"] == (summary["ticks"] - 1) // 200
    assert summary["inference_us"]["p50"] > 0
    for name in ("ticks.npz", "summary.json", "timing.png", "actions.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    actions = np.load(tmp_path / "ticks.npz")["actions"]
    assert actions.shape == (summary["ticks"], 2) and np.abs(actions).max() <= 1.0


def test_eval_of_the_onnx_file_matches_eval_of_its_checkpoint(exported_reacher, capsys):
    run, path, _ = exported_reacher
    from_ckpt = eval_json(run, 4, capsys)
    from_onnx = eval_json(path, 4, capsys)
    # A policy file carries no run config, so it has no target to report against.
    assert set(from_onnx) == set(from_ckpt) - {"target", "target_met"}
    assert from_onnx["return_mean"] == pytest.approx(from_ckpt["return_mean"], abs=1e-3)
    assert from_onnx["success_rate"] == from_ckpt["success_rate"]
