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
from asr.errors import AsrError, DecodeError
from asr.failures import DEFAULT_MAX_FAILURES, Failures
from asr.graph.graph_dir import LM_ARPA
from asr.threads import default_threads, set_torch_threads
from asr.io.atomic import atomic_dir, atomic_write_text, check_replaceable
from asr.workers import die_with_parent

log = logging.getLogger(__name__)

_STATE: dict = {}

# an existing dir holding one of these is a decode dir that decoding may replace
DECODE_DIR_FILES = ("decode.json", "hyp.txt")


def _worker_init(num_threads: int, parent: int) -> None:
    from asr.threads import set_torch_threads

    die_with_parent(parent)
    set_torch_threads(num_threads)


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
    out = []
    try:
        results, timing = rec.recognize(feats, lattice=lattices) if feats else ([], Timing())
        items = [(u, rec.to_words(r.words), r) for u, r in zip(ok_utts, results)]
    except Exception:  # noqa: BLE001 - redo one by one to name the utterance that fails
        items, timing = [], Timing()
        for u, f in zip(ok_utts, feats):
            try:
                res, t = rec.recognize([f], lattice=lattices)
                items.append((u, rec.to_words(res[0].words), res[0]))
                timing.add(t)
            except Exception as e:  # noqa: BLE001 - reported per utterance, counted
                bad.append((u, f"{type(e).__name__}: {e}" if not isinstance(e, AsrError) else str(e)))
    for u, words, r in items:
        ctm = None
        if rec.word_times:
            try:
                ctm = _ctm_of(rec, u, r, _STATE["frame_shift"])
            except Exception as e:  # noqa: BLE001 - counted; the hypothesis is kept
                ctm = e
        out.append((u, words, r.lattice, r.reached_final, ctm, r.lattice_full))
    return job, out, bad, timing


def _ctm_of(rec: Recognizer, utt: str, res, frame_shift: float) -> list[str]:
    """CTM lines of a result's best path (word times, lattice posteriors as confidences)."""
    from asr.decode.ctm import ctm_lines

    times, conf = rec.result_word_times(res)
    if [t.word for t in times] != list(res.words):
        raise DecodeError("the decoder's best path and the word lattice's 1-best differ (a tie); no word times")
    return ctm_lines(utt, times, rec.words, frame_shift, conf)


def decode_data_dir(model_dir, data_dir, decode_dir, graph_dir=None, nj: int = 1, cfg: SearchConfig | None = None,
                    lattices: bool = False, batch_size: int = 8, num_threads: int | None = None, progress: bool = True,
                    max_failures: float = DEFAULT_MAX_FAILURES, force: bool = False, ctm: bool = True) -> dict:
    """Decode DATA_DIR into the decode dir DECODE_DIR (asr.lattice.decode_dir), written at once;
    with ``ctm`` also ``hyp.ctm`` (word times from the decoder's alignment, confidences from the
    lattices when made; asr.decode.ctm).
    Skipped (returns the earlier decode.json) when DECODE_DIR was decoded from the same model
    dir, graph, features and options, unless ``force``. Utterances that fail are skipped and
    counted; more than ``max_failures`` of them is a DecodeError (nothing written)."""
    from tqdm import tqdm

    from asr.features.reader import FeatureReader

    from asr.lattice import decode_dir as dd

    cfg = cfg or SearchConfig()
    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    check_replaceable(decode_dir, DECODE_DIR_FILES)  # before the work, not after it
    t_start = time.perf_counter()
    options = {"acoustic_scale": cfg.acoustic_scale, "beam": cfg.beam, "max_active": cfg.max_active,
               "lattices": bool(lattices), "ctm": bool(ctm)}
    if lattices:
        options.update(lattice_beam=cfg.lattice_beam, nj=int(nj))
    inputs = None
    if (Path(model_dir) / "model.yaml").is_file() and (Path(graph_dir or Path(model_dir) / "graph")).is_dir():
        inputs = dd.decode_inputs(model_dir, graph_dir or Path(model_dir) / "graph", data_dir, options)
        if not force and dd.up_to_date(decode_dir, inputs):
            log.info("%s is up to date (same model dir, graph, features and options); skipping", decode_dir)
            return dict(rescore_if_text_changed(decode_dir, data_dir), skipped=True)
    rec = Recognizer(model_dir, graph_dir, cfg, word_times=ctm)
    reader = FeatureReader(data_dir, cmvn=rec.cmvn_mode, global_stats=rec.md.global_cmvn_stats())
    utts = list(reader.utt_ids)
    if not utts:
        raise DecodeError(f"{data_dir}: no utterances with features")
    from asr.nnet.model_dir import check_features

    check_features(rec.md.path, rec.md.config, data_dir, lambda: reader[utts[0]].shape[1])
    nj = max(1, min(int(nj), len(utts)))
    num_threads = num_threads or default_threads(nj)
    tasks = []
    for j in range(nj):
        mine = utts[j::nj]
        for i in range(0, len(mine), batch_size):
            tasks.append((j + 1, mine[i:i + batch_size], lattices))
    _STATE["rec"], _STATE["reader"] = rec, reader
    frame_shift = float(rec.md.fbank["frame-shift"]) / 1000.0
    _STATE["frame_shift"] = frame_shift
    ctms: dict[str, list[str] | Exception] = {}
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
            set_torch_threads(num_threads)
            try:
                it = map(_decode_batch, tasks)
                _collect(it, hyps, lats, bad_all, total, bar, ctms)
            finally:
                torch.set_num_threads(old)
        else:
            ctx = mp.get_context("fork")
            with ctx.Pool(nj, initializer=_worker_init, initargs=(num_threads, os.getpid())) as pool:
                _collect(pool.imap_unordered(_decode_batch, tasks), hyps, lats, bad_all, total, bar, ctms)
    finally:
        bar.close()
        _STATE.clear()
    not_final = total.extra.get("not_final", 0)
    failures = Failures("decode", len(utts), bad_all)
    failures.log(log)
    failures.check(max_failures, DecodeError, f"{data_dir}: nothing written to {decode_dir}")

    with atomic_dir(decode_dir, replaces=DECODE_DIR_FILES) as tmp:
        order = sorted(hyps, key=lambda u: u.encode("utf-8"))
        atomic_write_text(tmp / "hyp.txt", "".join(f"{u} {' '.join(hyps[u])}".rstrip() + "\n" for u in order))
        if lattices:
            from asr.lattice.lattice_io import write_lattices

            for j, items in lats.items():
                items.sort(key=lambda kv: kv[0].encode("utf-8"))
                write_lattices(tmp / f"lat.{j}.gz", items)
        ctm_failed = 0
        if ctm:
            lines = []
            for u in order:
                c = ctms.get(u)
                if isinstance(c, Exception) or c is None:
                    ctm_failed += 1
                    log.warning("utterance %s: no word times: %s", u, c)
                else:
                    lines += c
            if ctm_failed:
                log.warning("%d of %d utterances have no word times in hyp.ctm", ctm_failed, len(order))
            atomic_write_text(tmp / "hyp.ctm", "".join(lines))
        audio_s = total.frames * frame_shift
        info = {
            "model_dir": str(model_dir), "graph_dir": str(rec.graph_dir), "data_dir": str(data_dir),
            "acoustic_scale": cfg.acoustic_scale, "beam": cfg.beam, "max_active": cfg.max_active,
            "lattice_beam": cfg.lattice_beam, "lattices": bool(lattices), "nj": nj, "num_threads": num_threads,
            "decoder": "LatticeSimpleDecoder" if lattices else "FasterDecoder",
            "ctm": bool(ctm), "ctm_failed_utterances": ctm_failed,
            "utterances": len(hyps), "failed_utterances": len(bad_all), "not_reached_final": not_final,
            # utterances whose lattice is only the 1-best path (asr.lattice.word_lattice limits)
            "lattice_fallbacks": total.extra.get("lattice_fallback", 0),
            "frames": total.frames, "audio_seconds": round(audio_s, 3),
            "forward_seconds": round(total.forward_s, 3), "search_seconds": round(total.search_s, 3),
            "rtf_forward": round(total.forward_s / audio_s, 5) if audio_s else None,
            "rtf_search": round(total.search_s / audio_s, 5) if audio_s else None,
            "rtf": round((total.forward_s + total.search_s) / audio_s, 5) if audio_s else None,
            "wall_seconds": round(time.perf_counter() - t_start, 3),
            "lattice_jobs": nj if lattices else 0, "words_sha256": rec.gdir.words_hash(), "inputs": inputs,
            dd.LM_KEY: (rec.gdir.info or {}).get(LM_ARPA),  # the first-pass LM (lmrescore --old-lm)
        }
        write_wer(tmp, data_dir, {u: hyps[u] for u in order}, info)
        atomic_write_text(tmp / "decode.json", json.dumps(info, indent=1) + "\n")
    log.info(failures.summary())
    return info


def write_wer(out_dir: Path, data_dir: Path, hyps: dict[str, list[str]], info: dict) -> None:
    """OUT_DIR/wer of ``hyps`` against DATA_DIR/text (every reference utterance scored; none
    without a text), with its %WER line and the text's SHA-256 in ``info`` (decode.json)."""
    from asr.io.fingerprint import file_hash
    from asr.score.wer import format_summary, read_text, score_texts

    text = data_dir / "text"
    info.pop("wer", None)
    info["text_sha256"] = file_hash(text) if text.is_file() else None
    if info["text_sha256"] is None:
        (out_dir / "wer").unlink(missing_ok=True)
        return
    summary = format_summary(score_texts(read_text(text), hyps, mode="all", ref_name=str(text), hyp_name="hyp.txt"))
    atomic_write_text(out_dir / "wer", summary if summary.endswith("\n") else summary + "\n")
    info["wer"] = summary.splitlines()[0]


def rescore_if_text_changed(decode_dir: Path, data_dir: Path) -> dict:
    """The decode.json of an up-to-date DECODE_DIR, after rescoring its hyp.txt into ``wer``
    when DATA_DIR/text changed since it was scored (the transcript does not change the
    search, so the decode is kept)."""
    from asr.io.fingerprint import file_hash
    from asr.lattice import decode_dir as dd
    from asr.score.wer import read_text

    info = dd.DecodeDir.load(decode_dir).info
    text = data_dir / "text"
    if info.get("text_sha256", "unrecorded") == (file_hash(text) if text.is_file() else None):
        return info
    write_wer(decode_dir, data_dir, read_text(decode_dir / dd.HYP), info)
    atomic_write_text(decode_dir / dd.INFO, json.dumps(info, indent=1) + "\n")
    log.info("%s changed since %s was scored: rescored its hyp.txt (%s)", text, decode_dir,
             info.get("wer") or "no text: wer removed")
    return info


def _collect(it, hyps, lats, bad_all, total: Timing, bar, ctms) -> None:
    for job, out, bad, timing in it:
        for u, words, lat, reached, ctm, full in out:
            hyps[u] = words
            if not full:
                log.warning("%s: word lattice over the determinization limits: kept only its 1-best path", u)
                total.extra["lattice_fallback"] = total.extra.get("lattice_fallback", 0) + 1
            ctms[u] = ctm
            if lat is not None:
                lats[job].append((u, lat))
            if not reached:
                total.extra["not_final"] = total.extra.get("not_final", 0) + 1
        bad_all.extend(bad)
        total.add(timing)
        bar.update(len(out) + len(bad))


def transcribe_files(model_dir, paths: list[str], graph_dir=None, cfg: SearchConfig | None = None, channel: int = 0,
                     num_threads: int | None = None, word_times: bool = False, cmvn_opts=None):
    """Yield ``(id, words | None, error | None, ctm_lines | None)`` per audio file (id = file
    stem); ``ctm_lines`` (word times, confidence 1) with ``word_times``.

    Features exactly as the model was trained with (the model dir's fbank options), channel
    ``channel`` of multi-channel audio (-1: the average; the same rule as ``asr make-fbank``),
    resampled to the model's rate (logged), the model's CMVN with each file as its own speaker
    (``normalise_utterance``; ``cmvn_opts``: the online CMVN window and global frames of a
    ``cmvn: online`` model, the same as streaming uses, so offline == streaming; other modes
    use whole-utterance or fixed stats, and non-default ``cmvn_opts`` are a ConfigError).
    An empty, unreadable, too short
    or NaN file is an error for that file; digital silence (no sample reaches one int16 step)
    transcribes as no words, with a warning."""
    from asr.data.audio import check_transcribable, extract, is_digital_silence, load_recording
    from asr.features.make_fbank import compute_features
    from asr.features.reader import normalise_utterance
    from asr.threads import set_torch_threads

    rec = Recognizer(model_dir, graph_dir, cfg, word_times=word_times)
    if cmvn_opts is not None and rec.cmvn_mode != "online":
        from asr.errors import ConfigError
        from asr.features.online_cmvn import OnlineCmvnOptions

        if cmvn_opts != OnlineCmvnOptions():
            raise ConfigError(f"--cmn-window/--global-frames apply offline only to a model with cmvn: online "
                              f"(this one: {rec.cmvn_mode}); use them with --stream")
    fbank = rec.md.fbank_computer()
    global_stats = rec.md.global_cmvn_stats()
    frame_shift = float(rec.md.fbank["frame-shift"]) / 1000.0
    set_torch_threads(num_threads, jobs=1)
    for p in paths:
        uid = Path(p).stem
        try:
            audio = load_recording(p)
            check_transcribable(p, len(audio.samples), audio.rate, fbank, int((~np.isfinite(audio.samples)).sum()))
            if audio.samples.shape[1] > 1:
                log.info("%s: %d channels: using %s (--channel)", p, audio.samples.shape[1],
                         "their average" if channel == -1 else f"channel {channel}")
            if audio.rate != fbank.sample_rate:
                log.info("%s: resampling %d Hz -> %d Hz (the model's rate)", p, audio.rate, fbank.sample_rate)
            samples = extract(audio, fbank.sample_rate, channel, source=str(p))
            feats = compute_features(fbank, samples, uid)
            if is_digital_silence(p, samples):
                yield uid, [], None, [] if word_times else None
                continue
            feats = normalise_utterance(feats, rec.cmvn_mode, global_stats, online_opts=cmvn_opts)
            res, _ = rec.recognize([feats])
            yield uid, rec.to_words(res[0].words), None, _ctm_of(rec, uid, res[0], frame_shift) if word_times else None
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            from asr.errors import AsrError

            msg = str(e) if isinstance(e, AsrError) else f"{p}: {type(e).__name__}: {e}"
            yield uid, None, msg.splitlines()[0] if msg else repr(e), None
