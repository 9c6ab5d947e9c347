"""Job processes die with the command that started them (SIGKILL of make-fbank's parent)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers_datadir import make_data_dir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_make_fbank_workers_die_when_the_command_is_killed(tmp_path):
    data = make_data_dir(tmp_path, speakers=("spk1", "spk2"), per_speaker=1, seconds=0.3)
    script = textwrap.dedent(f"""
        import time
        from asr.features import fbank
        from asr.features.make_fbank import make_fbank
        def slow(self, x):
            time.sleep(60)  # a job that outlives its parent unless it dies with it
        fbank.FbankComputer.compute = slow
        make_fbank({str(data)!r}, nj=2, progress=False)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while len(workers) < 2 and time.time() < deadline and parent.poll() is None:
            time.sleep(0.2)
            workers = [c for c in _children(parent.pid) if _alive(c)]
        assert len(workers) >= 2, "make-fbank did not start its two workers"
        time.sleep(0.5)  # the workers are in their jobs
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.time() + 10
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "a make-fbank worker outlived its killed parent"
    finally:
        for pid in [parent.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
