"""SB3's side of a comparison as a resumable run, like ours: a seed stopped midway continues from its
last checkpoint instead of starting again (a 300k-step HalfCheetah SAC seed takes ~85 min here).

A checkpoint is a folder's `state.json` (the step, the evaluation curve so far, the next evaluation and
checkpoint steps, the training and wall seconds so far) naming the files of that step: SB3's own model
zip (weights, optimizers, entropy temperature, step and update counters), the replay buffer of an
off-policy algorithm and the VecNormalize statistics where there are any. Each file is written
atomically under a name with its step, and `state.json` last, so a kill at any point leaves the previous
checkpoint whole; the files of older steps are deleted after.

On resume the episode in progress restarts (as ours does) and SB3's random streams are reseeded from the
seed and the step, so a run resumed at the same step repeats itself.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from policies.checkpoint import atomic_file, atomic_write_bytes
from robotrl.config import RunConfig
from robotrl.sb3.translate import make_sb3_env, sb3_class
from robotrl.train.trainer import resume_env_seed

STATE = "state.json"


class SB3Checkpoints:
    """The checkpoint folder of one SB3 seed (`out_dir/sb3-seed{K}/`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def state(self) -> dict[str, Any] | None:
        """The last checkpoint's state, or None where none was written."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
            step = int(state["step"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not an SB3 checkpoint state ({exc}); delete the folder to restart "
                             "this seed") from exc
        missing = [name for name in state["files"].values() if not (self.folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{path}: step {step} names missing files {missing}; delete the folder "
                                    "to restart this seed")
        return state

    def save(self, model: BaseAlgorithm, progress: dict[str, Any]) -> None:
        """Write the model (and replay, normalization) at model.num_timesteps, then the state naming them."""
        step = int(model.num_timesteps)
        files = {"model": f"model-{step}.zip"}
        # Streamed into the files (HalfCheetah's 1M-step replay pickles to ~300 MB).
        with atomic_file(self.folder / files["model"]) as f:
            model.save(f)  # type: ignore[arg-type]
        if isinstance(model, OffPolicyAlgorithm):
            files["replay"] = f"replay-{step}.pkl"
            with atomic_file(self.folder / files["replay"]) as f:
                model.save_replay_buffer(f)  # type: ignore[arg-type]
        norm = model.get_vec_normalize_env()
        if norm is not None:
            files["vecnormalize"] = f"vecnormalize-{step}.pkl"
            # VecNormalize pickles its statistics without its envs (as VecNormalize.save does).
            atomic_write_bytes(self.folder / files["vecnormalize"], pickle.dumps(norm))
        state = {**progress, "step": step, "files": files}
        atomic_write_bytes(self.folder / STATE, json.dumps(state, indent=1).encode())
        keep = set(files.values()) | {STATE}
        for path in self.folder.iterdir():  # older steps, and the temporary files of a killed save
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def load(self, cfg: RunConfig, state: dict[str, Any]) -> BaseAlgorithm:
        """The model of `state`, on fresh envs, ready for learn(reset_num_timesteps=False).

        SB3's zip carries its own hyperparameters and trains on with them whatever `cfg` says: the caller
        checks the config the state records first (robotrl.sb3.compare.check_same_config)."""
        files = state["files"]
        env = make_sb3_env(cfg)
        if "vecnormalize" in files:
            if not isinstance(env, VecNormalize):
                raise ValueError(f"{self.folder}: the checkpoint normalizes observations or rewards and the "
                                 "config does not; delete the folder to restart this seed")
            assert env.venv is not None
            env = VecNormalize.load(str(self.folder / files["vecnormalize"]), env.venv)
        model = sb3_class(cfg).load(self.folder / files["model"], env=env, device=cfg.train.device)
        if "replay" in files:
            assert isinstance(model, OffPolicyAlgorithm)
            model.load_replay_buffer(self.folder / files["replay"])
        model._last_obs = None  # type: ignore[assignment]  # reset the new envs at learn()'s start
        # Away from the evaluation episodes' seeds, as our side's resume (seed + step is seed + 10,000 at 10k).
        model.set_random_seed(resume_env_seed(cfg.seed, int(state["step"])))
        return model
