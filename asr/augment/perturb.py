"""The signal operations of augmentation, on float samples in [-1, 1] (1-D numpy arrays).

- ``speed``: sox's ``speed`` effect (pitch and tempo change together): the samples are
  taken to be at ``rate * factor`` and resampled to ``rate`` with soxr (the resampler of
  sox's own ``rate`` effect), so the result has ``round(n / factor)`` samples;
- ``reverberate``: convolution with a room impulse response, the output shifted by the
  direct path's delay and kept at the input's length and energy (Kaldi ``wav-reverberate
  --shift-output=true --normalize-output=true``), so time stamps stay valid;
- ``add_noise``: noise scaled to a signal-to-noise ratio, SNR = 10·log10(mean power of
  the signal / mean power of the added noise) over the whole recording;
- ``telephone``: an 8 kHz narrow-band channel: resampled to 8 kHz, band-limited
  (random 200–400 Hz to 3.0–3.6 kHz band edges), a random equaliser (±6 dB bumps on a log
  frequency axis), G.711-like 8-bit mu-law companding, back to the original rate;
- ``to_int16``: the int16 samples written to disk, scaled down when they would clip.

Every random choice is drawn from the ``np.random.Generator`` passed in.
"""

from __future__ import annotations

import numpy as np

from asr.errors import AudioError

TELEPHONE_RATE = 8000
MU = 255.0


def speed(x: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Speed perturbation by ``factor`` (> 1 faster and higher, < 1 slower and lower)."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0 or not len(x):
        return x
    import soxr

    return soxr.resample(x, rate * factor, rate, quality="HQ")


def direct_path_delay(rir: np.ndarray) -> int:
    """Index of the direct path: the RIR's largest magnitude (Kaldi wav-reverberate)."""
    return int(np.argmax(np.abs(rir)))


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir``, shifted by the direct-path delay, cut to ``len(x)``
    and scaled to the energy of ``x``."""
    from scipy.signal import fftconvolve

    if not len(x):
        return x
    d = direct_path_delay(rir)
    y = fftconvolve(x.astype(np.float64), rir.astype(np.float64))[d:d + len(x)]
    ey, ex = power(y), power(x)
    if ey > 0:
        y *= np.sqrt(ex / ey)
    return y


def power(x: np.ndarray) -> float:
    """Mean square (einsum, not BLAS: a BLAS dot spawns threads that stall on a busy machine)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.einsum("i,i->", x, x) / len(x)) if len(x) else 0.0


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` (same length) scaled so the SNR is ``snr_db``. A silent
    signal or noise is an AudioError (no SNR is defined)."""
    if len(noise) != len(x):
        raise ValueError(f"noise has {len(noise)} samples, signal {len(x)}")
    ps, pn = power(x), power(noise)
    if ps <= 0:
        raise AudioError("the signal is silent: no SNR can be set")
    if pn <= 0:
        raise AudioError("the noise is silent")
    g = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return x.astype(np.float64) + g * noise


def telephone(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Narrow-band telephone channel; returns the samples (same length and rate as ``x``)
    and the channel's parameters."""
    import soxr

    n = len(x)
    if n == 0:
        return x, {}
    y = soxr.resample(x.astype(np.float64), rate, TELEPHONE_RATE, quality="HQ") if rate != TELEPHONE_RATE else x
    lo, hi = float(rng.uniform(200, 400)), float(rng.uniform(3000, 3600))
    bumps = [(float(rng.uniform(np.log(250), np.log(3800))), float(rng.uniform(0.15, 0.6)),
              float(rng.uniform(-6, 6))) for _ in range(3)]
    y = _filter(y, TELEPHONE_RATE, lambda f: _band_gain(f, lo, hi) * _eq_gain(f, bumps))
    # 8-bit mu-law at a random level (G.711 works on absolute levels: quiet speech is coarser)
    level = float(rng.uniform(0.3, 0.9))
    peak = float(np.max(np.abs(y))) or 1.0
    y = mu_law(y * (level / peak)) * (peak / level)
    if rate != TELEPHONE_RATE:
        y = soxr.resample(y, TELEPHONE_RATE, rate, quality="HQ")
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    info = {"band": [round(lo), round(hi)], "eq_db": [round(b[2], 1) for b in bumps], "level": round(level, 2)}
    return y, info


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Compand with mu-law (mu = 255), quantise to ``bits`` bits, expand (values in [-1, 1])."""
    x = np.clip(x, -1.0, 1.0)
    c = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    levels = 2 ** (bits - 1)
    c = np.round(c * levels) / levels
    return np.sign(c) * np.expm1(np.abs(c) * np.log1p(MU)) / MU


def _band_gain(f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """4th-order Butterworth-like band-pass magnitude."""
    with np.errstate(divide="ignore"):
        low = 1.0 / np.sqrt(1.0 + (lo / np.maximum(f, 1e-3)) ** 8)
    return low / np.sqrt(1.0 + (f / hi) ** 8)


def _eq_gain(f: np.ndarray, bumps: list[tuple[float, float, float]]) -> np.ndarray:
    """Gaussian bumps in dB on a log-frequency axis: (log centre, width, gain dB)."""
    lf = np.log(np.maximum(f, 1.0))
    db = np.zeros_like(f)
    for centre, width, gain in bumps:
        db += gain * np.exp(-0.5 * ((lf - centre) / width) ** 2)
    return 10.0 ** (db / 20.0)


def _filter(x: np.ndarray, rate: int, gain) -> np.ndarray:
    """Zero-phase filtering by a magnitude response ``gain(freq_hz)`` in the FFT domain."""
    n = len(x)
    size = 1 << max(n - 1, 1).bit_length()
    spec = np.fft.rfft(x, size)
    spec *= gain(np.fft.rfftfreq(size, 1.0 / rate))
    return np.fft.irfft(spec, size)[:n]


def to_int16(y: np.ndarray) -> tuple[np.ndarray, float]:
    """int16 samples of ``y`` (float, [-1, 1] scale) and the gain applied to avoid
    clipping (1.0 unless the peak exceeded 0.99)."""
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    g = 0.99 / peak if peak > 0.99 else 1.0
    return np.clip(np.round(y * (g * 32768.0)), -32768, 32767).astype(np.int16), g
