"""DQN and tabular agents through the trainer: checkpoints hold the replay and the table, resume
continues them, and the exported actor outputs the continuous action of the greedy bin."""

import numpy as np
import pytest
import torch
import yaml

from envs.wrappers import ActionBins, ObservationGrid
from policies.checkpoint import load_checkpoint
from policies.q_network import QNetwork
from robotrl.agents.qlearning import td_update
from robotrl.config import load_config
from robotrl.train.trainer import Trainer, load_policy


def _config(tmp_path, name, data):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


GRID = {"bins": [1, 1, 6, 1, 6], "low": [-2.4, 0.9, -0.2, -2, -2], "high": [2.4, 1, 0.2, 2, 2]}
"""CartPole's pole angle (as its sine) and angular velocity in 6 cells each, the rest in one: 36 states."""


def _tabular(discretize_actions=2, **qlearning):
    """A 1024-step tabular run on CartPole over GRID: 4 envs, seed 0, no periodic evaluation."""
    return {"algo": "qlearning", "seed": 0,
            "env": {"id": "robotrl/CartPole-v0", "num_envs": 4,
                    "kwargs": {"discretize_actions": discretize_actions, "discretize_obs": GRID}},
            "train": {"total_steps": 1024, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 1024},
            "qlearning": qlearning}


DQN = {
    "algo": "dqn", "seed": 3,
    "env": {"id": "robotrl/CartPole-v0", "num_envs": 2, "kwargs": {"discretize_actions": 2}},
    "policy": {"hidden": [32], "activation": "relu", "normalize_obs": True},
    "train": {"total_steps": 1200, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 600},
    "dqn": {"buffer_size": 5000, "learning_starts": 200, "batch_size": 32, "train_freq": 2,
            "gradient_steps": 1, "target_update_interval": 100, "n_step": 3, "steps_per_iteration": 200},
}


@pytest.mark.parametrize(("name", "data", "total", "trained"), [
    # 200-step iterations of 4-step rounds: 1,100 steps end mid-iteration (1,200 before).
    ("dqn", {**DQN, "train": {**DQN["train"], "total_steps": 1100}}, 1100, 1100),
    # 64 vector steps of 4 envs a collect: 1,100 steps end at 1,100 (1,280 before).
    ("qlearning", {**_tabular(), "train": {**_tabular()["train"], "total_steps": 1100}}, 1100, 1100),
])
def test_the_last_iteration_stops_at_the_runs_budget(tmp_path, name, data, total, trained):
    """A comparison with SB3 gives both sides the same budget; a run does not train past its own."""
    result = Trainer(_config(tmp_path, name, data), tmp_path / "run", show_progress=False).run()
    assert result.steps == trained
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]["env_steps"] == trained


@pytest.mark.slow
def test_dqn_checkpoint_holds_the_replay_and_resume_continues_it(tmp_path):
    cfg = _config(tmp_path, "dqn", DQN)
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    first = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]
    # n-step transitions are emitted up to n-1 steps late (per env), never more.
    assert 1200 - 2 * 2 <= first["replay"]["size"] <= 1200
    assert first["env_steps"] == 1200 and first["gradient_updates"] == (1200 - 200) // 4 + 1

    longer = _config(tmp_path, "dqn", {**DQN, "train": {**DQN["train"], "total_steps": 2000}})
    Trainer(longer, tmp_path / "run", resume=True, show_progress=False).run()
    second = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]
    assert second["env_steps"] == 2000
    assert second["replay"]["size"] > first["replay"]["size"] + 700
    n = first["replay"]["size"]
    # The first part's transitions are still there, unchanged.
    assert np.array_equal(second["replay"]["obs"][:n], first["replay"]["obs"])
    # The normalizer was frozen after learning_starts: the resumed run did not move it.
    assert torch.equal(second["policy"]["normalizer.mean"], first["policy"]["normalizer.mean"])


@pytest.mark.slow
def test_pixel_dqn_replay_is_uint8_frames_and_survives_resume(tmp_path):
    data = {**DQN, "env": {"id": "robotrl/CartPole-v0", "num_envs": 2,
                           "kwargs": {"discretize_actions": 2, "pixels": {"size": 36, "stack": 4, "camera": "side"}}},
            "train": {**DQN["train"], "total_steps": 160, "checkpoint_every": 80},
            # n-step transitions and DrQ's random shift on the shared frames, through the trainer.
            "dqn": {**DQN["dqn"], "n_step": 3, "augment_shift": 2, "learning_starts": 80, "steps_per_iteration": 40}}
    cfg = _config(tmp_path, "px", data)
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    replay = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]["replay"]
    assert np.asarray(replay["frames"]).dtype == np.uint8 and replay["frames"].shape == (80, 2, 36, 36)
    longer = _config(tmp_path, "px", {**data, "train": {**data["train"], "total_steps": 200}})
    Trainer(longer, tmp_path / "run", resume=True, show_progress=False).run()
    resumed = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["agent"]["replay"]
    assert resumed["frames"].shape == (100, 2, 36, 36)
    assert np.array_equal(resumed["frames"][:80], replay["frames"])
    # The episodes restarted on resume: the first slot after it starts a new stack.
    assert resumed["age"][80].tolist() == [0, 0]


def test_dqn_refuses_random_shift_on_state_observations(tmp_path):
    cfg = _config(tmp_path, "dqn", {**DQN, "dqn": {**DQN["dqn"], "augment_shift": 4}})
    with pytest.raises(ValueError, match=r"dqn.augment_shift: shifts images, but robotrl/CartPole-v0's observations"):
        Trainer(cfg, tmp_path / "run", show_progress=False).run()


def test_q_network_export_outputs_the_greedy_bins_torque():
    box = __import__("gymnasium").spaces.Box(-1.0, 1.0, shape=(2,))
    bins = ActionBins(box, 3)
    net = QNetwork((8,), bins.n, hidden=(16,), dueling=True, action_table=bins.table)
    obs = torch.randn(50, 8)
    actor = net.export_actor()
    expected = torch.as_tensor(bins.table)[net(obs).argmax(-1)]
    assert torch.equal(actor(obs), expected)
    assert actor(obs).shape == (50, 2) and actor(obs).dtype == torch.float32


def test_q_table_is_saved_with_the_run_and_exports_raw_observations_to_force(tmp_path):
    data = _tabular(discretize_actions=[[-1.0], [1.0]], method="sarsa", steps_per_collect=64)
    cfg = _config(tmp_path, "ql", data)
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    policy, _, state = load_policy(tmp_path / "run")
    assert torch.equal(policy.q, state["agent"]["policy"]["q"]) and policy.q.abs().sum() > 0
    raw = np.random.default_rng(1).uniform(-0.3, 0.3, size=(64, 5)).astype(np.float32)
    cells = ObservationGrid(GRID["bins"], GRID["low"], GRID["high"])(raw)
    expected = np.where(policy.q[cells].argmax(-1).numpy() == 1, 1.0, -1.0)[:, None]
    assert np.array_equal(policy.export_actor()(torch.as_tensor(raw)).numpy(), expected)


@pytest.mark.parametrize("method", ["qlearning", "mc"])
def test_tabular_methods_run_and_fill_the_table(tmp_path, method):
    data = _tabular(method=method, steps_per_collect=64)
    Trainer(_config(tmp_path, method, data), tmp_path / "run", show_progress=False).run()
    policy, _, _ = load_policy(tmp_path / "run")
    # Every step of a balance episode pays 1 and the pole falls within ~100 random steps: the
    # visited values are positive and below the 1 / (1 - gamma) = 100 of an endless episode.
    visited = policy.q[policy.q != 0]
    assert len(visited) > 4 and (visited > 0).all() and (visited < 100).all()


def test_exported_q_table_runs_on_the_raw_env_with_onnx_parity(tmp_path):
    from robotrl.export.policy import export_policy

    data = _tabular(steps_per_collect=64)
    Trainer(_config(tmp_path, "ql", data), tmp_path / "run", show_progress=False).run()
    report = export_policy(tmp_path / "run", out=tmp_path / "policy.onnx")
    assert (tmp_path / "policy.onnx").exists()
    assert report["parity_max_abs"] == 0.0  # argmax of a table lookup: the same bin, the same force


def test_dqn_anneal_lr_decays_the_rate_linearly_to_zero_over_the_run(tmp_path):
    import csv

    data = {**DQN, "dqn": {**DQN["dqn"], "learning_rate": 1e-3, "anneal_lr": True}}
    Trainer(_config(tmp_path, "dqn", data), tmp_path / "run", show_progress=False).run()
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = [(float(r["step"]), float(r["charts/learning_rate"])) for r in csv.DictReader(f)
                if r.get("charts/learning_rate")]
    assert len(rows) >= 5
    # Each iteration reports the rate of its last gradient step, taken at the step count it ended on.
    for step, lr in rows:
        assert lr == pytest.approx(1e-3 * (1 - step / 1200), abs=1e-9)
    assert rows[-1][1] == pytest.approx(0.0, abs=1e-12)


def test_tabular_anneal_lr_decays_alpha_linearly_to_zero_and_a_zero_alpha_leaves_the_table(tmp_path):
    import csv

    data = _tabular(learning_rate=0.5, anneal_lr=True, steps_per_collect=16)
    Trainer(_config(tmp_path, "q", data), tmp_path / "run", show_progress=False).run()
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = [(float(r["step"]), float(r["charts/learning_rate"])) for r in csv.DictReader(f)]
    assert len(rows) == 1024 // 64
    # Each collect reports the alpha of its last vector step, set at the 4 env steps before its end.
    for step, alpha in rows:
        assert alpha == pytest.approx(0.5 * (1 - (step - 4) / 1024), abs=1e-12)
    q = np.zeros((2, 2))
    assert td_update(q, 0, 1, 1.0, 1, False, 0.0, 0.99) == 1.0 and not q.any()


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_a_categorical_policy_on_a_discretized_robot_exports_the_bins_actions(tmp_path, algo):
    """PPO or A2C on a discretized robot act with bin indices; the exported file runs on the robot without
    the wrapper, so it must output the chosen bin's force, not its index."""
    from policies.export import onnx_actions
    from robotrl.export.policy import export_policy
    from robotrl.train.trainer import load_policy

    table = [[-1.0], [0.25], [1.0]]
    data = {"algo": algo, "seed": 0,
            "env": {"id": "robotrl/CartPole-v0", "num_envs": 4, "kwargs": {"discretize_actions": table}},
            "train": {"total_steps": 512, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 512}}
    Trainer(_config(tmp_path, algo, data), tmp_path / "run", show_progress=False).run()
    policy, _, _ = load_policy(tmp_path / "run")
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-0.5, 0.5, size=(64, 5)), dtype=torch.float32)
    expected = torch.tensor(table)[policy.deterministic(obs)]
    assert torch.equal(policy.export_actor()(obs), expected)
    report = export_policy(tmp_path / "run", out=tmp_path / "policy.onnx")
    assert report["parity_max_abs"] == 0.0
    onnx = onnx_actions((tmp_path / "policy.onnx").read_bytes(), obs.numpy())
    assert np.array_equal(onnx, expected.numpy())
