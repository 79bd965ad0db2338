"""Decentralized execution: one ONNX actor per robot, lock-step runners on a shared MultiPush simulation."""

import json
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

import envs
from deploy.metadata import METADATA_KEY
from robotrl.config import load_config
from robotrl.export.team import RobotBackend, TeamSim, deploy_team, export_team
from robotrl.train.trainer import Trainer, load_policy


def test_team_sim_steps_only_when_every_robot_answered_what_it_saw():
    sim = TeamSim(envs.make_multi("robotrl/MultiPush-v0", n_robots=2), seed=0)
    b0, b1 = RobotBackend(sim, "robot_0"), RobotBackend(sim, "robot_1")
    r0, r1 = b0.read(), b1.read()
    np.testing.assert_array_equal(r0.obs, sim.obs["robot_0"])
    np.testing.assert_array_equal(r1.obs, sim.obs["robot_1"])
    assert b0.read() is None  # nothing new until the team has stepped
    b0.write(np.array([1.0, 0.0], np.float32))
    b0.write(np.array([-1.0, 0.0], np.float32))  # a second answer to the same step does not count twice
    assert sim.version == 0
    b1.write(np.array([0.0, 1.0], np.float32))
    assert sim.version == 1
    # Robot 0 pushed +x (its first answer), robot 1 pushed +y.
    assert b0.read().obs[2] > 0 and b1.read().obs[3] > 0


def _trained_run(tmp_path):
    data = {"algo": "mappo", "seed": 2,
            "env": {"id": "robotrl/MultiPush-v0", "num_envs": 4, "kwargs": {"n_robots": 2}},
            "train": {"total_steps": 200, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 200},
            "mappo": {"n_steps": 50, "batch_size": 200, "n_epochs": 1}}
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data))
    Trainer(load_config(path), tmp_path / "run", show_progress=False).run()
    return tmp_path / "run"


@pytest.mark.slow  # two ONNX exports: minutes on this shared machine
def test_export_writes_one_checked_self_describing_actor_per_robot_and_deploy_runs_them(tmp_path):
    run = _trained_run(tmp_path)
    report = export_team(run)
    assert [f.split("/")[-1] for f in report["files"]] == ["policy_robot_0.onnx", "policy_robot_1.onnx"]
    assert report["parity_max_abs"] < 1e-5
    policy, _, _ = load_policy(run)
    obs = np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32)
    for i in range(2):
        session = ort.InferenceSession(str(run / f"policy_robot_{i}.onnx"), providers=["CPUExecutionProvider"])
        meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        assert meta["agent_index"] == i and meta["num_agents"] == 2 and meta["env_kwargs"] == {"n_robots": 2}
        assert meta["obs_dim"] == 12 and meta["control_hz"] == 20.0
        expected = policy.export_actor(i)(torch.as_tensor(obs)).detach().numpy()
        np.testing.assert_allclose(session.run(["action"], {"obs": obs})[0], expected, atol=1e-5)
    args = SimpleNamespace(policy=str(run / "policy_robot_0.onnx"), backend="sim", env=None, rate=200.0,
                           duration=1.0, provider="cpu", overrun="skip", safe_action="hold", max_rate=None,
                           watchdog_ms=1000.0, spin_us=0.0, seed=0, out=str(tmp_path / "deploy"))
    team = json.loads(ort.InferenceSession(args.policy, providers=["CPUExecutionProvider"]).get_modelmeta()
                      .custom_metadata_map[METADATA_KEY])
    summary, out_dir = deploy_team(args, team)
    assert len(summary["robots"]) == 2 and all(s["ticks"] > 0 for s in summary["robots"])
    assert (out_dir / "robot_1" / "ticks.npz").exists() and (out_dir / "summary.json").exists()
