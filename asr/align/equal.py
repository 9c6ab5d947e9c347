"""Equal (uniform) alignment of an utterance's training graph: Kaldi's ``align-equal-compiled``.

Two ways to choose the path through the graph (``silence``):

``edges`` (default): silence at the start and the end of the utterance, none between words,
  pronunciation variants drawn at random; every HMM state on the path (left to right
  through each phone's topology, 5 states for silence) gets the same number of frames. On
  the synth corpus this labels 32 % of the training frames with the right phone, against
  16 % for ``random``: most recordings begin and end in silence, and a random walk through
  the silence HMM's inner loop hands it arbitrary shares of the utterance.
``random``: Kaldi's ``EqualAlign`` exactly, as below.

For ``random``, the training graph is the one forced alignment searches (``ForcedAligner.graph``: lexicon
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


SILENCE_POLICIES = ("edges", "random")


def equal_align(aligner, word_ids: list[int], num_frames: int, utt: str = "?", seed: int = 0,
                silence: str = "edges", compiler=None, num_retries: int = 10) -> np.ndarray:
    """Transition-ids (int32 [num_frames], Kaldi's reordered form when the aligner reorders)
    of an equal alignment of ``word_ids`` to ``num_frames`` frames.

    ``aligner`` is an ``asr.align.forced.ForcedAligner`` (its lang, tree and transition
    model; it builds the graph for ``random``); ``compiler`` an
    ``asr.align.compile.AlignmentCompiler`` of the same tree (``edges``; made when None).
    Raises AlignmentError when no path fits in ``num_frames`` frames."""
    if silence == "edges":
        return _equal_align_edges(aligner, word_ids, num_frames, utt, seed, compiler)
    if silence != "random":
        raise AlignmentError(f"unknown silence policy {silence!r} (one of {', '.join(SILENCE_POLICIES)})")
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
        from asr.hmm.kaldi_ali import reorder_alignment

        tids = reorder_alignment(aligner.tm, tids)
    return tids.astype(np.int32)


def _equal_align_edges(aligner, word_ids, num_frames, utt, seed, compiler) -> np.ndarray:
    """Silence + the words' phones + silence, each HMM state the same number of frames
    (the first ``num_frames mod states`` one more, as Kaldi's EqualAlign); without the edge
    silences when the utterance is too short for them."""
    from asr.align.compile import AlignmentCompiler

    lang = aligner.lang
    if compiler is None:
        compiler = AlignmentCompiler(aligner.tree, aligner.tm, reorder=aligner.reorder)
    rng = np.random.default_rng(utterance_seed(utt, seed))
    words = []
    for w in word_ids:
        prons = lang.align_lexicon.get(w)
        if not prons:
            raise AlignmentError(f"utterance {utt}: word id {w} has no pronunciation")
        words += prons[int(rng.integers(len(prons)))] if len(prons) > 1 else prons[0]
    sil = lang.optional_silence
    for phones in ([sil, *words, sil], words):
        phones = np.asarray(phones, dtype=np.int64)
        n_states = compiler.num_states[phones]
        total = int(n_states.sum())
        if total <= num_frames:
            break
    else:
        raise AlignmentError(f"utterance {utt}: {num_frames} frames are too few for its transcript's "
                             f"{total} HMM states")
    per_state = np.full(total, num_frames // total, dtype=np.int64)
    per_state[: num_frames % total] += 1
    state_ids = np.concatenate([np.arange(k) for k in n_states])
    states = np.repeat(state_ids, per_state)
    lengths = np.add.reduceat(per_state, np.concatenate([[0], np.cumsum(n_states)[:-1]]))
    return compiler.compile(phones, lengths, states, utt=utt).tids
