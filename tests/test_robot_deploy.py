"""Every shipped robot's exported policy tells a driver what its actions mean, and runs on the sim backend."""

import json

import pytest
import yaml

from deploy.metadata import parse_spec
from deploy.policy import OnnxPolicy
from envs.robots import load_robot, shipped_robots
from robotrl.cli import main

ROBOTS = [("robotrl/Quadruped-v0", None)] + [
    ("robotrl/Locomotion-v0" if load_robot(name).kind == "legged" else "robotrl/Reach-v0", name)
    for name in shipped_robots()]


def _export(env_id: str, robot: str | None, root) -> str:
    """A barely trained PPO policy (a few hundred steps: the file's contents matter here, not its skill)."""
    from robotrl.config import load_config
    from robotrl.export.policy import export_policy
    from robotrl.train.trainer import Trainer

    kwargs = {"max_episode_steps": 50, **({"robot": robot} if robot else {})}  # short evaluation episodes
    data = {"algo": "ppo", "seed": 0, "env": {"id": env_id, "num_envs": 2, "kwargs": kwargs},
            "train": {"total_steps": 128, "eval_every": 0, "eval_episodes": 1, "final_eval_episodes": 1,
                      "checkpoint_every": 128},
            "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}}
    (root / "run.yaml").write_text(yaml.safe_dump(data))
    Trainer(load_config(root / "run.yaml"), root / "run", show_progress=False).run()
    return export_policy(root / "run")["out"]


@pytest.mark.parametrize("env_id, robot", ROBOTS, ids=[r or "quadruped" for _, r in ROBOTS])
def test_exported_policy_names_its_joints_and_runs_on_the_sim_backend(env_id, robot, tmp_path, capsys):
    path = _export(env_id, robot, tmp_path)
    spec = OnnxPolicy(path).spec
    assert spec.action_mode == "position"
    joints = spec.robot["joints"]
    if robot is not None:
        description = load_robot(robot)
        assert joints == list(description.joints)  # action order = the description's joint order
        assert spec.robot["effort_limit"] == list(description.effort_limit)
        assert spec.pd["kp"] == list(description.kp) and spec.pd["default_pose"] == list(description.default_pose)
        assert spec.env_kwargs()["robot"] == robot
    else:
        assert joints[:3] == ["fl_abduct", "fl_hip", "fl_knee"] and spec.pd["kp"] == [40.0] * 12
    assert spec.pd["action_scale"] > 0 and len(spec.pd["default_pose"]) == spec.act_dim
    assert [u[0] for u in spec.obs_units] == [name for name, _ in spec.obs_fields]
    rc = main(["deploy", str(path), "--backend", "sim", "--rate", "100", "--duration", "0.5", "--out",
               str(tmp_path / "deploy"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["ticks"] + summary["skipped"] == 50


def test_a_robot_entry_with_the_wrong_joint_count_is_refused():
    data = {"format_version": 1, "env_id": "x", "algo": "ppo", "train_steps": 1, "obs_dim": 2, "act_dim": 2,
            "obs_fields": [["a", 2]], "action_low": [-1, -1], "action_high": [1, 1], "action_mode": "torque",
            "control_hz": 50, "decimation": 1, "input": "obs", "output": "action",
            "robot": {"joints": ["j1"], "default_pose": [0, 0], "kp": [0, 0], "kd": [0, 0], "effort_limit": [1, 1],
                      "action": {"kind": "torque", "scale": [1, 1]}}}
    with pytest.raises(ValueError, match=r"p.onnx: metadata robot.joints: expected 2 joint names, got \['j1'\]"):
        parse_spec(json.dumps(data), "p.onnx")
    data["robot"]["joints"] = ["j1", "j2"]
    data["obs_units"] = [["b", "m", 1.0]]
    with pytest.raises(ValueError, match=r"p.onnx: metadata obs_units: expected \[name, units, scale\] for each"):
        parse_spec(json.dumps(data), "p.onnx")
