"""The Reacher robot behind Gymnasium's API, single and batched."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import envs


def test_reacher_passes_gymnasium_env_checker():
    env = envs.make("robotrl/Reacher-v0")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_reacher_passes_sb3_env_checker():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = envs.make("robotrl/Reacher-v0")
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


def test_reacher_episode_is_200_steps_at_50hz_and_reports_success():
    env = envs.make("robotrl/Reacher-v0")
    assert env.unwrapped.task.control_dt == pytest.approx(0.02)
    env.reset(seed=0)
    for t in range(200):
        _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
        assert not terminated
        assert truncated == (t == 199)
        assert reward == pytest.approx(-info["distance"])
        assert info["is_success"] == (info["distance"] < 0.02)
    env.close()


def test_fingertip_to_target_observation_matches_reward_distance():
    env = envs.make("robotrl/Reacher-v0")
    env.reset(seed=3)
    obs, _, _, _, info = env.step(np.array([0.3, -0.2], np.float32))
    assert np.linalg.norm(obs[6:8]) == pytest.approx(info["distance"], rel=1e-5)
    assert obs[0] ** 2 + obs[2] ** 2 == pytest.approx(1.0, rel=1e-5)  # cos^2 + sin^2 of the shoulder
    env.close()


def test_torque_moves_the_arm():
    env = envs.make("robotrl/Reacher-v0")
    env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(np.array([1.0, 0.0], np.float32))
    assert obs[4] > 1.0  # the shoulder spins up in the commanded direction
    env.close()


def test_batched_env_matches_sync_vector_env_step_by_step():
    n, seed = 4, 7
    ours = envs.make_vec("robotrl/Reacher-v0", n)
    ref = SyncVectorEnv([lambda: gym.make("robotrl/Reacher-v0") for _ in range(n)],
                        autoreset_mode=AutoresetMode.SAME_STEP)
    o1, _ = ours.reset(seed=seed)
    o2, _ = ref.reset(seed=seed)
    np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    for t in range(450):  # crosses two autoresets
        a = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        o1, r1, te1, tr1, i1 = ours.step(a)
        o2, r2, te2, tr2, i2 = ref.step(a)
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
        np.testing.assert_allclose(r1, r2, rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        if tr1.any():
            for i in np.flatnonzero(tr1):
                np.testing.assert_allclose(i1["final_obs"][i], i2["final_obs"][i], rtol=1e-5, atol=1e-6)
                assert i1["final_info"]["is_success"][i] == i2["final_info"]["is_success"][i]
    ours.close()
    ref.close()


def test_same_seed_same_targets():
    a = envs.make_vec("robotrl/Reacher-v0", 3)
    b = envs.make_vec("robotrl/Reacher-v0", 3)
    np.testing.assert_array_equal(a.reset(seed=5)[0], b.reset(seed=5)[0])
    assert not np.allclose(a.reset(seed=6)[0], b.reset(seed=5)[0])


def test_gymnasium_ids_work_through_make_vec():
    env = envs.make_vec("InvertedPendulum-v5", 2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    env.close()


def test_unknown_env_id_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown env id 'robotrl/Nope-v0'"):
        envs.make("robotrl/Nope-v0")
