"""The on-robot side: run an exported ONNX policy at a fixed rate. Imports numpy and onnxruntime only.

`python -m deploy POLICY.onnx --backend udp` runs it on a controller with only the base install.
"""
