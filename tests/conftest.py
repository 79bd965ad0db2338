import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tiny_config(tmp_path):
    """A small, fast PPO config file on Reacher."""

    def make(**sections) -> str:
        import yaml

        data = {
            "algo": "ppo",
            "seed": 1,
            "env": {"id": "robotrl/Reacher-v0", "num_envs": 8},
            "train": {"total_steps": 4096, "eval_every": 0, "eval_episodes": 4, "final_eval_episodes": 4,
                      "checkpoint_every": 1024},
            "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 2},
        }
        for key, value in sections.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        path = tmp_path / "tiny.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return make
