"""`robotrl eval --set env.kwargs.KEY=VALUE`: the evaluation's env takes the override, with the parser
and the errors of `robotrl train --set`."""

import json

import pytest

from robotrl.cli import main
from robotrl.config import load_config
from robotrl.export.policy import export_policy
from robotrl.train.trainer import Trainer

CONFIG = "launch/cartpole_dqn.yaml"


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    """A CartPole DQN run (forces binned to full left / full right) and its ONNX export."""
    root = tmp_path_factory.mktemp("eval_set")
    cfg = load_config(CONFIG, ["train.total_steps=400", "train.eval_every=0", "train.keep_best=false",
                               "train.final_eval_episodes=2",
                               "train.checkpoint_every=400", "dqn.learning_starts=200",
                               "dqn.steps_per_iteration=200"])
    Trainer(cfg, root / "run", show_progress=False).run()
    export_policy(root / "run")
    return root / "run"


def evaluate(capsys, *args):
    assert main(["eval", *map(str, args), "--episodes", "4", "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("target", ["run", "policy.onnx"])
def test_set_changes_an_env_kwarg_of_the_evaluation(cartpole_run, capsys, target):
    path = cartpole_run if target == "run" else cartpole_run / "policy.onnx"
    plain = evaluate(capsys, path)
    costly = evaluate(capsys, path, "--set", "env.kwargs.control_cost=0.5")
    # Balance pays 1 - control_cost * u^2 per step, and this policy only pushes with |u| = 1: each step
    # pays 1 as trained and 0.5 with the override. The dynamics are untouched: the same episodes.
    assert plain["return_mean"] == pytest.approx(plain["length_mean"])
    assert costly["length_mean"] == plain["length_mean"]
    assert costly["return_mean"] == pytest.approx(0.5 * plain["length_mean"])


def test_set_of_the_task_switches_balance_to_swingup(cartpole_run, capsys):
    # Swing-up never terminates: every episode runs to CartPole's 500-step limit.
    assert evaluate(capsys, cartpole_run)["length_mean"] < 500
    assert evaluate(capsys, cartpole_run, "--set", "env.kwargs.task=swingup")["length_mean"] == 500


def _error(capsys, *argv):
    assert main(list(map(str, argv))) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0].split(": error: ", 1)[1]


@pytest.mark.parametrize("override", ["env.kwargs.control_cost", "env.kwargs.task.name=x"])
def test_set_syntax_errors_are_train_set_s_errors(cartpole_run, capsys, override):
    from_train = _error(capsys, "train", CONFIG, "--set", override)
    assert _error(capsys, "eval", cartpole_run, "--set", override) == from_train


def test_set_of_anything_but_an_env_kwarg_is_refused(cartpole_run, capsys):
    for override in ("dqn.gamma=0.5", "env.id=robotrl/Reacher-v0", "env.kwargs={}"):
        message = _error(capsys, "eval", cartpole_run, "--set", override)
        assert message.endswith("only the env's kwargs can change here (--set env.kwargs.KEY=VALUE)")
    message = _error(capsys, "eval", cartpole_run, "--set", "env.kwargs.nope=1")
    assert message == "CartPoleTask.__init__() got an unexpected keyword argument 'nope'"
