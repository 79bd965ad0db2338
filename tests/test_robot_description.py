"""Robot descriptions: parsing, pattern resolution, and one clear line for each kind of mistake."""

from pathlib import Path

import pytest
import yaml

from envs.robots import RobotError, load_robot
from envs.robots.check import check_robot
from robotrl.cli import main

ROBOTS = Path(__file__).resolve().parents[1] / "envs" / "robots"
QUAD = ROBOTS / "tiny_quad" / "robot.yaml"
ARM = ROBOTS / "tiny_arm" / "robot.yaml"
SERVO_QUAD = ROBOTS / "quadruped" / "robot.yaml"


def variant(tmp_path: Path, base: Path, **changes) -> Path:
    """A copy of a test robot's description with some keys changed (None deletes the key)."""
    raw = yaml.safe_load(base.read_text())
    raw["mjcf"] = str(base.parent / raw["mjcf"])
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_patterns_resolve_per_joint_in_action_order_first_match_wins():
    robot = load_robot(QUAD)
    assert robot.joints == ("fl_hip", "fl_knee", "fr_hip", "fr_knee", "hl_hip", "hl_knee", "hr_hip", "hr_knee")
    assert robot.default_pose == (0.6, -1.2) * 4
    assert robot.velocity_limit == (25.0, 20.0) * 4  # ".*_knee" comes before ".*" in the file
    assert robot.effort_limit == (8.0,) * 8  # one number: every joint
    assert robot.decimation == 4
    assert robot.legged.feet == ("fl_foot", "fr_foot", "hl_foot", "hr_foot")


def test_listed_joints_set_the_action_order(tmp_path):
    robot = load_robot(variant(tmp_path, ARM, joints=["elbow", "yaw", "shoulder"]))
    assert robot.joints == ("elbow", "yaw", "shoulder")
    assert robot.default_pose == (1.0, 0.0, -0.5)
    assert robot.actuators == ("elbow", "yaw", "shoulder")


def test_a_wrong_joint_name_names_the_file_and_key(tmp_path):
    path = variant(tmp_path, ARM, joints=["yaw", "shouldr", "elbow"])
    with pytest.raises(RobotError, match=rf"^{path}: joints\[1\]: 'shouldr' is not a joint of tiny_arm.xml"):
        load_robot(path)


def test_a_joint_no_pattern_matches_is_an_error(tmp_path):
    path = variant(tmp_path, QUAD, default_pose={".*_hip": 0.6})
    with pytest.raises(RobotError, match=rf"^{path}: default_pose: no key matches joint 'fl_knee'"):
        load_robot(path)


def test_a_default_pose_outside_the_joint_limits_is_an_error(tmp_path):
    path = variant(tmp_path, QUAD, default_pose={".*_hip": 0.6, ".*_knee": 0.3})
    with pytest.raises(RobotError, match=rf"^{path}: default_pose: fl_knee = 0.3 is outside the joint's limits "
                                         r"\[-2.5, 0\]"):
        load_robot(path)


def test_an_effort_limit_that_differs_from_the_actuator_is_an_error(tmp_path):
    path = variant(tmp_path, QUAD, effort_limit={".*_knee": 12.0, ".*": 8.0})
    with pytest.raises(RobotError, match=rf"^{path}: effort_limit: fl_knee = 12 N m, but actuator 'fl_knee'"):
        load_robot(path)


def test_unknown_and_missing_keys_and_bad_values(tmp_path):
    with pytest.raises(RobotError, match=r"robot.yaml: gains: unknown key"):
        load_robot(variant(tmp_path, ARM, gains=1))
    with pytest.raises(RobotError, match=r"robot.yaml: mass: missing \(required\)"):
        load_robot(variant(tmp_path, ARM, mass=None))
    with pytest.raises(RobotError, match=r"robot.yaml: kind: expected one of \['legged', 'arm'\], got 'wheeled'"):
        load_robot(variant(tmp_path, ARM, kind="wheeled"))
    with pytest.raises(RobotError, match=r"robot.yaml: control_hz: 1 / \(control_hz \* timestep\) must be a whole"):
        load_robot(variant(tmp_path, ARM, control_hz=60))
    with pytest.raises(RobotError, match=r"robot.yaml: arm.end_effector: 'tip' is not a site of tiny_arm.xml"):
        load_robot(variant(tmp_path, ARM, arm={"end_effector": "tip", "workspace": {
            "center": [0.4, 0, 0.3], "half_extent": [0.1, 0.1, 0.1]}}))


def test_position_servos_must_carry_the_stated_pd_and_effort_and_state_no_speed_limit(tmp_path):
    servo = load_robot(SERVO_QUAD)
    assert (servo.actuator, servo.velocity_limit, servo.kp[0], servo.kd[0]) == ("position", None, 40.0, 1.0)
    with pytest.raises(RobotError, match=r"robot.yaml: pd: fl_abduct: kp 20, kd 1, but actuator 'fl_abduct' in "
                                         r"quadruped.xml has kp 40, kv 1"):
        load_robot(variant(tmp_path, SERVO_QUAD, pd={"kp": 20.0, "kd": 1.0}))
    with pytest.raises(RobotError, match=r"robot.yaml: effort_limit: fl_abduct = 30 N m, but actuator 'fl_abduct' "
                                         r"in quadruped.xml has force range \[-25, 25\] N m"):
        load_robot(variant(tmp_path, SERVO_QUAD, effort_limit=30.0))
    with pytest.raises(RobotError, match=r"robot.yaml: velocity_limit: position servos have no torque-speed line"):
        load_robot(variant(tmp_path, SERVO_QUAD, velocity_limit=30.0))
    with pytest.raises(RobotError, match=r"robot.yaml: joints: fl_hip's actuator 'fl_hip' in tiny_quad.xml is not a "
                                         r"position actuator"):
        load_robot(variant(tmp_path, QUAD, actuator="position", velocity_limit=None))
    with pytest.raises(RobotError, match=r"robot.yaml: velocity_limit: missing \(required with actuator: motor\)"):
        load_robot(variant(tmp_path, QUAD, velocity_limit=None))
    with pytest.raises(RobotError, match=r"robot.yaml: actuator: expected one of \['motor', 'position'\]"):
        load_robot(variant(tmp_path, QUAD, actuator="hydraulic"))


def test_the_test_robots_pass_the_check():
    quad = check_robot(load_robot(QUAD))
    assert quad["mass"] == pytest.approx(3.0)
    assert quad["hold"]["base_height"] > 0.2
    assert quad["colliding_geoms"] == ["base", "fl_foot", "fr_foot", "hl_foot", "hr_foot"]
    assert [j["armature"] for j in quad["joints"]] == [0.005] * 8
    arm = check_robot(load_robot(ARM))
    assert arm["hold"]["joint_drift"] < 0.01


def test_a_mass_far_from_the_stated_figure_fails_the_check(tmp_path):
    path = variant(tmp_path, QUAD, mass=4.0)
    with pytest.raises(RobotError, match=rf"^{path}: mass: the model weighs 3.00 kg, the description states 4 kg"):
        check_robot(load_robot(path))


def test_a_robot_that_cannot_stand_fails_the_check(tmp_path):
    path = variant(tmp_path, QUAD, pd={"kp": 1.0, "kd": 0.05})
    with pytest.raises(RobotError, match=rf"^{path}: pd: the robot does not stand in its default pose"):
        check_robot(load_robot(path))


def test_robot_check_prints_a_verdict_and_facts_or_one_error_line(tmp_path, capsys):
    assert main(["robot", "check", str(QUAD)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{QUAD}: ok: tiny_quad (8 joints, 3.00 kg")
    assert out[2].split()[:3] == ["fl_hip", "8.00", "25.00"]
    assert out[-1] == "colliding geoms (5): base, fl_foot, fr_foot, hl_foot, hr_foot"
    path = variant(tmp_path, QUAD, mass=2.0)
    assert main(["robot", "check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"robotrl robot: error: {path}: mass:")


def test_robot_show_films_the_default_pose(tmp_path):
    import json
    import subprocess
    import sys

    from robotrl.tools.video import read_video

    out = tmp_path / "tiny_quad.mp4"
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "robot", "show", str(QUAD), "--video", str(out),
                           "--seconds", "0.4", "--size", "160x120", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    info, frames = read_video(out)
    assert (info.frames, info.width, info.height) == (21, 160, 120)  # the first state + 20 steps at 50 Hz
    assert result["lengths"] == [20] and frames[-1].std() > 10  # held the pose, not a blank frame
