"""Small fixtures shared by the lang/hmm/align tests (made in tmp dirs by the tests)."""

from pathlib import Path

from asr.lang.prepare import prepare_lang

LEXICON = "BAT B AA T\nCAT K AA T\nA AA\nAT AA T\nTAB T AA B\nTAB T AA B AA\n"

CTM = """u1 1 0.00 0.20 SIL
u1 1 0.20 0.10 K
u1 1 0.30 0.10 AA
u1 1 0.40 0.10 T
u1 1 0.50 0.08 AA
u1 1 0.58 0.10 T
u1 1 0.68 0.05 SIL
u1 1 0.73 0.10 T
u1 1 0.83 0.10 AA
u1 1 0.93 0.10 B
u1 1 1.03 0.195 SIL
u2 1 0.00 0.02 AA
u2 1 0.02 0.10 B
u2 1 0.12 0.20 AA
u2 1 0.32 0.10 T
u2 1 0.42 0.203 SIL
u3 1 0.0 0.3 SPN
u3 1 0.3 0.1 K
u3 1 0.4 0.1 AA
u3 1 0.5 0.1 T
"""


def make_dict(d: Path, lexicon: str = LEXICON, probs: bool = False) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "nonsilence_phones.txt").write_text("AA\nB\nK\nT\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "extra_questions.txt").write_text("B K T\n")
    (d / ("lexiconp.txt" if probs else "lexicon.txt")).write_text(lexicon)
    return d


def make_lang(tmp: Path) -> Path:
    prepare_lang(make_dict(tmp / "dict"), tmp / "lang")
    return tmp / "lang"


def make_data(tmp: Path, frames=(120, 60, 58)) -> Path:
    d = tmp / "data"
    d.mkdir(parents=True, exist_ok=True)
    (d / "text").write_text("u1 CAT AT TAB\nu2 A BAT\nu3 ZOO CAT\n")
    (d / "utt2num_frames").write_text("".join(f"u{i + 1} {n}\n" for i, n in enumerate(frames)))
    (d / "phones.ctm").write_text(CTM)
    return d
