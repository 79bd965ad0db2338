"""The Reacher robot behind Gymnasium's API, single and batched."""

import numpy as np
import pytest
from envcheck import assert_same_episode_ends, check_env_apis, lockstep, uniform_actions
from gymnasium.vector import AutoresetMode

import envs


def test_reacher_passes_gymnasium_and_sb3_env_checkers():
    check_env_apis("robotrl/Reacher-v0")


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
    # 450 steps cross two autoresets
    for ours, ref in lockstep("robotrl/Reacher-v0", 4, 7, 450, uniform_actions(2), obs_atol=1e-6, reward_atol=1e-8):
        assert_same_episode_ends(ours, ref, obs_atol=1e-6)


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
