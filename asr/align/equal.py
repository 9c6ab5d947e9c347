"""Equal (uniform) alignment of an utterance's training graph: Kaldi's ``align-equal-compiled``.

The training graph is the one forced alignment searches (``ForcedAligner.graph``: lexicon
variants, optional silence between words, tree context, HMMs with self-loops). kaldifst's
``equal_align`` (Kaldi's ``EqualAlign``) takes a random path through it, choosing among
the arcs of each state with equal probability (so optional silence is taken at about half
the word boundaries and pronunciation variants are picked at random), retrying up to
``num_retries`` times while the path has more emitting arcs than the utterance has frames;
then it spreads the remaining frames evenly over the self-loops of the HMM states on the
path. Every HMM state on the path therefore gets (nearly) the same number of frames.

The random seed of an utterance is a hash of its id (as Kaldi), plus ``seed``, so the
result does not depend on job splitting or order.
"""

from __future__ import annotations

import zlib

import numpy as np

from asr.errors import AlignmentError


def utterance_seed(utt: str, seed: int = 0) -> int:
    """A stable 31-bit seed per utterance id (independent of process and order)."""
    return (zlib.crc32(utt.encode("utf-8")) + 7919 * int(seed)) & 0x7FFFFFFF


def equal_align(aligner, word_ids: list[int], num_frames: int, utt: str = "?", seed: int = 0,
                num_retries: int = 10) -> np.ndarray:
    """Transition-ids (int32 [num_frames], Kaldi's reordered form when the aligner reorders)
    of an equal alignment of ``word_ids`` to ``num_frames`` frames.

    ``aligner`` is an ``asr.align.forced.ForcedAligner`` (it builds the graph). Raises
    AlignmentError when no path of the graph fits in ``num_frames`` frames."""
    import kaldifst

    fst, graph_tids = aligner.graph(word_ids)
    ok, path = kaldifst.equal_align(fst, int(num_frames), utterance_seed(utt, seed), num_retries)
    if not ok:
        raise AlignmentError(f"utterance {utt}: {num_frames} frames are too few for its transcript's "
                             "HMM states (equal alignment found no path that fits)")
    ok, isyms, _, _ = kaldifst.get_linear_symbol_sequence(path)
    tids = graph_tids[np.asarray(isyms, dtype=np.int64) - 1]
    if not ok or len(tids) != num_frames:
        raise AlignmentError(f"utterance {utt}: equal alignment has {len(tids)} frames, expected {num_frames}")
    if aligner.reorder:
        from asr.align.kaldi_ali import reorder_alignment

        tids = reorder_alignment(aligner.tm, tids)
    return tids.astype(np.int32)
