"""`robotrl eval --video`: a playable MP4 at the env's frame rate, the arm in it, faster than real time."""

import json
import resource
import subprocess
import sys

import mujoco
import numpy as np
import pytest
from imaging import arm_pixels

import envs
from envs.scene import Scene, follow_camera, tracked_body
from robotrl.tools.video import FrameRenderer, read_video, record_video


def _child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_video_of_three_reacher_episodes_is_playable_and_faster_than_real_time(reacher_run, tmp_path):
    out = tmp_path / "reacher.mp4"
    cpu0 = _child_cpu_s()
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "eval", str(reacher_run), "--video", str(out),
                           "--episodes", "3", "--json"], capture_output=True, text=True, timeout=300)
    cpu_s = _child_cpu_s() - cpu0
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    info, frames = read_video(out)
    # 3 episodes x (first state + 200 steps) at Reacher's 50 Hz control rate: 12 s of robot time.
    assert (info.frames, info.width, info.height) == (603, 480, 480)
    assert info.fps == pytest.approx(50.0)
    assert result["frames"] == 603 and result["lengths"] == [200, 200, 200]
    # Filmed episodes are judged against the run's target as evaluated ones are.
    assert result["target"] == {"metric": "success_rate", "op": ">=", "value": 0.9}
    assert result["target_met"] == (result["success_rate"] >= 0.9)
    for i in (0, 301, 602):
        assert arm_pixels(frames[i]) > 300, f"frame {i}: the arm is not drawn"
    assert frames[0].std() > 20, "a blank frame"
    assert not np.array_equal(frames[100], frames[200]), "the arm does not move"
    # The recording (policy, physics, rendering, encoding; all threads) costs less CPU than the 12 s
    # it shows, so it keeps up with real time even on one free core. Wall time depends on what else
    # this shared machine runs; CPU does not. Interpreter start-up and imports (about 2.5 s) come on
    # top once per command, so the whole command gets the video's length plus that.
    recording = f"{result['cpu_s']:.1f} s of CPU for 12 s of video (wall {result['wall_s']:.1f} s)"
    assert result["cpu_s"] < 12.0, recording
    assert cpu_s < 12.0 + 4.0, f"the command took {cpu_s:.1f} s of CPU"


def test_arm_check_sees_no_arm_when_the_arm_is_hidden():
    env = envs.make("robotrl/Reacher-v0")
    env.reset(seed=0)
    scene = Scene(env)
    renderer = FrameRenderer(scene, 480, 480)
    try:
        assert arm_pixels(renderer.render()) > 300
        model = scene.model
        for name in ("link0", "link1", "fingertip"):
            model.geom_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)][3] = 0.0
        model.site_rgba[:, 3] = 0.0
        assert arm_pixels(renderer.render()) < 30
    finally:
        renderer.close()
        env.close()


def test_a_pixel_policys_video_plays_at_its_decisions_rate(tmp_path):
    # Each step of a `skip: 2` pixel env covers two 50 Hz env steps: one frame per step at 50 fps played the
    # episode twice too fast (the viewer ran it at twice real time).
    out = tmp_path / "pixels.mp4"
    record_video(lambda obs: np.zeros((len(obs), 1), np.float32), "robotrl/CartPole-v0", out, episodes=1, seed=0,
                 env_kwargs={"pixels": {"size": 16, "stack": 1, "camera": "side", "skip": 2},
                             "max_episode_steps": 20}, width=64, height=64)
    info, _ = read_video(out)
    assert info.fps == pytest.approx(25.0)


def test_gymnasium_env_video_has_one_frame_per_step_and_follows_the_cart(tmp_path):
    """InvertedPendulum-v5 under a constant push: the pole falls, the cart slides, the camera tracks it."""
    out = tmp_path / "pendulum.mp4"
    result = record_video(lambda obs: np.full((len(obs), 1), 0.5), "InvertedPendulum-v5", out, episodes=2,
                          seed=5, width=320, height=240)
    info, _ = read_video(out)
    assert info.frames == sum(length + 1 for length in result["lengths"]) == result["frames"]
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(25.0)  # Gymnasium's render_fps for InvertedPendulum (dt 0.04 s)
    env = envs.make("InvertedPendulum-v5")
    env.reset(seed=0)
    scene = Scene(env)
    cart = mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_BODY, "cart")
    camera = follow_camera(scene.model, scene.data)
    assert camera.type == mujoco.mjtCamera.mjCAMERA_TRACKING and camera.trackbodyid == cart
    env.close()


@pytest.mark.parametrize(("env_id", "moves"), [("robotrl/Reacher-v0", False), ("HalfCheetah-v5", True)])
def test_camera_tracks_only_robots_that_move(env_id, moves):
    env = envs.make(env_id)
    env.reset(seed=0)
    model = Scene(env).model
    env.close()
    assert (tracked_body(model) is not None) == moves


@pytest.mark.parametrize(("name", "extra", "message"), [
    ("x.mp4", ["--size", "481x480"], "must be positive and even"),
    ("x.mp4", ["--size", "big"], "expected WIDTHxHEIGHT"),
    ("x.mp4", ["--viewer"], "choose one"),
    ("x.avi", [], "must end in .mp4"),
    (None, ["--size", "640x480"], "given without --video"),
])
def test_bad_video_options_are_one_line_errors(reacher_run, tmp_path, name, extra, message):
    video = [] if name is None else ["--video", str(tmp_path / name)]
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "eval", str(reacher_run), *video, *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not list(tmp_path.iterdir())


def test_exported_onnx_policy_films_like_its_checkpoint(reacher_run, tmp_path):
    import torch

    from robotrl.export.policy import export_policy
    from robotrl.train.trainer import load_policy, policy_fn

    onnx_file = export_policy(reacher_run, tmp_path / "policy.onnx")["out"]
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "eval", onnx_file, "--video", str(tmp_path / "o.mp4"),
                           "--episodes", "1", "--size", "240x240", "--seed", "7", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from_onnx = json.loads(proc.stdout)
    info, frames = read_video(tmp_path / "o.mp4")
    assert (info.frames, info.width, info.height) == (201, 240, 240)
    assert arm_pixels(frames[100]) > 300 / 4  # a quarter of the 480x480 frame's area
    policy, cfg, _ = load_policy(reacher_run)
    from_checkpoint = record_video(policy_fn(policy, torch.device("cpu")), cfg.env.id, tmp_path / "c.mp4",
                                   episodes=1, seed=7, width=240, height=240)
    # The same actions up to float32 rounding: the same episode.
    assert from_onnx["return_mean"] == pytest.approx(from_checkpoint["return_mean"], abs=1e-3)
