"""Replay memories: uniform sampling, wraparound, frame sharing, n-step transitions, save/load."""

import numpy as np
import pytest

from robotrl.core.nstep import NStepAccumulator
from robotrl.core.replay import FrameReplayBuffer, ReplayBuffer, Transitions


def _batch(values, obs_dim=2):
    v = np.asarray(values, dtype=np.float32)
    return Transitions(obs=np.repeat(v[:, None], obs_dim, 1), actions=v.astype(np.int64), rewards=v,
                       next_obs=np.repeat(v[:, None] + 1, obs_dim, 1), terminated=np.zeros_like(v),
                       discounts=np.full_like(v, 0.99))


def test_ring_wraps_around_and_keeps_the_newest():
    buf = ReplayBuffer(5, (2,))
    buf.add(_batch([0, 1, 2]))
    assert (buf.size, buf.pos) == (3, 3)
    buf.add(_batch([3, 4, 5, 6]))  # 5 and 6 overwrite 0 and 1
    assert (buf.size, buf.pos) == (5, 2)
    assert buf.rewards.tolist() == [5, 6, 2, 3, 4]
    assert buf.obs[:, 0].tolist() == [5, 6, 2, 3, 4] and buf.next_obs[1, 0] == 7


def test_sampling_is_uniform_over_the_filled_part_only():
    buf = ReplayBuffer(100, (2,))
    buf.add(_batch(range(10)))
    rng = np.random.default_rng(0)
    sample = buf.sample(20_000, rng)
    counts = np.bincount(sample.actions, minlength=100)
    assert counts[10:].sum() == 0
    # Each of 10 slots gets 2000 +- 3 sigma (sigma = sqrt(20000 * 0.1 * 0.9) = 42).
    assert np.all(np.abs(counts[:10] - 2000) < 130), counts[:10]
    # A transition comes out whole: obs, reward and next_obs stay aligned.
    assert np.all(sample.obs[:, 0] == sample.rewards) and np.all(sample.next_obs[:, 0] == sample.rewards + 1)


def test_state_dict_round_trip_restores_contents_and_position():
    buf = ReplayBuffer(8, (2,))
    buf.add(_batch(range(6)))
    buf.add(_batch(range(6, 11)))
    other = ReplayBuffer(8, (2,))
    other.load_state_dict(buf.state_dict())
    assert (other.pos, other.size) == (3, 8)
    assert np.array_equal(other.obs, buf.obs) and np.array_equal(other.rewards, buf.rewards)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert np.array_equal(buf.sample(16, rng_a).rewards, other.sample(16, rng_b).rewards)


def test_nstep_sums_discounted_rewards_and_handles_episode_ends():
    acc = NStepAccumulator(num_envs=1, n=3, gamma=0.5)
    o = lambda x: np.array([[float(x)]])  # noqa: E731
    f, t = np.array([False]), np.array([True])
    assert acc.push(o(0), [0], [1.0], o(1), f, f) is None
    assert acc.push(o(1), [1], [2.0], o(2), f, f) is None
    out = acc.push(o(2), [2], [4.0], o(3), f, f)
    # 1 + 0.5 * 2 + 0.25 * 4 = 3, bootstrapping from obs 3 with 0.5^3.
    assert out.rewards.tolist() == [3.0] and out.next_obs[0, 0] == 3 and out.discounts[0] == 0.125
    # The episode terminates after the next step: the 3 queued steps are all emitted, none bootstraps.
    out = acc.push(o(3), [3], [8.0], o(99), t, t)
    assert out.obs[:, 0].tolist() == [1, 2, 3]
    assert out.rewards.tolist() == [2 + 0.5 * 4 + 0.25 * 8, 4 + 0.5 * 8, 8]
    assert out.terminated.tolist() == [1, 1, 1]
    # A truncated end bootstraps from the final observation with gamma^(steps left).
    acc.push(o(10), [0], [1.0], o(11), f, f)
    out = acc.push(o(11), [0], [1.0], o(12), f, t)
    assert out.terminated.tolist() == [0, 0] and out.discounts.tolist() == [0.25, 0.5]
    assert out.next_obs[:, 0].tolist() == [12, 12]


def _frame_episode_stream(num_steps, stack, ends_at):
    """Stacked observations as the pixel wrapper makes them, with each frame filled with a unique number."""
    counter = 1
    stacks, nexts, ended = [], [], []
    current = np.zeros((stack, 2, 2), np.uint8) + counter
    for step in range(num_steps):
        counter += 1
        nxt = np.concatenate([current[1:], np.full((1, 2, 2), counter, np.uint8)])
        stacks.append(current.copy())
        nexts.append(nxt)
        end = step in ends_at
        ended.append(end)
        if end:
            counter += 1
            current = np.zeros((stack, 2, 2), np.uint8) + counter  # the reset frame fills the stack
        else:
            current = nxt
    return stacks, nexts, ended


def test_frame_replay_rebuilds_the_exact_stacks_across_episode_starts_and_wraparound():
    stack = 4
    stacks, nexts, ended = _frame_episode_stream(30, stack, ends_at={5, 7, 19})
    buf = FrameReplayBuffer(capacity=12, num_envs=1, obs_shape=(stack, 2, 2))
    for s, n, e in zip(stacks, nexts, ended, strict=True):
        buf.add(Transitions(s[None], np.array([s[-1, 0, 0]]), np.zeros(1, np.float32), n[None],
                            np.zeros(1, np.float32), np.ones(1, np.float32)), ended=np.array([e]))
    assert buf.full and buf.size == 12
    sample = buf.sample(500, np.random.default_rng(0))
    by_newest = {int(s[-1, 0, 0]): (s, n) for s, n in zip(stacks, nexts, strict=True)}
    for obs, nxt, action in zip(sample.obs, sample.next_obs, sample.actions, strict=True):
        want_obs, want_next = by_newest[int(action)]
        assert np.array_equal(obs, want_obs) and np.array_equal(nxt, want_next)
    # The 3 oldest slots would look back onto overwritten frames: never sampled.
    oldest = {int(stacks[i][-1, 0, 0]) for i in range(30 - 12, 30 - 12 + stack - 1)}
    assert not oldest & set(sample.actions.tolist())


def test_frame_replay_stores_one_uint8_frame_per_stack():
    buf = FrameReplayBuffer(capacity=1000, num_envs=4, obs_shape=(4, 84, 84))
    assert buf.frames.dtype == np.uint8 and buf.frames.shape == (250, 4, 84, 84)
    # obs and next_obs frames: 2 frames of 84*84 bytes per transition instead of 8.
    assert buf.frames.nbytes + buf.next_frames.nbytes == 1000 * 2 * 84 * 84


def test_frame_replay_refuses_a_partial_vector_step():
    buf = FrameReplayBuffer(capacity=100, num_envs=2, obs_shape=(4, 2, 2))
    with pytest.raises(ValueError, match="one vector step of 2 envs"):
        buf.add(_batch([1]), ended=np.array([False]))


@pytest.mark.parametrize("stack", [1, 4])
def test_frame_replay_nstep_equals_the_accumulators_transitions(stack):
    # Episodes that terminate (at 5), are truncated (at 12) and run on, in a ring that wraps twice:
    # every sampled n-step transition must be the one the n-step accumulator makes from the same stream,
    # or (for the newest slots, whose later steps have not happened yet) its shorter prefix.
    n, gamma = 3, 0.5
    stacks, nexts, ended = _frame_episode_stream(40, stack, ends_at={5, 12, 13, 27})
    terminated = [i in (5, 27) for i in range(40)]
    rewards = np.arange(1, 41, dtype=np.float32)
    buf = FrameReplayBuffer(capacity=16, num_envs=1, obs_shape=(stack, 2, 2), n_step=n)
    acc = NStepAccumulator(num_envs=1, n=n, gamma=gamma)
    want = {}
    for i, (s, nx, end) in enumerate(zip(stacks, nexts, ended, strict=True)):
        one = Transitions(s[None], np.array([i]), rewards[i:i + 1], nx[None], np.array([terminated[i]], np.float32),
                          np.array([gamma], np.float32))
        buf.add(one, ended=np.array([end]))
        out = acc.push(s[None], np.array([i]), rewards[i:i + 1], nx[None], np.array([terminated[i]]), np.array([end]))
        for k in range(0 if out is None else len(out.actions)):
            want[int(out.actions[k])] = (out.obs[k], out.rewards[k], out.next_obs[k], out.terminated[k],
                                         out.discounts[k])
    sample = buf.sample(2000, np.random.default_rng(0))
    seen = set()
    for k, i in enumerate(sample.actions.tolist()):
        seen.add(i)
        assert np.array_equal(sample.obs[k], stacks[i])
        if i in want:
            _, r, nxt, term, disc = want[i]
            assert np.isclose(sample.rewards[k], r) and np.array_equal(sample.next_obs[k], nxt)
            assert sample.terminated[k] == term and np.isclose(sample.discounts[k], disc)
        else:  # one of the newest n - 1 steps: only the steps taken so far
            steps = 40 - i
            assert steps < n
            assert np.isclose(sample.rewards[k], sum(gamma**j * rewards[i + j] for j in range(steps)))
            assert np.array_equal(sample.next_obs[k], nexts[39]) and sample.discounts[k] == gamma**steps
    # Every slot that can be sampled was, the newest included, and the overwritten ones never.
    assert seen == set(range(40 - 16 + stack - 1, 40))
