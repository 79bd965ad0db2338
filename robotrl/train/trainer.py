"""The training loop: run folder, seeding, collect/update, logging, evaluation, checkpoints, resume.

Agents only collect and update; everything a run needs around them lives here, once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import envs
from policies.checkpoint import atomic_write_bytes, load_checkpoint, remove_leftovers, save_checkpoint
from robotrl.agents import algorithm
from robotrl.agents.protocol import Agent
from robotrl.config import RunConfig, check_resume, from_dict, target_fields
from robotrl.core.episodes import EpisodeStats
from robotrl.core.threads import limit_threads
from robotrl.core.vec_env import EnvHandle
from robotrl.train.best_policy import BEST_FILE, BestPolicy
from robotrl.train.evaluate import evaluate
from robotrl.train.logger import MetricsLogger
from robotrl.train.progress import Progress
from robotrl.train.runs import check_fresh, latest_checkpoint
from robotrl.train.stop import StopRequest, TrainingStopped

CHECKPOINT_FORMAT = 1
EVAL_SEED_OFFSET = 10_000
"""Periodic evaluations run on the episodes seeded cfg.seed + this (the same ones each time)."""
HELD_OUT_SEED_OFFSET = 20_000
"""With keep_best, the final evaluation runs on these episodes: not the ones the policy was chosen on."""


def resume_env_seed(seed: int, step: int) -> int:
    """Episodes in flight at a checkpoint are not stored: a resumed run restarts them from a seed drawn from
    (seed, step). Not seed + step: at a step of 10,000 or 20,000 that is the evaluation episodes' seed, and
    the policy would then be trained on the episodes it is judged on."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0] >> 1)


def resolve_device(name: str, algo: str) -> torch.device:
    """cpu, cuda, or auto (cuda where torch sees one and the algorithm runs there); a device not in the
    algorithm's registry entry (`Algorithm.devices`) is refused in one line."""
    devices = algorithm(algo).devices
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() and "cuda" in devices else "cpu")
    device = torch.device(name)
    if device.type not in devices:
        raise ValueError(f"train.device {name}: {algo} runs on {' or '.join(devices)} only")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device (install a CUDA build of torch)")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def new_run_dir(cfg: RunConfig, root: Path = Path("runs")) -> Path:
    """A new, empty folder `<name>-<seed>-<time>[-k]`, made here: two runs started in the same second (a
    sweep of --set values) each get their own. The caller removes it if the run cannot start."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for suffix in itertools.count():
        path = root / (f"{cfg.name}-{cfg.seed}-{stamp}" + (f"-{suffix}" if suffix else ""))
        try:
            path.mkdir()  # atomic: exactly one process makes a given folder
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def policy_fn(policy: Any, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """numpy observations -> numpy env actions, deterministic. `policy`: a single-robot policy module
    (ActorCritic, QNetwork, QTable), each with deterministic() and to_env()."""

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32, device=device)
            return policy.to_env(policy.deterministic(x)).cpu().numpy()

    return act


def make_train_env(cfg: RunConfig, num_envs: int) -> EnvHandle:
    """The algorithm's own env maker where it has one (multi-robot agents), else a Gymnasium vector env."""
    make_env = algorithm(cfg.algo).make_env
    if make_env is not None:
        return make_env(cfg, num_envs)
    return envs.make_vec(cfg.env.id, num_envs, **cfg.env.kwargs)


def carried_env_state(env: EnvHandle) -> dict[str, Any]:
    """The state a local training env carries across episodes (a terrain curriculum's levels), for the
    checkpoint. Ray's rollout workers keep theirs in their own processes: a resumed Ray run starts them anew."""
    carried = getattr(getattr(env, "unwrapped", env), "carried_state", None)
    return carried() if carried is not None else {}


def restore_carried_env_state(env: EnvHandle, state: dict[str, Any]) -> None:
    """Give a resumed run's env back what `carried_env_state` saved, before its first reset."""
    restore = getattr(getattr(env, "unwrapped", env), "restore_carried_state", None)
    if restore is not None:
        restore(state)


def evaluate_policy(policy: torch.nn.Module, cfg: RunConfig, episodes: int, seed: int,
                    device: torch.device) -> dict[str, Any]:
    """Deterministic evaluation: the algorithm's own `evaluate` where it has one, else the single-robot one."""
    own = algorithm(cfg.algo).evaluate
    if own is not None:
        result = own(policy, cfg, episodes, seed)
    else:
        result = evaluate(policy_fn(policy, device), cfg.env.id, episodes, seed=seed, env_kwargs=cfg.env.kwargs)
    return {**result, **target_fields(cfg.target, result)}


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    eval: dict[str, Any]
    wall_s: float


def eval_metrics(ev: dict[str, Any]) -> dict[str, float]:
    """An evaluation's numbers as metrics columns: eval/return_mean, ..., eval/info/<task measurement>."""
    out: dict[str, float] = {f"eval/{k}": v for k, v in ev.items()
                             if isinstance(v, float | int) and not isinstance(v, bool) and k not in ("steps", "seed")}
    out.update({f"eval/info/{k}": v for k, v in ev.get("info_means", {}).items()})
    return out


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, resume: bool = False, show_progress: bool = True) -> None:
        self.cfg, self.run_dir, self.show_progress = cfg, Path(run_dir), show_progress
        limit_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device, cfg.algo)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.step = 0
        self.iteration = 0
        self.resume_state: dict[str, Any] | None = None
        self.budgets = [cfg.train.total_steps]
        """Each train.total_steps the run has trained under, in order: more than one means its schedules
        were stretched by `--resume --steps`, which eval.json says (robotrl seeds does not count such a run)."""
        if resume:
            latest = latest_checkpoint(self.run_dir)
            if not latest.exists():
                raise FileNotFoundError(f"--resume: no checkpoint at {latest}")
            self.resume_state = load_training_checkpoint(latest, "--resume: ")
            for tmp in remove_leftovers(self.ckpt_dir):
                print(f"--resume: removed {tmp}, a checkpoint write the previous process did not finish", flush=True)
            saved = self.resume_state["config"]
            check_resume(saved, cfg, str(latest))
            self.cfg = replace(cfg, name=saved.get("name", cfg.name))  # the run keeps its label
            self.step, self.iteration = self.resume_state["step"], self.resume_state["iteration"]
            before = int(saved.get("train", {}).get("total_steps", cfg.train.total_steps))
            self.budgets = [int(b) for b in self.resume_state.get("budgets", [before])]
            if before != cfg.train.total_steps:
                self.budgets.append(cfg.train.total_steps)
                print(f"--resume: train.total_steps {before:,} -> {cfg.train.total_steps:,}: schedules over the "
                      f"budget (learning-rate annealing, exploration, weight averaging) now run at step "
                      f"{self.step:,} as at {self.step / cfg.train.total_steps:.0%} of it, not "
                      f"{self.step / before:.0%}", flush=True)
        else:
            check_fresh(self.run_dir)
        self.best: BestPolicy | None = None
        if cfg.train.keep_best:
            self.best = BestPolicy(self.ckpt_dir / BEST_FILE, self._header(),
                                   resume_step=self.step if resume else None)

    def _header(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(), "algo": self.cfg.algo,
                "env_id": self.cfg.env.id}

    def _checkpoint(self, agent: Agent, env: EnvHandle) -> None:
        state = {
            **self._header(),
            "step": self.step,
            "iteration": self.iteration,
            "agent": agent.state_dict(),
            "env": carried_env_state(env),
            "budgets": self.budgets,
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                    # On the GPU the action noise and minibatch order come from CUDA's generators.
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None},
        }
        save_checkpoint(latest_checkpoint(self.run_dir), state)
        if self.cfg.train.keep_checkpoints:
            save_checkpoint(self.ckpt_dir / f"step_{self.step:09d}.pt", state)

    def _evaluate(self, policy: torch.nn.Module, episodes: int,
                  seed_offset: int = EVAL_SEED_OFFSET) -> dict[str, Any]:
        was_training = policy.training
        policy.eval()
        try:
            return evaluate_policy(policy, self.cfg, episodes, self.cfg.seed + seed_offset, self.device)
        finally:
            policy.train(was_training)

    def _final_evaluation(self, agent: Agent, last_eval_step: int | None, logger: MetricsLogger) -> dict[str, Any]:
        """The evaluation written to eval.json: of the last policy, or with keep_best of the best one,
        measured on held-out episodes."""
        tc = self.cfg.train
        if self.best is None:
            final = self._evaluate(agent.policy, tc.final_eval_episodes)
            logger.log(self.step, eval_metrics(final))
            return final
        if last_eval_step != self.step:
            # The last policy competes on the same episodes as the periodic evaluations.
            ev = self._evaluate(agent.policy, tc.eval_episodes)
            self.best.consider(self.step, self.iteration, ev, agent.policy)
            logger.log(self.step, {**eval_metrics(ev), **self.best.metrics()})
        final = self._evaluate(self.best.policy_like(agent.policy), tc.final_eval_episodes,
                               HELD_OUT_SEED_OFFSET)
        final["best"] = {"step": self.best.step, "selection_return_mean": self.best.score,
                         "selection_episodes": tc.eval_episodes, "selection_seed": self.cfg.seed + EVAL_SEED_OFFSET,
                         "evaluation_seed": self.cfg.seed + HELD_OUT_SEED_OFFSET}
        # Its own columns: eval/ is the curve of the periodic evaluations, on the selection episodes.
        logger.log(self.step, {k.replace("eval/", "eval_held_out/", 1): v for k, v in eval_metrics(final).items()})
        return final

    def run(self) -> TrainResult:
        cfg = self.cfg
        seed_everything(cfg.seed)
        entry = algorithm(cfg.algo)
        with contextlib.ExitStack() as scale_out:
            if cfg.scale.backend == "ray":
                from robotrl.scale.ray_rollouts import RayRollouts  # Ray is needed only when asked for

                rollouts = scale_out.enter_context(RayRollouts(cfg))
                env: EnvHandle = rollouts.spec_env()
                agent = entry.agent(cfg, env, self.device)
                rollouts.attach(agent)
            else:
                env = make_train_env(cfg, cfg.env.num_envs)
                agent = entry.agent(cfg, env, self.device)
            return self._train(agent, env)

    def _train(self, agent: Agent, env: EnvHandle) -> TrainResult:
        cfg, tc = self.cfg, self.cfg.train
        # The folder appears once the env and the agent are built: a run that cannot start leaves nothing.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()
        try:
            # A new run claims its folder with its config.yaml: a second run given the same --run-dir at the
            # same moment passed check_fresh too, and must not write into this one.
            atomic_write_bytes(self.run_dir / "config.yaml", config, exclusive=self.resume_state is None)
        except FileExistsError:
            raise FileExistsError(f"--run-dir {self.run_dir}: another run started in this folder at the same "
                                  "time; choose a new folder") from None
        env_seed = cfg.seed
        if self.resume_state is not None:
            agent.load_state_dict(self.resume_state["agent"])
            rng = self.resume_state["rng"]
            random.setstate(rng["python"])
            np.random.set_state(rng["numpy"])
            torch.set_rng_state(rng["torch"])
            env_seed = resume_env_seed(cfg.seed, self.step)
            cuda = rng.get("cuda")
            if self.device.type == "cuda":
                if cuda is not None and len(cuda) == torch.cuda.device_count():
                    torch.cuda.set_rng_state_all(cuda)
                else:  # written on the CPU or another GPU count: a stream of its own from (seed, step)
                    torch.cuda.manual_seed_all(env_seed)
            if "env" in self.resume_state:  # checkpoints written before it was kept start from the task's own
                restore_carried_env_state(env, self.resume_state["env"])
        agent.start(env_seed)
        logger = MetricsLogger(self.run_dir, resume_step=self.step if self.resume_state else None)
        episodes = EpisodeStats(env.num_envs)
        next_eval = (self.step // tc.eval_every + 1) * tc.eval_every if tc.eval_every else None
        next_ckpt = (self.step // tc.checkpoint_every + 1) * tc.checkpoint_every
        last_eval_step: int | None = None
        start, start_step = time.perf_counter(), self.step
        progress = Progress(tc.total_steps, self.step, enabled=self.show_progress,
                            description=f"{cfg.algo} {cfg.env.id}")
        try:
            with progress, StopRequest() as stop:
                while self.step < tc.total_steps:
                    t0 = time.perf_counter()
                    self.step += agent.collect(episodes)
                    t1 = time.perf_counter()
                    metrics = agent.update(min(self.step / tc.total_steps, 1.0))
                    t2 = time.perf_counter()
                    self.iteration += 1
                    sps = (self.step - start_step) / (t2 - start)
                    metrics.update({"charts/SPS": sps, "time/collect_s": t1 - t0, "time/update_s": t2 - t1})
                    metrics.update({f"charts/episodic_{k}": v for k, v in episodes.summary().items()})
                    if next_eval is not None and self.step >= next_eval:
                        ev = self._evaluate(agent.policy, tc.eval_episodes)
                        metrics.update(eval_metrics(ev))
                        last_eval_step = self.step
                        if self.best is not None:
                            self.best.consider(self.step, self.iteration, ev, agent.policy)
                            metrics.update(self.best.metrics())
                        next_eval += tc.eval_every
                    logger.log(self.step, metrics)
                    progress.update(self.step, episodes.summary().get("return_mean"), sps)
                    # Read once: a signal landing between two reads would stop without this step's checkpoint.
                    signame = stop.signame
                    if self.step >= next_ckpt or signame is not None:
                        logger.flush_events()
                        self._checkpoint(agent, env)
                        if self.step >= next_ckpt:
                            next_ckpt += tc.checkpoint_every
                    if signame is not None:
                        raise TrainingStopped(self.step, signame, str(latest_checkpoint(self.run_dir)))
            self._checkpoint(agent, env)
            final = self._final_evaluation(agent, last_eval_step, logger)
            final.update({"steps": self.step, "env": cfg.env.id, "algo": cfg.algo, "seed": cfg.seed,
                          "budgets": self.budgets})
            atomic_write_bytes(self.run_dir / "eval.json", json.dumps(final, indent=2).encode())
        finally:
            logger.close()
            # Agents that run processes of their own (A3C's workers) stop them here, also on errors.
            agent.close()
            env.close()
        from robotrl.train.plots import plot_run

        plot_run(self.run_dir)
        return TrainResult(self.run_dir, self.step, final, time.perf_counter() - start)


def load_training_checkpoint(path: Path, context: str = "") -> dict[str, Any]:
    """A checkpoint the trainer wrote in this version's format; another file is refused in one line."""
    state = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{context}{path}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT} "
                         "(not a training checkpoint of this version)")
    return state


def load_run(path: str | Path) -> tuple[RunConfig, dict[str, Any], Path]:
    """A run folder or checkpoint file -> (config, checkpoint, checkpoint path). A run folder gives its
    delivered policy: best.pt where the run kept its best (train.keep_best), else latest.pt."""
    path = Path(path)
    if path.is_dir():
        best = path / "checkpoints" / BEST_FILE
        ckpt = best if best.exists() else latest_checkpoint(path)
    else:
        ckpt = path
    state = load_training_checkpoint(ckpt)
    cfg = from_dict(state["config"], str(ckpt), name=state["config"].get("name"))
    return cfg, state, ckpt


def load_policy(path: str | Path, device: torch.device | None = None):
    """The trained policy of a run folder or checkpoint, with its config."""
    device = device or torch.device("cpu")
    cfg, state, _ = load_run(path)
    env = make_train_env(cfg, 1)
    try:
        policy = algorithm(cfg.algo).make_policy(cfg, env).to(device)
        policy.load_state_dict(state["agent"]["policy"])
    finally:
        env.close()
    policy.eval()
    return policy, cfg, state
