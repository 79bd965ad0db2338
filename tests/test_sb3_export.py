"""Exporting models trained with stable-baselines3: the ONNX file acts like SB3's deterministic predict."""

import json

import numpy as np
import onnx
import pytest
from stable_baselines3 import A2C, PPO

from policies.export import onnx_actions
from robotrl.export.policy import export_policy


def _check_sb3_export(cls, tmp_path):
    model = cls("MlpPolicy", "InvertedPendulum-v5", n_steps=32, seed=0, device="cpu")
    model.learn(64)
    model.save(tmp_path / "model.zip")
    report = export_policy(tmp_path / "model.zip", tmp_path / "model.onnx", env_id="InvertedPendulum-v5")
    assert report["parity_max_abs"] <= 1e-5
    meta = json.loads({p.key: p.value for p in onnx.load(tmp_path / "model.onnx").metadata_props}["robotrl.policy"])
    assert meta["algo"] == f"sb3-{cls.__name__.lower()}" and meta["train_steps"] == 64
    assert meta["obs_fields"] == [["obs_0", 1], ["obs_1", 1], ["obs_2", 1], ["obs_3", 1]]
    assert meta["action_low"] == [-3.0] and meta["action_high"] == [3.0]
    # Large observations push the mean past the bounds: SB3 clips, so must the graph.
    obs = (np.random.default_rng(0).standard_normal((300, 4)) * [[1, 1, 1, 1]] * np.geomspace(0.1, 1e3, 300)[:, None])
    obs = obs.astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(onnx_actions((tmp_path / "model.onnx").read_bytes(), obs), expected, atol=1e-5)


def test_sb3_ppo_zip_exports_with_the_actions_of_its_deterministic_predict(tmp_path):
    _check_sb3_export(PPO, tmp_path)


@pytest.mark.slow
def test_sb3_a2c_zip_exports_with_the_actions_of_its_deterministic_predict(tmp_path):
    _check_sb3_export(A2C, tmp_path)


def test_sb3_zip_without_env_id_is_a_clear_error(tmp_path):
    PPO("MlpPolicy", "InvertedPendulum-v5", n_steps=32, device="cpu").save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="does not record its env id: pass --env ID"):
        export_policy(tmp_path / "m.zip")


def test_an_sb3_zip_of_an_algorithm_without_an_actor_critic_is_refused_naming_it(tmp_path):
    from stable_baselines3 import SAC

    SAC("MlpPolicy", "InvertedPendulum-v5", device="cpu").save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match=r"sac\.zip: a model with SACPolicy; export reads SB3 PPO and A2C zips"):
        export_policy(tmp_path / "sac.zip", env_id="InvertedPendulum-v5")


def test_an_sb3_zip_of_a_comparison_is_refused_where_its_actions_or_inputs_are_not_the_robots(tmp_path):
    """robotrl compare trains SB3 on a [-1, 1] action box (RescaleAction), under VecNormalize when the config
    normalizes: exported as is, the actor would send a third of InvertedPendulum's +-3 and see raw inputs."""
    from robotrl.config import load_config
    from robotrl.sb3.translate import make_sb3_model

    for normalize, message in ((False, r"action space is \[\[-1.0\], \[1.0\]\].*wrong units"),
                               (True, r"VecNormalize \(vecnormalize-64.pkl\)")):
        cfg = load_config("launch/inverted_pendulum_ppo.yaml", [f"policy.normalize_obs={str(normalize).lower()}"])
        model = make_sb3_model(cfg, seed=0)
        folder = tmp_path / f"norm{normalize}"
        folder.mkdir()
        model.save(folder / "model-64.zip")
        if normalize:
            model.get_env().save(str(folder / "vecnormalize-64.pkl"))
        with pytest.raises(ValueError, match=message):
            export_policy(folder / "model-64.zip", tmp_path / "m.onnx", env_id="InvertedPendulum-v5")
