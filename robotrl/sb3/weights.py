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


def parameter_pairs(ours: ActorCritic, sb3_policy: nn.Module) -> list[tuple[str, nn.Parameter, nn.Parameter]]:
    """(name, our parameter, SB3's parameter) for every weight the two policies share."""
    extractor = sb3_policy.mlp_extractor
    sides = [
        ("actor", _linears(ours.actor), [*_linears(extractor.policy_net), sb3_policy.action_net]),
        ("critic", _linears(ours.critic), [*_linears(extractor.value_net), sb3_policy.value_net]),
    ]
    pairs: list[tuple[str, nn.Parameter, nn.Parameter]] = []
    for side, mine, theirs in sides:
        if [tuple(m.weight.shape) for m in mine] != [tuple(t.weight.shape) for t in theirs]:
            raise ValueError(f"SB3 {side} layer sizes {[tuple(t.weight.shape) for t in theirs]} differ from ours "
                             f"{[tuple(m.weight.shape) for m in mine]}")
        for i, (m, t) in enumerate(zip(mine, theirs, strict=True)):
            pairs += [(f"{side}.{i}.weight", m.weight, t.weight), (f"{side}.{i}.bias", m.bias, t.bias)]
    if ours.continuous:
        pairs.append(("log_std", ours.log_std, sb3_policy.log_std))
    return pairs


@torch.no_grad()
def load_sb3_actor_critic(ours: ActorCritic, sb3_policy: nn.Module) -> None:
    """Overwrite `ours` with the weights of an SB3 ActorCriticPolicy (separate pi/vf trunks)."""
    for _, mine, theirs in parameter_pairs(ours, sb3_policy):
        mine.copy_(theirs)
