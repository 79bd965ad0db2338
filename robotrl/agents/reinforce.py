"""REINFORCE (Williams 1992): Monte Carlo policy gradient over whole episodes, optional learned baseline.

Each update uses every episode that finished since the last one (at least `batch_steps`
transitions): grad = mean_t grad log pi(a_t|s_t) * A_t with A_t = G_t (no baseline) or
G_t - V(s_t) (baseline), G_t the discounted reward-to-go. With a baseline the critic is fitted to
G_t by `value_steps` full-batch steps of its own optimizer after the policy step, so the baseline
used for a batch never saw that batch. Episodes still running when an update happens finish under
the new policy and join the next batch (their early steps are one update old); a time-limit cut is
valued gamma * V(final_obs) with a baseline and 0 without. `grad_var_chunks` turns on a
diagnostic: the variance of the policy-gradient estimate with and without the baseline, on the
same batch (the critic is then fitted even when the policy does not use it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from policies.actor_critic import ActorCritic
from robotrl.agents.common import build_actor_critic
from robotrl.agents.protocol import Algorithm
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.returns import bootstrap_truncated, explained_variance, time_limit_cut
from robotrl.core.storage import EpisodeBatch, EpisodeStorage
from robotrl.core.vec_env import VecEnv
from robotrl.hyper.reinforce import Hyper


def actor_parameters(policy: ActorCritic) -> list[nn.Parameter]:
    return [p for name, p in policy.named_parameters() if not name.startswith("critic.")]


def reinforce_loss(policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor,
                   ent_coef: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-mean(log pi(a|s) * A) - ent_coef * entropy: its gradient is the REINFORCE estimate."""
    dist = policy.distribution(obs)
    log_prob = policy.log_prob(dist, actions)
    entropy = policy.entropy(dist).mean()
    policy_loss = -(log_prob * advantages).mean()
    return policy_loss - ent_coef * entropy, {"policy_loss": policy_loss, "entropy": entropy}


def gradient_variance(policy: ActorCritic, obs: torch.Tensor, actions: torch.Tensor,
                      advantages: dict[str, torch.Tensor], chunks: int,
                      generator: torch.Generator | None = None) -> dict[str, float]:
    """Total variance (trace of the covariance) of the batch policy-gradient estimate, per advantage.

    The batch is split at random into `chunks` equal parts; each part gives an estimate g_k of the
    gradient, and Var(mean of the batch) = sum over parameters of var_k(g_k) / chunks. Every
    advantage variant is measured on the same parts of the same batch.
    """
    params = actor_parameters(policy)
    perm = torch.randperm(obs.shape[0], generator=generator)
    size = obs.shape[0] // chunks
    grads: dict[str, list[torch.Tensor]] = {k: [] for k in advantages}
    for c in range(chunks):
        idx = perm[c * size:(c + 1) * size]
        log_prob = policy.log_prob(policy.distribution(obs[idx]), actions[idx])
        for k, adv in advantages.items():
            g = torch.autograd.grad(-(log_prob * adv[idx]).mean(), params, retain_graph=True)
            grads[k].append(torch.cat([x.flatten() for x in g]))
    return {k: float(torch.stack(v).var(0).sum() / chunks) for k, v in grads.items()}


class EpisodeCollector:
    """Steps a vector env with the current policy until enough whole episodes are stored."""

    def __init__(self, env: VecEnv, policy: ActorCritic, gamma: float, bootstrap: bool, device: torch.device) -> None:
        self.env, self.policy, self.gamma, self.bootstrap, self.device = env, policy, gamma, bootstrap, device
        self.storage = EpisodeStorage(env.num_envs)
        self.obs: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        self.obs, _ = self.env.reset(seed=seed)
        self.storage.clear_all()

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def fill(self, min_steps: int, episodes: EpisodeStats) -> int:
        """Step until `min_steps` transitions of finished episodes are stored; returns the env steps taken."""
        if self.obs is None:
            raise RuntimeError("EpisodeCollector.fill() before reset(seed) (Agent.start does it)")
        taken = 0
        while self.storage.finished_steps < min_steps:
            obs = self._tensor(self.obs)
            action, _, _ = self.policy.act(obs)
            self.obs, reward, terminated, truncated, infos = self.env.step(self.policy.to_env(action).cpu().numpy())
            done = terminated | truncated
            episodes.add(reward, done, infos)
            # The value of what a cut removed: a zero reward bootstrapped where the limit cut.
            tail = torch.zeros(self.env.num_envs)
            cut = time_limit_cut(terminated, truncated)
            if self.bootstrap and cut.any():
                ids = np.flatnonzero(cut)
                with torch.no_grad():
                    final = self._tensor(np.stack([infos["final_obs"][i] for i in ids]))
                    tail = bootstrap_truncated(tail, cut, self.policy.value(final).cpu(), self.gamma)
            self.storage.add(obs.cpu(), action.cpu(), torch.as_tensor(reward), torch.as_tensor(done), tail)
            taken += self.env.num_envs
        return taken

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


def make_policy(cfg: RunConfig, env: VecEnv) -> ActorCritic:
    """The network this agent trains, for loading a checkpoint without an optimizer or storage."""
    return build_actor_critic(cfg, env)


class Agent:
    """REINFORCE over a vector env; the trainer calls collect() then update() each iteration."""

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        self.hp: Hyper = cfg.hyper
        self.device = device
        self.policy: ActorCritic = make_policy(cfg, env).to(device)
        self.optimizer = torch.optim.Adam(actor_parameters(self.policy), lr=self.hp.learning_rate)
        self.value_optimizer = torch.optim.Adam(self.policy.critic.parameters(), lr=self.hp.value_learning_rate)
        self.collector = EpisodeCollector(env, self.policy, self.hp.gamma, self.hp.baseline, device)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.batch: EpisodeBatch | None = None

    def start(self, seed: int) -> None:
        self.collector.reset(seed=seed)

    def collect(self, episodes: EpisodeStats) -> int:
        taken = self.collector.fill(self.hp.batch_steps, episodes)
        self.batch = self.collector.storage.take(self.hp.gamma)
        return taken

    def update(self, progress: float) -> dict[str, float]:
        """One policy step on the batch's episodes, then the baseline's steps; `progress` is unused."""
        del progress
        hp, b = self.hp, self.batch
        if b is None:
            raise RuntimeError("reinforce: update() without a collect() before it")
        obs, actions, returns = b.obs.to(self.device), b.actions.to(self.device), b.returns.to(self.device)
        with torch.no_grad():
            values = self.policy.value(obs)
        adv = returns - values if hp.baseline else returns
        if hp.normalize_advantage and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        out: dict[str, float] = {}
        if hp.grad_var_chunks:
            var = gradient_variance(self.policy, obs, actions, {"return": returns, "baseline": returns - values},
                                    hp.grad_var_chunks, self.generator)
            out.update({"diag/pg_variance_return": var["return"], "diag/pg_variance_baseline": var["baseline"]})
        loss, terms = reinforce_loss(self.policy, obs, actions, adv, hp.ent_coef)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hp.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(actor_parameters(self.policy), hp.max_grad_norm)
        self.optimizer.step()
        # Without a baseline the critic is still fitted when the variance is measured, so that both
        # estimators can be compared on this run's batches too; the policy never sees it.
        if hp.baseline or hp.grad_var_chunks:
            for _ in range(hp.value_steps):
                value_loss = (self.policy.value(obs) - returns).square().mean()
                self.value_optimizer.zero_grad(set_to_none=True)
                value_loss.backward()
                self.value_optimizer.step()
                out["losses/value_loss"] = float(value_loss.detach())
            out["losses/explained_variance"] = explained_variance(values, returns)
        self.policy.normalizer.update(obs)
        out.update({f"losses/{k}": float(v.detach()) for k, v in terms.items()})
        out["charts/batch_episodes"] = float(b.episode[-1] + 1)
        if self.policy.continuous:
            out["charts/action_std"] = float(self.policy.log_std.detach().exp().mean())
        self.batch = None
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "value_optimizer": self.value_optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.generator.set_state(state["generator"])

    def close(self) -> None:
        """Nothing to release: the env is the trainer's."""


ALGORITHM = Algorithm(name="reinforce", agent=Agent, make_policy=make_policy)
