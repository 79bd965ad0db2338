"""`robotrl export`: a run folder, checkpoint or SB3 .zip -> one self-describing ONNX file, checked.

The check runs the file in ONNX Runtime and torch on a few thousand observations (visited by the
policy itself in its env, plus edge cases) and fails above 1e-5; a pixel policy on 1,538 frame stacks
(1,024 rendered, 514 edge cases), since each visited one costs a render. An int8 export is lossy by
design: it reports the action error and a short evaluation of both files instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from envs.describe import describe_env
from envs.wrappers import DISCRETIZE_KEYS
from policies.checkpoint import atomic_write_bytes
from policies.export import (
    check_parity,
    edge_frames,
    edge_observations,
    onnx_actions,
    onnx_policy_fn,
    quantize_int8,
    to_onnx,
    torch_actions,
)
from policies.normalizer import RunningNormalizer
from robotrl.core.threads import limit_threads
from robotrl.train.evaluate import evaluate

QUANTIZATIONS = ("int8",)
Loaded = tuple[torch.nn.Module, Any, dict[str, Any]]
"""robotrl.train.trainer.load_policy's (policy, run config, checkpoint)."""


def visited_observations(actor: torch.nn.Module, env_id: str, env_kwargs: dict[str, Any], num_envs: int = 16,
                         steps: int = 200, seed: int = 7) -> np.ndarray:
    """Observations the policy meets: [num_envs * steps, *obs_shape] from running it in its env
    (float32, or the env's uint8 for frame stacks)."""
    env = envs.make_vec(env_id, num_envs, **env_kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        seen = []
        for _ in range(steps):
            obs = np.asarray(obs)
            seen.append(obs if obs.dtype == np.uint8 else obs.astype(np.float32))
            obs, *_ = env.step(torch_actions(actor, obs))
    finally:
        env.close()
    return np.concatenate(seen)


def default_out(path: Path, quantize: str | None) -> Path:
    """run/policy.onnx for a run folder or its checkpoints; FILE.onnx beside any other file."""
    suffix = ".int8.onnx" if quantize else ".onnx"
    if path.is_dir():
        return path / f"policy{suffix}"
    if path.parent.name == "checkpoints":
        return path.parent.parent / f"{path.stem if path.stem != 'latest' else 'policy'}{suffix}"
    return path.with_suffix(suffix)


def check_sb3_fits(path: Path, actor: torch.nn.Module, described: dict[str, Any]) -> None:
    """Refuse an SB3 zip whose exported actions or inputs would not be the robot's (`described`, its env's
    description): one trained on a rescaled action box (robotrl compare's [-1, 1]) or beside VecNormalize
    statistics, which live outside the zip."""
    stats = sorted(path.parent.glob("vecnormalize*.pkl"))
    if stats:
        raise ValueError(f"{path}: trained under VecNormalize ({stats[-1].name}), whose observation statistics the "
                         "zip does not hold: its exported actor would see raw observations")
    low, high = actor.low.tolist(), actor.high.tolist()  # type: ignore[union-attr]
    if not (np.allclose(low, described["action_low"]) and np.allclose(high, described["action_high"])):
        raise ValueError(f"{path}: its action space is [{low}, {high}], {described['env_id']}'s is "
                         f"[{described['action_low']}, {described['action_high']}] (a model trained on a rescaled "
                         "box, as robotrl compare's SB3 side is): its actions would reach the robot in the wrong units")


def load_actor(path: Path, env_id: str | None,
               loaded: Loaded | None = None) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any]]:
    """(actor module, description without env facts, env kwargs) of a robotrl checkpoint or an SB3 zip;
    `loaded` is load_policy's result where the caller has it already."""
    if path.suffix == ".zip":
        from robotrl.sb3.export import load_sb3_actor

        if env_id is None:
            raise ValueError(f"{path}: an SB3 .zip does not record its env id: pass --env ID")
        actor, algo, steps = load_sb3_actor(path)
        return actor, {"algo": f"sb3-{algo}", "train_steps": steps, "env_id": env_id}, {}
    from robotrl.train.trainer import load_policy

    policy, cfg, state = loaded if loaded is not None else load_policy(path)
    if env_id is not None and env_id != cfg.env.id:
        raise ValueError(f"--env {env_id}: the checkpoint was trained on {cfg.env.id}")
    # A discretized policy exports the continuous action of its greedy bin: it runs on the raw env.
    raw_kwargs = {k: v for k, v in cfg.env.kwargs.items() if k not in DISCRETIZE_KEYS}
    return policy.export_actor(), {"algo": cfg.algo, "train_steps": int(state["step"]), "env_id": cfg.env.id}, \
        raw_kwargs


def export_run(path: str | Path, out: str | Path | None = None, quantize: str | None = None,
               env_id: str | None = None) -> dict[str, Any]:
    """`robotrl export`: a multi-robot run as one ONNX actor per robot (robotrl.export.team), anything
    else as one file; the checkpoint is loaded once for both the choice and the export."""
    path = Path(path)
    if path.suffix == ".zip":
        return export_policy(path, out, quantize, env_id)
    from robotrl.train.trainer import load_policy

    limit_threads(1)
    loaded = load_policy(path)
    if not envs.is_multi(loaded[1].env.id):
        return export_policy(path, out, quantize, env_id, loaded=loaded)
    if quantize:
        raise ValueError("--quantize: not available for a multi-robot run")
    from robotrl.export.team import export_team

    return export_team(path, out, loaded=loaded)


def format_export(report: dict[str, Any]) -> str:
    """What `robotrl export` prints: the files written, the parity check, the int8 figures."""
    parity = (f"ONNX Runtime vs torch on {report['observations_checked']} observations: max |diff| "
              f"{report['parity_max_abs']:.2e}")
    if "files" in report:
        return f"wrote {', '.join(report['files'])}; {parity}"
    text = f"wrote {report['out']} ({report['bytes']} bytes); {parity}"
    if "int8_eval" in report:
        q, f = report["int8_eval"], report["fp32_eval"]
        text += (f"\nint8 action error max {report['int8_action_error']['max']:.4f} mean "
                 f"{report['int8_action_error']['mean']:.4f}; return over {q['episodes']} episodes: int8 "
                 f"{q['return_mean']:.2f}, fp32 {f['return_mean']:.2f}")
    return text


def export_policy(path: str | Path, out: str | Path | None = None, quantize: str | None = None,
                  env_id: str | None = None, eval_episodes: int = 16,
                  loaded: Loaded | None = None) -> dict[str, Any]:
    """Export, check and write; returns a report (output file, parity error, int8 figures)."""
    limit_threads(1)
    path = Path(path)
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize {quantize!r}: expected one of {QUANTIZATIONS}")
    actor, facts, env_kwargs = load_actor(path, env_id, loaded)
    described = describe_env(facts["env_id"], **env_kwargs)
    if path.suffix == ".zip":
        check_sb3_fits(path, actor, described)
    # The training kwargs travel with the policy: `deploy --backend sim` rebuilds the task it was trained on.
    description = {**described, **facts, "env_kwargs": env_kwargs, "source": str(path.name), "quantized": None}
    actor.eval()
    model = to_onnx(actor, described["obs_shape"], description, described["obs_dtype"])
    rng = np.random.default_rng(0)
    if described["pixels"]:
        typical = visited_observations(actor, facts["env_id"], env_kwargs, num_envs=8, steps=128)
        observations = np.concatenate([typical, edge_frames(typical, rng)])
    else:
        typical = visited_observations(actor, facts["env_id"], env_kwargs)
        clipped = any(isinstance(m, RunningNormalizer) for m in actor.modules())
        observations = np.concatenate([typical, edge_observations(typical, rng, clipped)])
    report: dict[str, Any] = {"observations_checked": len(observations),
                              "parity_max_abs": check_parity(actor, model, observations)}
    if quantize == "int8":
        q_model = quantize_int8(model, description)
        diff = np.abs(onnx_actions(q_model, typical) - torch_actions(actor, typical))
        report["int8_action_error"] = {"max": float(diff.max()), "mean": float(diff.mean())}
        report["int8_eval"] = _eval_bytes(q_model, facts["env_id"], env_kwargs, eval_episodes)
        report["fp32_eval"] = _eval_bytes(model, facts["env_id"], env_kwargs, eval_episodes)
        model = q_model
    target = Path(out) if out else default_out(path, quantize)
    atomic_write_bytes(target, model)
    target.chmod(0o644)  # the temporary file's 0600 would hide the policy from a robot's service user
    report["out"] = str(target)
    report["bytes"] = len(model)
    return report


def _eval_bytes(model: bytes, env_id: str, env_kwargs: dict[str, Any], episodes: int) -> dict[str, Any]:
    return evaluate(onnx_policy_fn(model), env_id, episodes, env_kwargs=env_kwargs)
