"""Locomotion-v0 over a robot description: observation layout, commands, falls, terrain and pushes."""

import re

import mujoco
import numpy as np
import pytest
from envcheck import check_env_apis, lockstep, uniform_actions

import envs
from envs.robots.terrain import Terrain
from envs.tasks.locomotion import _cross, direction_progress, foot_targets
from robotrl.config import load_config
from robotrl.tools.playback import format_playback
from robotrl.train.evaluate import evaluate

ID = "robotrl/Locomotion-v0"
TINY = {"robot": "tiny_quad"}


def test_passes_the_gymnasium_env_checker():
    check_env_apis(ID, sb3=False, **TINY)


def test_observation_layout_matches_hand_computed_values():
    env = envs.make(ID, **TINY, command_vx=0.5, command_vy=-0.2, command_yaw=0.3, stand_still=0.0)
    env.reset(seed=0)
    task = env.unwrapped.task
    sim = task.sim
    # Base turned 90 degrees about x (its y axis points up), moving +x at 1 m/s, spinning 0.5 rad/s.
    sim.qpos[0, 3:7] = (np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0)
    sim.qvel[0, :6] = (1.0, 0.0, 2.0, 0.1, 0.2, 0.5)
    offsets = np.arange(8) * 0.01
    sim.qpos[0, 7:] = np.tile([0.6, -1.2], 4) + offsets
    sim.qvel[0, 6:] = np.arange(8) * 1.0
    task.last_action[0] = np.linspace(-1, 1, 8)
    obs = task.observe()[0]
    assert [name for name, _ in task.obs_fields] == ["gravity_in_base", "base_linear_velocity",
                                                      "base_angular_velocity", "command", "joint_offset",
                                                      "joint_velocity", "last_action"]
    np.testing.assert_allclose(obs[0:3], [0.0, -1.0, 0.0], atol=1e-6)  # gravity along the base's -y
    np.testing.assert_allclose(obs[3:6], [1.0, 2.0, 0.0], atol=1e-6)  # world z is the base's y
    np.testing.assert_allclose(obs[6:9], [0.1, 0.2, 0.5], atol=1e-6)  # free joint: already base frame
    np.testing.assert_allclose(obs[9:12], [0.5, -0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(obs[12:20], offsets, atol=1e-6)
    np.testing.assert_allclose(obs[20:28], 0.05 * np.arange(8), atol=1e-6)
    np.testing.assert_allclose(obs[28:36], np.linspace(-1, 1, 8), atol=1e-6)
    env.close()


def test_zero_action_stands_and_the_velocity_error_skips_each_commands_first_second():
    env = envs.make(ID, **TINY, command_vx=0.4, command_vy=0.0, command_yaw=0.0, stand_still=0.0)
    env.reset(seed=1)
    errors, measured = [], []
    for _ in range(100):
        obs, reward, terminated, _, info = env.step(np.zeros(8, np.float32))
        assert not terminated and reward >= 0.0
        errors.append(info["velocity_error"])
        measured.append(info["_velocity_error"])
    assert measured == [0.0] * 50 + [1.0] * 50  # 50 steps = 1 s at 50 Hz
    assert errors[60] == pytest.approx(0.4, abs=0.05)  # standing still misses 0.4 m/s
    assert obs[2] == pytest.approx(-1.0, abs=0.01)
    env.close()


def test_commands_are_redrawn_every_5_s_with_a_tenth_standing_still():
    env = envs.make_vec(ID, 64, **TINY)
    env.reset(seed=0)
    task = env.task
    seen = [task.command.copy()]
    for step in range(1, 501):
        env.step(np.zeros((64, 8), np.float32))
        if step % 250 == 0:
            seen.append(task.command.copy())
    commands = np.concatenate(seen)
    zero = np.all(commands == 0.0, axis=1)
    assert 0.04 < zero.mean() < 0.18  # 10% of 192 draws
    moving = commands[~zero]
    assert moving[:, 0].min() >= -1.0 and moving[:, 0].max() <= 1.5 and moving[:, 0].max() > 1.0
    assert np.abs(moving[:, 1]).max() <= 0.5 and np.abs(moving[:, 2]).max() <= 1.0
    assert not np.allclose(seen[0], seen[1])  # a new command at 5 s
    env.close()


def test_a_tilted_base_ends_the_episode():
    env = envs.make(ID, **TINY)
    env.reset(seed=0)
    sim = env.unwrapped.task.sim
    sim.qpos[0, 3:7] = (np.cos(0.6), np.sin(0.6), 0.0, 0.0)  # 69 degrees of roll, past max_tilt 1 rad
    _, _, terminated, _, _ = env.step(np.zeros(8, np.float32))
    assert terminated
    env.close()


def test_torque_mode_applies_effort_times_action_cut_by_the_motor_speed_envelope():
    env = envs.make(ID, **TINY, action_mode="torque")
    env.reset(seed=0)
    task = env.unwrapped.task
    task.sim.qvel[0, 6:] = np.tile([20.0, -15.0], 4)  # hips driven at 20 of 25 rad/s, knees braking
    task.frame_skip = 1
    task.apply_action(np.full((1, 8), 0.25))  # 0.25 x 8 N m = 2 N m asked of every joint
    task.advance()
    force = env.unwrapped.sim.bind("actuator_force")[0]
    # hip: 8 x (1 - 20/25) = 1.6 N m left at that speed; knee: braking torque keeps the full limit
    np.testing.assert_allclose(force, np.tile([1.6, 2.0], 4), rtol=1e-9)
    env.close()


def test_the_written_out_cross_product_is_numpys_bit_for_bit():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 3)) * 10.0 ** rng.uniform(-6, 6, size=(64, 3))
    b = rng.normal(size=(64, 3))
    np.testing.assert_array_equal(_cross(a, b), np.cross(a, b))
    np.testing.assert_array_equal(_cross(b, a), np.cross(b, a))


def test_options_set_to_none_draw_nothing_so_the_command_is_the_seeded_streams_first_draw_for_the_episode():
    off = {"spawn_yaw": None, "init_noise_joints": None, "stand_still": None, "push_interval": None,
           "command_period": None}
    env = envs.make(ID, **TINY, **off)
    env.reset(seed=3)
    task = env.unwrapped.task
    first = np.random.default_rng(3).uniform([-1.0, -0.5, -1.0], [1.5, 0.5, 1.0])  # the default ranges
    np.testing.assert_array_equal(task.command[0], first)
    np.testing.assert_array_equal(task.sim.qpos[0, 3:7], [1.0, 0.0, 0.0, 0.0])  # facing +x
    np.testing.assert_array_equal(task.sim.qpos[0, 7:], np.tile([0.6, -1.2], 4))  # the exact default pose
    for _ in range(300):  # 6 s: past the 5 s after which a command is redrawn by default
        env.step(np.zeros(8, np.float32))
    np.testing.assert_array_equal(task.command[0], first)
    env.close()
    with pytest.raises(ValueError, match=r"Locomotion push_velocity/push_interval: .* \(pushes need an interval\)"):
        envs.make(ID, **TINY, push_velocity=0.5, push_interval=None)


def test_upright_and_alive_terms_sum_per_step_and_a_low_base_falls_under_fall_height():
    weights = {"tracking_lin_vel": 0.0, "tracking_ang_vel": 0.0, "lin_vel_z": 0.0, "ang_vel_xy": 0.0,
               "orientation": 0.0, "torques": 0.0, "dof_acc": 0.0, "action_rate": 0.0, "feet_air_time": 0.0,
               "upright": 0.5, "alive": 0.2}
    ends = {}
    for fall_height in (None, 0.15):
        env = envs.make(ID, **TINY, weights=weights, reward_dt=False, only_positive_rewards=False,
                        fall_on_base_contact=False, fall_height=fall_height)
        env.reset(seed=0)
        task = env.unwrapped.task
        _, reward, terminated, _, _ = env.step(np.zeros(8, np.float32))
        assert not terminated
        assert task.terms["upright"][0] == pytest.approx(1.0, abs=1e-3)  # cos(tilt) of a standing base
        assert reward == 0.5 * task.terms["upright"][0] + 0.2  # per step: not times the 0.02 s period
        task.sim.qpos[0, 2] = 0.1  # the base (0.22 m standing) lowered onto its folded legs, level
        task.sim.qpos[0, 7:] = np.tile([1.5, -2.5], 4)
        _, _, ends[fall_height], _, _ = env.step(np.zeros(8, np.float32))
        env.close()
    assert ends == {None: False, 0.15: True}  # a base on the ground is no fall without fall_height


def test_the_quadruped_robot_runs_its_position_servos_in_both_action_modes():
    env = envs.make(ID, robot="quadruped", action_mode="torque")
    env.reset(seed=0)
    env.step(np.full(12, 0.1, np.float32))
    task = env.unwrapped.task
    np.testing.assert_allclose(env.unwrapped.sim.bind("actuator_force")[0], 2.5, rtol=1e-6)  # 0.1 x 25 N m
    np.testing.assert_array_equal(task.torque[0], env.unwrapped.sim.bind("actuator_force")[0])
    assert task.describe()["robot"]["velocity_limit"] is None
    env.close()
    env = envs.make(ID, robot="quadruped")
    env.reset(seed=0)
    for _ in range(50):
        obs, _, terminated, _, _ = env.step(np.zeros(12, np.float32))
        assert not terminated
    assert np.abs(obs[12:24]).max() < 0.15  # the servos hold the default pose (noise of 0.1 rad at the start)
    env.close()


@pytest.mark.parametrize("extra", [{}, {"push_velocity": 0.5, "push_interval": [0.2, 0.4]},
                                   {"terrain": {"type": "rough", "roughness": 0.03, "size": 8.0}},
                                   {"gait": {"period": 0.5, "offsets": [0.0, 0.5, 0.5, 0.0]},
                                    "weights": {"gait_contact": 0.5}},
                                   # the shipped legged configs' terms, foot_placement reading foot positions
                                   {"gait": {"period": 0.5, "offsets": [0.0, 0.5, 0.5, 0.0]},
                                    "weights": {"gait_contact": 1.0, "foot_placement": -10.0}}])
def test_batched_env_matches_sync_vector_env_step_by_step(extra):
    for ours, ref in lockstep(ID, 3, 4, 170, uniform_actions(8), obs_atol=1e-5, reward_atol=1e-7,
                              max_episode_steps=80, **TINY, **extra):
        np.testing.assert_array_equal(ours[2] | ours[3], ref[2] | ref[3])


TROT = {"period": 0.5, "offsets": [0.0, 0.5, 0.5, 0.0]}


def test_the_gait_clock_is_appended_to_the_observation_and_advances_with_the_control_period():
    env = envs.make(ID, **TINY, gait=TROT)
    obs, _ = env.reset(seed=0)
    task = env.unwrapped.task
    assert task.obs_fields[-1] == ("gait_clock", 2) and obs.shape == (38,)
    info = task.describe()
    assert info["obs_units"][-1][0] == "gait_clock"
    assert info["robot"]["env_kwargs"]["gait"] == {**TROT, "swing": 0.5}  # what deploy rebuilds the env with
    task.phase[0] = 0.25
    np.testing.assert_allclose(task.observe()[0, 36:], [1.0, 0.0], atol=1e-6)  # sin, cos of pi / 2
    obs, *_ = env.step(np.zeros(8, np.float32))
    assert task.phase[0] == pytest.approx(0.25 + 0.02 / 0.5)  # one 50 Hz step of a 0.5 s cycle
    angle = 2 * np.pi * task.phase[0]
    np.testing.assert_allclose(obs[36:], [np.sin(angle), np.cos(angle)], atol=1e-6)
    phases = [envs.make(ID, **TINY, gait=TROT).reset(seed=s)[0][36:] for s in (1, 1, 2)]
    np.testing.assert_array_equal(phases[0], phases[1])  # a seeded random start
    assert not np.allclose(phases[0], phases[2])
    env.close()


def test_the_gait_reward_scores_each_feet_contact_against_the_schedule():
    # All four feet swing in the first half of the cycle and stand in the second: a robot standing on
    # its four feet mismatches every foot in the first half (-1) and matches every foot in the second (+1).
    gait = {"period": 1.0, "offsets": [0.0] * 4, "swing": 0.5}
    env = envs.make(ID, **TINY, gait=gait, weights={"gait_contact": 1.0}, stand_still=1.0)
    env.reset(seed=0)
    task = env.unwrapped.task
    for _ in range(20):  # settle onto the feet
        env.step(np.zeros(8, np.float32))
    contact = task.sensordata[0, task.foot_sensors] > 1.0
    assert contact.all()
    task.phase[0] = 0.1
    env.step(np.zeros(8, np.float32))
    assert task.terms["gait_contact"][0] == -1.0
    task.phase[0] = 0.6
    env.step(np.zeros(8, np.float32))
    assert task.terms["gait_contact"][0] == 1.0
    # The trot keeps two feet in the air at every phase: standing scores 0.
    trot = envs.make(ID, **TINY, gait=TROT)
    trot.reset(seed=0)
    for step in range(40):
        trot.step(np.zeros(8, np.float32))
        assert step < 20 or trot.unwrapped.task.terms["gait_contact"][0] == 0.0
    env.close()
    trot.close()


def test_direction_progress_is_the_velocity_along_the_command_over_its_speed():
    command = np.array([[-1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.6, 0.8], [0.6, 0.8], [0.05, 0.0], [1.0, 0.0]])
    velocity = np.array([[-0.2, 0.3], [0.5, 0.0], [0.1, 0.25], [0.3, 0.4], [3.0, 4.0], [0.05, 0.0], [-2.0, 0.0]])
    # -0.2 m/s against -1: 0.2 of the way; 0.5 forward against -1: -0.5; 0.25 of 0.5 sideways: 0.5;
    # half of (0.6, 0.8); five times it, cut to 1; a command under 0.1 m/s scores 0; -2 against 1 cut to -1.
    np.testing.assert_allclose(direction_progress(command, velocity), [0.2, -0.5, 0.5, 0.5, 1.0, 0.0, -1.0])


def test_foot_targets_move_each_foot_half_a_stride_around_its_stance_along_its_commanded_velocity():
    stance = np.array([[0.2, -0.1], [-0.2, 0.1]])
    # 1 m/s forward, a 0.25 s stance: a 0.25 m stride. Phase 0 starts the swing half a stride behind;
    # phase 0.75 is mid-stance, under the hip.
    np.testing.assert_allclose(foot_targets(np.array([[1.0, 0.0, 0.0]]), stance, np.array([[0.0, 0.75]]), 0.5, 0.5),
                               [[[0.075, -0.1], [-0.2, 0.1]]])
    # Turning at 2 rad/s: the second foot, at (-0.2, 0.1), moves at (-0.2, -0.4) m/s; at phase 0.5 (the end of
    # its swing) it is half a 0.25 s stance ahead: (-0.025, -0.05) from its stance. The first is mid-swing.
    np.testing.assert_allclose(foot_targets(np.array([[0.0, 0.0, 2.0]]), stance, np.array([[0.25, 0.5]]), 0.5, 0.5),
                               [[[0.2, -0.1], [-0.225, 0.05]]])
    # Backward and sideways mirror it: -1 m/s at phase 0 starts the swing half a stride ahead.
    np.testing.assert_allclose(foot_targets(np.array([[-1.0, 0.5, 0.0]]), stance, np.array([[0.0, 0.0]]), 0.5, 0.5),
                               [[[0.325, -0.1625], [-0.075, 0.0375]]])


def test_foot_positions_are_in_the_base_frame_and_the_stance_is_the_default_pose():
    env = envs.make(ID, **TINY, gait=TROT, weights={"foot_placement": -1.0})
    env.reset(seed=0)
    task = env.unwrapped.task
    # tiny_quad's hips at (+-0.12, +-0.1); thigh and calf 0.12 m at 0.6 and 0.6 - 1.2 rad: the foot under the hip.
    np.testing.assert_allclose(task.stance, [[0.12, 0.1], [0.12, -0.1], [-0.12, 0.1], [-0.12, -0.1]], atol=1e-9)
    task.sim.qpos[0, :7] = (1.0, 2.0, 0.3, np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4))  # turned 90 degrees
    task.sim.qpos[0, task.drive.qpos_index] = task.drive.default_pose
    task.sim.forward()
    np.testing.assert_allclose(task.foot_positions()[0], task.stance, atol=1e-9)
    env.close()
    with pytest.raises(ValueError, match=re.escape("weights.foot_placement: needs a `gait`")):
        envs.make(ID, **TINY, weights={"foot_placement": -1.0})


def test_the_direction_term_is_off_by_default_and_joins_the_reward_with_its_weight():
    rewards = []
    for weights in ({}, {"tracking_direction": 2.0}):
        env = envs.make(ID, **TINY, command_vx=-0.5, command_vy=0.0, command_yaw=0.0, stand_still=0.0,
                        only_positive_rewards=False, weights=weights)
        env.reset(seed=3)
        task = env.unwrapped.task
        env.step(np.zeros(8, np.float32))
        task.sim.qpos[0, 3:7] = (1.0, 0.0, 0.0, 0.0)  # the base level, facing world x,
        task.sim.qvel[0, :3] = (-0.25, 0.0, 0.0)  # moving back at 0.25 m/s
        result = task.evaluate(np.zeros((1, 8)))
        assert task.terms["tracking_direction"][0] == pytest.approx(0.5, abs=1e-6)  # -0.25 of -0.5 m/s
        rewards.append(result.reward[0])
        env.close()
    assert task.weights["tracking_direction"] == 2.0
    assert rewards[1] - rewards[0] == pytest.approx(2.0 * 0.5 * 0.02, abs=1e-9)  # weight x term x 20 ms


@pytest.mark.parametrize("kwargs, message", [
    ({"gait": {"period": 0.5, "offsets": [0.0, 0.5]}}, "gait.offsets: expected 4 phases"),
    ({"gait": {"period": 0.0, "offsets": [0.0] * 4}}, "expected period > 0"),
    ({"gait": {"offsets": [0.0] * 4}}, "Locomotion gait: expected {period"),
    ({"weights": {"gait_contact": 1.0}}, "weights.gait_contact: needs a `gait`"),
])
def test_a_wrong_gait_names_the_key(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        envs.make(ID, **TINY, **kwargs)


def test_pushes_change_the_base_velocity_the_same_way_for_the_same_seed():
    def run(seed):
        env = envs.make_vec(ID, 2, **TINY, push_velocity=0.5, push_interval=[0.02, 0.04])  # every 1-2 steps
        env.reset(seed=seed)
        velocities = [env.task.sim.qvel[:, :2].copy()]
        for _ in range(6):
            env.task.apply_action(np.zeros((2, 8)))  # pushes land here, before the physics
            velocities.append(env.task.sim.qvel[:, :2].copy())
        env.close()
        return np.array(velocities)

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    kicks = np.linalg.norm(np.diff(a, axis=0), axis=2)
    pushed = kicks > 0
    assert 3 * 2 <= pushed.sum() <= 6 * 2 and kicks.max() <= 0.5 + 1e-9  # at most 0.5 m/s per push


def test_terrain_heights_are_seeded_and_bounded():
    rough = Terrain.from_kwargs({"type": "rough", "roughness": 0.05, "seed": 2})
    same = Terrain.from_kwargs({"type": "rough", "roughness": 0.05, "seed": 2})
    other = Terrain.from_kwargs({"type": "rough", "roughness": 0.05, "seed": 3})
    h = rough.heights()
    np.testing.assert_array_equal(h, same.heights())
    assert not np.array_equal(h, other.heights())
    assert h.min() >= 0.0 and h.max() <= 0.05 and h.max() > 0.045
    slope = Terrain.from_kwargs({"type": "slope", "slope": 0.1, "size": 4.0}).heights()
    assert slope.max() == pytest.approx(np.tan(0.1) * 2.0)  # the pyramid's top, 2 m from each edge
    assert Terrain.from_kwargs({"type": "flat"}) is None
    with pytest.raises(ValueError, match=r"Locomotion terrain.kind: unknown key"):
        Terrain.from_kwargs({"kind": "rough"})


def test_terrain_goes_over_a_floor_the_robot_file_already_has():
    env = envs.make(ID, robot="go12", terrain={"type": "rough", "roughness": 0.04, "size": 4.0})
    env.reset(seed=0)
    model = env.unwrapped.sim.model
    ground = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in range(model.ngeom)
              if model.geom_bodyid[g] == 0}
    assert {"floor", "terrain"} <= ground and "terrain_floor" not in ground  # go12.xml has its own floor
    for _ in range(25):
        _, _, terminated, _, _ = env.step(np.zeros(12, np.float32))
        assert not terminated  # standing on 4 cm bumps
    env.close()


def test_the_curriculum_moves_a_robot_up_after_walking_and_down_after_a_fall():
    env = envs.make_vec(ID, 2, **TINY, terrain={"type": "rough", "curriculum": True, "levels": 4, "size": 8.0})
    env.reset(seed=0)
    task = env.task
    heights = task.terrain.heights
    assert heights[:, :20].max() <= 0.04 / 4 + 1e-9 and heights[:, -20:].max() > 0.03  # harder along x
    task.terrain.level[:] = 1
    task.walked[:] = (1.5, 0.0)
    task.fell[:] = (False, True)
    env._reset_ids(np.arange(2))
    np.testing.assert_array_equal(task.terrain.level, [2, 0])
    assert task.spawn_xy[0, 0] == pytest.approx(-4.0 + 2.0 * 2.5)  # the middle of band 2
    env.close()


def test_the_shipped_flat_config_trains_with_a_trot_clock():
    kwargs = load_config("launch/legged_flat_ppo.yaml").env.kwargs
    env = envs.make(ID, **kwargs)
    task = env.unwrapped.task
    assert task.obs_fields[-1] == ("gait_clock", 2) and task.weights["gait_contact"] > 0
    assert task.weights["foot_placement"] < 0  # the Raibert foot targets: what taught backward and sideways
    feet = task.robot.legged.feet
    offset = dict(zip(feet, task.gait.offsets, strict=True))
    # A trot: each diagonal pair in phase, the two pairs half a cycle apart.
    assert offset["FR_foot"] == offset["RL_foot"] and offset["FL_foot"] == offset["RR_foot"]
    assert abs(offset["FR_foot"] - offset["FL_foot"]) == 0.5
    env.close()


def test_evaluation_reports_falls_and_the_velocity_error():
    # Zero actions hold the default pose: no fall in 20 s. With a tilt limit of a millionth of a radian, the
    # first step's wobble is a fall in every episode; evaluation counts them and `robotrl eval` prints them.
    def zero(obs):
        return np.zeros((len(obs), 8), np.float32)

    kwargs = {**TINY, "command_vx": 0.4, "command_vy": 0.0, "command_yaw": 0.0, "stand_still": 0.0}
    standing = evaluate(zero, ID, 2, seed=0, env_kwargs=kwargs)
    assert standing["terminated"] == 0 and standing["length_mean"] == 1000
    assert standing["info_means"]["velocity_error"] == pytest.approx(0.4, abs=0.05)  # it does not walk
    fallen = evaluate(zero, ID, 3, seed=0, env_kwargs={**kwargs, "max_tilt": 1e-6})
    assert fallen["terminated"] == 3 and fallen["length_mean"] < 5
    assert "3 ended by termination (a fall, for a legged robot)" in format_playback(fallen, ID, [])
    uncounted = {k: v for k, v in fallen.items() if k != "terminated"}  # a video's result counts no falls
    assert "termination" not in format_playback(uncounted, ID, [])
    error = standing["info_means"]["velocity_error"]
    assert "\nmeasured: forward_velocity " in format_playback(standing, ID, [])
    assert f"velocity_error {error:.3f}" in format_playback(standing, ID, [])
