"""State priors for hybrid decoding: log p(s) from alignment counts (Sak et al. 2014:
silence-state counts divided by 2.7), floored and renormalised.

Decoding uses the scaled likelihood log p(s|x) − log p(s)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from asr.errors import AlignmentError, FormatError

log = logging.getLogger(__name__)


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


# Log prior of a pdf never seen in the alignments: so large that ``log p(s|x) - log p(s)``
# rules the pdf out in decoding (Kaldi nnet1's PdfPrior "disables" such pdfs the same way).
# Without it an unseen pdf's tiny floored prior would turn its near-zero posterior into
# the best score of every frame.
UNSEEN_LOG_PRIOR = 1.0e4


def log_priors_from_counts(counts: np.ndarray, silence_pdfs: Iterable[int] = (), silence_factor: float = 2.7,
                           floor: float = 1e-8) -> np.ndarray:
    """``float32`` log-priors: silence counts / ``silence_factor``, normalise, floor, renormalise;
    pdfs with no count get ``UNSEEN_LOG_PRIOR`` (disabled in decoding)."""
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
    seen = c > 0
    p = np.maximum(c[seen] / c[seen].sum(), floor)
    out = np.full(len(c), UNSEEN_LOG_PRIOR)
    out[seen] = np.log(p / p.sum())
    if not seen.all():
        log.warning("%d of %d pdfs never occur in the alignments; they are disabled in decoding",
                    int((~seen).sum()), len(c))
    return out.astype(np.float32)


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
