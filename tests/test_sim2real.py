"""Sim-to-real options: ranges respected, repeatable by seed, delay delays, noise and rates as set."""

import numpy as np
import pytest
from envcheck import assert_same_episode_ends, lockstep, uniform_actions

import envs

RANDOMIZE = {"mass_scale": [0.5, 1.5], "friction_scale": [0.7, 1.3], "actuator_gain_scale": [0.8, 1.2],
             "damping_scale": [0.5, 2.0]}


def test_randomized_model_fields_stay_in_range_and_scale_the_nominal_values():
    env = envs.make_vec("robotrl/DiffDrive-v0", 8, **RANDOMIZE)
    env.reset(seed=0)
    model, batch = env.sim.model, env.sim.batch
    for option, field in [("mass_scale", "body_mass"), ("damping_scale", "dof_damping")]:
        scale = env.perturb.scales[option]
        low, high = RANDOMIZE[option]
        assert np.all((scale >= low) & (scale <= high)) and scale.std() > 0.05
        np.testing.assert_allclose(batch.expanded(field), getattr(model, field) * scale)
    friction = batch.expanded("geom_friction")[:, :, 0]
    np.testing.assert_allclose(friction, model.geom_friction[:, 0] * env.perturb.scales["friction_scale"])
    gain = batch.expanded("actuator_gainprm")[:, :, 0]
    np.testing.assert_allclose(gain, model.actuator_gainprm[:, 0] * env.perturb.scales["actuator_gain_scale"])
    # A velocity servo's feedback -kv scales with its gain kv, or the servo would be unbalanced.
    np.testing.assert_allclose(batch.expanded("actuator_biasprm")[:, :, 2], -gain)
    env.close()


def test_same_seed_same_randomization_new_episode_new_draw():
    a = envs.make_vec("robotrl/CartPole-v0", 4, **RANDOMIZE, action_delay=[0, 3])
    b = envs.make_vec("robotrl/CartPole-v0", 4, **RANDOMIZE, action_delay=[0, 3])
    a.reset(seed=7)
    b.reset(seed=7)
    for option in RANDOMIZE:
        np.testing.assert_array_equal(a.perturb.scales[option], b.perturb.scales[option])
    np.testing.assert_array_equal(a.perturb.delay, b.perturb.delay)
    first = a.perturb.scales["mass_scale"].copy()
    a.reset(seed=8)
    assert not np.allclose(first, a.perturb.scales["mass_scale"])


def test_heavier_cart_accelerates_less_under_the_same_push():
    env = envs.make_vec("robotrl/CartPole-v0", 2, mass_scale=[0.5, 2.0])
    env.reset(seed=1)
    for _ in range(5):
        obs, *_ = env.step(np.ones((2, 1), np.float32))
    cart_mass = env.sim.batch.expanded("body_mass")[:, 1]
    heavier = int(np.argmax(cart_mass))
    assert cart_mass[heavier] > cart_mass[1 - heavier]
    assert obs[heavier, 3] < obs[1 - heavier, 3]
    env.close()


@pytest.mark.parametrize("delay", [1, 3])
def test_action_delay_applies_each_action_k_policy_steps_later(delay):
    env = envs.make("robotrl/CartPole-v0", action_delay=delay)
    env.reset(seed=0)
    ctrl = env.unwrapped.sim.ctrl
    applied = []
    for t in range(6):
        env.step(np.array([0.1 * (t + 1)], np.float32))
        applied.append(float(ctrl[0, 0]))
    expected = [0.0] * delay + [0.1 * (t + 1) for t in range(6 - delay)]
    np.testing.assert_allclose(applied, expected, atol=1e-12)
    env.close()


def test_observation_noise_has_the_configured_std_and_the_clean_mean():
    clean = envs.make_vec("robotrl/CartPole-v0", 256)
    noisy = envs.make_vec("robotrl/CartPole-v0", 256, obs_noise=0.05)
    diff = noisy.reset(seed=0)[0] - clean.reset(seed=0)[0]
    assert diff.std() == pytest.approx(0.05, rel=0.1)
    assert abs(diff.mean()) < 0.01


def test_initial_state_noise_widens_the_initial_states():
    narrow = envs.make_vec("robotrl/CartPole-v0", 256).reset(seed=0)[0]
    wide = envs.make_vec("robotrl/CartPole-v0", 256, init_noise=0.5).reset(seed=0)[0]
    # Cart position: uniform +-0.05 alone, plus uniform +-0.5 with the option.
    assert narrow[:, 0].std() < 0.04
    assert wide[:, 0].std() == pytest.approx(np.sqrt(0.05**2 / 3 + 0.5**2 / 3), rel=0.15)


def test_decimation_and_timestep_set_the_control_rate():
    env = envs.make("robotrl/CartPole-v0", timestep=0.005, frame_skip=8)
    assert env.unwrapped.task.control_dt == pytest.approx(0.04)
    assert env.metadata["render_fps"] == 25
    env.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"mass_scale": [1.5, 0.5]}, "mass_scale: expected 0 < low <= high"),
    ({"action_delay": -1}, "action_delay: expected k >= 0"),
    ({"frame_skip": 0}, "frame_skip: expected an integer >= 1"),
])
def test_bad_options_are_one_line_errors_naming_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        envs.make("robotrl/CartPole-v0", **kwargs)


def test_batched_env_with_every_option_matches_sync_vector_env():
    kwargs = {**RANDOMIZE, "obs_noise": 0.01, "action_delay": [0, 2], "init_noise": 0.05}
    n = 3
    dones = 0
    for ours, ref in lockstep("robotrl/CartPole-v0", n, 5, 400, uniform_actions(1), obs_atol=1e-5,
                              reward_atol=1e-8, action_seed=1, **kwargs):
        dones += len(assert_same_episode_ends(ours, ref, obs_atol=1e-5))
    assert dones >= 2 * n
