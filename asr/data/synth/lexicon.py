"""The corpus lexicon and Kaldi dict dir.

Pronunciations are espeak-ng's own: each vocabulary word spoken alone by every accent,
plus the variants observed in context in the training utterances (cross-word effects),
counted. ``lexiconp.txt`` carries Kaldi pronunciation probabilities (count / the word's
largest count, so the most frequent pronunciation has 1.0).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from asr.data.synth.phones import NONSILENCE_PHONES, SILENCE, SPOKEN_NOISE
from asr.io.atomic import atomic_write_text

UNK = "<UNK>"


class Lexicon:
    """word → Counter of pronunciations (tuples of phones)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}

    def add(self, word: str, pron: tuple[str, ...], count: int = 1) -> None:
        self.counts.setdefault(word, Counter())[pron] += count

    def has(self, word: str, pron: tuple[str, ...]) -> bool:
        return pron in self.counts.get(word, ())

    def probabilities(self) -> dict[str, list[tuple[tuple[str, ...], float]]]:
        """word → [(pron, prob)], most frequent first, prob = count / max count."""
        out = {}
        for word, c in self.counts.items():
            top = max(c.values())
            out[word] = [(p, n / top) for p, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]
        return out

    def num_prons(self) -> int:
        return sum(len(c) for c in self.counts.values())


def write_dict_dir(lexicon: Lexicon, dict_dir: str | os.PathLike) -> None:
    """Kaldi dict dir: lexicon.txt, lexiconp.txt, silence_phones.txt, optional_silence.txt,
    nonsilence_phones.txt, extra_questions.txt (empty). ``<UNK>`` is spoken noise."""
    d = Path(dict_dir)
    probs = lexicon.probabilities()
    lex_lines, lexp_lines = [f"{UNK} {SPOKEN_NOISE}"], [f"{UNK} 1.0 {SPOKEN_NOISE}"]
    for word in sorted(probs, key=lambda w: w.encode()):
        for pron, p in probs[word]:
            lex_lines.append(f"{word} {' '.join(pron)}")
            lexp_lines.append(f"{word} {p:.6g} {' '.join(pron)}")
    atomic_write_text(d / "lexicon.txt", "\n".join(lex_lines) + "\n")
    atomic_write_text(d / "lexiconp.txt", "\n".join(lexp_lines) + "\n")
    atomic_write_text(d / "silence_phones.txt", f"{SILENCE}\n{SPOKEN_NOISE}\n")
    atomic_write_text(d / "optional_silence.txt", f"{SILENCE}\n")
    atomic_write_text(d / "nonsilence_phones.txt", "".join(f"{p}\n" for p in NONSILENCE_PHONES))
    atomic_write_text(d / "extra_questions.txt", "")


def read_lexicon(path: str | os.PathLike) -> dict[str, set[tuple[str, ...]]]:
    """``lexicon.txt`` or ``lexiconp.txt`` → word → set of pronunciations."""
    out: dict[str, set[tuple[str, ...]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            word, rest = parts[0], parts[1:]
            if str(path).endswith("lexiconp.txt"):
                rest = rest[1:]
            out.setdefault(word, set()).add(tuple(rest))
    return out
