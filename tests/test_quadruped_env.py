"""The quadruped behind Gymnasium's API: PD and torque action modes, falls, batched vs single."""

import numpy as np
import pytest
from envcheck import assert_same_episode_ends, check_env_apis, lockstep, uniform_actions

import envs
from envs.robots import load_robot

QUADRUPED = load_robot("quadruped")
STAND = np.asarray(QUADRUPED.default_pose)
TORQUE_LIMIT = QUADRUPED.effort_limit[0]

FORWARD = {"command_vx": [0.5, 0.5], "command_vy": [0.0, 0.0], "command_yaw": [0.0, 0.0]}


@pytest.mark.parametrize("mode", ["pd", "torque"])
def test_quadruped_passes_gymnasium_and_sb3_env_checkers(mode):
    check_env_apis("robotrl/Quadruped-v0", action_mode=mode)


def test_twelve_joints_policy_at_50hz_pd_at_200hz_and_20s_episodes():
    env = envs.make("robotrl/Quadruped-v0")
    assert env.action_space.shape == (12,)
    assert env.unwrapped.sim.model.opt.timestep == pytest.approx(0.005)
    assert env.unwrapped.task.control_dt == pytest.approx(0.02)
    assert env.spec.max_episode_steps * env.unwrapped.task.control_dt == pytest.approx(20.0)
    env.close()


def test_zero_action_holds_the_standing_pose():
    env = envs.make("robotrl/Quadruped-v0", **FORWARD)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[9:12], [0.5, 0.0, 0.0])  # the command is observed
    for _ in range(100):
        obs, _, terminated, _, info = env.step(np.zeros(12, np.float32))
        assert not terminated
    assert obs[2] == pytest.approx(-1.0, abs=0.01)  # gravity straight down the torso's z axis
    assert np.abs(obs[12:24]).max() < 0.1  # joints near the stand targets
    assert info["velocity_error"] == pytest.approx(0.5, abs=0.05)  # standing still misses 0.5 m/s
    env.close()


@pytest.mark.parametrize("gain, tolerance", [(1.0, 0.07), (4.0, 0.02)])
def test_pd_mode_tracks_a_joint_target_to_within_load_over_kp(gain, tolerance):
    """A PD holding the knees against the body's weight (~2 N m each) settles load/kp short of target."""
    env = envs.make("robotrl/Quadruped-v0", actuator_gain_scale=[gain, gain])
    env.reset(seed=0)
    action = np.zeros(12, np.float32)
    action[[2, 5, 8, 11]] = 0.4  # every knee 0.2 rad straighter (action_scale 0.5)
    for _ in range(25):  # 0.5 s
        env.step(action)
    knees = env.unwrapped.sim.qpos[0, 7:][[2, 5, 8, 11]]
    assert np.all(knees - STAND[2] > 0.2 - tolerance)
    np.testing.assert_allclose(knees, STAND[2] + 0.2, atol=tolerance)
    env.close()


def test_torque_mode_applies_the_scaled_torque_and_a_limp_robot_falls():
    env = envs.make("robotrl/Quadruped-v0", action_mode="torque")
    env.reset(seed=0)
    action = np.full(12, 0.1, np.float32)
    env.step(action)
    force = env.unwrapped.sim.bind("actuator_force")[0]
    np.testing.assert_allclose(force, 0.1 * TORQUE_LIMIT, rtol=1e-6)
    steps, terminated = 0, False
    while not terminated and steps < 250:
        _, _, terminated, _, _ = env.step(np.zeros(12, np.float32))
        steps += 1
    assert terminated and steps < 100  # no torque: the legs fold within two seconds
    env.close()


def test_unknown_action_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 'pd' or 'torque', got 'velocity'"):
        envs.make("robotrl/Quadruped-v0", action_mode="velocity")


def test_batched_env_matches_sync_vector_env_step_by_step():
    n = 3
    dones = 0
    for ours, ref in lockstep("robotrl/Quadruped-v0", n, 2, 130, uniform_actions(12), obs_atol=1e-5,
                              reward_atol=1e-7, max_episode_steps=60):
        dones += len(assert_same_episode_ends(ours, ref, obs_atol=1e-5, success=False))
    assert dones >= 2 * n


def test_actuator_gain_randomization_scales_kp_and_kv_together():
    env = envs.make_vec("robotrl/Quadruped-v0", 4, actuator_gain_scale=[0.5, 1.5])
    env.reset(seed=0)
    gain = env.sim.batch.expanded("actuator_gainprm")[:, :, 0]
    bias = env.sim.batch.expanded("actuator_biasprm")
    kp, kv = env.sim.model.actuator_gainprm[0, 0], -env.sim.model.actuator_biasprm[0, 2]
    np.testing.assert_allclose(bias[:, :, 1], -gain)
    np.testing.assert_allclose(-bias[:, :, 2] / kv, gain / kp)
    env.close()


def test_a_number_fixes_the_command_and_a_bad_range_is_one_clear_error():
    env = envs.make("robotrl/Quadruped-v0", command_vx=0.5, command_vy=0, command_yaw=[-0.2, 0.2])
    try:
        for seed in range(3):
            env.reset(seed=seed)
            vx, vy, yaw = env.unwrapped.task.command[0]
            assert (vx, vy) == (0.5, 0.0) and -0.2 <= yaw <= 0.2
    finally:
        env.close()
    for bad in ([1.0, 0.0], [0.1, 0.2, 0.3], "fast"):
        with pytest.raises(ValueError, match=r"Quadruped command_vx: expected \[low, high\] with low <= high"):
            envs.make("robotrl/Quadruped-v0", command_vx=bad)
