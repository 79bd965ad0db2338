"""How much a trained Q-network over-estimates: predicted max_a Q(s0, a) at the start states minus the
discounted return the greedy policy then actually collects from them (van Hasselt et al. 2016).

    python -m robotrl.overestimation RUN_DIR [RUN_DIR ...] [--episodes N] [--json]

A time limit cuts the observed return: for an episode that survives T steps, the discounted tail
gamma^T * V(s_T) is missing from it (at most 0.66 for CartPole's 500 steps at gamma 0.99 and reward 1),
the same for DQN and Double DQN.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from robotrl.trainer import load_policy


@torch.no_grad()
def measure(run: str | Path, episodes: int = 10, seed: int = 20_000) -> dict[str, Any]:
    """Mean predicted start value, observed discounted return, and their difference over `episodes`."""
    policy, cfg, _ = load_policy(run)
    gamma = cfg.hyper.gamma
    env = envs.make_vec(cfg.env.id, episodes, **cfg.env.kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        predicted = policy(torch.as_tensor(obs, dtype=torch.float32)).max(-1).values.double().numpy()
        returns = np.zeros(episodes)
        discount = np.ones(episodes)
        live = np.ones(episodes, dtype=bool)
        while live.any():
            actions = policy.deterministic(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, reward, terminated, truncated, _ = env.step(actions)
            returns[live] += discount[live] * reward[live]
            discount *= gamma
            live &= ~(terminated | truncated)
    finally:
        env.close()
    return {"run": str(run), "algo": cfg.algo, "double": bool(getattr(cfg.hyper, "double", False)),
            "seed": cfg.seed, "predicted": float(predicted.mean()), "observed": float(returns.mean()),
            "overestimation": float((predicted - returns).mean())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m robotrl.overestimation", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders or checkpoints of DQN runs")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = [measure(r, args.episodes) for r in args.runs]
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        print(f"{r['run']}: Q(s0) {r['predicted']:.2f}, observed {r['observed']:.2f}, "
              f"over-estimation {r['overestimation']:+.2f}")


if __name__ == "__main__":
    main()
