"""Preallocated rollout storage for on-policy agents, and its shuffled minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One minibatch of flattened transitions."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class RolloutStorage:
    """(T, N, ...) tensors filled step by step by `add`, then turned into advantages by the agent."""

    def __init__(self, steps: int, num_envs: int, obs_shape: tuple[int, ...], act_shape: tuple[int, ...],
                 action_dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        self.steps, self.num_envs = steps, num_envs
        shape = (steps, num_envs)
        self.obs = torch.zeros(*shape, *obs_shape, device=device)
        self.actions = torch.zeros(*shape, *act_shape, dtype=action_dtype, device=device)
        self.log_probs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, device=device)
        self.advantages = torch.zeros(shape, device=device)
        self.returns = torch.zeros(shape, device=device)
        self.step = 0

    def add(self, obs: torch.Tensor, actions: torch.Tensor, log_probs: torch.Tensor, values: torch.Tensor,
            rewards: torch.Tensor, dones: torch.Tensor) -> None:
        t = self.step
        self.obs[t], self.actions[t], self.log_probs[t], self.values[t] = obs, actions, log_probs, values
        self.rewards[t], self.dones[t] = rewards, dones
        self.step += 1

    @property
    def full(self) -> bool:
        return self.step == self.steps

    def clear(self) -> None:
        self.step = 0

    def minibatches(self, num_minibatches: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Shuffled minibatches covering every transition once."""
        n = self.steps * self.num_envs
        flat = {
            "obs": self.obs.reshape(n, *self.obs.shape[2:]),
            "actions": self.actions.reshape(n, *self.actions.shape[2:]),
            "log_probs": self.log_probs.reshape(n),
            "values": self.values.reshape(n),
            "advantages": self.advantages.reshape(n),
            "returns": self.returns.reshape(n),
        }
        perm = torch.randperm(n, generator=generator, device=self.obs.device)
        size = n // num_minibatches
        for i in range(num_minibatches):
            idx = perm[i * size:(i + 1) * size]
            yield Batch(**{k: v[idx] for k, v in flat.items()})
