"""`robotrl bench train`: training throughput of ours and SB3 with the same config and number of envs.

Both sides train for the same number of steps with no periodic evaluation; only collect + update time
counts (ours: the trainer's timers; SB3: the wall time of `learn`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from robotrl.config import RunConfig
from robotrl.multiseed import run_ours
from robotrl.sb3.compare import run_sb3


def bench_train(cfg: RunConfig, steps: int) -> dict[str, Any]:
    """{"env", "algo", "ours_steps_per_s", "sb3_steps_per_s", ...} for `steps` steps per side."""
    train = dataclasses.replace(cfg.train, total_steps=steps, eval_every=0, final_eval_episodes=1,
                                checkpoint_every=10 * steps, keep_checkpoints=False)
    cfg = dataclasses.replace(cfg, train=train)
    with tempfile.TemporaryDirectory(prefix="robotrl-bench-") as tmp:
        ours = run_ours(cfg, Path(tmp) / "ours")
    sb3 = run_sb3(cfg)
    return {"env": cfg.env.id, "algo": cfg.algo, "num_envs": cfg.env.num_envs, "steps": ours.steps,
            "ours_steps_per_s": ours.steps / ours.train_s, "sb3_steps_per_s": sb3.steps / sb3.train_s,
            "ours_train_s": ours.train_s, "sb3_train_s": sb3.train_s}
