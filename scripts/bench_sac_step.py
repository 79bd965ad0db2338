"""SAC's gradient step alone, ours against stable-baselines3's `SAC.train(gradient_steps=1)`.

`robotrl bench train` times whole training loops (env steps, acting and replay included); this isolates
the update, where a SAC run with one gradient step per env step spends most of its time. Both sides are
built from one config, replay the same random transitions with the config's batch size on the same
number of torch threads, and alternate in blocks of steps so that a shared machine's load falls on both
alike. Prints one JSON line: milliseconds per step (wall and CPU) per side, their ratios, the load.

    .venv/bin/python scripts/bench_sac_step.py launch/half_cheetah_sac.yaml --rounds 6 --block 50
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from stable_baselines3.common.logger import configure

import envs
from robotrl.agents.sac import Agent
from robotrl.config import load_config
from robotrl.core.replay import Transitions
from robotrl.sb3.translate import make_sb3_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="launch/half_cheetah_sac.yaml")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (one block per side each)")
    parser.add_argument("--block", type=int, default=50, help="gradient steps per side per round")
    parser.add_argument("--warmup", type=int, default=30, help="untimed gradient steps per side first")
    parser.add_argument("--transitions", type=int, default=20_000, help="random transitions in each replay")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both sides)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.set)
    env = envs.make_vec(cfg.env.id, 1, **cfg.env.kwargs)
    ours = Agent(cfg, env, torch.device("cpu"))
    model = make_sb3_model(cfg, seed=cfg.seed)
    model.set_logger(configure(None, []))

    rng = np.random.default_rng(cfg.seed)
    n, obs_dim, act_dim = args.transitions, ours.actor.obs_dim, ours.act_dim
    data = Transitions(obs=rng.standard_normal((n, obs_dim)).astype(np.float32),
                       actions=rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
                       rewards=rng.standard_normal(n).astype(np.float32),
                       next_obs=rng.standard_normal((n, obs_dim)).astype(np.float32),
                       terminated=np.zeros(n, np.float32), discounts=np.full(n, cfg.hyper.gamma, np.float32))
    ours.replay.add(data)
    buffer = model.replay_buffer
    buffer.observations[:n, 0] = data.obs
    buffer.next_observations[:n, 0] = data.next_obs
    buffer.actions[:n, 0] = data.actions
    buffer.rewards[:n, 0] = data.rewards
    buffer.pos = n

    sides = {"ours": lambda: ours.gradient_step(ours.sample()),
             "sb3": lambda: model.train(gradient_steps=1, batch_size=cfg.hyper.batch_size)}
    for step in sides.values():
        for _ in range(args.warmup):
            step()
    load_before = os.getloadavg()
    totals = {side: [0.0, 0.0] for side in sides}
    for _ in range(args.rounds):
        for side, step in sides.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.block):
                step()
            totals[side][0] += time.perf_counter() - wall
            totals[side][1] += time.process_time() - cpu
    steps = args.rounds * args.block
    out: dict[str, object] = {"config": args.config, "batch_size": cfg.hyper.batch_size, "threads": args.threads,
                              "steps_per_side": steps}
    for side, (wall, cpu) in totals.items():
        out[f"{side}_ms"] = round(1e3 * wall / steps, 3)
        out[f"{side}_cpu_ms"] = round(1e3 * cpu / steps, 3)
    out["speedup"] = round(totals["sb3"][0] / totals["ours"][0], 3)
    out["speedup_cpu"] = round(totals["sb3"][1] / totals["ours"][1], 3)
    out["loadavg_1min"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(out))
    env.close()
    model.get_env().close()


if __name__ == "__main__":
    main()
