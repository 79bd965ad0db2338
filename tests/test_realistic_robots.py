"""The two realistic robots (envs/robots/go12, envs/robots/arm7) against the figures they follow.

Each check reads the robot through its description, as the tasks do, and simulates it with a PD loop
written here (torques cut to the motors' torque-speed line), so a model edit that breaks standing,
holding or the published figures fails here before any training run.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from envs.robots import load_robot
from envs.robots.check import check_robot
from robotrl.config import load_config
from robotrl.train.trainer import Trainer

PUBLISHED_MASS = {"go12": 12.7, "arm7": 18.0}
"""kg: Go1's published link masses sum to 12.74 kg; the Panda arm with its hand weighs about 18 kg."""


def _setup(name: str) -> tuple:
    robot = load_robot(name)
    model = robot.model()
    data = mujoco.MjData(model)
    joints = [model.joint(j).id for j in robot.joints]
    qadr, dadr = model.jnt_qposadr[joints], model.jnt_dofadr[joints]
    act = np.array([model.actuator(a).id for a in robot.actuators])
    return robot, model, data, qadr, dadr, act


def _pd_torque(robot, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    """PD toward the default pose, cut to effort_limit and to the linear torque-speed line."""
    tau = np.asarray(robot.kp) * (np.asarray(robot.default_pose) - q) - np.asarray(robot.kd) * qd
    effort, vmax = np.asarray(robot.effort_limit), np.asarray(robot.velocity_limit)
    driving = effort * np.clip(1.0 - np.abs(qd) / vmax, 0.0, 1.0)
    bound = np.where(tau * qd > 0.0, driving, effort)
    return np.clip(tau, -bound, bound)


@pytest.mark.parametrize("name", ["go12", "arm7"])
def test_total_mass_is_within_10_percent_of_the_published_figure(name):
    robot = load_robot(name)
    mass = robot.model().body_subtreemass[0]
    assert robot.mass == PUBLISHED_MASS[name]
    assert abs(mass - PUBLISHED_MASS[name]) <= 0.10 * PUBLISHED_MASS[name], mass


def test_go12_stands_on_its_feet_under_pd_for_2_seconds():
    robot, model, data, qadr, dadr, act = _setup("go12")
    data.qpos[:7] = (0.0, 0.0, robot.legged.base_height, 1.0, 0.0, 0.0, 0.0)
    data.qpos[qadr] = robot.default_pose
    trunk = model.body(robot.legged.base).id
    feet = {model.geom(f).id for f in robot.legged.feet}
    floor = model.geom("floor").id
    heights = []
    for _ in range(round(2.0 / model.opt.timestep)):
        data.ctrl[act] = _pd_torque(robot, data.qpos[qadr], data.qvel[dadr])
        mujoco.mj_step(model, data)
        heights.append(data.xpos[trunk, 2])
    last_second = np.array(heights[len(heights) // 2:])
    assert last_second.min() > 0.8 * robot.legged.base_height
    assert np.ptp(last_second) < 0.003  # settled: the base moves less than 3 mm in the last second
    assert data.xmat[trunk, 8] > 0.99  # upright within about 8 degrees
    touching = {g for c in data.contact[:data.ncon] for g in (c.geom1, c.geom2)} - {floor}
    assert touching == feet  # it stands on its four feet and on nothing else


def test_arm7_holds_its_ready_pose_and_gravity_is_compensated_in_the_model():
    robot, model, data, qadr, dadr, act = _setup("arm7")
    data.qpos[qadr] = robot.default_pose
    for _ in range(round(2.0 / model.opt.timestep)):
        data.ctrl[act] = _pd_torque(robot, data.qpos[qadr], data.qvel[dadr])
        mujoco.mj_step(model, data)
    assert np.abs(data.qpos[qadr] - robot.default_pose).max() < 1e-3
    # With zero motor torque the arm floats (gravity compensated); without the compensation it falls.
    for gravcomp, moves in ((1.0, False), (0.0, True)):
        model.body_gravcomp[1:] = gravcomp
        mujoco.mj_resetData(model, data)
        data.qpos[qadr] = robot.default_pose
        for _ in range(round(1.0 / model.opt.timestep)):
            mujoco.mj_step(model, data)
        assert (np.abs(data.qpos[qadr] - robot.default_pose).max() > 0.1) == moves


@pytest.mark.parametrize("name", ["go12", "arm7"])
def test_joint_limits_motor_limits_armature_damping_and_friction_are_all_set(name):
    robot, model, _, _, dadr, act = _setup(name)
    joints = [model.joint(j).id for j in robot.joints]
    assert model.jnt_limited[joints].all()
    assert (model.dof_armature[dadr] > 0).all()
    assert (model.dof_damping[dadr] > 0).all()
    assert (model.dof_frictionloss[dadr] > 0).all()
    assert int(model.opt.integrator) == int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST)
    np.testing.assert_allclose(model.actuator_forcerange[act, 1], robot.effort_limit)
    np.testing.assert_allclose(model.actuator_ctrlrange[act, 1], robot.effort_limit)
    assert (np.asarray(robot.velocity_limit) > 0).all()
    for j, (low, high) in zip(robot.joints, model.jnt_range[joints], strict=True):
        assert low < robot.default_pose[robot.joints.index(j)] < high


def test_go12_feet_are_rubber_spheres_and_every_link_can_hit_the_floor():
    robot, model, *_ = _setup("go12")
    floor = model.geom("floor").id
    for foot in robot.legged.feet:
        g = model.geom(foot).id
        assert int(model.geom_type[g]) == int(mujoco.mjtGeom.mjGEOM_SPHERE)
        assert model.geom_friction[g, 0] >= 0.8
    moving = [g for g in range(model.ngeom) if model.geom_bodyid[g] != 0
              and (model.geom_contype[g] & model.geom_conaffinity[floor])]
    bodies = {model.body(model.geom_bodyid[g]).name for g in moving}
    assert bodies == {b for b in (model.body(i).name for i in range(1, model.nbody))}


def test_arm7_end_effector_starts_near_the_panda_ready_pose_point_and_reaches_the_workspace():
    robot, model, data, qadr, *_ = _setup("arm7")
    data.qpos[qadr] = robot.default_pose
    mujoco.mj_kinematics(model, data)
    # The Panda's ready pose puts the tool centre point at about (0.307, 0, 0.487) m.
    np.testing.assert_allclose(data.site(robot.arm.end_effector).xpos, [0.307, 0.0, 0.487], atol=0.005)
    reach = 0.316 + np.hypot(0.0825, 0.384) + 0.088 + 0.107 + 0.1034  # shoulder to tool, arm stretched
    far = np.asarray(robot.arm.center) + np.asarray(robot.arm.half_extent) * (1, 1, -1)
    shoulder = np.array([0.0, 0.0, 0.333])
    assert np.linalg.norm(far - shoulder) < reach - 0.2  # the farthest target is well inside the reach


@pytest.mark.parametrize("name", ["go12", "arm7"])
def test_robot_check_accepts_the_shipped_description(name):
    result = check_robot(load_robot(name))
    assert result["ok"]


@pytest.mark.parametrize("config", ["arm_reach_ppo", "legged_flat_ppo", "legged_flat_dr_ppo", "legged_rough_ppo"])
def test_realistic_robot_configs_load_and_name_their_robot(config):
    cfg = load_config(f"launch/{config}.yaml")
    assert cfg.env.kwargs["robot"] == ("arm7" if config.startswith("arm") else "go12")


@pytest.mark.slow
def test_arm_reach_ppo_reaches_95_percent_success_within_30_minutes(tmp_path):
    result = Trainer(load_config("launch/arm_reach_ppo.yaml"), tmp_path / "run", show_progress=False).run()
    assert result.eval["episodes"] == 100
    assert result.eval["success_rate"] >= 0.95
    assert result.wall_s < 1800


@pytest.mark.slow
def test_legged_flat_ppo_tracks_commands_under_pushes_within_an_hour(tmp_path):
    # Issue 20's figure: 20 episodes of 20 s with pushes, velocity error <= 0.15 m/s, no fall in >= 95% of
    # them. Seeds 0/1/2 measured 0.078 / 0.070 / 0.089 m/s with no fall, in 19-27 min on a loaded 2-core
    # machine (go12's README).
    result = Trainer(load_config("launch/legged_flat_ppo.yaml"), tmp_path / "run", show_progress=False).run()
    assert result.eval["episodes"] == 20 and result.eval["length_mean"] > 0
    assert result.eval["info_means"]["velocity_error"] <= 0.15
    assert result.eval["terminated"] <= 1  # at most 1 of 20 falls
    assert result.wall_s < 3600


@pytest.mark.slow
def test_legged_rough_ppo_walks_on_rough_ground_within_3m_steps(tmp_path):
    # Issue 20's rough-terrain figure is reported, not gated; this holds what was measured: seed 0 at 3.5M
    # steps (56 min on a loaded 2-core machine), 20 episodes of 20 s with pushes on 5 cm roughness over the
    # whole field (no curriculum band), velocity error 0.105 m/s and no fall. The old reward stood still
    # (0.66 m/s) at 1.25M steps. The bar leaves room for seeds not measured.
    import dataclasses

    import torch

    from robotrl.train.trainer import evaluate_policy, load_policy

    cfg = load_config("launch/legged_rough_ppo.yaml", ["train.total_steps=3000000"])
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.wall_s < 3 * 3600
    policy, run_cfg, _ = load_policy(tmp_path / "run")
    terrain = {**run_cfg.env.kwargs["terrain"], "curriculum": False}
    hard = dataclasses.replace(run_cfg, env=dataclasses.replace(run_cfg.env, kwargs={**run_cfg.env.kwargs,
                                                                                     "terrain": terrain}))
    rough = evaluate_policy(policy, hard, 20, 123_456, torch.device("cpu"))
    assert rough["info_means"]["velocity_error"] <= 0.2
    assert rough["terminated"] <= 2  # at most 2 of 20 falls
