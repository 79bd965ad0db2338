"""A2C's loss and DQN / Double DQN targets equal stable-baselines3's on the same data and weights.

They skip until robotrl.agents.a2c and robotrl.agents.dqn are on the branch. Differences accounted for:
- SB3 stores observations already normalized (VecNormalize); our networks here run without a normalizer.
- SB3 marks a time-limit truncation as not-done in its replay buffer (handle_timeout_termination);
  ours stores `terminated` alone. Both then bootstrap truncated transitions.
- SB3 has no Double DQN: its Double DQN targets are built here from SB3's own two networks
  (the online net picks the next action, the target net values it, as van Hasselt et al. 2016).
"""

import types

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from policies.actor_critic import ActorCritic
from robotrl.core.storage import Batch
from robotrl.sb3.weights import load_sb3_actor_critic, parameter_pairs


def t32(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


@pytest.mark.parametrize(("env_id", "continuous"), [("Pendulum-v1", True), ("CartPole-v1", False)])
def test_a2c_loss_terms_and_gradients_equal_sb3(env_id, continuous):
    a2c = pytest.importorskip("robotrl.agents.a2c")
    B, hidden = 40, [32, 32]
    hp = a2c.Hyper(ent_coef=0.01, vf_coef=0.25, normalize_advantage=True)
    model = A2C("MlpPolicy", DummyVecEnv([lambda: gym.make(env_id)]), n_steps=B, ent_coef=hp.ent_coef,
                vf_coef=hp.vf_coef, normalize_advantage=True, max_grad_norm=1e9, seed=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}})
    space = model.action_space
    act_dim = space.shape[0] if continuous else int(space.n)
    ours = ActorCritic(model.observation_space.shape[0], act_dim, continuous=continuous, hidden=hidden,
                       normalize_obs=False)
    load_sb3_actor_critic(ours, model.policy)

    g = torch.Generator().manual_seed(0)
    obs = torch.randn(B, ours.obs_dim, generator=g)
    actions = torch.randn(B, act_dim, generator=g) if continuous else torch.randint(0, act_dim, (B,), generator=g)
    advantages, returns, values = (torch.randn(B, generator=g) for _ in range(3))
    buf = model.rollout_buffer
    buf.observations[:] = obs.numpy().reshape(buf.observations.shape)
    buf.actions[:] = actions.numpy().reshape(buf.actions.shape)
    buf.advantages[:], buf.returns[:], buf.values[:] = (x.numpy().reshape(B, 1) for x in (advantages, returns, values))
    buf.full = True
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.train()
    logged = model.logger.name_to_value

    batch = Batch(obs=obs, actions=actions, log_probs=torch.zeros(B), values=values, advantages=advantages,
                  returns=returns)
    loss, terms = a2c.a2c_loss(ours, batch, hp)
    ours.zero_grad()
    loss.backward()
    assert terms["policy_loss"].item() == pytest.approx(logged["train/policy_loss"], rel=1e-5, abs=1e-6)
    assert terms["value_loss"].item() == pytest.approx(logged["train/value_loss"], rel=1e-5)
    assert -terms["entropy"].item() == pytest.approx(logged["train/entropy_loss"], rel=1e-5)
    for name, mine, theirs in parameter_pairs(ours, model.policy):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def _load_q(ours: nn.Module, sb3_q: nn.Module) -> None:
    """SB3's q_net (Linear/ReLU stack) into our QNetwork (encoder Linears, then the head)."""
    mine = [m for m in ours.modules() if isinstance(m, nn.Linear)]
    theirs = [m for m in sb3_q.modules() if isinstance(m, nn.Linear)]
    assert [m.weight.shape for m in mine] == [t.weight.shape for t in theirs]
    with torch.no_grad():
        for m, t in zip(mine, theirs, strict=True):
            m.weight.copy_(t.weight)
            m.bias.copy_(t.bias)


@pytest.fixture
def dqn_setup(monkeypatch):
    """SB3 DQN with distinct online and target nets, a replay buffer of B unique transitions (obs[:, 0]
    is the transition's index) with terminations and truncations, and one recorded SB3 training step."""
    dqn = pytest.importorskip("robotrl.agents.dqn")
    from policies.q_network import QNetwork
    from robotrl.core.replay import Transitions

    B, gamma, hidden = 64, 0.9, [32, 32]
    model = DQN("MlpPolicy", DummyVecEnv([lambda: gym.make("CartPole-v1")]), buffer_size=B, batch_size=B,
                gamma=gamma, learning_starts=0, seed=0, device="cpu", policy_kwargs={"net_arch": hidden})
    with torch.no_grad():
        for p in model.q_net_target.parameters():
            p.copy_(0.5 * torch.randn_like(p))  # a target net unlike the online one, so argmaxes differ
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(B, 4)).astype(np.float32)
    obs[:, 0] = np.arange(B)
    next_obs = rng.normal(size=(B, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=B)
    rewards = rng.normal(size=B).astype(np.float32)
    terminated = rng.random(B) < 0.2
    truncated = (rng.random(B) < 0.2) & ~terminated
    for i in range(B):
        model.replay_buffer.add(obs[i:i + 1], next_obs[i:i + 1], actions[i:i + 1], rewards[i:i + 1],
                                np.array([terminated[i] | truncated[i]]), [{"TimeLimit.truncated": bool(truncated[i])}])

    recorded = {}
    real_loss = torch.nn.functional.smooth_l1_loss

    def spy(current, target, *args, **kwargs):
        recorded["target"] = target.detach().clone().flatten()
        return real_loss(current, target, *args, **kwargs)

    sample = model.replay_buffer.sample

    def spy_sample(*args, **kwargs):
        recorded["samples"] = sample(*args, **kwargs)
        return recorded["samples"]

    import stable_baselines3.dqn.dqn as sb3_dqn

    monkeypatch.setattr(sb3_dqn, "F", types.SimpleNamespace(smooth_l1_loss=spy))
    monkeypatch.setattr(model.replay_buffer, "sample", spy_sample)
    online, target = (QNetwork((4,), 2, hidden=hidden, activation="relu") for _ in range(2))
    _load_q(online, model.q_net)
    _load_q(target, model.q_net_target)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.train(gradient_steps=1, batch_size=B)

    idx = recorded["samples"].observations[:, 0].round().long().numpy()
    ours_batch = Transitions(obs=t32(obs[idx]), actions=torch.as_tensor(actions[idx]), rewards=t32(rewards[idx]),
                             next_obs=t32(next_obs[idx]), terminated=t32(terminated[idx]),
                             discounts=t32(np.full(B, gamma)))
    return types.SimpleNamespace(dqn=dqn, model=model, online=online, target=target, batch=ours_batch,
                                 sb3_target=recorded["target"], truncated=truncated[idx], gamma=gamma)


def test_dqn_targets_equal_sb3_with_terminations_and_truncations(dqn_setup):
    s = dqn_setup
    assert s.truncated.any() and s.batch.terminated.bool().any()
    ours = s.dqn.td_targets(s.online, s.target, s.batch, double=False)
    np.testing.assert_allclose(ours.numpy(), s.sb3_target.numpy(), rtol=1e-5, atol=1e-6)


def test_double_dqn_targets_from_sb3_networks(dqn_setup):
    s = dqn_setup
    b = s.batch
    with torch.no_grad():
        # SB3 has no Double DQN: pick a* with its online q_net, value it with its q_net_target.
        best = s.model.q_net(b.next_obs).argmax(-1, keepdim=True)
        value = s.model.q_net_target(b.next_obs).gather(-1, best).squeeze(-1)
    expected = b.rewards + s.gamma * (1 - b.terminated) * value
    ours = s.dqn.td_targets(s.online, s.target, b, double=True)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert (ours - s.sb3_target).abs().max() > 1e-3  # the online and target nets disagree somewhere
