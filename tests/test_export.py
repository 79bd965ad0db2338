"""ONNX export: one self-contained file that describes its robot and acts like the checkpoint."""

import json

import numpy as np
import onnx
import pytest
import torch

import deploy.metadata
import policies.export
from policies.actor_critic import ActorCritic
from robotrl.train.trainer import load_policy


def test_metadata_key_and_version_agree_between_writer_and_reader():
    assert policies.export.METADATA_KEY == deploy.metadata.METADATA_KEY
    assert policies.export.FORMAT_VERSION == deploy.metadata.FORMAT_VERSION


def test_export_is_one_checked_file_that_describes_the_robot(exported_reacher):
    run, path, report = exported_reacher
    assert not path.with_suffix(".onnx.data").exists() and not list(run.glob("*.data"))
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = json.loads({p.key: p.value for p in model.metadata_props}["robotrl.policy"])
    # A flat float32 observation stays format 1, so that runners older than pixel policies still read it.
    assert meta["format_version"] == 1
    assert meta["obs_shape"] == [8] and meta["obs_dtype"] == "float32" and meta["pixels"] is None
    assert meta["env_id"] == "robotrl/Reacher-v0" and meta["algo"] == "ppo" and meta["train_steps"] == 2048
    assert meta["obs_fields"] == [["cos_q", 2], ["sin_q", 2], ["qvel", 2], ["fingertip_to_target", 2]]
    assert (meta["obs_dim"], meta["act_dim"]) == (8, 2)
    assert meta["action_low"] == [-1.0, -1.0] and meta["action_high"] == [1.0, 1.0]
    assert meta["action_mode"] == "torque" and meta["pd"] is None
    # 200 Hz physics, 4 physics steps per policy step.
    assert meta["control_hz"] == pytest.approx(50.0) and meta["decimation"] == 4
    assert report["observations_checked"] >= 3000 and report["parity_max_abs"] <= 1e-5


def test_onnx_actions_equal_the_checkpoints_on_raw_and_extreme_observations(exported_reacher):
    run, path, _ = exported_reacher
    policy, _, _ = load_policy(run)
    rng = np.random.default_rng(1)
    obs = np.concatenate([rng.standard_normal((500, 8)) * 3, [[1e5] * 8, [-1e5] * 8, [0.0] * 8]]).astype(np.float32)
    with torch.no_grad():
        expected = policy.to_env(policy.deterministic(torch.as_tensor(obs))).numpy()
    for batch in (obs[:1], obs[:37], obs):  # the batch dimension is dynamic
        got = policies.export.onnx_actions(path.read_bytes(), batch)
        np.testing.assert_allclose(got, expected[: len(batch)], atol=1e-5)
    got = policies.export.onnx_actions(path.read_bytes(), obs)
    assert got.min() >= -1.0 and got.max() <= 1.0


def test_parity_check_fails_when_the_graph_differs_from_torch():
    torch.manual_seed(0)
    a = ActorCritic(3, 1, hidden=(8,))
    b = ActorCritic(3, 1, hidden=(8,))
    model = policies.export.to_onnx(a.export_actor(), 3, {"env_id": "x"})
    obs = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32) * 50
    assert policies.export.check_parity(a.export_actor(), model, obs) <= 1e-5
    with pytest.raises(ValueError, match="differ by"):
        policies.export.check_parity(b.export_actor(), model, obs)


def test_int8_export_reports_its_action_error_and_returns_and_still_loads(exported_reacher, tmp_path):
    from deploy.policy import OnnxPolicy
    from robotrl.export.policy import export_policy

    run, fp32_path, _ = exported_reacher
    report = export_policy(run, tmp_path / "q.onnx", quantize="int8", eval_episodes=4)
    assert 0 < report["int8_action_error"]["max"] < 0.2  # 8-bit weights: small but nonzero error
    assert report["int8_eval"]["episodes"] == report["fp32_eval"]["episodes"] == 4
    assert report["bytes"] < fp32_path.stat().st_size
    policy = OnnxPolicy(tmp_path / "q.onnx")
    assert policy.spec.quantized == "int8" and policy.act(np.zeros(8, np.float32)).shape == (2,)
