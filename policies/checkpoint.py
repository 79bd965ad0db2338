"""Checkpoints written atomically: a killed process leaves the previous file whole."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch


@contextmanager
def atomic_file(path: str | Path, exclusive: bool = False) -> Iterator[IO[bytes]]:
    """A binary file that replaces `path` only when the block completes: written to a temporary file in
    the same folder, fsynced, then renamed over `path`; an error or a kill leaves `path` as it was.
    `exclusive`: never replace; FileExistsError where `path` exists (another process won the race)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); a run's files are meant to be read by others too.
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # atomic and refuses an existing name, which a rename would replace
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if disk_full(exc):
            # torch.save reports it as "[enforce fail at inline_container.cc:672] . unexpected pos ...".
            raise no_space(path) from exc
        raise


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable: until its directory entry is on disk, a power loss can bring back
    the previous file (or none) although the new one was fsynced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the temporary files of writes that a kill -9 or a power loss stopped before their rename (a
    pixel DQN's is gigabytes); returns them. Call it where no write into `folder` is under way."""
    leftovers = sorted(Path(folder).glob(".*.tmp"))
    for tmp in leftovers:
        tmp.unlink(missing_ok=True)
    return leftovers


def no_space(path: str | Path) -> OSError:
    """ENOSPC as one line that names the file (OSError's own text names neither it nor the cause)."""
    full = OSError(f"{path}: No space left on device (the previous file is left as it was)")
    full.errno = errno.ENOSPC
    return full


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc` or an exception it was raised from or during is ENOSPC."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def atomic_write_bytes(path: str | Path, data: bytes, exclusive: bool = False) -> None:
    """Write `data` to `path` atomically (see atomic_file; `exclusive`: only where no `path` exists)."""
    with atomic_file(path, exclusive) as f:
        f.write(data)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically, streamed to the file: a pixel DQN's replay is gigabytes,
    and serializing it to memory first needed several times its size on top of the run."""
    with atomic_file(path) as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint, with a clear error for a missing or damaged file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged file
        raise ValueError(f"checkpoint {path} is damaged or not a robotrl checkpoint: {exc}") from exc
