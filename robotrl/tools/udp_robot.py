"""A simulated robot served over UDP (deploy/protocol.py): the far end for `robotrl bench deploy`,
for the base-install check and for trying `python -m deploy --backend udp` without hardware.

    python -m robotrl.tools.udp_robot --env robotrl/Reacher-v0 --port 9870
    python -m robotrl.tools.udp_robot --policy runs/<run>/policy.onnx --port 9870   # the robot it was trained on
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import numpy as np

from deploy.metadata import RobotSpec
from deploy.peer import UdpPeer


class EnvRobot:
    """A Gymnasium env as a lock-step robot: each command advances one control step; episodes restart."""

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self.spec = RobotSpec.from_spaces(env.observation_space, env.action_space)
        obs, _ = env.reset(seed=seed)
        self._obs = np.asarray(obs, dtype=np.float32)
        self.steps = 0
        self.episodes = 0

    def observe(self) -> np.ndarray:
        return self._obs

    def apply(self, action: np.ndarray) -> None:
        obs, _, terminated, truncated, _ = self.env.step(np.asarray(action, dtype=np.float32))
        self.steps += 1
        if terminated or truncated:
            self.episodes += 1
            obs, _ = self.env.reset()
        self._obs = np.asarray(obs, dtype=np.float32)


def make_robot_env(env_id: str | None, policy: str | None) -> Any:
    """The simulated robot: `env_id` as registered, or the task a policy file was trained on (`deploy --backend
    sim` builds the same one), so that a policy with non-default env kwargs meets its own robot."""
    import envs

    if policy is None:
        return envs.make(env_id or "robotrl/Reacher-v0")
    from deploy.policy import load_session

    _, spec = load_session(policy)
    return envs.make(env_id or spec.env_id, **spec.env_kwargs())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robotrl.tools.udp_robot", description=__doc__)
    parser.add_argument("--env", help="env id (default robotrl/Reacher-v0, or the --policy file's)")
    parser.add_argument("--policy", metavar="FILE.onnx",
                        help="serve the robot this exported policy was trained on: its env id and env kwargs "
                             "(robot description, command ranges, terrain) from the file's metadata")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9870, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rt-priority", type=int, help="serve at this SCHED_FIFO priority (Linux)")
    parser.add_argument("--cpu", type=int, help="serve pinned to this CPU")
    parser.add_argument("--no-mlock", action="store_true", help="do not lock memory under --rt-priority")
    args = parser.parse_args(argv)
    from deploy.realtime import RealtimeConfig, realtime

    peer = UdpPeer(EnvRobot(make_robot_env(args.env, args.policy), seed=args.seed), args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: peer.stop())
    print(f"port {peer.port}", flush=True)
    try:
        with realtime(RealtimeConfig(priority=args.rt_priority, cpu=args.cpu,
                                     lock_memory=False if args.no_mlock else None)):
            peer.serve()
    except KeyboardInterrupt:
        pass
    finally:
        peer.close()
    print(f"served {peer.actions_received} actions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
