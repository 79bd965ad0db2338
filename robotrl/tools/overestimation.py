"""How much a trained Q-network over-estimates: predicted max_a Q(s0, a) at the start states minus the
discounted return the greedy policy then actually collects from them (van Hasselt et al. 2016).

    python -m robotrl.tools.overestimation RUN_DIR [RUN_DIR ...] [--episodes N] [--over-training] [--json]

With --over-training each run is measured at every checkpoint it kept (checkpoints/step_*.pt) and the
report gives the mean over them: the bias of the estimates along the way, as in van Hasselt et al.'s
curves, rather than of the final network only (whose gap mostly says whether that run's last policy
happened to collapse). Runs are grouped into DQN and Double DQN means either way.

A time limit cuts the observed return: for an episode that survives T steps, the discounted tail
gamma^T * V(s_T) is missing from it (at most 0.66 for CartPole's 500 steps at gamma 0.99 and reward 1),
the same for DQN and Double DQN. The report counts the episodes that a time limit cut (`truncated`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from robotrl.core.threads import limit_threads
from robotrl.core.vec_env import VecEnv
from robotrl.train.trainer import load_policy


@dataclass(frozen=True)
class GreedyEpisodes:
    """One episode per env of a vector env under the greedy policy, each from its own start state."""

    predicted: np.ndarray
    """max_a Q(s0, a) at each episode's start state."""
    observed: np.ndarray
    """sum_t gamma^t r_t over each episode, up to and including its last step, not bootstrapped."""
    lengths: np.ndarray
    truncated: np.ndarray
    """True where a time limit ended the episode (its observed return lacks the tail), not a terminal state."""

    def summary(self) -> dict[str, Any]:
        """Means over episodes; the over-estimation is the mean of the per-episode differences."""
        return {"episodes": len(self.predicted), "predicted": float(self.predicted.mean()),
                "observed": float(self.observed.mean()),
                "overestimation": float((self.predicted - self.observed).mean()),
                "truncated": int(self.truncated.sum())}


@torch.no_grad()
def greedy_episodes(q_network: torch.nn.Module, env: VecEnv, gamma: float, seed: int) -> GreedyEpisodes:
    """Run the first episode of each of `env`'s envs (same-step autoreset) with the greedy actions of
    `q_network` (a module giving Q(s, .) with a `deterministic` greedy index)."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    predicted = q_network(torch.as_tensor(obs, dtype=torch.float32)).max(-1).values.double().numpy()
    returns, discount = np.zeros(n), np.ones(n)
    lengths = np.zeros(n, dtype=np.int64)
    live = np.ones(n, dtype=bool)
    cut = np.zeros(n, dtype=bool)
    while live.any():
        actions = q_network.deterministic(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        obs, reward, terminated, truncated, _ = env.step(actions)
        returns[live] += discount[live] * reward[live]
        lengths[live] += 1
        discount *= gamma
        cut |= live & truncated & ~terminated
        # An env whose episode ended has reset and plays on; its later rewards are another episode's.
        live &= ~(terminated | truncated)
    return GreedyEpisodes(predicted, returns, lengths, cut)


def measure(run: str | Path, episodes: int = 10, seed: int = 20_000) -> dict[str, Any]:
    """Mean predicted start value, observed discounted return, and their difference over `episodes`."""
    policy, cfg, _ = load_policy(run)
    env = envs.make_vec(cfg.env.id, episodes, **cfg.env.kwargs)
    try:
        result = greedy_episodes(policy, env, cfg.hyper.gamma, seed).summary()
    finally:
        env.close()
    return {"run": str(run), "algo": cfg.algo, "double": bool(getattr(cfg.hyper, "double", False)),
            "seed": cfg.seed, **result}


def measure_over_training(run: str | Path, episodes: int = 10, seed: int = 20_000) -> dict[str, Any]:
    """`measure` at each kept checkpoint of a run; the over-estimation is the mean over checkpoints."""
    checkpoints = sorted((Path(run) / "checkpoints").glob("step_*.pt"))
    if not checkpoints:
        raise FileNotFoundError(f"{run}: no checkpoints/step_*.pt (train with train.keep_checkpoints: true)")
    points = [measure(c, episodes, seed) for c in checkpoints]
    final = measure(run, episodes, seed)
    return {"run": str(run), "algo": final["algo"], "double": final["double"], "seed": final["seed"],
            "overestimation": float(np.mean([p["overestimation"] for p in points])),
            "final_overestimation": final["overestimation"],
            "checkpoints": [{"checkpoint": p["run"], "predicted": p["predicted"], "observed": p["observed"],
                             "overestimation": p["overestimation"]} for p in points]}


def group_means(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean over-estimation (and its spread) per method: 'dqn' and 'double_dqn'."""
    groups: dict[str, list[float]] = {}
    for r in results:
        groups.setdefault("double_dqn" if r["double"] else "dqn", []).append(r["overestimation"])
    return {k: {"runs": len(v), "mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in groups.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m robotrl.tools.overestimation", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders or checkpoints of DQN runs")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--over-training", action="store_true",
                        help="measure every kept checkpoint of each run and average over them")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    limit_threads(1)
    if args.over_training:
        results = [measure_over_training(r, args.episodes) for r in args.runs]
    else:
        results = [measure(r, args.episodes) for r in args.runs]
    if args.json:
        print(json.dumps({"runs": results, "groups": group_means(results)}))
        return
    for r in results:
        if args.over_training:
            print(f"{r['run']}: over-estimation {r['overestimation']:+.2f} (mean over {len(r['checkpoints'])} "
                  f"checkpoints), final network {r['final_overestimation']:+.2f}")
        else:
            print(f"{r['run']}: Q(s0) {r['predicted']:.2f}, observed {r['observed']:.2f}, "
                  f"over-estimation {r['overestimation']:+.2f} ({r['truncated']} of {r['episodes']} episodes "
                  "cut by the time limit)")
    for name, g in group_means(results).items():
        print(f"{name}: mean over-estimation {g['mean']:+.2f} ± {g['std']:.2f} over {g['runs']} runs")


if __name__ == "__main__":
    main()
