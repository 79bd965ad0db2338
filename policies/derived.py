"""Tensors derived from a module's buffers, computed once and reused until the buffers change.

A policy runs at every env step and every minibatch, while its normalizer statistics and action bounds
change once per rollout at most. A traced or exported graph must still compute such values from the
buffers, so that they stay graph inputs rather than frozen constants.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch


def is_exporting() -> bool:
    """Inside a trace, script, ONNX export or torch.compile: take the plain, graph-friendly path."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export() or \
        torch.compiler.is_compiling()


def cached(owner: Any, name: str, sources: tuple[torch.Tensor, ...], compute: Callable[[], Any],
           extra: Hashable = None) -> Any:
    """`compute()`, cached on `owner` under `name` until one of `sources` changes: in-place updates
    (an optimizer step, load_state_dict) bump a tensor's _version, `.to(device)` makes new tensors."""
    if is_exporting():
        return compute()
    key = (tuple((id(t), t._version, t.device) for t in sources), extra)
    slot = f"_cached_{name}"
    hit = getattr(owner, slot, None)
    if hit is None or hit[0] != key:
        hit = (key, compute())
        object.__setattr__(owner, slot, hit)
    return hit[1]


def forget(module: torch.nn.Module) -> None:
    """Drop every value `cached` keeps on `module` and its submodules. A tensor's _version counts writes
    made in this process only: buffers in shared memory that other processes update (A3C's workers)
    must be forgotten by hand before this process reads them again."""
    for sub in module.modules():
        for slot in [k for k in vars(sub) if k.startswith("_cached_")]:
            object.__delattr__(sub, slot)
