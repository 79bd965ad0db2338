"""Decentralized execution: one ONNX actor per robot, lock-step runners on a shared MultiPush simulation."""

import json
import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from onnx import TensorProto, helper

import envs
from deploy.metadata import METADATA_KEY
from deploy.timing import now_ns
from policies.export import INPUT_NAME, OUTPUT_NAME, set_description
from robotrl.cli import build_parser, main
from robotrl.config import load_config
from robotrl.export.team import TEAM_FILE, RobotBackend, TeamSim, deploy_team, export_team, robot_description
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


def test_a_team_observation_counts_from_its_read_not_from_the_step():
    # The team stepped a second ago (a teammate answered late): in lock-step the world waited for the commands,
    # so the observation is not stale, and a runner's watchdog (which refuses observations older than it when
    # read) must not see it as one.
    sim = TeamSim(envs.make_multi("robotrl/MultiPush-v0", n_robots=2), seed=0)
    sim.stamp -= 1_000_000_000
    before = now_ns()
    assert RobotBackend(sim, "robot_0").read().received_ns >= before


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
    args = build_parser().parse_args(["deploy", str(run / "policy_robot_0.onnx"), "--backend", "sim", "--rate", "200",
                                      "--duration", "1", "--safe-action", "hold", "--watchdog-ms", "1000",
                                      "--spin-us", "0", "--out", str(tmp_path / "deploy")])
    team = json.loads(ort.InferenceSession(args.policy, providers=["CPUExecutionProvider"]).get_modelmeta()
                      .custom_metadata_map[METADATA_KEY])
    summary, out_dir = deploy_team(args, team)
    assert len(summary["robots"]) == 2 and all(s["ticks"] > 0 for s in summary["robots"])
    assert (out_dir / "robot_1" / "ticks.npz").exists() and (out_dir / "summary.json").exists()


def _linear_team(folder, env_id="robotrl/MultiPush-v0", n_robots=2):
    """One small linear ONNX actor per robot with the metadata export_team writes (no training, no torch
    export): enough for the runners, whose settings are under test, not the actors."""
    env = envs.make_multi(env_id, n_robots=n_robots)
    files = [TEAM_FILE.format(i) for i in range(n_robots)]
    try:
        for i, agent in enumerate(env.possible_agents):
            described = robot_description(env, agent)
            obs_dim, act_dim = described["obs_dim"], described["act_dim"]
            weight = helper.make_tensor("w", TensorProto.FLOAT, [obs_dim, act_dim], [0.01] * (obs_dim * act_dim))
            graph = helper.make_graph(
                [helper.make_node("MatMul", [INPUT_NAME, "w"], [OUTPUT_NAME])], "actor",
                [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", obs_dim])],
                [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", act_dim])], [weight])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            model.ir_version = 8
            description = {**described, "env_id": env_id, "env_kwargs": {"n_robots": n_robots}, "algo": "mappo",
                           "train_steps": 0, "source": "test", "quantized": None, "agent": agent,
                           "agent_index": i, "num_agents": n_robots, "team_files": files}
            set_description(model, description)
            onnx.save(model, folder / files[i])
    finally:
        env.close()
    return folder / files[0], description


def test_team_deploy_gives_every_runner_the_start_safety_loop_and_realtime_flags(tmp_path, capsys):
    policy, team = _linear_team(tmp_path)
    cpu = max(os.sched_getaffinity(0))
    args = build_parser().parse_args([
        # 20 Hz: with --overrun stop, a 10 ms period ended this run early on a loaded 2-core machine.
        "deploy", str(policy), "--backend", "sim", "--rate", "20", "--duration", "0.3", "--passive-s", "0.05",
        "--ramp-s", "0.05", "--spin-us", "150", "--no-prewarm", "--keep-gc", "--cpu", str(cpu), "--no-mlock",
        "--no-dma-latency", "--rt-priority", "0", "--watchdog-ms", "500", "--safe-action", "zero",
        "--max-rate", "40", "--overrun", "stop", "--out", str(tmp_path / "out")])
    summary, _ = deploy_team(args, team)
    assert len(summary["robots"]) == 2
    for s in summary["robots"]:
        # The defaults (passive 0.5 s, ramp 2 s) would keep a 0.3 s run passive throughout.
        assert s["states"]["transitions"].get("passive->ramp") == 1
        assert s["states"]["transitions"].get("ramp->policy") == 1
        assert s["settings"] == {"spin_us": 150.0, "prewarm": False, "overrun": "stop", "watchdog_ms": 500.0,
                                 "max_rate": 40.0, "passive_s": 0.05, "ramp_s": 0.05}
        assert s["safe_command"] == "zero"
        assert s["realtime"]["cpu"] == cpu and s["realtime"]["priority"] is None
        assert s["realtime"]["gc"] == "enabled"
    # Each transition is printed to stderr as it happens, with its robot's name, like a single runner's.
    printed = capsys.readouterr().err.splitlines()
    for agent in ("robot_0", "robot_1"):
        mine = [line for line in printed if line.startswith(f"deploy: {agent}: tick ")]
        assert [line.split()[4] for line in mine] == ["passive->ramp", "ramp->policy", "policy->safe"], printed


@pytest.mark.parametrize("flags, message", [
    (["--passive-s", "-1"], "--passive-s"), (["--ramp-s", "nan"], "--ramp-s"), (["--spin-us", "-5"], "--spin-us"),
    (["--cpu", "4096"], "--cpu")])
def test_team_deploy_refuses_a_bad_flag_naming_it_before_any_robot_starts(tmp_path, flags, message):
    policy, team = _linear_team(tmp_path)
    args = build_parser().parse_args(["deploy", str(policy), "--backend", "sim", "--duration", "0.1", *flags])
    with pytest.raises(ValueError, match=message):
        deploy_team(args, team)


@pytest.mark.parametrize("fault", ["missing teammate", "team of three"])
def test_a_team_that_cannot_start_leaves_no_output_folder(tmp_path, fault):
    """Deploying robot 0's file loads robot 1's too: a missing one, or a simulation whose robots do not match the
    files (three robots for two files), left an empty records folder behind."""
    policy, team = _linear_team(tmp_path)
    if fault == "missing teammate":
        (tmp_path / team["team_files"][1]).unlink()
        message = team["team_files"][1]
    else:
        team = {**team, "env_kwargs": {"n_robots": 3}}
        message = "policy expects 12 observations, robot sends 14"
    args = build_parser().parse_args(["deploy", str(policy), "--backend", "sim", "--duration", "0.1",
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(Exception, match=message):
        deploy_team(args, team)
    assert not (tmp_path / "out").exists()


def test_a_runner_that_fails_stops_the_team_and_its_error_reaches_the_caller(tmp_path, monkeypatch):
    """A runner thread's error used to surface as "'NoneType' object is not subscriptable" from the summary,
    the cause only in a thread traceback, while the other robots ran on to the end of the duration."""
    from deploy.runner import Runner

    policy, team = _linear_team(tmp_path)
    original = Runner.run

    def run(self):
        if self.states._prefix.startswith("robot_1"):
            raise OSError("the robot's link went away")
        return original(self)

    monkeypatch.setattr(Runner, "run", run)
    args = build_parser().parse_args(["deploy", str(policy), "--backend", "sim", "--rate", "20", "--duration", "30",
                                      "--out", str(tmp_path / "out")])
    started = time.monotonic()
    with pytest.raises(OSError, match="the robot's link went away"):
        deploy_team(args, team)
    assert time.monotonic() - started < 20  # robot_0 stopped with it, not at the end of the 30 s


def test_deploy_refuses_an_output_folder_it_cannot_write_before_any_robot_starts(tmp_path, monkeypatch):
    """The records are written after the run: a folder that cannot take them lost the whole run's records."""
    from deploy.runner import Runner

    policy, team = _linear_team(tmp_path)
    blocked = tmp_path / "a-file"  # a file where the output folder's parent should be (root ignores modes)
    blocked.write_text("")
    monkeypatch.setattr(Runner, "run", lambda self: pytest.fail("a robot started"))
    args = build_parser().parse_args(["deploy", str(policy), "--backend", "sim", "--duration", "0.1",
                                      "--out", str(blocked / "out")])
    with pytest.raises(OSError, match=rf"--out {blocked}/out: cannot write the run's records there"):
        deploy_team(args, team)


@pytest.mark.parametrize("flags", [["--sim-to-sim"], ["--video", "team.mp4"]])
def test_a_teams_policy_with_a_single_robot_playback_flag_is_refused_naming_the_flag(tmp_path, capsys, flags):
    # gym.make knows no multi-robot id: these flags said "Environment MultiPush doesn't exist" for an env
    # that `robotrl envs` lists.
    policy, _ = _linear_team(tmp_path)
    assert main(["eval", str(policy), *flags]) == 1
    err = capsys.readouterr().err
    assert f"{flags[0]}: robotrl/MultiPush-v0 is a multi-robot env" in err, err
