#!/usr/bin/env python3
"""Throughput of make-fbank vs a bare kaldi-native-fbank loop.

Generates >= 10 min of 16 kHz audio (chirps + filtered noise, int16 wavs) as a data dir in a
temp dir, then measures, best of --repeats runs each:
  bare:       kaldi-native-fbank OnlineFbank + get_frame on the audio already in memory
              (same options), one core;
  make-fbank: asr.features.make_fbank.make_fbank(..., nj=1, force=True): reading the wavs,
              features, writing the ark/scp/feats.scp/utt2num_frames, one core;
  and make-fbank with --nj N (default 2) for the parallel figure, and the `asr make-fbank`
  command line (includes interpreter start-up) for reference.
Prints x real time (audio seconds / wall seconds) and the ratio make-fbank / bare (goal >= 0.8).

    python bench/fbank_speed.py [--minutes 10] [--nj 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_corpus(root: Path, minutes: float, rate: int = 16000, speakers: int = 20) -> tuple[Path, list[np.ndarray]]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    d = root / "bench"
    d.mkdir()
    wav_dir = root / "wav"
    wav_dir.mkdir()
    total, i = 0.0, 0
    wav, text, u2s, audio = [], [], [], []
    while total < minutes * 60:
        spk = f"spk{i % speakers:02d}"
        utt = f"{spk}-{i:05d}"
        sec = rng.uniform(3.0, 9.0)
        n = int(sec * rate)
        t = np.arange(n) / rate
        f0 = rng.uniform(100, 300)
        chirp = np.sin(2 * np.pi * (f0 + rng.uniform(50, 400) * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        taps = np.hanning(int(rng.integers(3, 32)))  # low-pass FIR: coloured noise
        noise = np.convolve(rng.normal(0, 1, n), taps / taps.sum(), mode="same")
        x = 6000 * chirp + 800 * noise / (np.abs(noise).max() + 1e-9)
        x = np.clip(x, -32768, 32767).astype(np.int16)
        path = wav_dir / f"{utt}.wav"
        sf.write(path, x, rate, subtype="PCM_16")
        wav.append((utt, str(path)))
        text.append((utt, "bench"))
        u2s.append((utt, spk))
        audio.append(x.astype(np.float32))
        total += n / rate
        i += 1
    for name, rows in (("wav.scp", wav), ("text", text), ("utt2spk", u2s)):
        rows.sort()
        (d / name).write_text("".join(f"{k} {v}\n" for k, v in rows))
    return d, audio


def bare_loop(audio: list[np.ndarray], rate: int = 16000) -> tuple[float, float]:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.samp_freq = rate
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 40
    t0, c0 = time.perf_counter(), time.process_time()
    for x in audio:
        fb = knf.OnlineFbank(opts)
        fb.accept_waveform(rate, x)
        fb.input_finished()
        feats = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
        assert feats.shape[1] == 40
    return time.perf_counter() - t0, time.process_time() - c0


def make_fbank_run(d: Path, conf: Path, nj: int) -> tuple[float, float]:
    from asr.features.make_fbank import make_fbank

    t0, c0 = time.perf_counter(), time.process_time()
    make_fbank(d, config=conf, nj=nj, force=True, progress=False)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--nj", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    conf = Path(__file__).resolve().parent.parent / "conf" / "fbank.conf"
    with tempfile.TemporaryDirectory() as tmp:
        d, audio = make_corpus(Path(tmp), args.minutes)
        secs = sum(len(x) for x in audio) / 16000
        print(f"audio: {len(audio)} utterances, {secs / 60:.1f} min, 16 kHz; {os.cpu_count()} cores visible")
        bare_runs, one_runs = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            bare_runs.append(bare_loop(audio))
            one_runs.append(make_fbank_run(d, conf, 1))
        bare, bare_cpu = min(w for w, _ in bare_runs), min(c for _, c in bare_runs)
        one, one_cpu = min(w for w, _ in one_runs), min(c for _, c in one_runs)
        par = min(make_fbank_run(d, conf, args.nj)[0] for _ in range(args.repeats))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "asr", "-q", "make-fbank", "--force", "--no-progress", "--config", str(conf), str(d)],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(conf.parent.parent)})
        cli = time.perf_counter() - t0
    print(f"bare kaldi-native-fbank loop (in memory, 1 core): {secs / bare:8.1f} x real time")
    print(f"make-fbank --nj 1 (I/O included, 1 core):        {secs / one:8.1f} x real time")
    print(f"ratio make-fbank / bare, wall:                    {bare / one:8.2f}  (goal >= 0.8)")
    print(f"ratio make-fbank / bare, CPU time:                {bare_cpu / one_cpu:8.2f}")
    print(f"make-fbank --nj {args.nj} (wall):                        {secs / par:8.1f} x real time, "
          f"{secs / par / args.nj:.1f} x per core")
    print(f"`asr make-fbank` command, nj 1, with start-up:    {secs / cli:8.1f} x real time")
    print(f"(best of {args.repeats} runs each; timings on a shared machine are noisy)")


if __name__ == "__main__":
    main()
