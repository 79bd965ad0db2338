"""The differential-drive robot behind Gymnasium's API, single and batched."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

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
    n, seed = 4, 3
    ours = envs.make_vec("robotrl/DiffDrive-v0", n, goal_radius=[0.3, 0.6])
    ref = SyncVectorEnv([lambda: gym.make("robotrl/DiffDrive-v0", goal_radius=[0.3, 0.6]) for _ in range(n)],
                        autoreset_mode=AutoresetMode.SAME_STEP)
    o1, _ = ours.reset(seed=seed)
    o2, _ = ref.reset(seed=seed)
    np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    successes = 0
    for t in range(300):  # goals are near, so steered drives end in successes and autoresets
        a = steer_to_goal(o1) + rng.uniform(-3, 3, size=(n, 2)).astype(np.float32)
        o1, r1, te1, tr1, i1 = ours.step(a)
        o2, r2, te2, tr2, i2 = ref.step(a)
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-5, err_msg=f"step {t}")
        np.testing.assert_allclose(r1, r2, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        for i in np.flatnonzero(te1 | tr1):
            successes += int(i1["final_info"]["is_success"][i])
            np.testing.assert_allclose(i1["final_obs"][i], i2["final_obs"][i], rtol=1e-5, atol=1e-5)
            assert i1["final_info"]["is_success"][i] == i2["final_info"]["is_success"][i]
    assert successes >= 2 * n
    ours.close()
    ref.close()
