"""`robotrl eval --viewer` on a virtual screen: the window shows the arm; no display is one clear line."""

import io
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from imaging import arm_pixels
from PIL import Image


@pytest.fixture
def xvfb_display():
    """A fresh Xvfb screen (1280x720, 24 bit) on a display number Xvfb picks itself; stopped after the test."""
    assert shutil.which("Xvfb") and shutil.which("import"), "needs Xvfb and imagemagick: run ./dev setup as root"
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                              pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        number = reader.readline().strip()  # written once the server accepts connections
    assert number, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def _screenshot(display: str) -> np.ndarray:
    png = subprocess.run(["import", "-display", display, "-window", "root", "png:-"], capture_output=True,
                         check=True, timeout=30).stdout
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_viewer_draws_the_trained_arm_and_finishes_its_episodes(reacher_run, xvfb_display):
    env = {**os.environ, "DISPLAY": xvfb_display, "MUJOCO_GL": "egl"}  # the CLI must switch to a window
    viewer = subprocess.Popen([sys.executable, "-m", "robotrl.cli", "eval", str(reacher_run), "--viewer",
                               "--episodes", "2", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        # Start-up (torch, the policy, GLFW) takes seconds on a loaded machine: poll the screen.
        best, deadline = 0, time.time() + 90
        while time.time() < deadline and viewer.poll() is None:
            shot = _screenshot(xvfb_display)
            best = max(best, arm_pixels(shot))
            if best > 300:
                break
            time.sleep(0.5)
        assert best > 300, f"the arm is not on the screen (at most {best} arm pixels)"
        assert shot.std() > 20, "a blank screen"
        out, err = viewer.communicate(timeout=120)
    finally:
        if viewer.poll() is None:
            viewer.kill()
            viewer.wait()
    assert viewer.returncode == 0, err
    result = json.loads(out)
    assert result["episodes"] == 2 and result["lengths"] == [200, 200]
    assert result["target"] == {"metric": "success_rate", "op": ">=", "value": 0.9}
    assert result["target_met"] == (result["success_rate"] >= 0.9)
    # Paced at the control rate: 2 x 200 steps at 50 Hz take 8 s of real time, never less.
    assert result["wall_s"] >= 8.0 - 0.02, result["wall_s"]


@pytest.mark.slow  # 12 s of episodes plus the pause: about 30 s on a loaded machine
def test_space_pauses_the_viewer_and_resumes_it(reacher_run, xvfb_display):
    assert shutil.which("xdotool"), "needs xdotool: run ./dev setup as root"
    env = {**os.environ, "DISPLAY": xvfb_display}
    viewer = subprocess.Popen([sys.executable, "-m", "robotrl.cli", "eval", str(reacher_run), "--viewer",
                               "--episodes", "3", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    xdo = {**os.environ, "DISPLAY": xvfb_display}
    try:
        deadline = time.time() + 90
        while time.time() < deadline and viewer.poll() is None and arm_pixels(_screenshot(xvfb_display)) < 300:
            time.sleep(0.5)
        window = subprocess.run(["xdotool", "search", "--name", "MuJoCo"], env=xdo, capture_output=True,
                                text=True, timeout=30).stdout.split()[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=xdo, check=True, timeout=30)
        subprocess.run(["xdotool", "key", "space"], env=xdo, check=True, timeout=30)
        # The window redraws late on a loaded machine: wait for two screens 1.5 s apart to agree.
        paused_at, second, moved = time.time(), _screenshot(xvfb_display), -1
        while moved != 0 and time.time() < paused_at + 30 and viewer.poll() is None:
            time.sleep(1.5)
            first, second = second, _screenshot(xvfb_display)
            moved = int((np.abs(first.astype(int) - second.astype(int)).sum(-1) > 30).sum())
        still_running = viewer.poll() is None
        paused_s = time.time() - paused_at
        subprocess.run(["xdotool", "key", "space"], env=xdo, check=True, timeout=30)
        out, err = viewer.communicate(timeout=120)
    finally:
        if viewer.poll() is None:
            viewer.kill()
            viewer.wait()
    assert still_running and moved == 0, f"the arm kept moving after [space] ({moved} pixels changed)"
    assert arm_pixels(second) > 300
    result = json.loads(out)
    assert result["lengths"] == [200, 200, 200], err
    # 12 s of episodes plus the time it stood paused (at least one 1.5 s gap between agreeing screens).
    assert result["wall_s"] >= 12.0 + 1.5, (result["wall_s"], paused_s)


def test_viewer_without_a_display_says_so_and_suggests_video(reacher_run):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "eval", str(reacher_run), "--viewer"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "--video" in lines[0], proc.stderr


_CLOSE_EARLY = """
import sys, threading
import mujoco.viewer
from robotrl.cli import main

launch = mujoco.viewer.launch_passive

def launch_then_close(*args, **kwargs):  # the window's close button, pressed 1 s after it opens
    handle = launch(*args, **kwargs)
    threading.Timer(1.0, handle.close).start()
    return handle

mujoco.viewer.launch_passive = launch_then_close
sys.exit(main(sys.argv[1:]))
"""


def test_a_window_closed_before_an_episode_ends_reports_no_episode_in_valid_json(reacher_run, xvfb_display):
    env = {**os.environ, "DISPLAY": xvfb_display, "MUJOCO_GL": "glfw"}
    command = [sys.executable, "-c", _CLOSE_EARLY, "eval", str(reacher_run), "--viewer", "--episodes", "2"]
    as_json = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert result["episodes"] == 0 and result["return_mean"] is None and result["target_met"] is None
    as_text = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert as_text.returncode == 0, as_text.stderr
    assert "no episode finished" in as_text.stdout, as_text.stdout
