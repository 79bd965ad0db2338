"""robotrl.train.evaluate: the figures `robotrl eval --json` prints and the trainer logs."""

import numpy as np

from robotrl.train.evaluate import evaluate
from robotrl.train.trainer import eval_metrics


def test_falls_are_counted_and_task_measurements_are_averaged_over_all_steps():
    # Full force to the right: every CartPole balance episode ends in a terminal state (pole down or
    # cart at the end of the rail) well before the 500-step limit.
    ev = evaluate(lambda obs: np.ones((len(obs), 1), dtype=np.float32), "robotrl/CartPole-v0", 6, seed=3)
    assert ev["episodes"] == 6 and ev["terminated"] == 6
    assert ev["length_mean"] < 100 and ev["success_rate"] == 0.0
    assert set(ev["info_means"]) == {"pole_angle", "cart_pos"}
    # Pushed right, the cart moves right and the pole falls back (negative angle) on average.
    assert ev["info_means"]["cart_pos"] > 0 and ev["info_means"]["pole_angle"] < 0


def test_a_policy_that_balances_is_never_terminated():
    # A PD law on the pole angle and the cart keeps the pole up for the whole 500 steps.
    def pd(obs):
        x, sin, xd, thd = obs[:, 0], obs[:, 2], obs[:, 3], obs[:, 4]
        return np.clip(10 * sin + 2 * thd + 0.1 * x + 0.3 * xd, -1, 1)[:, None].astype(np.float32)

    ev = evaluate(pd, "robotrl/CartPole-v0", 4, seed=0)
    assert ev["terminated"] == 0 and ev["length_mean"] == 500 and ev["success_rate"] == 1.0
    assert abs(ev["info_means"]["pole_angle"]) < 0.05


def test_eval_metrics_flatten_the_measurements_into_columns():
    ev = {"episodes": 4, "return_mean": 1.5, "success_rate": None, "terminated": 2,
          "info_means": {"distance": 0.25}, "steps": 100, "seed": 0, "env": "x"}
    assert eval_metrics(ev) == {"eval/episodes": 4, "eval/return_mean": 1.5, "eval/terminated": 2,
                                "eval/info/distance": 0.25}
