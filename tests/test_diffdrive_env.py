"""The differential-drive robot behind Gymnasium's API, single and batched."""

import numpy as np
import pytest
from envcheck import assert_same_episode_ends, lockstep

import envs


def steer_to_goal(obs: np.ndarray) -> np.ndarray:
    """Drive forward and turn toward the goal's bearing in the body frame."""
    bearing = np.arctan2(obs[..., 1], obs[..., 0])
    return np.clip(np.stack([10 - 8 * bearing, 10 + 8 * bearing], axis=-1), -20, 20).astype(np.float32)


def test_equal_wheel_speeds_drive_straight_at_wheel_radius_times_speed():
    env = envs.make("robotrl/DiffDrive-v0")
    env.reset(seed=0)
    start = env.unwrapped.sim.qpos[0, :2].copy()
    for _ in range(40):  # 2 s at 20 Hz
        obs, *_ = env.step(np.array([10.0, 10.0], np.float32))
    assert obs[3] == pytest.approx(10 * 0.05, rel=0.05)  # forward speed = omega * r
    assert abs(obs[4]) < 0.01 and abs(obs[5]) < 0.05  # no sideways slip, no turning
    assert np.linalg.norm(env.unwrapped.sim.qpos[0, :2] - start) == pytest.approx(0.95, abs=0.08)
    env.close()


def test_opposite_wheel_speeds_turn_left_in_place():
    env = envs.make("robotrl/DiffDrive-v0")
    env.reset(seed=0)
    for _ in range(20):
        obs, *_ = env.step(np.array([-10.0, 10.0], np.float32))
    # yaw rate = (v_r - v_l) / track = 2 * 10 * 0.05 / 0.24
    assert obs[5] == pytest.approx(2 * 10 * 0.05 / 0.24, rel=0.1)
    assert abs(obs[3]) < 0.05
    env.close()


def test_steering_toward_the_goal_succeeds_and_ends_the_episode_within_10_cm():
    env = envs.make("robotrl/DiffDrive-v0")
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        total = 0.0
        for _ in range(200):
            obs, reward, terminated, truncated, info = env.step(steer_to_goal(obs))
            total += reward
            if terminated or truncated:
                break
        assert terminated and info["is_success"] and info["distance"] < 0.1
        assert total > 10.0  # arrival bonus plus the progress made
    env.close()


def test_goals_lie_in_the_configured_annulus():
    env = envs.make_vec("robotrl/DiffDrive-v0", 64, goal_radius=[1.0, 1.5])
    obs, _ = env.reset(seed=0)
    assert np.all((obs[:, 2] >= 1.0 - 1e-6) & (obs[:, 2] <= 1.5 + 1e-6))
    env.close()


def test_batched_env_matches_sync_vector_env_step_by_step():
    n = 4
    successes = 0

    def steered(obs, rng):  # goals are near, so steered drives end in successes and autoresets
        return steer_to_goal(obs) + rng.uniform(-3, 3, size=(n, 2)).astype(np.float32)

    for ours, ref in lockstep("robotrl/DiffDrive-v0", n, 3, 300, steered, obs_atol=1e-5, reward_atol=1e-7,
                              goal_radius=[0.3, 0.6]):
        for i in assert_same_episode_ends(ours, ref, obs_atol=1e-5):
            successes += int(ours[4]["final_info"]["is_success"][i])
    assert successes >= 2 * n


def test_the_final_info_keeps_the_distance_of_the_episode_that_ended():
    """The vector env resets an ended episode in the same step: its final `distance` (what eval's
    info_means.distance averages) must be the arrival's, not the next episode's start distance."""
    env = envs.make_vec("robotrl/DiffDrive-v0", 8, max_episode_steps=1)
    obs, _ = env.reset(seed=0)
    before = obs[:, 2].copy()  # the distance to the goal, observed
    _, _, _, truncated, info = env.step(np.zeros((8, 2), np.float32))
    env.close()
    assert truncated.all()
    # One step at rest moves the robot by far less than the annulus of start distances spreads goals.
    assert np.abs(info["final_info"]["distance"] - before).max() < 1e-2


def test_the_metadata_scales_each_field_as_the_observation_does():
    # A robot's driver builds the observation from the exported metadata alone: the wheel speeds are divided
    # by 20 in the observation, and the metadata says so (it said nothing, and a driver sent raw rad/s).
    from envs.describe import describe_env

    units = {name: scale for name, _, scale in describe_env("robotrl/DiffDrive-v0")["obs_units"]}
    assert list(units) == ["goal_in_body", "goal_distance", "body_velocity", "yaw_rate", "wheel_velocity"]
    env = envs.make("robotrl/DiffDrive-v0")
    env.reset(seed=0)
    for _ in range(20):
        obs, *_ = env.step(np.array([16.0, -12.0], np.float32))
    wheels = env.unwrapped.sim.qvel[0, 6:8]
    assert np.abs(wheels).min() > 5  # spinning, so a missing scale shows
    np.testing.assert_allclose(obs[-2:], units["wheel_velocity"] * wheels, rtol=1e-5)
    np.testing.assert_allclose(obs[2], units["goal_distance"] * np.linalg.norm(obs[:2]), rtol=1e-5)
    env.close()
