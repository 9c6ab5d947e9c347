"""State priors for hybrid decoding: log p(s) from alignment counts (Sak et al. 2014:
silence-state counts divided by 2.7), floored and renormalised.

Decoding uses the scaled likelihood log p(s|x) − log p(s)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from asr.errors import AlignmentError, FormatError


def count_pdfs(alignments: Iterable[tuple[str, np.ndarray]], num_pdfs: int, source: str = "alignments") -> np.ndarray:
    """Frame counts per pdf id (float64[num_pdfs]); an id out of range is an error."""
    counts = np.zeros(num_pdfs, dtype=np.float64)
    for utt, ali in alignments:
        if len(ali) == 0:
            continue
        lo, hi = int(ali.min()), int(ali.max())
        if lo < 0 or hi >= num_pdfs:
            raise AlignmentError(f"{source}: utterance {utt}: pdf id {hi if hi >= num_pdfs else lo} "
                                 f"out of range [0, {num_pdfs})")
        counts += np.bincount(ali, minlength=num_pdfs)
    return counts


def log_priors_from_counts(counts: np.ndarray, silence_pdfs: Iterable[int] = (), silence_factor: float = 2.7,
                           floor: float = 1e-8) -> np.ndarray:
    """``float32`` log-priors: silence counts / ``silence_factor``, normalise, floor, renormalise."""
    c = np.asarray(counts, dtype=np.float64).copy()
    if c.sum() <= 0:
        raise AlignmentError("no frames to estimate priors from")
    if silence_factor <= 0:
        raise ValueError("silence factor must be positive")
    sil = np.asarray(list(silence_pdfs), dtype=np.int64)
    if len(sil):
        if sil.min() < 0 or sil.max() >= len(c):
            raise AlignmentError(f"silence pdf id out of range [0, {len(c)})")
        c[sil] /= silence_factor
    p = c / c.sum()
    p = np.maximum(p, floor)
    p /= p.sum()
    return np.log(p).astype(np.float32)


def read_int_list(path: str | os.PathLike) -> list[int]:
    """Integers, one or more per line (e.g. ``silence_pdfs.int``)."""
    out: list[int] = []
    path = Path(path)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for tok in line.split():
            try:
                out.append(int(tok))
            except ValueError:
                raise FormatError(f"{path}:{lineno}: not an integer: {tok!r}") from None
    return out
