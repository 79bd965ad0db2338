"""`robotrl bench deploy`: the loop against a UDP robot process, with the bare scheduler beside it."""

import json

import numpy as np

from deploy.runner import stalls
from deploy.timing import TickLog
from robotrl.cli import main
from robotrl.tools.bench_deploy import steal_in_stalls


def test_bench_deploy_reports_the_loop_and_the_floor(exported_reacher, capsys):
    assert main(["bench", "deploy", "--policy", str(exported_reacher[1]), "--rate", "500", "--duration", "1",
                 "--rt-priority", "0", "--spin-us", "200", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["rate_hz"] == 500 and r["rt_priority"] is None and r["spin_us"] == 200
    assert r["ticks"] + r["skipped"] == 500 and r["floor"]["ticks"] + r["floor"]["skipped"] == 500
    assert set(r["latency_us"]) == {"p50", "p99", "max"} and set(r["inference_us"]) == {"p50", "p99"}
    assert set(r["lateness_us"]) == {"p50", "p99", "max"} and set(r["floor"]["lateness_us"]) == {"p50", "p99", "max"}
    # Lock-step over loopback: the robot answers commands with observations (some late on a loaded machine).
    assert r["robot"]["received"] >= 0.5 * r["ticks"] and r["robot"]["bad_size"] == 0
    assert 0 < r["inference_us"]["p50"] <= r["latency_us"]["p50"]
    # The same policy and wait without I/O, in the same run; the loop's longest blind stretch; the kernel stamps.
    assert set(r["bare_inference_us"]) == {"p50", "p99"} and r["bare"]["ticks"] + r["bare"]["skipped"] == 500
    assert 0 < r["bare_inference_us"]["p50"] <= r["bare_inference_us"]["p99"]
    assert r["blind_ticks_max"] is not None and r["blind_ticks_max"] >= 0
    assert 0 <= r["floor"]["skipped_run_max"] <= r["floor"]["skipped"]
    assert r["robot"]["kernel_timestamps"] and r["obs_age_us"]["p50"] >= r["latency_us"]["p50"]
    assert r["realtime"]["gc"] == "frozen and disabled" and r["realtime"]["gc_collections"] == 0
    # The host's part: steal and run delay over each loop, and the stalls that saw the steal counter move.
    for name in ("floor", "loop"):
        h = r["host"][name]
        assert h["steal_ms"] is not None and h["steal_ms"] >= 0 and h["run_delay_ms"] >= 0
        assert 0 <= h["stalls_with_steal"] <= h["stalls"] and 0 <= h["quiet_windows_with_steal"] <= h["quiet_windows"]
        assert h["quiet_windows"] > 0


def test_steal_in_stalls_counts_the_stalls_whose_window_saw_the_counter_move():
    # Samples every 2 ms; the host's steal counter steps at 31 ms (accounted after a stall from 20 to 28 ms) and
    # at 90 ms; a stall from 50 to 57 ms saw none.
    t = np.arange(0, 120_000_000, 2_000_000)
    steal = np.where(t >= 31_000_000, 1, 0) + np.where(t >= 90_000_000, 1, 0)
    out = steal_in_stalls((t, steal), [(20_000_000, 28_000_000), (50_000_000, 57_000_000)],
                          quiet=[(0, 7_000_000), (84_000_000, 91_000_000)])
    assert out == {"stalls": 2, "stalls_with_steal": 1, "quiet_windows": 2, "quiet_windows_with_steal": 1}


def test_stalls_are_the_gaps_of_two_or_more_missed_ticks():
    log = TickLog(8, 1)
    log.wake_ns[:6] = np.array([0, 1, 2, 4, 7, 8]) * 1_000_000  # one tick missed at 3, two at 5 and 6
    log.ticks = 6
    assert stalls(log, 1_000_000) == [(4_000_000, 7_000_000)]
    assert stalls(log, 1_000_000, missed=1) == [(2_000_000, 4_000_000), (4_000_000, 7_000_000)]


def test_the_benchs_robot_is_the_task_the_policy_was_trained_on(tmp_path):
    # The UDP robot was started with the env id alone: a policy trained with other env kwargs (a gait clock
    # in its observation, other goals) met a default robot, refused or silently another task.
    import onnx
    from onnx import TensorProto, helper

    from envs.describe import describe_env
    from policies.export import INPUT_NAME, OUTPUT_NAME, set_description
    from robotrl.tools.bench_deploy import peer_command
    from robotrl.tools.udp_robot import make_robot_env

    kwargs = {"goal_radius": [3.0, 3.0]}
    described = describe_env("robotrl/DiffDrive-v0", **kwargs)
    obs_dim, act_dim = described["obs_dim"], described["act_dim"]
    weight = helper.make_tensor("w", TensorProto.FLOAT, [obs_dim, act_dim], [0.01] * (obs_dim * act_dim))
    graph = helper.make_graph([helper.make_node("MatMul", [INPUT_NAME, "w"], [OUTPUT_NAME])], "actor",
                              [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", obs_dim])],
                              [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", act_dim])],
                              [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    set_description(model, {**described, "env_kwargs": kwargs, "algo": "ppo", "train_steps": 0, "source": "test",
                            "quantized": None})
    onnx.save(model, tmp_path / "p.onnx")
    cmd = peer_command(tmp_path / "p.onnx")
    policy = cmd[cmd.index("--policy") + 1] if "--policy" in cmd else None
    env = make_robot_env(None, policy)
    try:
        assert env.unwrapped.task.goal_radius == (3.0, 3.0)
    finally:
        env.close()
