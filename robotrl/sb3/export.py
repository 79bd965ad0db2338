"""Stable-Baselines3 PPO/A2C models (.zip) as deterministic actors for `robotrl export`.

SB3's deterministic `predict` on a Box action space is the Gaussian mean, clipped to the space's
bounds (or, with `squash_output`, tanh-squashed and rescaled). The module below does exactly that
inside the graph, so an SB3 model deploys like one of ours. VecNormalize statistics live outside
SB3's zip and are not applied: export models trained without VecNormalize.
"""

from __future__ import annotations

from pathlib import Path

import torch
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file
from torch import nn


class SB3DeterministicActor(nn.Module):
    """obs -> features -> policy MLP -> action_net mean -> clip (or squash and rescale) to the bounds."""

    def __init__(self, policy: nn.Module, action_space: spaces.Box) -> None:
        super().__init__()
        self.policy = policy
        self.squash = bool(getattr(policy, "squash_output", False))
        self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        p = self.policy
        features = p.pi_features_extractor(obs) if not p.share_features_extractor else p.features_extractor(obs)
        mean = p.action_net(p.mlp_extractor.forward_actor(features))
        if self.squash:
            return self.low + (torch.tanh(mean) + 1.0) * 0.5 * (self.high - self.low)
        return torch.clamp(mean, self.low, self.high)


def load_sb3_actor(path: str | Path) -> tuple[nn.Module, str, int]:
    """(actor, algorithm name, training steps) of an SB3 PPO or A2C zip with a Box action space."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SB3 model not found: {path}")
    try:
        data, _, _ = load_from_zip_file(path, device="cpu")
    except Exception as exc:
        raise ValueError(f"{path}: not a stable-baselines3 model zip ({exc})") from exc
    policy_class = data.get("policy_class")
    if not (isinstance(policy_class, type) and issubclass(policy_class, ActorCriticPolicy)):
        name = getattr(policy_class, "__name__", "an unknown policy")
        raise ValueError(f"{path}: a model with {name}; export reads SB3 PPO and A2C zips (actor-critic policies)")
    # PPO saves its epochs and clip range; A2C has neither.
    algo, cls = ("ppo", PPO) if "clip_range" in data else ("a2c", A2C)
    model = cls.load(path, device="cpu")
    if not isinstance(model.action_space, spaces.Box):
        raise ValueError(f"{path}: action space {model.action_space} is not a Box (export supports continuous "
                         "actions of SB3 models)")
    if not isinstance(model.observation_space, spaces.Box) or len(model.observation_space.shape) != 1:
        raise ValueError(f"{path}: observation space {model.observation_space} is not a flat Box")
    return SB3DeterministicActor(model.policy.eval(), model.action_space).eval(), algo, int(model.num_timesteps)
