"""`robotrl eval RUN --sim-to-sim`: a policy on its nominal robot and on a perturbed copy, side by side.

Before a policy goes near hardware it should survive a simulator that is not the one it was trained
in. The perturbed copy changes what issue 20 lists: every body's mass x[0.8, 1.2], every geom's
friction x[0.5, 1.5], every motor's strength x[0.8, 1.1] (drawn per episode and per element), the
physics timestep halved (twice the physics steps per policy step, so the control rate stays), RK4
instead of the training integrator, and one policy step of observation latency. Both sides run the
same episodes (seeds); the nominal side drops the run's own randomization options, so it measures the
robot as described.
"""

from __future__ import annotations

from typing import Any

import envs
from envs.sim2real import SimToReal
from robotrl.tools.playback import refuse_multi_robot
from robotrl.train.evaluate import PolicyFn, evaluate

PERTURBATION: dict[str, Any] = {"mass_scale": [0.8, 1.2], "friction_scale": [0.5, 1.5],
                                "actuator_gain_scale": [0.8, 1.1], "integrator": "RK4", "obs_delay": 1}
"""The perturbation set; the timestep is halved on top of it (it depends on the robot)."""
RANDOMIZATION = ("mass_scale", "friction_scale", "actuator_gain_scale", "damping_scale", "obs_noise",
                 "action_delay", "init_noise", "obs_delay")


def nominal_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The run's env kwargs without its domain randomization and noise. A pixel run's frame latency
    (pixels.delay) stays: it is the camera the policy will have, as the exported file describes it."""
    return {k: v for k, v in env_kwargs.items() if k not in RANDOMIZATION}


def perturbed_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Nominal kwargs plus the perturbation set, with half the timestep at the same control rate."""
    nominal = nominal_kwargs(env_kwargs)
    env = envs.make(env_id, **nominal)
    try:
        base = env.unwrapped
        task = getattr(base, "task", None)
        if task is None:
            raise ValueError(f"--sim-to-sim: {env_id} is not a robotrl robot (its physics options cannot be set)")
        timestep, skip = float(task.sim.model.opt.timestep), int(task.frame_skip)
    finally:
        env.close()
    perturbed = {**nominal, **PERTURBATION, "timestep": timestep / 2, "frame_skip": skip * 2}
    pixels = nominal.get("pixels", False)
    if pixels is not False:  # renders are drawn from the current state: the latency goes to the frames
        pixels = {} if pixels is True else pixels
        perturbed["pixels"] = {**pixels, "delay": int(pixels.get("delay", 0)) + PERTURBATION["obs_delay"]}
    return perturbed


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    info = result.get("info_means", {})
    return {"return_mean": result["return_mean"], "return_std": result["return_std"],
            "success_rate": result.get("success_rate"), "velocity_error": info.get("velocity_error"),
            "falls": result.get("terminated", 0) / max(result["episodes"], 1), "length_mean": result["length_mean"]}


def sim_to_sim(policy: PolicyFn, env_id: str, env_kwargs: dict[str, Any], episodes: int,
               seed: int) -> dict[str, Any]:
    """Evaluate `policy` on the nominal and the perturbed robot over the same episode seeds."""
    nominal = nominal_kwargs(env_kwargs)
    perturbed = perturbed_kwargs(env_id, env_kwargs)
    SimToReal.pop_from(dict(perturbed))  # the options are valid before any episode runs
    return {"env_id": env_id, "episodes": episodes, "perturbation": perturbed,
            "nominal": _figures(evaluate(policy, env_id, episodes, seed=seed, env_kwargs=nominal)),
            "perturbed": _figures(evaluate(policy, env_id, episodes, seed=seed, env_kwargs=perturbed))}


def format_sim_to_sim(report: dict[str, Any]) -> str:
    """Nominal and perturbed figures in two columns."""
    p = report["perturbation"]
    lines = [f"{report['env_id']}: {report['episodes']} episodes per side; perturbed: masses x{p['mass_scale']}, "
             f"friction x{p['friction_scale']}, motor strength x{p['actuator_gain_scale']}, timestep "
             f"{p['timestep']:g} s, {p['integrator']}, observation latency {p['obs_delay']} step",
             f"{'':<18}{'nominal':>14}{'perturbed':>14}"]
    rows = [("return", "return_mean", "{:.2f}"), ("velocity error", "velocity_error", "{:.3f} m/s"),
            ("success rate", "success_rate", "{:.2f}"), ("falls", "falls", "{:.0%}"),
            ("episode length", "length_mean", "{:.0f}")]
    for label, key, fmt in rows:
        a, b = report["nominal"][key], report["perturbed"][key]
        if a is None and b is None:
            continue
        lines.append(f"{label:<18}{fmt.format(a) if a is not None else '-':>14}"
                     f"{fmt.format(b) if b is not None else '-':>14}")
    return "\n".join(lines)


def sim_to_sim_of(path: str, episodes: int, seed: int, onnx_policy: Any = None) -> dict[str, Any]:
    """`sim_to_sim` for a run folder, a checkpoint or an exported policy.onnx (`onnx_policy`, the
    deploy.policy.OnnxPolicy of that file where the caller loaded it already)."""
    if path.endswith(".onnx"):
        if onnx_policy is None:
            from deploy.policy import OnnxPolicy

            onnx_policy = OnnxPolicy(path)
        refuse_multi_robot(onnx_policy.spec.env_id, "--sim-to-sim")
        return sim_to_sim(onnx_policy.act_batch, onnx_policy.spec.env_id, onnx_policy.spec.env_kwargs(),
                          episodes, seed)
    import torch

    from robotrl.core.threads import limit_threads
    from robotrl.train.trainer import load_policy, policy_fn

    limit_threads(1)
    policy, cfg, _ = load_policy(path)
    refuse_multi_robot(cfg.env.id, "--sim-to-sim")
    return sim_to_sim(policy_fn(policy, torch.device("cpu")), cfg.env.id, dict(cfg.env.kwargs), episodes, seed)
