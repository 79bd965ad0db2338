"""Pixel observations: shape, dtype, the frame stack's order, reset fill, final frames of a vector env."""

import numpy as np

import envs


def test_stack_holds_the_last_frames_oldest_first():
    env = envs.make("robotrl/CartPole-v0", pixels={"size": 84, "stack": 4, "camera": "side"}, discretize_actions=2)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert all(np.array_equal(obs[0], f) for f in obs)  # after reset: copies of the first frame
        assert obs.max() > 60  # the scene is lit: not a black image
        history = [obs[-1]]
        for _ in range(5):
            obs, *_ = env.step(1)
            history.append(obs[-1])
        assert all(np.array_equal(obs[k], history[-4 + k]) for k in range(4))
        assert not np.array_equal(history[0], history[-1])  # the cart moved
    finally:
        env.close()


def test_vector_pixel_env_returns_final_frames_for_bootstrapping():
    env = envs.make_vec("robotrl/CartPole-v0", 2, pixels={"size": 32, "stack": 2, "camera": "side"},
                        discretize_actions=2)
    try:
        assert env.single_observation_space.shape == (2, 32, 32)
        obs, _ = env.reset(seed=1)
        for _ in range(300):
            obs, _, terminated, _, info = env.step(np.ones(2, dtype=np.int64))
            if terminated.any():
                i = int(np.flatnonzero(terminated)[0])
                final = info["final_obs"][i]
                assert final.shape == (2, 32, 32) and final.dtype == np.uint8
                assert np.array_equal(obs[i][0], obs[i][1])  # the reset observation is a fresh stack
                assert not np.array_equal(final[1], obs[i][1])  # the final frame shows the fallen pole
                return
        raise AssertionError("pushing one way for 300 steps should end an episode")
    finally:
        env.close()
