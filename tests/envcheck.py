"""Checks every robotrl env passes: Gymnasium's (and SB3's) env checkers, and our batched env stepping in
lockstep with Gymnasium's SyncVectorEnv of single envs under the same seed and actions."""

from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import envs

Step = tuple  # (obs, reward, terminated, truncated, info), as a vector env's step returns it
Actions = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def check_env_apis(env_id: str, *, sb3: bool = True, **kwargs) -> None:
    """Gymnasium's env checker on the single env, and SB3's unless `sb3` is False."""
    env = envs.make(env_id, **kwargs)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        if sb3:
            from stable_baselines3.common.env_checker import check_env as sb3_check_env

            sb3_check_env(env.unwrapped, warn=False)
    finally:
        env.close()


def uniform_actions(action_dim: int) -> Actions:
    """Actions uniform in [-1, 1] for each of the batch's envs."""
    return lambda obs, rng: rng.uniform(-1, 1, size=(len(obs), action_dim)).astype(np.float32)


def lockstep(env_id: str, n: int, seed: int, steps: int, actions: Actions, *, obs_atol: float,
             reward_atol: float, action_seed: int = 0, **kwargs) -> Iterator[tuple[Step, Step]]:
    """`envs.make_vec(env_id, n)` and a same-step-autoreset SyncVectorEnv of `n` `gym.make(env_id)`, reset
    with `seed` and both given `actions(our_obs, rng)` for `steps` steps. Asserts the same first
    observations (to 1e-6), then at every step the same observations (rtol 1e-5) and rewards (rtol 1e-6),
    and yields (ours, reference) steps for the caller's checks of episode ends."""
    ours = envs.make_vec(env_id, n, **kwargs)
    ref = SyncVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)],
                        autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        o1, _ = ours.reset(seed=seed)
        o2, _ = ref.reset(seed=seed)
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-6)
        rng = np.random.default_rng(action_seed)
        for t in range(steps):
            a = actions(o1, rng)
            step1, step2 = ours.step(a), ref.step(a)
            o1 = step1[0]
            np.testing.assert_allclose(o1, step2[0], rtol=1e-5, atol=obs_atol, err_msg=f"step {t}")
            np.testing.assert_allclose(step1[1], step2[1], rtol=1e-6, atol=reward_atol, err_msg=f"step {t}")
            yield step1, step2
    finally:
        ours.close()
        ref.close()


def assert_same_episode_ends(ours: Step, ref: Step, *, obs_atol: float, success: bool = True) -> np.ndarray:
    """The same terminations and truncations and, where an episode ended, the same final observation (and
    `is_success` unless `success` is False). Returns the indices of the envs whose episode ended."""
    _, _, te1, tr1, i1 = ours
    _, _, te2, tr2, i2 = ref
    np.testing.assert_array_equal(te1, te2)
    np.testing.assert_array_equal(tr1, tr2)
    ended = np.flatnonzero(te1 | tr1)
    for i in ended:
        np.testing.assert_allclose(i1["final_obs"][i], i2["final_obs"][i], rtol=1e-5, atol=obs_atol)
        if success:
            assert i1["final_info"]["is_success"][i] == i2["final_info"]["is_success"][i]
    return ended
