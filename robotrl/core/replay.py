"""Replay memories for off-policy agents: preallocated numpy arrays, uniform sampling, wraparound.

`ReplayBuffer` stores whole transitions (also n-step ones: the reward is the discounted n-step sum
and `discount` is gamma^n, or 0-padded by `terminated`). `FrameReplayBuffer` is for stacked pixel
observations: it keeps each uint8 frame once and rebuilds the stacks at sampling time, so a stack of
four costs one frame instead of four (and obs and next_obs do not both hold the same three frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass
class Transitions(Generic[ArrayT]):
    """A batch of transitions with a leading batch axis: numpy arrays as the replay stores them, tensors
    once an agent has moved them to its device."""

    obs: ArrayT
    actions: ArrayT
    rewards: ArrayT
    next_obs: ArrayT
    terminated: ArrayT
    """1 where the episode ended in a terminal state (no bootstrap); 0 on truncation or mid-episode."""
    discounts: ArrayT
    """What multiplies the bootstrap value: gamma^k for a k-step transition."""


class ReplayBuffer:
    """A ring of `capacity` transitions; the oldest are overwritten once it is full. Actions are discrete
    indices by default; continuous agents (SAC) pass their action shape and float32."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: Any = np.float32,
                 action_shape: tuple[int, ...] = (), action_dtype: Any = np.int64) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays().values())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"obs": self.obs, "next_obs": self.next_obs, "actions": self.actions, "rewards": self.rewards,
                "terminated": self.terminated, "discounts": self.discounts}

    def add(self, t: Transitions) -> None:
        """Append a batch, wrapping around the end of the ring."""
        n = len(t.actions)
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a replay of capacity {self.capacity}")
        idx = (self.pos + np.arange(n)) % self.capacity
        for name, array in self._arrays().items():
            array[idx] = getattr(t, name)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions[np.ndarray]:
        """Uniformly, with replacement, from what the ring holds."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return Transitions(**{name: array[idx] for name, array in self._arrays().items()})

    def state_dict(self) -> dict[str, Any]:
        # Only the filled part: an early checkpoint of a large ring stays small. Tensors sharing the
        # arrays' memory (no copy): torch.save writes them straight to the file, and checkpoints are
        # saved between steps, so nothing changes them meanwhile.
        return {"pos": self.pos, "size": self.size,
                **{k: torch.from_numpy(a[: self.size]) for k, a in self._arrays().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"saved replay holds {size} transitions, more than the capacity {self.capacity}")
        for name, array in self._arrays().items():
            array[:size] = np.asarray(state[name])  # tensors, or the numpy arrays of older checkpoints
        self.pos, self.size = int(state["pos"]), size


class FrameReplayBuffer:
    """Stacked-frame transitions from N envs, stored as one uint8 frame (plus the next one) per step.

    Slot (t, e) keeps the newest frame of env e's observation at step t, the newest frame of its next
    observation, and how many earlier frames of the same episode it has (its age, at most stack - 1,
    and at most 1 without stacking, so that age 0 still marks an episode's first step).
    A stack is rebuilt by looking back along t; frames before the episode's first are copies of the
    first, as in the pixel wrapper. Adds must come one vector step at a time, in order, as 1-step
    transitions. n-step transitions are made at sampling time by looking forward along t: the rewards
    of up to `n_step` steps of the same episode, discounted, and the stack after the last of them. Near
    the episode's end or the newest slot fewer steps remain, and the transition uses those (bootstrapping
    with gamma^k for the k steps taken, unless the episode terminated), as the n-step accumulator does.
    """

    def __init__(self, capacity: int, num_envs: int, obs_shape: tuple[int, ...], n_step: int = 1) -> None:
        if len(obs_shape) != 3:
            raise ValueError(f"frame replay expects (stack, height, width) observations, got {obs_shape}")
        if n_step < 1:
            raise ValueError(f"n_step must be at least 1, got {n_step}")
        self.stack, *frame = obs_shape
        self.n_step = n_step
        # Age 0 marks an episode's first step; the cap keeps that mark even without stacking (stack 1).
        self.max_age = max(self.stack - 1, 1)
        self.num_envs = num_envs
        self.slots = max(capacity // num_envs, self.stack + 1)
        self.capacity = self.slots * num_envs
        self.frames = np.zeros((self.slots, num_envs, *frame), dtype=np.uint8)
        self.next_frames = np.zeros_like(self.frames)
        self.actions = np.zeros((self.slots, num_envs), dtype=np.int64)
        self.rewards = np.zeros((self.slots, num_envs), dtype=np.float32)
        self.terminated = np.zeros((self.slots, num_envs), dtype=np.float32)
        self.discounts = np.zeros((self.slots, num_envs), dtype=np.float32)
        self.age = np.zeros((self.slots, num_envs), dtype=np.uint8)
        self.next_age = np.zeros(num_envs, dtype=np.uint8)
        self.pos = 0
        self.full = False

    @property
    def size(self) -> int:
        return (self.slots if self.full else self.pos) * self.num_envs

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays().values())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"frames": self.frames, "next_frames": self.next_frames, "actions": self.actions,
                "rewards": self.rewards, "terminated": self.terminated, "discounts": self.discounts,
                "age": self.age}

    def mark_episode_start(self) -> None:
        """The envs were reset outside of step (start of training, resume): the next adds start episodes."""
        self.next_age[:] = 0

    def add(self, t: Transitions, ended: np.ndarray) -> None:
        """One vector step: (N, stack, H, W) observations; `ended` marks episodes that ended at this step."""
        if len(t.actions) != self.num_envs:
            raise ValueError(f"frame replay adds one vector step of {self.num_envs} envs, got {len(t.actions)}")
        p = self.pos
        self.frames[p] = t.obs[:, -1]
        self.next_frames[p] = t.next_obs[:, -1]
        self.actions[p], self.rewards[p] = t.actions, t.rewards
        self.terminated[p], self.discounts[p] = t.terminated, t.discounts
        self.age[p] = self.next_age
        self.next_age = np.where(ended, 0, np.minimum(self.next_age + 1, self.max_age)).astype(np.uint8)
        self.pos = (p + 1) % self.slots
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions[np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.full:
            # The stack - 1 oldest slots may look back onto frames already overwritten: skip them.
            offset = rng.integers(self.stack - 1, self.slots, size=batch_size)
            t = (self.pos + offset) % self.slots
        else:
            t = rng.integers(0, self.pos, size=batch_size)
        e = rng.integers(0, self.num_envs, size=batch_size)
        u, rewards, discounts = self._forward(t, e)
        obs = self._stack(t, e)
        next_obs = np.concatenate([self._stack(u, e)[:, 1:], self.next_frames[u, e][:, None]], axis=1)
        return Transitions(obs=obs, actions=self.actions[t, e], rewards=rewards, next_obs=next_obs,
                           terminated=self.terminated[u, e], discounts=discounts)

    def _stack(self, t: np.ndarray, e: np.ndarray) -> np.ndarray:
        """The stacked observation of slots (t, e), oldest frame first."""
        back = np.arange(self.stack - 1, -1, -1)
        rows = (t[:, None] - np.minimum(back[None, :], self.age[t, e][:, None])) % self.slots
        return self.frames[rows, e[:, None]]

    def _forward(self, t: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last slot u of each n-step transition from t, its discounted reward sum and gamma^k."""
        u = t.copy()
        rewards, discounts = self.rewards[t, e].copy(), self.discounts[t, e].copy()
        newest = (self.pos - 1) % self.slots
        for _ in range(self.n_step - 1):
            nxt = (u + 1) % self.slots
            # Go on while u is not the newest slot and the next slot continues u's episode.
            go = (u != newest) & (self.age[nxt, e] != 0)
            if not go.any():
                break
            slot, env = nxt[go], e[go]
            rewards[go] += discounts[go] * self.rewards[slot, env]
            discounts[go] *= self.discounts[slot, env]
            u[go] = slot
        return u, rewards, discounts

    def state_dict(self) -> dict[str, Any]:
        used = self.slots if self.full else self.pos
        # Shared-memory tensors, as in ReplayBuffer.state_dict: a full 100k-transition ring is 1.4 GB.
        return {"pos": self.pos, "full": self.full, "next_age": self.next_age.copy(),
                **{k: torch.from_numpy(a[:used]) for k, a in self._arrays().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        used = len(state["actions"])
        if used > self.slots or state["actions"].shape[1:] != (self.num_envs,):
            raise ValueError(f"saved frame replay has shape {state['actions'].shape}, this one "
                             f"({self.slots}, {self.num_envs})")
        for name, array in self._arrays().items():
            array[:used] = np.asarray(state[name])
        self.pos, self.full, self.next_age = int(state["pos"]), bool(state["full"]), state["next_age"].copy()
