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

from asr.errors import ConfigError, FormatError
from asr.io.atomic import atomic_dir, atomic_write_text
from asr.io.tables import utf8_error

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


_STRESS = re.compile(r"^(\D+)(\d*)$")
SPECIAL_WORDS = (("!SIL", "SIL"), ("<SPOKEN_NOISE>", "SPN"), ("<UNK>", "SPN"))


def dict_dir_from_lexicon(lexicon: str | os.PathLike, dict_dir: str | os.PathLike,
                          silence_phones: tuple[str, ...] = ("SIL", "SPN"), optional_silence: str = "SIL",
                          special_words: tuple[tuple[str, str], ...] = SPECIAL_WORDS) -> dict:
    """Kaldi dict dir from a CMUdict-style lexicon (``WORD PH1 PH2 ...``, whitespace or tab
    separated; vowels may carry stress digits, ``AH0 AH1 AH2``), as Kaldi's LibriSpeech
    ``local/prepare_dict.sh`` (stages 3-4) does:

    - ``nonsilence_phones.txt``: one line per base phone with the bare phone and its stress
      variants (``AH AH0 AH1 AH2``), so they share a tree root; lines sorted by base phone
      (Kaldi's order is Perl hash order, i.e. arbitrary);
    - ``silence_phones.txt`` ``SIL SPN``, ``optional_silence.txt`` ``SIL``;
    - ``extra_questions.txt``: the silence phones, then one question per stress level;
    - ``lexicon.txt``: ``!SIL SIL``, ``<SPOKEN_NOISE> SPN``, ``<UNK> SPN`` plus the lexicon,
      sorted (C order) and de-duplicated.

    The whole lexicon is checked first (errors name its file and line); ``dict_dir`` is then
    replaced as a whole, so a failed run leaves an existing dict dir as it was.

    Returns counts (words, pronunciations, base phones)."""
    lexicon, d = Path(lexicon), Path(dict_dir)
    if d.resolve() in lexicon.resolve().parents:
        raise ConfigError(f"{lexicon}: the lexicon is inside the dict dir {d}, which is replaced as a whole; "
                          "put it elsewhere")
    special = {w for w, _ in special_words}
    silence = set(silence_phones)
    entries: set[tuple[str, ...]] = set()
    try:
        f = open(lexicon, "rb")
    except OSError as e:
        raise FormatError(f"{lexicon}: cannot read: {e}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                toks = raw.decode("utf-8").split()
            except UnicodeDecodeError as e:
                raise FormatError(f"{lexicon}:{lineno}: {utf8_error(e)}") from None
            if toks:
                _check_lexicon_line(toks, f"{lexicon}:{lineno}", special, silence)
                entries.add(tuple(toks))
    if not entries:
        raise FormatError(f"{lexicon}: no pronunciations")
    groups: dict[str, set[str]] = {}
    for e in entries:
        for p in e[1:]:
            base = _STRESS.match(p).group(1)
            groups.setdefault(base, {base}).add(p)
    nonsil = [sorted(groups[b]) for b in sorted(groups)]
    by_stress: dict[str, list[str]] = {}
    for line in nonsil:
        for p in line:
            by_stress.setdefault(_STRESS.match(p).group(2), []).append(p)
    lex_lines = sorted({" ".join(e) for e in entries} | {f"{w} {p}" for w, p in special_words},
                       key=lambda s: s.encode("utf-8"))
    with atomic_dir(d, replaces=("lexicon.txt", "lexiconp.txt", "silence_phones.txt", "nonsilence_phones.txt")) as tmp:
        atomic_write_text(tmp / "silence_phones.txt", "".join(p + "\n" for p in silence_phones))
        atomic_write_text(tmp / "optional_silence.txt", optional_silence + "\n")
        atomic_write_text(tmp / "nonsilence_phones.txt", "".join(" ".join(line) + "\n" for line in nonsil))
        atomic_write_text(tmp / "extra_questions.txt", " ".join(silence_phones) + "\n"
                          + "".join(" ".join(by_stress[s]) + "\n" for s in sorted(by_stress)))
        atomic_write_text(tmp / "lexicon.txt", "".join(line + "\n" for line in lex_lines))
        read_dict_dir(tmp)  # the result must be a valid dict dir
    return {"words": len({e[0] for e in entries}), "pronunciations": len(entries), "base_phones": len(nonsil)}


def _check_lexicon_line(toks: list[str], where: str, special: set[str], silence: set[str]) -> None:
    """FormatError (``where``: the lexicon's file:line) unless ``WORD PH1 PH2 ...`` can go into a
    dict dir beside the ``special`` words and ``silence`` phones ``dict_dir_from_lexicon`` adds."""
    word, phones = toks[0], toks[1:]
    if word in RESERVED_WORDS or word.startswith("#"):
        raise FormatError(f"{where}: reserved symbol {word!r} used as a word")
    if word in special:
        raise FormatError(f"{where}: defines the reserved word {word!r} (prepare-dict adds it itself)")
    if not phones:
        raise FormatError(f"{where}: word {word!r} has no pronunciation")
    for p in phones:
        if p in silence:
            raise FormatError(f"{where}: word {word!r} uses the silence phone {p}")
        if not _STRESS.match(p):
            raise FormatError(f"{where}: phone {p!r} is not letters followed by a stress digit")
        if _BAD_PHONE.search(p):
            raise FormatError(f"{where}: phone {p!r} is reserved or ends in a word-position suffix (_B/_E/_I/_S)")
