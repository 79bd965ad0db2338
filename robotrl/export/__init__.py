"""From a trained run to files a robot runs: one self-describing ONNX policy (with its parity check and
optional int8 quantization), and one ONNX actor per robot for a multi-robot team."""
