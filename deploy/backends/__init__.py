"""Robot backends of the runner: `sim` (an env in lock-step) and `udp` (a robot's computer)."""

from deploy.backends.base import Backend, BackendError, Reading

__all__ = ["Backend", "BackendError", "Reading"]
