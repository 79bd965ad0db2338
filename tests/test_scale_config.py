"""The scale section of a run config, and the scaling model's arithmetic (no Ray needed)."""

import pytest

from robotrl.config import ConfigError, load_config
from robotrl.scale.model import ScalingModel


def test_scale_is_off_by_default_and_checked(tiny_config):
    cfg = load_config(tiny_config())
    assert cfg.scale.backend == "local"
    assert cfg.to_dict()["scale"]["backend"] == "local"
    with pytest.raises(ConfigError, match=r"scale\.backend: expected one of \['local', 'ray'\], got 'spark'"):
        load_config(tiny_config(scale={"backend": "spark"}))
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        load_config(tiny_config(scale={"backend": "ray", "workers": 0}))
    with pytest.raises(ConfigError, match=r"scale\.adress: unknown key"):
        load_config(tiny_config(scale={"backend": "ray", "adress": "auto"}))


def test_scaling_model_arithmetic():
    # 1000 steps per worker in 0.1 s; 0.01 s broadcast, 0.01 s overhead; 10 µs of learner per step.
    m = ScalingModel(steps_per_worker=1000, rollout_s=0.1, broadcast_s=0.01, overhead_s=0.01,
                     learner_s_per_step=1e-5)
    assert m.per_worker_steps_per_s() == pytest.approx(10_000)
    assert m.iteration_s(1) == pytest.approx(0.13)          # 0.12 fixed + 1000 * 1e-5
    assert m.iteration_s(8) == pytest.approx(0.20)          # 0.12 + 8000 * 1e-5
    assert m.steps_per_s(8) == pytest.approx(8000 / 0.20)
    assert m.speedup(8) == pytest.approx((8000 / 0.20) / (1000 / 0.13))
    assert m.bottleneck(8) == "rollout workers"             # 0.1 s against 0.08 s of learner
    assert m.bottleneck(32) == "learner (assemble + update)"
    # The learner caps throughput at 1 / 1e-5 = 100k steps/s however many workers there are.
    assert m.steps_per_s(10**6) == pytest.approx(100_000, rel=1e-3)
