"""Our SAC gradient step against stable-baselines3's, from the same weights, batch and Gaussian noise:
the temperature, critic and actor losses, each network's gradient at its optimizer step, the weights
after it and the Polyak-averaged target critics agree to float tolerance, over consecutive steps (so the
Adam states and the learned temperature are carried alike)."""

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

import envs
from robotrl.agents.sac import Agent
from robotrl.config import EnvConfig, PolicyConfig, RunConfig
from robotrl.core.replay import Transitions
from robotrl.hyper.sac import Hyper
from robotrl.sb3.translate import make_sb3_model

BATCH = 64
OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah-v5


def _config(ent_coef: str | float) -> RunConfig:
    return RunConfig(algo="sac", seed=0, env=EnvConfig(id="HalfCheetah-v5", num_envs=1),
                     policy=PolicyConfig(hidden=(32, 32), activation="relu", normalize_obs=False),
                     hyper=Hyper(batch_size=BATCH, learning_rate=1e-3, ent_coef=ent_coef, ent_coef_init=0.5))


def _record_grads(optimizer: torch.optim.Optimizer, into: list) -> None:
    """Keep a copy of the gradients each time `optimizer` steps (SB3's critic grads are overwritten
    later in its step by the actor loss's backward, so they must be read at that moment)."""
    step = optimizer.step

    def recording_step(*args, **kwargs):
        into.append([p.grad.detach().clone() for group in optimizer.param_groups for p in group["params"]])
        return step(*args, **kwargs)

    optimizer.step = recording_step


def _batch(rng: np.random.Generator) -> Transitions:
    obs = rng.standard_normal((BATCH, OBS_DIM)).astype(np.float32)
    return Transitions(obs=obs, actions=rng.uniform(-1, 1, (BATCH, ACT_DIM)).astype(np.float32),
                       rewards=rng.standard_normal(BATCH).astype(np.float32),
                       next_obs=(obs + 0.1 * rng.standard_normal((BATCH, OBS_DIM))).astype(np.float32),
                       terminated=(rng.random(BATCH) < 0.2).astype(np.float32),
                       discounts=np.full(BATCH, 0.99, np.float32))


@pytest.mark.parametrize("ent_coef", ["auto", 0.2])
def test_sac_step_matches_sb3_losses_gradients_and_weights(ent_coef):
    torch.manual_seed(0)
    cfg = _config(ent_coef)
    env = envs.make_vec(cfg.env.id, 1)
    ours = Agent(cfg, env, torch.device("cpu"))
    model = make_sb3_model(cfg, seed=0)
    model.set_logger(configure(None, []))
    sb3 = model.policy
    # SB3's weights into ours: the module layouts are the same, name for name.
    for mine, theirs in ((ours.actor, sb3.actor), (ours.critic, sb3.critic), (ours.critic_target, sb3.critic_target)):
        params = dict(theirs.named_parameters())
        for name, p in mine.named_parameters():
            p.data.copy_(params[name].data)
        assert {n for n, _ in mine.named_parameters()} == set(params)
    if model.log_ent_coef is not None:
        assert torch.allclose(ours.log_alpha.detach(), model.log_ent_coef.detach()[0])

    grads: dict[str, list] = {"ours": [], "sb3": []}
    for side, opts in (("ours", (ours.actor_optimizer, ours.critic_optimizer, ours.alpha_optimizer)),
                       ("sb3", (sb3.actor.optimizer, sb3.critic.optimizer, model.ent_coef_optimizer))):
        for opt in opts:
            if opt is not None:
                _record_grads(opt, grads[side])

    rng = np.random.default_rng(1)
    noise_queue: list[torch.Tensor] = []

    def rsample(dist, sample_shape=()):  # SB3 draws for s first, then for s'
        return dist.loc + noise_queue.pop(0) * dist.scale

    mp = pytest.MonkeyPatch()
    mp.setattr(torch.distributions.Normal, "rsample", rsample)
    try:
        for _ in range(3):
            t = _batch(rng)
            noise = torch.randn(2, BATCH, ACT_DIM)
            tensors = Transitions(*(torch.as_tensor(a) for a in (t.obs, t.actions, t.rewards, t.next_obs,
                                                                  t.terminated, t.discounts)))
            out = ours.gradient_step(tensors, noise)
            samples = ReplayBufferSamples(tensors.obs, tensors.actions, tensors.next_obs, tensors.terminated[:, None],
                                          tensors.rewards[:, None])
            model.replay_buffer.sample = lambda *args, s=samples, **kwargs: s
            noise_queue[:] = [noise[0], noise[1]]
            model.train(gradient_steps=1, batch_size=BATCH)
            assert not noise_queue
            logged = model.logger.name_to_value
            assert out["losses/qf_loss"].item() == pytest.approx(logged["train/critic_loss"], rel=1e-5)
            assert out["losses/actor_loss"].item() == pytest.approx(logged["train/actor_loss"], rel=1e-5)
            assert out["losses/alpha"].item() == pytest.approx(logged["train/ent_coef"], rel=1e-6)
            if ent_coef == "auto":
                assert out["losses/alpha_loss"].item() == pytest.approx(logged["train/ent_coef_loss"], rel=1e-5)
    finally:
        mp.undo()

    # Both sides step the temperature, then the critics, then the actor: the recordings pair up in order.
    assert len(grads["ours"]) == len(grads["sb3"]) == 3 * (3 if ent_coef == "auto" else 2)
    for k, (a, b) in enumerate(zip(grads["ours"], grads["sb3"], strict=True)):
        assert len(a) == len(b)
        for ga, gb in zip(a, b, strict=True):
            torch.testing.assert_close(ga.reshape(gb.shape), gb, rtol=1e-4, atol=1e-6, msg=f"gradient set {k}")
    for mine, theirs in ((ours.actor, sb3.actor), (ours.critic, sb3.critic), (ours.critic_target, sb3.critic_target)):
        params = dict(theirs.named_parameters())
        for name, p in mine.named_parameters():
            torch.testing.assert_close(p, params[name], rtol=1e-4, atol=1e-6, msg=name)
    if ent_coef == "auto":
        torch.testing.assert_close(ours.log_alpha.detach(), model.log_ent_coef.detach()[0], rtol=1e-5, atol=1e-7)
    env.close()


def test_the_td3_option_becomes_sb3_td3_with_its_delay_and_noises():
    cfg = _config("auto")
    td3 = Hyper(td3=True, policy_delay=3, target_noise=0.3, target_noise_clip=0.4, exploration_noise=0.2)
    cfg = RunConfig(algo="sac", env=cfg.env, policy=cfg.policy, hyper=td3)
    model = make_sb3_model(cfg, seed=0)
    assert type(model).__name__ == "TD3"
    assert (model.policy_delay, model.target_policy_noise, model.target_noise_clip) == (3, 0.3, 0.4)
    assert model.action_noise._sigma.tolist() == [0.2] * ACT_DIM
    model.get_env().close()
