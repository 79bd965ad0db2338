import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for a test module (starting one costs seconds and most of a GB). A short private
    temp dir: Ray's socket paths must stay under 108 characters, and other users' Ray sessions on this
    machine stay untouched."""
    ray = pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=tmp, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def no_learning():
    """The negative control of a learning test: every optimizer step runs at learning rate 0 (a global
    pre-step hook, so it holds whatever optimizer, schedule or agent a run uses). A learning assertion that
    still passes under it measures nothing."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def zero_lr(optimizer, args, kwargs) -> None:
        for group in optimizer.param_groups:
            group["lr"] = 0.0

    handle = register_optimizer_step_pre_hook(zero_lr)
    yield
    handle.remove()


@pytest.fixture(params=[True, False], ids=["learns", "lr0-control"])
def learns(request) -> bool:
    """Runs a learning test twice: as written (True), and as its negative control under `no_learning`
    (False), in which the same learning assertion must fail."""
    if not request.param:
        request.getfixturevalue("no_learning")
    return request.param


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


@pytest.fixture(scope="session")
def exported_reacher(tmp_path_factory):
    """A briefly trained Reacher-v0 PPO run and its export: (run folder, policy.onnx, export report)."""
    import yaml

    from robotrl.config import load_config
    from robotrl.export.policy import export_policy
    from robotrl.train.trainer import Trainer

    root = tmp_path_factory.mktemp("exported")
    data = {"algo": "ppo", "seed": 3, "env": {"id": "robotrl/Reacher-v0", "num_envs": 8},
            "train": {"total_steps": 2048, "eval_every": 0, "eval_episodes": 2, "final_eval_episodes": 2,
                      "checkpoint_every": 2048},
            "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 2}}
    (root / "tiny.yaml").write_text(yaml.safe_dump(data))
    Trainer(load_config(root / "tiny.yaml"), root / "run", show_progress=False).run()
    report = export_policy(root / "run")
    return root / "run", root / "run" / "policy.onnx", report


@pytest.fixture(scope="session")
def reacher_run(tmp_path_factory):
    """A briefly trained Reacher-v0 run folder (with evaluation points), shared by the viewer, video
    and plot tests: they need a real checkpoint and metrics, not a competent arm."""
    import yaml

    from robotrl.config import load_config
    from robotrl.train.trainer import Trainer

    root = tmp_path_factory.mktemp("reacher_run")
    config = root / "reacher.yaml"
    config.write_text(yaml.safe_dump({
        "algo": "ppo", "seed": 3, "env": {"id": "robotrl/Reacher-v0", "num_envs": 8},
        "target": {"metric": "success_rate", "op": ">=", "value": 0.9},  # as launch/reacher_ppo.yaml
        "train": {"total_steps": 6144, "eval_every": 2048, "eval_episodes": 4, "final_eval_episodes": 4,
                  "checkpoint_every": 2048},
        "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 2},
    }))
    Trainer(load_config(str(config)), root / "run", show_progress=False).run()
    return root / "run"
