"""Soft Actor-Critic (Haarnoja et al. 2018), and TD3 (Fujimoto et al. 2018) as an option of the same file.

SAC: a tanh-squashed Gaussian actor maximizes Q - alpha * log pi; twin critics regress onto the soft
Bellman target r + gamma * (1 - terminated) * (min Q_target(s', a') - alpha * log pi(a'|s')), a' drawn
from the current actor; the targets follow the critics by Polyak averaging; alpha (the temperature) is
learned so that the policy's entropy tracks a target. One gradient step runs in SB3's order, so that
the same weights and batch give SB3's numbers (tests/test_sb3_sac_equivalence.py): the temperature
step first (every loss of the step uses alpha from before it), then the critics, then the actor
against the just-updated critics, then the targets.

Collection: uniformly random actions for the first `learning_starts` env steps, then the sampled
actor, all envs in one batch. A time limit is not a terminal state: a truncated transition stores the
env's `final_obs` and bootstraps from it; only `terminated` zeroes the bootstrap. The replay, both RNGs
(numpy for replay sampling and warm-up actions, a torch Generator on the run's device for the actor's
noise), the optimizers and the temperature are in the checkpoint, so a resumed run continues exactly.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch.nn import functional as F

from policies.squashed_gaussian import SquashedGaussianActor, TwinQ
from robotrl.agents.protocol import Algorithm
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.replay import ReplayBuffer, Transitions
from robotrl.core.vec_env import VecEnv
from robotrl.core.weight_average import lerp_weights_
from robotrl.hyper.sac import Hyper

METRICS = ("losses/qf_loss", "losses/actor_loss", "losses/alpha", "losses/alpha_loss", "losses/entropy",
           "losses/qf1_values", "losses/qf2_values")
"""What each gradient step adds to the running sums update() reports (CleanRL's names)."""


def make_policy(cfg: RunConfig, env: VecEnv) -> SquashedGaussianActor:
    """The actor for a flat Box observation and a bounded Box action space."""
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(act_space, spaces.Box) or len(act_space.shape) != 1:
        raise ValueError(f"{cfg.env.id}: SAC needs a flat Box action space, got {act_space}")
    if not np.all(np.isfinite(act_space.low)) or not np.all(np.isfinite(act_space.high)):
        raise ValueError(f"{cfg.env.id}: SAC squashes actions into the bounds, which must be finite: {act_space}")
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"{cfg.env.id}: SAC needs a flat Box observation space, got {obs_space}")
    return SquashedGaussianActor(obs_space.shape[0], act_space.shape[0], hidden=cfg.policy.hidden,
                                 activation=cfg.policy.activation, normalize_obs=cfg.policy.normalize_obs,
                                 action_low=act_space.low.tolist(), action_high=act_space.high.tolist())


class FusedAdam(torch.optim.Adam):
    """torch.optim.Adam with fused=True whose step() calls the fused kernel directly.

    The same update (bit for bit), state and checkpoint format (state_dict, load_state_dict, hooks and
    param_groups are Adam's; tests/test_sac.py). What it skips is the generic step's Python around the
    kernel (grouping by device and dtype, per-parameter checks and lazy-init tests) and zero_grad's: on
    the twin critics' 145k parameters, under this machine's load, Adam's step took 369 us and this one
    230-310 us, of which the kernel is 90-120 us and the step counters' increment 30-60 us. Options the
    direct call does not reproduce (amsgrad, capturable, differentiable, decoupled weight decay, a tensor
    learning rate) raise a ValueError at the step."""

    def __init__(self, params: Any, lr: float) -> None:
        super().__init__(params, lr=lr, fused=True)
        for p in (p for group in self.param_groups for p in group["params"]):
            if p.dtype != torch.float32 or p.device.type not in ("cpu", "cuda"):
                raise ValueError(f"FusedAdam steps float32 CPU or CUDA parameters, got {p.dtype} on {p.device}")

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["amsgrad"] or group.get("capturable") or group.get("differentiable") or \
                    group.get("decoupled_weight_decay") or isinstance(group["lr"], torch.Tensor):
                raise ValueError("FusedAdam: amsgrad, capturable, differentiable, decoupled weight decay and "
                                 "a tensor learning rate are not supported")
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self.state[p] for p in params]
            for p, state in zip(params, states, strict=True):
                if not state:  # Adam's lazy initialization for the fused kernel: a float32 step on the device
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)  # pyright: ignore[reportPrivateImportUsage]
            beta1, beta2 = group["betas"]
            torch._fused_adam_(  # pyright: ignore[reportPrivateImportUsage]
                params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [], steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            super().zero_grad(set_to_none=False)
            return
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def _adam(params: Any, lr: float, device: torch.device) -> torch.optim.Adam:
    # The fused kernel steps every parameter in one call: the unfused CPU loop took 1.8 ms per critic
    # step here, more than the critics' forward and backward (SB3 uses the unfused one). FusedAdam calls
    # it without torch's per-step Python.
    # torch.optim.Adam's fused kernel is private API: a torch without it (or without its CPU version,
    # older than 2.4) gets the public optimizer, the same update a little slower.
    params = list(params)
    if device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_"):
        try:
            return FusedAdam(params, lr)
        except RuntimeError:
            pass
    return torch.optim.Adam(params, lr=lr)


@torch.no_grad()
def _polyak_(targets: tuple[torch.Tensor, ...], sources: tuple[torch.Tensor, ...], tau: float) -> None:
    """targets <- targets + tau * (sources - targets), all tensors in one call (lerp_weights_ without
    its per-tensor loop; the twin critics hold no buffers)."""
    torch._foreach_lerp_(targets, sources, tau)  # pyright: ignore[reportPrivateImportUsage]


class Agent:
    """SAC (or TD3) over a vector env. collect() interleaves env steps and gradient steps for
    `steps_per_iteration` env steps; update() reports their averages."""

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        hp: Hyper = cfg.hyper
        self.hp, self.env, self.device, self.num_envs = hp, env, device, env.num_envs
        self.total_steps = cfg.train.total_steps
        self.actor = make_policy(cfg, env).to(device)
        obs_dim, self.act_dim = self.actor.obs_dim, self.actor.act_dim
        self.critic = TwinQ(obs_dim, self.act_dim, cfg.policy.hidden, cfg.policy.activation).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False) if hp.td3 else None
        self.actor_optimizer = _adam(self.actor.parameters(), hp.learning_rate, device)
        self.critic_optimizer = _adam(self.critic.parameters(), hp.learning_rate, device)
        self.learn_alpha = hp.ent_coef == "auto" and not hp.td3
        init = hp.ent_coef_init if hp.ent_coef == "auto" else float(hp.ent_coef)
        # log alpha is what the temperature step moves; a fixed alpha of 0 has no log, so it stays as is.
        self.log_alpha = torch.tensor(math.log(init) if init > 0 else -math.inf, device=device,
                                      requires_grad=self.learn_alpha)
        self.alpha_optimizer = _adam([self.log_alpha], hp.learning_rate, device) if self.learn_alpha else None
        self.target_entropy = -float(self.act_dim) if hp.target_entropy == "auto" else float(hp.target_entropy)
        self.replay = ReplayBuffer(hp.buffer_size, (obs_dim,), np.float32, (self.act_dim,), np.float32)
        self.rng = np.random.default_rng(cfg.seed)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed)
        self.seed = cfg.seed
        space = env.single_action_space
        if not isinstance(space, spaces.Box):  # make_policy refused it already; this tells the type checker
            raise ValueError(f"{cfg.env.id}: SAC needs a Box action space, got {space}")
        self.action_mid = ((space.high + space.low) / 2).astype(np.float32)
        self.action_half = ((space.high - space.low) / 2).astype(np.float32)
        self.obs: np.ndarray | None = None
        self.env_steps = 0
        self.gradient_updates = 0
        self.sums = torch.zeros(len(METRICS), device=device)
        self._zero = torch.zeros((), device=device)  # a metric this step does not report
        # Parameter lists for the Polyak step: load_state_dict and Adam write these tensors in place.
        self._critic_pairs = (tuple(self.critic_target.parameters()), tuple(self.critic.parameters()))
        self.summed = 0
        self.timings = {"time/env_s": 0.0, "time/learn_s": 0.0}

    @property
    def policy(self) -> SquashedGaussianActor:
        return self.actor

    def start(self, seed: int) -> None:
        self.obs, _ = self.env.reset(seed=seed)

    def _noise(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    def _act(self, obs: np.ndarray) -> np.ndarray:
        """[-1, 1] actions for all envs at once: uniform during warm-up, else the sampled actor (TD3:
        its mean plus Gaussian noise)."""
        n = self.num_envs
        if self.env_steps < self.hp.learning_starts:
            return self.rng.uniform(-1.0, 1.0, (n, self.act_dim)).astype(np.float32)
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        noise = self._noise(n, self.act_dim)
        if self.hp.td3:
            with torch.no_grad():
                a = (self.actor.deterministic(x) + noise * self.hp.exploration_noise).clamp_(-1.0, 1.0)
        else:
            a = self.actor.explore(x, noise)
        return a.cpu().numpy()

    def _env_step(self, episodes: EpisodeStats) -> None:
        if self.obs is None:
            raise RuntimeError("sac: collect() before start(seed)")
        obs = self.obs
        action = self._act(obs)
        next_obs, reward, terminated, truncated, infos = self.env.step(self.action_mid + self.action_half * action)
        done = terminated | truncated
        episodes.add(reward, done, infos)
        stored_next = next_obs
        if done.any():
            # Time limits are not terminal states: the truncated step bootstraps from its real last state.
            stored_next = next_obs.copy()
            for i in np.flatnonzero(done):
                stored_next[i] = infos["final_obs"][i]
        if self.env_steps < self.hp.learning_starts:
            # The normalizer learns from the warm-up data only, then stays fixed so targets do not drift.
            self.actor.normalizer.update(torch.as_tensor(obs, device=self.device))
        self.replay.add(Transitions(obs, action, reward.astype(np.float32), stored_next,
                                    terminated.astype(np.float32), np.full(self.num_envs, self.hp.gamma, np.float32)))
        self.obs = next_obs
        self.env_steps += self.num_envs

    def collect(self, episodes: EpisodeStats) -> int:
        hp, steps = self.hp, 0
        # The last iteration stops at the run's budget: a comparison gives both sides the same steps.
        budget = min(hp.steps_per_iteration, max(self.total_steps - self.env_steps, 1))
        while steps < budget:
            t0 = time.perf_counter()
            for _ in range(hp.train_freq):
                self._env_step(episodes)
                steps += self.num_envs
            t1 = time.perf_counter()
            if self.env_steps > hp.learning_starts:  # SB3's condition: strictly after the warm-up
                for _ in range(hp.gradient_steps):
                    self.gradient_step(self.sample())
            self.timings["time/env_s"] += t1 - t0
            self.timings["time/learn_s"] += time.perf_counter() - t1
        return steps

    def sample(self) -> Transitions:
        """A replayed minibatch as tensors on the run's device."""
        t = self.replay.sample(self.hp.batch_size, self.rng)
        return Transitions(*(torch.from_numpy(a).to(self.device, non_blocking=True)
                             for a in (t.obs, t.actions, t.rewards, t.next_obs, t.terminated, t.discounts)))

    def gradient_step(self, batch: Transitions, noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One update from a batch of tensors; `noise` [2, batch, act_dim] (the actor's draws for s and for
        s'; TD3: the target smoothing noise in row 1) is drawn from the agent's generator when not given.
        Returns the step's losses (detached)."""
        if noise is None:
            noise = self._noise(2, len(batch.rewards), self.act_dim)
        norm = self.actor.normalizer
        obs, next_obs = norm(batch.obs), norm(batch.next_obs)
        out = self._td3_step(batch, obs, next_obs, noise[1]) if self.hp.td3 else \
            self._sac_step(batch, obs, next_obs, noise)
        self.gradient_updates += 1
        self.sums += torch.stack([out.get(k, self._zero) for k in METRICS])
        self.summed += 1
        return out

    def _sac_step(self, batch: Transitions, obs: torch.Tensor, next_obs: torch.Tensor,
                  noise: torch.Tensor) -> dict[str, torch.Tensor]:
        hp = self.hp
        actions_pi, log_prob = self.actor.sample(obs, noise[0])
        with torch.no_grad():
            alpha = self.log_alpha.exp()
            mean_log_prob = log_prob.mean()
            out = {"losses/alpha": alpha, "losses/entropy": -mean_log_prob}
            if self.alpha_optimizer is not None:
                # SB3's temperature loss, -mean(log_alpha * (log pi + target entropy)) with log pi fixed, is
                # linear in log_alpha: its gradient, -(mean log pi + target entropy), is set without a
                # backward pass (one fewer graph and engine call per step).
                slope = mean_log_prob + self.target_entropy
                out["losses/alpha_loss"] = -self.log_alpha * slope
                self.log_alpha.grad = -slope
                self.alpha_optimizer.step()

        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(next_obs, noise[1])
            next_q = torch.min(*self.critic_target(next_obs, next_actions)) - alpha * next_log_prob
            target = batch.rewards + batch.discounts * (1.0 - batch.terminated) * next_q
        q1, q2 = self.critic(obs, batch.actions)
        critic_loss = 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # The critics' weights are held fixed here: the actor's loss moves only the actor.
        actor_loss = (alpha * log_prob - torch.min(*self.critic(obs, actions_pi, frozen=True))).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        if self.gradient_updates % hp.target_update_interval == 0:
            _polyak_(*self._critic_pairs, hp.tau)
        with torch.no_grad():
            out.update({"losses/qf_loss": critic_loss.detach(), "losses/actor_loss": actor_loss.detach(),
                        "losses/qf1_values": q1.mean(), "losses/qf2_values": q2.mean()})
        return out

    def _td3_step(self, batch: Transitions, obs: torch.Tensor, next_obs: torch.Tensor,
                  noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """TD3: target policy smoothing, the sum of both critics' MSE (as SB3's TD3), and every
        `policy_delay` critic steps one actor step on Q1 and one Polyak step of both targets."""
        hp, actor_target = self.hp, self.actor_target
        assert actor_target is not None
        with torch.no_grad():
            smoothing = (noise * hp.target_noise).clamp_(-hp.target_noise_clip, hp.target_noise_clip)
            next_actions = (actor_target.mean_action(next_obs) + smoothing).clamp_(-1.0, 1.0)
            next_q = torch.min(*self.critic_target(next_obs, next_actions))
            target = batch.rewards + batch.discounts * (1.0 - batch.terminated) * next_q
        q1, q2 = self.critic(obs, batch.actions)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        out = {"losses/qf_loss": critic_loss.detach(), "losses/qf1_values": q1.detach().mean(),
               "losses/qf2_values": q2.detach().mean()}
        if (self.gradient_updates + 1) % hp.policy_delay == 0:
            actor_loss = -self.critic.q1(obs, self.actor.mean_action(obs), frozen=True).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            _polyak_(*self._critic_pairs, hp.tau)
            lerp_weights_(actor_target, self.actor, hp.tau)
            out["losses/actor_loss"] = actor_loss.detach()
        return out

    def update(self, progress: float) -> dict[str, float]:
        """Learning already happened in collect(); report its averages and where the time went."""
        del progress
        out = {"charts/replay_size": float(self.replay.size), "charts/gradient_updates": float(self.gradient_updates),
               **self.timings}
        if self.summed:
            means = (self.sums / self.summed).tolist()
            out.update({k: v for k, v in zip(METRICS, means, strict=True)
                        if not (self.hp.td3 and k in ("losses/alpha", "losses/alpha_loss", "losses/entropy"))})
        self.sums.zero_()
        self.summed = 0
        self.timings = dict.fromkeys(self.timings, 0.0)
        return out

    def state_dict(self) -> dict[str, Any]:
        state = {"policy": self.actor.state_dict(), "critic": self.critic.state_dict(),
                 "critic_target": self.critic_target.state_dict(),
                 "actor_optimizer": self.actor_optimizer.state_dict(),
                 "critic_optimizer": self.critic_optimizer.state_dict(),
                 "log_alpha": self.log_alpha.detach().cpu().clone(), "replay": self.replay.state_dict(),
                 "rng": self.rng.bit_generator.state, "generator": self.generator.get_state(),
                 "env_steps": self.env_steps, "gradient_updates": self.gradient_updates}
        if self.alpha_optimizer is not None:
            state["alpha_optimizer"] = self.alpha_optimizer.state_dict()
        if self.actor_target is not None:
            state["actor_target"] = self.actor_target.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["policy"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        if self.actor_target is not None:
            self.actor_target.load_state_dict(state["actor_target"])
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        saved = state["generator"]
        if saved.numel() == self.generator.get_state().numel():
            self.generator.set_state(saved)
        else:
            # Resumed on another device (train.device may change on resume): a CPU and a CUDA generator keep
            # states of different kinds, so the noise stream restarts from the seed and the step.
            self.generator.manual_seed(self.seed + int(state["env_steps"]))
        self.env_steps, self.gradient_updates = state["env_steps"], state["gradient_updates"]

    def close(self) -> None:
        """Nothing to release: the env is the trainer's."""


ALGORITHM = Algorithm(name="sac", agent=Agent, make_policy=make_policy)
