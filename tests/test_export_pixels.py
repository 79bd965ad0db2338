"""ONNX export of a DQN trained from pixels: the file takes the env's uint8 frame stacks, says how they
are rendered, and acts like the checkpoint on frames rendered by the env."""

import json

import numpy as np
import onnx
import pytest
import torch
from runcheck import eval_json

import envs
from deploy.policy import OnnxPolicy
from envs.describe import describe_env
from policies.export import onnx_actions, to_onnx
from robotrl.cli import main
from robotrl.config import load_config
from robotrl.export.policy import export_policy
from robotrl.train.trainer import Trainer, load_policy

PIXELS = {"size": 84, "stack": 4, "camera": "track", "skip": 2}  # as in launch/cartpole_pixels_dqn.yaml


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory):
    """The shipped pixel DQN config trained for 200 steps (about a dozen gradient steps) and exported."""
    root = tmp_path_factory.mktemp("pixels")
    cfg = load_config("launch/cartpole_pixels_dqn.yaml", [
        "train.total_steps=200", "train.eval_every=0", "train.final_eval_episodes=2", "train.checkpoint_every=200",
        "dqn.learning_starts=100", "dqn.steps_per_iteration=100", "dqn.buffer_size=1000"])
    Trainer(cfg, root / "run", show_progress=False).run()
    report = export_policy(root / "run")
    return root / "run", root / "run" / "policy.onnx", report


def rendered_frames(steps: int = 30, num_envs: int = 4) -> np.ndarray:
    """[steps * num_envs, 4, 84, 84] uint8 stacks the env renders under random forces."""
    env = envs.make_vec("robotrl/CartPole-v0", num_envs, pixels=PIXELS)
    rng = np.random.default_rng(0)
    try:
        obs, _ = env.reset(seed=5)
        seen = []
        for _ in range(steps):
            seen.append(obs)
            obs, *_ = env.step(rng.uniform(-1, 1, size=(num_envs, 1)).astype(np.float32))
    finally:
        env.close()
    return np.concatenate(seen)


def test_pixel_export_takes_uint8_frame_stacks_and_describes_their_rendering(pixel_run):
    _, path, report = pixel_run
    model = onnx.load(path)
    (graph_input,) = model.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = graph_input.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 4, 84, 84]
    meta = json.loads({p.key: p.value for p in model.metadata_props}["robotrl.policy"])
    assert meta["format_version"] == 2  # a runner that reads only flat float32 vectors (1) refuses it
    assert meta["obs_shape"] == [4, 84, 84] and meta["obs_dtype"] == "uint8" and meta["pixels"] == PIXELS
    assert meta["obs_dim"] == 4 * 84 * 84 and meta["obs_fields"] == [["frames", 4 * 84 * 84]]
    # The greedy bin's force, on the raw env: the same bounds as a state-based CartPole policy. Its rate is the
    # decisions' (each held for skip 2 env steps): half CartPole's 50 Hz, so a loop at it runs in real time.
    assert (meta["act_dim"], meta["action_low"], meta["action_high"]) == (1, [-1.0], [1.0])
    assert meta["algo"] == "dqn" and meta["control_hz"] == pytest.approx(25.0)
    state_based = describe_env("robotrl/CartPole-v0")
    assert state_based["control_hz"] == pytest.approx(50.0) and meta["decimation"] == 2 * state_based["decimation"]
    assert report["observations_checked"] == 1024 + 514 and report["parity_max_abs"] <= 1e-5
    spec = OnnxPolicy(path).spec
    assert spec.obs_shape == (4, 84, 84) and spec.obs_dtype == "uint8"
    assert spec.env_kwargs() == {"task": "balance", "pixels": PIXELS}  # the training task, and its rendering


def test_onnx_q_values_and_actions_equal_torch_on_rendered_frames(pixel_run):
    run, path, _ = pixel_run
    policy, _, _ = load_policy(run)
    frames = rendered_frames()
    assert frames.dtype == np.uint8 and len(np.unique(frames)) > 20  # real renders, not a blank image
    with torch.no_grad():
        q_torch = policy(torch.as_tensor(frames)).numpy()
        actions_torch = policy.export_actor()(torch.as_tensor(frames)).numpy()
    # The Q-network itself through ONNX Runtime: the values behind the argmax agree to float precision.
    q_onnx = onnx_actions(to_onnx(policy, (4, 84, 84), {}, "uint8"), frames)
    np.testing.assert_allclose(q_onnx, q_torch, rtol=1e-5, atol=1e-5)
    # The exported file picks the same bin wherever the two Q-values are not a float-precision tie.
    actions_onnx = OnnxPolicy(path).act_batch(frames)
    clear = np.abs(q_torch[:, 0] - q_torch[:, 1]) > 1e-4
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(actions_onnx[clear], actions_torch[clear])
    assert set(np.unique(actions_onnx)) <= {-1.0, 1.0}
    # A robot backend sends a flat float32 vector per tick; the runner's policy reshapes and casts it.
    single = OnnxPolicy(path)
    for k in np.flatnonzero(clear)[:5]:
        np.testing.assert_array_equal(single.act(frames[k].reshape(-1).astype(np.float32)), actions_torch[k])


def test_eval_of_the_pixel_onnx_file_renders_frames_and_matches_the_checkpoint(pixel_run, capsys):
    run, path, _ = pixel_run
    from_onnx = eval_json(path, 3, capsys)
    from_checkpoint = eval_json(run, 3, capsys)
    assert from_onnx["episodes"] == 3 and from_onnx["length_mean"] > 0
    # A policy file carries no run config, so it has no target to report against.
    assert from_onnx == {k: v for k, v in from_checkpoint.items() if k not in ("target", "target_met")}


def test_a_frame_latency_trained_with_is_described_for_the_sim_robot():
    """`pixels.delay` (frames shown late, as a camera pipeline does) was left out of the export: eval of the
    file and deploy --backend sim ran the policy on frames without the latency it was trained with."""
    described = describe_env("robotrl/CartPole-v0", pixels={**PIXELS, "delay": 1})
    assert described["pixels"] == {**PIXELS, "delay": 1}
    assert "delay" not in describe_env("robotrl/CartPole-v0", pixels=PIXELS)["pixels"]  # files stay as they were


def test_a_file_keeps_the_latency_its_run_trained_with(pixel_run):
    """The described pixels are laid over the run's own: a file written before `delay` was described still
    carries it in the training kwargs, and eval or deploy of it must show the frames as late."""
    import dataclasses

    spec = OnnxPolicy(pixel_run[1]).spec
    older = dataclasses.replace(spec, train_env_kwargs={**spec.train_env_kwargs, "pixels": {**PIXELS, "delay": 1}})
    assert older.env_kwargs()["pixels"] == {**PIXELS, "delay": 1}
    assert spec.env_kwargs()["pixels"] == PIXELS


def test_deploy_on_the_sim_backend_renders_the_cameras_frames_for_the_policy(pixel_run, tmp_path, capsys):
    _, path, _ = pixel_run
    # No passive or ramp phase: every tick sends the policy's own force bins.
    assert main(["deploy", str(path), "--backend", "sim", "--duration", "0.5", "--out", str(tmp_path),
                 "--passive-s", "0", "--ramp-s", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # At the decisions' rate (25 Hz: each held for 2 of CartPole's 50 Hz steps), so the pole moves in real time.
    assert summary["rate_hz"] == pytest.approx(25.0) and 11 <= summary["ticks"] <= 13
    assert sum(summary["safe_actions"].values()) == 0
    ticks = np.load(tmp_path / "ticks.npz")
    assert set(np.unique(ticks["actions"])) <= {-1.0, 1.0}


def test_deploy_over_udp_refuses_a_frame_stack_in_one_line(pixel_run, capsys):
    _, path, _ = pixel_run
    assert main(["deploy", str(path), "--backend", "udp", "--duration", "0.1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "uint8 observations of shape [4, 84, 84] (28224 values)" in err and "--backend sim" in err


def test_metadata_whose_obs_shape_disagrees_is_refused(pixel_run, tmp_path):
    _, path, _ = pixel_run
    model = onnx.load(path)
    prop = next(p for p in model.metadata_props if p.key == "robotrl.policy")
    prop.value = json.dumps({**json.loads(prop.value), "obs_shape": [4, 84, 83]})
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match=r"obs_shape \[4, 84, 83\] holds 27888 values, obs_dim is 28224"):
        OnnxPolicy(tmp_path / "bad.onnx")
