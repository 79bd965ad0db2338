"""Torch networks, observation normalization, checkpoints and ONNX export."""
