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
from tqdm import tqdm

from asr.errors import FormatError
from asr.io.atomic import atomic_write
from asr.lm.ngram_lm import NgramLM

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
        ids: list[list[int]] = [[] for _ in range(order)]
        probs: list[list[float]] = [[] for _ in range(order)]
        bows: list[list[float]] = [[] for _ in range(order)]
        section = 0
        k = 0
        getid = vocab.__getitem__
        total = sum(counts)
        bar = tqdm(total=total, unit="ngram", unit_scale=True, desc=f"reading {path.name}", leave=False,
                   disable=total < 2_000_000)
        for raw in f:
            lineno += 1
            if not lineno & 0xFFFF:
                bar.n = sum(map(len, probs))
                bar.refresh()
            parts = raw.split()
            if not parts:
                continue
            if parts[0][0] == "\\":
                line = raw.strip()
                if line == "\\end\\":
                    section = -1
                    break
                m = _SECTION.match(line)
                if not m or int(m.group(1)) != section + 1:
                    raise FormatError(f"{path}:{lineno}: unexpected section line {line!r}")
                section += 1
                if section > order:
                    raise FormatError(f"{path}:{lineno}: section {line} beyond order {order} in \\data\\")
                k = section
                sec_ids, sec_probs, sec_bows = ids[k - 1], probs[k - 1], bows[k - 1]
                continue
            if section <= 0:
                raise FormatError(f"{path}:{lineno}: n-gram line outside an n-gram section")
            n = len(parts)
            try:
                if n == k + 1:
                    sec_bows.append(0.0)
                elif n == k + 2 and k < order:
                    sec_bows.append(float(parts[k + 1]))
                else:
                    raise FormatError(f"{path}:{lineno}: expected logprob, {k} words and optional backoff, got {raw.strip()!r}")
                sec_probs.append(float(parts[0]))
                if k == 1:
                    w = parts[1]
                    if w in vocab:
                        raise FormatError(f"{path}:{lineno}: duplicate unigram {w!r}")
                    vocab[w] = len(words)
                    words.append(w)
                    sec_ids.append(vocab[w])
                else:
                    sec_ids.extend(map(getid, parts[1:k + 1]))
            except ValueError:
                raise FormatError(f"{path}:{lineno}: bad number in {raw.strip()!r}") from None
            except KeyError as e:
                raise FormatError(f"{path}:{lineno}: word {e.args[0]!r} has no unigram") from None
        bar.close()
        if section != -1:
            raise FormatError(f"{path}: missing \\end\\ (truncated file?)")
    for k in range(1, order + 1):
        if len(probs[k - 1]) != counts[k - 1]:
            raise FormatError(f"{path}: \\data\\ says ngram {k}={counts[k - 1]} but the file has {len(probs[k - 1])}")
    mats = [np.array(ids[k - 1], dtype=np.int64).reshape(-1, k) for k in range(1, order + 1)]
    del ids
    lps = [np.array(p, dtype=np.float64) for p in probs]
    bos = [np.array(b, dtype=np.float64) for b in bows]
    del probs, bows
    try:
        return _assemble(path, words, mats, lps, bos)
    except _MissingPrefix:
        mats, lps, bos = _add_blank_prefixes(path, mats, lps, bos)
        return _assemble(path, words, mats, lps, bos)


def write_arpa(lm: NgramLM, path: str | os.PathLike, block: int = 200_000) -> None:
    """Write ``lm`` as an ARPA file atomically (8 significant digits). Blank rows are skipped.

    N-gram texts are built order by order (text of the prefix row + " " + word) with numpy
    object arrays, and lines are written in blocks, so memory stays near one order's texts.
    """
    path = Path(path)
    counts = lm.num_ngrams()
    word_str = np.array(lm.words, dtype=object)
    total = sum(len(x) for x in lm.logprobs)
    with atomic_write(path) as f, tqdm(total=total, unit="ngram", unit_scale=True, desc=f"writing {path.name}",
                                       leave=False, disable=total < 2_000_000) as bar:
        f.write("\n\\data\\\n")
        for k, c in enumerate(counts, 1):
            f.write(f"ngram {k}={c}\n")
        prev_text = None
        for k in range(1, lm.order + 1):
            f.write(f"\n\\{k}-grams:\n")
            words = word_str[lm.word[k - 1]]
            text = words if k == 1 else prev_text[lm.prefix[k - 1]] + " " + words
            del words
            lp = lm.logprobs[k - 1]
            real = ~np.isnan(lp)
            has_children = np.zeros(len(lp), dtype=bool)
            if k < lm.order:
                has_children[lm.prefix[k]] = True
            bo = lm.backoffs[k - 1]
            for b0 in range(0, len(lp), block):
                sl = slice(b0, b0 + block)
                keep = real[sl]
                lp_s = [f"{x:.8g}" for x in lp[sl][keep].tolist()]
                t = text[sl][keep]
                hc = has_children[sl][keep]
                lines = np.array(lp_s, dtype=object) + "\t" + t
                if hc.any():
                    lines[hc] = lines[hc] + "\t" + np.array([f"{x:.8g}" for x in bo[sl][keep][hc].tolist()], dtype=object)
                f.write("\n".join(lines.tolist()))
                bar.update(min(block, len(lp) - b0))
                if len(lines):
                    f.write("\n")
            prev_text = text if k < lm.order else None
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


class _MissingPrefix(Exception):
    pass


def _assemble(path, words, mats, lps, bos) -> NgramLM:
    """Sort each order by (prefix row, word) and link prefixes; _MissingPrefix if a context is absent."""
    V = len(words)
    prefix, word, lp_out, bo_out, keys_all = [], [], [], [], []
    for k, (M, lp, bo) in enumerate(zip(mats, lps, bos), 1):
        if k == 1 or len(M) == 0:
            pre = np.zeros(len(M), np.int64)
            key = M[:, 0] if k == 1 else pre
        else:
            row = M[:, 0]
            for j in range(1, k - 1):
                table = keys_all[j]
                q = row * V + M[:, j]
                pos = np.minimum(np.searchsorted(table, q), max(len(table) - 1, 0))
                if len(table) == 0 or not np.array_equal(table[pos], q):
                    raise _MissingPrefix
                row = pos
            pre = row
            key = pre * V + M[:, k - 1]
        srt = np.argsort(key, kind="stable")
        key = key[srt]
        dup = np.flatnonzero(key[1:] == key[:-1])
        if len(dup):
            raise FormatError(f"{path}: duplicate {k}-gram {' '.join(words[w] for w in M[srt[dup[0]]])!r}")
        prefix.append(pre[srt])
        word.append(M[srt, k - 1])
        lp_out.append(lp[srt])
        bo_out.append(bo[srt])
        keys_all.append(key)
    return NgramLM(words, prefix, word, lp_out, bo_out)


def _add_blank_prefixes(path, mats, lps, bos):
    """Add every missing context of an n-gram as a blank row (NaN probability, back-off 0)."""
    order = len(mats)
    blanks = 0
    for k in range(order, 1, -1):
        have = set(map(tuple, mats[k - 2].tolist()))
        need = set(map(tuple, mats[k - 1][:, :-1].tolist())) - have
        if need:
            if k == 2:
                raise FormatError(f"{path}: an n-gram uses a word without a unigram")
            add = np.array(sorted(need), dtype=np.int64).reshape(-1, k - 1)
            mats[k - 2] = np.concatenate([mats[k - 2], add])
            lps[k - 2] = np.concatenate([lps[k - 2], np.full(len(add), np.nan)])
            bos[k - 2] = np.concatenate([bos[k - 2], np.zeros(len(add))])
            blanks += len(add)
    logger.warning("%s: %d n-gram contexts are missing; added as blank entries (back-off weight 0)", path, blanks)
    return mats, lps, bos
