"""Word times from the decoder's alignment, word confidences, and word CTMs.

The decoder's best path is a sequence of transition-ids, one per frame (row t of the
acoustic matrix is frame t: the network's output delay is already shifted out), and the
word ids it emits. Kaldi's ``lattice-align-words`` rule places the word boundaries:
the path is split into phone instances (``SplitToPhones``) and, with position-dependent
phones (``word_boundary.int``: begin, end, internal, singleton, nonword), a word spans
the phones from a ``begin`` to the next ``end`` (or one ``singleton``); ``nonword``
phones (silence) lie between words. The i-th such span is the i-th word of the path.

Times are frame-exact: a word starting at frame t starts at ``t * frame_shift`` seconds
(Kaldi's convention), and lasts ``num_frames * frame_shift``.

CTM lines (NIST / Kaldi ``lattice-to-ctm-conf``): ``<utt> 1 <start> <dur> <word> <conf>``.
Confidences are word posteriors from the word lattice (``word_confidences``) where the
decoder made one, else 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import DecodeError, ModelError

NONWORD, BEGIN, END, INTERNAL, SINGLETON = 0, 1, 2, 3, 4
_KINDS = {"nonword": NONWORD, "begin": BEGIN, "end": END, "internal": INTERNAL, "singleton": SINGLETON}
_SUFFIX = {"_B": BEGIN, "_E": END, "_I": INTERNAL, "_S": SINGLETON}


@dataclass
class WordTime:
    word: int
    start: int  # first frame
    frames: int  # number of frames


@dataclass
class PhoneInfo:
    """Per phone id: word-boundary kind and whether it is a silence phone."""

    kind: np.ndarray  # int8 [num_phones + 1]
    silence: np.ndarray  # bool [num_phones + 1]
    source: str

    @classmethod
    def load(cls, *dirs: str | os.PathLike) -> "PhoneInfo":
        """From the first of ``dirs`` (graph dir, model dir) that has ``phones/word_boundary.int``
        (Kaldi lang/graph layout; ``phones/silence.int`` or ``.csl`` for the silence phones),
        else from the names in its ``phones.txt`` (Kaldi's position-dependent convention:
        ``_B/_E/_I/_S`` suffixes; the phones that also appear without a suffix are silence)."""
        from asr.lang.lang_dir import read_symbol_table

        for d in map(Path, dirs):
            wb = d / "phones" / "word_boundary.int"
            if wb.is_file() and (d / "phones.txt").is_file():
                table = read_symbol_table(d / "phones.txt")
                n = max(table.values()) + 1
                kind = np.zeros(n, np.int8)
                for ln, line in enumerate(wb.read_text().splitlines(), 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 2 or parts[1] not in _KINDS or not parts[0].isdigit() or int(parts[0]) >= n:
                        raise ModelError(f"{wb}:{ln}: expected '<phone-id> begin|end|internal|singleton|nonword'")
                    kind[int(parts[0])] = _KINDS[parts[1]]
                silence = _read_silence(d, n)
                if silence is None:
                    silence = np.zeros(n, bool)
                    names = {i: p for p, i in table.items()}
                    silence[[i for i in range(n) if _base(names.get(i, "")) in _unsuffixed(table)]] = True
                return cls(kind, silence, str(wb))
        for d in map(Path, dirs):
            if (d / "phones.txt").is_file():
                table = read_symbol_table(d / "phones.txt")
                n = max(table.values()) + 1
                kind = np.zeros(n, np.int8)
                silence = np.zeros(n, bool)
                sil_bases = _unsuffixed(table)
                positional = False
                for p, i in table.items():
                    k = _SUFFIX.get(p[-2:])
                    if k is not None:
                        kind[i] = k
                        positional = True
                    if _base(p) in sil_bases:
                        silence[i] = True
                if not positional:
                    raise ModelError(f"{d}/phones.txt has no position-dependent phones (_B/_E/_I/_S) and {d} has no "
                                     f"phones/word_boundary.int: word boundaries cannot be found")
                sil = _read_silence(d, n)
                return cls(kind, silence if sil is None else sil, str(d / "phones.txt"))
        raise ModelError(f"no phones.txt in {', '.join(map(str, dirs))}: cannot find word boundaries")


def _base(p: str) -> str:
    return p[:-2] if p[-2:] in _SUFFIX else p


def _unsuffixed(table: dict[str, int]) -> set[str]:
    """Base phones that appear without a position suffix (Kaldi: the silence phones)."""
    names = set(table)
    return {p for p in names if p not in ("<eps>",) and not p.startswith("#") and p[-2:] not in _SUFFIX
            and any(p + s in names for s in _SUFFIX)}


def _read_silence(d: Path, n: int) -> np.ndarray | None:
    for name in ("silence.int", "silence.csl"):
        f = d / "phones" / name
        if f.is_file():
            ids = [int(x) for x in f.read_text().replace(":", " ").split()]
            if any(i >= n for i in ids):
                raise ModelError(f"{f}: phone id out of range of phones.txt")
            sil = np.zeros(n, bool)
            sil[ids] = True
            return sil
    return None


def align_words(tids: np.ndarray, words: list[int], tm, info: PhoneInfo, partial: bool = False) -> list[WordTime]:
    """Times of ``words`` (the path's word ids, epsilons removed) from the path's
    transition-ids ``tids`` (one per frame). ``partial``: the path may end inside a word
    (a segment cut by the maximum-length rule); the open word then ends at the last frame,
    and words whose phones have not started yet get zero length at the end. Raises DecodeError when
    the phones do not group into as many words as the path has (e.g. a graph without
    position-dependent phones)."""
    from asr.hmm.kaldi_ali import split_to_phones

    tids = np.asarray(tids, dtype=np.int32)
    if len(words) == 0:
        return []
    phones, lengths = split_to_phones(tm, tids)
    if len(phones) and phones.max() >= len(info.kind):
        raise DecodeError(f"phone id {int(phones.max())} of the transition model is not in the phone table "
                          f"({info.source})")
    kind = info.kind[phones]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    begins = np.flatnonzero((kind == BEGIN) | (kind == SINGLETON))
    ends = np.flatnonzero((kind == END) | (kind == SINGLETON))
    if partial and len(begins) == len(ends) + 1:
        ends = np.append(ends, len(phones) - 1)  # word still open at the end of the path
    n = len(words)
    if partial and len(begins) == len(ends) and len(begins) < n:
        n = len(begins)  # output labels ahead of the phones: those words have no time yet
    ok = len(begins) == len(ends) == n and np.all(begins <= ends) and np.all(ends[:-1] < begins[1:])
    if not ok:
        raise DecodeError(f"cannot place word boundaries: the best path has {len(words)} words but its phones "
                          f"form {len(begins)} word starts and {len(ends)} word ends ({info.source})")
    s = starts[begins]
    e = starts[ends] + lengths[ends]
    out = [WordTime(int(w), int(a), int(b - a)) for w, a, b in zip(words[:n], s, e)]
    return out + [WordTime(int(w), len(tids), 0) for w in words[n:]]


def word_confidences(lat, words: list[int], acoustic_scale: float) -> np.ndarray:
    """Posterior of each word of the path labelled ``words`` in a word lattice
    (deterministic acceptor, unscaled acoustic costs): the arc posteriors at LM weight 1
    and ``acoustic_scale``, as Kaldi's ``lattice-to-ctm-conf`` without MBR. Raises
    DecodeError when the lattice has no such path."""
    from asr.lattice.posteriors import arc_posteriors

    post = arc_posteriors(lat, acoustic_scale)
    order = np.argsort(lat.src, kind="stable")
    indptr = np.zeros(lat.num_states + 1, np.int64)
    np.cumsum(np.bincount(lat.src, minlength=lat.num_states), out=indptr[1:])
    s = lat.start
    conf = []
    for w in words:
        while True:  # determinized word lattices have no epsilons; follow one if present
            arcs = order[indptr[s]:indptr[s + 1]]
            hit = arcs[lat.word[arcs] == w]
            if len(hit):
                a = hit[np.argmax(post[hit])]
                conf.append(post[a])
                s = int(lat.dst[a])
                break
            eps = arcs[lat.word[arcs] == 0]
            if not len(eps):
                raise DecodeError(f"word {w} of the best path is not in the word lattice")
            s = int(lat.dst[eps[np.argmax(post[eps])]])
    return np.clip(np.asarray(conf, dtype=np.float64), 0.0, 1.0)


def ctm_lines(utt: str, times: list[WordTime], words: dict[int, str], frame_shift: float,
              conf: np.ndarray | None = None, offset: float = 0.0) -> list[str]:
    """CTM lines ``<utt> 1 <start> <dur> <word> <conf>`` (times in seconds)."""
    digits = max(2, -int(np.floor(np.log10(frame_shift))) if frame_shift > 0 else 2)
    out = []
    for i, wt in enumerate(times):
        c = 1.0 if conf is None else float(conf[i])
        out.append(f"{utt} 1 {offset + wt.start * frame_shift:.{digits}f} {wt.frames * frame_shift:.{digits}f} "
                   f"{words.get(wt.word, str(wt.word))} {c:.2f}\n")
    return out


def read_ctm_words(path: str | os.PathLike) -> dict[str, list[tuple[float, float, str]]]:
    """A word CTM as ``utt -> [(start, duration, word), ...]`` in file order."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    for ln, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith(";;"):
            continue
        if len(parts) < 5:
            raise DecodeError(f"{path}:{ln}: expected '<utt> <channel> <start> <duration> <word> [conf]'")
        try:
            out.setdefault(parts[0], []).append((float(parts[2]), float(parts[3]), parts[4]))
        except ValueError:
            raise DecodeError(f"{path}:{ln}: start and duration must be numbers") from None
    return out


def compare_ctms(ref: dict, hyp: dict, tolerance: float = 0.05) -> dict:
    """Word boundary agreement of ``hyp`` with ``ref`` (both ``read_ctm_words`` dicts) over
    the utterances whose hypothesis words equal the reference words (so every word has a
    counterpart): fraction of word starts (and ends) within ``tolerance`` seconds, mean and
    median absolute start error."""
    ds, de = [], []
    used = skipped = 0
    for utt, h in hyp.items():
        r = ref.get(utt)
        if r is None or [w for _, _, w in r] != [w for _, _, w in h]:
            skipped += 1
            continue
        used += 1
        ds += [abs(a[0] - b[0]) for a, b in zip(r, h)]
        de += [abs(a[0] + a[1] - b[0] - b[1]) for a, b in zip(r, h)]
    ds, de = np.asarray(ds), np.asarray(de)
    tol = tolerance + 1e-9
    return {
        "utterances": used, "utterances_skipped": skipped, "words": int(len(ds)), "tolerance": tolerance,
        "start_within": float(np.mean(ds <= tol)) if len(ds) else None,
        "end_within": float(np.mean(de <= tol)) if len(de) else None,
        "start_mean_abs": float(ds.mean()) if len(ds) else None,
        "start_median_abs": float(np.median(ds)) if len(ds) else None,
    }
