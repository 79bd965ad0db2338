"""The speed-ups of the training hot paths compute what the plain torch code computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from policies.activations import SIGMOID_TANH_MIN_NUMEL, Tanh
from policies.actor_critic import ActorCritic
from policies.rollout_sampler import RolloutSampler
from robotrl.core.flat_params import FlatParameters


def test_tanh_matches_torch_tanh_and_its_gradient_on_large_batches():
    torch.manual_seed(0)
    x = (torch.randn(512, 64) * 3).requires_grad_()
    assert x.numel() >= SIGMOID_TANH_MIN_NUMEL
    y = Tanh()(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    ref_x = x.detach().clone().requires_grad_()
    (torch.tanh(ref_x) * g).sum().backward()
    torch.testing.assert_close(y, torch.tanh(ref_x), atol=3e-7, rtol=0)
    # The gradient is g * (1 - y^2): a few float32 ulps of |g| (up to ~4.5 over 32k normal draws) apart.
    # An unseeded run once missed 1e-6 by one element (1.2e-6).
    torch.testing.assert_close(x.grad, ref_x.grad, atol=4e-6, rtol=1e-5)


def test_tanh_exports_as_tanh():
    graph = torch.jit.trace(nn.Sequential(nn.Linear(4, 4096), Tanh()), torch.zeros(2, 4)).inlined_graph
    kinds = {n.kind() for n in graph.nodes()}
    assert "aten::tanh" in kinds and "aten::sigmoid" not in kinds


def _policy(continuous: bool, activation: str, normalize: bool) -> ActorCritic:
    torch.manual_seed(0)
    p = ActorCritic(7, 3, continuous=continuous, hidden=(32, 16), activation=activation,
                    init_log_std=-0.3, normalize_obs=normalize, action_low=[-2.0, -1.0, 0.0],
                    action_high=[2.0, 1.0, 5.0])
    if normalize:
        p.normalizer.update(torch.randn(100, 7) * 4 + 1)
    return p


@pytest.mark.parametrize("continuous", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("normalize", [True, False])
def test_rollout_sampler_draws_what_act_draws(continuous, activation, normalize):
    policy = _policy(continuous, activation, normalize)
    assert RolloutSampler.supports(policy)
    sampler = RolloutSampler(policy)
    obs = torch.randn(9, 7) * 5
    torch.manual_seed(1)
    expected = policy.act(obs)
    torch.manual_seed(1)
    got = sampler(obs)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g.to(e.dtype), e, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(torch.as_tensor(sampler.to_env(got[0])).to(torch.float32),
                               policy.to_env(expected[0]).to(torch.float32), atol=2e-5, rtol=1e-5)


def test_rollout_sampler_declines_what_it_cannot_fuse():
    policy = _policy(True, "elu", True)
    assert not RolloutSampler.supports(policy)


def test_flat_parameters_share_storage_gradients_and_clipping():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    ref = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    ref.load_state_dict(net.state_dict())
    flat = FlatParameters(net)
    x = torch.randn(20, 5)
    for _ in range(2):  # twice: the second backward must accumulate into the zeroed flat buffer
        flat.zero_grad()
        (net(x) ** 2).sum().backward()
    ref.zero_grad()
    (ref(x) ** 2).sum().backward()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    norm = flat.clip_grad_norm_(0.1)
    ref_norm = nn.utils.clip_grad_norm_(ref.parameters(), 0.1)
    torch.testing.assert_close(norm, ref_norm)
    torch.testing.assert_close(flat.param.grad, torch.cat([q.grad.reshape(-1) for q in ref.parameters()]))
    opt = torch.optim.SGD([flat.param], lr=0.5)
    opt.step()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach() - 0.5 * q.grad)


def test_flat_parameters_convert_a_per_parameter_adam_state():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    net.load_state_dict(ref.state_dict())
    x = torch.randn(20, 5)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    for _ in range(3):
        ref_opt.zero_grad()
        (ref(x) ** 2).sum().backward()
        ref_opt.step()
    net.load_state_dict(ref.state_dict())
    flat = FlatParameters(net)
    opt = torch.optim.Adam([flat.param], lr=1e-2)
    opt.load_state_dict(flat.convert_optimizer_state(ref_opt.state_dict()))
    for o, model in ((ref_opt, ref), (opt, net)):  # one more step each: same moments, same result
        o.zero_grad() if o is ref_opt else flat.zero_grad()
        (model(x) ** 2).sum().backward()
        o.step()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach())


def test_limit_threads_caps_torch_and_numpy_blas():
    from threadpoolctl import threadpool_info

    from robotrl.core.threads import limit_threads

    limit_threads(1)
    assert torch.get_num_threads() == 1
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)
