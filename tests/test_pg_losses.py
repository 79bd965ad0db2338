"""The policy-gradient losses and returns on hand-built batches, with numbers recomputed by hand.

The policy is fixed to a known Gaussian: the actor's output layer is zeroed and its bias set to the
mean, log_std to log(0.5), the critic's output layer zeroed with bias v. Then
log pi(a) = -0.5 ((a - mu) / 0.5)^2 - log 0.5 - 0.5 log(2 pi) and V(s) = v for every state.
"""

import math

import pytest
import torch

from policies.actor_critic import ActorCritic
from robotrl.agents import a2c, ppo, reinforce
from robotrl.core.returns import discounted_returns
from robotrl.core.storage import Batch, EpisodeStorage, RolloutStorage

MU, SIGMA, V = 0.3, 0.5, 2.0


def fixed_policy() -> ActorCritic:
    policy = ActorCritic(obs_dim=2, act_dim=1, continuous=True, hidden=(4,), normalize_obs=False)
    with torch.no_grad():
        policy.actor[-1].weight.zero_()
        policy.actor[-1].bias.fill_(MU)
        policy.critic[-1].weight.zero_()
        policy.critic[-1].bias.fill_(V)
        policy.log_std.fill_(math.log(SIGMA))
    return policy


def log_pi(a: float) -> float:
    return -0.5 * ((a - MU) / SIGMA) ** 2 - math.log(SIGMA) - 0.5 * math.log(2 * math.pi)


ENTROPY = 0.5 + 0.5 * math.log(2 * math.pi) + math.log(SIGMA)
ACTIONS = [0.3, 1.3, -0.2]
ADVANTAGES = [1.0, -2.0, 0.5]
RETURNS = [3.0, 1.0, 2.5]


def hand_batch() -> Batch:
    n = len(ACTIONS)
    return Batch(obs=torch.randn(n, 2), actions=torch.tensor(ACTIONS)[:, None], log_probs=torch.zeros(n),
                 values=torch.full((n,), V), advantages=torch.tensor(ADVANTAGES), returns=torch.tensor(RETURNS))


def test_a2c_loss_terms_match_the_hand_computed_numbers():
    hp = a2c.Hyper(ent_coef=0.01, vf_coef=0.5)
    loss, terms = a2c.a2c_loss(fixed_policy(), hand_batch(), hp)
    policy_loss = -sum(A * log_pi(a) for a, A in zip(ACTIONS, ADVANTAGES, strict=True)) / 3
    value_loss = sum((R - V) ** 2 for R in RETURNS) / 3  # (1 + 1 + 0.25) / 3 = 0.75
    assert float(terms["policy_loss"].detach()) == pytest.approx(policy_loss, rel=1e-5)
    assert float(terms["value_loss"].detach()) == pytest.approx(0.75, rel=1e-6)
    assert float(terms["entropy"].detach()) == pytest.approx(ENTROPY, rel=1e-6)
    assert float(loss.detach()) == pytest.approx(policy_loss - 0.01 * ENTROPY + 0.5 * value_loss, rel=1e-5)


def test_a2c_normalized_advantages_have_zero_mean_so_a_constant_shift_does_not_matter():
    hp = a2c.Hyper(normalize_advantage=True)
    batch = hand_batch()
    _, base = a2c.a2c_loss(fixed_policy(), batch, hp)
    batch.advantages = batch.advantages + 10.0
    _, shifted = a2c.a2c_loss(fixed_policy(), batch, hp)
    assert float(shifted["policy_loss"].detach()) == pytest.approx(float(base["policy_loss"].detach()), rel=1e-5)


def test_a2c_returns_are_n_step_bootstrapped_with_lambda_one():
    """rewards 1, 1, 1, then V(s_3) = 10, gamma 0.5: R_2 = 6, R_1 = 4, R_0 = 3."""
    st = RolloutStorage(3, 1, (2,), (1,))
    for _ in range(3):
        st.add(torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1), torch.full((1,), 1.0), torch.ones(1),
               torch.zeros(1))
    batch = a2c.rollout_batch(st, torch.tensor([10.0]), a2c.Hyper(gamma=0.5, gae_lambda=1.0))
    assert batch.returns.tolist() == [3.0, 4.0, 6.0]
    assert batch.advantages.tolist() == [2.0, 3.0, 5.0]


def test_a2c_returns_stop_at_an_episode_end():
    """done at step 1: R_1 = r_1 = 1 (no bootstrap), R_0 = 1 + 0.5 * 1, R_2 = 1 + 0.5 * 10."""
    st = RolloutStorage(3, 1, (2,), (1,))
    for t in range(3):
        st.add(torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1), torch.zeros(1), torch.ones(1),
               torch.tensor([1.0 if t == 1 else 0.0]))
    batch = a2c.rollout_batch(st, torch.tensor([10.0]), a2c.Hyper(gamma=0.5))
    assert batch.returns.tolist() == [1.5, 1.0, 6.0]


def _counting_loss(calls: list[int]):
    """A loss whose k-th call reports approx_kl = 0.02 k and a term x = k."""
    def loss(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        k = len(calls)
        calls.append(batch.obs.shape[0])
        return torch.tensor(0.0), {"approx_kl": torch.tensor(0.02 * k), "x": torch.tensor(float(k))}
    return loss


def test_ppo_epochs_step_on_every_minibatch_of_every_epoch_and_average_the_terms():
    st = RolloutStorage(4, 2, (1,), (1,))  # 8 transitions, minibatches of 2: 4 per epoch
    calls: list[int] = []
    steps: list[torch.Tensor] = []
    out = ppo.ppo_epochs(st, ppo.Hyper(batch_size=2, n_epochs=3), _counting_loss(calls), steps.append)
    assert calls == [2] * 12 and len(steps) == 12
    assert out["losses/x"] == pytest.approx(5.5)  # mean of 0..11


def test_ppo_epochs_stop_at_the_first_minibatch_whose_kl_passes_one_and_a_half_targets():
    # approx_kl 0, 0.02, 0.04: the third passes 1.5 * 0.02 = 0.03 and is not stepped on.
    st = RolloutStorage(4, 2, (1,), (1,))
    calls: list[int] = []
    steps: list[torch.Tensor] = []
    out = ppo.ppo_epochs(st, ppo.Hyper(batch_size=2, n_epochs=3, target_kl=0.02), _counting_loss(calls),
                         steps.append)
    assert len(calls) == 3 and len(steps) == 2
    assert out["losses/x"] == pytest.approx(0.5) and out["losses/approx_kl"] == pytest.approx(0.01)


def test_reinforce_loss_is_minus_mean_log_prob_times_advantage():
    loss, terms = reinforce.reinforce_loss(fixed_policy(), torch.randn(3, 2), torch.tensor(ACTIONS)[:, None],
                                           torch.tensor(ADVANTAGES), ent_coef=0.1)
    expected = -sum(A * log_pi(a) for a, A in zip(ACTIONS, ADVANTAGES, strict=True)) / 3
    assert float(terms["policy_loss"].detach()) == pytest.approx(expected, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(expected - 0.1 * ENTROPY, rel=1e-5)


def test_reinforce_gradient_moves_the_mean_toward_actions_with_positive_advantage():
    """d/d mu of -A log pi(a) = -A (a - mu) / sigma^2: one action at mu + 1 with A = 1 gives -4."""
    policy = fixed_policy()
    loss, _ = reinforce.reinforce_loss(policy, torch.zeros(1, 2), torch.tensor([[MU + 1.0]]), torch.tensor([1.0]))
    loss.backward()
    assert float(policy.actor[-1].bias.grad) == pytest.approx(-1.0 / SIGMA**2, rel=1e-5)


def test_episode_storage_gives_reward_to_go_per_episode_and_keeps_running_ones():
    """gamma 0.5. env 0: rewards 1, 2, 3 then terminated -> G = 2.75, 3.5, 3.
    env 1: rewards 1, 1 then cut by the time limit with tail value 4 -> G = 1 + 0.5 * 5, 1 + 4 = 3.5, 5.
    env 1's next episode (reward 7) has not finished and stays out of the batch."""
    st = EpisodeStorage(2)
    obs = torch.zeros(2, 2)
    act = torch.zeros(2, 1)
    steps = [([1.0, 1.0], [False, False], [0.0, 0.0]),
             ([2.0, 1.0], [False, True], [0.0, 4.0]),
             ([3.0, 7.0], [True, False], [0.0, 0.0])]
    for t, (r, d, tail) in enumerate(steps):
        st.add(obs + t, act, torch.tensor(r), torch.tensor(d), torch.tensor(tail))
    assert st.finished_steps == 5 and st.finished_episodes == 2
    batch = st.take(gamma=0.5)
    assert batch.returns.tolist() == [3.5, 5.0, 2.75, 3.5, 3.0]
    assert batch.episode.tolist() == [0, 0, 1, 1, 1]
    assert batch.obs[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 2.0]
    assert st.finished_steps == 0
    st.add(obs, act, torch.tensor([0.0, 1.0]), torch.tensor([False, True]), torch.zeros(2))
    assert st.take(gamma=0.5).returns.tolist() == [7.0 + 0.5 * 1.0, 1.0]


def test_monte_carlo_returns_equal_the_discounted_sum():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    g = discounted_returns(rewards, torch.tensor([[0.0], [0.0], [1.0]]), torch.zeros(1), 0.9)
    assert g[:, 0].tolist() == pytest.approx([1 + 0.81 * 2, 0.9 * 2, 2.0])


def test_gradient_variance_is_zero_without_advantage_and_scales_with_its_square():
    policy = fixed_policy()
    obs, actions = torch.randn(64, 2), torch.randn(64, 1)
    adv = torch.randn(64)
    var = reinforce.gradient_variance(policy, obs, actions, {"zero": torch.zeros(64), "a": adv, "2a": 2 * adv},
                                      chunks=8, generator=torch.Generator().manual_seed(0))
    assert var["zero"] == 0.0
    assert var["a"] > 0
    assert var["2a"] == pytest.approx(4 * var["a"], rel=1e-4)


def test_a_baseline_that_removes_a_constant_offset_reduces_the_gradient_variance():
    """Returns = 50 + small noise: A = G gives a large estimate of a zero-mean score; G - 50 does not."""
    gen = torch.Generator().manual_seed(1)
    policy = fixed_policy()
    obs = torch.randn(256, 2, generator=gen)
    actions = MU + SIGMA * torch.randn(256, 1, generator=gen)
    returns = 50.0 + torch.randn(256, generator=gen)
    var = reinforce.gradient_variance(policy, obs, actions, {"return": returns, "baseline": returns - 50.0},
                                      chunks=8, generator=gen)
    assert var["baseline"] < var["return"] / 100
