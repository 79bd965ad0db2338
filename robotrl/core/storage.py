"""Storage for on-policy agents: preallocated rollouts with shuffled minibatches, and whole episodes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

import torch

from robotrl.core.returns import discounted_returns, gae


@dataclass
class Batch:
    """One minibatch of flattened transitions."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def select(self, idx: torch.Tensor) -> Self:
        """The transitions at `idx`, in a batch of the same kind (subclasses carry more fields)."""
        return type(self)(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})


BatchT = TypeVar("BatchT", bound=Batch)


class RolloutStorage(Generic[BatchT]):
    """(T, N, ...) tensors filled step by step by `add`, then turned into advantages by `compute_returns`.

    `batch_type` is what `flat` and `minibatches` return: its fields name the stored tensors a batch
    carries, so a storage with more per-transition tensors (MAPPO's critic inputs) shares the generator.
    """

    def __init__(self, steps: int, num_envs: int, obs_shape: tuple[int, ...], act_shape: tuple[int, ...],
                 action_dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 batch_type: type[BatchT] = Batch) -> None:
        self.steps, self.num_envs, self.batch_type = steps, num_envs, batch_type
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

    def compute_returns(self, last_value: torch.Tensor, gamma: float, gae_lambda: float) -> None:
        """GAE(lambda) advantages and returns of the full rollout, bootstrapped from `last_value`: V of the
        observations after its last step (gae_lambda 1: plain n-step returns)."""
        self.advantages, self.returns = gae(self.rewards, self.values, self.dones, last_value, gamma, gae_lambda)

    def flat(self, **replace: torch.Tensor) -> BatchT:
        """The whole rollout as one batch: (T, N, ...) viewed as (T * N, ...), time-major. `replace` gives
        tensors of the same leading shape to use instead of the stored ones of that name, e.g. the
        observations normalized once per update."""
        names = [f.name for f in dataclasses.fields(self.batch_type)]
        unknown = set(replace) - set(names)
        if unknown:
            raise ValueError(f"{type(self).__name__}: no stored field {sorted(unknown)} in {names}")
        n = self.steps * self.num_envs
        tensors = {k: replace[k] if k in replace else getattr(self, k) for k in names}
        return self.batch_type(**{k: x.reshape(n, *x.shape[2:]) for k, x in tensors.items()})

    def minibatches(self, num_minibatches: int, **replace: torch.Tensor) -> Iterator[BatchT]:
        """Shuffled minibatches covering every transition once (`replace` as in `flat`), drawn from
        torch's global generator so that a seeded run repeats."""
        whole = self.flat(**replace)
        n = self.steps * self.num_envs
        perm = torch.randperm(n, device=self.obs.device)
        size = n // num_minibatches
        for i in range(num_minibatches):
            yield whole.select(perm[i * size:(i + 1) * size])


@dataclass
class EpisodeBatch:
    """Finished episodes flattened in time order, with their Monte Carlo returns-to-go."""

    obs: torch.Tensor
    actions: torch.Tensor
    returns: torch.Tensor
    episode: torch.Tensor
    """Index of the episode each transition belongs to (0..episodes-1)."""


class EpisodeStorage:
    """Whole episodes for Monte Carlo methods: each env's episode grows step by step until it ends.

    An episode cut by the time limit keeps `tail_value` (gamma * V(final_obs), or 0) as the value
    of what the cut removed; a terminated one ends at 0.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.clear_all()

    def clear_all(self) -> None:
        """Forget finished and in-progress episodes (the envs were reset)."""
        self._pending: list[list[tuple[torch.Tensor, torch.Tensor, float]]] = [[] for _ in range(self.num_envs)]
        self._finished: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]] = []
        self.finished_steps = 0

    def add(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor,
            tail_values: torch.Tensor) -> None:
        """One vector step; `tail_values[i]` is used where `dones[i]` ends env i's episode."""
        for i in range(self.num_envs):
            self._pending[i].append((obs[i], actions[i], float(rewards[i])))
            if dones[i]:
                steps = self._pending[i]
                self._finished.append((torch.stack([s[0] for s in steps]), torch.stack([s[1] for s in steps]),
                                       torch.tensor([s[2] for s in steps], dtype=torch.float32),
                                       float(tail_values[i])))
                self.finished_steps += len(steps)
                self._pending[i] = []

    @property
    def finished_episodes(self) -> int:
        return len(self._finished)

    def take(self, gamma: float) -> EpisodeBatch:
        """The finished episodes as one batch with G_t = sum_k gamma^k r_{t+k}; they leave the storage."""
        if not self._finished:
            raise RuntimeError("EpisodeStorage.take: no finished episode yet")
        rewards, dones, episode = [], [], []
        for k, (_, _, r, tail) in enumerate(self._finished):
            r = r.clone()
            r[-1] += tail
            d = torch.zeros_like(r)
            d[-1] = 1.0
            rewards.append(r)
            dones.append(d)
            episode.append(torch.full((len(r),), k, dtype=torch.int64))
        rewards_t, dones_t = torch.cat(rewards)[:, None], torch.cat(dones)[:, None]
        returns = discounted_returns(rewards_t, dones_t, torch.zeros(1), gamma)[:, 0]
        batch = EpisodeBatch(obs=torch.cat([e[0] for e in self._finished]),
                             actions=torch.cat([e[1] for e in self._finished]),
                             returns=returns, episode=torch.cat(episode))
        self._finished = []
        self.finished_steps = 0
        return batch
