"""The recording channel: silence padding, optional room reverberation, additive noise
(white, pink, brown or babble) at a given SNR, and a random gain.

Everything is numpy and driven by one ``np.random.Generator`` per utterance, so the same
seed gives bit-identical audio in any process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.augment.noise import spectral_noise, unit_rms

NOISE_TYPES = ("white", "pink", "brown", "babble")


@dataclass(frozen=True)
class ChannelConfig:
    snr_db: tuple[float, float] = (5.0, 30.0)
    rms_dbfs: tuple[float, float] = (-32.0, -16.0)
    reverb_prob: float = 0.2
    rt60: tuple[float, float] = (0.15, 0.5)
    pad_s: tuple[float, float] = (0.15, 0.5)


def colored_noise(kind: str, n: int, rng: np.random.Generator, babble_bank: list[np.ndarray] | None = None,
                  sample_rate: int = 16000) -> np.ndarray:
    """Unit-RMS noise of ``n`` samples: white, pink (power 1/f), brown (1/f²) — both flat
    below 40 Hz so the power lies where speech features look — or babble."""
    if kind == "babble":
        if not babble_bank:
            kind = "pink"
        else:
            out = np.zeros(n)
            for _ in range(int(rng.integers(3, 7))):
                src = babble_bank[int(rng.integers(len(babble_bank)))]
                start = int(rng.integers(len(src)))
                idx = (start + np.arange(n)) % len(src)
                out += src[idx] * rng.uniform(0.5, 1.0)
            return unit_rms(out)
    if kind == "white":
        return unit_rms(rng.standard_normal(n))
    if kind not in ("pink", "brown"):
        raise ValueError(f"unknown noise type {kind!r}")
    return spectral_noise(n, sample_rate, rng, 1.0 if kind == "pink" else 2.0)


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Full linear convolution by FFT."""
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


def room_impulse_response(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise tail after a unit direct path (a simple room)."""
    n = int(min(rt60, 0.5) * sample_rate)
    t = np.arange(n) / sample_rate
    decay = np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    h = rng.standard_normal(n) * decay * 0.25
    h[0] = 1.0
    pre = int(0.002 * sample_rate)
    h[1:pre] = 0.0  # no reflections in the first 2 ms
    return h


def apply_channel(
    speech: np.ndarray,
    sample_rate: int,
    lead: int,
    total: int,
    rng: np.random.Generator,
    config: ChannelConfig,
    babble_bank: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, dict]:
    """Place ``speech`` (float, [-1, 1]) at sample ``lead`` of a ``total``-sample signal,
    reverberate (sometimes), add noise at a random SNR and scale to a random level.
    Returns int16 samples and a dict describing what was done."""
    x = np.zeros(total)
    x[lead:lead + len(speech)] = speech
    info: dict = {}
    if rng.random() < config.reverb_prob:
        rt60 = float(rng.uniform(*config.rt60))
        x = _convolve(x, room_impulse_response(rt60, sample_rate, rng))[:total]
        info["rt60"] = round(rt60, 3)
    kind = NOISE_TYPES[int(rng.integers(len(NOISE_TYPES)))]
    snr = float(rng.uniform(*config.snr_db))
    noise = colored_noise(kind, total, rng, babble_bank, sample_rate)
    seg = x[lead:lead + len(speech)]
    speech_power = float(np.mean(seg * seg)) if len(seg) else 0.0
    y = x + noise * np.sqrt(speech_power / 10 ** (snr / 10))
    rms = np.sqrt(np.mean(y * y))
    target = 10 ** (rng.uniform(*config.rms_dbfs) / 20)
    if rms > 0:
        y *= target / rms
    peak = np.max(np.abs(y)) if len(y) else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    info.update(noise=kind, snr_db=round(snr, 2))
    return np.round(y * 32767).astype(np.int16), info
