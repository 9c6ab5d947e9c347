"""Noise sources for additive-noise augmentation, generated (nothing to download).

- ``colored``: Gaussian noise with power ∝ f^−α (α drawn from 0 = white to 2 = brown), flat
  below 40 Hz, shaped by a random equaliser and a slow random amplitude modulation;
- ``babble``: 3–7 other talkers — utterances of the data dir being augmented by other
  speakers (``BabbleBank``), each at a random offset and level;
- ``music``: music-like tones: notes of a random scale and tempo, 1–3 voices with random
  harmonic timbres and decays, sometimes a percussive noise burst on the beat.

Every source returns unit-RMS float64 noise of the requested length, drawn from the
generator passed in. ``make_noise(kind, n, rate, rng, bank)`` chooses by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asr.errors import ConfigError

NOISE_TYPES = ("colored", "babble", "music")


def make_noise(kind: str, n: int, rate: int, rng: np.random.Generator, bank: "BabbleBank | None" = None,
               speaker: str | None = None) -> tuple[np.ndarray, dict]:
    """``n`` samples of unit-RMS noise of ``kind`` and a description of it. Babble without a
    bank (a dir of one speaker) falls back to coloured noise."""
    if kind == "babble" and bank is not None and bank.usable(speaker):
        return bank.babble(n, rng, speaker)
    if kind == "music":
        return music(n, rate, rng)
    if kind in ("colored", "babble"):
        return colored(n, rate, rng)
    raise ConfigError(f"unknown noise type {kind!r} (known: {', '.join(NOISE_TYPES)})")


def spectral_noise(n: int, rate: int, rng: np.random.Generator, alpha: float) -> np.ndarray:
    """Unit-RMS Gaussian noise with power ∝ f^−alpha, flat below 40 Hz."""
    size = 1 << max(n - 1, 1).bit_length()
    half = size // 2 + 1
    spec = rng.standard_normal(half) + 1j * rng.standard_normal(half)
    f = np.maximum(np.arange(half, dtype=np.float64), 40.0 * size / rate)
    spec /= f ** (alpha / 2.0)
    spec[0] = 0.0
    return unit_rms(np.fft.irfft(spec, size)[:n])


def colored(n: int, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    alpha = float(rng.uniform(0.0, 2.0))
    x = spectral_noise(n, rate, rng, alpha)
    # random equaliser: two ±8 dB bumps on a log-frequency axis
    bumps = [(float(rng.uniform(np.log(100), np.log(rate / 2))), float(rng.uniform(0.2, 0.8)),
              float(rng.uniform(-8, 8))) for _ in range(2)]
    size = 1 << max(n - 1, 1).bit_length()
    spec = np.fft.rfft(x, size)
    lf = np.log(np.maximum(np.fft.rfftfreq(size, 1.0 / rate), 1.0))
    db = sum(g * np.exp(-0.5 * ((lf - c) / w) ** 2) for c, w, g in bumps)
    x = np.fft.irfft(spec * 10.0 ** (db / 20.0), size)[:n]
    # slow amplitude modulation (0.1–2 Hz, depth up to 50 %)
    depth, mod_hz = float(rng.uniform(0.0, 0.5)), float(rng.uniform(0.1, 2.0))
    t = np.arange(n) / rate
    x = x * (1.0 + depth * np.sin(2 * np.pi * mod_hz * t + rng.uniform(0, 2 * np.pi)))
    return unit_rms(x), {"noise": "colored", "alpha": round(alpha, 2), "modulation": round(depth, 2)}


def music(n: int, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Notes on a random scale: ``voices`` parts, each a sequence of notes one beat (or
    two) long with a harmonic spectrum and an exponential decay; percussion sometimes."""
    out = np.zeros(n)
    tempo = float(rng.uniform(70, 160))  # beats per minute
    beat = int(rate * 60.0 / tempo)
    root = float(rng.uniform(45, 60))  # MIDI note number of the key
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10])
    voices = int(rng.integers(1, 4))
    for v in range(voices):
        octave = 12 * v
        decay = float(rng.uniform(2.0, 8.0))  # 1/s
        harm = float(rng.uniform(0.3, 0.8))  # amplitude ratio of successive harmonics
        gain = float(rng.uniform(0.5, 1.0))
        pos = int(rng.integers(0, beat))
        while pos < n:
            length = beat * int(rng.integers(1, 3))
            midi = root + octave + scale[int(rng.integers(len(scale)))] + 12 * int(rng.integers(0, 2))
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            m = min(length, n - pos)
            t = np.arange(m) / rate
            ks = np.arange(1, 9)
            ks = ks[ks * f0 < rate / 2]
            tone = (harm ** (ks - 1))[:, None] * np.sin(2 * np.pi * f0 * ks[:, None] * t[None, :])
            env = np.exp(-decay * t) * np.minimum(1.0, t / 0.01)
            out[pos:pos + m] += gain * env * tone.sum(axis=0)
            pos += length
    percussion = rng.random() < 0.5
    if percussion:
        t = np.arange(min(beat, n)) / rate
        hit = rng.standard_normal(len(t)) * np.exp(-30.0 * t)
        for pos in range(int(rng.integers(0, beat)), n, beat):
            m = min(len(hit), n - pos)
            out[pos:pos + m] += 0.5 * hit[:m]
    return unit_rms(out), {"noise": "music", "tempo": round(tempo), "voices": voices, "percussion": percussion}


@dataclass
class BabbleBank:
    """Talkers for babble: utterances (unit RMS) with their speakers."""

    signals: list[np.ndarray] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)

    def usable(self, speaker: str | None) -> bool:
        return any(s != speaker for s in self.speakers)

    def babble(self, n: int, rng: np.random.Generator, speaker: str | None = None) -> tuple[np.ndarray, dict]:
        """3–7 talkers other than ``speaker``, each from a random offset (wrapping around)."""
        others = [i for i, s in enumerate(self.speakers) if s != speaker]
        k = int(rng.integers(3, 8))
        out = np.zeros(n)
        for i in rng.choice(others, size=k, replace=len(others) < k):
            src = self.signals[int(i)]
            idx = (int(rng.integers(len(src))) + np.arange(n)) % len(src)
            out += src[idx] * rng.uniform(0.5, 1.0)
        return unit_rms(out), {"noise": "babble", "talkers": k}


def unit_rms(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x * x)) if len(x) else 0.0
    return x / rms if rms > 0 else x
