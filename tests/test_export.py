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


def _ops(model_bytes: bytes) -> list[str]:
    return [node.op_type for node in onnx.load_from_string(model_bytes).graph.node]


def _after_last_gemm(ops: list[str]) -> list[str]:
    return ops[len(ops) - ops[::-1].index("Gemm"):]


def _gaussian_policy(hidden: tuple[int, ...], normalize: bool) -> ActorCritic:
    """A Gaussian policy with bounds of three kinds (wide, [-1, 1], off-centre) and an output layer scaled up
    from its 0.01 init, so that its actions span the bounds and the clamp acts on some of them."""
    torch.manual_seed(3)
    policy = ActorCritic(6, 3, hidden=hidden, normalize_obs=normalize, action_low=[-2.5, -1.0, 0.0],
                         action_high=[2.5, 1.0, 5.0])
    with torch.no_grad():
        policy.actor[-1].weight.mul_(60.0)
        policy.actor[-1].bias.copy_(torch.tensor([0.3, -0.2, 0.5]))
    if normalize:
        policy.normalizer.update(torch.randn(500, 6) * 2 + 1)
    return policy


def test_folded_layer_is_mid_plus_half_times_the_layer():
    from policies.bounds import fold_bounds_into_linear

    linear = torch.nn.Linear(2, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        linear.bias.copy_(torch.tensor([0.25, -1.0]))
    # Bounds [0, 4] and [-3, -1]: centres 2 and -2, half-ranges 2 and 1.
    folded = fold_bounds_into_linear(linear, torch.tensor([0.0, -3.0]), torch.tensor([4.0, -1.0]))
    assert folded.weight.tolist() == [[2.0, -4.0], [0.5, 0.0]]
    assert folded.bias.tolist() == [2.5, -3.0]
    assert linear.weight.tolist() == [[1.0, -2.0], [0.5, 0.0]] and not folded.weight.requires_grad


@pytest.mark.parametrize(("hidden", "normalize"), [((32, 32), True), ((16,), False), ((), True)])
def test_gaussian_export_folds_the_bounds_rescale_into_its_last_gemm_and_matches_the_unfolded_actor(
        hidden, normalize):
    policy = _gaussian_policy(hidden, normalize)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    actor = policy.export_actor()
    model = policies.export.to_onnx(actor, 6, {"env_id": "x"})
    assert _after_last_gemm(_ops(model)) == ["Max", "Min"]  # the clamp stays; no Mul or Add before it
    rng = np.random.default_rng(0)
    typical = (rng.standard_normal((400, 6)) * 2 + 1).astype(np.float32)
    obs = np.concatenate([typical, policies.export.edge_observations(typical, rng, clipped=normalize)])
    # Against the unfolded actor as trained: mid + half * mean, then the clamp.
    with torch.no_grad():
        expected = policy.to_env(policy.deterministic(torch.as_tensor(obs))).numpy()
    got = policies.export.onnx_actions(model, obs)
    np.testing.assert_allclose(got, expected, atol=policies.export.PARITY_TOLERANCE, rtol=0)
    assert policies.export.check_parity(actor, model, obs) <= policies.export.PARITY_TOLERANCE
    inside = (expected > policy.action_low.numpy()) & (expected < policy.action_high.numpy())
    assert inside.any() and (~inside).any()  # both the folded layer and the clamp were compared
    for key, value in policy.state_dict().items():  # the fold works on copies: the policy is untouched
        assert torch.equal(value, before[key]), key


def test_gaussian_export_refuses_to_fold_past_an_output_nonlinearity():
    policy = _gaussian_policy((8,), True)
    policy.actor.append(torch.nn.Tanh())  # mean = tanh(Linear): the rescale no longer follows a Linear layer
    with pytest.raises(TypeError, match="ends in Tanh"):
        policies.export.to_onnx(policy.export_actor(), 6, {"env_id": "x"})


def test_categorical_export_keeps_its_argmax_over_the_unfolded_logits():
    torch.manual_seed(0)
    policy = ActorCritic(5, 4, continuous=False, hidden=(16,))
    policy.normalizer.update(torch.randn(200, 5))
    model = policies.export.to_onnx(policy.export_actor(), 5, {"env_id": "x"})
    assert _after_last_gemm(_ops(model)) == ["ArgMax", "Cast"]
    obs = np.random.default_rng(0).standard_normal((300, 5)).astype(np.float32) * 3
    with torch.no_grad():
        expected = policy.deterministic(torch.as_tensor(obs)).numpy()
    np.testing.assert_array_equal(policies.export.onnx_actions(model, obs)[:, 0], expected)


def test_squashed_gaussian_export_keeps_the_rescale_after_its_tanh():
    from policies.squashed_gaussian import SquashedGaussianActor

    torch.manual_seed(0)
    sac = SquashedGaussianActor(5, 2, hidden=(16, 16), action_low=[-2.0, 0.0], action_high=[2.0, 5.0])
    actor = sac.export_actor()
    model = policies.export.to_onnx(actor, 5, {"env_id": "x"})
    # A tanh sits between the last Linear layer and the rescale: folding there would change the map.
    assert _after_last_gemm(_ops(model)) == ["Tanh", "Mul", "Add", "Max", "Min"]
    obs = (np.random.default_rng(0).standard_normal((300, 5)) * 3).astype(np.float32)
    with torch.no_grad():
        expected = sac.to_env(sac.deterministic(torch.as_tensor(obs))).numpy()
    np.testing.assert_allclose(policies.export.onnx_actions(model, obs), expected, atol=1e-5, rtol=0)


def test_the_training_env_kwargs_travel_with_the_policy_to_the_simulated_robot(tiny_config, tmp_path):
    """`deploy --backend sim` rebuilds the task the policy was trained on (its kwargs), not the env's defaults."""
    from deploy.policy import OnnxPolicy
    from robotrl.cli import main

    config = tiny_config(env={"id": "robotrl/Reacher-v0", "num_envs": 8, "kwargs": {"control_cost": 0.5}},
                         train={"total_steps": 512, "checkpoint_every": 512})
    assert main(["train", config, "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    out = tmp_path / "p.onnx"
    assert main(["export", str(tmp_path / "run"), "--out", str(out)]) == 0
    spec = OnnxPolicy(out).spec
    assert spec.train_env_kwargs == {"control_cost": 0.5} and spec.env_kwargs()["control_cost"] == 0.5
    assert spec.to_dict()["env_kwargs"] == {"control_cost": 0.5}
    # The simulated robot behind UDP (`python -m robotrl.tools.udp_robot --policy FILE`) is that task too.
    from robotrl.tools.udp_robot import make_robot_env

    robot = make_robot_env(None, str(out))
    assert robot.spec.id == "robotrl/Reacher-v0" and robot.unwrapped.task.weights["action"] == 0.5
    robot.close()


def test_a_policy_for_an_env_with_discrete_actions_is_refused_naming_its_action_space():
    # PPO and DQN train on Gymnasium's CartPole-v1; its two actions are no robot command to export (the
    # description read the Box bounds off Discrete(2) and raised AttributeError).
    from envs.describe import describe_env

    with pytest.raises(ValueError, match=r"CartPole-v1: its actions are Discrete\(2\), not a box of robot commands"):
        describe_env("CartPole-v1")
