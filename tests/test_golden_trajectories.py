"""Reacher-v0 and Reach-v0 replay their recorded trajectories bit for bit (tests/golden.py).

The same seed must give the same episode (the same random draws in the same order) and the same float
operations, so the measured figures of both envs (seeds table, SB3 baselines, the arm's success rates)
keep holding. Flags compare exactly; floats within the rounding of another CPU generation
(golden_io.CROSS_CPU_TOLERANCE): bit for bit held only on the CPU that recorded the fixtures.
"""

import json

import pytest
from golden import CASES, FIXTURE, rollout
from golden_io import assert_replays, load_fixture

ADDED_DESCRIBE_KEYS = {"robot"}
"""What a task's describe() may have gained since the recording: the robot block (joint names, limits,
what one action means) that every task over a robot description reports."""


@pytest.fixture(scope="module")
def golden():
    return load_fixture(FIXTURE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_env_replays_its_golden_trajectory_exactly(golden, name):
    now = rollout(CASES[name])
    for key in ("obs", "reward", "terminated", "truncated", "distance", "is_success", "final_obs"):
        assert_replays(now[key], golden[f"{name}/{key}"], f"{name}/{key}")
    then_meta, now_meta = json.loads(str(golden[f"{name}/meta"])), json.loads(str(now["meta"]))
    assert now_meta["spaces"] == then_meta["spaces"]
    then, described = then_meta["describe"], now_meta["describe"]
    assert {k: described[k] for k in then if k in described} == then
    assert set(described) - set(then) <= ADDED_DESCRIBE_KEYS
