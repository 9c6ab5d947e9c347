"""``asr augment-data-dir``: a new Kaldi data dir of perturbed copies of a data dir.

What is written for every source recording (and so for its utterances):

1. one copy per speed factor (``--speed 0.9,1.0,1.1``, Kaldi's
   ``perturb_data_dir_speed_3way.sh``): ids ``sp0.9-<id>``; factor 1.0 keeps the ids
   (``--random-speed``: instead, each environment copy below gets one factor drawn at
   random, ``rvb1-sp1.1-<id>``, and the original is the only unperturbed copy);
2. of each of those, ``num_copies`` environment copies ``<prefix><k>-<id>`` (k = 1..N;
   Kaldi ``reverberate_data_dir.py --prefix rvb``: ``rvb1-sp0.9-<id>``), each reverberated in a
   simulated room, given additive noise and passed through a telephone channel with the
   configured probabilities, in that order; ``include_original`` also keeps the copy
   without them (ids unchanged);
3. a random gain on every output copy (``--volume``; Kaldi ``perturb_data_dir_volume.sh``,
   which keeps the ids).

Utterance, recording *and speaker* ids get the prefix (as Kaldi's scripts do), so every
copy has its own CMVN statistics; ``utt2uniq`` maps each new utterance to its source.
``text``, ``utt2spk``, ``spk2utt``, ``segments`` (times divided by the speed factor),
``utt2dur`` (new durations), ``utt2lang``, ``spk2gender`` and every ``*.ctm`` (times
rescaled) are carried over; features (``feats.scp``, ``cmvn.scp``) are not: compute them
on the new dir. ``wav.scp`` points to new 16-bit files ``DST/wav/<rec>.wav`` (or ``.flac``)
at the source's rate (multi-channel sources: the first channel).

Also written: ``reco2aug`` (what was done to each recording: ``speed=0.9 room=train-3
rt60=0.412 noise=babble snr=7.31 ...``), ``rooms.json`` (the room set used), ``excluded.txt``
(source recordings skipped and why: unreadable audio, silent), and last ``augment.json``
(settings, counts, timing), which marks a complete dir: a re-run with the same settings
on the same source returns at once.

Every random choice comes from a generator seeded by (``seed``, new recording id), so the
output is byte-identical for any number of jobs. With ``--ali-dir``, an alignment dir of
the source (``asr import-ali`` / ``asr build-tree`` layout) is carried to ``--out-ali-dir``
with speed-changed alignments rescaled (``asr.augment.alignments``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.augment.noise import NOISE_TYPES, BabbleBank, make_noise, unit_rms
from asr.augment.perturb import add_noise, reverberate, speed, telephone, to_int16
from asr.data.datadir import DATA_DIR_MARKERS, DataDir, sorted_ids, write_spk2utt
from asr.errors import AsrError, AudioError, ConfigError, DataDirError
from asr.workers import die_with_parent
from asr.io.atomic import atomic_write, atomic_write_text, check_replaceable
from asr.io.fingerprint import audio_stamp
from asr.io.tables import read_table, write_table

log = logging.getLogger(__name__)

AUDIO_FORMATS = ("wav", "flac")
BABBLE_BANK_SIZE = 24  # utterances of the dir used as babble talkers


@dataclass(frozen=True)
class AugmentConfig:
    """What ``augment_data_dir`` does. Every field is a command-line option."""

    speed_factors: tuple[float, ...] = ()  # e.g. (0.9, 1.0, 1.1); () = no speed perturbation
    random_speed: bool = False  # one random factor per environment copy instead of a copy per factor
    volume: tuple[float, float] | None = None  # random gain range (Kaldi: 0.125 .. 2)
    num_copies: int = 1  # environment copies per (speed) copy
    include_original: bool = False  # also keep each (speed) copy without environment
    reverb_prob: float = 0.0
    noise_prob: float = 0.0
    telephone_prob: float = 0.0
    prefix: str | None = None  # environment copy k is "<prefix><k>-"; default rvb / noise / tel
    snr_db: tuple[float, float] = (5.0, 20.0)
    noise_types: tuple[str, ...] = NOISE_TYPES
    room_set: str = "train"
    num_rooms: int = 20
    rt60: tuple[float, float] = (0.2, 0.7)
    seed: int = 1
    audio_format: str = "wav"

    @property
    def environment(self) -> bool:
        return max(self.reverb_prob, self.noise_prob, self.telephone_prob) > 0

    @property
    def copy_prefix(self) -> str:
        if self.prefix:
            return self.prefix
        return "rvb" if self.reverb_prob > 0 else "noise" if self.noise_prob > 0 else "tel"

    def check(self) -> None:
        if not (self.speed_factors or self.volume or self.environment):
            raise ConfigError("nothing to do: give --speed, --volume, or a --reverb/--noise/--telephone probability")
        if any(f <= 0 for f in self.speed_factors) or len(set(self.speed_factors)) != len(self.speed_factors):
            raise ConfigError(f"speed factors must be positive and distinct, got {list(self.speed_factors)}")
        if self.random_speed and not (self.speed_factors and self.environment):
            raise ConfigError("--random-speed needs --speed factors and environment copies (a --*-prob)")
        for name in ("reverb_prob", "noise_prob", "telephone_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.environment and self.num_copies < 1:
            raise ConfigError(f"--num-copies must be at least 1, got {self.num_copies}")
        if self.volume is not None and not 0 < self.volume[0] <= self.volume[1]:
            raise ConfigError(f"volume range {self.volume} is not positive and increasing")
        if self.snr_db[0] > self.snr_db[1]:
            raise ConfigError(f"SNR range {self.snr_db} is not increasing")
        bad = [t for t in self.noise_types if t not in NOISE_TYPES]
        if bad or not self.noise_types:
            raise ConfigError(f"unknown noise type(s) {bad or '(none)'}; known: {', '.join(NOISE_TYPES)}")
        if self.audio_format not in AUDIO_FORMATS:
            raise ConfigError(f"--audio-format must be one of {', '.join(AUDIO_FORMATS)}")
        if self.prefix is not None and (not self.prefix or any(c.isspace() or c == "/" for c in self.prefix)):
            raise ConfigError(f"--prefix {self.prefix!r}: must be non-empty, without spaces or '/'")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True)
class Variant:
    """One output copy of a source recording."""

    prefix: str  # added to recording, utterance and speaker ids ("" = ids unchanged)
    factor: float  # speed factor
    copy: int  # 0: no environment perturbation; k >= 1: environment copy k


def variants(config: AugmentConfig, rec: str) -> list[Variant]:
    """The output copies of recording ``rec``, in Kaldi's id order (rvb1-sp0.9-...). With
    ``random_speed`` each environment copy gets one factor drawn from ``speed_factors``
    (seeded by the recording id) instead of one copy per factor."""
    def sp(f: float) -> str:
        return "" if f == 1.0 else f"sp{f:g}-"

    out = []
    if config.random_speed:
        if config.include_original or not config.environment:
            out.append(Variant("", 1.0, 0))
        if config.environment:
            rng = np.random.default_rng([config.seed, 31, *_id_seed(rec)])
            for k in range(1, config.num_copies + 1):
                f = config.speed_factors[int(rng.integers(len(config.speed_factors)))]
                out.append(Variant(f"{config.copy_prefix}{k}-{sp(f)}", f, k))
        return out
    for f in config.speed_factors or (1.0,):
        if not config.environment or config.include_original:
            out.append(Variant(sp(f), f, 0))
        if config.environment:
            out.extend(Variant(f"{config.copy_prefix}{k}-{sp(f)}", f, k) for k in range(1, config.num_copies + 1))
    return out


@dataclass
class RecResult:
    rec: str
    error: str | None = None
    rate: int = 0
    # per variant: (new recording id, number of samples, description)
    outputs: list[tuple[str, int, dict]] = field(default_factory=list)


@dataclass(frozen=True)
class OutUtt:
    """An utterance of the output dir and where it came from."""

    utt: str
    source: str  # source utterance id
    factor: float  # speed factor
    num_samples: int  # of the new utterance, at ``rate``
    rate: int


@dataclass
class AugmentSummary:
    """What ``augment_data_dir`` did (also the content of augment.json)."""

    data: dict

    @property
    def num_utterances(self) -> int:
        return int(self.data["utterances_out"])


def augment_data_dir(src: str | os.PathLike, dst: str | os.PathLike, config: AugmentConfig, nj: int = 1,
                     ali_dir: str | os.PathLike | None = None, out_ali_dir: str | os.PathLike | None = None,
                     fbank_config: str | os.PathLike | None = None, progress: bool = True) -> AugmentSummary:
    """Write the augmented copy of data dir ``src`` into ``dst`` (see module doc).
    Returns the summary also written to ``dst/augment.json``."""
    config.check()
    src, dst = Path(src), Path(dst)
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {nj}")
    if (ali_dir is None) != (out_ali_dir is None):
        raise ConfigError("--ali-dir and --out-ali-dir go together")
    dd = DataDir.load(src)
    if dst.resolve() == src.resolve():
        raise DataDirError(f"{dst}: the output dir must differ from the source dir")
    signature = {"config": config.to_json(), "source": str(src.resolve()), "source_hash": _source_hash(src, dd),
                 "ali_dir": str(Path(ali_dir).resolve()) if ali_dir else None,
                 "out_ali_dir": str(Path(out_ali_dir).resolve()) if out_ali_dir else None}
    done = _load_json(dst / "augment.json")
    if done.get("signature") == signature and (dst / "wav.scp").is_file():
        log.info("%s: already augmented with these settings; skipping", dst)
        return AugmentSummary(done)
    t0, c0 = time.time(), time.process_time()
    _clean(dst)
    wav_dir = dst / "wav"
    wav_dir.mkdir(parents=True)

    rec_ids = sorted_ids(dd.wav)
    rec_speaker = _recording_speakers(dd)
    rec_ids = [r for r in rec_ids if r in rec_speaker]  # recordings without utterances are dropped
    rate = _first_rate(dd, rec_ids)
    t_rooms = time.time()
    rooms = _room_pool(config, rate, nj) if config.reverb_prob > 0 else []
    t_rooms = time.time() - t_rooms
    if rooms:
        atomic_write_text(dst / "rooms.json", json.dumps([r.describe() for r in rooms], indent=1) + "\n")
    state = {"config": config, "rooms": [(r.name, r.rir, r.rt60) for r in rooms], "rate": rate,
             "bank_src": str(src) if config.noise_prob > 0 and "babble" in config.noise_types else None,
             "wav_dir": str(wav_dir)}
    tasks = [(r, dd.wav[r], rec_speaker[r]) for r in rec_ids]
    results = _run(tasks, state, nj, progress)
    wall, cpu_main = time.time() - t0, time.process_time() - c0

    summary, out_utts = _write_outputs(dd, dst, config, results)
    if ali_dir is not None:
        from asr.augment.ali_dir import augment_ali_dir

        summary["alignments"] = augment_ali_dir(Path(ali_dir), Path(out_ali_dir), out_utts, fbank_config)
    audio_out = sum(n / r.rate for r in results if r.error is None for _, n, _ in r.outputs)
    summary.update({
        "signature": signature,
        "wall_seconds": round(wall, 2),
        "room_simulation_seconds": round(t_rooms, 2),
        "jobs": nj,
        "audio_out_hours": round(audio_out / 3600, 4),
        # real-time factor per core: wall seconds x jobs per second of audio written
        "rtf_per_core": round(wall * nj / audio_out, 5) if audio_out else None,
        "main_cpu_seconds": round(cpu_main, 2),
    })
    atomic_write_text(dst / "augment.json", json.dumps(summary, indent=1) + "\n")
    return AugmentSummary(summary)


# -- the per-recording work (runs in worker processes) ------------------------------

_STATE: dict = {}


def _init_worker(state: dict, parent: int | None = None) -> None:
    """``parent``: the pid of the process that forked the pool (a pool worker dies with it)."""
    if parent is not None:
        die_with_parent(parent)
    _STATE.clear()
    _STATE.update(state)
    _STATE["rirs"] = {}  # rate -> resampled RIRs
    if state["bank_src"] is not None:
        _STATE["bank"] = load_babble_bank(Path(state["bank_src"]), state["config"].seed, state["rate"])
    else:
        _STATE["bank"] = None


def _process_chunk(chunk: list) -> list[RecResult]:
    return [process_recording(*task) for task in chunk]


def process_recording(rec: str, spec: str, speaker: str) -> RecResult:
    """Every output copy of one source recording, written to the wav dir."""
    import soundfile as sf

    from asr.data.audio import load_recording

    config: AugmentConfig = _STATE["config"]
    res = RecResult(rec)
    try:
        recording = load_recording(spec, utt=rec)
        x = recording.samples[:, 0].astype(np.float64)
        rate = recording.rate
        if not len(x):
            raise AudioError(f"recording {rec}: no samples")
        for v in variants(config, rec):
            new_rec = v.prefix + rec
            rng = np.random.default_rng([config.seed, *_id_seed(new_rec)])
            y, info = perturb(x, rate, v, rng, speaker)
            pcm, clip_gain = to_int16(y)
            if clip_gain != 1.0:
                info["clip_gain"] = round(clip_gain, 4)
            path = Path(_STATE["wav_dir"]) / f"{new_rec}.{config.audio_format}"
            tmp = path.with_name(f".{path.name}.tmp")
            # not fsynced per file: augment.json, written last, marks a complete dir
            sf.write(str(tmp), pcm, rate, format=config.audio_format.upper(), subtype="PCM_16")
            os.replace(tmp, path)
            res.outputs.append((new_rec, len(pcm), info))
        res.rate = rate
    except AsrError as e:  # AudioError, or a silent recording for the SNR
        res.error = str(e)
        res.outputs = []
    return res


def perturb(x: np.ndarray, rate: int, v: Variant, rng: np.random.Generator,
            speaker: str | None = None) -> tuple[np.ndarray, dict]:
    """One output copy of samples ``x``: speed, environment (copy > 0), volume."""
    config: AugmentConfig = _STATE["config"]
    info: dict = {"speed": v.factor}
    y = speed(x, rate, v.factor)
    if v.copy:
        if rng.random() < config.reverb_prob:
            name, rir, rt60 = _STATE["rooms"][int(rng.integers(len(_STATE["rooms"])))]
            y = reverberate(y, _rir_at(name, rir, rate))
            info.update(room=name, rt60=round(rt60, 3))
        if rng.random() < config.noise_prob:
            kind = config.noise_types[int(rng.integers(len(config.noise_types)))]
            noise, ninfo = make_noise(kind, len(y), rate, rng, _STATE.get("bank"), speaker)
            snr = float(rng.uniform(*config.snr_db))
            try:
                y = add_noise(y, noise, snr)
            except AudioError as e:
                raise AudioError(f"recording: {e}") from None
            info.update(ninfo, snr=round(snr, 2))
        if rng.random() < config.telephone_prob:
            y, tinfo = telephone(y, rate, rng)
            info["telephone"] = "{}-{}Hz".format(*tinfo["band"])
    if config.volume is not None:
        g = float(rng.uniform(*config.volume))
        y = y * g
        info["volume"] = round(g, 4)
    return y, info


def _rir_at(name: str, rir: np.ndarray, rate: int) -> np.ndarray:
    if rate == _STATE["rate"]:
        return rir
    key = (name, rate)
    if key not in _STATE["rirs"]:
        import soxr

        _STATE["rirs"][key] = soxr.resample(rir.astype(np.float64), _STATE["rate"], rate)
    return _STATE["rirs"][key]


def load_babble_bank(src: Path, seed: int, rate: int) -> BabbleBank:
    """Up to ``BABBLE_BANK_SIZE`` utterances of the dir, speakers taken in turn (seeded);
    unreadable ones are skipped (and logged)."""
    from asr.data.audio import read_audio

    dd = DataDir.load(src)
    rng = np.random.default_rng([seed, 2718])
    by_spk = {s: list(u) for s, u in dd.spk2utt.items()}
    order = [by_spk[s] for s in rng.permutation(sorted_ids(by_spk)).tolist()]
    for utts in order:
        rng.shuffle(utts)
    bank = BabbleBank()
    turn = 0
    while len(bank.signals) < BABBLE_BANK_SIZE and any(order):
        utts = order[turn % len(order)]
        turn += 1
        if not utts:
            continue
        utt = utts.pop()
        try:
            _, spec, start, end = dd.audio_spec(utt)
            x = read_audio(spec, rate, utt=utt, start=start, end=end).astype(np.float64)
        except (AudioError, DataDirError) as e:
            log.warning("babble bank: skipping %s", e)
            continue
        if len(x) and np.any(x):
            bank.signals.append(unit_rms(x))
            bank.speakers.append(dd.utt2spk[utt])
    return bank


def _id_seed(key: str) -> list[int]:
    """Two 32-bit words from a hash of an id (stable across runs, unlike hash())."""
    d = hashlib.sha256(key.encode("utf-8")).digest()
    return [int.from_bytes(d[:4], "little"), int.from_bytes(d[4:8], "little")]


def _run(tasks: list, state: dict, nj: int, progress: bool) -> list[RecResult]:
    from tqdm import tqdm

    size = max(1, min(16, len(tasks) // (nj * 8) or 1))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    bar = tqdm(total=len(tasks), unit="rec", desc="augment", disable=not progress or None, leave=False)
    out: list[RecResult] = []
    try:
        if nj == 1:
            _init_worker(state)
            for c in chunks:
                out.extend(_process_chunk(c))
                bar.update(len(c))
            return out
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        try:
            with ProcessPoolExecutor(nj, mp_context=ctx, initializer=_init_worker, initargs=(state, os.getpid())) as pool:
                for part in pool.map(_process_chunk, chunks):
                    out.extend(part)
                    bar.update(len(part))
        except BrokenProcessPool:
            raise AudioError("an augment-data-dir worker process died (out of memory?); re-run to redo") from None
        return out
    finally:
        bar.close()


def _room_pool(config: AugmentConfig, rate: int, nj: int):
    from asr.augment.rooms import RoomRanges, simulate_room_set

    t0 = time.time()
    ranges = RoomRanges(rt60=tuple(config.rt60))
    rooms = simulate_room_set(config.room_set, config.num_rooms, rate, ranges, nj=nj)
    log.info("room set %r: %d rooms simulated in %.1f s (RT60 %.2f-%.2f s measured)", config.room_set, len(rooms),
             time.time() - t0, min(r.rt60 for r in rooms), max(r.rt60 for r in rooms))
    return rooms


# -- the output dir ------------------------------------------------------------------

def _write_outputs(dd: DataDir, dst: Path, config: AugmentConfig,
                   results: list[RecResult]) -> tuple[dict, list[OutUtt]]:
    """Tables of the new dir from the per-recording results; returns the summary counts
    and the output utterances."""
    ok = {r.rec: r for r in results if r.error is None}
    excluded = [(r.rec, r.error) for r in results if r.error is not None]
    for r in excluded:
        log.warning("skipped %s", r[1])
    wav, reco2aug, segments, utt2dur = [], [], [], []
    utt_of: list[tuple[str, str, Variant]] = []  # (new utt, source utt, variant)
    out_utts: list[OutUtt] = []
    rec_utts: dict[str, list[str]] = {}
    for utt in dd.utt_ids:
        rec = dd.segments[utt].recording if dd.segments is not None else utt
        rec_utts.setdefault(rec, []).append(utt)
    prefixes: set[str] = set()
    for rec, res in ok.items():
        for v, (new_rec, n, info) in zip(variants(config, rec), res.outputs):
            prefixes.add(v.prefix)
            wav.append((new_rec, str((dst / "wav" / f"{new_rec}.{config.audio_format}").resolve())))
            reco2aug.append((new_rec, " ".join(f"{k}={_fmt(x)}" for k, x in info.items())))
            length = n / res.rate
            for utt in rec_utts.get(rec, []):
                new_utt = v.prefix + utt
                utt_of.append((new_utt, utt, v))
                if dd.segments is not None:
                    seg = dd.segments[utt]
                    start = seg.start / v.factor
                    end = length if seg.end == -1 else min(seg.end / v.factor, length)
                    segments.append((new_utt, f"{new_rec} {start:.3f} " + ("-1" if seg.end == -1 else f"{end:.3f}")))
                    utt2dur.append((new_utt, f"{end - start:.3f}"))
                    # samples as asr.data.audio cuts them from the written segment times
                    n_utt = min(int(round(end, 3) * res.rate), n) - int(round(start, 3) * res.rate)
                else:
                    utt2dur.append((new_utt, f"{length:.3f}"))
                    n_utt = n
                out_utts.append(OutUtt(new_utt, utt, v.factor, n_utt, res.rate))
    write_table(dst / "wav.scp", wav)
    write_table(dst / "reco2aug", reco2aug)
    if dd.segments is not None:
        write_table(dst / "segments", segments)
    write_table(dst / "utt2dur", utt2dur)
    spk = {new: v.prefix + dd.utt2spk[old] for new, old, v in utt_of}
    write_table(dst / "utt2spk", spk.items())
    write_spk2utt(dst / "spk2utt", spk)
    uniq = read_table(dd.path / "utt2uniq") if (dd.path / "utt2uniq").is_file() else {}
    write_table(dst / "utt2uniq", ((new, uniq.get(old, old)) for new, old, _ in utt_of))
    _carry_per_utt(dd.path, dst, utt_of, ("text", "utt2lang"))
    if (dd.path / "spk2gender").is_file():
        g = read_table(dd.path / "spk2gender")
        write_table(dst / "spk2gender", {v.prefix + dd.utt2spk[old]: g[dd.utt2spk[old]]
                                         for _, old, v in utt_of if dd.utt2spk[old] in g}.items())
    ctms = sorted(p.name for p in dd.path.glob("*.ctm"))
    for name in ctms:
        _carry_ctm(dd.path / name, dst / name, utt_of)
    atomic_write_text(dst / "excluded.txt", "".join(f"{rec} {why}\n" for rec, why in excluded))
    return {
        "source": str(dd.path),
        "recordings_in": len(results),
        "recordings_skipped": len(excluded),
        "utterances_in": len(dd.utt2spk),
        "utterances_out": len(utt_of),
        "copies_per_recording": len(variants(config, "")),
        "ids": sorted(prefixes),
        "ctm_files": ctms,
        "config": config.to_json(),
    }, out_utts


def read_reco2aug(data_dir: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Utterance -> what was done to its recording, from DATA_DIR/reco2aug as ``asr
    augment-data-dir`` writes it (``key=value`` items per recording; through ``segments``
    when there is one). Empty without reco2aug (e.g. a dir of Kaldi's own perturb scripts).
    E.g. ``{"rvb1-u1": {"speed": "1", "room": "test-5", "rt60": "0.385", "noise": "babble", ...}}``."""
    return _per_utterance(Path(data_dir), _read_reco2aug_recordings(Path(data_dir)))


def read_speed_factors(data_dir: str | os.PathLike) -> dict[str, float]:
    """Utterance -> the speed factor its audio was made with (``speed=`` in reco2aug, see
    ``read_reco2aug``); only utterances with a factor other than 1. E.g. ``{"rvb1-sp0.9-u1": 0.9}``."""
    speeds = {rec: float(items.get("speed", 1)) for rec, items in _read_reco2aug_recordings(Path(data_dir)).items()}
    per_rec = {rec: f for rec, f in speeds.items() if f != 1.0}
    return _per_utterance(Path(data_dir), per_rec) if per_rec else {}


def _read_reco2aug_recordings(data_dir: Path) -> dict[str, dict[str, str]]:
    """Recording -> its reco2aug items; a line that is not ``key=value`` items, a key given
    twice or a speed that is not a positive number is a one-line DataDirError naming the file
    and line (a recording listed twice: FormatError, as every table)."""
    import math

    from asr.io.tables import iter_table

    path = data_dir / "reco2aug"
    if not path.is_file():
        return {}
    out: dict[str, dict[str, str]] = {}
    for e in iter_table(path, unique=True):
        where = f"{path}:{e.line}: recording {e.key}"
        items: dict[str, str] = {}
        for item in e.value.split():
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise DataDirError(f"{where}: expected key=value, got {item!r}")
            if key in items:
                raise DataDirError(f"{where}: {key} given twice")
            items[key] = value
        if "speed" in items:
            try:
                factor = float(items["speed"])
            except ValueError:
                factor = -1.0
            if not (math.isfinite(factor) and factor > 0):
                raise DataDirError(f"{where}: bad 'speed={items['speed']}'")
        out[e.key] = items
    return out


def _per_utterance(data_dir: Path, per_rec: dict):
    """A per-recording table mapped to the utterances (through ``segments`` when there is one)."""
    seg_path = data_dir / "segments"
    if seg_path.is_file():
        from asr.data.datadir import parse_segment
        from asr.io.tables import iter_table

        utt_rec = {e.key: parse_segment(e.value, f"{seg_path}:{e.line}").recording for e in iter_table(seg_path)}
    else:
        utt_rec = {r: r for r in per_rec}
    return {u: per_rec[r] for u, r in utt_rec.items() if r in per_rec}


def _carry_per_utt(src: Path, dst: Path, utt_of, names) -> None:
    for name in names:
        if (src / name).is_file():
            table = read_table(src / name)
            write_table(dst / name, ((new, table[old]) for new, old, _ in utt_of if old in table))


def _carry_ctm(src: Path, dst: Path, utt_of) -> None:
    from asr.augment.alignments import scale_ctm_line

    lines: dict[str, list[str]] = {}
    with open(src, encoding="utf-8") as f:
        for raw in f:
            t = raw.split(maxsplit=1)
            if t and not t[0].startswith(";;"):
                lines.setdefault(t[0], []).append(raw)
    with atomic_write(dst) as f:
        for new, old, v in sorted(utt_of, key=lambda x: x[0].encode()):
            for raw in lines.get(old, ()):
                f.write(scale_ctm_line(raw, new, v.factor))


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x).replace(" ", "")


def _recording_speakers(dd: DataDir) -> dict[str, str]:
    out: dict[str, str] = {}
    for utt in dd.utt_ids:
        rec = dd.segments[utt].recording if dd.segments is not None else utt
        out.setdefault(rec, dd.utt2spk[utt])
    return out


def _first_rate(dd: DataDir, rec_ids: list[str]) -> int:
    """Sample rate of the first readable recording (the rate rooms are simulated at)."""
    from asr.data.audio import load_recording

    for rec in rec_ids[:50]:
        try:
            return load_recording(dd.wav[rec], utt=rec).rate
        except AudioError:
            continue
    raise DataDirError(f"{dd.path}: none of the first {min(50, len(rec_ids))} recordings can be read")


def _source_hash(src: Path, dd: DataDir) -> str:
    """What the copies are made from: the tables carried over, every ``*.ctm``, and a stamp
    of each recording's audio (asr.io.fingerprint.audio_stamp: audio replaced under the same
    wav.scp is augmented again)."""
    h = hashlib.sha256()
    names = ["wav.scp", "segments", "utt2spk", "text", "utt2lang", "spk2gender"]
    names += sorted(p.name for p in src.glob("*.ctm"))
    for name in names:
        p = src / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    for rec in sorted_ids(dd.wav):
        h.update(audio_stamp(dd.wav[rec]).encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()[:16]


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _clean(dst: Path) -> None:
    """Remove what a previous (unfinished or different) run left: augment.json first, then
    its audio and every file of the data dir, so that an interrupted run leaves no wav.scp
    pointing at removed audio. A non-empty ``dst`` that is not a data dir is refused."""
    check_replaceable(dst, ("augment.json",) + DATA_DIR_MARKERS)
    if (dst / "augment.json").exists():
        (dst / "augment.json").unlink()
    if (dst / "wav").exists():
        shutil.rmtree(dst / "wav")
    dst.mkdir(parents=True, exist_ok=True)
    for p in dst.iterdir():
        if p.is_file() or p.is_symlink():
            p.unlink()
    for p in dst.glob("*.ctm"):
        p.unlink()
