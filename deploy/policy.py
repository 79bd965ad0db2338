"""An exported policy in ONNX Runtime, set up for a control loop: one thread, preallocated buffers."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from deploy.metadata import METADATA_KEY, PolicySpec, parse_spec

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


def session_options() -> ort.SessionOptions:
    """One intra-op thread and sequential execution: ONNX Runtime's default thread pool makes rare calls
    take milliseconds on a busy machine, which a fixed-rate loop cannot absorb."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def resolve_provider(name: str) -> str:
    """ONNX Runtime's provider for `cpu` or `cuda`, or a one-line error naming what is missing."""
    if name not in PROVIDERS:
        raise ValueError(f"--provider {name!r}: expected one of {', '.join(PROVIDERS)}")
    provider = PROVIDERS[name]
    if provider not in ort.get_available_providers():
        raise RuntimeError(f"--provider {name}: this onnxruntime ({ort.__version__}) has no {provider}; "
                           "install the GPU build in place of the CPU one (the two packages cannot share an "
                           "environment): pip uninstall -y onnxruntime && pip install onnxruntime-gpu, with "
                           "CUDA and cuDNN libraries")
    return provider


def load_session(path: str | Path, provider: str = "cpu") -> tuple[ort.InferenceSession, PolicySpec]:
    """Open an exported policy and read its description; clear errors for missing or damaged files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy file not found: {path}")
    providers = [resolve_provider(provider)]
    try:
        session = ort.InferenceSession(str(path), session_options(), providers=providers)
    except Exception as exc:  # ONNX Runtime raises several types for a damaged or truncated file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a loadable ONNX model ({first})") from exc
    if session.get_providers()[0] != providers[0]:
        # onnxruntime-gpu lists CUDA whenever it is installed, and falls back to the CPU when the CUDA or
        # cuDNN libraries do not load: a loop the user asked to run on the GPU would run elsewhere, unsaid.
        raise RuntimeError(f"--provider {provider}: ONNX Runtime could not start {providers[0]} for {path} and "
                           f"fell back to {session.get_providers()[0]} (are the CUDA and cuDNN libraries it needs "
                           "installed and on the library path?)")
    spec = parse_spec(session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), str(path))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [spec.input_name] or spec.output_name not in [o.name for o in outputs]:
        raise ValueError(f"{path}: graph inputs {[i.name for i in inputs]} / outputs {[o.name for o in outputs]} "
                         f"do not match the metadata's {spec.input_name!r} -> {spec.output_name!r}")
    obs_shape = inputs[0].shape[1:]
    act_width = next(o for o in outputs if o.name == spec.output_name).shape[-1]
    if obs_shape != list(spec.obs_shape) or act_width != spec.act_dim:
        raise ValueError(f"{path}: graph maps {_shape(obs_shape)} -> {act_width} values, metadata says "
                         f"{_shape(spec.obs_shape)} -> {spec.act_dim}")
    if inputs[0].type != ORT_TYPES[spec.obs_dtype]:
        raise ValueError(f"{path}: graph input is {inputs[0].type}, metadata says {spec.obs_dtype}")
    return session, spec


def team_of(path: str | Path) -> dict[str, Any] | None:
    """The full description of an exported policy that is one robot of a team (it names its sibling
    files, `team_files`), else None: such a file deploys with its team, not alone. A missing or
    unreadable file is None here and gets its one-line error where it is loaded."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        meta = ort.InferenceSession(str(path), session_options(), providers=[PROVIDERS["cpu"]]).get_modelmeta()
    except Exception:  # ONNX Runtime raises several types for a damaged file; load_session names it
        return None
    raw = meta.custom_metadata_map.get(METADATA_KEY)
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and "team_files" in data else None


def _shape(shape: list | tuple) -> str:
    """8 for a flat vector, [4, 84, 84] for anything else."""
    return str(shape[0]) if len(shape) == 1 else str(list(shape))


class OnnxPolicy:
    """obs -> action with an exported policy. `act` serves one robot per call without allocating;
    `act_batch` serves evaluation over many envs. Both take a flat obs_dim vector (what a robot backend
    sends) or an observation of obs_shape; frames given as floats are rounded and clipped to 0..255."""

    def __init__(self, path: str | Path, provider: str = "cpu") -> None:
        self.path = Path(path)
        self.session, self.spec = load_session(path, provider)
        self.provider = provider
        self._dtype = np.dtype(self.spec.obs_dtype)
        self._obs = np.zeros((1, *self.spec.obs_shape), dtype=self._dtype)
        self._frames = self._dtype == np.uint8
        self._flat = self._obs.reshape(-1)
        self._action = np.zeros((1, self.spec.act_dim), dtype=np.float32)
        self._action_row = self._action[0]
        # IO binding reuses the same input and output buffers on every call (no per-call allocation).
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input(self.spec.input_name, self._obs)
        self._binding.bind_output(self.spec.output_name, device_type="cpu", device_id=0, element_type=np.float32,
                                  shape=self._action.shape, buffer_ptr=self._action.ctypes.data)
        # Chosen once: the per-call path has no provider test. No RunOptions argument: passing one costs
        # ~25 µs per call in onnxruntime 1.32 (measured).
        self._run = self._bound_run() if provider == "cpu" else self._run_copy

    def _bound_run(self) -> Callable[[], object]:
        """The session's compiled run_with_iobinding bound to this policy's binding. The Python wrapper
        (InferenceSession.run_with_iobinding) checks the binding's session and asks the session about WebGPU
        graph capture on every call, which the loop pays for each tick; its own check is done here once.
        An onnxruntime without these attributes gets the public call."""
        compiled, bound = getattr(self.session, "_sess", None), getattr(self._binding, "_iobinding", None)
        if compiled is None or bound is None or getattr(self._binding, "_session", None) is not compiled:
            return partial(self.session.run_with_iobinding, self._binding)
        return partial(compiled.run_with_iobinding, bound, None)

    def _run_copy(self) -> None:
        self._action[:] = self.session.run([self.spec.output_name], {self.spec.input_name: self._obs})[0]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action for one observation, in a buffer the next call overwrites."""
        if self._frames:
            obs = np.asarray(obs)
            self._flat[:] = np.reshape(obs if obs.dtype == np.uint8 else np.clip(np.rint(obs), 0, 255), -1)
        else:
            self._obs[0] = obs
        self._run()
        return self._action_row

    @property
    def last_input(self) -> np.ndarray:
        """The observation of the last call, flat (a view the next call overwrites)."""
        return self._flat

    @property
    def last_action(self) -> np.ndarray:
        """The action of the last call (a view the next call overwrites)."""
        return self._action_row

    def warm(self) -> None:
        """Run the last input again and discard the result (the next `act` overwrites it): brings the
        session's code and weights back into the caches before a deadline."""
        if self.provider == "cpu":
            self._run()

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """Actions for [batch, obs_dim] or [batch, *obs_shape] observations."""
        obs = np.asarray(obs)
        if self._frames and obs.dtype != np.uint8:
            obs = np.clip(np.rint(obs), 0, 255)
        x = np.ascontiguousarray(obs, dtype=self._dtype).reshape(-1, *self.spec.obs_shape)
        return self.session.run([self.spec.output_name], {self.spec.input_name: x})[0]
