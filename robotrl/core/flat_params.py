"""One contiguous buffer for all of a network's parameters (and one for their gradients).

A PPO update of two 64-unit MLPs makes 40 optimizer steps per rollout, each touching 10 small tensors:
Adam, gradient-norm clipping and zero_grad then cost more in per-tensor dispatch than in arithmetic.
With the parameters as views into one flat tensor, each of those is one kernel on one tensor. The
module keeps its own parameters (as views), so its state_dict, export and forward do not change.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FlatParameters:
    """Re-homes `module`'s trainable parameters into `self.param` (and their .grad into its .grad).

    Call after the module is on its final device. Clear gradients with `zero_grad()` (never by
    setting .grad to None: the views would be lost).
    """

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]
        first = self.params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in self.params):
            raise ValueError("FlatParameters needs all parameters on one device with one dtype")
        total = sum(p.numel() for p in self.params)
        self.param = nn.Parameter(torch.empty(total, dtype=first.dtype, device=first.device))
        self.grad = torch.zeros_like(self.param)
        """The flat gradient buffer (self.param.grad): every parameter's .grad is a view into it."""
        self.param.grad = self.grad
        offset = 0
        for p in self.params:
            n = p.numel()
            self.param.data[offset:offset + n].copy_(p.data.reshape(-1))
            p.data = self.param.data[offset:offset + n].view_as(p)
            # Backward accumulates in place into an existing .grad, so gradients land in the flat buffer.
            p.grad = self.grad[offset:offset + n].view_as(p)
            offset += n

    def zero_grad(self) -> None:
        self.grad.zero_()

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Global gradient-norm clipping (as nn.utils.clip_grad_norm_) on the one buffer."""
        return nn.utils.clip_grad_norm_([self.param], max_norm)

    def convert_optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """An optimizer state_dict saved with one entry per parameter (before flattening) as the
        state of the flat parameter: per-element buffers concatenated in parameter order."""
        groups = state["param_groups"]
        ids = [i for g in groups for i in g["params"]]
        if len(ids) == 1:
            return state
        if len(ids) != len(self.params):
            raise ValueError(f"optimizer state has {len(ids)} parameters, the network {len(self.params)}")
        per = [state["state"].get(i, {}) for i in ids]
        flat: dict[str, Any] = {}
        if all(per):
            for key, value in per[0].items():
                if torch.is_tensor(value) and value.numel() == self.params[0].numel():
                    flat[key] = torch.cat([s[key].reshape(-1) for s in per])
                else:  # scalars such as Adam's step count are shared by all parameters
                    flat[key] = value.clone() if torch.is_tensor(value) else value
        group = {k: v for k, v in groups[0].items() if k != "params"} | {"params": [0]}
        return {"state": {0: flat} if flat else {}, "param_groups": [group]}

