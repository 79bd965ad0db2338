"""Our run config as an SB3 model: the same env, wrappers, normalization, network, budget and seed.

What is translated, and the differences that remain on purpose:
- Env: the same Gymnasium id and kwargs, N copies in SB3's default DummyVecEnv (autoreset at the done
  step, the final observation in `info["terminal_observation"]`: our SAME_STEP layout).
- Actions: our Gaussian acts in [-1, 1] units and `to_env` maps them onto the actuator bounds; SB3 acts
  in the env's units, so its env is wrapped in RescaleAction(-1, 1): both learn the same parametrization.
- Normalization: `policy.normalize_obs` -> VecNormalize(norm_obs), our reward scaling -> norm_reward
  (the same running return variance, clip 10, eps 1e-8). SB3 updates the observation statistics at every
  env step; ours folds a rollout in between updates, so the policy never shifts mid-rollout.
- Network: net_arch dict(pi=hidden, vf=hidden) (separate trunks, as ours), the same activation,
  orthogonal init (gains sqrt(2), 0.01 for the action head, 1 for the value head), log_std_init.
- Optimizer: Adam with eps 1e-5 in both; a linearly annealed learning rate becomes SB3's schedule on
  progress_remaining, which SB3 evaluates at the same point (after each rollout).
- DQN: train_freq counts vector steps and target_update_interval env steps on both sides; our optional
  observation normalizer learns from the warm-up data only, VecNormalize keeps updating.
- PPO value clipping: SB3 takes the squared error of the clipped value; ours takes the max of the
  clipped and unclipped errors (as OpenAI baselines). Only matters when clip_range_vf is set.
- SAC: net_arch hidden for actor and critics, PyTorch's default init on both sides; ent_coef "auto" with
  ent_coef_init becomes "auto_<init>". SB3 counts target_update_interval within each train() call (it
  restarts at every round of gradient_steps), ours over the run: equal for the default interval 1. Our
  optional observation normalizer learns from the warm-up data only, VecNormalize keeps updating. Ours
  steps Adam with the fused kernel, SB3 with the loop: the same update to float rounding.
- sac.td3 -> SB3's TD3 (policy_delay, target_policy_noise, target_noise_clip, Gaussian action noise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.wrappers import RescaleAction
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
from torch import nn

import envs
from robotrl.config import RunConfig

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def _single_env(cfg: RunConfig) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env = envs.make(cfg.env.id, **cfg.env.kwargs)
        if isinstance(env.action_space, spaces.Box):
            ones = np.ones(env.action_space.shape, dtype=np.float32)
            env = RescaleAction(env, -ones, ones)
        return env

    return make


def make_sb3_env(cfg: RunConfig) -> VecEnv:
    """cfg.env.num_envs copies in a DummyVecEnv, under VecNormalize as our normalization settings say."""
    venv = DummyVecEnv([_single_env(cfg)] * cfg.env.num_envs)
    scale_rewards = bool(getattr(cfg.hyper, "scale_rewards", False))
    gamma = float(getattr(cfg.hyper, "gamma", 0.99))
    if cfg.policy.normalize_obs or scale_rewards:
        venv = VecNormalize(venv, norm_obs=cfg.policy.normalize_obs, norm_reward=scale_rewards,
                            clip_obs=10.0, clip_reward=10.0, gamma=gamma, epsilon=1e-8)
    return venv


def _schedule(lr: float, anneal: bool) -> float | Callable[[float], float]:
    if not anneal:
        return lr
    return lambda progress_remaining: lr * progress_remaining


def _policy_kwargs(cfg: RunConfig) -> dict[str, Any]:
    pc = cfg.policy
    if cfg.algo in ("dqn", "sac"):
        return {"net_arch": list(pc.hidden), "activation_fn": ACTIVATIONS[pc.activation]}
    out: dict[str, Any] = {"net_arch": {"pi": list(pc.hidden), "vf": list(pc.hidden)},
                           "activation_fn": ACTIVATIONS[pc.activation], "ortho_init": True}
    probe = envs.make(cfg.env.id, **cfg.env.kwargs)
    if isinstance(probe.action_space, spaces.Box):
        out["log_std_init"] = pc.init_log_std
    probe.close()
    return out


def ppo_kwargs(cfg: RunConfig) -> dict[str, Any]:
    hp = cfg.hyper
    return {"learning_rate": _schedule(hp.learning_rate, hp.anneal_lr), "n_steps": hp.n_steps,
            "batch_size": hp.batch_size, "n_epochs": hp.n_epochs, "gamma": hp.gamma,
            "gae_lambda": hp.gae_lambda, "clip_range": hp.clip_range, "clip_range_vf": hp.clip_range_vf,
            "normalize_advantage": hp.normalize_advantage, "ent_coef": hp.ent_coef, "vf_coef": hp.vf_coef,
            "max_grad_norm": hp.max_grad_norm, "target_kl": hp.target_kl}


def a2c_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """A2C: the optimizer goes in explicitly (SB3 picks RMSprop alpha 0.99 itself otherwise)."""
    hp = cfg.hyper
    rmsprop = hp.optimizer == "rmsprop"
    return {"learning_rate": _schedule(hp.learning_rate, hp.anneal_lr), "n_steps": hp.n_steps, "gamma": hp.gamma,
            "gae_lambda": hp.gae_lambda, "ent_coef": hp.ent_coef, "vf_coef": hp.vf_coef,
            "max_grad_norm": hp.max_grad_norm, "normalize_advantage": hp.normalize_advantage,
            "use_rms_prop": rmsprop, "rms_prop_eps": hp.optimizer_eps}


def a2c_optimizer(cfg: RunConfig) -> dict[str, Any]:
    hp = cfg.hyper
    if hp.optimizer == "rmsprop":
        return {"optimizer_class": torch.optim.RMSprop,
                "optimizer_kwargs": {"alpha": hp.rmsprop_alpha, "eps": hp.optimizer_eps, "weight_decay": 0}}
    return {"optimizer_class": torch.optim.Adam, "optimizer_kwargs": {"eps": hp.optimizer_eps}}


def dqn_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """DQN: train_freq counts vector steps and target_update_interval env steps on both sides.

    SB3 has neither Double DQN, a dueling head, an MSE loss, weight averaging nor shift augmentation, and
    its MlpPolicy is not our pixel CNN: such configs are refused rather than compared unlike for like.
    """
    hp = cfg.hyper
    pixels = cfg.env.kwargs.get("pixels") not in (None, False)  # `pixels: {}` renders with the defaults
    unsupported = [name for name, on in (("double", hp.double), ("dueling", hp.dueling),
                                         ("loss: mse", hp.loss != "huber"),
                                         ("average_from (weight averaging)", hp.average_from is not None),
                                         ("augment_shift", hp.augment_shift > 0),
                                         ("pixel observations (our CNN)", pixels))
                   if on]
    if unsupported:
        raise ValueError(f"dqn: SB3 has no {', '.join(unsupported)}; compare a config without it")
    return {"learning_rate": _schedule(hp.learning_rate, hp.anneal_lr), "buffer_size": hp.buffer_size,
            "learning_starts": hp.learning_starts,
            "batch_size": hp.batch_size, "tau": hp.tau, "gamma": hp.gamma, "train_freq": hp.train_freq,
            "gradient_steps": hp.gradient_steps, "n_steps": hp.n_step,
            "target_update_interval": hp.target_update_interval, "exploration_fraction": hp.exploration_fraction,
            "exploration_initial_eps": hp.exploration_initial_eps,
            "exploration_final_eps": hp.exploration_final_eps,
            "max_grad_norm": hp.max_grad_norm if hp.max_grad_norm is not None else float("inf")}


def sac_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """SAC, or with sac.td3 SB3's TD3 (make_sb3_model picks the class)."""
    hp = cfg.hyper
    common = {"learning_rate": hp.learning_rate, "buffer_size": hp.buffer_size,
              "learning_starts": hp.learning_starts, "batch_size": hp.batch_size, "tau": hp.tau, "gamma": hp.gamma,
              "train_freq": hp.train_freq, "gradient_steps": hp.gradient_steps}
    if hp.td3:
        probe = envs.make(cfg.env.id, **cfg.env.kwargs)
        act_dim = probe.action_space.shape[0]
        probe.close()
        noise = NormalActionNoise(np.zeros(act_dim), np.full(act_dim, hp.exploration_noise))
        return {**common, "policy_delay": hp.policy_delay, "target_policy_noise": hp.target_noise,
                "target_noise_clip": hp.target_noise_clip, "action_noise": noise}
    ent_coef = f"auto_{hp.ent_coef_init}" if hp.ent_coef == "auto" else hp.ent_coef
    return {**common, "ent_coef": ent_coef, "target_entropy": hp.target_entropy,
            "target_update_interval": hp.target_update_interval}


# algo -> (SB3 class, hyperparameter translation).
TRANSLATIONS: dict[str, tuple[type[BaseAlgorithm], Callable[[RunConfig], dict[str, Any]]]] = {
    "ppo": (PPO, ppo_kwargs),
    "a2c": (A2C, a2c_kwargs),
    "dqn": (DQN, dqn_kwargs),
    "sac": (SAC, sac_kwargs),
}


def check_translatable(cfg: RunConfig) -> dict[str, Any]:
    """SB3's hyperparameters for `cfg`, or a one-line refusal of an algorithm or an option SB3 lacks
    (REINFORCE, A3C, Q-learning, MAPPO; Double DQN, dueling heads, an MSE loss): cheap, so that
    `robotrl compare` refuses before it trains anything."""
    if cfg.algo not in TRANSLATIONS:
        raise ValueError(f"algo {cfg.algo!r} has no SB3 translation (supported: {', '.join(TRANSLATIONS)})")
    return TRANSLATIONS[cfg.algo][1](cfg)


def sb3_class(cfg: RunConfig) -> type[BaseAlgorithm]:
    """The SB3 algorithm class that runs `cfg` (TD3 for SAC's td3 option)."""
    check_translatable(cfg)
    return TD3 if cfg.algo == "sac" and cfg.hyper.td3 else TRANSLATIONS[cfg.algo][0]


def make_sb3_model(cfg: RunConfig, seed: int, env: VecEnv | None = None) -> BaseAlgorithm:
    """The SB3 model that trains like `cfg` would with ours (see the module docstring for differences)."""
    hyper = check_translatable(cfg)
    cls = sb3_class(cfg)
    policy_kwargs = _policy_kwargs(cfg)
    if cfg.algo == "a2c":
        policy_kwargs.update(a2c_optimizer(cfg))
    env = env if env is not None else make_sb3_env(cfg)
    return cls("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device=cfg.train.device, verbose=0,
               **hyper)


def sb3_policy_fn(model: BaseAlgorithm) -> Callable[[np.ndarray], np.ndarray]:
    """Raw env observations -> env actions, deterministic: what robotrl.train.evaluate runs for SB3."""
    venv = model.get_env()
    norm = venv if isinstance(venv, VecNormalize) else None
    space = venv.action_space
    low = high = None
    if isinstance(space, spaces.Box):
        # The bounds of the env under RescaleAction: SB3's [-1, 1] actions map back onto them.
        raw = venv.unwrapped.envs[0].unwrapped.action_space
        low, high = raw.low, raw.high

    def act(obs: np.ndarray) -> np.ndarray:
        x = norm.normalize_obs(obs) if norm is not None and norm.norm_obs else obs
        action, _ = model.predict(x, deterministic=True)
        if low is None:
            return action
        return low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)

    return act
