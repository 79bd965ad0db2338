"""`robotrl bench train`: training throughput of ours and SB3 with the same config and number of envs.

Both sides run their training loop alone (no evaluation, logging or checkpoints): ours collect + update
as the trainer calls them, SB3 `learn` on its default DummyVecEnv. On a shared machine the load drifts,
so the sides alternate for `rounds` rounds and each side's total steps are divided by its total time.
CPU seconds (this process, all threads) are reported beside wall seconds: they move less with the load.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

import envs
from robotrl.agents import algorithm
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.threads import limit_threads
from robotrl.sb3.translate import check_translatable, make_sb3_model
from robotrl.train.trainer import seed_everything


def _ours(cfg: RunConfig, steps: int) -> tuple[int, float, float]:
    seed_everything(cfg.seed)
    env = envs.make_vec(cfg.env.id, cfg.env.num_envs, **cfg.env.kwargs)
    try:
        agent = algorithm(cfg.algo).agent(cfg, env, torch.device("cpu"))
        try:
            agent.start(cfg.seed)
            episodes = EpisodeStats(env.num_envs)
            done = 0
            wall, cpu = time.perf_counter(), time.process_time()
            while done < steps:
                done += agent.collect(episodes)
                agent.update(min(done / steps, 1.0))
            return done, time.perf_counter() - wall, time.process_time() - cpu
        finally:
            agent.close()
    finally:
        env.close()


def _sb3(cfg: RunConfig, steps: int) -> tuple[int, float, float]:
    model = make_sb3_model(cfg, seed=cfg.seed)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        model.learn(total_timesteps=steps)
        return int(model.num_timesteps), time.perf_counter() - wall, time.process_time() - cpu
    finally:
        model.get_env().close()


def bench_train(cfg: RunConfig, steps: int, rounds: int = 2) -> dict[str, Any]:
    """{"env", "algo", "ours_steps_per_s", "sb3_steps_per_s", ...}: `steps` per side per round, both sides
    on the CPU with the config's torch threads."""
    if steps < 1 or rounds < 1:
        raise ValueError(f"--steps and --rounds: expected positive numbers, got {steps} and {rounds}")
    check_translatable(cfg)  # before our side trains: an algorithm SB3 lacks fails in one line at once
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cpu"))  # ours runs on the CPU
    limit_threads(cfg.train.threads)
    totals = {"ours": [0, 0.0, 0.0], "sb3": [0, 0.0, 0.0]}
    for _ in range(rounds):
        for side, run in (("ours", _ours), ("sb3", _sb3)):
            for i, v in enumerate(run(cfg, steps)):
                totals[side][i] += v
    out: dict[str, Any] = {"env": cfg.env.id, "algo": cfg.algo, "num_envs": cfg.env.num_envs,
                           "steps": steps, "rounds": rounds}
    for side, (n, wall, cpu) in totals.items():
        out[f"{side}_steps_per_s"] = n / wall
        out[f"{side}_steps_per_cpu_s"] = n / cpu
    out["speedup"] = out["ours_steps_per_s"] / out["sb3_steps_per_s"]
    out["speedup_cpu"] = out["ours_steps_per_cpu_s"] / out["sb3_steps_per_cpu_s"]
    return out


def format_bench_train(result: dict[str, Any]) -> str:
    """What `robotrl bench train` prints: both sides' steps/s and the ratio."""
    return (f"{result['algo']} on {result['env']} ({result['num_envs']} envs, {result['steps']} steps x "
            f"{result['rounds']} rounds per side): ours {result['ours_steps_per_s']:.0f} steps/s, SB3 "
            f"{result['sb3_steps_per_s']:.0f} steps/s ({result['speedup']:.2f}x; per CPU second "
            f"{result['speedup_cpu']:.2f}x)")
