#!/usr/bin/env python3
"""Speed of `asr augment-data-dir`: real-time factor per core of each perturbation, against
the raw library calls it is made of.

Generates --minutes of 16 kHz audio (bench/fbank_speed.py's chirps + noise) as a data dir
in a temp dir, then runs asr.augment.data_dir.augment_data_dir with one perturbation at a
time (one job, one copy per recording) and all of them together (--nj N), and times the
bare library work on the same audio in memory:
  speed:     soxr.resample(x, 16000 * 0.9, 16000)           (asr: + read + write wav)
  reverb:    scipy.signal.fftconvolve(x, rir)                (asr: + shift, energy, read, write)
  noise:     numpy noise generation + scaling                (asr: make_noise + add_noise + I/O)
  telephone: soxr down + up                                  (asr: + filter + mu-law + I/O)
  I/O:       soundfile read + write of every file            (the floor of any perturbation)
Real-time factor (RTF) per core = wall seconds x jobs / seconds of audio written (lower is
faster); ratio = asr RTF / bare RTF. Room simulation (pyroomacoustics, once per run) is
reported separately and excluded from the per-perturbation RTFs.

    python bench/augment_speed.py [--minutes 5] [--nj 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--nj", type=int, default=2)
    ap.add_argument("--num-rooms", type=int, default=10)
    args = ap.parse_args()

    import soundfile as sf
    import soxr
    from scipy.signal import fftconvolve

    from asr.augment.data_dir import AugmentConfig, augment_data_dir
    from asr.augment.rooms import RoomRanges, simulate_room_set
    from fbank_speed import make_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, audio = make_corpus(root, args.minutes)
        seconds = sum(len(x) for x in audio) / 16000
        xs = [x.astype(np.float64) / 32768 for x in audio]
        t = time.time()
        rooms = simulate_room_set("train", args.num_rooms, 16000, RoomRanges(), nj=args.nj)
        t_rooms = time.time() - t
        print(f"audio: {seconds / 60:.1f} min in {len(audio)} files; room simulation: {args.num_rooms} rooms "
              f"in {t_rooms:.1f} s with {args.nj} jobs ({t_rooms * args.nj / args.num_rooms:.2f} core-s per room)")

        def bare_io():
            paths = sorted((root / "wav").glob("*.wav"))
            for p in paths:
                x, r = sf.read(p, dtype="float32")
                sf.write(root / "io.wav", x, r, subtype="PCM_16")

        bare = {
            "I/O": bare_io,
            "speed": lambda: [soxr.resample(x, 16000 * 0.9, 16000, quality="HQ") for x in xs],
            "reverb": lambda: [fftconvolve(x, rooms[i % len(rooms)].rir.astype(np.float64)) for i, x in enumerate(xs)],
            "noise": lambda: [x + 0.1 * np.random.default_rng(i).standard_normal(len(x)) for i, x in enumerate(xs)],
            "telephone": lambda: [soxr.resample(soxr.resample(x, 16000, 8000), 8000, 16000) for x in xs],
        }
        configs = {
            "speed": AugmentConfig(speed_factors=(0.9,)),
            "volume": AugmentConfig(volume=(0.125, 2.0)),
            "reverb": AugmentConfig(reverb_prob=1.0, num_rooms=args.num_rooms),
            "noise": AugmentConfig(noise_prob=1.0),
            "telephone": AugmentConfig(telephone_prob=1.0),
        }
        print(f"{'perturbation':<14}{'asr RTF/core':>14}{'bare RTF/core':>15}{'ratio':>8}")
        bare_io_rtf = _time(bare["I/O"]) / seconds
        for name, cfg in configs.items():
            out = root / f"out_{name}"
            s = augment_data_dir(data, out, cfg, nj=1, progress=False).data
            wall = s["wall_seconds"] - s["room_simulation_seconds"]
            rtf = wall / (s["audio_out_hours"] * 3600)
            b = bare_io_rtf + (_time(bare[name]) / seconds if name in bare else 0.0)
            print(f"{name:<14}{rtf:>14.5f}{b:>15.5f}{rtf / b:>8.2f}")
        all_cfg = AugmentConfig(speed_factors=(0.9, 1.0, 1.1), reverb_prob=1.0, noise_prob=1.0, telephone_prob=0.3,
                                volume=(0.125, 2.0), num_rooms=args.num_rooms)
        s = augment_data_dir(data, root / "out_all", all_cfg, nj=args.nj, progress=False).data
        print(f"all together, --nj {args.nj}: {s['audio_out_hours'] * 60:.1f} min written in {s['wall_seconds']:.1f} s "
              f"(room simulation included): RTF per core {s['rtf_per_core']:.5f}")
        print("(bare = soundfile read+write + the library call; ratio 1.0 = no overhead beyond the libraries)")


def _time(fn) -> float:
    t = time.time()
    fn()
    return time.time() - t


if __name__ == "__main__":
    main()
