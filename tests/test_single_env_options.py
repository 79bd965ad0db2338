"""A training config's env options also build the single env that eval --video, the viewer, export and SB3's
side step: the batch's thread count is not the task's, and a changed time limit judges success there too."""

from __future__ import annotations

import numpy as np

import envs
from envs.describe import describe_env


def test_the_batchs_thread_count_builds_single_envs_too():
    env = envs.make("robotrl/CartPole-v0", nthread=1)
    env.reset(seed=0)
    env.close()
    assert describe_env("robotrl/CartPole-v0", nthread=1)["act_dim"] == 1
    vec = envs.make_vec("InvertedPendulum-v5", 2, nthread=1)  # stepped env by env (SyncVectorEnv)
    vec.close()


def _success_at_the_limit(make, limit: int) -> bool:
    """Zero force from a seed that keeps the pole up for `limit` steps: the episode's is_success."""
    env = make()
    env.reset(seed=0)
    for _ in range(limit):
        *_, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        if terminated or truncated:
            break
    env.close()
    assert truncated and not terminated
    return bool(info.get("is_success", info.get("final_info", {}).get("is_success")))


def test_a_changed_time_limit_judges_success_in_the_single_env_as_in_the_vector_env():
    single = _success_at_the_limit(lambda: envs.make("robotrl/CartPole-v0", max_episode_steps=20), 20)
    vec = envs.make_vec("robotrl/CartPole-v0", 1, max_episode_steps=20)
    vec.reset(seed=0)
    for _ in range(20):
        _, _, terminated, truncated, info = vec.step(np.zeros((1, 1), np.float32))
    vec.close()
    assert truncated[0] and not terminated[0]
    assert single is True and bool(info["final_info"]["is_success"][0]) is True


PIXELS = {"size": 16, "stack": 1, "camera": "side"}


def test_a_pixel_batch_builds_its_envs_as_the_single_env_does():
    # Each env of a pixel batch is a single env rendering its own frames: the batch's thread count and a
    # changed time limit reach it as they reach envs.make (nthread gave a TypeError; success was judged at 500).
    vec = envs.make_vec("robotrl/CartPole-v0", 1, nthread=1, max_episode_steps=20, pixels=PIXELS)
    vec.reset(seed=0)
    for _ in range(20):
        obs, _, terminated, truncated, info = vec.step(np.zeros((1, 1), np.float32))
    vec.close()
    assert obs.dtype == np.uint8 and obs.shape == (1, 1, 16, 16)
    assert truncated[0] and not terminated[0]
    assert bool(info["final_info"]["is_success"][0]) is True


def test_pixels_given_as_an_empty_mapping_render_with_the_defaults_and_false_turns_them_off():
    vec = envs.make_vec("robotrl/CartPole-v0", 1, pixels={})
    assert vec.single_observation_space.dtype == np.uint8 and len(vec.single_observation_space.shape) == 3
    vec.close()
    single = envs.make("robotrl/CartPole-v0", pixels={})
    assert single.observation_space.dtype == np.uint8
    single.close()
    assert envs.make_vec("robotrl/CartPole-v0", 1, pixels=False).single_observation_space.dtype == np.float32
