"""Reading a Kaldi lang dir (as written by ``asr prepare-lang`` or Kaldi's prepare_lang.sh)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from asr.errors import FormatError


def read_symbol_table(path: str | os.PathLike) -> dict[str, int]:
    """``symbol id`` lines → dict; errors name file and line."""
    out: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            toks = raw.split()
            if not toks:
                continue
            if len(toks) != 2:
                raise FormatError(f"{path}:{lineno}: expected 'symbol id'")
            try:
                out[toks[0]] = int(toks[1])
            except ValueError:
                raise FormatError(f"{path}:{lineno}: id is not an integer") from None
    return out


def _read_ints(path: Path) -> list[int]:
    with open(path) as f:
        return [int(t) for t in f.read().split()]


class LangDir:
    """Lazy accessors for the files of a lang dir."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not (self.path / "phones.txt").exists():
            raise FormatError(f"{self.path}: not a lang dir (no phones.txt)")

    @cached_property
    def phones(self) -> dict[str, int]:
        return read_symbol_table(self.path / "phones.txt")

    @cached_property
    def phone_names(self) -> dict[int, str]:
        return {i: p for p, i in self.phones.items()}

    @cached_property
    def words(self) -> dict[str, int]:
        return read_symbol_table(self.path / "words.txt")

    @cached_property
    def word_names(self) -> dict[int, str]:
        return {i: w for w, i in self.words.items()}

    @cached_property
    def silence_phones(self) -> list[int]:
        return _read_ints(self.path / "phones" / "silence.int")

    @cached_property
    def context_indep_phones(self) -> list[int]:
        """``phones/context_indep.int`` (the silence phones when absent, as Kaldi's
        prepare_lang.sh writes it)."""
        p = self.path / "phones" / "context_indep.int"
        return _read_ints(p) if p.is_file() else self.silence_phones

    @cached_property
    def nonsilence_phones(self) -> list[int]:
        return _read_ints(self.path / "phones" / "nonsilence.int")

    @cached_property
    def disambig_phones(self) -> list[int]:
        return _read_ints(self.path / "phones" / "disambig.int")

    @cached_property
    def optional_silence(self) -> int:
        return _read_ints(self.path / "phones" / "optional_silence.int")[0]

    @cached_property
    def oov_word(self) -> str:
        return (self.path / "oov.txt").read_text(encoding="utf-8").strip()

    @cached_property
    def sets(self) -> list[list[int]]:
        with open(self.path / "phones" / "sets.int") as f:
            return [[int(t) for t in line.split()] for line in f if line.strip()]

    @cached_property
    def roots(self) -> list[tuple[bool, bool, list[int]]]:
        """(shared, split, phones) per line of ``phones/roots.int``."""
        out = []
        p = self.path / "phones" / "roots.int"
        with open(p) as f:
            for lineno, line in enumerate(f, 1):
                t = line.split()
                if not t:
                    continue
                if len(t) < 3 or t[0] not in ("shared", "not-shared") or t[1] not in ("split", "not-split"):
                    raise FormatError(f"{p}:{lineno}: expected '(shared|not-shared) (split|not-split) phones...'")
                out.append((t[0] == "shared", t[1] == "split", [int(x) for x in t[2:]]))
        return out

    @cached_property
    def extra_questions(self) -> list[list[int]]:
        p = self.path / "phones" / "extra_questions.int"
        if not p.exists():
            return []
        with open(p) as f:
            return [[int(t) for t in line.split()] for line in f if line.strip()]

    @cached_property
    def word_boundary(self) -> dict[int, str]:
        p = self.path / "phones" / "word_boundary.int"
        if not p.exists():
            return {}
        out = {}
        with open(p) as f:
            for line in f:
                t = line.split()
                if t:
                    out[int(t[0])] = t[1]
        return out

    @cached_property
    def align_lexicon(self) -> dict[int, list[list[int]]]:
        """word id → list of pronunciations (phone ids with position markers), from
        ``phones/align_lexicon.int`` (``word word phones...``)."""
        out: dict[int, list[list[int]]] = {}
        with open(self.path / "phones" / "align_lexicon.int") as f:
            for line in f:
                t = [int(x) for x in line.split()]
                if t:
                    out.setdefault(t[0], []).append(t[2:])
        return out

    def base_phone(self, name: str) -> str:
        """``AA_B`` → ``AA`` (names without a position suffix are unchanged)."""
        if len(name) > 2 and name[-2] == "_" and name[-1] in "BEIS" and self.word_boundary:
            return name[:-2]
        return name

    def topology(self):
        from asr.hmm.topology import Topology

        return Topology.read(self.path / "topo")
