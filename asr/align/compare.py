"""``asr compare-ali REF HYP``: phone-level agreement of two alignments.

REF and HYP are each a phone CTM (``utt channel start duration phone``; gaps between
phones are silence) or an alignment dir (``ali.tid.ark`` + ``final.mdl``, or
``phones.ark``, with ``phones.txt`` for the names). Phones are compared by base name:
word-position suffixes (``_B _E _I _S``) are dropped and every silence phone is one
label, so a monophone dir, a triphone dir and a CTM of base phones compare directly.

Frame times. An alignment dir labels frames; under the ``center`` convention (as
``asr import-ali``'s default) frame k stands for the window centre k·shift + length/2, so
the boundary between frames k−1 and k is at k·shift + (length − shift)/2 (7.5 ms for
25/10 ms frames); under ``kaldi`` it is at k·shift. A CTM's frames are labelled by the same
convention (``asr.align.timed.intervals_to_frames``). An exactly imported CTM therefore
agrees with its CTM to within half a frame.

Figures (over the utterances in both):

- boundaries within 10/20/40 ms: the share of REF's phone boundaries (between consecutive
  phones of an utterance; not its start and end) that HYP reproduces within the tolerance.
  The two label sequences are aligned by edit distance; a REF boundary between phones i and
  i+1 is compared with the end of HYP's phone matched to i and the start of HYP's phone
  matched to i+1 (the nearer; they are the same point unless HYP inserted a phone, e.g. a
  short silence, between them). A boundary with neither phone matched counts as missed.
- frame phone agreement: the share of frames whose (base) phone is the same.
- boundary offset: mean and median of HYP's time minus REF's over the matched boundaries
  (the nearer of the two candidates above, signed): a systematic shift (an output delay or a
  frame-time convention applied wrongly) shows here, where the tolerance shares cannot tell
  early from late. With 10 ms CTM times and the ``center`` convention an exact alignment is
  at −2.5 ms (the frame grid's boundaries are at 10k + 7.5 ms). ``--json`` adds a histogram
  in whole frames.

Two sides of different phone sets (more than half of one side's non-silence phone tokens
missing from the other, e.g. lower-cased names) are an error, not figures.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import AlignmentError, FormatError

log = logging.getLogger(__name__)

TOLERANCES_MS = (10, 20, 40)
SILENCE = "<sil>"
DEFAULT_SILENCE_PHONES = ("SIL", "SPN", "NSN", "sil", "spn", "sp", "<sil>", "")
_POSITION = re.compile(r"_[BEIS]$")


@dataclass
class Segments:
    """One utterance: phone labels and boundary times; ``frames``: label per frame."""

    labels: list[str]
    starts: np.ndarray  # float64 seconds
    ends: np.ndarray
    frames: np.ndarray | None = None  # int label ids per frame (alignment dirs)


@dataclass
class Comparison:
    utterances: int
    boundaries: int
    within: dict[int, int]  # tolerance (ms) -> boundaries within it
    frames: int
    frames_agree: int
    errors_ms: np.ndarray  # per matched boundary: HYP's time minus REF's (signed)
    only_ref: int
    only_hyp: int

    @property
    def abs_errors_ms(self) -> np.ndarray:
        return np.abs(self.errors_ms)

    def percent_within(self, ms: int) -> float:
        return 100.0 * self.within[ms] / max(self.boundaries, 1)

    @property
    def frame_agreement(self) -> float:
        return 100.0 * self.frames_agree / max(self.frames, 1)

    def lines(self) -> list[str]:
        """The printed report: one line per tolerance; the 20 ms line carries the frame figure."""
        out = []
        for ms in TOLERANCES_MS:
            line = (f"boundaries within {ms} ms: {self.percent_within(ms):.1f} % "
                    f"({self.boundaries:,} boundaries, {self.utterances:,} utts)")
            if ms == 20:
                line += f"; frame phone agreement {self.frame_agreement:.1f} %"
            out.append(line)
        err = self.errors_ms
        if len(err):
            out.append(f"boundary offset HYP - REF: mean {err.mean():+.1f} ms, median {np.median(err):+.1f} ms "
                       f"({len(err):,} matched boundaries)")
        return out

    def to_json(self) -> dict:
        err, signed = self.abs_errors_ms, self.errors_ms
        return {
            "utterances": self.utterances, "boundaries": self.boundaries,
            **{f"within_{ms}ms": round(self.percent_within(ms), 3) for ms in TOLERANCES_MS},
            "frame_phone_agreement": round(self.frame_agreement, 3), "frames": self.frames,
            "matched_boundaries": len(err),
            "mean_abs_error_ms": round(float(err.mean()), 3) if len(err) else None,
            "median_abs_error_ms": round(float(np.median(err)), 3) if len(err) else None,
            "mean_offset_ms": round(float(signed.mean()), 3) if len(err) else None,
            "median_offset_ms": round(float(np.median(signed)), 3) if len(err) else None,
            "offset_histogram_frames": _histogram_frames(signed),
            "utterances_only_in_ref": self.only_ref, "utterances_only_in_hyp": self.only_hyp,
        }


class LabelNormaliser:
    """Phone name → comparison label: base phone, one label for every silence."""

    def __init__(self, silence_phones=DEFAULT_SILENCE_PHONES):
        self.silence = set(silence_phones)

    def __call__(self, name: str) -> str:
        if name in self.silence:
            return SILENCE
        base = _POSITION.sub("", name)
        return SILENCE if base in self.silence else base


def compare_alignments(ref, hyp, silence_phones=None, convention: str = "center", frame_shift: float = 0.01,
                       frame_length: float = 0.025) -> Comparison:
    """Compare two alignments (paths of CTMs or alignment dirs); see the module docstring."""
    norm = LabelNormaliser(silence_phones if silence_phones is not None else DEFAULT_SILENCE_PHONES)
    offset = (frame_length - frame_shift) / 2 if convention == "center" else 0.0
    r = load_segments(ref, norm, frame_shift, offset)
    h = load_segments(hyp, norm, frame_shift, offset)
    common = sorted(set(r) & set(h))
    if not common:
        raise AlignmentError(f"{ref} and {hyp} have no utterance in common")
    _check_phone_sets(ref, [r[u] for u in common], hyp, [h[u] for u in common])
    from asr.score.align import align_many

    steps = align_many([(r[u].labels, h[u].labels) for u in common], rule="align-text")
    vocab: dict[str, int] = {}
    n_bound = 0
    errors: list[np.ndarray] = []
    frames = agree = 0
    for u, st in zip(common, steps):
        rs, hs = r[u], h[u]
        match = np.full(len(rs.labels), -1, np.int64)  # hyp index matched to each ref phone
        i = j = 0
        for _, _, op in st:
            if op == "C":
                match[i] = j
            if op in "CSD":
                i += 1
            if op in "CSI":
                j += 1
        nb = len(rs.labels) - 1
        n_bound += max(nb, 0)
        if nb > 0:
            t = rs.ends[:-1]
            left, right = match[:-1], match[1:]
            c1 = np.where(left >= 0, hs.ends[np.maximum(left, 0)] - t, np.inf)
            c2 = np.where(right >= 0, hs.starts[np.maximum(right, 0)] - t, np.inf)
            errors.append(np.where(np.abs(c2) < np.abs(c1), c2, c1) * 1000.0)
        fr, fh = _frame_labels(rs, hs, convention, frame_shift, frame_length, vocab)
        frames += len(fr)
        agree += int((fr == fh).sum())
    err = np.concatenate(errors) if errors else np.zeros(0)
    within = {ms: int((np.abs(err) <= ms + 1e-6).sum()) for ms in TOLERANCES_MS}
    return Comparison(len(common), n_bound, within, frames, agree, err[np.isfinite(err)],
                      len(set(r) - set(h)), len(set(h) - set(r)))


def _check_phone_sets(ref, ref_segs: list[Segments], hyp, hyp_segs: list[Segments], max_share: float = 0.5) -> None:
    """AlignmentError when more than ``max_share`` of one side's non-silence phone tokens are
    phones the other side never has (two phone sets, e.g. lower-cased names): the figures
    would measure the naming, not the boundaries."""
    from collections import Counter

    sides = [(name, Counter(x for s in segs for x in s.labels if x != SILENCE))
             for name, segs in ((ref, ref_segs), (hyp, hyp_segs))]
    for (name, mine), (other_name, other) in (sides, sides[::-1]):
        absent = sum(n for p, n in mine.items() if p not in other)
        if absent > max_share * sum(mine.values()):
            only = sorted(set(mine) - set(other), key=lambda p: -mine[p])[:5]
            only_other = sorted(set(other) - set(mine), key=lambda p: -other[p])[:5]
            raise AlignmentError(
                f"{name}: {100 * absent / sum(mine.values()):.0f} % of its phones are not in {other_name} "
                f"(only in {name}: {' '.join(only)}; only in {other_name}: {' '.join(only_other) or '-'}): "
                "not one phone set")


def _histogram_frames(err_ms: np.ndarray, frame_ms: float = 10.0, span: int = 5) -> dict[str, int]:
    """Signed boundary offsets in whole frames (rounded; beyond ±span frames pooled), e.g.
    {"-1": 120, "0": 900, "+1": 300, ">+5": 4}."""
    k = np.round(np.asarray(err_ms) / frame_ms).astype(np.int64)
    out = {}
    if (k < -span).any():
        out[f"<-{span}"] = int((k < -span).sum())
    for v in range(-span, span + 1):
        n = int((k == v).sum())
        if n:
            out[f"{v:+d}" if v else "0"] = n
    if (k > span).any():
        out[f">+{span}"] = int((k > span).sum())
    return out


def _frame_labels(rs: Segments, hs: Segments, convention, shift, length, vocab) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame label ids of both sides over the frames of the side that has frames
    (alignment dir), the CTM side labelled by the frame convention; two CTMs: by their
    span."""
    T = len(hs.frames) if hs.frames is not None else len(rs.frames) if rs.frames is not None else None
    if T is None:
        from asr.align.timed import expected_frames

        T = expected_frames(max(rs.ends[-1], hs.ends[-1]), shift, length)

    def labels(s: Segments) -> np.ndarray:
        ids = np.array([vocab.setdefault(x, len(vocab)) for x in s.labels], np.int64)
        if s.frames is not None:
            f = ids[s.frames]
        else:
            point = np.arange(T) * shift + (length / 2 if convention == "center" else shift / 2)
            k = np.searchsorted(s.starts, point, side="right") - 1
            f = ids[np.clip(k, 0, len(ids) - 1)]
        return f[:T] if len(f) >= T else np.concatenate([f, np.full(T - len(f), -1)])

    return labels(rs), labels(hs)


# -- loading -----------------------------------------------------------------------

def load_segments(path, norm: LabelNormaliser, frame_shift: float, offset: float) -> dict[str, Segments]:
    p = Path(path)
    if p.is_dir():
        return _segments_from_ali_dir(p, norm, frame_shift, offset)
    if p.is_file():
        return _segments_from_ctm(p, norm)
    raise FormatError(f"{path}: no such CTM file or alignment dir")


def _segments_from_ctm(path: Path, norm: LabelNormaliser) -> dict[str, Segments]:
    """CTM intervals; a gap between intervals is silence; consecutive silences merge."""
    from asr.align.timed import read_ctm

    out = {}
    for utt, ivs in read_ctm(path).items():
        labels, starts, ends = [], [], []
        for iv in ivs:
            if ends and iv.start > ends[-1] + 1e-6:
                _append(labels, starts, ends, SILENCE, ends[-1], iv.start)
            _append(labels, starts, ends, norm(iv.label), iv.start, iv.end)
        if labels:
            out[utt] = Segments(labels, np.array(starts), np.array(ends))
    if not out:
        raise FormatError(f"{path}: no CTM lines")
    return out


def _append(labels, starts, ends, label, start, end) -> None:
    if labels and label == SILENCE and labels[-1] == SILENCE:
        ends[-1] = max(ends[-1], end)
        return
    labels.append(label)
    starts.append(start)
    ends.append(end)


def _segments_from_ali_dir(d: Path, norm: LabelNormaliser, frame_shift: float, offset: float) -> dict[str, Segments]:
    """Phone instances of an alignment dir (SplitToPhones on ali.tid.ark when final.mdl is
    there, else runs of phones.ark) with frame times; consecutive silences merge."""
    from asr.io.int_ark import iter_int_ark
    from asr.lang.lang_dir import read_symbol_table

    names_path = d / "phones.txt"
    if not names_path.is_file():
        raise FormatError(f"{d}: no phones.txt (needed for phone names)")
    names = {i: n for n, i in read_symbol_table(names_path).items()}
    if (d / "ali.tid.ark").is_file() and (d / "final.mdl").is_file():
        from asr.hmm.kaldi_ali import split_to_phones
        from asr.hmm.transition_model import TransitionModel

        tm = TransitionModel.read(d / "final.mdl")
        items = ((u, split_to_phones(tm, a, u)) for u, a in iter_int_ark(d / "ali.tid.ark"))
    elif (d / "phones.ark").is_file():
        items = ((u, _runs(a)) for u, a in iter_int_ark(d / "phones.ark"))
    else:
        raise FormatError(f"{d}: not an alignment dir (no ali.tid.ark + final.mdl, no phones.ark)")
    out = {}
    for utt, (phones, lengths) in items:
        if len(phones) == 0:
            continue
        labels = []
        for p in phones.tolist():
            if p not in names:
                raise FormatError(f"{d}: utterance {utt}: phone id {p} not in phones.txt")
            labels.append(norm(names[p]))
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        keep = np.ones(len(labels), bool)
        keep[1:] = ~((np.array(labels[1:]) == SILENCE) & (np.array(labels[:-1]) == SILENCE))
        starts_f = bounds[:-1][keep]
        ends_f = np.concatenate([starts_f[1:], [bounds[-1]]])
        labels = [x for x, k in zip(labels, keep) if k]
        frame_seg = np.repeat(np.arange(len(labels)), ends_f - starts_f)
        T = int(bounds[-1])
        t_start = np.where(starts_f == 0, 0.0, starts_f * frame_shift + offset)
        t_end = np.where(ends_f == T, T * frame_shift + offset, ends_f * frame_shift + offset)
        out[utt] = Segments(labels, t_start, t_end, frame_seg)
    return out


def _runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    if len(a) == 0:
        return a, a
    change = np.nonzero(a[1:] != a[:-1])[0] + 1
    starts = np.concatenate([[0], change])
    return a[starts], np.diff(np.concatenate([starts, [len(a)]]))


def silence_phones_of_lang(lang_dir: str | os.PathLike) -> list[str]:
    """Silence phone names of a lang dir (with their position variants)."""
    from asr.lang.lang_dir import LangDir

    lang = LangDir(lang_dir)
    return [lang.phone_names[p] for p in lang.silence_phones]
