"""Build the synthetic corpus: prompts, speakers, speech, channel, CTMs, lexicon, data dirs.

Layout written under OUT_DIR::

    {train,dev,test,test_unseen}/  wav/<utt>.wav wav.scp text utt2spk spk2utt utt2dur phones.ctm words.ctm
    local/lm_text.txt              LM training sentences (never containing a dev/test prompt)
    local/dict/                    Kaldi dict dir (lexicon.txt, lexiconp.txt, phone lists)
    local/excluded.txt             utterances left out, with the reason
    local/corpus.json              sizes, speakers, timings; written last (marks completion)

``test_unseen`` is spoken by voice variants no other split uses (the source of the
recipe's hard test set). Speech varies by speaker (base rate and pitch), by utterance
(jittered rate, pitch and pitch range) and by word: some words are spoken faster or slower
(SSML ``<prosody rate>``) and some word boundaries get a pause (SSML ``<break>``).

Every random choice comes from a generator seeded by (seed, purpose[, split, index]),
so a corpus depends only on its configuration, not on the number of jobs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.data.synth.channel import ChannelConfig
from asr.data.synth.grammar import Grammar
from asr.data.synth.lexicon import Lexicon, write_dict_dir
from asr.data.synth.speakers import ACCENTS, SPLIT_NAMES, Speaker, split_speakers
from asr.data.synth.utterance import FRAME, SAMPLE_RATE, UttResult, UttSpec
from asr.errors import ConfigError
from asr.io.atomic import atomic_write, atomic_write_text
from asr.io.tables import write_table

log = logging.getLogger(__name__)

SPLITS = SPLIT_NAMES
_SPLIT_CODE = {"train": 2, "dev": 3, "test": 4, "test_unseen": 5}
_SPLIT_TAG = {"train": "tr", "dev": "dv", "test": "ts", "test_unseen": "tu"}
# seconds of speech per (word / words-per-minute * 60), measured on the grammar's prompts with
# the per-word rate changes and pauses (0.82 gave 4.86 h for 240 minutes: 1.21x; 0.99 matches)
_DURATION_FACTOR = 0.99


@dataclass(frozen=True)
class CorpusConfig:
    seed: int = 1
    train_minutes: float = 195.0
    dev_minutes: float = 15.0
    test_minutes: float = 25.0
    unseen_minutes: float = 20.0
    lm_sentences: int = 200_000
    train_speakers: int = 120
    dev_speakers: int = 8
    test_speakers: int = 10
    unseen_speakers: int = 8
    snr_db: tuple[float, float] = (5.0, 30.0)
    reverb_prob: float = 0.2
    rate_wpm: tuple[float, float] = (110.0, 240.0)
    pitch: tuple[float, float] = (5.0, 95.0)
    word_rate_prob: float = 0.25  # share of words spoken at another rate
    word_rate: tuple[float, float] = (75.0, 135.0)  # % of the utterance's rate
    pause_prob: float = 0.08  # share of word boundaries with a pause
    pause_ms: tuple[float, float] = (80.0, 400.0)
    min_phone_frames: int = 3

    def channel(self) -> ChannelConfig:
        return ChannelConfig(snr_db=tuple(self.snr_db), reverb_prob=self.reverb_prob)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


QUICK = {"train_minutes": 10.0, "dev_minutes": 3.0, "test_minutes": 3.0, "unseen_minutes": 3.0,
         "lm_sentences": 20_000}


def build_corpus(out_dir: str | os.PathLike, config: CorpusConfig, nj: int = 1, force: bool = False) -> dict:
    """Generate the corpus into ``out_dir``; returns the summary written to corpus.json.
    A complete corpus with the same configuration is kept as is unless ``force``."""
    out = Path(out_dir).resolve()
    summary_path = out / "local" / "corpus.json"
    if summary_path.exists() and not force:
        try:
            old = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("config") == config.to_json() and all((out / s / "wav.scp").exists() for s in SPLITS):
            log.info("%s: corpus already complete with this configuration; skipping", out)
            return old
    _check_config(config)
    t0 = time.time()
    grammar = Grammar()
    vocab = grammar.vocabulary()
    speakers = split_speakers(config.seed, config.train_speakers, config.dev_speakers, config.test_speakers,
                              config.unseen_speakers)
    lm_text, prompts = draw_prompts(grammar, config)
    specs = {split: make_specs(split, prompts[split], speakers[split], config) for split in SPLITS}
    for split in SPLITS:
        if (out / split).exists():
            shutil.rmtree(out / split)
        (out / split / "wav").mkdir(parents=True)
    (out / "local").mkdir(parents=True, exist_ok=True)
    if summary_path.exists():
        summary_path.unlink()
    atomic_write_text(out / "local" / "lm_text.txt", "".join(" ".join(s) + "\n" for s in lm_text))

    from asr.data.synth import workers

    voices = [f"{accent}+m1" for accent in ACCENTS]
    log.info("pronouncing %d words in context in %d accents", len(vocab), len(voices))
    iso_tasks = [(w, v) for v in voices for w in vocab]
    # text-only phonemisation: deterministic and fast, done here rather than in workers
    isolated = [workers.pronounce_task(t) for t in iso_tasks]
    known: dict[str, list[tuple[str, ...]]] = {}
    for (word, _), prons in zip(iso_tasks, isolated):
        for pron in prons:
            if pron not in known.setdefault(word, []):
                known[word].append(pron)
    missing = [w for w in vocab if w not in known]
    if missing:
        log.warning("%d words have no usable isolated pronunciation: %s", len(missing), " ".join(missing[:10]))

    all_specs = [s for split in SPLITS for s in specs[split]]
    jobs = [(s, str(out / split / "wav" / f"{s.utt}.wav")) for split in SPLITS for s in specs[split]]
    log.info("synthesising %d utterances with %d jobs", len(jobs), nj)
    results = workers.run_tasks(workers.render_task, jobs, nj, (config.seed, known, config), "utterances")
    by_utt = dict(zip((s.utt for s in all_specs), results))

    lexicon = Lexicon()
    for word, prons in known.items():
        for p in prons:
            lexicon.add(word, p)
    for s in specs["train"]:
        r = by_utt[s.utt]
        if r.error is None:
            for w, p in zip(s.words, r.prons):
                lexicon.add(w, p)
    excluded: list[tuple[str, str]] = []
    stats = {}
    for split in SPLITS:
        kept = []
        for s in specs[split]:
            r = by_utt[s.utt]
            reason = r.error
            if reason is None:
                bad = [w for w, p in zip(s.words, r.prons) if not lexicon.has(w, p)]
                if bad:
                    reason = f"pronunciation of {bad[0]!r} not in the lexicon"
            if reason is None:
                kept.append((s, r))
            else:
                excluded.append((s.utt, reason))
                wav = out / split / "wav" / f"{s.utt}.wav"
                if wav.exists():
                    wav.unlink()
        write_split(out / split, kept)
        frames = sum(r.num_frames for _, r in kept)
        stats[split] = {
            "utterances": len(kept),
            "excluded": len(specs[split]) - len(kept),
            "hours": round(frames / 100 / 3600, 4),
            "speakers": [sp.id for sp in speakers[split]],
        }
    write_dict_dir(lexicon, out / "local" / "dict")
    atomic_write_text(out / "local" / "excluded.txt", "".join(f"{u} {why}\n" for u, why in sorted(excluded)))
    n_total = len(all_specs)
    summary = {
        "config": config.to_json(),
        "vocabulary_size": len(vocab),
        "lexicon_pronunciations": lexicon.num_prons(),
        "lm_sentences": len(lm_text),
        "splits": stats,
        "excluded": len(excluded),
        "excluded_percent": round(100.0 * len(excluded) / max(n_total, 1), 3),
        "generation_seconds": round(time.time() - t0, 1),
        "jobs": nj,
    }
    for split in SPLITS:
        log.info("%s: %d utterances, %.2f h, %d excluded", split, stats[split]["utterances"], stats[split]["hours"],
                 stats[split]["excluded"])
    if excluded:
        log.warning("%d of %d utterances excluded (%.2f%%); reasons in %s", len(excluded), n_total,
                    summary["excluded_percent"], out / "local" / "excluded.txt")
    atomic_write_text(summary_path, json.dumps(summary, indent=1) + "\n")
    return summary


def _check_config(c: CorpusConfig) -> None:
    if min(c.train_minutes, c.dev_minutes, c.test_minutes, c.unseen_minutes) <= 0:
        raise ConfigError("split sizes must be positive")
    if c.unseen_speakers < 1:
        raise ConfigError("--unseen-speakers must be at least 1")
    for name in ("word_rate_prob", "pause_prob"):
        if not 0 <= getattr(c, name) <= 1:
            raise ConfigError(f"{name} must be in [0, 1]")
    if not 0 <= c.pitch[0] <= c.pitch[1] <= 100:
        raise ConfigError(f"bad pitch range {c.pitch}")
    if c.lm_sentences < 1:
        raise ConfigError("--lm-sentences must be at least 1")
    if not 0 <= c.snr_db[0] <= c.snr_db[1]:
        raise ConfigError(f"bad SNR range {c.snr_db}")
    if not 80 <= c.rate_wpm[0] <= c.rate_wpm[1] <= 450:
        raise ConfigError(f"bad speaking-rate range {c.rate_wpm}")


def draw_prompts(grammar: Grammar, config: CorpusConfig) -> tuple[list[list[str]], dict[str, list[tuple[str, ...]]]]:
    """LM sentences and the prompts of each split, each from its own seeded draw. Dev and
    test prompts never occur in the LM text, the train prompts or each other."""
    rng = np.random.default_rng([config.seed, 1])
    lm = [grammar.sample(rng) for _ in range(config.lm_sentences)]
    taken = {tuple(s) for s in lm}
    prompts: dict[str, list[tuple[str, ...]]] = {}
    minutes = {"train": config.train_minutes, "dev": config.dev_minutes, "test": config.test_minutes,
               "test_unseen": config.unseen_minutes}
    mean_rate = sum(config.rate_wpm) / 2
    for split in SPLITS:
        rng = np.random.default_rng([config.seed, _SPLIT_CODE[split]])
        budget, out = minutes[split] * 60.0, []
        tries = 0
        while budget > 0:
            tries += 1
            if tries > 100 * (len(out) + 100):
                raise ConfigError(f"cannot draw enough new {split} prompts; the LM text covers the grammar")
            s = tuple(grammar.sample(rng))
            if split != "train" and s in taken:
                continue
            out.append(s)
            budget -= 0.65 + len(s) * 60.0 / mean_rate * _DURATION_FACTOR
        prompts[split] = out
        taken.update(out)
    return lm, prompts


def make_specs(split: str, prompts: list[tuple[str, ...]], speakers: list[Speaker], config: CorpusConfig) -> list[UttSpec]:
    """Utterance specs: speakers round-robin; per-utterance rate, pitch, range and padding;
    per-word rate changes and pauses."""
    code = _SPLIT_CODE[split]
    tag = _SPLIT_TAG[split]
    lo, hi = config.rate_wpm
    specs = []
    for i, words in enumerate(prompts):
        spk = speakers[i % len(speakers)]
        rng = np.random.default_rng([config.seed, code, i])
        rate = float(np.clip(spk.base_rate + rng.normal(0, 15), lo, hi))
        pitch = float(np.clip(spk.base_pitch + rng.uniform(-15, 15), *config.pitch))
        pitch_range = int(rng.integers(10, 91))
        lead, trail = int(rng.integers(15, 51)), int(rng.integers(15, 51))
        n = len(words)
        changed = rng.random(n) < config.word_rate_prob
        word_rates = np.where(changed, np.round(rng.uniform(*config.word_rate, n)), 100).astype(int)
        paused = rng.random(max(n - 1, 0)) < config.pause_prob
        breaks = np.where(paused, np.round(rng.uniform(*config.pause_ms, max(n - 1, 0))), 0).astype(int)
        specs.append(UttSpec(
            utt=f"{spk.id}-{tag}{i:05d}", speaker=spk.id, voice=spk.voice, words=words,
            seed=(config.seed, code, i, 1), rate=int(round(rate)), pitch=int(round(pitch)),
            pitch_range=pitch_range, lead_frames=lead, trail_frames=trail,
            word_rates=tuple(int(x) for x in word_rates) if changed.any() else (),
            breaks=tuple(int(x) for x in breaks) if paused.any() else (),
        ))
    return specs


def write_split(d: Path, kept: list[tuple[UttSpec, UttResult]]) -> None:
    """wav.scp, text, utt2spk, spk2utt, utt2dur, phones.ctm, words.ctm for one split."""
    kept = sorted(kept, key=lambda sr: sr[0].utt.encode())
    write_table(d / "wav.scp", [(s.utt, str(d / "wav" / f"{s.utt}.wav")) for s, _ in kept])
    write_table(d / "text", [(s.utt, " ".join(s.words)) for s, _ in kept])
    write_table(d / "utt2spk", [(s.utt, s.speaker) for s, _ in kept])
    write_table(d / "utt2dur", [(s.utt, f"{r.num_frames * FRAME / SAMPLE_RATE:.2f}") for s, r in kept])
    spk2utt: dict[str, list[str]] = {}
    for s, _ in kept:
        spk2utt.setdefault(s.speaker, []).append(s.utt)
    write_table(d / "spk2utt", [(k, " ".join(v)) for k, v in spk2utt.items()])
    with atomic_write(d / "phones.ctm") as f:
        for s, r in kept:
            f.writelines(f"{s.utt} 1 {b / 100:.2f} {n / 100:.2f} {ph}\n" for b, n, ph in r.phones)
    with atomic_write(d / "words.ctm") as f:
        for s, r in kept:
            f.writelines(f"{s.utt} 1 {b / 100:.2f} {n / 100:.2f} {w}\n" for b, n, w in r.words)

