"""ONNX export of a policy's deterministic actor, with its description inside the file.

The graph maps raw float32 observations [batch, obs_dim] to env actions [batch, act_dim]: the
normalizer, the deterministic head, the action scaling and the clipping are all in it, so the robot
runs one graph and nothing else. The description (observation layout, action bounds and mode,
control rate, env, algorithm, steps) travels as JSON under one metadata key; deploy/metadata.py
reads it with ONNX Runtime alone.

A pixel policy takes its frame stack as the env renders it, uint8 [batch, stack, size, size], and
scales it to [0, 1] inside the graph: the dtype tells the caller the scale (no guessing between 0..255
and 0..1 floats), and a stack is a quarter of the bytes of float32. Its description says
`obs_shape`, `obs_dtype` and `pixels` (size, stack, camera, skip) with format_version 2, so that a runner
that only knows flat float32 vectors (version 1) refuses the file instead of misreading it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnx
import torch
from torch import nn

FORMAT_VERSION = 2
"""The newest format written: 2 for an n-d or non-float32 input; flat float32 policies still say 1."""
METADATA_KEY = "robotrl.policy"
INPUT_NAME = "obs"
OUTPUT_NAME = "action"
PARITY_TOLERANCE = 1e-5
"""Largest |onnx - torch| action difference an fp32 export may have."""


TORCH_DTYPES = {"float32": torch.float32, "uint8": torch.uint8}
ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}
CHUNK = 256
"""Observations per forward pass in the checks: bounds memory for pixel stacks (28 KB each as uint8)."""


@runtime_checkable
class HasExportGraph(Protocol):
    """An actor with a cheaper module for the same map (up to float rounding) for ONNX to trace, e.g. the
    action rescale folded into the last layer. Parity checks keep comparing against the actor itself."""

    def export_graph(self) -> nn.Module: ...


def to_onnx(actor: nn.Module, obs_shape: int | Sequence[int], description: dict[str, Any],
            obs_dtype: str = "float32") -> bytes:
    """Serialize `actor` to one self-contained ONNX file (batch dimension dynamic) carrying `description`.
    `obs_shape` is one observation's shape (an int for a flat vector), `obs_dtype` float32 or uint8. An
    actor with an `export_graph()` (HasExportGraph) is exported through it: check_parity against `actor`
    itself is what shows that the two agree."""
    actor = actor.eval()
    if isinstance(actor, HasExportGraph):
        actor = actor.export_graph().eval()
    shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
    example = torch.zeros(2, *shape, dtype=TORCH_DTYPES[obs_dtype])
    # The dynamo exporter chats on stdout and warns about torch internals; neither concerns the user.
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)  # "torchvision is not installed" lines, irrelevant here
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            actor, (example,), None,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False, verbose=False,
        )
    registration_log.setLevel(level)
    model = program.model_proto
    set_description(model, description)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def set_description(model: onnx.ModelProto, description: dict[str, Any]) -> None:
    """Write the description JSON (with the format version) into the model's metadata."""
    flat = len(description.get("obs_shape", [0])) == 1 and description.get("obs_dtype", "float32") == "float32"
    payload = {"format_version": 1 if flat else FORMAT_VERSION, "input": INPUT_NAME, "output": OUTPUT_NAME,
               **description}
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(payload, sort_keys=True)
    model.producer_name = "robotrl"


def quantize_int8(model_bytes: bytes, description: dict[str, Any]) -> bytes:
    """Dynamic int8 weight quantization (ONNX Runtime); the description says `quantized: int8`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model_bytes)
        # It logs advice on pre-processing for image models at WARNING on the root logger; not ours.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        model = onnx.load(dst)
    set_description(model, {**description, "quantized": "int8"})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def onnx_policy_fn(model_bytes: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """A batch function running the exported graph in ONNX Runtime (CPU, one thread), in the graph's
    input dtype."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    dtype = ONNX_DTYPES[session.get_inputs()[0].type]

    def act(observations: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(observations, dtype=dtype)
        return np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + CHUNK]})[0]
                               for i in range(0, max(len(x), 1), CHUNK)])

    return act


def onnx_actions(model_bytes: bytes, observations: np.ndarray) -> np.ndarray:
    return onnx_policy_fn(model_bytes)(observations)


def torch_actions(actor: nn.Module, observations: np.ndarray) -> np.ndarray:
    """The actor's outputs; uint8 frames stay uint8 (the actor scales them), anything else is float32."""
    obs = np.asarray(observations)
    if obs.dtype != np.uint8:
        obs = obs.astype(np.float32, copy=False)
    with torch.no_grad():
        actor = actor.eval()
        return np.concatenate([actor(torch.as_tensor(obs[i:i + CHUNK])).numpy()
                               for i in range(0, max(len(obs), 1), CHUNK)])


def parity_error(actor: nn.Module, model_bytes: bytes, observations: np.ndarray) -> float:
    """max |onnx(obs) - torch(obs)| over a batch of observations."""
    diff = np.abs(onnx_actions(model_bytes, observations) - torch_actions(actor, observations))
    return float(diff.max()) if diff.size else 0.0


def check_parity(actor: nn.Module, model_bytes: bytes, observations: np.ndarray,
                 tolerance: float = PARITY_TOLERANCE) -> float:
    """Raise when ONNX Runtime and torch disagree by more than `tolerance` on any observation."""
    err = parity_error(actor, model_bytes, observations)
    if not err <= tolerance:
        raise ValueError(f"ONNX and torch actions differ by {err:.3g} on {len(observations)} observations "
                         f"(tolerance {tolerance:g})")
    return err


def edge_observations(typical: np.ndarray, rng: np.random.Generator, clipped: bool = True) -> np.ndarray:
    """Observations beyond the typical ones: zeros, copies scaled by 10, noise at 5 std and, where the
    graph clips its normalized input (`clipped`), large magnitudes that saturate that clip: +-1e4,
    single-coordinate spikes up to +-1e6, copies scaled by 100. `typical` is [n, obs_dim] from running the env.

    A graph without a normalizer feeds raw magnitudes to its first layer, and there float32 alone (ONNX
    Runtime and torch sum their matrix products in different orders) moves a tanh action by more than 1e-5
    at +-1e4: 5.3e-5 for a HalfCheetah SAC actor whose own rollouts agree to 1.2e-7. Such cases would
    measure the rounding of inputs no robot sends, not the graph, so an unclipped policy is spared them."""
    obs_dim = typical.shape[1]
    picks = typical[rng.integers(0, len(typical), size=256)]
    noise = rng.standard_normal((256, obs_dim)).astype(np.float32) * typical.std(0, keepdims=True) * 5
    parts = [np.zeros((1, obs_dim), dtype=np.float32), picks * 10.0, noise]
    if clipped:
        spikes = [np.diag(np.full(obs_dim, scale, dtype=np.float32)) for scale in (1e3, -1e3, 1e6, -1e6)]
        parts += [np.full((1, obs_dim), 1e4, dtype=np.float32), np.full((1, obs_dim), -1e4, dtype=np.float32),
                  *spikes, picks * 100.0]
    return np.concatenate(parts).astype(np.float32)


def edge_frames(typical: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frame stacks beyond the visited ones: black, white, uniform noise, inverted images, the stack
    reversed in time (motion the other way) and one frame blanked. `typical` is uint8 [n, stack, H, W]."""
    shape = typical.shape[1:]
    picks = typical[rng.integers(0, len(typical), size=128)]
    blanked = picks.copy()
    blanked[np.arange(len(picks)), rng.integers(0, shape[0], size=len(picks))] = 0
    parts = [
        np.zeros((1, *shape), dtype=np.uint8),
        np.full((1, *shape), 255, dtype=np.uint8),
        rng.integers(0, 256, size=(128, *shape), dtype=np.uint8),
        255 - picks,
        picks[:, ::-1],
        blanked,
    ]
    return np.ascontiguousarray(np.concatenate(parts))
