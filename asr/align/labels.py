"""Phone labels from CTM/TextGrid → phone ids of a lang dir, with word-position variants.

Labels that are already phone symbols of the lang dir are used as they are. Otherwise (base
phones such as ``AA`` for a lang with ``AA_B AA_E AA_I AA_S``) the position variants come
from the transcript: the label sequence is parsed as the utterance's words, each spelled by
one of its lexicon pronunciations, with silence labels allowed between words (a small
dynamic programme over phone/word positions). Failing that, a word-level CTM/tier (word
intervals) assigns each phone to the word whose interval holds its midpoint.
"""

from __future__ import annotations

from functools import lru_cache

from asr.errors import AlignmentError
from asr.lang.lang_dir import LangDir


class LabelMapper:
    def __init__(self, lang: LangDir, phone_map: dict[str, str] | None = None):
        self.lang = lang
        self.phone_map = phone_map or {}
        self.phones = lang.phones
        self.positional = bool(lang.word_boundary)
        self.opt_sil = lang.optional_silence
        names = lang.phone_names
        sil_ids = set(lang.silence_phones)
        # nonword silence phones by name (bare SIL, SPN) — allowed between words
        self.silence_names = {names[p] for p in sil_ids if lang.word_boundary.get(p, "nonword") == "nonword"}
        # word id -> list of (base-phone tuple, phone ids)
        self.prons: dict[int, list[tuple[tuple[str, ...], tuple[int, ...]]]] = {}
        for w, prons in lang.align_lexicon.items():
            self.prons[w] = [(tuple(lang.base_phone(names[p]) for p in pr), tuple(pr)) for pr in prons]
        self.oov = lang.words.get(lang.oov_word)
        # label names a CTM/TextGrid may use: phones, and base phones when positions are parsed
        self.known = set(self.phones) | ({lang.base_phone(n) for n in self.phones} if self.positional else set())

    def map_label(self, label: str | None) -> str:
        if label is None:
            return self.lang.phone_names[self.opt_sil]
        if label == "" and "" not in self.phone_map:  # empty TextGrid interval: silence
            return self.lang.phone_names[self.opt_sil]
        return self.phone_map.get(label, label)

    def word_ids(self, words: list[str]) -> tuple[list[int], int]:
        """Word ids of a transcript; OOVs become the OOV word (counted)."""
        ids, n_oov = [], 0
        for w in words:
            i = self.lang.words.get(w)
            if i is None or i not in self.prons:
                n_oov += 1
                if self.oov is None:
                    raise AlignmentError(f"word {w!r} is not in the lexicon and the lang dir has no OOV word")
                i = self.oov
            ids.append(i)
        return ids, n_oov

    def to_ids(self, labels: list[str | None], words: list[int] | None,
               label_mid: list[float] | None = None, word_ivs: list[tuple[float, float, int]] | None = None,
               utt: str = "?") -> list[int]:
        names = [self.map_label(lab) for lab in labels]
        if all(n in self.phones for n in names):
            return [self.phones[n] for n in names]
        unknown = sorted({n for n in names if n not in self.known})
        if unknown:
            raise AlignmentError(f"utterance {utt}: phone(s) {' '.join(unknown[:5])} not in phones.txt")
        if words is not None:
            ids = self._parse_with_words(names, words)
            if ids is not None:
                return ids
        if word_ivs is not None and label_mid is not None:
            ids = self._positions_from_times(names, label_mid, word_ivs)
            if ids is not None:
                return ids
        raise AlignmentError(f"utterance {utt}: phone sequence does not match any pronunciation of the transcript")

    def _parse_with_words(self, names: list[str], words: list[int]) -> list[int] | None:
        n, m = len(names), len(words)
        sil = self.silence_names
        prons = self.prons

        @lru_cache(maxsize=None)
        def solve(i: int, j: int):
            if i == n:
                return () if j == m else None
            if names[i] in sil:
                rest = solve(i + 1, j)
                if rest is not None:
                    return (self.phones[names[i]],) + rest
            if j < m:
                for base, ids in prons.get(words[j], ()):
                    k = len(base)
                    if tuple(names[i : i + k]) == base:
                        rest = solve(i + k, j + 1)
                        if rest is not None:
                            return ids + rest
            return None

        import sys

        limit = sys.getrecursionlimit()
        if n + 100 > limit:
            sys.setrecursionlimit(n + 1000)
        out = solve(0, 0)
        return list(out) if out is not None else None

    def _positions_from_times(self, names, mids, word_ivs) -> list[int] | None:
        owner = []
        for t in mids:
            w = -1
            for k, (s, e, _) in enumerate(word_ivs):
                if s <= t < e:
                    w = k
                    break
            owner.append(w)
        out = []
        for i, (name, w) in enumerate(zip(names, owner)):
            if w < 0:
                if name not in self.silence_names:
                    return None
                out.append(self.phones[name])
                continue
            first = i == 0 or owner[i - 1] != w
            last = i + 1 == len(owner) or owner[i + 1] != w
            suffix = "_S" if first and last else "_B" if first else "_E" if last else "_I"
            pid = self.phones.get(name + suffix)
            if pid is None:
                return None
            out.append(pid)
        return out
