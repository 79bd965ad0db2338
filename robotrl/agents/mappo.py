"""MAPPO (Yu et al. 2022): PPO for a team, trained with a centralized critic, executed by each robot alone.

Every robot's actor sees only its local observation (one shared network with the agent index as an
input, or one network per robot); the critic sees the global `state()` during training. Each robot's
transition is a PPO sample with its own GAE over the shared team reward. Value targets are
normalized with running statistics (the MAPPO paper's "value normalization"). `critic: local` turns
it into IPPO (each critic sees only its robot's observation), for comparison.

The PPO details are those of agents/ppo.py: clipped surrogate, GAE(lambda), optional value clipping,
entropy bonus, per-minibatch advantage normalization, shuffled minibatches over several epochs,
gradient-norm clipping, linear learning-rate annealing, optional target-KL stop, observation
normalization inside the policy, and time-limit truncations bootstrapped from V(final state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import envs
from envs import multi_batch
from policies.multi_actor_critic import MultiActorCritic
from robotrl.agents.ppo import check_batch_size, clipped_loss, ppo_epochs
from robotrl.agents.protocol import Algorithm, RolloutCollector
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.returns import bootstrap_truncated, explained_variance, time_limit_cut
from robotrl.core.schedules import learning_rate, set_learning_rate
from robotrl.core.storage import Batch, RolloutStorage
from robotrl.core.vec_env import MultiVecEnv
from robotrl.hyper.mappo import Hyper


def make_env(cfg: RunConfig, num_envs: int) -> multi_batch.MultiBatch:
    """The batched multi-robot env (envs.multi_batch interface) for this config."""
    return envs.make_multi_batch(cfg.env.id, num_envs, **cfg.env.kwargs)


def make_policy(cfg: RunConfig, env: MultiVecEnv) -> MultiActorCritic:
    hp: Hyper = cfg.hyper
    pc = cfg.policy
    return MultiActorCritic(env.obs_dim, env.state_dim if hp.critic == "central" else env.obs_dim, env.act_dim,
                            env.num_agents, hidden=pc.hidden, activation=pc.activation,
                            init_log_std=pc.init_log_std, normalize_obs=pc.normalize_obs,
                            shared_actor=hp.shared_actor, action_low=env.action_low.tolist(),
                            action_high=env.action_high.tolist())


def critic_input(obs: torch.Tensor, state: torch.Tensor, critic: str) -> torch.Tensor:
    """[n, m, critic_dim]: the global state repeated for every robot (MAPPO) or the robot's own obs (IPPO)."""
    if critic == "central":
        return state.unsqueeze(1).expand(-1, obs.shape[1], -1)
    return obs


@torch.no_grad()
def evaluate(policy: MultiActorCritic, cfg: RunConfig, episodes: int, seed: int) -> dict[str, Any]:
    """Deterministic team evaluation, one episode per parallel env: the fields of `robotrl eval --json`."""
    env = make_env(cfg, episodes)
    device = next(policy.parameters()).device
    try:
        obs, _ = env.reset(seed=seed)
        idx = torch.arange(env.num_agents, device=device).expand(episodes, -1)
        returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
        finished, success = np.zeros(episodes, dtype=bool), np.full(episodes, np.nan)
        while not finished.all():
            action = policy.to_env(policy.deterministic(torch.as_tensor(obs, device=device), idx))
            obs, _, reward, terminated, truncated, info = env.step(action.cpu().numpy())
            live = ~finished
            returns[live] += reward[live]
            lengths[live] += 1
            done = (terminated | truncated) & live
            if "is_success" in info:
                success[done] = info["is_success"][done]
            finished |= done
    finally:
        env.close()
    has_success = not np.isnan(success).all()
    return {"episodes": episodes, "return_mean": float(returns.mean()), "return_std": float(returns.std()),
            "length_mean": float(lengths.mean()),
            "success_rate": float(np.nanmean(success)) if has_success else None}


@dataclass
class RobotBatch(Batch):
    """PPO's batch of robot-transitions plus what the central critic and the shared actor read."""

    critic_in: torch.Tensor
    agent: torch.Tensor


class MultiRollout(RolloutStorage[RobotBatch]):
    """(T, n * m, ...) tensors: robot j of env e is column e * m + j. A PPO rollout over robot-columns,
    with each one's critic input and agent index beside it, so PPO's minibatch generator serves."""

    def __init__(self, steps: int, columns: int, obs_dim: int, critic_dim: int, act_dim: int,
                 device: torch.device) -> None:
        super().__init__(steps, columns, (obs_dim,), (act_dim,), torch.float32, device, RobotBatch)
        self.critic_in = torch.zeros(steps, columns, critic_dim, device=device)
        self.agent = torch.zeros(steps, columns, dtype=torch.long, device=device)


class MultiCollector:
    """Steps the batched multi-robot env with the current actors and fills a MultiRollout."""

    def __init__(self, env: MultiVecEnv, policy: MultiActorCritic, hp: Hyper, device: torch.device) -> None:
        self.env, self.policy, self.hp, self.device = env, policy, hp, device
        self.timings: dict[str, float] = {}
        self.agent_idx = torch.arange(env.num_agents, device=device).expand(env.num_envs, -1)
        self.obs: torch.Tensor | None = None
        self.state: torch.Tensor | None = None

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def reset(self, seed: int | None = None) -> None:
        obs, state = self.env.reset(seed=seed)
        self.obs, self.state = self._t(obs), self._t(state)

    @torch.no_grad()
    def fill(self, st: MultiRollout, episodes: EpisodeStats) -> None:
        if self.obs is None or self.state is None:
            raise RuntimeError("MultiCollector.fill() before reset(seed) (Agent.start does it)")
        n, m = self.env.num_envs, self.env.num_agents
        for t in range(st.steps):
            c_in = critic_input(self.obs, self.state, self.hp.critic)
            action, log_prob = self.policy.act(self.obs, self.agent_idx)
            value = self.policy.value(c_in, self.agent_idx)
            obs, state, reward, terminated, truncated, info = self.env.step(self.policy.to_env(action).cpu().numpy())
            done = terminated | truncated
            success = info.get("is_success")
            episodes.add(reward, done, {"final_info": {"is_success": success}} if success is not None else {})
            team = self._t(reward).unsqueeze(1).expand(n, m)
            cut = time_limit_cut(terminated, truncated)
            if cut.any():
                ids = np.flatnonzero(cut)
                final = critic_input(self._t(info["final_obs"][ids]), self._t(info["final_state"][ids]),
                                     self.hp.critic)
                team = bootstrap_truncated(team, cut, self.policy.value(final, self.agent_idx[: len(ids)]),
                                           self.hp.gamma)
            st.obs[t], st.critic_in[t] = self.obs.reshape(n * m, -1), c_in.reshape(n * m, -1)
            st.agent[t], st.actions[t] = self.agent_idx.reshape(-1), action.reshape(n * m, -1)
            st.log_probs[t], st.values[t] = log_prob.reshape(-1), value.reshape(-1)
            st.rewards[t] = team.reshape(-1)
            st.dones[t] = self._t(done).unsqueeze(1).expand(n, m).reshape(-1)
            self.obs, self.state = self._t(obs), self._t(state)

    @torch.no_grad()
    def last_value(self) -> torch.Tensor:
        if self.obs is None or self.state is None:
            raise RuntimeError("MultiCollector.last_value() before reset(seed) (Agent.start does it)")
        return self.policy.value(critic_input(self.obs, self.state, self.hp.critic), self.agent_idx).reshape(-1)


def mappo_loss(policy: MultiActorCritic, batch: RobotBatch, hp: Hyper) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's loss per robot-transition: each robot's actor on its own observation, the critic on
    `critic_in` in normalized units (`batch.values` and `batch.returns` normalized by the caller)."""
    log_prob, entropy = policy.log_prob_entropy(batch.obs, batch.agent, batch.actions)
    return clipped_loss(batch, log_prob, entropy, policy.normalized_value(batch.critic_in, batch.agent), hp)


class Agent:
    """MAPPO / IPPO over a batched multi-robot env; the trainer calls collect() then update()."""

    def __init__(self, cfg: RunConfig, env: MultiVecEnv, device: torch.device) -> None:
        self.hp: Hyper = cfg.hyper
        self.device = device
        self.policy = make_policy(cfg, env).to(device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.hp.learning_rate, eps=1e-5)
        columns = env.num_envs * env.num_agents
        self.storage = MultiRollout(self.hp.n_steps, columns, env.obs_dim, self.policy.critic_dim, env.act_dim,
                                    device)
        self.collector: RolloutCollector[MultiRollout] = MultiCollector(env, self.policy, self.hp, device)
        self.env_steps_per_rollout = self.hp.n_steps * env.num_envs
        check_batch_size("mappo", self.hp.batch_size, self.hp.n_steps * columns, "n_steps * num_envs * num_agents")

    def start(self, seed: int) -> None:
        self.collector.reset(seed=seed)

    def collect(self, episodes: EpisodeStats) -> int:
        self.collector.fill(self.storage, episodes)
        return self.env_steps_per_rollout

    def update(self, progress: float) -> dict[str, float]:
        hp, st, policy = self.hp, self.storage, self.policy
        lr = learning_rate(hp.learning_rate, hp.anneal_lr, progress)
        set_learning_rate(self.optimizer, lr)
        st.compute_returns(self.collector.last_value(), hp.gamma, hp.gae_lambda)
        if hp.value_norm:
            policy.value_norm.update(st.returns)
        # The critic learns in normalized units; the statistics stay fixed for the update's epochs.
        norm = policy.value_norm.normalize if hp.value_norm else (lambda x: x)

        def step(loss: torch.Tensor) -> None:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), hp.max_grad_norm)
            self.optimizer.step()

        out = ppo_epochs(st, hp, lambda batch: mappo_loss(policy, batch, hp), step,
                         values=norm(st.values), returns=norm(st.returns))
        # Fold this rollout into the input normalizers between updates, never mid-rollout.
        policy.normalizer.update(st.obs.reshape(-1, st.obs.shape[-1]))
        policy.critic_normalizer.update(st.critic_in.reshape(-1, st.critic_in.shape[-1]))
        out["losses/explained_variance"] = explained_variance(st.values.flatten(), st.returns.flatten())
        out["charts/learning_rate"] = lr
        out["charts/action_std"] = float(policy.log_std.detach().exp().mean())
        out.update(self.collector.timings)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])

    def close(self) -> None:
        """Nothing to release: the env is the trainer's, remote collectors are their backend's."""


ALGORITHM = Algorithm(name="mappo", agent=Agent, make_policy=make_policy, make_env=make_env, evaluate=evaluate,
                      multi_robot=True)
