"""A LibriSpeech-shaped corpus of synthesised speech, for data-prep, download and recipe tests.

``make_librispeech_fixture(root, parts)`` writes, from the synthetic corpus generator
(espeak-ng speech with exact phone boundaries)::

    root/LibriSpeech/SPEAKERS.TXT                     real format (";ID |SEX| SUBSET |MINUTES| NAME",
                                                      reader 60's name holding '|' as in the real file)
    root/LibriSpeech/PART/READER/CHAPTER/READER-CHAPTER.trans.txt   upper-case transcripts
    root/LibriSpeech/PART/READER/CHAPTER/READER-CHAPTER-NNNN.flac   16 kHz 16-bit FLAC
    root/lm/librispeech-lexicon.txt                   "WORD<TAB>PH1 PH2 ..." (vowels with stress digits)
    root/lm/librispeech-vocab.txt  librispeech-lm-norm.txt.gz
    root/lm/3-gram.pruned.3e-7.arpa.gz  3-gram.arpa.gz  4-gram.arpa.gz   (ARPA, gzipped)
    root/alignments/PART.phones.ctm  PART.words.ctm   the exact phone/word times (labels as in
                                                      the lexicon), for making alignments

Train parts take the synthetic train speakers, ``dev-*`` parts the dev speakers and ``test-*``
parts the test speakers (speakers split between parts of one kind). Each reader reads two
chapters. ``odd_parts`` get the odd cases data prep must skip: a chapter without a transcript
file, a transcript line whose FLAC is missing, a FLAC without a transcript line. The returned
manifest lists, per part, the utterances a correct data prep keeps.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from asr.data.synth.corpus import CorpusConfig, build_corpus
from asr.data.synth.phones import SILENCE, SPOKEN_NOISE
from asr.io.tables import read_table

SECONDS_PER_UTT = 3.3  # mean synthetic utterance length (for sizing the synthetic corpus)
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EA", "EH", "ER", "EY", "IA", "IH", "IY", "OH", "OW", "OY",
           "UA", "UH", "UW"}


@dataclass(frozen=True)
class FixtureUtt:
    utt: str  # READER-CHAPTER-NNNN
    speaker: str  # READER-CHAPTER
    reader: str
    gender: str  # m / f
    text: str
    flac: Path


@dataclass
class Fixture:
    root: Path
    corpus: Path  # root/LibriSpeech
    lm_dir: Path  # root/lm
    utts: dict[str, list[FixtureUtt]] = field(default_factory=dict)  # part -> what data prep must keep
    odd: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # part -> reason -> paths

    def part(self, name: str) -> Path:
        return self.corpus / name


def stressed(phone: str) -> str:
    """CMUdict-style stress digit on vowels (schwa unstressed), as librispeech-lexicon.txt."""
    if phone == "AX":
        return "AX0"
    return phone + "1" if phone in _VOWELS else phone


def make_librispeech_fixture(root: str | Path, parts: dict[str, int], seed: int = 3, odd_parts: tuple = (),
                             lm: bool = True, lm_sentences: int = 3000) -> Fixture:
    """Write the fixture (see the module doc); ``parts``: part name -> number of utterances."""
    root = Path(root)
    kinds = {p: ("train" if p.startswith("train") else "dev" if p.startswith("dev") else "test") for p in parts}
    need = {k: sum(n for p, n in parts.items() if kinds[p] == k) for k in ("train", "dev", "test")}
    n_eval_parts = {k: sum(1 for p in parts if kinds[p] == k) for k in ("dev", "test")}
    cfg = CorpusConfig(
        seed=seed, lm_sentences=lm_sentences,
        train_minutes=max(need["train"], 1) * SECONDS_PER_UTT / 60 * 1.5,
        dev_minutes=max(need["dev"], 1) * SECONDS_PER_UTT / 60 * 1.5,
        test_minutes=max(need["test"], 1) * SECONDS_PER_UTT / 60 * 1.5,
        train_speakers=14, dev_speakers=max(2, 2 * n_eval_parts["dev"]),
        test_speakers=max(2, 2 * n_eval_parts["test"]),
        snr_db=(20.0, 30.0), reverb_prob=0.0,
    )
    synth = root / "synth"
    build_corpus(synth, cfg, nj=2)
    fx = Fixture(root, root / "LibriSpeech", root / "lm")
    fx.corpus.mkdir(parents=True, exist_ok=True)
    readers: dict[str, tuple[str, str, str]] = {}  # synth speaker -> (reader id, gender, part)
    next_reader = iter([19, 26, 60] + list(range(103, 1000, 17)))  # LibriSpeech-like reader ids, 60 included
    ctm_phones = _read_ctm(synth, "phones.ctm")
    ctm_words = _read_ctm(synth, "words.ctm")
    for kind in ("train", "dev", "test"):
        kind_parts = [p for p in parts if kinds[p] == kind]
        if not kind_parts:
            continue
        text = read_table(synth / kind / "text")
        wav = read_table(synth / kind / "wav.scp")
        utt2spk = read_table(synth / kind / "utt2spk")
        by_spk: dict[str, list[str]] = {}
        for u in sorted(text):
            by_spk.setdefault(utt2spk[u], []).append(u)
        free = sorted(by_spk)
        # whole speakers to each part (readers never span parts), biggest demand first
        for part in sorted(kind_parts, key=lambda p: -parts[p]):
            utts: list[str] = []
            while len(utts) < parts[part] and free:
                utts += by_spk[free.pop(0)]
            if len(utts) < parts[part]:
                raise RuntimeError(f"fixture: not enough synthetic speakers/utterances for {part}")
            fx.utts[part] = _write_part(fx, part, sorted(utts)[: parts[part]], text, wav, utt2spk, readers,
                                        next_reader, ctm_phones, ctm_words)
    _write_speakers_txt(fx, readers)
    for part in odd_parts:
        fx.odd[part] = _add_odd_cases(fx, part)
    if lm:
        _write_lm_resources(fx, synth)
    return fx


def _read_ctm(synth: Path, name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind in ("train", "dev", "test"):
        p = synth / kind / name
        if p.exists():
            for line in p.read_text().splitlines():
                out.setdefault(line.split()[0], []).append(line)
    return out


def _write_part(fx, part, utts, text, wav, utt2spk, readers, next_reader, ctm_phones, ctm_words):
    out: list[FixtureUtt] = []
    counters: dict[str, int] = {}
    ali = fx.root / "alignments"
    ali.mkdir(parents=True, exist_ok=True)
    ph_lines, w_lines = [], []
    for u in utts:
        spk = utt2spk[u]
        if spk not in readers:
            variant = spk.split("-")[1]
            readers[spk] = (str(next(next_reader)), "f" if variant.startswith("f") else "m", part)
        reader, gender, _ = readers[spk]
        k = counters.get(spk, 0)
        counters[spk] = k + 1
        chapter = str(100000 + int(reader) * 13 + k % 2)
        new = f"{reader}-{chapter}-{k // 2:04d}"
        d = fx.corpus / part / reader / chapter
        d.mkdir(parents=True, exist_ok=True)
        audio, rate = sf.read(wav[u], dtype="int16")
        flac = d / f"{new}.flac"
        sf.write(flac, audio, rate, format="FLAC", subtype="PCM_16")
        words = text[u].upper()
        with open(d / f"{reader}-{chapter}.trans.txt", "a", encoding="utf-8") as f:
            f.write(f"{new} {words}\n")
        out.append(FixtureUtt(new, f"{reader}-{chapter}", reader, gender, words, flac.resolve()))
        for line in ctm_phones[u]:
            _, ch, start, dur, ph = line.split()
            ph_lines.append(f"{new} {ch} {start} {dur} {stressed(ph)}\n")
        for line in ctm_words[u]:
            _, ch, start, dur, w = line.split()
            w_lines.append(f"{new} {ch} {start} {dur} {w.upper()}\n")
    (ali / f"{part}.phones.ctm").write_text("".join(ph_lines))
    (ali / f"{part}.words.ctm").write_text("".join(w_lines))
    return sorted(out, key=lambda x: x.utt)


def _write_speakers_txt(fx: Fixture, readers) -> None:
    lines = ["; Some readers contributed to more than one subset: only the first is listed here.\n",
             ";ID  |SEX| SUBSET           |MINUTES| NAME\n"]
    for reader, gender, part in sorted(readers.values(), key=lambda r: int(r[0])):
        name = "|CBW|Simon" if reader == "60" else f"Reader {reader}"
        lines.append(f"{reader:<5}| {gender.upper()} | {part:<16} | 25.03 | {name}\n")
    (fx.corpus / "SPEAKERS.TXT").write_text("".join(lines))


def _add_odd_cases(fx: Fixture, part: str) -> dict[str, list[str]]:
    """Break three things in ``part`` and drop the affected utterances from the manifest."""
    utts = fx.utts[part]
    by_chapter: dict[Path, list[FixtureUtt]] = {}
    for u in utts:
        by_chapter.setdefault(u.flac.parent, []).append(u)
    chapters = sorted(by_chapter)
    if len(chapters) < 3:
        raise RuntimeError(f"fixture: {part} needs 3 chapters for the odd cases")
    odd: dict[str, list[str]] = {}
    # 1. a chapter whose transcript file is missing
    ch = chapters[0]
    trans = next(ch.glob("*.trans.txt"))
    trans.unlink()
    odd["chapter_without_transcript"] = [str(ch)]
    gone = {u.utt for u in by_chapter[ch]}
    # 2. a transcript line without audio
    victim = by_chapter[chapters[1]][0]
    victim.flac.unlink()
    odd["utterance_without_audio"] = [victim.utt]
    gone.add(victim.utt)
    # 3. audio without a transcript line (a copy of another file under a new number)
    ch3 = chapters[2]
    src = by_chapter[ch3][0]
    extra = ch3 / f"{ch3.parent.name}-{ch3.name}-9999.flac"
    shutil.copyfile(src.flac, extra)
    odd["audio_without_transcript"] = [str(extra)]
    fx.utts[part] = [u for u in utts if u.utt not in gone]
    return odd


def _write_lm_resources(fx: Fixture, synth: Path) -> None:
    """Lexicon, vocabulary, LM text and the ARPA LMs named as openslr 11's."""
    from asr.data.synth.lexicon import read_lexicon
    from asr.lm.arpa import write_arpa
    from asr.lm.build import make_lm

    d = fx.lm_dir
    d.mkdir(parents=True, exist_ok=True)
    lex = read_lexicon(synth / "local" / "dict" / "lexicon.txt")
    lines = []
    for word in sorted(lex):
        if word.startswith("<"):
            continue  # the real lexicon has no <UNK>; the dict prep adds it
        for pron in sorted(lex[word]):
            if SILENCE in pron or SPOKEN_NOISE in pron:
                continue
            lines.append(f"{word.upper()}\t{' '.join(stressed(p) for p in pron)}\n")
    (d / "librispeech-lexicon.txt").write_text("".join(lines))
    vocab = sorted({line.split("\t")[0] for line in lines})
    (d / "librispeech-vocab.txt").write_text("".join(w + "\n" for w in vocab))
    text = (synth / "local" / "lm_text.txt").read_text().upper()
    plain = d / "lm_text.tmp"
    plain.write_text(text)
    with gzip.open(d / "librispeech-lm-norm.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    # the first-pass LM heavily pruned (as tgsmall is), so that decoding the fixture stays fast
    for name, order, target in (("4-gram", 4, None), ("3-gram", 3, None), ("3-gram.pruned.3e-7", 3, 2500)):
        lm = make_lm(plain, order, vocab=d / "librispeech-vocab.txt", target_ngrams=target, unk="<UNK>")
        arpa = d / f"{name}.arpa"
        write_arpa(lm, arpa)
        with open(arpa, "rb") as src, gzip.open(d / f"{name}.arpa.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        arpa.unlink()
    plain.unlink()


def flac_num_frames(path: Path) -> int:
    """Kaldi frame count (25 ms / 10 ms, snip-edges) of a 16 kHz file."""
    n = sf.info(str(path)).frames
    return 1 + (n - 400) // 160 if n >= 400 else 0
