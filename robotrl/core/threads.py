"""One thread per training or acting process, for torch and for numpy's BLAS alike.

On this project's 2-core machines a second torch thread makes small-network updates many times
slower, and numpy's OpenBLAS is no different: it starts a worker per core at import and, once a
matrix product is big enough to split (the rollout sampler's 256-wide layers are), that worker spins
at 100% CPU between calls. Measured: two A2C runs side by side each held a spinning BLAS thread and
fell to 4.5k steps/s. threadpoolctl limits the BLAS pool of whichever library numpy loaded.
"""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits

_blas_limit = None


def limit_threads(n: int = 1) -> None:
    """Run torch's intra-op pool and the BLAS pools with `n` threads in this process."""
    global _blas_limit
    torch.set_num_threads(n)
    _blas_limit = threadpool_limits(limits=n, user_api="blas")  # kept alive: the limit holds while referenced
