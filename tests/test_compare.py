"""`robotrl compare` and its parts: confidence intervals, the config translation to SB3, the report."""

import json
import math

import pytest
import stable_baselines3
from stable_baselines3.common.vec_env import VecNormalize

from robotrl.cli import main
from robotrl.config import load_config
from robotrl.core.stats import mean_ci95, t_quantile
from robotrl.sb3.translate import dqn_kwargs, make_sb3_model


def test_t_quantiles_match_the_printed_table():
    # Student's t, two-sided 95%: the values printed in every statistics textbook.
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.975, 9) == pytest.approx(2.262, abs=1e-3)


def test_mean_ci95_of_three_seeds_by_hand():
    # mean 2, sample std 1, half width 4.303 * 1 / sqrt(3) = 2.4843
    mean, (lo, hi) = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert (lo, hi) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-3)


def test_ppo_config_translates_to_the_same_sb3_hyperparameters(tiny_config):
    cfg = load_config(tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 4},
                                  policy={"hidden": [32, 16], "activation": "relu", "init_log_std": -0.5},
                                  ppo={"n_steps": 32, "batch_size": 64, "n_epochs": 3, "gamma": 0.98,
                                       "learning_rate": 0.001, "clip_range": 0.3}))
    model = make_sb3_model(cfg, seed=5)
    assert (model.n_steps, model.batch_size, model.n_epochs, model.gamma) == (32, 64, 3, 0.98)
    assert model.n_envs == 4 and model.clip_range(1.0) == 0.3
    assert model.lr_schedule(1.0) == pytest.approx(0.001) and model.lr_schedule(0.25) == pytest.approx(0.00025)
    env = model.get_env()
    assert isinstance(env, VecNormalize) and env.norm_obs and env.norm_reward and env.gamma == 0.98
    assert list(env.action_space.low) == [-1.0] and list(env.action_space.high) == [1.0]
    sizes = [m.out_features for m in model.policy.mlp_extractor.policy_net if hasattr(m, "out_features")]
    assert sizes == [32, 16]
    assert model.policy.log_std.detach().tolist() == [-0.5]


def test_compare_reports_both_sides_with_intervals_and_a_plot(tiny_config, tmp_path, capsys):
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2},
                         train={"total_steps": 512, "eval_every": 256, "eval_episodes": 2, "final_eval_episodes": 3},
                         ppo={"n_steps": 128, "batch_size": 128, "n_epochs": 1})
    out = tmp_path / "cmp"
    assert main(["compare", config, "--seeds", "2", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["env"], report["algo"], report["steps"]) == ("InvertedPendulum-v5", "ppo", 512)
    assert report["seeds"] == [1, 2]
    for side in ("ours", "sb3"):
        block = report[side]
        assert len(block["returns"]) == 2 and block["steps_per_s"] > 0
        assert block["mean"] == pytest.approx(sum(block["returns"]) / 2)
        assert block["ci95"][0] <= block["mean"] <= block["ci95"][1]
        # Both sides are evaluated at the same step counts: after the updates at 256 and 512 steps.
        assert [[s for s, _ in c] for c in block["curves"]] == [[256, 512], [256, 512]]
    assert (out / "curves.png").stat().st_size > 10_000
    assert json.loads((out / "report.json").read_text())["sb3"]["returns"] == report["sb3"]["returns"]


def test_dqn_config_translates_and_sb3_missing_features_are_refused():
    cfg = load_config("launch/cartpole_dqn.yaml")
    model = make_sb3_model(cfg, seed=0)
    hp = cfg.hyper
    assert (model.train_freq.frequency, model.gradient_steps, model.target_update_interval) == (
        hp.train_freq, hp.gradient_steps, hp.target_update_interval)
    assert (model.batch_size, model.learning_starts, model.exploration_final_eps) == (
        hp.batch_size, hp.learning_starts, hp.exploration_final_eps)
    assert [m.out_features for m in model.q_net.q_net if hasattr(m, "out_features")] == [64, 64, 2]
    with pytest.raises(ValueError, match="SB3 has no double"):
        make_sb3_model(load_config("launch/cartpole_double_dqn.yaml"), seed=0)


def test_dqn_learning_rate_annealing_reaches_sb3_and_options_it_lacks_are_refused():
    """A DQN option SB3 has must reach it (annealing: SB3 takes a schedule of the remaining progress); one it
    lacks must be refused, not dropped, or the comparison is of two different learners."""
    cfg = load_config("launch/cartpole_dqn.yaml", ["dqn.anneal_lr=true", "dqn.learning_rate=0.002"])
    lr = dqn_kwargs(cfg)["learning_rate"]
    assert lr(1.0) == pytest.approx(0.002) and lr(0.25) == pytest.approx(0.0005)
    for option, message in (("dqn.average_from=0.8", "average_from"), ("dqn.augment_shift=4", "augment_shift")):
        with pytest.raises(ValueError, match=f"SB3 has no {message}"):
            dqn_kwargs(load_config("launch/cartpole_dqn.yaml", [option]))
    pixels = load_config("launch/cartpole_pixels_dqn.yaml", ["dqn.double=false", "dqn.average_from=null"])
    with pytest.raises(ValueError, match="SB3 has no pixel observations"):
        dqn_kwargs(pixels)


def test_compare_sides_run_apart_and_our_stopped_seed_resumes(tiny_config, tmp_path, capsys):
    """A long comparison spread over processes: one side at a time, ours continuing a shorter run."""
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2},
                         train={"total_steps": 512, "eval_every": 256, "eval_episodes": 2, "final_eval_episodes": 3,
                                "checkpoint_every": 256},
                         ppo={"n_steps": 128, "batch_size": 128, "n_epochs": 1})
    out = tmp_path / "cmp"
    assert main(["compare", config, "--seeds", "1", "--side", "ours", "--steps", "256", "--out", str(out)]) == 0
    assert not (out / "sb3-seed1.json").exists()
    assert json.loads((out / "ours-seed1.json").read_text())["steps"] == 256
    assert main(["compare", config, "--seeds", "1", "--side", "ours", "--out", str(out)]) == 0
    ours = json.loads((out / "ours-seed1.json").read_text())
    assert (ours["steps"], ours["resumed_from"]) == (512, 256)
    assert [s for s, _ in ours["curve"]] == [256, 512]  # the first half's evaluation is kept
    assert main(["compare", config, "--seeds", "1", "--side", "sb3", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["compare", config, "--seeds", "1", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ours"]["returns"] == [ours["final_return"]] and len(report["sb3"]["returns"]) == 1


def test_compare_refuses_a_baseline_without_the_sb3_side(tiny_config, tmp_path, capsys):
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2})
    assert main(["compare", config, "--side", "ours", "--save-baseline", "--out", str(tmp_path / "c")]) != 0
    assert "--save-baseline" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_compare_refuses_to_store_a_baseline_of_an_overridden_config(tiny_config, tmp_path, capsys):
    """The regression tier trains ours on the baseline's config file as written: an interval measured with
    --set changes would be held against another config."""
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2})
    assert main(["compare", config, "--set", "ppo.n_epochs=2", "--save-baseline", "--out", str(tmp_path / "c")]) != 0
    assert "--save-baseline: a baseline is of" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_compare_refuses_to_replace_another_configs_baseline_of_the_same_env_and_algo(tiny_config, tmp_path,
                                                                                      capsys):
    """One file per env and algorithm: the swing-up PPO would overwrite the balance PPO's stored baseline."""
    from robotrl.sb3.stored import BASELINE_DIR

    stored = BASELINE_DIR / "robotrl_CartPole-v0__ppo.json"
    before = stored.read_bytes()
    config = tiny_config(env={"id": "robotrl/CartPole-v0", "num_envs": 2})
    assert main(["compare", config, "--save-baseline", "--out", str(tmp_path / "c")]) != 0
    assert "holds the baseline of launch/cartpole_ppo.yaml" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and stored.read_bytes() == before


@pytest.mark.parametrize("release", ["1.8.0", None])
@pytest.mark.parametrize("recorded", ["sb3-seed1.json", "sb3-seed1/state.json"])
def test_an_sb3_seed_of_another_sb3_release_is_not_reused(tiny_config, tmp_path, capsys, recorded, release):
    """`robotrl baselines` after an SB3 upgrade would stamp the new version over the old release's returns."""
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2},
                         train={"total_steps": 256, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 256},
                         ppo={"n_steps": 128, "batch_size": 128, "n_epochs": 1})
    out = tmp_path / "cmp"
    args = ["compare", config, "--seeds", "1", "--side", "sb3", "--out", str(out), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)["sb3"]["returns"]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["sb3"]["returns"] == first  # reused
    path = out / recorded
    data = json.loads(path.read_text())
    assert data["sb3_version"] == stable_baselines3.__version__
    if release is None:  # written before the release was recorded: not known to be this one
        del data["sb3_version"]
    else:
        data["sb3_version"] = release
    path.write_text(json.dumps(data))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("records no stable-baselines3 release" if release is None
            else "trained with stable-baselines3 1.8.0, this is") in err


def test_sb3_seed_stopped_midway_resumes_from_its_model_and_replay(tmp_path):
    """SB3's side of a long comparison continues from its last checkpoint instead of starting again."""
    import yaml
    from stable_baselines3 import SAC

    from robotrl.sb3.resume import SB3Checkpoints

    config = tmp_path / "sac.yaml"
    config.write_text(yaml.safe_dump({
        "algo": "sac", "seed": 2, "env": {"id": "InvertedPendulum-v5", "num_envs": 1},
        "policy": {"hidden": [16, 16], "normalize_obs": False},
        "train": {"total_steps": 400, "eval_every": 200, "eval_episodes": 2, "final_eval_episodes": 2,
                  "checkpoint_every": 100},
        "sac": {"learning_starts": 50, "batch_size": 32, "buffer_size": 1000, "steps_per_iteration": 50}}))
    out, whole = tmp_path / "cmp", tmp_path / "whole"
    args = ["compare", str(config), "--seeds", "1", "--side", "sb3"]
    assert main([*args, "--steps", "200", "--out", str(out)]) == 0  # a run stopped at step 200
    state = json.loads((out / "sb3-seed2" / "state.json").read_text())
    assert state["step"] == 200 and sorted(p.name for p in (out / "sb3-seed2").iterdir()) == sorted(
        ["state.json", "model-200.zip", "replay-200.pkl"])  # the older checkpoints are gone
    (out / "sb3-seed2" / ".replay-300.pkl.x1y2.tmp").write_bytes(b"half")  # what a kill mid-save leaves
    assert main([*args, "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "sb3-seed2").iterdir()) == ["model-400.zip", "replay-400.pkl", "state.json"]
    assert main([*args, "--out", str(whole)]) == 0  # the same seed in one go
    resumed = json.loads((out / "sb3-seed2.json").read_text())
    assert (resumed["steps"], resumed["resumed_from"]) == (400, 200)
    assert [s for s, _ in resumed["curve"]] == [200, 400]  # the first part's evaluation is kept
    assert json.loads((whole / "sb3-seed2.json").read_text())["resumed_from"] is None
    # The resumed run kept the first part's replay and update count: it ends where the one-go run ends.
    for folder in (out, whole):
        model = SAC.load(folder / "sb3-seed2" / "model-400.zip")
        model.load_replay_buffer(folder / "sb3-seed2" / "replay-400.pkl")
        assert (model.replay_buffer.size(), model._n_updates) == (400, 350)

    # A resumed seed restarts its episodes from a seed drawn from (seed, step), as ours does: seed + step
    # would be the evaluation episodes' seed (seed + 10,000) for a checkpoint at step 10,000.
    from robotrl.config import load_config
    from robotrl.train.trainer import resume_env_seed

    checkpoints = SB3Checkpoints(out / "sb3-seed2")
    model = checkpoints.load(load_config(config, ["seed=2"]), checkpoints.state())
    assert model.get_env()._seeds == [resume_env_seed(2, 400)]  # given to the env at its next reset

    (out / "sb3-seed2" / "replay-400.pkl").unlink()
    with pytest.raises(FileNotFoundError, match=r"replay-400\.pkl"):
        SB3Checkpoints(out / "sb3-seed2").state()


def test_sb3_seed_resumes_with_its_observation_statistics(tiny_config, tmp_path):
    """An on-policy SB3 seed under VecNormalize keeps the statistics it gathered before the stop."""
    import pickle

    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2}, policy={"normalize_obs": True},
                         train={"total_steps": 512, "eval_every": 0, "checkpoint_every": 256},
                         ppo={"n_steps": 128, "batch_size": 128, "n_epochs": 1})
    out = tmp_path / "cmp"
    args = ["compare", config, "--seeds", "1", "--side", "sb3", "--out", str(out)]
    assert main([*args, "--steps", "256"]) == 0
    assert main(args) == 0
    assert json.loads((out / "sb3-seed1.json").read_text())["resumed_from"] == 256
    norm = pickle.loads((out / "sb3-seed1" / "vecnormalize-512.pkl").read_bytes())
    assert norm.obs_rms.count > 512  # both parts' observations (a restart would hold about half)


def test_a_comparison_folder_refuses_a_seed_trained_with_another_config(tiny_config, tmp_path, capsys):
    """A finished or stopped seed of the folder is reused or resumed only for the config it was trained
    with (SB3's model zip would otherwise train on with its own hyperparameters); the budget may grow."""
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2},
                         train={"total_steps": 256, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 128},
                         ppo={"n_steps": 64, "batch_size": 128, "n_epochs": 1})
    out = tmp_path / "cmp"
    assert main(["compare", config, "--seeds", "1", "--out", str(out)]) == 0
    sb3_state = json.loads((out / "sb3-seed1" / "state.json").read_text())
    assert sb3_state["config"]["ppo"]["n_epochs"] == 1
    capsys.readouterr()
    for side in ("ours", "sb3"):
        assert main(["compare", config, "--seeds", "1", "--side", side, "--out", str(out),
                     "--set", "ppo.learning_rate=0.001"]) != 0
        err = capsys.readouterr().err
        assert f"{side} seed 1 was trained with another config: ppo.learning_rate" in err and "--out" in err, err
    assert main(["compare", config, "--seeds", "1", "--out", str(out), "--steps", "384"]) == 0
    assert json.loads((out / "sb3-seed1.json").read_text())["resumed_from"] == 256
    capsys.readouterr()
    # Back to the smaller budget: both seeds are past it, and their results would be reported under it.
    for side in ("ours", "sb3"):
        assert main(["compare", config, "--seeds", "1", "--side", side, "--out", str(out)]) != 0
        err = capsys.readouterr().err
        assert f"{side} seed 1 was trained for a budget of 384 steps and is at 384, past this config's 256" in err, err


def test_sb3_side_stops_on_a_signal_during_its_last_rollout(tmp_path, monkeypatch):
    """A signal after the last rollout start is not missed: the seed stops with a checkpoint of its last
    step instead of being evaluated and followed by the next seed."""
    import os
    import signal

    import yaml

    from robotrl.sb3 import compare as compare_module
    from robotrl.sb3.compare import run_sb3
    from robotrl.train.stop import TrainingStopped

    config = tmp_path / "sac.yaml"
    config.write_text(yaml.safe_dump({
        "algo": "sac", "seed": 2, "env": {"id": "InvertedPendulum-v5", "num_envs": 1},
        "policy": {"hidden": [16, 16], "normalize_obs": False},
        "train": {"total_steps": 200, "eval_every": 0, "final_eval_episodes": 2, "checkpoint_every": 100},
        "sac": {"learning_starts": 50, "batch_size": 32, "buffer_size": 1000}}))
    cfg = load_config(config)

    def on_step(self) -> bool:
        if self.num_timesteps == cfg.train.total_steps:  # inside the last rollout, after its start
            os.kill(os.getpid(), signal.SIGTERM)
        return True

    monkeypatch.setattr(compare_module._Progress, "_on_step", on_step)
    with pytest.raises(TrainingStopped) as stopped:
        run_sb3(cfg, tmp_path / "sb3-seed2")
    assert stopped.value.step == 200
    assert json.loads((tmp_path / "sb3-seed2" / "state.json").read_text())["step"] == 200


def test_compare_measures_our_last_policy_where_the_config_keeps_its_best(tiny_config, tmp_path, capsys):
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2},
                         train={"total_steps": 256, "eval_every": 128, "eval_episodes": 2, "final_eval_episodes": 2,
                                "checkpoint_every": 128, "keep_best": True},
                         ppo={"n_steps": 64, "batch_size": 128, "n_epochs": 1})
    out = tmp_path / "cmp"
    assert main(["compare", config, "--seeds", "1", "--side", "ours", "--out", str(out)]) == 0
    assert "train.keep_best is off on our side" in capsys.readouterr().out
    assert not (out / "ours-seed1" / "checkpoints" / "best.pt").exists()
    ours = json.loads((out / "ours-seed1.json").read_text())
    assert ours["curve"][-1] == [256, ours["final_return"]]


def test_a_baseline_of_one_seed_is_refused_before_anything_trains(tiny_config, tmp_path, capsys):
    """One seed has no 95% interval: the regression tier would hold ours to a single SB3 run's return."""
    config = tiny_config(env={"id": "InvertedPendulum-v5", "num_envs": 2})
    assert main(["compare", config, "--seeds", "1", "--save-baseline", "--out", str(tmp_path / "c")]) != 0
    assert "a stored baseline needs at least 2 seeds" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    assert main(["baselines", config, "--seeds", "1"]) != 0
    assert "a stored baseline needs at least 2 seeds" in capsys.readouterr().err
