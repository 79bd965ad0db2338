"""MultiPush-v0: the cooperative physics, the per-robot observations, PettingZoo's API, batched == single."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

import envs
from envs.multi_batch import MultiPushBatch
from envs.tasks.multipush import SUCCESS_BONUS, SUCCESS_DISTANCE


@pytest.mark.parametrize("n_robots", [2, 3, 4])
def test_multipush_passes_pettingzoo_parallel_api_test(n_robots):
    env = envs.make_multi("robotrl/MultiPush-v0", n_robots=n_robots)
    parallel_api_test(env, num_cycles=250)
    assert env.observation_space("robot_0").shape == (10 + 2 * (n_robots - 1),)
    assert env.state().shape == (4 * n_robots + 8,)


def _place(batch: MultiPushBatch, robots: list, box=(0.0, 0.0), goal=(5.0, 0.0)) -> None:
    """Write a hand-made state into every simulation of the batch."""
    m = batch.num_agents
    task = batch.task
    task.sim.qpos[:] = 0.0
    task.sim.qvel[:] = 0.0
    for i, p in enumerate(robots):
        task.sim.qpos[:, 2 * i: 2 * i + 2] = p
    task.sim.qpos[:, 2 * m: 2 * m + 2] = box
    task.goal[:] = goal
    task._prev_box_dist[:] = task.box_distance()
    task._prev_reach[:] = task.reach_distance()
    batch.sim.forward()


def test_one_robot_cannot_move_the_box_but_two_together_can():
    """Floor friction 0.4 * 4 kg * 9.81 = 15.7 N beats one robot's 10 N; two robots' 20 N do not."""
    alone, together = MultiPushBatch(1, n_robots=2), MultiPushBatch(1, n_robots=2)
    alone.reset(seed=0)
    together.reset(seed=0)
    # Robots touch the box's -x face (box half 0.25 + robot radius 0.1); the other robot of `alone` idles far away.
    _place(alone, [(-0.36, 0.0), (-2.0, 2.0)])
    _place(together, [(-0.36, 0.12), (-0.36, -0.12)])
    push_one = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    push_both = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    for _ in range(40):  # 2 s at 20 Hz
        alone.step(push_one)
        together.step(push_both)
    assert abs(alone.task.box_pos()[0, 0]) < 0.02
    assert together.task.box_pos()[0, 0] > 0.5


def test_observation_is_local_and_orders_teammates_nearest_first():
    batch = MultiPushBatch(1, n_robots=3)
    batch.reset(seed=0)
    _place(batch, [(0.0, 1.0), (0.0, -1.0), (0.5, 1.0)], box=(0.2, 0.3), goal=(1.0, -1.0))
    obs = batch.task.observe()[0]
    r0 = obs[0]
    np.testing.assert_allclose(r0[0:2], [0.0, 1.0], atol=1e-6)  # own position
    np.testing.assert_allclose(r0[2:4], [0.0, 0.0], atol=1e-6)  # own velocity
    np.testing.assert_allclose(r0[4:6], [0.2, -0.7], atol=1e-6)  # box - self
    np.testing.assert_allclose(r0[6:8], [1.0, -2.0], atol=1e-6)  # goal - self
    # Robot 2 is 0.5 m from robot 0, robot 1 is 2 m: nearest first.
    np.testing.assert_allclose(r0[10:14], [0.5, 0.0, 0.0, -2.0], atol=1e-6)
    state = batch.task.state()[0]
    np.testing.assert_allclose(state[:6], [0.0, 1.0, 0.0, -1.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(state[-8:], [0.2, 0.3, 0.0, 0.0, 1.0, -1.0, 0.8, -1.3], atol=1e-6)


def test_box_on_goal_ends_the_episode_with_success_and_the_bonus():
    batch = MultiPushBatch(2, n_robots=2)
    batch.reset(seed=0)
    # Env 0's box sits 0.1 m from the goal (inside 0.2 m), env 1's 2 m away.
    _place(batch, [(-1.0, 1.0), (-1.0, -1.0)], goal=(0.1, 0.0))
    batch.task.goal[1] = (2.0, 0.0)
    batch.task._prev_box_dist[:] = batch.task.box_distance()
    _obs, state, reward, terminated, truncated, info = batch.step(np.zeros((2, 2, 2)))
    assert terminated.tolist() == [True, False] and not truncated.any()
    assert info["is_success"].tolist() == [True, False]
    assert reward[0] == pytest.approx(SUCCESS_BONUS, abs=1e-3)
    assert info["box_distance"][0] < SUCCESS_DISTANCE
    # SAME_STEP autoreset: env 0 already shows a new episode, its last state is in final_obs.
    np.testing.assert_allclose(info["final_state"][0, -4:-2], [0.1, 0.0], atol=1e-3)
    assert np.linalg.norm(state[0, -2:]) > 0.7  # a fresh goal is 0.8-1.5 m from the box


def test_episodes_are_truncated_after_200_steps():
    batch = MultiPushBatch(3, n_robots=2)
    batch.reset(seed=1)
    for t in range(200):
        _, _, _, terminated, truncated, info = batch.step(np.zeros((3, 2, 2)))
        assert not terminated.any()
        assert truncated.all() == (t == 199)
    assert "final_obs" in info


def test_batched_env_steps_like_the_parallel_env_with_the_same_seed():
    batch = MultiPushBatch(4, n_robots=2)
    single = envs.make_multi("robotrl/MultiPush-v0", n_robots=2)
    rng = np.random.default_rng(0)
    obs_b, state_b = batch.reset(seed=7)
    obs_s, _ = single.reset(seed=9)  # batch env i is seeded seed + i
    np.testing.assert_array_equal(obs_b[2, 1], obs_s["robot_1"])
    np.testing.assert_array_equal(state_b[2], single.state())
    for _ in range(30):
        actions = rng.uniform(-1, 1, size=(4, 2, 2))
        obs_b, state_b, reward_b, *_ = batch.step(actions)
        obs_s, reward_s, *_ = single.step({"robot_0": actions[2, 0], "robot_1": actions[2, 1]})
        np.testing.assert_array_equal(obs_b[2, 0], obs_s["robot_0"])
        np.testing.assert_array_equal(state_b[2], single.state())
        assert reward_b[2] == reward_s["robot_0"] == reward_s["robot_1"]


def test_mamujoco_halfcheetah_2x3_runs_behind_the_same_batch_interface():
    batch = envs.make_multi_batch("mamujoco/HalfCheetah-2x3", 2)
    obs, state = batch.reset(seed=0)
    assert batch.agents == ["agent_0", "agent_1"] and batch.act_dim == 3
    assert obs.shape == (2, 2, batch.obs_dim) and state.shape == (2, 17)
    obs, state, reward, terminated, truncated, _info = batch.step(np.zeros((2, 2, 3)))
    assert reward.shape == (2,) and not (terminated | truncated).any()
    batch.close()


def test_unknown_multi_robot_ids_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown multi-robot env id"):
        envs.make_multi("robotrl/NoSuch-v0")
    with pytest.raises(ValueError, match="mamujoco/<Robot>-<split>"):
        envs.make_multi("mamujoco/HalfCheetah")
    with pytest.raises(ValueError, match="n_robots must be 2, 3 or 4"):
        envs.make_multi("robotrl/MultiPush-v0", n_robots=5)


def test_mamujoco_agents_with_fewer_joints_share_the_columns_bounds():
    """Humanoid-9|8 splits 17 joints of bounds +-0.4 into 9 and 8: the shared actor's bound per column is
    theirs; the shorter agent's padding does not make the bounds 'differ'."""
    batch = envs.make_multi_batch("mamujoco/Humanoid-9|8", 1)
    try:
        assert batch.act_sizes == [9, 8]
        np.testing.assert_array_equal(batch.action_low, np.full(9, -0.4, np.float32))
        np.testing.assert_array_equal(batch.action_high, np.full(9, 0.4, np.float32))
    finally:
        batch.close()
