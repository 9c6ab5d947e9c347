"""Split a data dir into N jobs by speaker (Kaldi ``split_data.sh``).

Speakers are taken in sorted order and cut into N contiguous blocks with about the same
number of utterances, so no speaker is in two jobs and every job stays sorted.
"""

from __future__ import annotations

import os
from pathlib import Path

from asr.data.datadir import DataDir, subset_data_dir
from asr.errors import DataDirError


def split_by_speaker(data_dir: str | os.PathLike | DataDir, n: int) -> list[list[str]]:
    """Utterance ids of each of the ``n`` jobs (sorted within a job). Raises DataDirError when
    there are fewer speakers than jobs (a job would be empty)."""
    dd = data_dir if isinstance(data_dir, DataDir) else DataDir.load(data_dir)
    if n < 1:
        raise DataDirError(f"number of jobs must be >= 1, got {n}")
    speakers = list(dd.spk2utt.items())
    if len(speakers) < n:
        raise DataDirError(f"{dd.path}: cannot split {len(speakers)} speakers into {n} jobs")
    total = sum(len(u) for _, u in speakers)
    jobs: list[list[str]] = [[] for _ in range(n)]
    done = 0  # utterances assigned so far
    job = 0
    for i, (_, utts) in enumerate(speakers):
        # move to the next job when this one has reached its share, keeping enough
        # speakers for the remaining jobs
        left_spk = len(speakers) - i
        left_jobs = n - job - 1
        if jobs[job] and (done >= total * (job + 1) / n or left_spk <= left_jobs):
            job += 1
        jobs[job].extend(utts)
        done += len(utts)
    return jobs


def split_data_dir(data_dir: str | os.PathLike, n: int) -> list[Path]:
    """Write ``DATA_DIR/split{n}/{1..n}`` (each a complete data dir) and return their paths."""
    data_dir = Path(data_dir)
    dd = DataDir.load(data_dir)
    out = []
    for j, utts in enumerate(split_by_speaker(dd, n), 1):
        out.append(subset_data_dir(data_dir, data_dir / f"split{n}" / str(j), utts))
    return out
