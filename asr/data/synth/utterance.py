"""One synthetic utterance: espeak speech → phone and word segments on the 10 ms grid →
channel → 16 kHz int16 wav.

Phone boundaries come from espeak's phoneme events (sample positions at espeak's rate),
shifted by the leading silence, scaled to 16 kHz and rounded to 10 ms frames. The wav
length is a whole number of frames, so the segments (``SIL`` first and last) cover the
utterance exactly. Speech phones get at least ``min_phone_frames`` frames (moving a
boundary by the fewest frames needed), so a 3-state HMM fits in every phone.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np

from asr.data.synth.channel import ChannelConfig, apply_channel
from asr.data.synth.espeak import Espeak, Synthesis
from asr.data.synth.phones import SILENCE, map_mnemonic

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME = 160  # samples per 10 ms


@dataclass(frozen=True)
class UttSpec:
    utt: str
    speaker: str
    voice: str
    words: tuple[str, ...]
    seed: tuple[int, ...]  # seeds the channel of this utterance
    rate: int
    pitch: int
    pitch_range: int
    lead_frames: int
    trail_frames: int
    word_rates: tuple[int, ...] = ()  # per word, % of ``rate`` (100 = unchanged); () = all 100
    breaks: tuple[int, ...] = ()  # per word boundary, pause in ms (0 = none); () = no pauses

    def text(self) -> tuple[str, list[int], bool]:
        """What espeak is given: ``(text, 1-based character offset of each word, is_ssml)``.
        Plain words joined by spaces, or SSML with ``<prosody rate>`` around the words
        spoken at another rate and ``<break>`` between words where there is a pause."""
        if not self.word_rates and not self.breaks:
            return " ".join(self.words), plain_offsets(self.words), False
        parts, offsets, pos = ["<speak>"], [], len("<speak>")
        for k, w in enumerate(self.words):
            if k:
                gap = f' <break time="{self.breaks[k - 1]}ms"/> ' if self.breaks and self.breaks[k - 1] else " "
                parts.append(gap)
                pos += len(gap)
            rate = self.word_rates[k] if self.word_rates else 100
            if rate != 100:
                open_tag = f'<prosody rate="{rate}%">'
                parts += [open_tag, w, "</prosody>"]
                offsets.append(pos + len(open_tag) + 1)
                pos += len(open_tag) + len(w) + len("</prosody>")
            else:
                parts.append(w)
                offsets.append(pos + 1)
                pos += len(w)
        parts.append("</speak>")
        return "".join(parts), offsets, True


@dataclass
class UttResult:
    utt: str
    num_frames: int = 0
    # (start_frame, num_frames, label) covering [0, num_frames) for phones
    phones: list[tuple[int, int, str]] = field(default_factory=list)
    words: list[tuple[int, int, str]] = field(default_factory=list)
    prons: list[tuple[str, ...]] = field(default_factory=list)
    error: str | None = None
    info: dict = field(default_factory=dict)


def plain_offsets(words) -> list[int]:
    """1-based character offsets (espeak's text positions) of words joined by single spaces."""
    out, pos = [], 0
    for w in words:
        out.append(pos + 1)
        pos += len(w) + 1
    return out


class EventError(Exception):
    """espeak's events cannot be turned into word-aligned phones for this utterance."""


def word_phone_events(
    syn: Synthesis, words: tuple[str, ...], known_prons: dict[str, list[tuple[str, ...]]] | None = None,
    word_offsets: list[int] | None = None,
) -> list[tuple[int, str, int]]:
    """espeak events → ``(start_sample, phone, word_index)`` (word_index -1 for silence),
    dropping zero-width modifiers. Raises EventError when words or phonemes do not line up.

    espeak sometimes speaks a function word joined to its neighbour with one word event
    ("in the"); the phones of such a group are split between its words by the split
    closest (edit distance) to the words' known pronunciations."""
    if word_offsets is None:
        word_offsets = plain_offsets(words)
    offsets = {p: i for i, p in enumerate(word_offsets)}
    out: list[list] = []
    current, seen = -1, []
    for kind, sample, value in syn.events:
        if kind == "W":
            if value not in offsets:
                raise EventError(f"word event at character {value} matches no word start")
            current = offsets[value]
            if seen and current <= seen[-1]:
                raise EventError(f"word events out of order at word {current}")
            seen.append(current)
            continue
        phone = map_mnemonic(value)
        if phone is None:
            raise EventError(f"unknown espeak phoneme {value!r}")
        if phone == "":
            continue
        if phone == SILENCE:
            out.append([sample, SILENCE, -1])
        else:
            if current < 0:
                raise EventError(f"phoneme {value!r} before the first word")
            out.append([sample, phone, current])
    if not seen or seen[0] != 0:
        raise EventError("no word event for the first word")
    # groups of words spoken under one word event: split their phones
    bounds = seen + [len(words)]
    for first, stop in zip(bounds, bounds[1:]):
        idx = [k for k, e in enumerate(out) if e[2] == first]
        if not idx:
            raise EventError(f"word {first} ({words[first]!r}) has no phonemes")
        if stop - first > 1:
            phones = [out[k][1] for k in idx]
            owners = split_group(phones, words[first:stop], known_prons or {})
            for k, o in zip(idx, owners):
                out[k][2] = first + o
    return [tuple(e) for e in out]


def split_group(phones: list[str], words: tuple[str, ...], known: dict[str, list[tuple[str, ...]]]) -> list[int]:
    """Assign each phone of a joined group to one of ``words`` (contiguously, at least one
    phone each), choosing the split with the smallest total edit distance between each
    word's part and its nearest known pronunciation."""
    n, m = len(phones), len(words)
    if n < m:
        raise EventError(f"{n} phonemes for the {m} joined words {' '.join(words)!r}")
    inf = float("inf")
    # best[k][j]: cost of giving phones[:j] to words[:k]
    best = [[inf] * (n + 1) for _ in range(m + 1)]
    back = [[0] * (n + 1) for _ in range(m + 1)]
    best[0][0] = 0.0
    for k in range(1, m + 1):
        prons = known.get(words[k - 1]) or [()]
        for j in range(k, n - (m - k) + 1):
            for i in range(k - 1, j):
                if best[k - 1][i] == inf:
                    continue
                part = tuple(phones[i:j])
                c = best[k - 1][i] + min(_edit_distance(part, p) for p in prons)
                if c < best[k][j]:
                    best[k][j], back[k][j] = c, i
    owners, j = [0] * n, n
    for k in range(m, 0, -1):
        i = back[k][j]
        owners[i:j] = [k - 1] * (j - i)
        j = i
    return owners


def _edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


# following words that make espeak show a word's cross-word variants (linking r, "the" → DH IY)
CONTEXT_FOLLOWERS = ("is", "for")


@functools.lru_cache(maxsize=None)
def context_pronunciations(word: str, voice: str) -> tuple[tuple[str, ...], ...]:
    """espeak's pronunciations of ``word`` by ``voice`` (phonemised, not synthesised):
    alone, and before a vowel and a consonant (distinct, in that order). Cached: text-only
    phonemisation depends on nothing else."""
    out: list[tuple[str, ...]] = []
    for follower in ("",) + CONTEXT_FOLLOWERS:
        groups = Espeak.instance().phonemize(f"{word} {follower}".strip(), voice)
        if len(groups) != (2 if follower else 1):
            continue  # joined with the follower: no clean boundary
        phones = [map_mnemonic(m) for m in groups[0]]
        if any(p is None for p in phones):
            continue
        pron = tuple(p for p in phones if p and p != SILENCE)
        if pron and pron not in out:
            out.append(pron)
    return tuple(out)


def frame_segments(
    events: list[tuple[int, str, int]], num_samples: int, src_rate: int, lead_frames: int,
    total_frames: int, min_phone_frames: int,
) -> list[tuple[int, int, str, int]]:
    """``(start_frame, end_frame, phone, word_index)`` covering [0, total_frames) exactly."""
    scale = SAMPLE_RATE / src_rate / FRAME
    segs: list[list] = []
    # time-ordered events; an event ends where the next starts, the last at the audio end
    for k, (sample, phone, word) in enumerate(events):
        end = events[k + 1][0] if k + 1 < len(events) else num_samples
        if end <= sample and phone == SILENCE:
            continue  # zero-length pause; zero-length phones get frames below
        b0 = lead_frames + int(round(sample * scale))
        b1 = lead_frames + int(round(end * scale))
        if phone == SILENCE and segs and segs[-1][2] == SILENCE:
            segs[-1][1] = b1
        else:
            segs.append([b0, b1, phone, word])
    if not segs or all(s[2] == SILENCE for s in segs):
        raise EventError("no speech phonemes")
    # silence before the first and after the last phone
    if segs[0][2] == SILENCE:
        segs[0][0] = 0
    else:
        segs.insert(0, [0, segs[0][0], SILENCE, -1])
    if segs[-1][2] == SILENCE:
        segs[-1][1] = total_frames
    else:
        segs.append([segs[-1][1], total_frames, SILENCE, -1])
    # short pauses inside the utterance are absorbed by the phone before them
    kept = [segs[0]]
    for s in segs[1:-1]:
        if s[2] == SILENCE and s[1] - s[0] < min_phone_frames:
            kept[-1][1] = s[1]
        else:
            kept.append(s)
    kept.append(segs[-1])
    for a, b in zip(kept, kept[1:]):
        b[0] = a[1]
    # minimum durations: forward then backward pass over the boundaries
    mins = [1 if s[2] == SILENCE else min_phone_frames for s in kept]
    bounds = [s[0] for s in kept] + [total_frames]
    n = len(kept)
    for k in range(1, n):
        bounds[k] = max(bounds[k], bounds[k - 1] + mins[k - 1])
    for k in range(n - 1, 0, -1):
        bounds[k] = min(bounds[k], bounds[k + 1] - mins[k])
    if bounds[0] != 0 or any(bounds[k + 1] - bounds[k] < mins[k] for k in range(n)):
        raise EventError("utterance too short for the minimum phone durations")
    return [(bounds[k], bounds[k + 1], kept[k][2], kept[k][3]) for k in range(n)]


def render_utterance(
    engine,
    spec: UttSpec, wav_path: str, channel: ChannelConfig, babble_bank: list[np.ndarray],
    known_prons: dict[str, list[tuple[str, ...]]] | None = None, min_phone_frames: int = 3,
) -> UttResult:
    """Synthesise with ``engine`` (a ``FreshEspeak``), segment, pass through the channel and
    write ``wav_path`` (16 kHz, 16 bit).
    Errors in the events are returned in ``UttResult.error`` (nothing written)."""
    import soundfile as sf
    import soxr

    res = UttResult(spec.utt)
    espeak_seed = int(np.random.SeedSequence(list(spec.seed)).generate_state(1)[0])
    text, word_offsets, ssml = spec.text()
    syn = engine.synthesize(text, spec.voice, spec.rate, spec.pitch, spec.pitch_range, espeak_seed, ssml=ssml)
    speech = soxr.resample(syn.samples.astype(np.float64) / 32768.0, syn.sample_rate, SAMPLE_RATE)
    speech_frames = int(np.ceil(len(speech) / FRAME))
    total_frames = spec.lead_frames + speech_frames + spec.trail_frames
    try:
        events = word_phone_events(syn, spec.words, known_prons, word_offsets)
        # events are at espeak's rate; the resampled speech may differ by a sample
        segs = frame_segments(events, len(syn.samples), syn.sample_rate, spec.lead_frames, total_frames,
                              min_phone_frames)
    except EventError as e:
        res.error = str(e)
        return res
    res.num_frames = total_frames
    res.phones = [(b0, b1 - b0, ph) for b0, b1, ph, _ in segs]
    prons: list[list[str]] = [[] for _ in spec.words]
    spans: list[list[int]] = [[-1, -1] for _ in spec.words]
    for b0, b1, ph, w in segs:
        if w >= 0:
            prons[w].append(ph)
            if spans[w][0] < 0:
                spans[w][0] = b0
            spans[w][1] = b1
    if any(not p for p in prons):
        res.error = "a word has no phonemes"
        return res
    res.prons = [tuple(p) for p in prons]
    res.words = [(s0, s1 - s0, w) for (s0, s1), w in zip(spans, spec.words)]
    rng = np.random.default_rng(list(spec.seed))
    audio, res.info = apply_channel(speech, SAMPLE_RATE, spec.lead_frames * FRAME, total_frames * FRAME, rng,
                                    channel, babble_bank)
    # not atomic (no fsync per file): corpus.json, written last, marks a complete corpus
    sf.write(wav_path, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return res
