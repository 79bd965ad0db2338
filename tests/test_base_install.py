"""The controller's install: `pip install .` (no extras) in a fresh venv runs `python -m deploy` over UDP."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_base_install.sh"


@pytest.mark.slow
def test_base_install_runs_deploy_over_udp_without_the_training_stack(exported_reacher, tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), str(exported_reacher[1]), str(tmp_path / "venv")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "torch, gymnasium, mujoco, yaml absent" in r.stdout
    assert "python -m deploy ran" in r.stdout
