"""The robot's side of the UDP protocol, in lock-step: answer HELLO with SPEC and each ACTION with the
next observation. A robot's computer can serve its own hardware with it; robotrl serves a simulated
robot with it for tests and benchmarks (`python -m robotrl.tools.udp_robot`).

Each peer is one session (a random non-zero id drawn at start): a peer started again after a crash is a
new session, and answers the runner's ACTIONs of the old session with SPEC and its first observation
instead of applying them, so the runner sees the restart from its first datagram.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Protocol

import numpy as np

from deploy import protocol
from deploy.metadata import RobotSpec
from deploy.timing import now_ns


class Robot(Protocol):
    spec: RobotSpec

    def observe(self) -> np.ndarray:
        """The current observation."""
        ...

    def apply(self, action: np.ndarray) -> None:
        """Apply a command and advance to the next control step."""
        ...


class UdpPeer:
    """Serves `robot` on a UDP socket bound to (host, port); port 0 picks a free one (see `.port`)."""

    def __init__(self, robot: Robot, host: str = "127.0.0.1", port: int = 0) -> None:
        self.robot = robot
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.session = int.from_bytes(os.urandom(4), "little") or 1
        self.seq = 0
        self.first_sent_ns: int | None = None
        """When this session sent its first datagram (perf_counter_ns): when a runner can first see it."""
        self.actions_received = 0
        self.foreign_actions = 0
        self._thread: threading.Thread | None = None
        self.last_action: np.ndarray | None = None
        self.stop_event = threading.Event()
        s = robot.spec
        self._spec_packet = protocol.encode(protocol.SPEC, 0, 0, protocol.spec_values(
            s.obs_dim, s.act_dim, s.action_low, s.action_high), session=self.session)

    def _announce(self, addr: tuple[str, int]) -> None:
        """SPEC, then the first (or next) observation."""
        if self.first_sent_ns is None:
            self.first_sent_ns = now_ns()
        self.sock.sendto(self._spec_packet, addr)
        self._send_obs(addr)

    def _send_obs(self, addr: tuple[str, int]) -> None:
        self.seq += 1
        self.sock.sendto(protocol.encode(protocol.OBS, self.seq, now_ns(), self.robot.observe(), self.session), addr)

    def serve(self) -> None:
        """Answer datagrams until stop() or a BYE."""
        act_dim = self.robot.spec.act_dim
        while not self.stop_event.is_set():
            try:
                data, addr = self.sock.recvfrom(protocol.MAX_DATAGRAM)
            except TimeoutError:
                continue
            try:
                packet = protocol.decode(data)
            except ValueError:
                continue
            if packet.kind == protocol.HELLO:
                self._announce(addr)
            elif packet.kind == protocol.ACTION and packet.session != self.session:
                self.foreign_actions += 1
                self._announce(addr)
            elif packet.kind == protocol.ACTION and packet.values.size == act_dim:
                self.actions_received += 1
                self.last_action = packet.values.copy()
                self.robot.apply(self.last_action)
                self._send_obs(addr)
            elif packet.kind == protocol.BYE:
                break

    def start(self) -> threading.Thread:
        """Serve on a daemon thread (tests)."""
        thread = threading.Thread(target=self.serve, daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        """Stop serving, wait for the serving thread to leave recvfrom, then close the socket.

        Closing under a thread blocked in recvfrom makes it fail with EBADF instead of stopping."""
        self.stop_event.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self.sock.close()
