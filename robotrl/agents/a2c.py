"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016, the batched form of A3C).

Each update: n_steps from every env of the vector env, n-step returns (or GAE(lambda) when
gae_lambda < 1) bootstrapped from V of the last observation, one gradient step on
policy loss - ent_coef * entropy + vf_coef * value loss, gradient-norm clipping, RMSprop or Adam.
The defaults are SB3's A2C defaults so that `robotrl compare` can put the two side by side.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from policies.actor_critic import ActorCritic
from robotrl.agents.common import (
    CollectorState,
    OnPolicyCollector,
    PolicyOptimizerState,
    build_actor_critic,
    policy_metrics,
    rollout_storage,
)
from robotrl.agents.protocol import Algorithm
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.flat_params import FlatParameters
from robotrl.core.returns import explained_variance
from robotrl.core.schedules import learning_rate, set_learning_rate
from robotrl.core.storage import Batch, RolloutStorage
from robotrl.core.vec_env import VecEnv
from robotrl.hyper.a2c import Hyper


def a2c_loss(policy: ActorCritic, batch: Batch, hp: Hyper) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its terms for a batch of transitions (also used by A3C's workers)."""
    dist = policy.distribution(batch.obs)
    log_prob = policy.log_prob(dist, batch.actions)
    entropy = policy.entropy(dist).mean()
    values = policy.value(batch.obs)
    adv = batch.advantages
    if hp.normalize_advantage and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = -(adv * log_prob).mean()
    value_loss = (batch.returns - values).square().mean()
    loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * value_loss
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_optimizer(params: Iterable[torch.Tensor], hp: Hyper) -> torch.optim.Optimizer:
    if hp.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=hp.learning_rate, alpha=hp.rmsprop_alpha, eps=hp.optimizer_eps)
    return torch.optim.Adam(params, lr=hp.learning_rate, eps=hp.optimizer_eps)


def rollout_batch(storage: RolloutStorage, last_value: torch.Tensor, hp: Hyper) -> Batch:
    """Advantages and returns of a full rollout, flattened into one batch (no shuffling: one step)."""
    storage.compute_returns(last_value, hp.gamma, hp.gae_lambda)
    return storage.flat()


def make_policy(cfg: RunConfig, env: VecEnv) -> ActorCritic:
    """The network this agent trains, for loading a checkpoint without an optimizer or storage."""
    return build_actor_critic(cfg, env)


class Agent(PolicyOptimizerState):
    """A2C over a vector env; the trainer calls collect() then update() each iteration."""

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        self.hp: Hyper = cfg.hyper
        self.device = device
        self.policy = make_policy(cfg, env).to(device)
        self.flat = FlatParameters(self.policy)
        self.optimizer = make_optimizer([self.flat.param], self.hp)
        self.storage = rollout_storage(self.hp.n_steps, env, self.policy, device)
        self.collector: CollectorState = OnPolicyCollector(env, self.policy, self.hp.gamma, self.hp.scale_rewards,
                                                           device)

    def start(self, seed: int) -> None:
        self.collector.reset(seed=seed)

    def collect(self, episodes: EpisodeStats) -> int:
        self.collector.fill(self.storage, episodes)
        return self.storage.steps * self.storage.num_envs

    def update(self, progress: float) -> dict[str, float]:
        """One gradient step on the rollout; `progress` in [0, 1] drives the optional lr schedule."""
        hp = self.hp
        lr = learning_rate(hp.learning_rate, hp.anneal_lr, progress)
        set_learning_rate(self.optimizer, lr)
        batch = rollout_batch(self.storage, self.collector.last_value(), hp)
        loss, terms = a2c_loss(self.policy, batch, hp)
        self.flat.zero_grad()
        loss.backward()
        grad_norm = self.flat.clip_grad_norm_(hp.max_grad_norm)
        self.optimizer.step()
        self.collector.after_update(self.storage)
        self.storage.clear()
        out = {f"losses/{k}": float(v.detach()) for k, v in terms.items()}
        out["losses/explained_variance"] = explained_variance(batch.values, batch.returns)
        out["losses/grad_norm"] = float(grad_norm)
        out.update(policy_metrics(self.policy, lr))
        out.update(self.collector.timings)
        return out

    def close(self) -> None:
        """Nothing to release: the env is the trainer's, remote collectors are their backend's."""


ALGORITHM = Algorithm(name="a2c", agent=Agent, make_policy=make_policy)
