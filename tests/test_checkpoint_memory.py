"""Saving a checkpoint must not need memory on the order of the replay it holds: a pixel DQN's
100k-transition replay is 1.4 GB, and serializing it in memory first took ~6x that (a run was killed
for it on a 24 GB machine)."""

import subprocess
import sys

SCRIPT = """
import resource, numpy as np
from policies.checkpoint import save_checkpoint, load_checkpoint
from robotrl.core.replay import FrameReplayBuffer
r = FrameReplayBuffer(20000, 4, (4, 84, 84))
r.frames[:] = 7; r.next_frames[:] = 9; r.actions[:] = 1; r.full = True
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
save_checkpoint({path!r}, {{"agent": {{"replay": r.state_dict()}}}})
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
back = FrameReplayBuffer(20000, 4, (4, 84, 84))
back.load_state_dict(load_checkpoint({path!r})["agent"]["replay"])
assert np.array_equal(back.frames, r.frames) and np.array_equal(back.next_frames, r.next_frames)
assert back.full and np.array_equal(back.actions, r.actions)
print(grown * 1024, r.frames.nbytes + r.next_frames.nbytes)
"""


def test_saving_a_frame_replay_streams_it_to_the_file(tmp_path):
    path = str(tmp_path / "latest.pt")
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(path=path)], capture_output=True, text=True,
                         check=True).stdout.split()
    grown, replay_bytes = int(out[-2]), int(out[-1])
    assert replay_bytes > 250_000_000
    assert grown < 0.2 * replay_bytes, f"saving grew the peak memory by {grown / 1e6:.0f} MB"
