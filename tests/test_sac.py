"""SAC (and its TD3 option): truncated episodes bootstrap from their last state, a restored agent continues
exactly as the original would have, and the exported tanh-mean actor equals torch's (that a short run learns,
with its learning-rate-0 control: test_sac_learning.py).
The agent's Adam (the fused kernel called directly) steps and checkpoints exactly as torch.optim.Adam."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

import envs
from robotrl.agents.sac import Agent, FusedAdam
from robotrl.config import EnvConfig, PolicyConfig, RunConfig, from_dict
from robotrl.core.episodes import EpisodeStats
from robotrl.hyper.sac import Hyper


class CountingEnvs:
    """Two envs whose observation is (steps into the episode, env index). Env 0 hits a time limit after 3
    steps (truncated), env 1 falls after 2 (terminated); both restart at once (SAME_STEP autoreset, the
    last observation in infos["final_obs"])."""

    num_envs = 2
    single_observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
    single_action_space = spaces.Box(-2.0, 2.0, (1,), np.float32)
    observation_space = batch_space(single_observation_space, 2)
    action_space = batch_space(single_action_space, 2)

    def __init__(self) -> None:
        self.t = np.zeros(2)
        self.actions: list[np.ndarray] = []

    def _obs(self) -> np.ndarray:
        return np.stack([self.t, np.arange(2)], axis=1).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        self.t[:] = 0
        return self._obs(), {}

    def step(self, actions):
        self.actions.append(np.array(actions))
        self.t += 1
        terminated = np.array([False, self.t[1] >= 2])
        truncated = np.array([self.t[0] >= 3, False])
        done = terminated | truncated
        infos = {}
        if done.any():
            infos = {"final_obs": self._obs(), "_final_obs": done}
            self.t[done] = 0
        return self._obs(), np.ones(2), terminated, truncated, infos

    def close(self) -> None:
        pass


def _cfg(env_id: str, num_envs: int, **hyper) -> RunConfig:
    return RunConfig(algo="sac", seed=2, env=EnvConfig(id=env_id, num_envs=num_envs),
                     policy=PolicyConfig(hidden=(16, 16), activation="relu", normalize_obs=False),
                     hyper=Hyper(**{"batch_size": 16, "steps_per_iteration": 32, **hyper}))


def test_truncation_stores_the_last_state_and_only_termination_stops_the_bootstrap():
    env = CountingEnvs()
    agent = Agent(_cfg("counting", 2, learning_starts=100), env, torch.device("cpu"))
    agent.start(0)
    agent.collect(EpisodeStats(2))  # 16 vector steps, all warm-up: uniform random actions
    r = agent.replay
    # Rows alternate env 0, env 1. Vector step 3 (rows 4, 5): env 0's time limit, env 1 mid-episode.
    assert r.next_obs[4].tolist() == [3, 0] and r.terminated[4] == 0
    assert r.obs[6].tolist() == [0, 0]  # the next row starts the new episode
    # Vector step 2 (rows 2, 3): env 1 falls: its last state is stored and the bootstrap is off.
    assert r.next_obs[3].tolist() == [2, 1] and r.terminated[3] == 1
    assert r.terminated[:32].sum() == 8 and r.discounts[0] == pytest.approx(0.99)
    # The replay keeps [-1, 1] actions; the env got them scaled onto its [-2, 2] bounds.
    assert np.allclose(np.concatenate(env.actions), 2 * r.actions[:32])
    assert agent.gradient_updates == 0


def test_the_observation_normalizer_learns_from_the_warm_up_observations_only():
    cfg = RunConfig(algo="sac", seed=2, env=EnvConfig(id="counting", num_envs=2),
                    policy=PolicyConfig(hidden=(16, 16), activation="relu", normalize_obs=True),
                    hyper=Hyper(batch_size=16, steps_per_iteration=32, learning_starts=20))
    agent = Agent(cfg, CountingEnvs(), torch.device("cpu"))
    agent.start(0)
    for _ in range(2):
        agent.collect(EpisodeStats(2))
    assert agent.gradient_updates == 22  # learning ran on normalized observations past step 20
    norm = agent.actor.normalizer
    # The 10 warm-up vector steps saw t = 0,1,2,0,1,2,0,1,2,0 (env 0) and 0,1,0,1,... (env 1).
    assert norm.count.item() == pytest.approx(20 + 1e-4)
    assert norm.mean.tolist() == pytest.approx([(9 + 5) / 20, 0.5], abs=1e-5)


@pytest.mark.parametrize("td3", [False, True])
def test_a_restored_agent_continues_exactly_like_the_original(td3):
    cfg = _cfg("robotrl/Reacher-v0", 2, learning_starts=32, td3=td3)
    env_a, env_b = envs.make_vec(cfg.env.id, 2), envs.make_vec(cfg.env.id, 2)
    original = Agent(cfg, env_a, torch.device("cpu"))
    original.start(1)
    for _ in range(2):
        original.collect(EpisodeStats(2))
    # A checkpoint is written and read between steps: deep-copy what the replay shares with its arrays.
    state = copy.deepcopy(original.state_dict())
    assert state["gradient_updates"] == 16  # one per vector step once more than 32 env steps were taken
    restored = Agent(cfg, env_b, torch.device("cpu"))
    restored.load_state_dict(state)
    for agent in (original, restored):
        agent.start(7)  # the trainer restarts the episodes in flight, seeded by the step
        for _ in range(2):
            agent.collect(EpisodeStats(2))
    for name in ("actor", "critic", "critic_target", *(("actor_target",) if td3 else ())):
        a, b = getattr(original, name).state_dict(), getattr(restored, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(original.log_alpha, restored.log_alpha)
    assert np.array_equal(original.replay.actions, restored.replay.actions) and original.replay.size == 128
    assert original.gradient_updates == restored.gradient_updates == 16 + 32
    env_a.close()
    env_b.close()


PENDULUM = {
    "algo": "sac", "seed": 0,
    "env": {"id": "InvertedPendulum-v5", "num_envs": 1},
    "policy": {"hidden": [32, 32], "activation": "relu", "normalize_obs": False},
    "train": {"total_steps": 2000, "eval_every": 0, "final_eval_episodes": 5, "checkpoint_every": 2000},
    "sac": {"learning_starts": 300, "batch_size": 32, "learning_rate": 0.001, "steps_per_iteration": 600},
}


def test_exported_sac_actor_is_the_tanh_mean_within_1e_5_and_runs_in_the_sim_loop(tmp_path, capsys):
    from robotrl.cli import main
    from robotrl.export.policy import export_policy
    from robotrl.train.trainer import Trainer

    data = {**PENDULUM, "train": {**PENDULUM["train"], "total_steps": 300, "final_eval_episodes": 1},
            "sac": {**PENDULUM["sac"], "learning_starts": 100}}
    Trainer(from_dict(data, "test_sac"), tmp_path / "run", show_progress=False).run()
    report = export_policy(tmp_path / "run")
    assert report["parity_max_abs"] <= 1e-5 and report["observations_checked"] > 3000
    assert main(["deploy", report["out"], "--backend", "sim", "--rate", "100", "--duration", "0.5",
                 "--out", str(tmp_path / "deploy"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["env_id"] == "InvertedPendulum-v5" and summary["ticks"] > 0


def test_an_unclipped_policy_is_spared_the_edge_cases_that_saturate_a_clip():
    """Without a normalizer's clip the export check skips the +-1e4..1e6 cases (float32 rounding of inputs
    no robot sends) and keeps zeros, 10x copies and 5-std noise; the clipped set adds the rest to the same."""
    from policies.export import edge_observations

    typical = np.random.default_rng(0).uniform(-3.0, 3.0, (100, 4)).astype(np.float32)
    unclipped = edge_observations(typical, np.random.default_rng(1), clipped=False)
    clipped = edge_observations(typical, np.random.default_rng(1))
    assert np.abs(unclipped).max() < 100 and len(unclipped) == 1 + 256 + 256
    assert np.abs(clipped).max() == 1e6 and np.array_equal(clipped[:len(unclipped)], unclipped)


def test_a_resumed_run_keeps_its_replay_and_counts_on(tmp_path, capsys):
    from robotrl.train.trainer import Trainer

    short = {**PENDULUM, "train": {**PENDULUM["train"], "total_steps": 400, "final_eval_episodes": 1,
                                   "checkpoint_every": 200}, "sac": {**PENDULUM["sac"], "learning_starts": 100}}
    Trainer(from_dict(short, "test_sac"), tmp_path / "run", show_progress=False).run()
    first = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=False)["agent"]
    longer = {**short, "train": {**short["train"], "total_steps": 700}}
    Trainer(from_dict(longer, "test_sac"), tmp_path / "run", resume=True, show_progress=False).run()
    # The raised budget moves the schedules back, and the resume says so.
    assert "train.total_steps 400 -> 700" in capsys.readouterr().out
    second = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=False)["agent"]
    assert (first["env_steps"], first["gradient_updates"]) == (400, 300)
    assert (second["env_steps"], second["gradient_updates"]) == (700, 600)
    assert torch.equal(second["replay"]["obs"][:400], first["replay"]["obs"])
    assert not torch.equal(second["generator"], first["generator"])


def test_a_run_checkpointed_on_another_device_resumes_with_its_noise_reseeded(tmp_path):
    """train.device may change on resume: a CUDA generator's state (16 bytes) does not fit a CPU generator
    (and the other way round), so the noise stream restarts from the seed and the step instead of failing."""
    from policies.checkpoint import load_checkpoint, save_checkpoint
    from robotrl.train.trainer import Trainer

    short = {**PENDULUM, "train": {**PENDULUM["train"], "total_steps": 200, "final_eval_episodes": 1,
                                   "checkpoint_every": 200}, "sac": {**PENDULUM["sac"], "learning_starts": 100}}
    Trainer(from_dict(short, "test_sac"), tmp_path / "run", show_progress=False).run()
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    state = load_checkpoint(latest)
    state["agent"]["generator"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state
    save_checkpoint(latest, state)
    longer = {**short, "train": {**short["train"], "total_steps": 300}}
    Trainer(from_dict(longer, "test_sac"), tmp_path / "run", resume=True, show_progress=False).run()
    assert load_checkpoint(latest)["agent"]["env_steps"] == 300


def test_fused_adam_steps_and_checkpoints_exactly_as_torch_adam():
    torch.manual_seed(0)
    # The last layer gets no gradient on odd steps: a parameter without a gradient is skipped, as Adam does.
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3), torch.nn.Linear(3, 2))
    twin = copy.deepcopy(net)
    reference = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    ours = FusedAdam(twin.parameters(), 1e-2)

    def steps(pairs, first: int, n: int) -> None:
        for k in range(first, first + n):
            x = torch.randn(16, 5, generator=torch.Generator().manual_seed(k))
            for model, opt in pairs:
                opt.zero_grad()
                out = model(x) if k % 2 == 0 else model[:3](x)
                out.square().mean().backward()
                opt.step()

    steps([(net, reference), (twin, ours)], 0, 5)
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    state = ours.state_dict()
    assert state["param_groups"] == reference.state_dict()["param_groups"]
    # Either optimizer's checkpoint continues in the other one, and the runs stay equal.
    restored_ref = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    restored_ref.load_state_dict(copy.deepcopy(state))
    restored_ours = FusedAdam(twin.parameters(), 1e-2)
    restored_ours.load_state_dict(copy.deepcopy(reference.state_dict()))
    steps([(net, restored_ref), (twin, restored_ours)], 5, 4)
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="float32"):
        FusedAdam([torch.zeros(2, dtype=torch.float64, requires_grad=True)], 1e-3)
