"""The best-evaluated policy of a run (`train.keep_best`), kept in `checkpoints/best.pt`.

Value-based learners oscillate: a pixel DQN can balance every evaluation episode at one checkpoint and
fail half of them 25k steps later. Keeping the best of the periodic evaluations delivers the policy that
was seen working. Its score was chosen on the periodic evaluation's episodes, so it is optimistic there;
the trainer measures the delivered policy again on episodes it was not chosen on.

best.pt holds the policy's weights only (no optimizer, no replay): it is rewritten at each improvement,
and a pixel DQN's replay alone is gigabytes. Its layout is a checkpoint's, so everything that loads a
trained policy (eval, export, view) reads it the same way.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from policies.checkpoint import load_checkpoint, save_checkpoint

BEST_FILE = "best.pt"


class BestPolicy:
    """The highest mean evaluation return so far, the step it was reached at and the policy's weights."""

    def __init__(self, path: Path, header: dict[str, Any], resume_step: int | None = None) -> None:
        self.path, self.header = Path(path), header
        self.score: float | None = None
        self.step: int | None = None
        self.weights: dict[str, torch.Tensor] | None = None
        if resume_step is not None and self.path.exists():
            saved = load_checkpoint(self.path)
            # Kept even when it is newer than the checkpoint resumed from (killed between the two writes, or
            # after an improvement): it is a policy that was evaluated, and it replaced the best before it
            # (best.pt holds one). The resumed run, reseeded from its step, does not retrace that path.
            self.score, self.step = float(saved["best"]["return_mean"]), int(saved["step"])
            self.weights = saved["agent"]["policy"]

    def consider(self, step: int, iteration: int, ev: dict[str, Any], policy: torch.nn.Module) -> bool:
        """Keep `policy` if its evaluation is at least as good as the best so far (the later of equal
        scores: it has trained longer); True when it was kept and best.pt rewritten."""
        score = float(ev["return_mean"])
        if self.score is not None and score < self.score:
            return False
        self.score, self.step = score, step
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in policy.state_dict().items()}
        save_checkpoint(self.path, {**self.header, "step": step, "iteration": iteration,
                                    "agent": {"policy": self.weights},
                                    "best": {"return_mean": score, "eval": ev}})
        return True

    def metrics(self) -> dict[str, float]:
        """The best score so far as a metrics column (none before the first evaluation)."""
        return {} if self.score is None else {"eval/best_return_mean": self.score}

    def policy_like(self, policy: torch.nn.Module) -> torch.nn.Module:
        """A copy of `policy` carrying the best weights (the training policy itself is left as it is)."""
        if self.weights is None:
            raise RuntimeError(f"{self.path}: no policy has been evaluated yet")
        best = copy.deepcopy(policy)
        best.load_state_dict(self.weights)
        return best
