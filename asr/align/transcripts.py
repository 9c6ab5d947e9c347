"""Transcripts of a data dir as word ids of a lang dir, checked for words missing from the lexicon.

    words = read_transcripts("data/train", lang)               # error listing missing words
    words = read_transcripts("data/train", lang, map_oov=True)  # missing words -> lang's OOV word

Every utterance is checked before any work starts, so a bad transcript fails fast with one
error naming every missing word and the utterances (first few) that use it, instead of one
failure per utterance later. With ``map_oov`` the missing words become the lang dir's OOV
word (``oov.txt``, e.g. ``<UNK>`` spelled with a garbage phone), as Kaldi's
``sym2int.pl --map-oov`` does, and are counted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import AlignmentError, DataDirError
from asr.io.tables import read_table

log = logging.getLogger(__name__)

MAX_LISTED_WORDS = 20
MAX_LISTED_UTTS = 3


@dataclass
class Transcripts:
    """Word ids per utterance, and what was mapped to the OOV word."""

    word_ids: dict[str, list[int]]
    oov_tokens: int = 0
    oov_per_utt: dict[str, int] = field(default_factory=dict)  # tokens mapped to the OOV word
    oov_words: dict[str, list[str]] = field(default_factory=dict)  # missing word -> utterances
    empty: list[str] = field(default_factory=list)  # utterances with an empty transcript


def read_transcripts(data_dir: str | os.PathLike, lang, map_oov: bool = False) -> Transcripts:
    """``DATA_DIR/text`` as word ids of ``lang`` (an ``asr.lang.lang_dir.LangDir``).

    A word is usable when it is in ``words.txt`` and has a pronunciation. Missing words raise
    one AlignmentError listing them (with utterances), unless ``map_oov``: then they become
    the lang's OOV word. Empty transcripts are kept out and listed in ``.empty``."""
    path = Path(data_dir) / "text"
    if not path.is_file():
        raise DataDirError(f"{path}: missing (alignment needs transcripts)")
    text = read_table(path)
    words, prons = lang.words, lang.align_lexicon
    out = Transcripts({})
    missing: dict[str, list[str]] = {}
    for utt, line in text.items():
        toks = line.split()
        if not toks:
            out.empty.append(utt)
            continue
        ids = []
        for w in toks:
            i = words.get(w)
            if i is None or i not in prons:
                missing.setdefault(w, []).append(utt)
                i = -1
            ids.append(i)
        out.word_ids[utt] = ids
    if not missing:
        return out
    if not map_oov:
        raise AlignmentError(f"{path}: {_describe(missing)} not in the lexicon of {lang.path}; add them to the "
                             "lexicon (and re-run prepare-lang), fix the transcripts, or map them to the lang's "
                             "OOV word with --map-oov")
    oov = words.get(lang.oov_word) if (lang.path / "oov.txt").is_file() else None
    if oov is None or oov not in prons:
        raise AlignmentError(f"{path}: {_describe(missing)} not in the lexicon of {lang.path}, and the lang dir "
                             "has no OOV word with a pronunciation (oov.txt) to map them to")
    for utt, ids in out.word_ids.items():
        for k, i in enumerate(ids):
            if i < 0:
                ids[k] = oov
                out.oov_tokens += 1
                out.oov_per_utt[utt] = out.oov_per_utt.get(utt, 0) + 1
    out.oov_words = missing
    log.warning("%s: %s mapped to the OOV word %s (%d tokens)", path, _describe(missing), lang.oov_word,
                out.oov_tokens)
    return out


def _describe(missing: dict[str, list[str]]) -> str:
    """``3 words ('FOO' (u1, u7), ...)`` — the first words with their first utterances."""
    items = sorted(missing.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    parts = []
    for w, utts in items[:MAX_LISTED_WORDS]:
        more = f", +{len(utts) - MAX_LISTED_UTTS} more" if len(utts) > MAX_LISTED_UTTS else ""
        parts.append(f"{w!r} ({', '.join(utts[:MAX_LISTED_UTTS])}{more})")
    if len(items) > MAX_LISTED_WORDS:
        parts.append(f"and {len(items) - MAX_LISTED_WORDS} more words")
    n = len(missing)
    return f"{n} word{'s' if n != 1 else ''} ({'; '.join(parts)})"
