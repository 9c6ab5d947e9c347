"""Kaldi dictionary dirs (``data/local/dict``): the input of ``asr prepare-lang``.

Files: ``lexicon.txt`` (``word p1 p2 ...``) or ``lexiconp.txt`` (``word prob p1 p2 ...``;
preferred when both exist, as Kaldi), ``silence_phones.txt`` and ``nonsilence_phones.txt``
(one line per base phone set: phones on one line share a tree root),
``optional_silence.txt`` (one phone), optional ``extra_questions.txt``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import FormatError

log = logging.getLogger(__name__)

RESERVED_WORDS = ("<eps>", "<s>", "</s>", "#0")


@dataclass
class Lexicon:
    """Pronunciations in file order: (word, prob, phones)."""

    entries: list[tuple[str, float, list[str]]] = field(default_factory=list)

    def words(self) -> set[str]:
        return {w for w, _, _ in self.entries}

    def prons(self) -> dict[str, list[list[str]]]:
        out: dict[str, list[list[str]]] = {}
        for w, _, p in self.entries:
            out.setdefault(w, []).append(p)
        return out


@dataclass
class DictDir:
    lexicon: Lexicon
    silence_phones: list[list[str]]
    nonsilence_phones: list[list[str]]
    optional_silence: str
    extra_questions: list[list[str]]


def _read_phone_lines(path: Path, required: bool = True) -> list[list[str]]:
    if not path.exists():
        if required:
            raise FormatError(f"{path}: missing (required in a dict dir)")
        return []
    lines = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            toks = raw.split()
            if not toks:
                if raw.strip() == "" and required and path.name != "extra_questions.txt":
                    raise FormatError(f"{path}:{lineno}: empty line")
                continue
            lines.append(toks)
    return lines


def read_lexicon(path: Path, with_probs: bool) -> Lexicon:
    lex = Lexicon()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            toks = raw.split()
            if not toks:
                raise FormatError(f"{path}:{lineno}: empty line")
            word = toks[0]
            if word in RESERVED_WORDS or word.startswith("#"):
                raise FormatError(f"{path}:{lineno}: reserved symbol {word!r} used as a word")
            if with_probs:
                if len(toks) < 2:
                    raise FormatError(f"{path}:{lineno}: expected 'word prob phones...'")
                try:
                    prob = float(toks[1])
                except ValueError:
                    raise FormatError(f"{path}:{lineno}: second field must be the pronunciation probability") from None
                if not 0.0 < prob <= 1.0:
                    raise FormatError(f"{path}:{lineno}: pronunciation probability {prob} not in (0, 1]")
                phones = toks[2:]
            else:
                prob, phones = 1.0, toks[1:]
            if not phones:
                raise FormatError(f"{path}:{lineno}: word {word!r} has an empty pronunciation")
            key = (word, tuple(phones))
            if key in seen:
                raise FormatError(f"{path}:{lineno}: duplicate pronunciation of {word!r}")
            seen.add(key)
            lex.entries.append((word, prob, phones))
    if not lex.entries:
        raise FormatError(f"{path}: no pronunciations")
    return lex


def read_dict_dir(dict_dir: str | os.PathLike) -> DictDir:
    d = Path(dict_dir)
    if not d.is_dir():
        raise FormatError(f"{d}: not a directory")
    if (d / "lexiconp.txt").exists():
        lex = read_lexicon(d / "lexiconp.txt", with_probs=True)
    elif (d / "lexicon.txt").exists():
        lex = read_lexicon(d / "lexicon.txt", with_probs=False)
    else:
        raise FormatError(f"{d}: needs lexicon.txt or lexiconp.txt")
    sil = _read_phone_lines(d / "silence_phones.txt")
    nonsil = _read_phone_lines(d / "nonsilence_phones.txt")
    opt = _read_phone_lines(d / "optional_silence.txt")
    if len(opt) != 1 or len(opt[0]) != 1:
        raise FormatError(f"{d / 'optional_silence.txt'}: must contain exactly one phone")
    extra = _read_phone_lines(d / "extra_questions.txt", required=False)
    dd = DictDir(lex, sil, nonsil, opt[0][0], extra)
    validate_dict(dd, d)
    return dd


_BAD_PHONE = re.compile(r"^(#|<eps>$)|_[BEIS]$")


def validate_dict(dd: DictDir, where: Path | str) -> None:
    """Kaldi ``validate_dict_dir.pl``'s main checks."""
    sil = [p for line in dd.silence_phones for p in line]
    nonsil = [p for line in dd.nonsilence_phones for p in line]
    all_phones = sil + nonsil
    dup = {p for p in all_phones if all_phones.count(p) > 1}
    if dup:
        raise FormatError(f"{where}: phones listed more than once in silence/nonsilence_phones.txt: {sorted(dup)}")
    if not nonsil:
        raise FormatError(f"{where}: nonsilence_phones.txt lists no phones")
    for p in all_phones:
        if _BAD_PHONE.search(p):
            raise FormatError(f"{where}: phone {p!r} is reserved or ends in a word-position suffix (_B/_E/_I/_S)")
    if dd.optional_silence not in sil:
        raise FormatError(f"{where}: optional silence {dd.optional_silence!r} is not in silence_phones.txt")
    known = set(all_phones)
    for w, _, phones in dd.lexicon.entries:
        bad = [p for p in phones if p not in known]
        if bad:
            raise FormatError(f"{where}: lexicon word {w!r} uses undeclared phone(s) {bad}")
    for q in dd.extra_questions:
        bad = [p for p in q if p not in known]
        if bad:
            raise FormatError(f"{where}/extra_questions.txt: undeclared phone(s) {bad}")
