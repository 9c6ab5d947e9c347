"""Small Kaldi data dirs made by tests (shared by tests/test_data_*.py and test_features_*.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_wav(path, seconds=1.0, rate=16000, seed=0, channels=1, subtype="PCM_16"):
    """A chirp plus noise, int16 range; returns the int16 samples written ([n] or [n, ch])."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    x = 6000 * np.sin(2 * np.pi * (150 + 400 * t + 50 * seed) * t) + rng.normal(0, 300, n)
    x = np.clip(x, -32768, 32767).astype(np.int16)
    if channels > 1:
        x = np.stack([x] + [(x // (c + 1)).astype(np.int16) for c in range(1, channels)], axis=1)
    sf.write(str(path), x, rate, subtype=subtype)
    return x


def make_data_dir(root: Path, speakers=("spk1", "spk2", "spk3"), per_speaker=2, seconds=1.0, name="data") -> Path:
    """A valid data dir (wav.scp, text, utt2spk, spk2utt) with one wav per utterance."""
    root = Path(root)
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    wav_dir = root / f"{name}_wav"
    wav_dir.mkdir(exist_ok=True)
    wav, text, u2s, s2u = [], [], [], []
    seed = 0
    for spk in speakers:
        utts = []
        for j in range(per_speaker):
            utt = f"{spk}-u{j}"
            p = wav_dir / f"{utt}.wav"
            write_wav(p, seconds + 0.13 * j, seed=seed)
            seed += 1
            wav.append(f"{utt} {p}\n")
            text.append(f"{utt} hello world {j}\n")
            u2s.append(f"{utt} {spk}\n")
            utts.append(utt)
        s2u.append(f"{spk} {' '.join(utts)}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(text))
    (d / "utt2spk").write_text("".join(u2s))
    (d / "spk2utt").write_text("".join(s2u))
    return d
