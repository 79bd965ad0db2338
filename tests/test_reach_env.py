"""Reach-v0 over a robot description: observation layout, success at the last step, limits, modes."""

import numpy as np
import pytest
from envcheck import check_env_apis, lockstep, uniform_actions

import envs
from envs.robots import load_robot
from envs.robots.drive import JointDrive

ID = "robotrl/Reach-v0"
TINY = {"robot": "tiny_arm"}


def test_passes_the_gymnasium_env_checker():
    check_env_apis(ID, sb3=False, **TINY)


def test_observation_layout_matches_hand_computed_forward_kinematics():
    env = envs.make(ID, **TINY)
    env.reset(seed=0)
    task = env.unwrapped.task
    sim = task.sim
    q = np.array([0.3, -0.4, 0.9])
    sim.qpos[0] = q
    sim.qvel[0] = (1.0, -2.0, 3.0)
    task.target[0] = (0.45, 0.05, 0.3)
    task.last_action[0] = (0.1, 0.2, 0.3)
    sim.forward()
    obs = task.observe()[0]
    # Shoulder 0.2 m up; links of 0.3 m pitched about y (x turns toward -z), all turned by the yaw about z.
    s, e, yaw = q[1], q[1] + q[2], q[0]
    reach = 0.3 * np.cos(s) + 0.3 * np.cos(e)
    ee = np.array([reach * np.cos(yaw), reach * np.sin(yaw), 0.2 - 0.3 * np.sin(s) - 0.3 * np.sin(e)])
    center = np.array([0.4, 0.0, 0.35])
    np.testing.assert_allclose(obs[0:3], q - (0.0, -0.5, 1.0), atol=1e-6)
    np.testing.assert_allclose(obs[3:6], 0.1 * np.array([1.0, -2.0, 3.0]), atol=1e-6)
    np.testing.assert_allclose(obs[6:9], ee - center, atol=1e-6)
    np.testing.assert_allclose(obs[9:12], np.array([0.45, 0.05, 0.3]) - center, atol=1e-6)
    np.testing.assert_allclose(obs[12:15], np.array([0.45, 0.05, 0.3]) - ee, atol=1e-6)
    np.testing.assert_allclose(obs[15:18], (0.1, 0.2, 0.3), atol=1e-6)
    env.close()


def test_targets_are_drawn_in_the_workspace_box():
    env = envs.make_vec(ID, 200, **TINY)
    env.reset(seed=0)
    offset = env.task.target - np.array([0.4, 0.0, 0.35])
    assert (np.abs(offset) <= (0.1, 0.15, 0.1)).all()
    assert (np.abs(offset).max(axis=0) > (0.09, 0.13, 0.09)).all()
    env.close()


@pytest.mark.parametrize("offset, success", [(0.009, True), (0.011, False)])
def test_success_is_within_1_cm_at_the_last_step(offset, success):
    env = envs.make(ID, **TINY, max_episode_steps=5, init_noise_joints=0.0)
    env.reset(seed=0)
    task = env.unwrapped.task
    for _ in range(4):  # zero actions: PD holds the default pose (gravity compensated), the hand stays put
        env.step(np.zeros(3, np.float32))
    task.target[0] = task.end_effector[0] + (0.0, 0.0, offset)
    _, _, _, truncated, info = env.step(np.zeros(3, np.float32))
    assert truncated
    assert info["distance"] == pytest.approx(offset, abs=2e-4)
    assert info["is_success"] == success
    env.close()


def test_position_targets_stay_inside_the_joint_limits():
    env = envs.make(ID, **TINY, action_scale=4.0)
    env.reset(seed=0)
    task = env.unwrapped.task
    task.apply_action(np.array([[1.0, -1.0, 1.0]]))
    np.testing.assert_allclose(task.joint_target[0], [2.5, -2.5, 2.5])  # 0 + 4, -0.5 - 4, 1 + 4 cut to +-2.5
    env.close()


def test_the_drive_cuts_torque_at_the_motor_speed_limit():
    robot = load_robot("tiny_arm")
    drive = JointDrive(robot, robot.model())
    torque = drive.limit(np.array([[10.0, 10.0, -10.0]]), np.array([[2.5, 6.0, 4.0]]))
    np.testing.assert_allclose(torque, [[5.0, 0.0, -10.0]])  # half speed: half torque; past the limit: none


def test_batched_env_matches_sync_vector_env_step_by_step():
    for ours, ref in lockstep(ID, 3, 5, 90, uniform_actions(3), obs_atol=1e-6, reward_atol=1e-8,
                              max_episode_steps=40, **TINY):
        np.testing.assert_array_equal(ours[3], ref[3])


def test_a_legged_robot_is_refused_with_its_file_and_kind():
    with pytest.raises(ValueError, match=r"tiny_quad/robot.yaml: kind: ReachTask runs 'arm' robots, got 'legged'"):
        envs.make(ID, robot="tiny_quad")


def test_orientation_targets_add_the_rotation_error_to_the_observation_and_to_success():
    env = envs.make(ID, **TINY, orientation=True, max_episode_steps=3, init_noise_joints=0.0)
    env.reset(seed=0)
    task = env.unwrapped.task
    assert task.obs_fields[-1] == ("orientation_error", 3) and task.obs_dim == 21
    env.step(np.zeros(3, np.float32))
    ee_rot = task.end_effector_rot[0].reshape(3, 3)
    turn = np.array([[np.cos(0.2), -np.sin(0.2), 0.0], [np.sin(0.2), np.cos(0.2), 0.0], [0.0, 0.0, 1.0]])
    task.target_rot[0] = turn @ ee_rot  # 0.2 rad about world z from where the hand points now
    task.target[0] = task.end_effector[0]
    np.testing.assert_allclose(task.observe()[0, -3:], [0.0, 0.0, 0.2], atol=1e-6)
    _, _, _, _, info = env.step(np.zeros(3, np.float32))
    assert info["distance"] < 0.01 and info["orientation_error"] == pytest.approx(0.2, abs=1e-3)
    assert not info["is_success"]  # in place, but 0.2 rad off (success_angle 0.1)
    task.target_rot[0] = task.end_effector_rot[0].reshape(3, 3)
    _, _, _, truncated, info = env.step(np.zeros(3, np.float32))
    assert truncated and info["is_success"]
    env.close()


def test_disc_targets_lie_area_uniform_in_the_inscribed_disc_at_the_centre_height():
    env = envs.make_vec(ID, 2000, **TINY, targets="disc")
    env.reset(seed=0)
    offset = env.task.target - np.array([0.4, 0.0, 0.35])
    radius = np.hypot(offset[:, 0], offset[:, 1])
    assert (offset[:, 2] == 0.0).all() and radius.max() <= 0.1  # min(0.1, 0.15) of the xy half extents
    # Area-uniform: a quarter of the targets within half the radius (not half, as uniform radii would give).
    assert np.mean(radius < 0.05) == pytest.approx(0.25, abs=0.03)
    env.close()


def test_a_planar_task_observes_and_measures_in_the_horizontal_plane():
    env = envs.make(ID, **TINY, planar=True, observation=["qvel", "fingertip_to_target"])
    env.reset(seed=0)
    task = env.unwrapped.task
    assert task.obs_fields == (("qvel", 3), ("fingertip_to_target", 2))
    _, _, _, _, info = env.step(np.zeros(3, np.float32))
    obs = task.observe()[0]
    ee = task.sim.bind("site_xpos")[0, 0]
    np.testing.assert_allclose(obs[3:], ee[:2] - task.target[0], atol=1e-6)
    assert info["distance"] == pytest.approx(np.linalg.norm(ee[:2] - task.target[0]))
    env.close()


def test_ideal_motors_hold_the_torque_command_and_export_no_speed_limit():
    env = envs.make(ID, **TINY, action_mode="torque", speed_limit=False)
    env.reset(seed=0)
    task = env.unwrapped.task
    env.step(np.array([0.5, -1.0, 0.25], np.float32))
    np.testing.assert_allclose(task.torque[0], [5.0, -10.0, 2.5])  # action x 10 N m, whatever the speed
    np.testing.assert_allclose(task.sim.ctrl[0] * task.drive.gear, [5.0, -10.0, 2.5])
    assert task.describe()["robot"]["velocity_limit"] is None
    env.close()


def test_unknown_observation_fields_and_target_shapes_are_errors():
    with pytest.raises(ValueError, match="Reach observation: unknown field 'elbow'"):
        envs.make(ID, **TINY, observation=["qvel", "elbow"])
    with pytest.raises(ValueError, match="orientation_error needs orientation: true"):
        envs.make(ID, **TINY, observation=["orientation_error"])
    with pytest.raises(ValueError, match=r"Reach targets: expected one of \['box', 'disc'\], got 'ball'"):
        envs.make(ID, **TINY, targets="ball")
