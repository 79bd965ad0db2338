"""DrQ's random shift: what the pixel Q-network is trained on when dqn.augment_shift is set."""

import numpy as np
import pytest
import torch

from robotrl.core.augment import random_shift


def test_random_shift_moves_each_stack_as_a_whole_and_repeats_the_border():
    frames = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8).to(torch.uint8)
    out = random_shift(frames, 2, np.random.default_rng(0))
    assert out.shape == frames.shape and out.dtype == torch.float32
    x = frames.to(torch.float32)
    for i in range(2):
        # Which of the 25 shifts was drawn: the one whose replicate-padded crop matches all channels.
        padded = torch.nn.functional.pad(x[i:i + 1], (2, 2, 2, 2), mode="replicate")[0]
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[:, dy:dy + 8, dx:dx + 8])]
        assert len(matches) == 1


def test_random_shift_draws_every_offset_and_is_reproducible():
    frames = torch.zeros(4000, 1, 9, 9)
    frames[:, 0, 4, 4] = 1.0  # a dot in the middle: where it lands is the shift
    out = random_shift(frames, 1, np.random.default_rng(3))
    where = out[:, 0].flatten(1).argmax(1)
    counts = np.bincount(where.numpy(), minlength=81).reshape(9, 9)[3:6, 3:6]
    assert counts.sum() == 4000 and counts.min() > 4000 / 9 * 0.8
    again = random_shift(frames, 1, np.random.default_rng(3))
    assert torch.equal(out, again)
    assert torch.equal(random_shift(frames, 0, np.random.default_rng(0)), frames)
    with pytest.raises(ValueError, match="pad must be >= 0"):
        random_shift(frames, -1, np.random.default_rng(0))
