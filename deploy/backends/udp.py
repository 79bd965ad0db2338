"""A robot on the other end of a UDP socket (protocol and its rules in deploy/protocol.py)."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from typing import Any

import numpy as np

from deploy import protocol
from deploy.backends.base import BackendError, Reading, RobotRefused
from deploy.metadata import RobotSpec
from deploy.timing import now_ns

# Linux's socket option for nanosecond kernel receive timestamps (CLOCK_REALTIME); Python does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
_TIMESPEC32 = struct.Struct("@ii")
_PREFIX = struct.Struct("<4sBBHI")
"""The header up to the session: constant for one kind, size and session (see protocol.HEADER)."""
_SEQ = struct.Struct("<I")
_SEQ_STAMP = struct.Struct("<IQ")


class KernelStampedReading(Reading):
    """A reading whose arrival time comes from the kernel's receive timestamp (CLOCK_REALTIME), converted to
    the runner's clock when first asked for: the runner asks for the newest reading of a tick only (to
    refuse one that is already older than its watchdog), never for the datagrams the drain passed over."""

    @property
    def arrived_ns(self) -> int | None:
        if self._stamp is not None:
            # A 64-bit kernel's timespec is two 8-byte fields; a 32-bit userspace (armhf controllers) gets
            # the old 4-byte pair from SO_TIMESTAMPNS.
            sec, nsec = (_TIMESPEC if len(self._stamp) >= _TIMESPEC.size else _TIMESPEC32).unpack_from(self._stamp)
            self._arrived = sec * 1_000_000_000 + nsec - (time.time_ns() - now_ns())
            self._stamp = None
        return self._arrived

    @arrived_ns.setter
    def arrived_ns(self, value: int | None) -> None:
        self._arrived, self._stamp = value, None

    def stamp(self, timespec: bytes | None) -> None:
        """The kernel's `struct timespec` of the datagram (None: the kernel gave none)."""
        self._arrived, self._stamp = None, timespec


def resolve(host: str, port: int) -> tuple[str, int]:
    """The IPv4 address the robot is reached at; errors name the flag."""
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"--port {port}: expected a port number in 1..65535")
    try:
        info = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"--host {host!r}: cannot resolve it to an IPv4 address ({exc})") from exc
    return info[0][4][0], port


class UdpBackend:
    """Handshakes with the robot (HELLO -> SPEC), then reads the newest OBS and sends ACTIONs.

    Reads drain the socket without blocking and keep the newest valid observation of the current
    session; everything else is dropped and counted by reason. A SPEC of a new session is a
    restarted robot: `session` changes, which the runner sees, and `spec()` is the new robot's.
    """

    name = "udp"

    def __init__(self, host: str, port: int, handshake_s: float = 2.0) -> None:
        self.address = resolve(host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.counts = {"received": 0, "sent": 0, "bad_size": 0, "bad_header": 0, "out_of_order": 0,
                       "wrong_address": 0, "unknown_session": 0, "restarts": 0, "robot_bye": 0, "asked": 0}
        self.session = 0
        self.last_seq = -1
        try:
            self.timestamps = self._enable_timestamps()
            self._spec, self.session = self._handshake(handshake_s)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self._anc = socket.CMSG_SPACE(_TIMESPEC.size)
        self._hello = protocol.encode(protocol.HELLO, 0, 0)
        # After a datagram, asking the kernel whether another waits (0.7 us) is cheaper than the failing
        # receive that would end the drain otherwise (2.7 us, most of it raising BlockingIOError), measured
        # on this machine; only a tick that finds nothing at all pays the failing receive.
        self._ready = select.poll()
        self._ready.register(self.sock.fileno(), select.POLLIN)
        self._hello_due = False
        self._echo = self._echo_socket()
        self._echo_rx = bytearray(protocol.MAX_DATAGRAM)
        self._emptied_ns: int | None = None
        """When a drain last found the socket empty (the receive before the poll that said so): every datagram
        read later arrived after it, which proves a new observation fresh without converting its timestamp."""
        self._size_buffers()

    def _size_buffers(self) -> None:
        """Buffers and views made once per robot (session and sizes), so a tick builds no arrays.

        Two receive buffers take turns: a datagram arrives in the spare one and, when it is the newest
        valid observation, the two swap, so the reading's values are never copied and never overwritten
        by a later datagram that turns out invalid."""
        obs_dim, act_dim = self._spec.obs_dim, self._spec.act_dim
        self._expected = protocol.HEADER.size + 4 * obs_dim
        self._rx = [bytearray(protocol.MAX_DATAGRAM) for _ in range(2)]
        self._rx_obs = [np.frombuffer(b, dtype="<f4", count=obs_dim, offset=protocol.HEADER.size) for b in self._rx]
        self._spare = 0
        self._tx = bytearray(protocol.HEADER.size + 4 * act_dim)
        self._tx_values = np.frombuffer(self._tx, dtype="<f4", offset=protocol.HEADER.size)
        self._reading = KernelStampedReading(self._rx_obs[1], 0, None)
        self._set_session(self.session)

    def _set_session(self, session: int) -> None:
        """The constant part of this session's headers: what a valid OBS starts with, what an ACTION does."""
        self.session, self.last_seq = session, -1
        self._obs_prefix = _PREFIX.pack(protocol.MAGIC, protocol.OBS, protocol.VERSION, self._spec.obs_dim, session)
        _PREFIX.pack_into(self._tx, 0, protocol.MAGIC, protocol.ACTION, protocol.VERSION, self._spec.act_dim, session)

    def _enable_timestamps(self, sock: socket.socket | None = None) -> bool:
        try:
            (sock or self.sock).setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            return False
        return True

    def _echo_socket(self) -> socket.socket | None:
        """A loopback socket of the runner's own, connected to itself (so nothing from elsewhere reaches it),
        that warm_io sends a datagram through; None where the machine gives none (warm_io then does nothing)."""
        echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            echo.bind(("127.0.0.1", 0))
            echo.connect(echo.getsockname())
            echo.setblocking(False)
            if self.timestamps:
                self._enable_timestamps(echo)
        except OSError:
            echo.close()
            return None
        self._echo_address = echo.getsockname()
        return echo

    def _refuse(self, message: str, to: tuple[str, int]) -> ValueError:
        """Tell the robot we will not run with it (BYE) and return the one-line error."""
        with contextlib.suppress(OSError):
            self.sock.sendto(protocol.encode(protocol.BYE, 0, now_ns()), to)
        return ValueError(f"udp: robot at {to[0]}:{to[1]}: {message}")

    def _handshake(self, timeout_s: float) -> tuple[RobotSpec, int]:
        self.sock.settimeout(0.1)
        deadline = time.monotonic() + timeout_s
        hello = protocol.encode(protocol.HELLO, 0, now_ns())
        # What was heard instead of a SPEC, for the timeout's message: a robot that answers from another
        # port or sends another format looks like silence otherwise.
        others: list[tuple[str, int]] = []
        undecodable: list[str] = []
        refused = False
        while time.monotonic() < deadline:
            try:
                self.sock.sendto(hello, self.address)
                data, source = self.sock.recvfrom(protocol.MAX_DATAGRAM)
            except ConnectionRefusedError:
                refused = True
                continue
            except TimeoutError:
                continue
            if source != self.address:
                self.counts["wrong_address"] += 1
                others.append(source)
                continue
            if len(data) >= 6 and data[:4] == protocol.MAGIC and data[5] != protocol.VERSION:
                raise self._refuse(f"speaks protocol version {data[5] or 1}, this runner speaks "
                                   f"{protocol.VERSION}", source)
            try:
                packet = protocol.decode(data)
            except ValueError as exc:
                undecodable.append(str(exc))
                continue
            if packet.kind == protocol.SPEC:
                try:
                    obs_dim, act_dim, low, high = protocol.parse_spec_values(packet.values)
                except ValueError as exc:
                    raise self._refuse(str(exc), source) from None
                return RobotSpec(obs_dim, act_dim, low, high), packet.session
        heard = []
        if others:
            heard.append(f"{len(others)} datagrams from other addresses (first {others[0][0]}:{others[0][1]}: "
                         "the robot must answer from the address it is reached at)")
        if undecodable:
            heard.append(f"{len(undecodable)} datagrams that are not this protocol (first: {undecodable[0]})")
        if refused:
            heard.append("the port refused (nothing listens there)")
        raise BackendError(f"udp: no SPEC reply from the robot at {self.address[0]}:{self.address[1]} "
                           f"within {timeout_s:g} s; " + ("; ".join(heard) if heard else
                                                          "nothing heard (is its peer running?)"))

    def spec(self) -> RobotSpec:
        return self._spec

    def _restart(self, data: memoryview, session: int) -> None:
        """A SPEC of a new session: the robot restarted. A malformed one ends the run."""
        try:
            packet = protocol.decode(data)
            obs_dim, act_dim, low, high = protocol.parse_spec_values(packet.values)
        except ValueError as exc:
            raise RobotRefused(str(self._refuse(str(exc), self.address))) from None
        self._spec = RobotSpec(obs_dim, act_dim, low, high)
        if self._expected != protocol.HEADER.size + 4 * obs_dim or len(self._tx) != protocol.HEADER.size + 4 * act_dim:
            self._size_buffers()
        self._set_session(session)
        self.counts["restarts"] += 1
        self._hello_due = False

    def read(self) -> Reading | None:
        # The per-tick path: a valid OBS of this session is recognised by its first 12 bytes and its size
        # (one comparison), everything else goes through _sort, which counts why it was dropped.
        ready, recv, address, counts = self._ready.poll, self.sock.recvmsg_into, self.address, self.counts
        anc_size, expected, prefix = self._anc, self._expected, self._obs_prefix
        newest, emptied = None, self._emptied_ns
        # Receive first and ask whether more wait after each datagram: a tick with one new observation (the
        # usual one) makes two system calls, not three; a tick with none pays a failing receive instead.
        more = True
        while more:
            rx = self._rx[self._spare]
            try:
                n, anc, _flags, source = recv((rx,), anc_size)
            except BlockingIOError:
                break
            except OSError as exc:  # ICMP port unreachable shows up here as ConnectionRefusedError
                raise BackendError(f"udp read: {exc}") from exc
            received = now_ns()
            more = bool(ready(0))
            if not (n == expected and rx.startswith(prefix) and source == address):
                session = self.session
                self._sort(rx, n, source)
                if self.session != session:
                    # A restart: an observation read before it came from the robot as it was, and the new
                    # session's header (and maybe sizes) is what a valid OBS must have from here on.
                    newest, expected, prefix = None, self._expected, self._obs_prefix
                continue
            seq = _SEQ.unpack_from(rx, 12)[0]
            if seq <= self.last_seq:
                counts["out_of_order"] += 1
                continue
            self.last_seq = seq
            counts["received"] += 1
            newest = (received, anc)
            self._reading.obs = self._rx_obs[self._spare]
            self._spare ^= 1
        if not more:  # the kernel said the socket was empty after the last receive: later datagrams came after
            self._emptied_ns = received
        if newest is None:
            return None
        reading = self._reading
        reading.received_ns, anc = newest
        reading.arrived_after_ns = emptied
        reading.stamp(anc[0][2] if anc else None)
        return reading

    def _sort(self, rx: bytearray, n: int, source: tuple[str, int]) -> None:
        """A datagram that is not a valid OBS of this session: count why; a new session's SPEC is a restart."""
        if source != self.address:
            self.counts["wrong_address"] += 1
            return
        if n < protocol.HEADER.size:
            self.counts["bad_size"] += 1
            return
        magic, kind, version, count, session, _seq, _stamp = protocol.HEADER.unpack_from(rx, 0)
        if magic != protocol.MAGIC or version != protocol.VERSION:
            self.counts["bad_header"] += 1
        elif kind == protocol.SPEC:
            if session != self.session:
                self._restart(memoryview(rx)[:n], session)
        elif kind == protocol.BYE:
            self.counts["robot_bye"] += 1
        elif n != self._expected:
            self.counts["bad_size"] += 1
        elif kind != protocol.OBS or count != self._spec.obs_dim:
            self.counts["bad_header"] += 1
        else:
            self.counts["unknown_session"] += 1
            self._hello_due = True

    def warm_io(self) -> None:
        """One datagram through the kernel's UDP send and receive paths, to the backend's own loopback socket
        and back (the robot gets nothing): after the loop's sleep the tick's sendto and recvmsg find their
        kernel code warm again. Measured over loopback after a 0.6 ms sleep and a 200 us spin: sendto 10.8 ->
        6.0 us, recvmsg 9.9 -> 3.1 us (p50). In the loop against the bench's robot process (interleaved blocks
        of 300 ticks, load 8-9): latency -3.1 and -3.3 us (block medians; 25 and 27 of 32 pairs faster) when
        it runs before the policy's warm-up; after it, it evicts the policy (inference +2.4 us)."""
        echo = self._echo
        if echo is None:
            return
        try:
            echo.sendto(self._tx, self._echo_address)
            echo.recvmsg_into((self._echo_rx,), self._anc)
        except OSError:  # a warm-up never fails the loop; the tick's own calls report real errors
            pass

    def warm(self, action: np.ndarray) -> None:
        """The readiness poll and the per-datagram checks of `read` (on the spare receive buffer) and the packing
        of `write` with `action`, receiving and sending nothing: after the loop's sleep, brings their code (the
        kernel's poll included) back into the caches. The next `write` overwrites what this packs."""
        self._ready.poll(0)
        self._rx[self._spare].startswith(self._obs_prefix)
        _SEQ.unpack_from(self._rx[self._spare], 12)
        _SEQ_STAMP.pack_into(self._tx, 12, 0, now_ns())
        if action.size == self._tx_values.size:
            self._tx_values[:] = action

    def write(self, action: np.ndarray) -> None:
        # The header's first 12 bytes are this session's (_set_session); a command fills in seq and stamp.
        _SEQ_STAMP.pack_into(self._tx, 12, self.last_seq if self.last_seq > 0 else 0, now_ns())
        self._tx_values[:] = action
        try:
            if self._hello_due:
                self._hello_due = False
                self.sock.sendto(self._hello, self.address)
            self.sock.sendto(self._tx, self.address)
        except OSError as exc:
            raise BackendError(f"udp write: {exc}") from exc
        self.counts["sent"] += 1

    def ask(self) -> None:
        """HELLO to the robot: a request for its current observation when the runner has no command to send
        (a lock-step robot answers only datagrams; its one observation may have been lost or gone stale)."""
        try:
            self.sock.sendto(self._hello, self.address)
        except OSError as exc:
            raise BackendError(f"udp write: {exc}") from exc
        self.counts["asked"] += 1

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "kernel_timestamps": self.timestamps}

    def close(self) -> None:
        # The robot may already be gone; closing must still succeed.
        with contextlib.suppress(OSError):
            self.sock.sendto(protocol.encode(protocol.BYE, max(self.last_seq, 0), now_ns(), session=self.session),
                             self.address)
        self.sock.close()
        if self._echo is not None:
            self._echo.close()
