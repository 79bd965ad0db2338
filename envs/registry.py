"""robotrl's robots as Gymnasium ids (`robotrl/<Name>-v0`), and env creation for any MuJoCo id."""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.multi import MAMUJOCO_PREFIX, MULTI_IDS, is_multi
from envs.robot_env import RobotEnv
from envs.tasks.base import Task
from envs.tasks.cartpole import CartPoleTask
from envs.tasks.diffdrive import DiffDriveTask
from envs.tasks.half_cheetah import HalfCheetahTask
from envs.tasks.locomotion import LocomotionTask
from envs.tasks.quadruped import QuadrupedTask
from envs.tasks.reach import ReachTask
from envs.tasks.reacher import ReacherTask
from envs.vector import BatchedVectorEnv
from envs.wrappers import pixel_vector_env, split_options, wrap_single, wrap_vector

NAMESPACE = "robotrl"
TASKS: dict[str, type[Task]] = {
    "Reacher-v0": ReacherTask,
    "CartPole-v0": CartPoleTask,
    "DiffDrive-v0": DiffDriveTask,
    "Quadruped-v0": QuadrupedTask,
    "Locomotion-v0": LocomotionTask,
    "Reach-v0": ReachTask,
}

# Gymnasium ids whose vector env runs batched on mujoco.batch (each checked step by step against Gymnasium).
GYMNASIUM_BATCHED: dict[str, type[Task]] = {
    "HalfCheetah-v5": HalfCheetahTask,
}


def _single(task_cls: type[Task], **kwargs: Any) -> RobotEnv:
    return RobotEnv(task_cls, **kwargs)


def _vector(task_cls: type[Task], num_envs: int = 1, **kwargs: Any) -> BatchedVectorEnv:
    kwargs.pop("render_mode", None)
    return BatchedVectorEnv(task_cls, num_envs, **kwargs)


def register_all() -> None:
    for name, task_cls in TASKS.items():
        env_id = f"{NAMESPACE}/{name}"
        if env_id in gym.registry:
            continue
        gym.register(
            env_id,
            entry_point=partial(_single, task_cls),
            vector_entry_point=partial(_vector, task_cls),
            max_episode_steps=task_cls.max_episode_steps,
        )


def is_robotrl(env_id: str) -> bool:
    return env_id.startswith(f"{NAMESPACE}/")


def check_id(env_id: str) -> None:
    """Raise a ValueError naming the id when Gymnasium does not know it."""
    register_all()
    if env_id not in gym.registry and not is_multi(env_id):
        known = ", ".join(f"{NAMESPACE}/{n}" for n in TASKS)
        known += ", " + ", ".join(MULTI_IDS)
        raise ValueError(f"unknown env id {env_id!r} (robotrl ids: {known}; {MAMUJOCO_PREFIX}<Robot>-<split>; "
                         "or any Gymnasium id)")


BATCH_ONLY_KEYS = ("nthread",)
"""Options of a batch of simulations (the threads stepping it) that one simulation has no use for."""


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """A single env for a robotrl id or any Gymnasium id; wrapper options (envs.wrappers) applied. The
    kwargs of a training config's batch fit it too (eval --video, the viewer, export, SB3's side)."""
    check_id(env_id)
    options, kwargs = split_options(kwargs)
    return wrap_single(_one_env(env_id, kwargs), options)


def _one_env(env_id: str, kwargs: dict[str, Any]) -> gym.Env:
    """One simulation from an env's own kwargs (wrapper options split off), as `make` and each env of a
    pixel batch build it: a batch's thread count dropped, a changed episode limit given to the task too."""
    kwargs = {k: v for k, v in kwargs.items() if k not in BATCH_ONLY_KEYS}
    env = gym.make(env_id, **kwargs)
    if isinstance(env.unwrapped, RobotEnv) and kwargs.get("max_episode_steps"):
        # gym.make puts a changed limit on its TimeLimit wrapper only; the task judges success by it too.
        env.unwrapped.task.max_episode_steps = int(kwargs["max_episode_steps"])
    return env


def make_vec(env_id: str, num_envs: int, **kwargs: Any) -> VectorEnv:
    """N envs with SAME_STEP autoreset: ours and GYMNASIUM_BATCHED batched, other ids through SyncVectorEnv.
    Wrapper options (envs.wrappers) are applied over the batch; pixels render env by env."""
    check_id(env_id)
    options, kwargs = split_options(kwargs)
    if "pixels" in options:
        return wrap_vector(pixel_vector_env(lambda: _one_env(env_id, kwargs), num_envs, options["pixels"]),
                           options)
    return wrap_vector(_make_vec(env_id, num_envs, **kwargs), options)


def _make_vec(env_id: str, num_envs: int, **kwargs: Any) -> VectorEnv:
    if is_robotrl(env_id):
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    if env_id in GYMNASIUM_BATCHED:
        return BatchedVectorEnv(GYMNASIUM_BATCHED[env_id], num_envs, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k not in BATCH_ONLY_KEYS}  # each env steps one simulation
    return gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **kwargs,
    )
