"""The synthetic corpus: determinism, speakers, CTM coverage, lexicon agreement, prompt dedup."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data.synth.corpus import CorpusConfig, build_corpus
from asr.data.synth.grammar import MAX_WORDS, MIN_WORDS, Grammar, number_words, ordinal_words
from asr.data.synth.lexicon import read_lexicon
from asr.data.synth.phones import NONSILENCE_PHONES
from asr.data.synth.speakers import split_speakers
from asr.data.synth.utterance import EventError, frame_segments
from asr.io.tables import read_table

TINY = CorpusConfig(seed=3, train_minutes=0.6, dev_minutes=0.3, test_minutes=0.3, unseen_minutes=0.3,
                    lm_sentences=400)
SPLITS = ("train", "dev", "test", "test_unseen")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "data"
    build_corpus(out, TINY, nj=1)
    return out


def _ctm(path):
    rows = {}
    for line in Path(path).read_text().splitlines():
        utt, ch, start, dur, label = line.split()
        assert ch == "1"
        rows.setdefault(utt, []).append((float(start), float(dur), label))
    return rows


def _on_grid(x):
    return abs(x * 100 - round(x * 100)) < 1e-6


def test_layout_and_summary(corpus):
    summary = json.loads((corpus / "local" / "corpus.json").read_text())
    assert summary["vocabulary_size"] >= 1000
    assert summary["excluded_percent"] <= 1.0
    for split in SPLITS:
        d = corpus / split
        for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "phones.ctm", "words.ctm"):
            assert (d / name).is_file(), name
        wavs = read_table(d / "wav.scp")
        assert wavs and set(wavs) == set(read_table(d / "text")) == set(read_table(d / "utt2spk"))
        assert summary["splits"][split]["utterances"] == len(wavs)
        for utt, path in wavs.items():
            info = sf.info(path)
            assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
            assert utt.startswith(read_table(d / "utt2spk")[utt] + "-")
        # spk2utt is the inverse of utt2spk
        inv = {}
        for u, s in read_table(d / "utt2spk").items():
            inv.setdefault(s, []).append(u)
        assert {s: v.split() for s, v in read_table(d / "spk2utt").items()} == {s: sorted(v) for s, v in inv.items()}
    lm = (corpus / "local" / "lm_text.txt").read_text().splitlines()
    assert len(lm) == TINY.lm_sentences


def test_ctm_covers_each_utterance_exactly(corpus):
    for split in SPLITS:
        d = corpus / split
        wavs = read_table(d / "wav.scp")
        phones, words = _ctm(d / "phones.ctm"), _ctm(d / "words.ctm")
        assert set(phones) == set(wavs) == set(words)
        texts = read_table(d / "text")
        for utt, segs in phones.items():
            dur = sf.info(wavs[utt]).frames / 16000
            assert segs[0][0] == 0.0, utt
            assert segs[0][2] == "SIL" and segs[-1][2] == "SIL"
            end = 0.0
            for start, d_, label in segs:
                assert _on_grid(start) and _on_grid(d_)
                assert abs(start - end) < 1e-6, f"{utt}: gap or overlap at {start}"
                assert d_ >= (0.01 if label == "SIL" else 0.03 - 1e-9), f"{utt}: {label} too short"
                end = start + d_
            assert abs(end - dur) < 1e-6, f"{utt}: CTM ends at {end}, audio at {dur}"
            assert [w for _, _, w in words[utt]] == texts[utt].split()


def test_ctm_phones_match_lexicon(corpus):
    lex = read_lexicon(corpus / "local" / "dict" / "lexicon.txt")
    for split in SPLITS:
        d = corpus / split
        phones, words = _ctm(d / "phones.ctm"), _ctm(d / "words.ctm")
        for utt, wsegs in words.items():
            psegs = phones[utt]
            for ws, wd, w in wsegs:
                inside = [p for s, dd, p in psegs if s >= ws - 1e-6 and s + dd <= ws + wd + 1e-6]
                assert tuple(inside) in lex[w], f"{utt}: {w} as {inside} not in lexicon"
            # words and silences tile the phones
            covered = sum(dd for _, dd, _ in wsegs) + sum(dd for _, dd, p in psegs if p == "SIL")
            assert abs(covered - sum(dd for _, dd, _ in psegs)) < 1e-6


def test_dict_dir(corpus):
    d = corpus / "local" / "dict"
    assert (d / "silence_phones.txt").read_text().split() == ["SIL", "SPN"]
    assert (d / "optional_silence.txt").read_text().split() == ["SIL"]
    assert (d / "extra_questions.txt").exists()
    nonsil = (d / "nonsilence_phones.txt").read_text().split()
    assert 40 <= len(nonsil) <= 50 and set(nonsil) == set(NONSILENCE_PHONES)
    for p in nonsil:
        assert p.isascii() and p.isalnum() and not p.endswith(("_B", "_E", "_I", "_S"))
    best: dict[str, float] = {}
    for line in (d / "lexiconp.txt").read_text().splitlines():
        w, prob, *pron = line.split()
        assert 0 < float(prob) <= 1.0 and pron
        assert set(pron) <= set(nonsil) | {"SPN"}
        best[w] = max(best.get(w, 0.0), float(prob))
    assert set(best.values()) == {1.0}
    assert "<UNK> SPN" in (d / "lexicon.txt").read_text().splitlines()
    assert len(best) >= 1000


def test_prompts_deduplicated_between_splits(corpus):
    lm = set((corpus / "local" / "lm_text.txt").read_text().splitlines())
    prompts = {s: set(read_table(corpus / s / "text").values()) for s in SPLITS}
    for held_out in ("dev", "test", "test_unseen"):
        assert not prompts[held_out] & lm
        assert not prompts[held_out] & prompts["train"]
    assert not prompts["dev"] & prompts["test"] and not prompts["test_unseen"] & prompts["test"]


def test_speakers_disjoint(corpus):
    spk = {s: set(read_table(corpus / s / "utt2spk").values()) for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not spk[a] & spk[b], (a, b)
    default = split_speakers(1, 120, 8, 10, 8)
    assert [len(default[s]) for s in SPLITS] == [120, 8, 10, 8]
    variants = {s: {x.voice.split("+")[1] for x in default[s]} for s in SPLITS}
    accents = {s: {x.accent for x in default[s]} for s in SPLITS}
    # dev and test: new (accent, variant) pairs of seen accents and variants; unseen: variants no split has
    for s in ("dev", "test"):
        assert variants[s] <= variants["train"] and accents[s] <= accents["train"]
    assert not variants["test_unseen"] & (variants["train"] | variants["dev"] | variants["test"])
    assert len(variants["test_unseen"]) == 8 and len(accents["train"]) == 8


def test_same_seed_identical_across_jobs(corpus, tmp_path):
    """Same seed, different number of jobs: identical wav bytes, text, CTMs and lexicon."""
    other = tmp_path / "again"
    build_corpus(other, TINY, nj=2)
    for split in SPLITS:
        for name in ("text", "utt2spk", "phones.ctm", "words.ctm"):
            assert (corpus / split / name).read_bytes() == (other / split / name).read_bytes(), name
        for utt in read_table(corpus / split / "wav.scp"):
            a = (corpus / split / "wav" / f"{utt}.wav").read_bytes()
            assert a == (other / split / "wav" / f"{utt}.wav").read_bytes(), utt
    assert (corpus / "local/dict/lexiconp.txt").read_bytes() == (other / "local/dict/lexiconp.txt").read_bytes()
    assert (corpus / "local/lm_text.txt").read_bytes() == (other / "local/lm_text.txt").read_bytes()


def test_audio_is_noisy_speech(corpus):
    wavs = read_table(corpus / "train" / "wav.scp")
    phones = _ctm(corpus / "train" / "phones.ctm")
    ratios = []
    for utt, path in list(wavs.items())[:10]:
        x, sr = sf.read(path)
        e = x**2
        speech = np.concatenate([e[int(s * sr):int((s + d) * sr)] for s, d, p in phones[utt] if p != "SIL"])
        sil = np.concatenate([e[int(s * sr):int((s + d) * sr)] for s, d, p in phones[utt] if p == "SIL"])
        assert sil.mean() > 0, "silence should carry noise"
        ratios.append(speech.mean() / sil.mean())
    assert np.median(ratios) > 2.0  # speech louder than the noise floor


def test_cli_skips_complete_corpus_and_rejects_bad_options(corpus, tmp_path):
    args = ["--seed", "3", "--train-minutes", "0.6", "--dev-minutes", "0.3", "--test-minutes", "0.3",
            "--unseen-minutes", "0.3", "--lm-sentences", "400", "--nj", "1"]
    before = (corpus / "local" / "corpus.json").stat().st_mtime_ns
    r = subprocess.run([sys.executable, "-m", "asr", "synth-corpus", *args, str(corpus)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "already complete" in r.stderr
    assert (corpus / "local" / "corpus.json").stat().st_mtime_ns == before
    r = subprocess.run([sys.executable, "-m", "asr", "synth-corpus", "--nj", "0", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "--nj" in r.stderr
    r = subprocess.run([sys.executable, "-m", "asr", "synth-corpus", "--train-speakers", "400", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "speakers" in r.stderr


def test_grammar():
    g = Grammar()
    assert len(g.vocabulary()) >= 1000
    rng = np.random.default_rng(0)
    sents = [g.sample(rng) for _ in range(2000)]
    lengths = [len(s) for s in sents]
    assert min(lengths) >= MIN_WORDS and max(lengths) <= MAX_WORDS
    assert len(set(lengths)) > 10
    vocab = set(g.vocabulary())
    assert all(w in vocab and w.isalpha() and w.islower() for s in sents for w in s)
    assert number_words(2347) == "two thousand three hundred forty seven".split()
    assert number_words(90) == ["ninety"] and ordinal_words(23) == ["twenty", "third"]
    with pytest.raises(ValueError):
        number_words(-1)


def test_frame_segments_min_durations_and_zero_length_phones():
    # 22050 Hz events: a zero-length 'L' (as espeak emits) and a trailing pause
    ev = [(0, "K", 0), (2205, "AA", 0), (6615, "L", 0), (6615, "T", 0), (8820, "SIL", -1)]
    segs = frame_segments(ev, 9261, 22050, lead_frames=20, total_frames=90, min_phone_frames=3)
    assert segs[0][:3] == (0, 20, "SIL") and segs[-1][1] == 90 and segs[-1][2] == "SIL"
    assert [s[2] for s in segs] == ["SIL", "K", "AA", "L", "T", "SIL"]
    for a, b in zip(segs, segs[1:]):
        assert a[1] == b[0]
    assert all(s[1] - s[0] >= 3 for s in segs if s[2] != "SIL")
    with pytest.raises(EventError):
        frame_segments([(0, "K", 0)], 100, 22050, lead_frames=0, total_frames=2, min_phone_frames=3)


def test_fresh_espeak_is_repeatable():
    from asr.data.synth.zygote import FreshEspeak

    engine = FreshEspeak()
    try:
        a = engine.synthesize("set the speed of the carrier to twenty knots", "en-us+f2", 160, 40, 60, seed=5)
        engine.synthesize("where is the flagship", "en-gb-scotland+m3", 190, 70, 20, seed=9)
        b = engine.synthesize("set the speed of the carrier to twenty knots", "en-us+f2", 160, 40, 60, seed=5)
        assert a.pcm == b.pcm and a.events == b.events and len(a.pcm) > 16000
        starts = [e[2] for e in a.events if e[0] == "W"]
        # word events at word starts (espeak joins some function words: "of the")
        assert starts[0] == 1 and set(starts) <= {1, 5, 9, 15, 18, 22, 30, 33, 40} and len(starts) >= 6
        with pytest.raises(Exception, match="voice"):
            engine.synthesize("hello", "xx-nonexistent+m1")
    finally:
        engine.close()


def test_recipe_options():
    run_sh = Path(__file__).resolve().parents[1] / "recipes" / "synth" / "run.sh"
    r = subprocess.run(["bash", str(run_sh), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--quick" in r.stdout and "stage" in r.stdout.lower()
    r = subprocess.run(["bash", str(run_sh), "--no-such-option", "1"], capture_output=True, text=True)
    assert r.returncode == 1 and "invalid option" in r.stderr
    r = subprocess.run(["bash", str(run_sh), "--quick", "maybe"], capture_output=True, text=True)
    assert r.returncode == 1
