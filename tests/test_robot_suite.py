"""Every registered robot: env checkers, the `robotrl envs` listing and the `robotrl bench envs` rows."""

import json

import pytest
from envcheck import check_env_apis

import envs
from robotrl.cli import main

IDS = [f"robotrl/{name}" for name in envs.TASKS]


@pytest.mark.parametrize("env_id", IDS)
def test_every_robot_passes_gymnasium_and_sb3_env_checkers(env_id):
    check_env_apis(env_id)


def test_envs_command_lists_each_robot_with_sizes_and_control_rate(capsys):
    assert main(["envs", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["envs"]}
    assert set(IDS) <= set(rows)
    assert (rows["robotrl/CartPole-v0"]["obs_dim"], rows["robotrl/CartPole-v0"]["act_dim"]) == (5, 1)
    assert (rows["robotrl/DiffDrive-v0"]["obs_dim"], rows["robotrl/DiffDrive-v0"]["act_dim"]) == (8, 2)
    assert (rows["robotrl/Quadruped-v0"]["obs_dim"], rows["robotrl/Quadruped-v0"]["act_dim"]) == (48, 12)
    assert rows["robotrl/Quadruped-v0"]["control_hz"] == 50
    assert rows["robotrl/DiffDrive-v0"]["control_hz"] == 20


@pytest.mark.parametrize("flag", ["--num-envs", "--steps", "--repeats"])
def test_bench_envs_refuses_a_count_below_one_naming_it(flag, capsys):
    assert main(["bench", "envs", "--env", "robotrl/CartPole-v0", flag, "0"]) == 1
    assert f"{flag} 0: expected a positive number" in capsys.readouterr().err


def test_bench_envs_json_gives_three_rows_per_robot(capsys):
    assert main(["bench", "envs", "--json", "--num-envs", "4", "--steps", "40", "--repeats", "1",
                 "--env", "robotrl/CartPole-v0", "--env", "robotrl/DiffDrive-v0"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["env"], r["impl"]) for r in rows] == [
        (env_id, impl) for env_id in ("robotrl/CartPole-v0", "robotrl/DiffDrive-v0")
        for impl in ("batched", "gymnasium-sync", "physics-limit")]
    assert all(r["num_envs"] == 4 and r["steps_per_s"] > 0 for r in rows)
    # Each row says how many physics threads it ran on, so a ratio of two rows is read for what it is.
    assert all(r["threads"] >= 1 for r in rows) and {r["threads"] for r in rows if r["impl"] == "gymnasium-sync"} == {1}
