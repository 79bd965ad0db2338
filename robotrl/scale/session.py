"""Connecting to Ray: a local instance started for the run, or a cluster that is already running."""

from __future__ import annotations

import os

import ray

from robotrl.config import ScaleConfig


def resolve_address(scale: ScaleConfig) -> str:
    """The address ray.init gets: the config's, else $RAY_ADDRESS, else "local" (a new instance here)."""
    if scale.address:
        return scale.address
    return os.environ.get("RAY_ADDRESS") or "local"


class RaySession:
    """ray.init on enter unless Ray is already up (a test fixture, a user's script); shutdown only what we
    started, so a cluster or an outer session outlives the run."""

    def __init__(self, scale: ScaleConfig) -> None:
        self.scale = scale
        self.started = False

    def __enter__(self) -> RaySession:
        if ray.is_initialized():
            return self
        address = resolve_address(self.scale)
        kwargs: dict = {"include_dashboard": False, "log_to_driver": True}
        if address == "local":
            kwargs["num_cpus"] = self.scale.num_cpus or os.cpu_count()
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise ConnectionError(f"scale.address {address!r}: no Ray cluster answered ({exc}); start one "
                                  "with `ray start --head` or use scale.address: local") from exc
        self.started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            ray.shutdown()
            self.started = False
