"""A robot on the other end of a UDP socket (protocol in deploy/protocol.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import numpy as np

from deploy import protocol
from deploy.backends.base import BackendError, Reading
from deploy.metadata import RobotSpec
from deploy.timing import now_ns


class UdpBackend:
    """Handshakes with the robot (HELLO -> SPEC), then reads the newest OBS and sends ACTIONs.

    Reads drain the socket without blocking and keep the newest valid observation; bad datagrams
    (size, kind, magic) and old ones (seq not increasing) are dropped and counted.
    """

    name = "udp"

    def __init__(self, host: str, port: int, handshake_s: float = 2.0) -> None:
        self.address = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # connect() filters datagrams to the robot's address and lets send skip the address lookup.
            self.sock.connect(self.address)
            self._spec = self._handshake(handshake_s)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self._expected = protocol.HEADER.size + 4 * self._spec.obs_dim
        self._rx = bytearray(protocol.MAX_DATAGRAM)
        self._rx_view = memoryview(self._rx)
        self._tx = bytearray(protocol.HEADER.size + 4 * self._spec.act_dim)
        self._tx_view = memoryview(self._tx)
        self._obs = np.zeros(self._spec.obs_dim, dtype=np.float32)
        self._reading = Reading(self._obs, 0)
        self.last_seq = -1
        self.counts = {"received": 0, "sent": 0, "bad_size": 0, "bad_header": 0, "out_of_order": 0}

    def _handshake(self, timeout_s: float) -> RobotSpec:
        self.sock.settimeout(0.1)
        deadline = time.monotonic() + timeout_s
        hello = protocol.encode(protocol.HELLO, 0, now_ns())
        while time.monotonic() < deadline:
            try:
                self.sock.send(hello)
                data = self.sock.recv(protocol.MAX_DATAGRAM)
            except (TimeoutError, ConnectionRefusedError):
                continue
            try:
                packet = protocol.decode(data)
            except ValueError:
                continue
            if packet.kind == protocol.SPEC:
                obs_dim, act_dim, low, high = protocol.parse_spec_values(packet.values)
                return RobotSpec(obs_dim, act_dim, low, high)
        raise BackendError(f"udp: no SPEC reply from the robot at {self.address[0]}:{self.address[1]} "
                           f"within {timeout_s:g} s (is its peer running?)")

    def spec(self) -> RobotSpec:
        return self._spec

    def read(self) -> Reading | None:
        got = False
        while True:
            try:
                n = self.sock.recv_into(self._rx)
            except BlockingIOError:
                break
            except OSError as exc:  # ICMP port unreachable shows up here as ConnectionRefusedError
                raise BackendError(f"udp read: {exc}") from exc
            received = now_ns()
            if n != self._expected:
                self.counts["bad_size"] += 1
                continue
            magic, kind, _, count, seq, _stamp = protocol.HEADER.unpack_from(self._rx, 0)
            if magic != protocol.MAGIC or kind != protocol.OBS or count != self._spec.obs_dim:
                self.counts["bad_header"] += 1
                continue
            if seq <= self.last_seq:
                self.counts["out_of_order"] += 1
                continue
            self.last_seq = seq
            self._obs[:] = np.frombuffer(self._rx_view[protocol.HEADER.size:n], dtype="<f4")
            self._reading.received_ns = received
            self.counts["received"] += 1
            got = True
        return self._reading if got else None

    def write(self, action: np.ndarray) -> None:
        n = protocol.encode_into(self._tx, protocol.ACTION, max(self.last_seq, 0), now_ns(), action)
        try:
            self.sock.send(self._tx_view[:n])
        except OSError as exc:
            raise BackendError(f"udp write: {exc}") from exc
        self.counts["sent"] += 1

    def summary(self) -> dict[str, Any]:
        return dict(self.counts)

    def close(self) -> None:
        # The robot may already be gone; closing must still succeed.
        with contextlib.suppress(OSError):
            self.sock.send(protocol.encode(protocol.BYE, max(self.last_seq, 0), now_ns()))
        self.sock.close()
