"""G.fst from an ARPA file with ``kaldilm.arpa2fst`` (Kaldi's arpa2fst).

Labels come from the lang dir's ``words.txt``; back-off arcs carry the disambiguation symbol
``#0`` on the input side (and epsilon on the output side), ``<s>``/``</s>`` become epsilons,
as Kaldi's ``arpa2fst --disambig-symbol=#0 --read-symbol-table=words.txt``. N-grams with a
word that ``words.txt`` lacks are skipped by arpa2fst; we count those words and warn.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from asr.errors import GraphError, LMError
from asr.lm.ngram_lm import BOS, EOS

logger = logging.getLogger(__name__)


def make_grammar_fst(arpa: str | os.PathLike, words_txt: str | os.PathLike, g_fst: str | os.PathLike,
                     disambig: str = "#0") -> dict:
    """Write G.fst (OpenFst binary). Returns {"arpa_words", "missing_words"} for reporting."""
    import kaldilm

    arpa, words_txt, g_fst = Path(arpa), Path(words_txt), Path(g_fst)
    symbols = _read_symbols(words_txt)
    if disambig not in symbols:
        raise GraphError(f"{words_txt}: has no {disambig} (needed on back-off arcs)")
    unigrams = _arpa_unigrams(arpa)
    missing = [w for w in unigrams if w not in symbols and w not in (BOS, EOS)]
    if missing:
        logger.warning("%s: %d of %d LM words are not in %s (their n-grams are skipped), e.g. %s",
                       arpa, len(missing), len(unigrams), words_txt, " ".join(missing[:5]))
    g_fst.parent.mkdir(parents=True, exist_ok=True)
    tmp = g_fst.with_name(f".{g_fst.name}.{os.getpid()}.tmp")
    try:
        kaldilm.arpa2fst(str(arpa), str(tmp), disambig_symbol=disambig, read_symbol_table=str(words_txt),
                         max_arpa_warnings=10)
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise GraphError(f"arpa2fst wrote no FST for {arpa}")
        os.replace(tmp, g_fst)
    except RuntimeError as e:
        raise GraphError(f"arpa2fst failed on {arpa}: {e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"arpa_words": len(unigrams), "missing_words": len(missing)}


def _read_symbols(path: Path) -> set[str]:
    try:
        with open(path, encoding="utf-8") as f:
            out = set()
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not parts[1].isdigit():
                    raise GraphError(f"{path}:{lineno}: expected 'word id', got {line.strip()!r}")
                out.add(parts[0])
            return out
    except OSError as e:
        raise GraphError(f"{path}: cannot read symbol table: {e}") from e


def _arpa_unigrams(path: Path) -> list[str]:
    """The words of an ARPA file's 1-grams section (read without loading the model)."""
    words = []
    try:
        with open(path, encoding="utf-8") as f:
            inside = False
            for line in f:
                s = line.strip()
                if s == "\\1-grams:":
                    inside = True
                    continue
                if inside:
                    if s.startswith("\\"):
                        break
                    parts = s.split()
                    if len(parts) >= 2:
                        words.append(parts[1])
    except OSError as e:
        raise LMError(f"{path}: cannot read ARPA file: {e}") from e
    if not words:
        raise LMError(f"{path}: no \\1-grams: section (not an ARPA file?)")
    return words
