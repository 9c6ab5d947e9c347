"""Thread counts for torch (and OpenMP libraries) that do not oversubscribe the cores.

Torch's default (one thread per core in every process) is wrong when several processes run
side by side: 2 jobs x 2 threads on 2 cores ran 5-40x slower than 2 x 1. Every command that
runs torch takes its default from here: the cores this process may use, divided by the
number of jobs running at once (at least 1).

Example::

    n = set_torch_threads(args.num_threads, jobs=args.nj)   # None -> cores // nj
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(jobs: int = 1) -> int:
    """Threads per process when ``jobs`` processes run at once: cores // jobs, at least 1."""
    return max(1, available_cores() // max(1, int(jobs)))


def set_torch_threads(num_threads: int | None = None, jobs: int = 1) -> int:
    """Set torch's intra-op threads to ``num_threads`` (None or 0: ``default_threads(jobs)``);
    returns the number set."""
    import torch

    n = int(num_threads) if num_threads else default_threads(jobs)
    torch.set_num_threads(n)
    return n
