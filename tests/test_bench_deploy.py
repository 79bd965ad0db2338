"""`robotrl bench deploy`: the loop against a UDP robot process, with the bare scheduler beside it."""

import json

from robotrl.cli import main


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
