"""The CLI's contract: listing, one-line errors, and a clear message without the training stack."""

import json
import os
import subprocess
import sys

import pytest


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "robotrl.cli", *args], capture_output=True, text=True, **kw)


def test_envs_lists_reacher_with_sizes_and_rate():
    proc = run("envs", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in json.loads(proc.stdout)["envs"]}
    assert rows["robotrl/Reacher-v0"] == {"id": "robotrl/Reacher-v0", "obs_dim": 8, "act_dim": 2,
                                          "control_hz": 50.0, "max_episode_steps": 200}


def test_every_subcommand_has_help():
    for cmd in ("envs", "train", "eval"):
        proc = run(cmd, "--help")
        assert proc.returncode == 0 and "usage: robotrl" in proc.stdout


def test_eval_help_says_it_reports_the_target():
    text = " ".join(run("eval", "--help").stdout.split())
    assert "against its config's target" in text and "`target_met`" in text


@pytest.mark.parametrize("command", [["train", "launch/reacher_ppo.yaml"], ["eval", "runs/some-run"],
                                     ["eval", "runs/some-run", "--video", "v.mp4"]])
@pytest.mark.parametrize("missing", ["torch", "yaml"])
def test_a_command_without_the_training_stack_says_what_to_install(command, missing):
    # Simulate a controller's base install (numpy and onnxruntime): torch or PyYAML cannot be imported.
    # eval read the run's config with PyYAML first and said "No module named 'yaml'".
    code = (f"import sys; sys.modules[{missing!r}] = None; from robotrl.cli import main; "
            f"sys.exit(main({command!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"robotrl {command[0]}: error: this command needs the training stack: "
                                   f"pip install 'robotrl[train]' (missing: {missing})")


def test_missing_config_file_is_one_line(tmp_path):
    proc = run("train", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"robotrl train: error: config file not found: {tmp_path / 'nope.yaml'}"


def test_eval_of_a_missing_run_is_one_line(tmp_path):
    proc = run("eval", str(tmp_path / "norun"))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "checkpoint not found" in proc.stderr


def test_output_into_a_closed_pipe_is_not_an_error():
    # `robotrl ... | head`: the reader is gone before the command prints. Was `error: [Errno 32] Broken pipe`.
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "robot", "check", "go12"], stdout=write_end,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Broken pipe" not in proc.stderr and "error" not in proc.stderr, proc.stderr


def test_robot_show_without_a_display_suggests_its_own_video_command():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = run("robot", "show", "go12", env=env, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0], proc.stderr
    assert "`robotrl robot show go12 --video FILE.mp4`" in lines[0], proc.stderr


@pytest.mark.parametrize("command", [["compare", "launch/cartpole_pixels_dqn.yaml", "--seeds", "0"],
                                     ["baselines", "launch/cartpole_pixels_dqn.yaml", "--seeds", "1"],
                                     ["bench", "train", "launch/cartpole_pixels_dqn.yaml", "--steps", "0"]])
def test_a_pixel_config_gets_its_offscreen_opengl_before_mujoco_loads(command):
    """MuJoCo reads MUJOCO_GL once, at import: chosen after, a headless pixel run had no OpenGL context."""
    code = ("import os, sys; os.environ.pop('MUJOCO_GL', None); os.environ.pop('PYOPENGL_PLATFORM', None)\n"
            "from robotrl.tools import gl\n"
            "chosen = gl.use_offscreen\n"
            "def spy(*a, **k):\n"
            "    print('mujoco loaded first' if 'mujoco' in sys.modules else 'chosen first', flush=True)\n"
            "    return chosen(*a, **k)\n"
            "gl.use_offscreen = spy\n"
            f"from robotrl.cli import main; main({command!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.splitlines()[:1] == ["chosen first"], (proc.stdout, proc.stderr[-2000:])
