"""`robotrl envs`: every registered environment with its sizes, control rate and episode length, built
once each so the numbers are the envs' own rather than a table kept beside them."""

from __future__ import annotations

from typing import Any

import envs as robot_envs


def list_envs() -> list[dict[str, Any]]:
    """One row per robotrl env (single-robot tasks, then multi-robot envs with sizes per robot)."""
    rows = []
    for name, task_cls in robot_envs.TASKS.items():
        env = robot_envs.make(f"robotrl/{name}")
        rows.append({"id": f"robotrl/{name}", "obs_dim": int(env.observation_space.shape[0]),
                     "act_dim": int(env.action_space.shape[0]),
                     "control_hz": round(1.0 / env.unwrapped.task.control_dt, 3),
                     "max_episode_steps": task_cls.max_episode_steps})
        env.close()
    for env_id in robot_envs.MULTI_IDS:
        batch = robot_envs.make_multi_batch(env_id, 1)
        rows.append({"id": env_id, "obs_dim": batch.obs_dim, "act_dim": batch.act_dim,
                     "control_hz": round(1.0 / batch.task.control_dt, 3),
                     "max_episode_steps": batch.max_episode_steps, "agents": batch.num_agents})
        batch.close()
    return rows


def format_env_list(rows: list[dict[str, Any]]) -> str:
    text = "\n".join(f"{r['id']:<24} obs {r['obs_dim']:>3}  act {r['act_dim']:>2}  {r['control_hz']:g} Hz  "
                     f"{r['max_episode_steps']} steps/episode"
                     + (f", {r['agents']} robots (sizes per robot)" if "agents" in r else "") for r in rows)
    text += "\nand any Gymnasium MuJoCo id (InvertedPendulum-v5, HalfCheetah-v5, Hopper-v5, ...)"
    text += "\nand MaMuJoCo's multi-agent robots as mamujoco/<Robot>-<split> (mamujoco/HalfCheetah-2x3, ...)"
    return text
