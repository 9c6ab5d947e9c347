"""G.fst from an ARPA file (``.arpa`` or ``.arpa.gz``) with ``kaldilm.arpa2fst`` (Kaldi's arpa2fst),
run in a child process (``compile_arpa``: kaldilm aborts its process on a malformed file).

Labels come from the lang dir's ``words.txt``; back-off arcs carry the disambiguation symbol
``#0`` on the input side (and epsilon on the output side), ``<s>``/``</s>`` become epsilons,
as Kaldi's ``arpa2fst --disambig-symbol=#0 --read-symbol-table=words.txt``. N-grams with a
word that ``words.txt`` lacks are skipped by arpa2fst; we count those words and warn.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from asr.errors import GraphError, LMError
from asr.lm.ngram_lm import BOS, EOS

logger = logging.getLogger(__name__)


def compile_arpa(arpa: str | os.PathLike, words_txt: str | os.PathLike, out_fst: str | os.PathLike,
                 disambig: str = "#0") -> None:
    """Write OUT_FST (OpenFst binary G) from an ARPA file (``.gz`` is decompressed first) with
    Kaldi's arpa2fst. kaldilm aborts the process on a bad ARPA file (C++ output, exit 134),
    so it runs in a child process; its failure is a one-line GraphError naming the file.
    The one way ARPA files become G (``asr make-g``, ``asr make-graph``)."""
    arpa, out_fst = Path(arpa), Path(out_fst)
    with tempfile.TemporaryDirectory(dir=out_fst.parent) as tmp:
        src = arpa
        if arpa.name.endswith(".gz"):
            src = Path(tmp) / "lm.arpa"
            try:
                with gzip.open(arpa, "rb") as fi, open(src, "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            except (OSError, EOFError) as e:
                raise GraphError(f"{arpa}: not a readable gzip file ({e})") from None
        code = ("import sys, kaldilm; kaldilm.arpa2fst(sys.argv[1], sys.argv[2], disambig_symbol=sys.argv[4], "
                "read_symbol_table=sys.argv[3], max_arpa_warnings=0)")
        out = Path(tmp) / "G.fst"
        proc = subprocess.run([sys.executable, "-c", code, str(src), str(out), str(words_txt), disambig],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            errs = [ln.strip() for ln in proc.stderr.splitlines() if ln.startswith("[E]") or "rror" in ln]
            why = errs[-1] if errs else (proc.stderr.strip().splitlines() or ["wrote no FST"])[-1]
            raise GraphError(f"{arpa}: arpa2fst failed: {why.removeprefix('[E] ')}")
        os.replace(out, out_fst)


def make_grammar_fst(arpa: str | os.PathLike, words_txt: str | os.PathLike, g_fst: str | os.PathLike,
                     disambig: str = "#0") -> dict:
    """Write G.fst (OpenFst binary, atomically). Returns {"arpa_words", "missing_words"} for reporting."""
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
    compile_arpa(arpa, words_txt, g_fst, disambig)
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
        with (gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else open(path, encoding="utf-8")) as f:
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
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise LMError(f"{path}: cannot read ARPA file: {e}") from None
    if not words:
        raise LMError(f"{path}: no \\1-grams: section (not an ARPA file?)")
    return words
