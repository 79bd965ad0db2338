"""The UDP protocol between the policy runner and a robot's computer.

Every datagram is a 20-byte little-endian header followed by `count` float32 values:

    offset  size  field
    0       4     magic      b"RRL1"
    4       1     kind       1 HELLO, 2 SPEC, 3 OBS, 4 ACTION, 5 BYE
    5       1     reserved   0
    6       2     count      number of float32 values after the header (uint16)
    8       4     seq        sequence number (uint32)
    12      8     stamp_ns   sender's monotonic clock in nanoseconds (uint64)
    20      4*count values

The conversation:
1. The runner sends HELLO (count 0) until the robot answers.
2. The robot answers SPEC with values [obs_dim, act_dim, action_low..., action_high...]; the runner
   refuses to start when these differ from the policy's metadata.
3. The robot sends OBS (values = observation, seq increasing by one per observation, stamp = its clock
   when it measured). It may stream at its own rate or answer each ACTION with the next OBS
   (lock-step, what `deploy.peer` does).
4. Each control tick the runner takes the newest OBS that arrived, and sends ACTION with seq = the seq
   of the observation it acted on (the robot can measure its round trip) and values = the command.
   A datagram of the wrong size, kind or magic, or with a seq not above the last one accepted, is
   dropped and counted; no new observation within the watchdog time makes the runner send its safe
   action.
5. On exit (end of run, SIGINT, SIGTERM) the runner sends one last ACTION with the safe action, then BYE.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"RRL1"
HEADER = struct.Struct("<4sBBHIQ")
HELLO, SPEC, OBS, ACTION, BYE = 1, 2, 3, 4, 5
KINDS = {HELLO: "HELLO", SPEC: "SPEC", OBS: "OBS", ACTION: "ACTION", BYE: "BYE"}
MAX_DATAGRAM = 65_507
MAX_VALUES = (MAX_DATAGRAM - HEADER.size) // 4
"""float32 values one datagram can carry: 16,371, less than one 4x84x84 frame stack."""


@dataclass(frozen=True)
class Packet:
    kind: int
    seq: int
    stamp_ns: int
    values: np.ndarray


def encode(kind: int, seq: int, stamp_ns: int, values: np.ndarray | None = None) -> bytes:
    """One datagram. `values` become float32."""
    payload = np.asarray(values if values is not None else (), dtype="<f4").reshape(-1)
    return HEADER.pack(MAGIC, kind, 0, payload.size, seq & 0xFFFFFFFF, stamp_ns & (2**64 - 1)) + payload.tobytes()


def encode_into(buffer: bytearray, kind: int, seq: int, stamp_ns: int, values: np.ndarray) -> int:
    """Write a datagram into a preallocated buffer; returns its length (the control loop's send path)."""
    HEADER.pack_into(buffer, 0, MAGIC, kind, 0, values.size, seq & 0xFFFFFFFF, stamp_ns & (2**64 - 1))
    end = HEADER.size + 4 * values.size
    np.frombuffer(buffer, dtype="<f4", count=values.size, offset=HEADER.size)[:] = values
    return end


def decode(data: bytes | memoryview, expect_kind: int | None = None, expect_count: int | None = None) -> Packet:
    """Parse a datagram; ValueError says what is wrong with it."""
    if len(data) < HEADER.size:
        raise ValueError(f"datagram of {len(data)} bytes is shorter than the {HEADER.size}-byte header")
    magic, kind, _, count, seq, stamp = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
    if len(data) != HEADER.size + 4 * count:
        raise ValueError(f"datagram of {len(data)} bytes, header says {count} values ({HEADER.size + 4 * count})")
    if expect_kind is not None and kind != expect_kind:
        raise ValueError(f"{KINDS.get(kind, kind)} datagram, expected {KINDS[expect_kind]}")
    if expect_count is not None and count != expect_count:
        raise ValueError(f"{count} values, expected {expect_count}")
    values = np.frombuffer(data, dtype="<f4", count=count, offset=HEADER.size)
    return Packet(kind, seq, stamp, values)


def spec_values(obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.concatenate([[obs_dim, act_dim], np.asarray(low).reshape(-1), np.asarray(high).reshape(-1)])


def parse_spec_values(values: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(obs_dim, act_dim, low, high) of a SPEC datagram's values."""
    if values.size < 2:
        raise ValueError("SPEC datagram has fewer than 2 values")
    obs_dim, act_dim = int(values[0]), int(values[1])
    if values.size != 2 + 2 * act_dim:
        raise ValueError(f"SPEC datagram has {values.size} values, expected {2 + 2 * act_dim} for act_dim {act_dim}")
    return obs_dim, act_dim, values[2:2 + act_dim].copy(), values[2 + act_dim:].copy()
