"""The batched HalfCheetah-v5 (mujoco.batch) agrees with Gymnasium's own env, step by step."""

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import envs
from envs.vector import BatchedVectorEnv


def test_batched_half_cheetah_matches_gymnasium_through_an_autoreset():
    n, steps, limit, seed = 3, 60, 25, 7
    ours = envs.make_vec("HalfCheetah-v5", n, max_episode_steps=limit)
    assert isinstance(ours, BatchedVectorEnv)
    ref = gym.make_vec("HalfCheetah-v5", num_envs=n, vectorization_mode="sync", max_episode_steps=limit,
                       vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    obs, _ = ours.reset(seed=seed)
    ref_obs, _ = ref.reset(seed=seed)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    truncations = 0
    for _ in range(steps):
        # Actions beyond the ctrlrange too: MuJoCo clamps the control, the cost sees the raw action.
        action = rng.uniform(-1.2, 1.2, size=(n, 6)).astype(np.float32)
        obs, reward, terminated, truncated, info = ours.step(action)
        ref_obs, ref_reward, ref_terminated, ref_truncated, ref_info = ref.step(action)
        np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(reward, ref_reward, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(terminated, ref_terminated)
        np.testing.assert_array_equal(truncated, ref_truncated)
        if not truncated.any():  # at a reset step Gymnasium's info holds the reset info instead
            np.testing.assert_allclose(info["x_velocity"], ref_info["x_velocity"], rtol=1e-6, atol=1e-6)
        else:
            truncations += int(truncated.sum())
            for i in np.flatnonzero(truncated):
                np.testing.assert_allclose(info["final_obs"][i], ref_info["final_obs"][i], rtol=1e-5, atol=1e-5)
    assert truncations == n * (steps // limit)
    ours.close()
    ref.close()
