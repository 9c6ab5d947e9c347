"""``asr make-fbank``: features for a whole data dir, in parallel jobs, resumable.

Layout (Kaldi's make_fbank.sh convention):
    ARK_DIR/raw_fbank_<name>.<job>.ark    Kaldi binary float matrices (kaldiio/Kaldi readable)
    ARK_DIR/raw_fbank_<name>.<job>.scp    that job's scp
    ARK_DIR/raw_fbank_<name>.<job>.done   JSON written last: the job's signature, frame counts, failures
    DATA_DIR/feats.scp (absolute ark paths), DATA_DIR/utt2num_frames, and DATA_DIR/utt2dur
    (seconds of the audio read)
<name> is the data dir's base name; ARK_DIR defaults to DATA_DIR/data.

    DATA_DIR/fbank.conf (every fbank option, Kaldi option-file format: what a model dir
    records via ``asr pack-model-dir --feats``)
<name> is the data dir's base name; ARK_DIR defaults to DATA_DIR/data.

Jobs split the data by speaker. A job is finished when its ``.done`` file exists and holds
the signature of its inputs (fbank options, channel, resampling, and the job's utterances
with their wav.scp/segments entries and the stamp of each audio file: path, size, mtime), so
a replaced or repaired wav is recomputed (and a stale error retried); re-running skips
finished jobs and recomputes the others. feats.scp is only written once every job has
finished, atomically; when a job has to be recomputed the old
feats.scp/utt2num_frames/cmvn.scp/global_cmvn.stats/fbank.conf are removed first, so no scp ever points into an
ark being rewritten.

Utterances whose audio cannot be read, has NaN/inf samples or is too short for one frame
are skipped, logged and counted (``asr.failures``); they are absent from feats.scp
(``asr fix-data-dir`` then drops them from the data dir). Features do not need the
transcripts: ``text`` is not read. Multi-channel audio: channel 0 unless ``channel`` says
otherwise (-1 = average), logged; resampled recordings are counted and logged. The run fails
(FeatureError, no feats.scp) when every utterance failed or more than ``max_failures`` of
them did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import AsrError, AudioError, FeatureError
from asr.failures import DEFAULT_MAX_FAILURES, Failures
from asr.features.reader import GLOBAL_CMVN_FILE
from asr.io.fingerprint import audio_stamp
from asr.workers import die_with_parent

logger = logging.getLogger(__name__)

FEATURE_OPTIONS = "fbank.conf"  # in the data dir, written with feats.scp


def read_feature_options(data_dir: str | os.PathLike) -> dict[str, str]:
    """The fbank options ``asr make-fbank`` computed DATA_DIR's features with (every option)."""
    from asr.features.fbank import FbankComputer

    path = Path(data_dir) / FEATURE_OPTIONS
    if not (Path(data_dir) / "feats.scp").is_file():
        raise FeatureError(f"{data_dir}: no feats.scp (run asr make-fbank)")
    if not path.is_file():
        raise FeatureError(f"{data_dir}: no {FEATURE_OPTIONS} recording the feature options (features not made "
                           f"by asr make-fbank? give the options with --fbank-config)")
    return FbankComputer(path).all_options


def feature_option_differences(options: dict[str, str], reference: dict[str, str]) -> str:
    """The fbank options (Kaldi names -> values) of ``options`` that differ from ``reference``,
    as ``"low-freq 300 vs 20, ..."`` (the first four; "" when none). Dither is not compared:
    it is noise added while computing (Kaldi recipes train with it and decode without)."""
    diff = [k for k in sorted(set(options) | set(reference))
            if k != "dither" and str(options.get(k)) != str(reference.get(k))]
    return ", ".join(f"{k} {options.get(k)} vs {reference.get(k)}" for k in diff[:4])


@dataclass
class MakeFbankReport:
    num_utts: int = 0  # utterances in the data dir
    num_done: int = 0  # with features
    failed: list[tuple[str, str]] = field(default_factory=list)  # (utt, reason)
    num_jobs: int = 0
    jobs_skipped: int = 0  # already finished by an earlier run
    seconds: float = 0.0
    audio_seconds: float = 0.0  # audio processed in this run (jobs not skipped)
    feats_scp: Path | None = None


@dataclass
class _Job:
    index: int  # 1-based
    items: list[tuple[str, str, str, float | None, float | None]]  # (utt, rec, spec, start, end)
    ark: str
    scp: str
    done: str
    signature: str
    data_dir: str  # absolute: whose features the job's ark holds (recorded in .done)


def make_fbank(
    data_dir: str | os.PathLike,
    ark_dir: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    nj: int = 1,
    channel: int = 0,
    resample: bool = True,
    max_failures: float = DEFAULT_MAX_FAILURES,
    force: bool = False,
    progress: bool = True,
) -> MakeFbankReport:
    from asr.data.datadir import DataDir
    from asr.data.split import split_by_speaker
    from asr.features.fbank import FbankComputer

    t0 = time.perf_counter()
    data_dir = Path(data_dir)
    dd = DataDir.load(data_dir, text=False)  # features do not need the transcripts
    computer = FbankComputer(config)  # validates the config before any work
    ark_dir = Path(ark_dir) if ark_dir is not None else data_dir / "data"
    ark_dir = ark_dir.absolute()
    ark_dir.mkdir(parents=True, exist_ok=True)
    name = data_dir.absolute().name
    num_spk = len(dd.spk2utt)
    if nj > num_spk:
        logger.warning("%s: %d jobs requested but only %d speakers; using %d jobs", data_dir, nj, num_spk, num_spk)
        nj = num_spk
    report = MakeFbankReport(num_utts=len(dd.utt2spk), num_jobs=nj)
    settings = {"fbank": computer.options, "channel": channel, "resample": resample}

    jobs: list[_Job] = []
    for j, utts in enumerate(split_by_speaker(dd, max(nj, 1)), 1):
        items = [(u, *_audio_spec(dd, u)) for u in utts]
        stamps = [audio_stamp(it[2]) if it[2] is not None else None for it in items]
        sig = hashlib.sha256(json.dumps([settings, items, stamps]).encode()).hexdigest()
        base = ark_dir / f"raw_fbank_{name}.{j}"
        jobs.append(_Job(j, items, f"{base}.ark", f"{base}.scp", f"{base}.done", sig, str(data_dir.absolute())))

    for job in jobs:  # also a finished one: the other dir may recompute it later
        _check_ark_owner(job)
    todo = [job for job in jobs if force or not _finished(job)]
    report.jobs_skipped = len(jobs) - len(todo)
    if todo:
        for stale in ("feats.scp", "utt2num_frames", "cmvn.scp", GLOBAL_CMVN_FILE, FEATURE_OPTIONS):
            if (data_dir / stale).exists():
                logger.info("%s: removing %s (features are being recomputed)", data_dir, stale)
                (data_dir / stale).unlink()
        for j in range(len(jobs) + 1, 10_000):  # jobs of an earlier run with more jobs
            old = [ark_dir / f"raw_fbank_{name}.{j}.{ext}" for ext in ("done", "scp", "ark")]
            if not any(p.exists() for p in old):
                break
            for p in old:
                if p.exists():
                    p.unlink()
        _run_jobs(todo, settings, progress, report)
    if report.jobs_skipped:
        logger.info("%s: %d of %d jobs already finished (skipped)", data_dir, report.jobs_skipped, len(jobs))

    scp_lines: list[str] = []
    n2f: list[tuple[str, str]] = []
    u2d: list[tuple[str, str]] = []
    notes: dict[str, int] = {}
    for job in jobs:
        with open(job.done, encoding="utf-8") as f:
            done = json.load(f)
        report.failed.extend((u, r) for u, r in done["failed"])
        n2f.extend((u, str(n)) for u, n in done["frames"].items())
        u2d.extend((u, str(t)) for u, t in done["durations"].items())
        for k, v in done.get("notes", {}).items():
            notes[k] = notes.get(k, 0) + v
        with open(job.scp, encoding="utf-8") as f:
            scp_lines.extend(line for line in f if line.strip())
    report.num_done = len(n2f)
    _log_notes(notes, channel, computer.sample_rate)
    failures = Failures("make-fbank", report.num_utts, report.failed)
    failures.log(logger)
    failures.check(max_failures, FeatureError, f"{data_dir}: feats.scp not written")

    scp_lines.sort(key=lambda line: line.split(" ", 1)[0].encode("utf-8"))
    n2f.sort(key=lambda kv: kv[0].encode("utf-8"))
    # rewritten only when they change, so "cmvn.scp newer than feats.scp" stays true on a re-run
    _write_if_changed(data_dir / "utt2num_frames", "".join(f"{u} {n}\n" for u, n in n2f))
    # the durations of the audio just read (an older utt2dur may describe replaced audio)
    u2d.sort(key=lambda kv: kv[0].encode("utf-8"))
    _write_if_changed(data_dir / "utt2dur", "".join(f"{u} {t}\n" for u, t in u2d))
    _write_if_changed(data_dir / FEATURE_OPTIONS, "".join(f"--{k}={v}\n" for k, v in computer.all_options.items()))
    _write_if_changed(data_dir / "feats.scp", "".join(scp_lines))
    report.feats_scp = data_dir / "feats.scp"
    report.seconds = time.perf_counter() - t0
    return report


def _write_if_changed(path: Path, text: str) -> None:
    from asr.io.atomic import atomic_write_text

    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def _log_notes(notes: dict[str, int], channel: int, rate: int) -> None:
    """The channel rule and resampling, once per run (counted over all recordings)."""
    if notes.get("multichannel"):
        rule = "the channel average" if channel == -1 else f"channel {channel}"
        logger.info("%d utterances have multi-channel audio: features from %s (--channel)", notes["multichannel"], rule)
    for key, n in sorted(notes.items()):
        if key.startswith("resampled_from_"):
            logger.info("%d utterances resampled from %s Hz to %d Hz", n, key.removeprefix("resampled_from_"), rate)


def _audio_spec(dd, utt: str) -> tuple:
    """(recording, wav.scp value, start, end); when the utterance has no audio entry:
    ("", None, None, None) and the job reports it as failed."""
    from asr.errors import DataDirError

    try:
        return dd.audio_spec(utt)
    except DataDirError:
        return "", None, None, None


def _check_ark_owner(job: _Job) -> None:
    """FeatureError when the job's ark holds another data dir's features that its feats.scp
    still points to (two data dirs of the same base name sharing ARK_DIR): rewriting it would
    silently change that dir's features (and sharing it, this one's when that one is redone)."""
    try:
        with open(job.done, encoding="utf-8") as f:
            owner = json.load(f).get("data_dir")
    except (OSError, ValueError):
        return
    if not owner or owner == job.data_dir or _same_dir(owner, job.data_dir):
        return
    try:
        with open(Path(owner) / "feats.scp", encoding="utf-8", errors="replace") as f:
            used = any(job.ark in line for line in f)
    except OSError:
        return
    if used:
        raise FeatureError(f"{job.ark}: holds the features of {owner} (its feats.scp points there), a data dir "
                           f"of the same name: give this one another ARK_DIR (default: DATA_DIR/data)")


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _finished(job: _Job) -> bool:
    if not (os.path.isfile(job.done) and os.path.isfile(job.ark) and os.path.isfile(job.scp)):
        return False
    try:
        with open(job.done, encoding="utf-8") as f:
            return json.load(f).get("signature") == job.signature
    except (OSError, ValueError):
        return False


def _run_jobs(todo: list[_Job], settings: dict, progress: bool, report: MakeFbankReport) -> None:
    from tqdm import tqdm

    total = sum(len(job.items) for job in todo)
    if len(todo) == 1:
        with tqdm(total=total, unit="utt", desc="make-fbank", disable=not progress, leave=False) as bar:
            results = [_compute_job(todo[0], settings, bar.update)]
    else:
        results = _run_parallel(todo, settings, total, progress)
    report.audio_seconds = sum(r for r in results)


def _run_parallel(todo: list[_Job], settings: dict, total: int, progress: bool) -> list[float]:
    import multiprocessing as mp
    import queue
    from concurrent.futures import ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    # fork starts workers fastest; the pool is created before the progress bar's thread exists.
    # ProcessPoolExecutor (not Pool): a worker that dies raises BrokenProcessPool, never hangs.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    q = ctx.Queue()
    with ProcessPoolExecutor(len(todo), mp_context=ctx, initializer=_init_worker, initargs=(q, os.getpid())) as pool, \
            tqdm(total=total, unit="utt", desc="make-fbank", disable=not progress, leave=False) as bar:
        futures = [pool.submit(_worker, (job, settings)) for job in todo]
        while True:
            try:
                bar.update(q.get(timeout=0.2))
            except queue.Empty:
                if all(f.done() for f in futures):
                    break
        while True:
            try:
                bar.update(q.get_nowait())
            except queue.Empty:
                break
        wait(futures)
        try:
            return [f.result() for f in futures]  # re-raises a worker's exception
        except BrokenProcessPool:
            raise FeatureError("a make-fbank worker process died (out of memory or a crash in a library); "
                               "finished jobs are kept, re-run to continue") from None


_queue = None


def _init_worker(q, parent: int) -> None:
    global _queue
    die_with_parent(parent)
    _queue = q


def _worker(args) -> float:
    job, settings = args
    return _compute_job(job, settings, _queue.put)


def _compute_job(job: _Job, settings: dict, report_progress) -> float:
    """Compute one job's features into its ark, then write its scp and (last) its .done file.
    Returns the seconds of audio processed."""
    from asr.io.atomic import atomic_write

    for path in (job.done, job.scp):  # an unfinished job has no .done (nor a stale scp)
        if os.path.exists(path):
            os.unlink(path)
    tmp = job.ark + ".tmp"
    try:
        with open(tmp, "wb") as ark:
            # no fsync: the .done marker (written atomically, last) guards against interruption
            frames, durations, failed, scp, audio_seconds, notes = _fill_ark(ark, job, settings, report_progress)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    os.replace(tmp, job.ark)
    with atomic_write(job.scp) as f:
        f.writelines(scp)
    with atomic_write(job.done) as f:
        json.dump({"signature": job.signature, "data_dir": job.data_dir, "frames": frames, "durations": durations,
                   "failed": failed, "notes": notes}, f)
    return audio_seconds


def _fill_ark(ark, job: _Job, settings: dict, report_progress):
    import kaldiio

    from asr.data.audio import extract, load_recording
    from asr.features.fbank import FbankComputer

    computer = FbankComputer.from_options(settings["fbank"])
    rate = computer.sample_rate
    frames: dict[str, int] = {}
    durations: dict[str, float] = {}
    failed: list[tuple[str, str]] = []
    scp: list[str] = []
    audio_seconds = 0.0
    cached: tuple[str, object] = ("", None)  # (recording id, Recording or AsrError)
    notes: dict[str, int] = {}  # multichannel, resampled_from_<rate>: utterance counts
    pending = 0
    for utt, rec_id, spec, start, end in job.items:
        try:
            if spec is None:
                raise AudioError(f"utterance {utt}: no audio entry in wav.scp/segments")
            if cached[0] != rec_id:  # segments of one recording: decode it once
                try:
                    cached = (rec_id, load_recording(spec))
                except AsrError as e:
                    cached = (rec_id, e)
            rec = cached[1]
            if isinstance(rec, AsrError):
                raise AudioError(f"utterance {utt}: {rec}")
            x = extract(rec, rate, settings["channel"], utt=utt, start=start, end=end, resample=settings["resample"])
            if rec.samples.shape[1] > 1:
                notes["multichannel"] = notes.get("multichannel", 0) + 1
            if rec.rate != rate:
                key = f"resampled_from_{rec.rate}"
                notes[key] = notes.get(key, 0) + 1
            feats = compute_features(computer, x, utt)
        except AsrError as e:
            failed.append((utt, str(e)))
        else:
            offset = ark.tell() + len(utt.encode("utf-8")) + 1
            kaldiio.save_ark(ark, {utt: feats})
            scp.append(f"{utt} {job.ark}:{offset}\n")
            frames[utt] = int(feats.shape[0])
            durations[utt] = round(len(x) / rate, 4)
            audio_seconds += len(x) / rate
        pending += 1
        if pending >= 20:
            report_progress(pending)
            pending = 0
    report_progress(pending)
    return frames, durations, failed, scp, audio_seconds, notes


def compute_features(computer, x: np.ndarray, utt: str) -> np.ndarray:
    """Fbank features of samples ``x`` (float in [-1, 1]); FeatureError naming the utterance
    for audio with NaN/inf samples, too short for one frame, or any failure of the extractor."""
    if len(x) and not np.isfinite(x).all():
        raise FeatureError(f"utterance {utt}: the audio has {int((~np.isfinite(x)).sum())} NaN/inf samples")
    try:
        feats = computer.compute(x * np.float32(32768.0))  # Kaldi's int16 scale; x may view a cached recording
    except AsrError:
        raise
    except Exception as e:  # noqa: BLE001 - kaldi-native-fbank raises RuntimeError (e.g. "mel energy is nan")
        raise FeatureError(f"utterance {utt}: fbank failed: {e}".splitlines()[0]) from None
    if len(feats) == 0:
        raise FeatureError(f"utterance {utt}: too short for one frame ({len(x)} samples at {computer.sample_rate} Hz)")
    if not np.isfinite(feats).all():
        raise FeatureError(f"utterance {utt}: features are not finite")
    return feats
