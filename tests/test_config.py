"""Config validation: every mistake is one clear line naming the file and the key."""

import subprocess
import sys

import pytest

from robotrl.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_shipped_reacher_config_loads_with_its_values():
    cfg = load_config("launch/reacher_ppo.yaml")
    assert cfg.env.id == "robotrl/Reacher-v0"
    assert cfg.algo == "ppo"
    assert cfg.name == "reacher_ppo"
    assert cfg.hyper.n_steps == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("algo: ppo\nenv: {idd: robotrl/Reacher-v0}\n", r"c.yaml: env.idd: unknown key"),
        ("algo: ppo\nppo: {n_steps: many}\n", r"c.yaml: ppo.n_steps: expected an integer, got str 'many'"),
        ("algo: ppo\nppo: {learning_rate: true}\n", r"ppo.learning_rate: expected a number, got bool"),
        ("algo: ppo\nenv: {id: robotrl/Nope-v0}\n", r"c.yaml: env.id: unknown env id 'robotrl/Nope-v0'"),
        ("algo: sarsa9\n", r"c.yaml: algo: unknown algorithm 'sarsa9'"),
        ("algo: ppo\npolicy: {hidden: 64}\n", r"policy.hidden: expected a list, got int 64"),
        ("algo: ppo\nppo: {gamma: 1.5}\n", r"ppo: gamma must be in"),
        ("- just\n- a list\n", r"expected a mapping at the top level"),
    ],
)
def test_bad_config_is_rejected_with_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_overrides_set_nested_values_with_yaml_types(tmp_path):
    cfg = load_config(write(tmp_path, "algo: ppo\n"), ["ppo.learning_rate=1e-3", "policy.hidden=[32, 32]",
                                                       "env.kwargs.control_cost=0.1"])
    assert cfg.hyper.learning_rate == 1e-3
    assert cfg.policy.hidden == (32, 32)
    assert cfg.env.kwargs == {"control_cost": 0.1}


def test_override_of_unknown_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"ppo\.lr: unknown key"):
        load_config(write(tmp_path, "algo: ppo\n"), ["ppo.lr=0.1"])


def test_cli_reports_config_error_in_one_line_and_fails(tmp_path):
    path = write(tmp_path, "algo: ppo\nenv: {num_envs: eight}\n")
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "train", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "c.yaml: env.num_envs: expected an integer, got str 'eight'" in lines[0]
