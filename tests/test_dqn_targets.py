"""DQN and Double DQN targets, and the tabular TD / MC updates, on hand-built transitions."""

import numpy as np
import pytest
import torch
from torch import nn

from robotrl.agents.dqn import td_targets
from robotrl.agents.qlearning import mc_update, td_update
from robotrl.core.replay import Transitions


class FixedQ(nn.Module):
    """Q(s, .) looked up by the integer state in s[:, 0]."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, obs):
        return self.table[obs[:, 0].long()]


def _batch(terminated, discounts):
    # Three transitions, all into next state 1: non-terminal, terminal, truncated (non-terminal, gamma).
    return Transitions(obs=torch.zeros(3, 1), actions=torch.zeros(3, dtype=torch.int64),
                       rewards=torch.tensor([1.0, 1.0, 1.0]), next_obs=torch.ones(3, 1),
                       terminated=torch.tensor(terminated), discounts=torch.tensor(discounts))


ONLINE = FixedQ([[0.0, 0.0], [5.0, 2.0]])  # the online net prefers action 0 in state 1
TARGET = FixedQ([[0.0, 0.0], [3.0, 4.0]])  # the target net values action 0 at 3, action 1 at 4


def test_dqn_target_takes_the_target_nets_max():
    y = td_targets(ONLINE, TARGET, _batch([0.0, 1.0, 0.0], [0.9, 0.9, 0.9]), double=False)
    # 1 + 0.9 * max(3, 4) = 4.6; terminal: 1 (no bootstrap); truncated bootstraps like non-terminal.
    assert y.tolist() == pytest.approx([4.6, 1.0, 4.6])


def test_double_dqn_target_values_the_online_choice_with_the_target_net():
    y = td_targets(ONLINE, TARGET, _batch([0.0, 1.0, 0.0], [0.9, 0.9, 0.9]), double=True)
    # online argmax in state 1 is action 0; the target net values it at 3: 1 + 0.9 * 3 = 3.7.
    assert y.tolist() == pytest.approx([3.7, 1.0, 3.7])


def test_nstep_discount_scales_the_bootstrap():
    y = td_targets(ONLINE, TARGET, _batch([0.0, 0.0, 0.0], [0.81, 0.729, 1.0]), double=False)
    assert y.tolist() == pytest.approx([1 + 0.81 * 4, 1 + 0.729 * 4, 5.0])


def test_q_learning_update_non_terminal_terminal_and_truncated():
    q = np.zeros((3, 2))
    q[1] = [2.0, 6.0]
    # non-terminal: target 1 + 0.5 * 6 = 4; Q moves 0.1 of the way: 0.4.
    err = td_update(q, s=0, a=1, r=1.0, s_next=1, terminated=False, alpha=0.1, gamma=0.5)
    assert err == pytest.approx(4.0) and q[0, 1] == pytest.approx(0.4)
    # terminal: the next state is worth 0 whatever the table says.
    td_update(q, s=2, a=0, r=1.0, s_next=1, terminated=True, alpha=0.1, gamma=0.5)
    assert q[2, 0] == pytest.approx(0.1)
    # a truncated episode is not terminal: the caller passes terminated=False and the final state.
    td_update(q, s=2, a=1, r=0.0, s_next=1, terminated=False, alpha=1.0, gamma=0.5)
    assert q[2, 1] == pytest.approx(3.0)


def test_sarsa_update_uses_the_action_taken_next():
    q = np.zeros((2, 2))
    q[1] = [2.0, 6.0]
    td_update(q, s=0, a=0, r=1.0, s_next=1, terminated=False, alpha=0.5, gamma=0.5, a_next=0)
    # 1 + 0.5 * Q(1, 0) = 2, not 1 + 0.5 * 6: Q(0, 0) = 0.5 * 2 = 1.
    assert q[0, 0] == pytest.approx(1.0)


def test_every_visit_mc_moves_each_visit_toward_its_return():
    q = np.zeros((2, 2))
    # s0 visited twice; rewards 1, 1, 1; gamma 0.5; terminal end: returns 1.75, 1.5, 1.
    mc_update(q, [(0, 0, 1.0), (1, 1, 1.0), (0, 0, 1.0)], tail_value=0.0, alpha=0.5, gamma=0.5)
    # Updates run from the end: Q(0,0) = 0.5 * 1 = 0.5, then Q(0,0) += 0.5 * (1.75 - 0.5) = 1.125.
    assert q[0, 0] == pytest.approx(1.125) and q[1, 1] == pytest.approx(0.75)
    q = np.zeros((1, 1))
    mc_update(q, [(0, 0, 0.0)], tail_value=4.0, alpha=1.0, gamma=0.5)  # truncated: bootstrap the tail
    assert q[0, 0] == pytest.approx(2.0)
