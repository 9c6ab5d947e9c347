"""Worker processes that do not outlive the command that started them.

A pool worker (make-fbank, align, decode, augment-data-dir jobs) or a step's subprocess
(flat-start's ``asr train``/``asr align``) whose parent is killed (SIGKILL, OOM killer, a
closed terminal) would otherwise go on: an idle pool worker waits for work forever, a busy
one keeps writing into the output dir a re-run is about to write, a training keeps two
cores busy. On Linux each of them asks the kernel to kill it when its parent exits
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere nothing changes.

Example::

    pool = ProcessPoolExecutor(nj, initializer=die_with_parent, initargs=(os.getpid(),))
    subprocess.run(cmd, preexec_fn=die_with_parent)
"""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # loaded in the parent: a preexec_fn child must not load libraries


def die_with_parent(parent: int | None = None) -> None:
    """Kill this process (SIGKILL) when its parent exits. ``parent``: the pid the parent had
    before the fork; when the parent is already gone by then, exit at once."""
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
