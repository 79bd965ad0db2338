"""`robotrl robot check|show`: a robot description checked against its MJCF and the floor, or shown.

The work is in envs.robots (loading, the mass and stand checks); this module formats it for the
command line and drives the viewer or the video recorder with a policy that holds the default pose.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_text(report: dict[str, Any]) -> str:
    """The verdict line, then the robot's facts as a table."""
    joints = report["joints"]
    lines = [f"{report['file']}: ok: {report['robot']} ({len(joints)} joints, {report['mass']:.2f} kg, stated "
             f"{report['stated_mass']:g} kg) {report['verdict']}",
             f"{'joint':<16}{'effort N m':>11}{'speed rad/s':>12}{'armature':>10}{'damping':>9}{'friction':>9}"
             f"{'range rad':>17}{'default':>9}{'kp':>8}{'kd':>7}"]
    for j in joints:
        rng = "free" if j["range"] is None else f"[{j['range'][0]:.2f}, {j['range'][1]:.2f}]"
        speed = "-" if j["velocity_limit"] is None else f"{j['velocity_limit']:.2f}"
        lines.append(f"{j['joint']:<16}{j['effort_limit']:>11.2f}{speed:>12}{j['armature']:>10.4f}"
                     f"{j['damping']:>9.3f}{j['frictionloss']:>9.3f}{rng:>17}{j['default']:>9.3f}{j['kp']:>8.1f}"
                     f"{j['kd']:>7.2f}")
    geoms = report["colliding_geoms"]
    lines.append(f"colliding geoms ({len(geoms)}): {', '.join(geoms) or 'none'}")
    return "\n".join(lines)


def check(robot: str) -> dict[str, Any]:
    """Load and check a description (a path or a shipped robot's name); RobotError on the first problem."""
    from envs.robots import load_robot
    from envs.robots.check import check_robot

    return check_robot(load_robot(robot))


def task_of(robot: str) -> str:
    """The env id whose task runs this robot's kind."""
    from envs.robots import load_robot

    return "robotrl/Locomotion-v0" if load_robot(robot).kind == "legged" else "robotrl/Reach-v0"


def hold_pose(observations: np.ndarray, act_dim: int) -> np.ndarray:
    """Zero actions: in the position mode, PD toward the default pose."""
    return np.zeros((len(observations), act_dim), dtype=np.float32)


def show(robot: str, video: str | None, seconds: float, width: int, height: int) -> dict[str, Any]:
    """The robot in its default pose (PD holding it, no commands) in the viewer, or rendered to `video`.
    MUJOCO_GL must be chosen before mujoco is imported (robotrl.tools.gl, as the CLI does)."""
    import envs

    env_id = task_of(robot)
    kwargs: dict[str, Any] = {"robot": robot, "action_mode": "position"}
    if env_id.endswith("Locomotion-v0"):
        kwargs.update(command_vx=0.0, command_vy=0.0, command_yaw=0.0)
    probe = envs.make(env_id, **kwargs)
    act_dim = int(probe.action_space.shape[0])
    steps = max(1, round(seconds / probe.unwrapped.task.control_dt))
    probe.close()
    kwargs["max_episode_steps"] = steps

    def policy(obs: np.ndarray) -> np.ndarray:
        return hold_pose(obs, act_dim)

    if video:
        from robotrl.tools.video import record_video

        return record_video(policy, env_id, video, episodes=1, seed=0, env_kwargs=kwargs, width=width, height=height)
    from robotrl.tools.viewer import run_viewer

    return run_viewer(policy, env_id, episodes=1, seed=0, env_kwargs=kwargs)
