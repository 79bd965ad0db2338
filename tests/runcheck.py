"""Whole runs as several test files use them: a shipped config trained as it is, the same seed giving the
same weights, and `robotrl eval --json` of one run's files."""

import json

import torch

from robotrl.cli import main
from robotrl.config import load_config
from robotrl.train.trainer import Trainer, load_policy


def train_shipped(config: str, tmp_path):
    """The shipped config `config` (a launch/*.yaml path) trained as it is into tmp_path/run: the result."""
    return Trainer(load_config(config), tmp_path / "run", show_progress=False).run()


def assert_same_seed_same_weights(cfg, tmp_path) -> None:
    """Trains `cfg` twice (into tmp_path/a and tmp_path/b) and asserts the delivered policies' weights are
    equal bit for bit."""
    Trainer(cfg, tmp_path / "a", show_progress=False).run()
    Trainer(cfg, tmp_path / "b", show_progress=False).run()
    pa, _, _ = load_policy(tmp_path / "a")
    pb, _, _ = load_policy(tmp_path / "b")
    for (k, va), vb in zip(pa.state_dict().items(), pb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def eval_json(path, episodes: int, capsys) -> dict:
    """`robotrl eval PATH --episodes N --json` (a run folder, checkpoint or ONNX file), parsed."""
    capsys.readouterr()
    assert main(["eval", str(path), "--episodes", str(episodes), "--json"]) == 0
    return json.loads(capsys.readouterr().out)
