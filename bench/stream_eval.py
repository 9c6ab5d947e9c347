"""Streaming recognition of a data dir: WER against the offline first pass, latency of
partials, real-time factor per stream, and word-time accuracy against exact word CTMs.

Usage: bench/stream_eval.py --model-dir DIR --data-dir DATA [--offline-dir DECODE_DIR] [--max-utts N]
  e.g. bench/stream_eval.py --model-dir recipes/synth/exp/lstmp/final --data-dir recipes/synth/data/test \\
         --offline-dir recipes/synth/exp/lstmp/decode_test --beam 11

Every utterance is one stream fed in --chunk-seconds chunks on one core (torch threads 1).
Real-time feeding is simulated exactly on the measured processing times: chunk k arrives
when its last sample would have been recorded, T0 + (k+1)·c; it is processed from
max(arrival, previous chunk done) for as long as it took. A word's latency is the time
from its end in the audio (DATA/words.ctm, exact) to the end of processing of the first
chunk after which the partial (or a final) first holds it at its position (``stable``: from
which on it keeps holding it), for utterances whose streamed words equal the reference. --sleep really paces the audio instead.
Prints a JSON summary (also --out FILE).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--offline-dir", default=None, help="decode dir of the offline first pass (wer, hyp.ctm)")
    p.add_argument("--max-utts", type=int, default=0)
    p.add_argument("--chunk-seconds", type=float, default=0.1)
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--lattice-beam", type=float, default=8.0)
    p.add_argument("--no-lattice-final", action="store_true")
    p.add_argument("--no-endpointing", action="store_true", help="one segment per utterance")
    p.add_argument("--sleep", action="store_true", help="really feed at real time (slow)")
    p.add_argument("--tolerance", type=float, default=0.05, help="word start tolerance (s)")
    p.add_argument("--out", default=None)
    p.add_argument("--offline-only", action="store_true",
                   help="only compare --offline-dir's hyp.ctm with DATA/words.ctm (no streaming)")
    a = p.parse_args(argv)
    if a.offline_only:
        return _offline_only(a)

    import torch

    from asr.data.audio import read_audio
    from asr.decode.ctm import compare_ctms, read_ctm_words
    from asr.decode.search import SearchConfig
    from asr.io.tables import read_table
    from asr.online.recognizer import OnlineModel, StreamOptions
    from asr.score.wer import format_summary, read_text, score_texts

    torch.set_num_threads(1)
    cfg = SearchConfig(beam=a.beam, max_active=a.max_active, acoustic_scale=a.acoustic_scale,
                       lattice_beam=a.lattice_beam)
    from asr.online.endpoint import EndpointConfig

    model = OnlineModel(a.model_dir, opts=StreamOptions(search=cfg, lattice_final=not a.no_lattice_final,
                                                        endpoint=None if a.no_endpointing else EndpointConfig()))
    data = Path(a.data_dir)
    wavs = read_table(data / "wav.scp")
    refs = read_text(data / "text")
    ref_ctm = read_ctm_words(data / "words.ctm") if (data / "words.ctm").is_file() else {}
    utts = sorted(wavs)[: a.max_utts or None]
    hyps, ctm, lat_all, lat_stable = {}, {}, [], []
    audio_s = proc_s = 0.0
    c = a.chunk_seconds
    for n, u in enumerate(utts):
        x = read_audio(wavs[u], target_rate=model.sample_rate, utt=u)
        step = int(round(c * model.sample_rate))
        s = model.new_stream()
        finals, first_seen, stable_seen = [], {}, {}
        clock = 0.0  # virtual wall clock, 0 = start of the audio
        t_start = time.perf_counter()
        chunks = [x[i:i + step] for i in range(0, len(x), step)]
        for k, ch in enumerate(chunks + [None]):
            arrival = min((k + 1) * step, len(x)) / model.sample_rate
            if a.sleep:
                time.sleep(max(0.0, t_start + arrival - time.perf_counter()))
            t0 = time.perf_counter()
            segs = s.accept_waveform(ch) if ch is not None else s.finish()
            dt = time.perf_counter() - t0
            proc_s += dt
            clock = (time.perf_counter() - t_start) if a.sleep else max(arrival, clock) + dt
            finals += [w for g in segs for w in g.words]
            seen = [w.word for w in finals] + s.partial.split()
            ref_words = [w for _, _, w in ref_ctm.get(u, [])]
            for i, w in enumerate(seen):
                if i not in stable_seen or stable_seen[i][0] != w:
                    stable_seen[i] = (w, clock)  # from then on it stays
                if i < len(ref_words) and w == ref_words[i] and i not in first_seen:
                    first_seen[i] = clock  # first appearance
        audio_s += len(x) / model.sample_rate
        hyps[u] = [w.word for w in finals]
        ctm[u] = [(w.start, w.end - w.start, w.word) for w in finals]
        if u in ref_ctm and [w for _, _, w in ref_ctm[u]] == hyps[u]:
            for i, (st, du, w) in enumerate(ref_ctm[u]):
                lat_all.append(first_seen[i] - (st + du))
                lat_stable.append(stable_seen[i][1] - (st + du))
        if (n + 1) % 50 == 0:
            print(f"{n + 1}/{len(utts)} utterances, RTF {proc_s / audio_s:.3f}", file=sys.stderr)
    res = score_texts({u: refs[u] for u in utts}, hyps, mode="all")
    lat = np.asarray(lat_all)
    out = {
        "model_dir": a.model_dir, "data_dir": a.data_dir, "utterances": len(utts), "audio_seconds": round(audio_s, 2),
        "chunk_seconds": c, "endpointing": not a.no_endpointing, "beam": a.beam, "max_active": a.max_active, "lattice_final": not a.no_lattice_final,
        "stream_wer": format_summary(res).splitlines()[0],
        "rtf_per_stream": round(proc_s / audio_s, 4),
        "latency_words": int(len(lat)),
        "latency_median_ms": round(1000 * float(np.median(lat)), 1) if len(lat) else None,
        "latency_p90_ms": round(1000 * float(np.percentile(lat, 90)), 1) if len(lat) else None,
        "latency_stable_median_ms": round(1000 * float(np.median(lat_stable)), 1) if len(lat) else None,
        "latency_feeding": "real time (slept)" if a.sleep else "real time (simulated on measured processing times)",
    }
    if ref_ctm:
        out["stream_ctm_vs_exact"] = compare_ctms(ref_ctm, ctm, a.tolerance)
    if a.offline_dir:
        od = Path(a.offline_dir)
        if (od / "wer").is_file():
            out["offline_wer"] = (od / "wer").read_text().splitlines()[0]
        if (od / "hyp.ctm").is_file() and ref_ctm:
            off = read_ctm_words(od / "hyp.ctm")
            out["offline_ctm_vs_exact"] = compare_ctms(ref_ctm, {u: off[u] for u in utts if u in off}, a.tolerance)
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


def _offline_only(a) -> int:
    from asr.decode.ctm import compare_ctms, read_ctm_words

    if not a.offline_dir:
        raise SystemExit("--offline-only needs --offline-dir")
    ref = read_ctm_words(Path(a.data_dir) / "words.ctm")
    out = {"offline_ctm_vs_exact": compare_ctms(ref, read_ctm_words(Path(a.offline_dir) / "hyp.ctm"), a.tolerance)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
