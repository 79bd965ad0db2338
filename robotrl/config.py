"""Run configs: typed, documented dataclasses loaded from YAML, validated, then frozen.

Every error names the file, the key path and what was expected, so a typo in a launch file is a
one-line message instead of a silent default.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robotrl.hyper import ALGORITHMS, HYPER
from robotrl.hyper.checks import non_negative, positive

_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass(frozen=True)
class EnvConfig:
    id: str = "robotrl/Reacher-v0"
    """Gymnasium id: a robotrl robot or any Gymnasium env (HalfCheetah-v5, ...)."""
    num_envs: int = 16
    """Simulations stepped together for training."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Passed to the env constructor (task options, sim-to-real options)."""

    def validate(self) -> None:
        positive(self, "num_envs")


@dataclass(frozen=True)
class PolicyConfig:
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes, the same for actor and critic."""
    activation: typing.Literal["tanh", "relu", "elu"] = "tanh"
    """tanh, relu or elu."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian actor."""
    normalize_obs: bool = True
    """Running observation normalization inside the policy (exported with it)."""

    def validate(self) -> None:
        if not all(size > 0 for size in self.hidden):
            raise ValueError(f"hidden: expected positive layer sizes, got {list(self.hidden)}")


@dataclass(frozen=True)
class TrainConfig:
    total_steps: int = 1_000_000
    """Environment steps (summed over the vector envs)."""
    eval_every: int = 50_000
    """Environment steps between deterministic evaluations (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation."""
    final_eval_episodes: int = 100
    """Episodes of the evaluation written to eval.json at the end."""
    checkpoint_every: int = 50_000
    """Environment steps between checkpoints (latest.pt is always rewritten)."""
    keep_checkpoints: bool = True
    """Keep a numbered copy at each checkpoint besides latest.pt."""
    keep_best: bool = False
    """Deliver the policy that scored best in the periodic evaluations (checkpoints/best.pt) instead of
    the last one; the final evaluation then runs on other episodes than the ones it was chosen on."""
    device: str = "cpu"
    """cpu, cuda or auto."""
    threads: int = 1
    """torch threads; one is fastest for small networks on few cores."""

    def validate(self) -> None:
        positive(self, "total_steps", "checkpoint_every", "eval_episodes", "final_eval_episodes", "threads")
        if self.eval_every < 0:
            raise ValueError(f"eval_every: expected 0 (only at the end) or a positive integer, got {self.eval_every}")
        if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", self.device):
            raise ValueError(f"device: expected cpu, cuda, cuda:N or auto, got {self.device!r}")
        if self.keep_best and self.eval_every <= 0:
            raise ValueError(f"keep_best chooses among the periodic evaluations: eval_every must be positive, "
                             f"got {self.eval_every}")


@dataclass(frozen=True)
class ScaleConfig:
    """Where experience is collected: in this process (local) or by Ray actors (robotrl.scale)."""

    backend: typing.Literal["local", "ray"] = "local"
    """local: the trainer steps env.num_envs simulations itself; ray: `workers` actors step them."""
    workers: int = 2
    """Ray rollout workers; env.num_envs is split evenly over them."""
    address: str | None = None
    """local: start a Ray on this machine; auto: join the running cluster (`ray start`); host:port or
    ray://host:port: that cluster; unset: $RAY_ADDRESS when set, else local."""
    num_cpus: int | None = None
    """CPUs a locally started Ray may use (unset: all of this machine's)."""
    worker_cpus: float = 1.0
    """CPUs reserved per worker actor."""
    max_worker_restarts: int = 3
    """Dead or hung workers replaced per run before the run stops with an error."""
    timeout_s: float = 300.0
    """Seconds to wait for one rollout before the worker counts as hung."""
    start_timeout_s: float = 120.0
    """Extra seconds a new worker has to start (import torch, build its envs) before it counts as hung."""

    def validate(self) -> None:
        positive(self, "num_cpus")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.worker_cpus <= 0 or self.timeout_s <= 0 or self.start_timeout_s <= 0 or self.max_worker_restarts < 0:
            raise ValueError("worker_cpus, timeout_s and start_timeout_s must be positive, "
                             "max_worker_restarts non-negative")


TARGET_METRICS = ("success_rate", "return_mean", "length_mean")
"""Fields of an evaluation (`robotrl eval --json`) a target may name, besides `info_means.<name>`."""

_COMPARISONS: dict[str, typing.Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}


@dataclass(frozen=True)
class TargetConfig:
    """The task's goal as data, `metric op value` on an evaluation (e.g. success_rate >= 0.9), so that
    `robotrl eval` and `robotrl seeds` can say whether a run meets it instead of a person reading a comment."""

    metric: str = "success_rate"
    """success_rate, return_mean, length_mean, or info_means.<name> (a per-step measurement of the task)."""
    op: typing.Literal[">=", ">", "<=", "<"] = ">="
    value: float = 0.0

    def validate(self) -> None:
        if self.metric not in TARGET_METRICS and not re.fullmatch(r"info_means\.\w+", self.metric):
            raise ValueError(f"metric: expected one of {', '.join(TARGET_METRICS)} or info_means.<name>, "
                             f"got {self.metric!r}")
        if self.value != self.value or self.value in (float("inf"), float("-inf")):
            raise ValueError(f"value: expected a finite number, got {self.value}")

    def measured(self, evaluation: dict[str, Any]) -> float | None:
        """The metric's value in an evaluation dict, None where the evaluation has none (no success signal)."""
        node: Any = evaluation
        for part in self.metric.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return None if node is None else float(node)

    def met(self, evaluation: dict[str, Any]) -> bool | None:
        value = self.measured(evaluation)
        return None if value is None else self.holds(value)

    def holds(self, value: float) -> bool:
        """Whether a measured value of the metric meets the target."""
        return _COMPARISONS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def target_fields(target: TargetConfig | None, evaluation: dict[str, Any]) -> dict[str, Any]:
    """What an evaluation reports about the run's goal: `target` (as the config writes it, None without one)
    and `target_met` (None without a target, or when the evaluation does not measure its metric)."""
    if target is None:
        return {"target": None, "target_met": None}
    return {"target": _to_plain(target), "target_met": target.met(evaluation)}


@dataclass(frozen=True)
class RunConfig:
    algo: str = "ppo"
    """Algorithm: a name from robotrl.hyper.ALGORITHMS."""
    seed: int = 0
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    target: TargetConfig | None = None
    """The task's goal on the final evaluation (None: the config states none)."""
    hyper: Any = None
    """The algorithm's hyperparameters, in the YAML section named after the algorithm."""
    name: str = "run"
    """Run name (defaults to the config file's stem)."""

    def validate(self) -> None:
        non_negative(self, "seed")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in _to_plain(self).items() if k != "hyper"}
        out[self.algo] = _to_plain(self.hyper)
        return out


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def yaml_numbers(value: Any) -> Any:
    """`value` with every string PyYAML left from a number written like 2e-3 (YAML 1.1 wants 2.0e-3) read as
    the float it is, inside lists and mappings too: untyped values (env.kwargs) reach the env as written."""
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: yaml_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(yaml_numbers(v) for v in value)
    return value


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return yaml_numbers(value)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors: list[tuple[Any, str]] = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _convert(value, opt, where)
            except ConfigError as exc:
                errors.append((opt, str(exc)))
        # A number's own option says best what is wrong with it (`'auto' | float` given NaN: not finite).
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        ranked = [e for opt, e in errors if numeric and opt in (int, float)] + [e for _, e in errors]
        raise ConfigError(ranked[0] if ranked else f"{where}: unexpected value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return build(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return yaml_numbers(dict(value))
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            # PyYAML reads 3e-4 (no dot) as a string: YAML 1.1 wants 3.0e-4. Accept what people write.
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            # YAML's .nan and .inf: no setting of a run means them, and NaN passes every range check.
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        return float(value)
    if tp is int:
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # total_steps: 2e6, as PyYAML leaves it (a string)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool or tp is str:
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")


def build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Construct dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (expected one of: {', '.join(names)})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            # A message that starts with one field's name (robotrl.hyper.checks) is that key's error.
            key = str(exc).split(":", 1)[0]
            raise ConfigError(f"{where}.{exc}" if key in names else f"{where}: {exc}") from exc
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """`key.path=value` with the value read as YAML (numbers, booleans, lists)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"--set {text!r}: the value is not valid YAML: {problem}") from None
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {part} is not a mapping")
    node[path[-1]] = value


def override_env_kwargs(kwargs: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of a run's env kwargs with `--set env.kwargs.KEY=VALUE` overrides applied, for commands that
    rebuild only the env of a trained policy (`robotrl eval`): anything else would not match the weights."""
    data: dict[str, Any] = {"env": {"kwargs": copy.deepcopy(dict(kwargs))}}
    for text in overrides:
        keys, value = parse_override(text)
        if keys[:2] != ["env", "kwargs"] or len(keys) < 3:
            raise ConfigError(f"--set {'.'.join(keys)}: only the env's kwargs can change here "
                              "(--set env.kwargs.KEY=VALUE)")
        apply_override(data, keys, value)
    return yaml_numbers(data["env"]["kwargs"])


def from_dict(data: dict[str, Any], source: str, name: str | None = None) -> RunConfig:
    """Validate a raw config mapping; `source` (the file) prefixes every error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data = dict(data)
    algo = data.pop("algo", "ppo")
    if algo not in ALGORITHMS:
        raise ConfigError(f"{source}: algo: unknown algorithm {algo!r} (expected one of: {', '.join(ALGORITHMS)})")
    hyper_raw = data.pop(algo, {}) or {}
    if not isinstance(hyper_raw, dict):
        raise ConfigError(f"{source}: {algo}: expected a mapping of hyperparameters, got "
                          f"{type(hyper_raw).__name__} {hyper_raw!r}")
    if "hyper" in data:
        # RunConfig.hyper is filled from the algorithm's own section; a `hyper:` key would be dropped.
        raise ConfigError(f"{source}: hyper: unknown key (hyperparameters go in the {algo!r} section)")
    others = [k for k in data if k in ALGORITHMS]
    if others:
        raise ConfigError(f"{source}: {others[0]}: section for another algorithm (algo is {algo!r})")
    data.setdefault("name", name or "run")
    try:
        cfg = build(RunConfig, data, "config")
        hyper = build(HYPER[algo], hyper_raw, algo)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).removeprefix('config.')}") from exc
    from envs import check_id

    try:
        check_id(cfg.env.id)
    except ValueError as exc:
        raise ConfigError(f"{source}: env.id: {exc}") from exc
    return dataclasses.replace(cfg, algo=algo, hyper=hyper)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: PyYAML keeps the last one, so a second
    `train:` section would silently replace the first one's values with the defaults."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[arg-type]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """`FILE:LINE:COLUMN: not valid YAML: problem` on one line (PyYAML spreads it over several)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


RESUMABLE_KEYS: tuple[str, ...] = ("train.total_steps", "train.device", "train.threads", "scale.address",
                                   "scale.num_cpus", "scale.worker_cpus", "scale.max_worker_restarts",
                                   "scale.timeout_s", "scale.start_timeout_s")
"""What `robotrl train --resume` may change about a run: its budget, where it computes and how its workers
are run and watched (a run that a lost worker stopped continues with a longer timeout, or on another
cluster). Everything else, the backend and the number of workers included (they decide the envs' and the
action noise's random streams), would make the checkpoint continue as a different run than the one its
folder describes."""


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"env": {"kwargs": {"a": 1}}} -> {"env.kwargs.a": 1}: one entry per leaf (an empty mapping has none)."""
    if not isinstance(data, dict):
        return {prefix[:-1]: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def resume_differences(saved: dict[str, Any], given: RunConfig) -> list[tuple[str, Any, Any]]:
    """(key, run's value, given value) for every key where `given` differs from a run's saved config
    (`RunConfig.to_dict()` form), besides RESUMABLE_KEYS, `name` (only the folder's label) and `target` (what
    the run is judged against, not what it trains on)."""
    run = _flatten(from_dict(saved, "the run's config.yaml", name=saved.get("name")).to_dict())
    new = _flatten(given.to_dict())
    keys = list(new) + [k for k in run if k not in new]
    return [(k, run.get(k), new.get(k)) for k in keys
            if k not in RESUMABLE_KEYS and k != "name" and k.split(".")[0] != "target"
            and run.get(k) != new.get(k)]


def list_differences(differences: list[tuple[str, Any, Any]], saved_as: str = "run") -> str:
    """`key (run A, given B), ...` for the first six of resume_differences' triples, then how many more."""
    listed = ", ".join(f"{k} ({saved_as} {a}, given {b})" for k, a, b in differences[:6])
    return listed + (f" and {len(differences) - 6} more" if len(differences) > 6 else "")


def check_resume(saved: dict[str, Any], given: RunConfig, source: str) -> None:
    """Refuse to resume a run whose saved config (`source`) differs from `given` outside RESUMABLE_KEYS."""
    differences = resume_differences(saved, given)
    if differences:
        listed = list_differences(differences)
        raise ConfigError(f"--resume: the config differs from the run's ({source}) in {listed}; only "
                          f"{' and '.join(RESUMABLE_KEYS)} may change on resume")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config, apply `--set` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    for text in overrides or []:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return from_dict(data, str(path), name=path.stem)
