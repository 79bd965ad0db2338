"""The CartPole robot behind Gymnasium's API: balance and swing-up, single and batched."""

import mujoco
import numpy as np
import pytest
from envcheck import assert_same_episode_ends, check_env_apis, lockstep, uniform_actions

import envs

TASKS = ["balance", "swingup"]


def balance_controller(obs: np.ndarray) -> np.ndarray:
    """A hand-tuned linear state feedback that holds the pole near upright (push toward the lean)."""
    x, _, sin_t, xd, td = obs.T
    return np.clip(0.1 * x + 3.0 * sin_t + 0.25 * xd + 0.6 * td, -1, 1).reshape(-1, 1).astype(np.float32)


@pytest.mark.parametrize("task", TASKS)
def test_cartpole_passes_gymnasium_and_sb3_env_checkers(task):
    check_env_apis("robotrl/CartPole-v0", task=task)


def test_cartpole_state_is_small_and_policy_runs_at_50hz():
    env = envs.make("robotrl/CartPole-v0")
    assert env.observation_space.shape == (5,)
    assert env.action_space.shape == (1,)
    assert env.unwrapped.task.control_dt == pytest.approx(0.02)
    assert env.spec.max_episode_steps == 500
    env.close()


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 'balance' or 'swingup', got 'flip'"):
        envs.make("robotrl/CartPole-v0", task="flip")


def test_balance_ends_when_the_unpushed_pole_falls_past_0_2_rad():
    env = envs.make("robotrl/CartPole-v0", task="balance")
    env.reset(seed=0)
    steps, terminated = 0, False
    while not terminated and steps < 500:
        _, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert reward == 1.0
        steps += 1
    assert terminated and not truncated and 10 < steps < 200
    assert abs(info["pole_angle"]) > 0.2
    assert not info["is_success"]
    env.close()


def test_balance_held_to_the_time_limit_is_a_success():
    env = envs.make("robotrl/CartPole-v0", task="balance")
    obs, _ = env.reset(seed=1)
    for t in range(500):
        obs, _, terminated, truncated, info = env.step(balance_controller(obs[None])[0])
        assert not terminated, f"fell at step {t}"
        assert info["is_success"] == (t == 499)
    assert truncated
    env.close()


def test_swingup_starts_hanging_and_ends_without_success_when_left_alone():
    env = envs.make("robotrl/CartPole-v0", task="swingup")
    obs, _ = env.reset(seed=0)
    assert obs[1] < -0.99  # cos(angle) of a hanging pole
    total = 0.0
    for _ in range(500):
        obs, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert not terminated
        assert 0.0 <= reward < 0.01  # upright term (1 + cos)/2 is ~0 while hanging
        total += reward
    assert truncated and not info["is_success"]
    env.close()


def test_hanging_pole_swings_at_the_cart_pendulum_frequency():
    """Small swings about hanging down on a free cart: w^2 = (M+m) m g d / ((M+m) I - (m d)^2)."""
    env = envs.make("robotrl/CartPole-v0", task="swingup")
    env.reset(seed=0)
    model = env.unwrapped.sim.model
    pole = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "pole")
    m, big_m = model.body_mass[pole], model.body_mass[pole - 1]
    d = model.body_ipos[pole][2]
    inertia = model.body_inertia[pole][1] + m * d**2
    w2 = (big_m + m) * m * 9.81 * d / ((big_m + m) * inertia - (m * d) ** 2)
    angles = []
    for _ in range(500):
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
        angles.append(info["pole_angle"])
    dev = np.unwrap(np.array(angles)) - np.pi * np.sign(angles[0])
    crossings = np.flatnonzero(np.diff(np.sign(dev)) != 0)
    period = 2 * np.mean(np.diff(crossings)) * 0.02
    assert period == pytest.approx(2 * np.pi / np.sqrt(w2), rel=0.03)
    env.close()


def test_positive_force_pushes_the_cart_toward_plus_x():
    env = envs.make("robotrl/CartPole-v0")
    env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(np.ones(1, np.float32))
    assert obs[3] > 0.5  # about 0.1 s at ~9 m/s^2
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_batched_env_matches_sync_vector_env_step_by_step(task):
    n = 4
    dones = 0
    # balance terminates often under random pushes; swing-up truncates twice
    for ours, ref in lockstep("robotrl/CartPole-v0", n, 11, 1100, uniform_actions(1), obs_atol=1e-6,
                              reward_atol=1e-8, task=task):
        dones += len(assert_same_episode_ends(ours, ref, obs_atol=1e-6))
    assert dones >= 2 * n
