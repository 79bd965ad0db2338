"""MAPPO / IPPO: the networks' agent routing, value normalization, the per-robot rollout, runs end to end."""

import json

import numpy as np
import pytest
import torch
import yaml
from runcheck import assert_same_seed_same_weights, eval_json, train_shipped

from envs.multi_batch import MultiPushBatch
from policies.multi_actor_critic import MultiActorCritic
from robotrl.agents.mappo import Agent, Hyper, MultiCollector, MultiRollout, critic_input
from robotrl.config import load_config
from robotrl.core.episodes import EpisodeStats
from robotrl.train.trainer import Trainer, make_train_env


def test_value_normalizer_uses_the_running_mean_and_std_of_targets():
    policy = MultiActorCritic(4, 6, 2, num_agents=2)
    policy.value_norm.update(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    # mean 2.5, population std sqrt(1.25) = 1.118 (the 1e-4 pseudo-count barely moves them)
    normed = policy.value_norm.normalize(torch.tensor([2.5, 3.618034]))
    np.testing.assert_allclose(normed.numpy(), [0.0, 1.0], atol=1e-3)
    x = torch.tensor([-3.0, 0.5, 7.0])
    np.testing.assert_allclose(policy.value_norm.denormalize(policy.value_norm.normalize(x)).numpy(), x.numpy(),
                               atol=1e-5)


def test_shared_actor_reads_the_one_hot_agent_index():
    torch.manual_seed(0)
    policy = MultiActorCritic(4, 6, 2, num_agents=3)
    obs = torch.randn(5, 4)
    for j in range(3):
        agent = torch.full((5,), j)
        expected = policy.actors[0](torch.cat([obs, torch.eye(3)[agent]], dim=1))
        torch.testing.assert_close(policy.mean(obs, agent), expected)
    assert not torch.allclose(policy.mean(obs, torch.zeros(5, dtype=torch.long)),
                              policy.mean(obs, torch.ones(5, dtype=torch.long)))


def test_separate_actors_route_each_row_to_its_robots_network():
    torch.manual_seed(0)
    policy = MultiActorCritic(4, 6, 2, num_agents=3, shared_actor=False)
    assert len(policy.actors) == 3
    obs, agent = torch.randn(6, 4), torch.tensor([0, 1, 2, 2, 1, 0])
    out = policy.mean(obs, agent)
    for row in range(6):
        torch.testing.assert_close(out[row], policy.actors[int(agent[row])](obs[row]))


def test_exported_robot_actor_is_the_deterministic_env_action_of_that_robot():
    torch.manual_seed(0)
    policy = MultiActorCritic(4, 6, 2, num_agents=2, action_low=[-2.0, -1.0], action_high=[2.0, 1.0])
    policy.normalizer.update(torch.randn(100, 4) * 3 + 1)
    obs = torch.randn(7, 4)
    for j in range(2):
        expected = policy.to_env(policy.deterministic(obs, torch.full((7,), j)))
        torch.testing.assert_close(policy.export_actor(j)(obs), expected)
    with pytest.raises(ValueError, match="agent index 2 out of range"):
        policy.export_actor(2)


@pytest.mark.parametrize("critic", ["central", "local"])
def test_rollout_gives_every_robot_the_team_reward_and_bootstraps_truncation(critic):
    torch.manual_seed(0)
    env = MultiPushBatch(2, n_robots=2, max_episode_steps=3)
    hp = Hyper(n_steps=3, critic=critic)
    critic_dim = env.state_dim if critic == "central" else env.obs_dim
    policy = MultiActorCritic(env.obs_dim, critic_dim, 2, num_agents=2)
    policy.value_norm.update(torch.tensor([0.0, 4.0]))  # so V is not ~0 and the bootstrap shows
    collector = MultiCollector(env, policy, hp, torch.device("cpu"))
    steps = []
    real_step = env.step

    def recording_step(actions):
        out = real_step(actions)
        steps.append(out)
        return out

    env.step = recording_step
    collector.reset(seed=3)
    first_obs, first_state = collector.obs.clone(), collector.state.clone()
    st = MultiRollout(3, 4, env.obs_dim, critic_dim, 2, torch.device("cpu"))
    collector.fill(st, EpisodeStats(2))
    expected_in = critic_input(first_obs, first_state, critic).reshape(4, -1)
    torch.testing.assert_close(st.critic_in[0], expected_in)
    assert st.agent[0].tolist() == [0, 1, 0, 1]  # column e * m + j is robot j of env e
    for t in range(2):
        team = torch.as_tensor(steps[t][2], dtype=torch.float32)
        torch.testing.assert_close(st.rewards[t], team.repeat_interleave(2))
    _, _, reward, _, truncated, info = steps[2]
    assert truncated.all()
    final = critic_input(torch.as_tensor(info["final_obs"]), torch.as_tensor(info["final_state"]), critic)
    bootstrap = hp.gamma * policy.value(final, torch.arange(2).expand(2, -1))
    torch.testing.assert_close(st.rewards[2], (torch.as_tensor(reward, dtype=torch.float32)[:, None]
                                               + bootstrap).reshape(-1))
    assert st.dones[2].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_minibatches_keep_each_robot_transition_whole_and_cover_the_rollout_once():
    # Every stored tensor of transition k holds k, so a minibatch row mixed from two transitions shows.
    st = MultiRollout(3, 4, obs_dim=2, critic_dim=5, act_dim=1, device=torch.device("cpu"))
    k = torch.arange(12.0).reshape(3, 4)
    st.obs[:], st.critic_in[:], st.actions[:] = k[..., None], k[..., None], k[..., None]
    st.agent[:] = k.long()
    st.log_probs[:], st.values[:], st.advantages[:], st.returns[:] = k, k, k, k
    seen = []
    for mb in st.minibatches(3, values=-k, returns=k + 100):
        assert mb.obs.shape == (4, 2) and mb.critic_in.shape == (4, 5)
        for row in mb.critic_in, mb.obs, mb.actions, mb.agent[:, None].float(), mb.log_probs[:, None]:
            assert (row == mb.advantages[:, None]).all()
        assert (mb.values == -mb.advantages).all() and (mb.returns == mb.advantages + 100).all()
        seen += mb.advantages.tolist()
    assert sorted(seen) == list(range(12))
    with pytest.raises(ValueError, match="no stored field"):
        st.flat(rewards=k)


def _multi_config(tmp_path, **sections) -> str:
    data = {"algo": "mappo", "seed": 1,
            "env": {"id": "robotrl/MultiPush-v0", "num_envs": 4, "kwargs": {"n_robots": 2}},
            "train": {"total_steps": 400, "eval_every": 0, "eval_episodes": 2, "final_eval_episodes": 3,
                      "checkpoint_every": 200},
            "mappo": {"n_steps": 50, "batch_size": 200, "n_epochs": 2}}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_mappo_run_writes_the_run_folder_and_robotrl_eval_reports_success(tmp_path, capsys):
    cfg = load_config(_multi_config(tmp_path))
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.steps == 400
    assert (tmp_path / "run" / "checkpoints" / "step_000000200.pt").exists()
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["episodes"] == 3 and ev["success_rate"] is not None and 1 <= ev["length_mean"] <= 200
    out = eval_json(tmp_path / "run", 2, capsys)
    assert out["episodes"] == 2 and out["success_rate"] is not None


def test_same_seed_gives_the_same_mappo_run(tmp_path):
    assert_same_seed_same_weights(load_config(_multi_config(tmp_path, train={"total_steps": 200})), tmp_path)


@pytest.mark.parametrize(("critic", "critic_dim"), [("central", 20), ("local", 14)])
def test_ippo_switch_gives_critics_the_robots_own_observation(tmp_path, critic, critic_dim):
    cfg = load_config(_multi_config(tmp_path, mappo={"critic": critic}, env={"kwargs": {"n_robots": 3}}))
    env = make_train_env(cfg, 4)
    agent = Agent(cfg, env, torch.device("cpu"))
    # N = 3: local obs 10 + 2 * 2 teammates = 14; global state 4 * 3 + 8 = 20
    assert agent.policy.critic_dim == critic_dim and agent.policy.obs_dim == 14
    assert agent.storage.critic_in.shape == (50, 12, critic_dim)


def test_mamujoco_halfcheetah_trains_through_the_same_trainer(tmp_path):
    cfg = load_config(_multi_config(tmp_path, env={"id": "mamujoco/HalfCheetah-2x3", "num_envs": 2, "kwargs": {}},
                                    train={"total_steps": 100, "final_eval_episodes": 1, "checkpoint_every": 400},
                                    mappo={"batch_size": 100}))
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["length_mean"] == 1000 and ev["success_rate"] is None


def test_bad_mappo_values_name_the_key(tmp_path):
    from robotrl.config import ConfigError

    with pytest.raises(ConfigError, match=r"mappo\.critic: expected one of \['central', 'local'\]"):
        load_config(_multi_config(tmp_path, mappo={"critic": "global"}))


@pytest.mark.slow
def test_shipped_multipush_mappo_config_brings_the_box_to_the_goal_in_80_percent(tmp_path):
    result = train_shipped("launch/multipush_mappo.yaml", tmp_path)
    assert result.eval["episodes"] == 100
    assert result.eval["success_rate"] >= 0.8


def test_a_smaller_robots_exported_actor_pads_its_observation_and_sends_its_own_actions():
    # A team of unequal robots (mamujoco Humanoid-9|8) trains on observations and actions padded to the
    # largest robot: the env zero-pads the smaller robot's observation and sends its leading action columns.
    torch.manual_seed(0)
    policy = MultiActorCritic(5, 8, 3, num_agents=2)
    policy.normalizer.update(torch.randn(100, 5) * 2)
    obs = torch.randn(7, 4)  # robot 1 observes 4 values and drives 2 joints
    padded = torch.cat([obs, torch.zeros(7, 1)], dim=1)
    expected = policy.to_env(policy.deterministic(padded, torch.full((7,), 1)))[:, :2]
    torch.testing.assert_close(policy.export_actor(1, obs_size=4, act_size=2)(obs), expected)
    with pytest.raises(ValueError, match="sizes 6/2 do not fit the team's padded 5/3"):
        policy.export_actor(1, obs_size=6, act_size=2)


@pytest.mark.slow  # a MAPPO iteration on Humanoid and two ONNX exports
def test_a_team_of_unequal_robots_exports_files_that_deploy_loads(tmp_path):
    from deploy.policy import OnnxPolicy
    from robotrl.export.team import export_team

    data = {"algo": "mappo", "seed": 0, "env": {"id": "mamujoco/Humanoid-9|8", "num_envs": 2},
            "train": {"total_steps": 64, "eval_every": 0, "final_eval_episodes": 1, "checkpoint_every": 64},
            "mappo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1}}
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(data))
    Trainer(load_config(tmp_path / "team.yaml"), tmp_path / "run", show_progress=False).run()
    report = export_team(tmp_path / "run")
    assert report["parity_max_abs"] < 1e-5
    sizes = []
    for path in report["files"]:
        robot = OnnxPolicy(path)  # refuses a graph whose widths disagree with its metadata
        sizes.append((robot.spec.obs_dim, robot.spec.act_dim))
        assert robot.act(np.zeros(robot.spec.obs_dim, np.float32)).shape == (robot.spec.act_dim,)
    assert [act for _, act in sizes] == [9, 8]
