"""The UDP protocol between the policy runner and a robot's computer (version 2).

Every datagram is a 24-byte little-endian header followed by `count` float32 values:

    offset  size  field
    0       4     magic      b"RRL1"
    4       1     kind       1 HELLO, 2 SPEC, 3 OBS, 4 ACTION, 5 BYE
    5       1     version    2 (this description); version 1 sent 0 here and had no session field
    6       2     count      number of float32 values after the header (uint16)
    8       4     session    the robot's session id (uint32, see below; 0 in HELLO)
    12      4     seq        sequence number (uint32)
    16      8     stamp_ns   sender's monotonic clock in nanoseconds (uint64)
    24      4*count values

Sessions: a robot draws a new non-zero session id each time it starts, so a robot that restarts is a
new session and is recognised from its first datagram, whatever its sequence numbers do.

The conversation:
1. The runner sends HELLO (version 2, session 0, count 0) to --host:--port until the robot answers.
2. The robot answers SPEC (its session; values [obs_dim, act_dim, action_low..., action_high...]) and
   then its first OBS. The runner refuses, in one line and with a BYE, a SPEC of another version,
   with sizes that are not whole positive numbers or bounds that are not finite with low <= high,
   or that differs from the policy's metadata.
3. The robot sends OBS (values = observation, its session, seq from 1 increasing by one per
   observation, stamp = its clock when it measured). It may stream at its own rate or answer each
   ACTION with the next OBS (lock-step, what `deploy.peer` does).
4. Each control tick the runner takes the newest OBS that arrived and sends ACTION (the session and
   seq of the observation it acted on, values = the command).
5. On exit (end of run, SIGINT, SIGTERM) the runner sends one last ACTION with its safe command, then
   BYE. A robot may send BYE when it stops; the runner counts it (its watchdog then makes it safe).

Rules the runner keeps:
- Only datagrams from the address that answered the handshake (the --host:--port the HELLO went to)
  are read; any other source is dropped and counted (`wrong_address`). A restarted robot must come
  back at the same address and port.
- A datagram of the wrong size, kind, magic or version is dropped and counted (`bad_size`,
  `bad_header`); an OBS of the current session whose seq is not above the last one accepted is
  dropped and counted (`out_of_order`).
- A SPEC with a new session id means the robot restarted: the runner checks it like the first one
  (a malformed or different robot ends the run on the safe command and a BYE), takes the new
  session, counts it (`restarts`) and starts its start sequence again (passive, ramp, policy) from
  the session's first observation. An OBS of an unknown session is dropped and counted
  (`unknown_session`) and answered with HELLO, so a restarted robot announces itself with SPEC.
- A tick with no command to send (a position policy before its first fresh observation) sends HELLO
  instead, at most once per --watchdog-ms (counted, `asked`); the robot answers SPEC and its current OBS
  as at the start, and a SPEC of the current session changes nothing.
- A robot that receives an ACTION of a session that is not its own (it restarted while the runner
  kept sending) does not apply it: it answers SPEC and its first OBS, as for a HELLO.
- The protocol carries commands only, no gains: "damping" or "zero torque" exist only as the command
  values of the policy's action mode, and the robot's own PD (if any) stays active.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"RRL1"
VERSION = 2
HEADER = struct.Struct("<4sBBHIIQ")
HELLO, SPEC, OBS, ACTION, BYE = 1, 2, 3, 4, 5
KINDS = {HELLO: "HELLO", SPEC: "SPEC", OBS: "OBS", ACTION: "ACTION", BYE: "BYE"}
MAX_DATAGRAM = 65_507
MAX_VALUES = (MAX_DATAGRAM - HEADER.size) // 4
"""float32 values one datagram can carry: 16,370, less than one 4x84x84 frame stack."""


@dataclass(frozen=True)
class Packet:
    kind: int
    session: int
    seq: int
    stamp_ns: int
    values: np.ndarray


def encode(kind: int, seq: int, stamp_ns: int, values: np.ndarray | None = None, session: int = 0) -> bytes:
    """One datagram. `values` become float32."""
    payload = np.asarray(values if values is not None else (), dtype="<f4").reshape(-1)
    return HEADER.pack(MAGIC, kind, VERSION, payload.size, session & 0xFFFFFFFF, seq & 0xFFFFFFFF,
                       stamp_ns & (2**64 - 1)) + payload.tobytes()


def encode_into(buffer: bytearray, kind: int, seq: int, stamp_ns: int, values: np.ndarray, session: int = 0) -> int:
    """Write a datagram into a preallocated buffer; returns its length (the control loop's send path)."""
    HEADER.pack_into(buffer, 0, MAGIC, kind, VERSION, values.size, session & 0xFFFFFFFF, seq & 0xFFFFFFFF,
                     stamp_ns & (2**64 - 1))
    end = HEADER.size + 4 * values.size
    np.frombuffer(buffer, dtype="<f4", count=values.size, offset=HEADER.size)[:] = values
    return end


def decode(data: bytes | memoryview, expect_kind: int | None = None, expect_count: int | None = None) -> Packet:
    """Parse a datagram; ValueError says what is wrong with it."""
    if len(data) < 6:
        raise ValueError(f"datagram of {len(data)} bytes is shorter than the {HEADER.size}-byte header")
    if bytes(data[:4]) != MAGIC:
        raise ValueError(f"bad magic {bytes(data[:4])!r}, expected {MAGIC!r}")
    if data[5] != VERSION:
        raise ValueError(f"protocol version {data[5] or 1}, this runner speaks version {VERSION}")
    if len(data) < HEADER.size:
        raise ValueError(f"datagram of {len(data)} bytes is shorter than the {HEADER.size}-byte header")
    _, kind, _, count, session, seq, stamp = HEADER.unpack_from(data, 0)
    if len(data) != HEADER.size + 4 * count:
        raise ValueError(f"datagram of {len(data)} bytes, header says {count} values ({HEADER.size + 4 * count})")
    if expect_kind is not None and kind != expect_kind:
        raise ValueError(f"{KINDS.get(kind, kind)} datagram, expected {KINDS[expect_kind]}")
    if expect_count is not None and count != expect_count:
        raise ValueError(f"{count} values, expected {expect_count}")
    values = np.frombuffer(data, dtype="<f4", count=count, offset=HEADER.size)
    return Packet(kind, session, seq, stamp, values)


def spec_values(obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.concatenate([[obs_dim, act_dim], np.asarray(low).reshape(-1), np.asarray(high).reshape(-1)])


def _size(value: float, name: str) -> int:
    if not (math.isfinite(value) and value == int(value) and 0 < value <= MAX_VALUES):
        raise ValueError(f"malformed SPEC: {name} {value!r}, expected a whole number in 1..{MAX_VALUES}")
    return int(value)


def parse_spec_values(values: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(obs_dim, act_dim, low, high) of a SPEC datagram's values; ValueError names what is malformed."""
    if values.size < 2:
        raise ValueError(f"malformed SPEC: {values.size} values, expected at least obs_dim and act_dim")
    obs_dim, act_dim = _size(float(values[0]), "obs_dim"), _size(float(values[1]), "act_dim")
    if values.size != 2 + 2 * act_dim:
        raise ValueError(f"malformed SPEC: {values.size} values, expected {2 + 2 * act_dim} for act_dim {act_dim}")
    low, high = values[2:2 + act_dim].copy(), values[2 + act_dim:].copy()
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError(f"malformed SPEC: action bounds {low.tolist()} / {high.tolist()}, expected finite numbers")
    if not (low <= high).all():
        raise ValueError(f"malformed SPEC: action_low {low.tolist()} exceeds action_high {high.tolist()}")
    return obs_dim, act_dim, low, high
