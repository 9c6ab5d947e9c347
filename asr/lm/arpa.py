"""ARPA back-off language model files: read into an :class:`NgramLM`, write one out.

Format (log10 values)::

    \\data\\
    ngram 1=V
    ngram 2=N2
    \\1-grams:
    logprob  word  [backoff]
    ...
    \\2-grams:
    logprob  w1 w2  [backoff]
    ...
    \\end\\

Reading accepts any whitespace between fields, ``gzip`` files (``.gz``), and files whose
n-grams lack their prefix context (SRILM-pruned models): such a context is added as a
*blank* row (no probability, back-off weight 0), as KenLM does.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from pathlib import Path

import numpy as np

from asr.errors import FormatError
from asr.io.atomic import atomic_write
from asr.lm.ngram_lm import BOS, LOG10_ZERO, NgramLM

__all__ = ["NgramLM", "read_arpa", "write_arpa"]

logger = logging.getLogger(__name__)

_NGRAM_COUNT = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)$")
_SECTION = re.compile(r"^\\(\d+)-grams:$")


def read_arpa(path: str | os.PathLike) -> NgramLM:
    """Read an ARPA file (plain or .gz) into an NgramLM. Raises FormatError naming file:line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        f = opener(path, "rt", encoding="utf-8")
    except OSError as e:
        raise FormatError(f"{path}: cannot open ARPA file: {e}") from e
    with f:
        counts = _read_header(f, path)
        lineno = counts.pop()  # _read_header appends the line number where it stopped
        order = len(counts)
        words: list[str] = []
        vocab: dict[str, int] = {}
        tuples: list[list[tuple[int, ...]]] = [[] for _ in range(order)]
        probs: list[list[float]] = [[] for _ in range(order)]
        bows: list[list[float]] = [[] for _ in range(order)]
        section = 0
        for raw in f:
            lineno += 1
            line = raw.strip()
            if not line:
                continue
            if line[0] == "\\":
                if line == "\\end\\":
                    section = -1
                    break
                m = _SECTION.match(line)
                if not m or int(m.group(1)) != section + 1:
                    raise FormatError(f"{path}:{lineno}: unexpected section line {line!r}")
                section += 1
                if section > order:
                    raise FormatError(f"{path}:{lineno}: section {line} beyond order {order} in \\data\\")
                continue
            if section <= 0:
                raise FormatError(f"{path}:{lineno}: n-gram line outside an n-gram section")
            parts = line.split()
            k = section
            if len(parts) not in (k + 1, k + 2) or (len(parts) == k + 2 and k == order):
                raise FormatError(f"{path}:{lineno}: expected logprob, {k} words and optional backoff, got {line!r}")
            try:
                lp = float(parts[0])
                bo = float(parts[k + 1]) if len(parts) == k + 2 else 0.0
            except ValueError:
                raise FormatError(f"{path}:{lineno}: bad number in {line!r}") from None
            if k == 1:
                w = parts[1]
                if w in vocab:
                    raise FormatError(f"{path}:{lineno}: duplicate unigram {w!r}")
                vocab[w] = len(words)
                words.append(w)
                tuples[0].append((vocab[w],))
            else:
                try:
                    tuples[k - 1].append(tuple(vocab[w] for w in parts[1:k + 1]))
                except KeyError as e:
                    raise FormatError(f"{path}:{lineno}: word {e.args[0]!r} has no unigram") from None
            probs[k - 1].append(lp)
            bows[k - 1].append(bo)
        if section != -1:
            raise FormatError(f"{path}: missing \\end\\ (truncated file?)")
    for k in range(1, order + 1):
        if len(tuples[k - 1]) != counts[k - 1]:
            raise FormatError(f"{path}: \\data\\ says ngram {k}={counts[k - 1]} but the file has {len(tuples[k - 1])}")
    return _build(path, words, tuples, probs, bows)


def write_arpa(lm: NgramLM, path: str | os.PathLike) -> None:
    """Write ``lm`` as an ARPA file atomically (8 significant digits). Blank rows are skipped."""
    path = Path(path)
    counts = lm.num_ngrams()
    with atomic_write(path) as f:
        f.write("\n\\data\\\n")
        for k, c in enumerate(counts, 1):
            f.write(f"ngram {k}={c}\n")
        for k in range(1, lm.order + 1):
            f.write(f"\n\\{k}-grams:\n")
            lp = lm.logprobs[k - 1]
            keep = ~np.isnan(lp)
            M = lm.ngram_words(k)[keep]
            lps = lp[keep]
            strs = np.array(lm.words, dtype=object)
            cols = [strs[M[:, j]] for j in range(k)]
            texts = cols[0] if k == 1 else [" ".join(t) for t in zip(*cols)]
            lp_s = [f"{x:.8g}" for x in lps.tolist()]
            if k < lm.order:
                bo = lm.backoffs[k - 1][keep]
                has_children = np.zeros(len(lp), dtype=bool)
                has_children[np.unique(lm.prefix[k])] = True
                has_children = has_children[keep]
                lines = [
                    f"{p}\t{t}\t{b:.8g}\n" if c else f"{p}\t{t}\n"
                    for p, t, b, c in zip(lp_s, texts, bo.tolist(), has_children.tolist())
                ]
            else:
                lines = [f"{p}\t{t}\n" for p, t in zip(lp_s, texts)]
            f.writelines(lines)
        f.write("\n\\end\\\n")


# ---------------------------------------------------------------------- helpers
def _read_header(f, path: Path) -> list[int]:
    """Parse up to the first section; return n-gram counts + [line number reached]."""
    lineno = 0
    in_data = False
    counts: list[int] = []
    for raw in f:
        lineno += 1
        line = raw.strip()
        if not in_data:
            if line == "\\data\\":
                in_data = True
            continue  # text before \data\ is a comment
        if not line:
            if counts:
                return counts + [lineno]
            continue
        m = _NGRAM_COUNT.match(line)
        if not m:
            raise FormatError(f"{path}:{lineno}: expected 'ngram N=COUNT' in \\data\\, got {line!r}")
        if int(m.group(1)) != len(counts) + 1:
            raise FormatError(f"{path}:{lineno}: n-gram orders in \\data\\ must be 1, 2, 3, ...")
        counts.append(int(m.group(2)))
    if not in_data:
        raise FormatError(f"{path}: no \\data\\ section (not an ARPA file?)")
    if not counts:
        raise FormatError(f"{path}: \\data\\ lists no n-gram counts")
    return counts + [lineno]


def _build(path, words, tuples, probs, bows) -> NgramLM:
    order = len(tuples)
    V = len(words)
    # add blank prefix rows where an n-gram's context is missing (top-down, so they cascade)
    blanks = 0
    for k in range(order, 1, -1):
        have = set(tuples[k - 2])
        for t in tuples[k - 1]:
            p = t[:-1]
            if p not in have:
                have.add(p)
                tuples[k - 2].append(p)
                probs[k - 2].append(float("nan"))
                bows[k - 2].append(0.0)
                blanks += 1
    if blanks:
        if any(np.isnan(probs[0])):
            raise FormatError(f"{path}: an n-gram uses a word without a unigram")
        logger.warning("%s: %d n-gram contexts are missing; added as blank entries (back-off weight 0)", path, blanks)
    prefix, word, lps, bos = [], [], [], []
    keys_all: list[np.ndarray] = []
    for k in range(1, order + 1):
        M = np.array(tuples[k - 1], dtype=np.int64).reshape(-1, k)
        lp = np.array(probs[k - 1], dtype=np.float64)
        bo = np.array(bows[k - 1], dtype=np.float64)
        if k == 1:
            pre = np.zeros(len(M), np.int64)
            key = M[:, 0]
        else:
            row = M[:, 0]
            for j in range(1, k - 1):
                row = np.searchsorted(keys_all[j], row * V + M[:, j])
            pre = row
            key = pre * V + M[:, k - 1]
        srt = np.argsort(key, kind="stable")
        key = key[srt]
        dup = np.flatnonzero(key[1:] == key[:-1])
        if len(dup):
            raise FormatError(f"{path}: duplicate {k}-gram {' '.join(words[w] for w in M[srt[dup[0]]])!r}")
        prefix.append(pre[srt])
        word.append(M[srt, k - 1])
        lps.append(lp[srt])
        bos.append(bo[srt])
        keys_all.append(key)
    if BOS in words:
        b = words.index(BOS)
        if lps[0][b] > LOG10_ZERO / 2:
            logger.debug("%s: <s> has unigram log-probability %g (not -99)", path, lps[0][b])
    return NgramLM(words, prefix, word, lps, bos)
