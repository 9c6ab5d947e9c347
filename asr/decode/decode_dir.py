"""``asr decode``: decode a data dir with features into a decode dir.

Writes (docs/contracts.md) ``hyp.txt`` (1-best at the decoding acoustic scale),
``lat.<job>.gz`` (word lattices, with ``lattices=True``), ``decode.json`` (options,
frames, audio seconds, network-forward and search seconds, real-time factors) and, when
the data dir has a ``text``, ``wer`` (Kaldi compute-wer lines).

Parallelism: ``nj`` worker processes (fork; the graph loaded once before the fork is
shared copy-on-write), each handling job ``j`` = every nj-th utterance (sorted ids), in
batches; the parent shows one progress bar. Timings are summed over workers (CPU-side
seconds of forward and search), so RTF is per core.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

from asr.decode.model import Recognizer, Timing
from asr.decode.search import SearchConfig
from asr.errors import DecodeError
from asr.io.atomic import atomic_write_text

log = logging.getLogger(__name__)

_STATE: dict = {}


def _worker_init(num_threads: int) -> None:
    import torch

    torch.set_num_threads(num_threads)


def _decode_batch(args):
    job, utts, lattices = args
    rec: Recognizer = _STATE["rec"]
    reader = _STATE["reader"]
    feats, ok_utts, bad = [], [], []
    for u in utts:
        try:
            feats.append(reader[u])
            ok_utts.append(u)
        except Exception as e:  # noqa: BLE001 - reported per utterance, counted
            bad.append((u, str(e)))
    results, timing = rec.recognize(feats, lattice=lattices) if feats else ([], Timing())
    out = []
    for u, r in zip(ok_utts, results):
        out.append((u, rec.to_words(r.words), r.lattice, r.reached_final))
    return job, out, bad, timing


def decode_data_dir(model_dir, data_dir, decode_dir, graph_dir=None, nj: int = 1, cfg: SearchConfig | None = None,
                    lattices: bool = False, batch_size: int = 8, num_threads: int = 1, progress: bool = True) -> dict:
    from tqdm import tqdm

    from asr.features.reader import FeatureReader

    cfg = cfg or SearchConfig()
    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    t_start = time.perf_counter()
    rec = Recognizer(model_dir, graph_dir, cfg)
    reader = FeatureReader(data_dir, cmvn=rec.cmvn_mode)
    utts = list(reader.utt_ids)
    if not utts:
        raise DecodeError(f"{data_dir}: no utterances with features")
    nj = max(1, min(int(nj), len(utts)))
    decode_dir.mkdir(parents=True, exist_ok=True)
    tasks = []
    for j in range(nj):
        mine = utts[j::nj]
        for i in range(0, len(mine), batch_size):
            tasks.append((j + 1, mine[i:i + batch_size], lattices))
    _STATE["rec"], _STATE["reader"] = rec, reader
    hyps: dict[str, list[str]] = {}
    lats: dict[int, list] = {j + 1: [] for j in range(nj)}
    bad_all: list = []
    total = Timing()
    not_final = 0
    bar = tqdm(total=len(utts), desc="decode", unit="utt", disable=not progress, file=None)
    try:
        if nj == 1:
            import torch

            old = torch.get_num_threads()
            torch.set_num_threads(num_threads)
            try:
                it = map(_decode_batch, tasks)
                _collect(it, hyps, lats, bad_all, total, bar)
            finally:
                torch.set_num_threads(old)
        else:
            ctx = mp.get_context("fork")
            with ctx.Pool(nj, initializer=_worker_init, initargs=(num_threads,)) as pool:
                _collect(pool.imap_unordered(_decode_batch, tasks), hyps, lats, bad_all, total, bar)
    finally:
        bar.close()
        _STATE.clear()
    not_final = total.extra.get("not_final", 0)
    for u, why in bad_all:
        log.warning("utterance %s skipped: %s", u, why)
    if bad_all:
        log.warning("%d of %d utterances could not be decoded", len(bad_all), len(utts))
    if not hyps:
        raise DecodeError(f"{data_dir}: no utterance could be decoded ({bad_all[0][1] if bad_all else ''})")

    order = sorted(hyps, key=lambda u: u.encode("utf-8"))
    atomic_write_text(decode_dir / "hyp.txt", "".join(f"{u} {' '.join(hyps[u])}".rstrip() + "\n" for u in order))
    if lattices:
        from asr.lattice.lattice_io import write_lattices

        for j, items in lats.items():
            items.sort(key=lambda kv: kv[0].encode("utf-8"))
            write_lattices(decode_dir / f"lat.{j}.gz", items)
    frame_shift = _frame_shift(Path(model_dir))
    audio_s = total.frames * frame_shift
    info = {
        "model_dir": str(model_dir), "graph_dir": str(rec.graph_dir), "data_dir": str(data_dir),
        "acoustic_scale": cfg.acoustic_scale, "beam": cfg.beam, "max_active": cfg.max_active,
        "lattice_beam": cfg.lattice_beam, "lattices": bool(lattices), "nj": nj, "num_threads": num_threads,
        "decoder": "LatticeSimpleDecoder" if lattices else "FasterDecoder",
        "utterances": len(hyps), "failed_utterances": len(bad_all), "not_reached_final": not_final,
        "frames": total.frames, "audio_seconds": round(audio_s, 3),
        "forward_seconds": round(total.forward_s, 3), "search_seconds": round(total.search_s, 3),
        "rtf_forward": round(total.forward_s / audio_s, 5) if audio_s else None,
        "rtf_search": round(total.search_s / audio_s, 5) if audio_s else None,
        "rtf": round((total.forward_s + total.search_s) / audio_s, 5) if audio_s else None,
        "wall_seconds": round(time.perf_counter() - t_start, 3),
    }
    text = data_dir / "text"
    if text.is_file():
        from asr.score.wer import format_summary, read_text, score_texts

        res = score_texts(read_text(text), {u: hyps[u] for u in order}, mode="all")
        summary = format_summary(res)
        atomic_write_text(decode_dir / "wer", summary if summary.endswith("\n") else summary + "\n")
        info["wer"] = summary.splitlines()[0]
    atomic_write_text(decode_dir / "decode.json", json.dumps(info, indent=1) + "\n")
    return info


def _collect(it, hyps, lats, bad_all, total: Timing, bar) -> None:
    for job, out, bad, timing in it:
        for u, words, lat, reached in out:
            hyps[u] = words
            if lat is not None:
                lats[job].append((u, lat))
            if not reached:
                total.extra["not_final"] = total.extra.get("not_final", 0) + 1
        bad_all.extend(bad)
        total.add(timing)
        bar.update(len(out) + len(bad))


def _frame_shift(model_dir: Path) -> float:
    conf = model_dir / "fbank.conf"
    if conf.is_file():
        from asr.config import read_kaldi_options

        try:
            return float(read_kaldi_options(conf).get("frame-shift", 10)) / 1000.0
        except (ValueError, Exception):  # noqa: BLE001
            return 0.01
    return 0.01


def transcribe_files(model_dir, paths: list[str], graph_dir=None, cfg: SearchConfig | None = None):
    """Yield ``(id, words | None, error | None)`` per audio file (id = file stem)."""
    import torch

    from asr.data.audio import read_audio
    from asr.features.cmvn import apply_cmvn, cmvn_stats
    from asr.features.fbank import FbankComputer

    rec = Recognizer(model_dir, graph_dir, cfg)
    conf = Path(model_dir) / "fbank.conf"
    fb_opts = (rec.config or {}).get("fbank")
    if isinstance(fb_opts, dict) and fb_opts:
        fbank = FbankComputer.from_options({k: str(v) for k, v in fb_opts.items()})
    else:
        fbank = FbankComputer(conf if conf.is_file() else None)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for p in paths:
        uid = Path(p).stem
        try:
            samples = read_audio(p, target_rate=fbank.sample_rate, channel=-1, utt=uid)
            feats = fbank.compute(samples * 32768.0)
            if len(feats) == 0:
                yield uid, [], None
                continue
            if rec.cmvn_mode != "none":
                feats = apply_cmvn(feats, cmvn_stats(feats)).astype(np.float32)
            res, _ = rec.recognize([feats])
            yield uid, rec.to_words(res[0].words), None
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            from asr.errors import AsrError

            msg = str(e) if isinstance(e, AsrError) else f"{p}: {type(e).__name__}: {e}"
            yield uid, None, msg
