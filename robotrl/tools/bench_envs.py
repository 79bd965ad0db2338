"""Simulation speed of each robot: our batched env, Gymnasium's SyncVectorEnv, and the physics alone.

`physics-limit` advances the same model open-loop with `mujoco.rollout` on all cores for the same
number of physics steps per env step; it is what the physics costs with no Python in the loop, the
ceiling a batched env can approach.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import mujoco
import mujoco.rollout
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import envs
from robotrl.core.threads import limit_threads


def _actions(space: gym.spaces.Box, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(np.float32)


def _time_vector_env(env: gym.vector.VectorEnv, steps: int, seed: int) -> float:
    """Env steps per second of `env` under random actions (autoresets included)."""
    actions = _actions(env.action_space, steps + 10, seed)
    env.reset(seed=seed)
    for a in actions[:10]:  # warm caches and lazy allocations before the clock starts
        env.step(a)
    start = time.perf_counter()
    for a in actions[10:]:
        env.step(a)
    return steps * env.num_envs / (time.perf_counter() - start)


def _time_physics(env_id: str, num_envs: int, steps: int, seed: int, kwargs: dict[str, Any]) -> tuple[float, int]:
    """(env steps per second when only the physics runs, threads): open-loop rollouts on one thread per core."""
    batched = envs.make_vec(env_id, num_envs, **kwargs)
    batched.reset(seed=seed)
    model = batched.unwrapped.sim.model
    nstep = steps * batched.unwrapped.task.frame_skip
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = np.empty((num_envs, mujoco.mj_stateSize(model, spec)))
    for i in range(num_envs):
        mujoco.mj_getState(model, batched.unwrapped.sim.data(i), states[i], spec)
    batched.close()
    datas = [mujoco.MjData(model) for _ in range(max(1, min(num_envs, os.cpu_count() or 1)))]
    out = np.empty((num_envs, nstep, states.shape[1]))
    mujoco.rollout.rollout(model, datas, states, nstep=10, skip_checks=False)  # warm the thread pool
    start = time.perf_counter()
    mujoco.rollout.rollout(model, datas, states, nstep=nstep, state=out)
    return steps * num_envs / (time.perf_counter() - start), len(datas)


def bench_env(env_id: str, num_envs: int = 16, steps: int = 2000, seed: int = 0, repeats: int = 3,
              kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Three rows for one robot: batched, gymnasium-sync and physics-limit env steps/s.

    Each is the best of `repeats` interleaved timings: on a shared machine other processes only ever
    slow a run down, so the fastest one is the closest to the implementation's own speed.
    """
    kwargs = kwargs or {}
    best = {"batched": 0.0, "gymnasium-sync": 0.0, "physics-limit": 0.0}
    # The physics threads each implementation ran on: the rows' ratios mix batching with threading where
    # they differ (the sync env steps its envs one by one on this thread).
    threads = {"gymnasium-sync": 1}
    for _ in range(repeats):
        batched = envs.make_vec(env_id, num_envs, **kwargs)
        threads["batched"] = batched.unwrapped.sim.nthread
        best["batched"] = max(best["batched"], _time_vector_env(batched, steps, seed))
        batched.close()
        sync = SyncVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(num_envs)],
                             autoreset_mode=AutoresetMode.SAME_STEP)
        best["gymnasium-sync"] = max(best["gymnasium-sync"], _time_vector_env(sync, max(steps // 4, 10), seed))
        sync.close()
        sps, threads["physics-limit"] = _time_physics(env_id, num_envs, steps, seed, kwargs)
        best["physics-limit"] = max(best["physics-limit"], sps)
    return [{"env": env_id, "impl": impl, "num_envs": num_envs, "threads": threads[impl], "steps_per_s": round(sps, 1)}
            for impl, sps in best.items()]


def bench_all(num_envs: int = 16, steps: int = 2000, ids: list[str] | None = None,
              repeats: int = 3) -> list[dict[str, Any]]:
    """Rows for every registered robotrl robot (or the given ids), torch on one thread; each row records the
    physics threads it ran on (the batched env's own choice, threads_for; one for the sync env)."""
    counts = {"--num-envs": num_envs, "--steps": steps, "--repeats": repeats}
    wrong = [f"{flag} {value}" for flag, value in counts.items() if value < 1]
    if wrong:  # before any env is built: zero steps would time nothing and report 0 steps/s as a figure
        raise ValueError(f"{', '.join(wrong)}: expected a positive number")
    limit_threads(1)
    ids = ids or [f"{envs.registry.NAMESPACE}/{name}" for name in envs.TASKS]
    results = []
    for env_id in ids:
        results.extend(bench_env(env_id, num_envs, steps, repeats=repeats))
    return results


def format_bench(rows: list[dict[str, Any]]) -> str:
    """What `robotrl bench envs` prints: one line per env and implementation."""
    return "\n".join(f"{r['env']:<24} {r['impl']:<15} {r['num_envs']:>3} envs  {r['steps_per_s']:>12,.0f} steps/s"
                     f"  ({r['threads']} thread{'s' if r['threads'] != 1 else ''})" for r in rows)
