"""The on-robot side: run an exported ONNX policy at a fixed rate. Imports numpy and onnxruntime only."""
