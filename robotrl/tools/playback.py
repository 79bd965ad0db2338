"""`robotrl eval`: a run folder, checkpoint or exported ONNX policy, evaluated deterministically, watched
in the viewer or filmed.

MuJoCo picks its OpenGL once, at import, so `prepare` checks the flags and chooses the OpenGL (a window
for the viewer, EGL/OSMesa for a video or for a pixel policy's renders) before anything imports MuJoCo;
`play` runs afterwards. This module imports neither at load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robotrl.tools import gl

DEFAULT_VIDEO_SIZE = "480x480"

@dataclass
class Playback:
    """What `robotrl eval` was asked for, checked, with the ONNX policy loaded when it is one."""

    path: str
    episodes: int
    viewer: bool
    video: str | None
    width: int
    height: int
    onnx_policy: Any = None
    """deploy.policy.OnnxPolicy of an exported file, else None (a run folder or checkpoint)."""


def parse_size(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` of a video: positive and even, as H.264's 4:2:0 needs."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 480x480") from None
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"--size {text}: width and height must be positive and even (H.264 4:2:0)")
    return width, height


def check_video_name(video: str | None) -> None:
    if video and Path(video).suffix.lower() != ".mp4":
        raise ValueError(f"--video {video}: the file name must end in .mp4")


def prepare(path: str, episodes: int | None, viewer: bool, video: str | None, size: str | None) -> Playback:
    """Check the flags and choose MuJoCo's OpenGL; load an ONNX policy (which knows whether its
    observations are renders). Call before anything imports MuJoCo."""
    if viewer and video:
        raise ValueError("--viewer and --video: choose one")
    check_video_name(video)
    if size is not None and not video:
        raise ValueError(f"--size {size}: the size of a video frame, given without --video")
    width, height = parse_size(DEFAULT_VIDEO_SIZE if size is None else size)
    episodes = (3 if video else 10) if episodes is None else episodes
    if episodes < 1:
        raise ValueError(f"--episodes {episodes}: expected at least 1")
    if viewer:
        gl.use_window()
    elif video:
        gl.use_offscreen()
    else:
        gl.offscreen_for(gl.run_env_kwargs(path))  # a pixel run's observations are renders
    onnx_policy = None
    if path.endswith(".onnx"):
        from deploy.policy import OnnxPolicy

        onnx_policy = OnnxPolicy(path)
        if onnx_policy.spec.pixels and not viewer:
            gl.use_offscreen()  # its observations are renders: known before MuJoCo is imported
    return Playback(path, episodes, viewer, video, width, height, onnx_policy)


def play(request: Playback, seed: int, overrides: list[str]) -> tuple[dict[str, Any], str]:
    """Evaluate, watch or film: (the episodes' numbers, the env id they ran on)."""
    import torch

    from robotrl.config import override_env_kwargs
    from robotrl.core.threads import limit_threads

    limit_threads(1)
    override_env_kwargs({}, overrides)  # a mistyped --set fails before a checkpoint (and its replay) loads
    if request.onnx_policy is not None:
        # The file knows how its observations are rendered; the run's other env kwargs are not in it.
        act, env_id = request.onnx_policy.act_batch, request.onnx_policy.spec.env_id
        env_kwargs = override_env_kwargs(request.onnx_policy.spec.env_kwargs(), overrides)
        policy = cfg = None
    else:
        from robotrl.train.trainer import load_policy, policy_fn

        policy, cfg, _ = load_policy(request.path)
        env_kwargs = override_env_kwargs(cfg.env.kwargs, overrides)
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, kwargs=env_kwargs))
        act, env_id = policy_fn(policy, torch.device("cpu")), cfg.env.id
    flag = "--viewer" if request.viewer else "--video" if request.video else None
    if flag:
        refuse_multi_robot(env_id, flag)
    episodes = request.episodes
    if request.viewer:
        from robotrl.tools.viewer import run_viewer

        result = run_viewer(act, env_id, episodes, seed=seed, env_kwargs=env_kwargs)
    elif request.video:
        from robotrl.tools.video import record_video

        result = record_video(act, env_id, request.video, episodes, seed=seed, env_kwargs=env_kwargs,
                              width=request.width, height=request.height)
    if flag:
        from robotrl.config import target_fields

        # Watched or filmed episodes are judged as plain ones are (not measured where they lack the metric).
        result = {**result, **target_fields(None if cfg is None else cfg.target, result)}
    elif cfg is not None:
        from robotrl.train.trainer import evaluate_policy

        # The agent's own evaluation where it has one (multi-robot runs evaluate the team).
        result = evaluate_policy(policy, cfg, episodes, seed, torch.device("cpu"))
    else:
        from robotrl.train.evaluate import evaluate

        result = evaluate(act, env_id, episodes, seed=seed, env_kwargs=env_kwargs)
    return result, env_id


def format_playback(result: dict[str, Any], env_id: str, overrides: list[str]) -> str:
    """What `robotrl eval` prints: the episodes' numbers, and the video file where one was made."""
    success = "" if result.get("success_rate") is None else f", success rate {result['success_rate']:.2f}"
    changed = f" with {', '.join(overrides)}" if overrides else ""
    if result["episodes"] == 0:  # the viewer's window closed before an episode ended
        return f"{env_id}{changed}: no episode finished (the window was closed first)"
    text = (f"{env_id}{changed}: {result['episodes']} episodes, return {result['return_mean']:.2f} "
            f"± {result['return_std']:.2f}, length {result['length_mean']:.0f}{success}")
    if "terminated" in result:  # the evaluation's count; a video or the viewer does not count them
        text += f", {result['terminated']} ended by termination (a fall, for a legged robot)"
    if result.get("info_means"):
        text += "\nmeasured: " + ", ".join(f"{k} {v:.3f}" for k, v in result["info_means"].items())
    if result.get("target") is not None:
        target, met = result["target"], result["target_met"]
        verdict = "not measured" if met is None else "met" if met else "NOT met"
        text += f"\ntarget {target['metric']} {target['op']} {target['value']:g}: {verdict}"
    if "video" in result:
        text += (f"\nvideo: {result['video']} ({result['frames']} frames at {result['fps']:g} fps, "
                 f"rendered in {result['wall_s']:.1f} s)")
    return text


def refuse_multi_robot(env_id: str, flag: str) -> None:
    """The viewer, videos and the sim-to-sim report step one robot's Gymnasium env; a team's env is a
    PettingZoo one (gym.make knew no such id, and said the env did not exist)."""
    import envs

    if envs.is_multi(env_id):
        raise ValueError(f"{flag}: {env_id} is a multi-robot env; {flag} plays single-robot policies (evaluate a "
                         "team with plain `robotrl eval RUN`, or run its robots with `robotrl deploy`)")
