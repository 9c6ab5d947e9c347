"""Word error rate of a hypothesis text against a reference text (Kaldi compute-wer).

``score_texts`` aligns every reference utterance with its hypothesis and returns the
totals and per-utterance alignments; the ``format_*`` functions print what Kaldi's
``compute-wer``, ``wer_per_utt_details.pl`` and ``wer_per_spk_details.pl`` print.

Modes for reference utterances missing from the hypothesis (Kaldi ``--mode``):
``strict`` (default) fails, ``present`` scores only utterances present in both, ``all``
scores missing ones as empty hypotheses. Either way the ``%WER`` line gets ``[PARTIAL]``
when some were missing. A hypothesis utterance that is not in the reference is an error
(Kaldi silently ignores it; here it is almost always a mix-up of files).

Default alignment is Kaldi's minimum edit distance: totals with compute-wer's
tie-breaking, per-utterance details and per-speaker tables with align-text's (both Kaldi
tools agree on the error total; the split into sub/ins/del may differ on ties, as in
Kaldi). ``sclite=True`` uses NIST sclite's weighted alignment (sub 4, ins 3, del 3) for
everything and compares words case-insensitively, as sclite does by default.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import FormatError
from asr.io.tables import read_table
from asr.score.align import Counts, Step, align, align_many, count, counts_many

log = logging.getLogger(__name__)

MODES = ("strict", "present", "all")
EPS = "***"


@dataclass
class UttResult:
    utt: str
    ref: list[str]
    hyp: list[str]
    counts: Counts  # the counts that enter the totals
    steps: list[Step] | None = None  # the alignment shown in details (align-text or sclite)


@dataclass
class WerResult:
    counts: Counts = field(default_factory=Counts)
    num_words: int = 0
    num_sent: int = 0
    sent_errs: int = 0
    num_absent: int = 0
    utts: list[UttResult] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.counts.errors


def read_text(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a Kaldi text file (``utt word word ...``) into ``{utt: words}`` (in file order).
    ``-`` is stdin; a Kaldi rspecifier prefix (``ark:``, ``ark,t:``) is accepted and dropped.
    Raises FormatError on a missing file, a blank line or a duplicate utterance id."""
    path = str(path)
    m = re.match(r"^ark(,[a-z]+)*:", path)  # a Kaldi rspecifier (ark:text, ark,t:-) names a file too
    if m:
        path = path[m.end():]
    path = Path("/dev/stdin" if path == "-" else path)
    if not path.exists() or path.is_dir():
        raise FormatError(f"{path}: no such file")
    try:
        table = read_table(path)
    except UnicodeDecodeError as e:
        raise FormatError(f"{path}: not UTF-8 text ({e})") from None
    return {k: v.split() for k, v in table.items()}


def score_texts(
    ref: dict[str, list[str]],
    hyp: dict[str, list[str]],
    mode: str = "strict",
    sclite: bool = False,
    details: bool = False,
    ref_name: str = "ref",
    hyp_name: str = "hyp",
) -> WerResult:
    """Score ``hyp`` against ``ref`` (dicts from ``read_text``)."""
    utts = match_utterances(ref, hyp, mode, ref_name, hyp_name)
    res = WerResult(num_absent=sum(u not in hyp for u in ref))
    scored = [(utt, ref[utt], hyp.get(utt, [])) for utt in utts]
    if sclite:
        folded = [([w.lower() for w in r], [w.lower() for w in h]) for _, r, h in scored]
        shown = [_restore_words(st, r, h) for st, (_, r, h) in zip(align_many(folded, "sclite"), scored)]
        counts = [count(st) for st in shown]
    else:
        counts = counts_many([(r, h) for _, r, h in scored], "kaldi")
        shown = align_many([(r, h) for _, r, h in scored], "align-text") if details else [None] * len(scored)
    for (utt, r, h), c, steps in zip(scored, counts, shown):
        res.counts = res.counts + c
        res.num_words += len(r)
        res.num_sent += 1
        res.sent_errs += int(c.errors > 0) if sclite else int(r != h)
        res.utts.append(UttResult(utt, r, h, c, steps))
    return res


def match_utterances(ref: dict[str, list[str]], hyp: dict[str, list[str]], mode: str = "strict",
                     ref_name: str = "ref", hyp_name: str = "hyp") -> list[str]:
    """The reference utterances to score ``hyp`` on (reference order) under ``mode`` (see the
    module doc). A FormatError names ``hyp_name`` when it has utterances the reference lacks,
    or (strict) lacks one of the reference's; otherwise missing ones are warned about."""
    if mode not in MODES:
        raise FormatError(f"--mode must be one of {'|'.join(MODES)}, got {mode!r}")
    extra = [u for u in hyp if u not in ref]
    if extra:
        raise FormatError(
            f"{hyp_name}: {len(extra)} hypothesis utterance(s) not in the reference {ref_name}, "
            f"e.g. {extra[0]!r}"
        )
    absent = [u for u in ref if u not in hyp]
    if absent and mode == "strict":
        raise FormatError(f"{hyp_name}: no hypothesis for utterance {absent[0]!r} (--mode strict)")
    if absent:
        log.warning("%s: %d reference utterance(s) have no hypothesis (--mode %s: %s), e.g. %r", hyp_name,
                    len(absent), mode, "scored as empty" if mode == "all" else "skipped", absent[0])
    return [u for u in ref if mode == "all" or u in hyp]


def _restore_words(steps: list[Step], ref: list[str], hyp: list[str]) -> list[Step]:
    """Put the original (unfolded) words back into an alignment of folded words."""
    out, i, j = [], 0, 0
    for r, h, op in steps:
        rr = ref[i] if r is not None else None
        hh = hyp[j] if h is not None else None
        i += r is not None
        j += h is not None
        out.append((rr, hh, op))
    return out


def _percent(num: int, den: int) -> str:
    """``100 * num / den`` as Kaldi prints it: computed in double, stored as float,
    printed fixed with 2 decimals (``-nan`` / ``inf`` on an empty denominator, as glibc)."""
    if den == 0:
        return "-nan" if num == 0 else "inf"
    return f"{float(np.float32(100.0 * num / den)):.2f}"


def format_summary(res: WerResult) -> str:
    """The three lines of Kaldi compute-wer."""
    c = res.counts
    partial = " [PARTIAL]" if res.num_absent else ""
    return (
        f"%WER {_percent(c.errors, res.num_words)} [ {c.errors} / {res.num_words}, "
        f"{c.ins} ins, {c.dele} del, {c.sub} sub ]{partial}\n"
        f"%SER {_percent(res.sent_errs, res.num_sent)} [ {res.sent_errs} / {res.num_sent} ]\n"
        f"Scored {res.num_sent} sentences, {res.num_absent} not present in hyp.\n"
    )


def _cjustify(s: str, n: int) -> str:
    right = (n - len(s)) // 2
    return " " * (n - len(s) - right) + s + " " * right


def format_details(res: WerResult) -> str:
    """Per-utterance alignments as Kaldi ``align-text | wer_per_utt_details.pl``."""
    lines = []
    for u in res.utts:
        steps = u.steps if u.steps is not None else align(u.ref, u.hyp, "align-text")
        refs, hyps, ops = [], [], []
        for r, h, op in steps:
            r = EPS if r is None else r
            h = EPS if h is None else h
            n = max(len(r), len(h), len(op))
            refs.append(_cjustify(r, n))
            hyps.append(_cjustify(h, n))
            ops.append(_cjustify(op, n))
        c = count(steps)
        lines.append(f"{u.utt} ref  " + "  ".join(refs))
        lines.append(f"{u.utt} hyp  " + "  ".join(hyps))
        lines.append(f"{u.utt} op   " + "  ".join(ops))
        lines.append(f"{u.utt} #csid {c.cor} {c.sub} {c.ins} {c.dele}")
    return "".join(line + "\n" for line in lines)


def format_per_speaker(res: WerResult, utt2spk: dict[str, str], width: int = 10, spk_width: int = 15) -> str:
    """Per-speaker table as Kaldi ``wer_per_spk_details.pl`` (counts from the details'
    alignments)."""
    missing = [u.utt for u in res.utts if u.utt not in utt2spk]
    if missing:
        raise FormatError(f"utt2spk has no speaker for {len(missing)} scored utterance(s), e.g. {missing[0]!r}")
    spk_width = max([spk_width] + [len(s) for s in utt2spk.values()])
    stats: dict[str, list[int]] = {}
    for u in res.utts:
        steps = u.steps if u.steps is not None else align(u.ref, u.hyp, "align-text")
        c = count(steps)
        st = stats.setdefault(utt2spk[u.utt], [0, 0, 0, 0, 0, 0])  # C S I D sent serr
        for k, v in enumerate((c.cor, c.sub, c.ins, c.dele, 1, int(c.errors > 0))):
            st[k] += v
    f = f"%{width}s"
    out = [(f"%-{spk_width}s id  " + " ".join([f] * 8)) % (
        "SPEAKER", "#SENT", "#WORD", "Corr", "Sub", "Ins", "Del", "Err", "S.Err")]

    def rows(name: str, c: int, s: int, i: int, d: int, sent: int, serr: int) -> None:
        word, err = c + s + d, s + d + i
        out.append((f"%-{spk_width}s raw " + " ".join([f"%{width}d"] * 8)) % (name, sent, word, c, s, i, d, err, serr))
        if word:
            out.append((f"%-{spk_width}s sys %{width}d %{width}d " + " ".join([f"%{width}.2f"] * 6)) % (
                name, sent, word, 100 * c / word, 100 * s / word, 100 * i / word, 100 * d / word,
                100 * err / word, 100.0 * serr / sent))

    tot = [0] * 6
    for spk in sorted(stats):
        rows(spk, *stats[spk])
        tot = [a + b for a, b in zip(tot, stats[spk])]
    rows("SUM", *tot)
    return "".join(line + "\n" for line in out)
