"""Decentralized execution of a multi-robot policy: one ONNX actor per robot, one runner per robot.

`export_team` cuts each robot's actor out of a MAPPO run (the agent index baked in) and writes
`policy_robot_<i>.onnx`, each checked against torch and describing itself plus its team (the
sibling files, the robot's index, the env and its kwargs). `deploy_team` runs one deploy.Runner per
robot, each in its own thread with its own ONNX session, each reading only its robot's observation
from a shared simulation that advances once every robot has answered the step it saw.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pettingzoo import ParallelEnv

import envs
from deploy.backends.base import Reading
from deploy.cli import check_flags, check_writable, run_configs, show_transitions, write_outputs
from deploy.metadata import RobotSpec
from deploy.policy import OnnxPolicy
from deploy.runner import Runner
from deploy.timing import now_ns
from policies.checkpoint import atomic_write_bytes
from policies.export import check_parity, edge_observations, to_onnx
from robotrl.core.threads import limit_threads

TEAM_FILE = "policy_robot_{}.onnx"


def robot_description(env: ParallelEnv, agent: str) -> dict[str, Any]:
    """The env half of one robot's ONNX metadata, from a multi-robot ParallelEnv."""
    obs_space, act_space = env.observation_space(agent), env.action_space(agent)
    obs_dim = int(np.prod(obs_space.shape))
    fields = getattr(env, "obs_fields", None) or [[f"obs_{i}", 1] for i in range(obs_dim)]
    task = getattr(getattr(env, "batch", None), "task", None)
    base = getattr(getattr(env, "single_agent_env", None), "unwrapped", None)
    dt = task.control_dt if task is not None else float(getattr(base, "dt", 0.0))
    return {"obs_fields": [list(f) for f in fields], "obs_dim": obs_dim, "act_dim": int(act_space.shape[0]),
            "action_low": np.asarray(act_space.low, dtype=np.float64).tolist(),
            "action_high": np.asarray(act_space.high, dtype=np.float64).tolist(),
            "action_mode": "torque", "pd": None, "control_hz": 1.0 / dt if dt > 0 else 0.0,
            "decimation": int(getattr(task, "frame_skip", getattr(base, "frame_skip", 1)))}


def _visited(policy, cfg, steps: int = 200, num_envs: int = 8) -> np.ndarray:
    """[steps * num_envs, num_agents, obs_dim] observations the team meets under its own actors."""
    from robotrl.train.trainer import make_train_env

    env = make_train_env(cfg, num_envs)
    idx = torch.arange(env.num_agents).expand(num_envs, -1)
    try:
        obs, _ = env.reset(seed=7)
        seen = []
        for _ in range(steps):
            seen.append(obs.copy())
            with torch.no_grad():
                action = policy.to_env(policy.deterministic(torch.as_tensor(obs), idx)).numpy()
            obs, *_ = env.step(action)
    finally:
        env.close()
    return np.concatenate(seen)


def export_team(path: str | Path, out_dir: str | Path | None = None,
                loaded: tuple[Any, Any, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write and check one ONNX actor per robot of a multi-robot run; returns the report. `loaded` is
    load_policy's result where the caller has it already."""
    from robotrl.train.trainer import load_policy

    limit_threads(1)
    policy, cfg, state = loaded if loaded is not None else load_policy(path)
    path = Path(path)
    out_dir = Path(out_dir) if out_dir else (path if path.is_dir() else path.parent.parent)
    env = envs.make_multi(cfg.env.id, **cfg.env.kwargs)
    agents = list(env.possible_agents)
    files = [TEAM_FILE.format(i) for i in range(len(agents))]
    visited = _visited(policy, cfg)
    report: dict[str, Any] = {"files": [], "parity_max_abs": 0.0, "observations_checked": 0}
    try:
        for i, agent in enumerate(agents):
            described = robot_description(env, agent)
            actor = policy.export_actor(i, described["obs_dim"], described["act_dim"]).eval()
            description = {**described, "env_id": cfg.env.id, "env_kwargs": dict(cfg.env.kwargs), "algo": cfg.algo,
                           "train_steps": int(state["step"]), "source": path.name, "quantized": None,
                           "agent": agent, "agent_index": i, "num_agents": len(agents), "team_files": files,
                           "actors": "separate" if not policy.shared_actor else "shared, agent index baked in"}
            model = to_onnx(actor, described["obs_dim"], description)
            typical = visited[:, i, : described["obs_dim"]].astype(np.float32)
            observations = np.concatenate([typical, edge_observations(typical, np.random.default_rng(i))])
            err = check_parity(actor, model, observations)
            target = out_dir / files[i]
            atomic_write_bytes(target, model)
            report["files"].append(str(target))
            report["parity_max_abs"] = max(report["parity_max_abs"], err)
            report["observations_checked"] += len(observations)
    finally:
        env.close()
    return report


class TeamSim:
    """One simulation shared by N robot backends; it steps when every robot has answered the
    observation it last read (lock-step software in the loop), and keeps the team's episode results."""

    def __init__(self, env: ParallelEnv, seed: int) -> None:
        self.env = env
        self.agents = list(env.possible_agents)
        self.lock = threading.Lock()
        self.obs, _ = env.reset(seed=seed)
        self.stamp = now_ns()
        self.version = 0
        self.pending: dict[str, np.ndarray] = {}
        self._return, self._length = 0.0, 0
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.successes: list[bool] = []
        self.open = len(self.agents)

    def submit(self, agent: str, action: np.ndarray) -> None:
        with self.lock:
            self.pending[agent] = action.copy()
            if len(self.pending) < len(self.agents):
                return
            obs, rewards, terms, truncs, infos = self.env.step(self.pending)
            self.pending = {}
            self._return += float(rewards[self.agents[0]])
            self._length += 1
            if any(terms.values()) or any(truncs.values()):
                self.returns.append(self._return)
                self.lengths.append(self._length)
                info = infos[self.agents[0]]
                if "is_success" in info:
                    self.successes.append(bool(info["is_success"]))
                self._return, self._length = 0.0, 0
                obs, _ = self.env.reset()
            self.obs, self.stamp, self.version = obs, now_ns(), self.version + 1

    def summary(self) -> dict[str, Any]:
        n = len(self.returns)
        return {"episodes": n, "return_mean": float(np.mean(self.returns)) if n else None,
                "return_std": float(np.std(self.returns)) if n else None,
                "length_mean": float(np.mean(self.lengths)) if n else None,
                "success_rate": float(np.mean(self.successes)) if self.successes else None}

    def release(self) -> None:
        with self.lock:
            self.open -= 1
            if self.open == 0:
                self.env.close()


class RobotBackend:
    """What robot `agent` sees of the shared simulation: its own observation, nothing else."""

    name = "sim-team"

    def __init__(self, sim: TeamSim, agent: str) -> None:
        self.sim, self.agent = sim, agent
        self._spec = RobotSpec.from_spaces(sim.env.observation_space(agent), sim.env.action_space(agent))
        self._seen = -1
        self._answered = -1

    def spec(self) -> RobotSpec:
        return self._spec

    def read(self) -> Reading | None:
        with self.sim.lock:
            if self.sim.version == self._seen:
                return None
            self._seen = self.sim.version
            # Read now, as the single robot's SimBackend: the lock-step simulation waits for every command, so
            # the time since its step (up to a period when a teammate answered late) is no staleness, and the
            # runner refuses an observation older than its watchdog when read.
            return Reading(np.asarray(self.sim.obs[self.agent], dtype=np.float32).copy(), now_ns())

    def write(self, action: np.ndarray) -> None:
        # Only a command computed from the current step's observation counts as this robot's answer.
        if self._seen != self._answered and self._seen == self.sim.version:
            self._answered = self._seen
            self.sim.submit(self.agent, np.asarray(action, dtype=np.float32))

    def summary(self) -> dict[str, Any]:
        return self.sim.summary()

    def close(self) -> None:
        self.sim.release()


def deploy_team(args: argparse.Namespace, team: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """Run every robot of the team from its own ONNX file, one runner thread each, on the sim backend.

    Every runner gets the deploy flags of a single robot (deploy.cli.run_configs): start sequence, safety,
    spin, warm-up and the real-time set-up. The priority and `--cpu` apply to each runner's thread (all of
    them on that one CPU). Locked memory and the frozen GC are the process's: the first runner to end
    may undo them (the runners share one duration, so the others have at most a tick or two left).
    """
    if args.backend != "sim":
        raise ValueError("a team policy deploys with --backend sim (one runner per robot on a shared simulation)")
    check_flags(args)
    folder = Path(args.policy).parent
    # Every robot's file first: a teammate's missing or damaged file leaves no output folder and no simulation.
    policies = [OnnxPolicy(folder / name, args.provider) for name in team["team_files"]]
    out_dir = Path(args.out) if args.out else folder / f"team-deploy-{args.backend}"
    rate = args.rate if args.rate is not None else team["control_hz"]
    loop, safety, start = run_configs(args, rate)
    env_id = args.env or team["env_id"]
    env = envs.make_multi(env_id, **team.get("env_kwargs", {}))
    try:
        sim = TeamSim(env, seed=args.seed)
        show_transitions()
        runners = [Runner(policy, RobotBackend(sim, agent), loop, safety, start, name=agent)
                   for policy, agent in zip(policies, sim.agents, strict=True)]
        check_writable(out_dir)  # made once the robots are known to run: a refused one leaves no folder
    except BaseException:
        env.close()  # no runner will release it
        raise
    summaries: list[dict[str, Any] | None] = [None] * len(runners)
    errors: list[BaseException | None] = [None] * len(runners)

    def run(i: int) -> None:
        try:
            summaries[i] = runners[i].run()  # its own safe command and close happen inside, also on errors
        except BaseException as exc:  # the team stops with it, and the error reaches the main thread
            errors[i] = exc
            for r in runners:
                r.flag.set(f"{sim.agents[i]} failed")

    threads = [threading.Thread(target=run, args=(i,), name=f"runner-{i}") for i in range(len(runners))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        for r in runners:
            r.flag.set("SIGINT")
        for t in threads:
            t.join()
    failed = next((e for e in errors if e is not None), None)
    if failed is not None:
        raise failed
    for i, (runner, s) in enumerate(zip(runners, summaries, strict=True)):
        write_outputs(out_dir / f"robot_{i}", runner, s)
    summary = {"backend": "sim-team", "env_id": env_id, "rate_hz": rate, "robots": summaries,
               "robot": sim.summary()}
    atomic_write_bytes(out_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary, out_dir


def format_team(summary: dict[str, Any]) -> str:
    lines = []
    for s in summary["robots"]:
        lat = s["latency_us"]
        lines.append(f"{Path(s['policy']).name}: {s['ticks']} ticks at {s['rate_hz']:g} Hz, {s['overruns']} overruns, "
                     f"latency us p50 {lat['p50']} p99 {lat['p99']}, safe actions "
                     f"{sum(s['safe_actions'].values())}, held {s['repeated_commands']}")
    team = summary["robot"]
    if team["episodes"]:
        rate = team["success_rate"]
        lines.append(f"team episodes {team['episodes']}: return {team['return_mean']:.2f} ± {team['return_std']:.2f}"
                     + ("" if rate is None else f", success rate {rate:.2f}"))
    return "\n".join(lines)
