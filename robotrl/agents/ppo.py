"""Proximal Policy Optimization (Schulman et al. 2017), with the details that make it work.

Clipped surrogate, GAE(lambda), optional value clipping, entropy bonus, advantages normalized per
minibatch, several epochs of shuffled minibatches, global gradient-norm clipping, linear learning-rate
annealing, optional target-KL early stop, observation normalization (in the policy) and reward
scaling, and time-limit truncations bootstrapped from V(final_obs).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

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
from robotrl.core.storage import Batch, BatchT, RolloutStorage
from robotrl.core.vec_env import VecEnv
from robotrl.hyper.ppo import Hyper, PPOUpdate


def ppo_loss(policy: ActorCritic, batch: Batch, hp: Hyper, normalized: bool = False
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its terms for one minibatch (also used by the SB3 cross-checks). `normalized`:
    batch.obs went through the policy's observation normalizer already."""
    log_prob, entropy, values = policy.evaluate_actions(batch.obs, batch.actions, normalized=normalized)
    return clipped_loss(batch, log_prob, entropy, values, hp)


def clipped_loss(batch: Batch, log_prob: torch.Tensor, entropy: torch.Tensor, values: torch.Tensor,
                 hp: PPOUpdate) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's objective from the current policy's log pi(a|s), entropy and V(s) on the batch: clipped
    surrogate, (optionally clipped) value error, entropy bonus. It takes evaluated tensors rather than a
    policy so that MAPPO's per-robot actors and central critic (in normalized value units, with
    `batch.values` and `batch.returns` normalized alike) share it."""
    entropy = entropy.mean()
    adv = batch.advantages
    if hp.normalize_advantage and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    log_ratio = log_prob - batch.log_probs
    ratio = log_ratio.exp()
    policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - hp.clip_range, 1 + hp.clip_range)).mean()
    if hp.clip_range_vf is None:
        value_loss = (batch.returns - values).square().mean()
    else:
        clipped = batch.values + (values - batch.values).clamp(-hp.clip_range_vf, hp.clip_range_vf)
        value_loss = torch.max((batch.returns - values).square(), (batch.returns - clipped).square()).mean()
    loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * value_loss
    with torch.no_grad():
        # The low-variance KL estimator (r - 1) - log r of Schulman's note "Approximating KL divergence".
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clipfrac = ((ratio - 1).abs() > hp.clip_range).float().mean()
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                  "approx_kl": approx_kl, "clipfrac": clipfrac}


def check_batch_size(section: str, batch_size: int, rollout: int, rollout_name: str) -> None:
    """ppo_epochs splits the rollout into equal minibatches: a batch_size that does not divide it is an
    error naming the config key, when the agent is built."""
    if rollout % batch_size:
        raise ValueError(f"{section}.batch_size {batch_size} must divide {rollout_name} = {rollout}")


def ppo_epochs(storage: RolloutStorage[BatchT], hp: PPOUpdate,
               loss: Callable[[BatchT], tuple[torch.Tensor, dict[str, torch.Tensor]]],
               step: Callable[[torch.Tensor], None], **replace: torch.Tensor) -> dict[str, float]:
    """PPO's update loop, MAPPO's too: n_epochs passes of shuffled minibatches (`replace` as in
    `RolloutStorage.flat`), a `step` on each one's loss, stopped where the approximate KL passes
    1.5 * target_kl (SB3's rule). Returns each loss term's mean over the minibatches stepped on."""
    num_minibatches = storage.steps * storage.num_envs // hp.batch_size
    names: list[str] = []
    rows: list[torch.Tensor] = []  # one stacked row per minibatch: no float() per term and step
    for batch in chain.from_iterable(storage.minibatches(num_minibatches, **replace) for _ in range(hp.n_epochs)):
        value, terms = loss(batch)
        if hp.target_kl is not None and terms["approx_kl"] > 1.5 * hp.target_kl:
            break
        step(value)
        names = list(terms)
        rows.append(torch.stack([terms[k].detach() for k in names]))
    means = torch.stack(rows).mean(0).tolist() if rows else []
    return {f"losses/{k}": v for k, v in zip(names, means, strict=True)}


def make_policy(cfg: RunConfig, env: VecEnv) -> ActorCritic:
    """The network this agent trains, for loading a checkpoint without an optimizer or storage."""
    return build_actor_critic(cfg, env)


class Agent(PolicyOptimizerState):
    """PPO over a vector env; the trainer calls collect() then update() each iteration."""

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        self.hp: Hyper = cfg.hyper
        self.device = device
        self.policy = make_policy(cfg, env).to(device)
        self.flat = FlatParameters(self.policy)
        self.optimizer = torch.optim.Adam([self.flat.param], lr=self.hp.learning_rate, eps=1e-5, fused=True)
        self.storage = rollout_storage(self.hp.n_steps, env, self.policy, device)
        self.collector: CollectorState = OnPolicyCollector(env, self.policy, self.hp.gamma, self.hp.scale_rewards,
                                                           device)
        check_batch_size("ppo", self.hp.batch_size, self.storage.steps * env.num_envs, "n_steps * num_envs")

    def start(self, seed: int) -> None:
        self.collector.reset(seed=seed)

    def collect(self, episodes: EpisodeStats) -> int:
        self.collector.fill(self.storage, episodes)
        return self.storage.steps * self.storage.num_envs

    def update(self, progress: float) -> dict[str, float]:
        """One PPO update on the full rollout; `progress` in [0, 1] drives the learning-rate schedule."""
        hp, st = self.hp, self.storage
        lr = learning_rate(hp.learning_rate, hp.anneal_lr, progress)
        set_learning_rate(self.optimizer, lr)
        st.compute_returns(self.collector.last_value(), hp.gamma, hp.gae_lambda)
        with torch.no_grad():  # the normalizer is frozen during the update: normalize the rollout once
            normalized_obs = self.policy.normalizer(st.obs)

        def step(loss: torch.Tensor) -> None:
            self.flat.zero_grad()
            loss.backward()
            self.flat.clip_grad_norm_(hp.max_grad_norm)
            self.optimizer.step()

        out = ppo_epochs(st, hp, lambda batch: ppo_loss(self.policy, batch, hp, normalized=True), step,
                         obs=normalized_obs)
        self.collector.after_update(st)
        st.clear()
        out["losses/explained_variance"] = explained_variance(st.values.flatten(), st.returns.flatten())
        out.update(policy_metrics(self.policy, lr))
        out.update(self.collector.timings)
        return out

    def close(self) -> None:
        """Nothing to release: the env is the trainer's, remote collectors are their backend's."""


ALGORITHM = Algorithm(name="ppo", agent=Agent, make_policy=make_policy)
