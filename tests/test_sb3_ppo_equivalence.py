"""Our GAE, rollout collection and PPO loss equal stable-baselines3's on the same data and weights.

Differences the tests account for (on purpose, not bugs):
- Observation normalization lives inside our policy; SB3's VecNormalize hands the policy normalized
  observations. SB3 is given `our_normalizer(raw_obs)` where ours is given raw_obs.
- Our Gaussian acts in [-1, 1] units and `to_env` maps onto the actuator bounds; SB3 acts in the env's
  units, so its env is wrapped in RescaleAction(-1, 1) and both store the same actions.
- SB3 bootstraps a time-limit truncation inside collect_rollouts (reward += gamma * V(terminal_obs));
  ours does the same in OnPolicyCollector, and `dones[t]` equals SB3's `episode_starts[t + 1]`.
- With clip_range_vf set, SB3 takes the squared error of the clipped value, ours the max of clipped and
  unclipped errors (see the last test).
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import RescaleAction
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv

import envs
from policies.actor_critic import ActorCritic
from robotrl.agents.common import OnPolicyCollector
from robotrl.agents.ppo import Hyper, ppo_loss
from robotrl.core.episodes import EpisodeStats
from robotrl.core.returns import bootstrap_truncated, gae
from robotrl.core.storage import Batch, RolloutStorage
from robotrl.sb3.weights import load_sb3_actor_critic, parameter_pairs


def t32(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def test_gae_equals_sb3_rollout_buffer_with_terminations_and_truncations():
    T, N, gamma, lam = 32, 4, 0.97, 0.9
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    final_values = rng.normal(size=(T, N)).astype(np.float32)  # V(final_obs), used where truncated
    last_values = rng.normal(size=N).astype(np.float32)
    terminated = rng.random((T, N)) < 0.1
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    terminated[-1, 0], truncated[-1, 1] = True, True  # the rollout's last step ends episodes too
    done = terminated | truncated
    assert terminated[:-1].sum() > 2 and truncated[:-1].sum() > 2

    box = gym.spaces.Box(-1, 1, (1,))
    buffer = RolloutBuffer(T, box, box, gamma=gamma, gae_lambda=lam, n_envs=N)
    for t in range(T):
        # SB3's on-policy loop adds gamma * V(terminal_obs) to a truncated step's reward before storing it.
        reward = rewards[t] + gamma * final_values[t] * truncated[t]
        episode_start = done[t - 1] if t else np.ones(N, dtype=bool)
        buffer.add(np.zeros((N, 1)), np.zeros((N, 1)), reward, episode_start, t32(values[t]), torch.zeros(N))
    buffer.compute_returns_and_advantage(t32(last_values), done[-1])

    r = bootstrap_truncated(t32(rewards), truncated, t32(final_values[truncated]), gamma)
    adv, ret = gae(r, t32(values), t32(done), t32(last_values), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), buffer.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret.numpy(), buffer.returns, rtol=1e-5, atol=1e-5)


def test_rollout_with_time_limits_equals_sb3_collect_rollouts():
    """Same env, seeds and weights: the stored rewards (with truncation bootstrap), values and GAE agree.

    The Gaussian's std is e^-30 so both sides take the mean action and step identical physics.
    """
    T, N, gamma, lam, limit, seed = 40, 3, 0.99, 0.95, 12, 3
    env_id = "InvertedPendulum-v5"

    def make_env() -> gym.Env:
        return RescaleAction(envs.make(env_id, max_episode_steps=limit), -np.ones(1, np.float32),
                             np.ones(1, np.float32))

    model = PPO("MlpPolicy", DummyVecEnv([make_env] * N), n_steps=T, batch_size=T * N, gamma=gamma,
                gae_lambda=lam, seed=seed, device="cpu",
                policy_kwargs={"net_arch": {"pi": [16], "vf": [16]}, "log_std_init": -30.0})
    with torch.no_grad():
        model.policy.action_net.weight.mul_(300.0)  # push the pole over within the time limit sometimes
    ours = ActorCritic(4, 1, hidden=[16], normalize_obs=False, action_low=[-3.0], action_high=[3.0])
    load_sb3_actor_critic(ours, model.policy)

    _, callback = model._setup_learn(T * N)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=T)
    sb3 = model.rollout_buffer

    env = envs.make_vec(env_id, N, max_episode_steps=limit)
    collector = OnPolicyCollector(env, ours, gamma, scale_rewards=False, device=torch.device("cpu"))
    collector.reset(seed=seed)
    storage = RolloutStorage(T, N, (4,), (1,))
    episodes = EpisodeStats(N)
    collector.fill(storage, episodes)
    adv, ret = gae(storage.rewards, storage.values, storage.dones, collector.last_value(), gamma, lam)
    env.close()

    lengths = list(episodes.recent_lengths)
    assert any(n == limit for n in lengths) and any(n < limit for n in lengths), lengths
    np.testing.assert_allclose(storage.obs.numpy(), sb3.observations, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(storage.values.numpy(), sb3.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(storage.rewards.numpy(), sb3.rewards, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(adv.numpy(), sb3.advantages, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret.numpy(), sb3.returns, rtol=1e-4, atol=1e-4)


def _sb3_train_once(env_id: str, hp: Hyper, data: dict[str, np.ndarray], hidden: list[int],
                    ours: ActorCritic) -> tuple[PPO, dict[str, float]]:
    """One SB3 PPO minibatch step on `data`; `ours` gets SB3's weights before the step."""
    B = data["obs"].shape[0]
    model = PPO("MlpPolicy", DummyVecEnv([lambda: gym.make(env_id)]), n_steps=B, batch_size=B, n_epochs=1,
                learning_rate=1e-4, clip_range=hp.clip_range, clip_range_vf=hp.clip_range_vf,
                ent_coef=hp.ent_coef, vf_coef=hp.vf_coef, max_grad_norm=1e9, seed=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}})
    load_sb3_actor_critic(ours, model.policy)
    buf = model.rollout_buffer
    buf.observations[:] = data["sb3_obs"].reshape(buf.observations.shape)
    buf.actions[:] = data["actions"].reshape(buf.actions.shape)
    for name in ("log_probs", "values", "advantages", "returns"):
        getattr(buf, name)[:] = data[name].reshape(B, 1)
    buf.full = True
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.train()
    return model, dict(model.logger.name_to_value)


def _batch_for(ours: ActorCritic, env_id: str, B: int, seed: int) -> dict[str, np.ndarray]:
    """Random transitions; old log-probs are perturbed so some ratios fall outside the clip range."""
    g = torch.Generator().manual_seed(seed)
    obs_dim = ours.obs_dim
    raw = 2.0 + 3.0 * torch.randn(B, obs_dim, generator=g)
    ours.normalizer.update(2.0 + 3.0 * torch.randn(500, obs_dim, generator=g))
    if ours.continuous:
        actions = torch.randn(B, ours.act_dim, generator=g)
    else:
        actions = torch.randint(0, ours.act_dim, (B,), generator=g)
    data = {"obs": raw, "actions": actions, "advantages": torch.randn(B, generator=g),
            "values": torch.randn(B, generator=g), "returns": torch.randn(B, generator=g)}
    data = {k: v.numpy() for k, v in data.items()}
    with torch.no_grad():
        data["sb3_obs"] = ours.normalizer(raw).numpy()
    data["noise"] = (0.3 * torch.randn(B, generator=g)).numpy()
    return data


@pytest.mark.parametrize(("env_id", "continuous"), [("Pendulum-v1", True), ("CartPole-v1", False)])
def test_ppo_loss_terms_and_gradients_equal_sb3(env_id, continuous):
    B, hidden = 64, [32, 32]
    hp = Hyper(clip_range=0.2, ent_coef=0.01, vf_coef=0.5)
    probe = gym.make(env_id)
    act_dim = probe.action_space.shape[0] if continuous else int(probe.action_space.n)
    ours = ActorCritic(probe.observation_space.shape[0], act_dim, continuous=continuous, hidden=hidden)
    data = _batch_for(ours, env_id, B, seed=1)
    # SB3's weights are random at construction: build it once to read them, then set old log-probs
    # relative to the current policy (ratios around 1, some beyond the clip range).
    _, _ = _sb3_train_once(env_id, hp, {**data, "log_probs": np.zeros(B, np.float32)}, hidden, ours)
    with torch.no_grad():
        dist = ours.distribution(t32(data["obs"]))
        actions = torch.as_tensor(data["actions"])
        data["log_probs"] = (ours.log_prob(dist, actions) + t32(data["noise"])).numpy()

    model, logged = _sb3_train_once(env_id, hp, data, hidden, ours)
    batch = Batch(obs=t32(data["obs"]), actions=actions, log_probs=t32(data["log_probs"]),
                  values=t32(data["values"]), advantages=t32(data["advantages"]), returns=t32(data["returns"]))
    loss, terms = ppo_loss(ours, batch, hp)
    ours.zero_grad()
    loss.backward()

    assert 0.05 < logged["train/clip_fraction"] < 0.95  # both branches of the clipped objective are used
    assert terms["policy_loss"].item() == pytest.approx(logged["train/policy_gradient_loss"], rel=1e-5, abs=1e-6)
    assert terms["value_loss"].item() == pytest.approx(logged["train/value_loss"], rel=1e-5)
    assert -terms["entropy"].item() == pytest.approx(logged["train/entropy_loss"], rel=1e-5)
    assert loss.item() == pytest.approx(logged["train/loss"], rel=1e-5)
    assert terms["approx_kl"].item() == pytest.approx(logged["train/approx_kl"], rel=1e-4, abs=1e-7)
    assert terms["clipfrac"].item() == pytest.approx(logged["train/clip_fraction"])
    for name, mine, theirs in parameter_pairs(ours, model.policy):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_ppo_value_clipping_differs_from_sb3_as_stated():
    """SB3: mean((R - V_clip)^2). Ours (OpenAI baselines): mean(max((R - V)^2, (R - V_clip)^2))."""
    B, hidden, env_id = 64, [32, 32], "Pendulum-v1"
    hp = Hyper(clip_range_vf=0.1)
    ours = ActorCritic(3, 1, hidden=hidden)
    data = _batch_for(ours, env_id, B, seed=2)
    data["log_probs"] = np.zeros(B, np.float32)
    _, logged = _sb3_train_once(env_id, hp, data, hidden, ours)
    batch = Batch(obs=t32(data["obs"]), actions=t32(data["actions"]), log_probs=t32(data["log_probs"]),
                  values=t32(data["values"]), advantages=t32(data["advantages"]), returns=t32(data["returns"]))
    _, terms = ppo_loss(ours, batch, hp)

    with torch.no_grad():
        v = ours.value(batch.obs)
    clipped = batch.values + (v - batch.values).clamp(-0.1, 0.1)
    sb3_rule = (batch.returns - clipped).square().mean().item()
    ours_rule = torch.max((batch.returns - v).square(), (batch.returns - clipped).square()).mean().item()
    assert logged["train/value_loss"] == pytest.approx(sb3_rule, rel=1e-5)
    assert terms["value_loss"].item() == pytest.approx(ours_rule, rel=1e-5)
    assert ours_rule > sb3_rule
