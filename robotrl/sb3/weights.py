"""Copy an SB3 actor-critic's weights into our ActorCritic, so both compute on the same parameters.

SB3's MlpPolicy with net_arch=dict(pi=H, vf=H) holds two MLP trunks (mlp_extractor.policy_net and
.value_net, Linear/activation pairs) and two heads (action_net, value_net); ours holds the same layers as
one Sequential per side (actor.0, actor.2, ..., the head last). Only the layout differs.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.actor_critic import ActorCritic


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def load_sb3_actor_critic(ours: ActorCritic, sb3_policy: nn.Module) -> None:
    """Overwrite `ours` with the weights of an SB3 ActorCriticPolicy (separate pi/vf trunks)."""
    extractor = sb3_policy.mlp_extractor
    pairs = [
        (_linears(ours.actor), [*_linears(extractor.policy_net), sb3_policy.action_net]),
        (_linears(ours.critic), [*_linears(extractor.value_net), sb3_policy.value_net]),
    ]
    for mine, theirs in pairs:
        if [tuple(m.weight.shape) for m in mine] != [tuple(t.weight.shape) for t in theirs]:
            raise ValueError("SB3 policy layer sizes differ from ours: "
                             f"{[tuple(t.weight.shape) for t in theirs]} vs {[tuple(m.weight.shape) for m in mine]}")
        for m, t in zip(mine, theirs, strict=True):
            m.weight.copy_(t.weight)
            m.bias.copy_(t.bias)
    if ours.continuous:
        ours.log_std.copy_(sb3_policy.log_std)
