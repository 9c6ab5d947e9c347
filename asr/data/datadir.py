"""Kaldi data directories: read, subset.

A data dir holds Kaldi text tables, one ``key value`` per line, sorted by key (C locale):
``wav.scp`` (recording -> path or ``cmd |``), optional ``segments`` (utt -> rec start end),
``text`` (utt -> words), ``utt2spk``, ``spk2utt``, optional ``utt2dur``; after features
``feats.scp``, ``utt2num_frames``, ``cmvn.scp`` (per speaker). Without ``segments`` each
utterance is a whole recording and utterance ids are wav.scp keys.

``DataDir.load(path)`` reads a consistent dir (FormatError on duplicate ids or malformed
lines, naming file and line); ``asr.data.validate`` finds every problem of an inconsistent
one, ``asr.data.fix`` repairs it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr.errors import DataDirError, FormatError
from asr.io.atomic import atomic_dir
from asr.io.tables import read_table, write_table

# Files keyed by utterance / recording / speaker that subsetting and fixing carry along.
PER_UTT_FILES = ("text", "utt2spk", "segments", "utt2dur", "feats.scp", "utt2num_frames", "utt2uniq", "utt2lang")
PER_REC_FILES = ("wav.scp", "reco2file_and_channel", "reco2dur")
PER_SPK_FILES = ("cmvn.scp", "spk2gender")
# Files about the whole dir that subsetting copies as they are (fbank.conf: asr make-fbank's options).
WHOLE_DIR_FILES = ("fbank.conf",)
# an existing dir holding one of these is a data dir that a command writing one may replace
DATA_DIR_MARKERS = ("utt2spk", "wav.scp", "feats.scp", "text")


def sort_key(key: str) -> bytes:
    """Kaldi's sort order (``LC_ALL=C sort``): bytes of the UTF-8 key."""
    return key.encode("utf-8")


def sorted_ids(ids: Iterable[str]) -> list[str]:
    return sorted(ids, key=sort_key)


@dataclass(frozen=True)
class Segment:
    recording: str
    start: float
    end: float  # -1: to the end of the recording


def parse_segment(value: str, where: str) -> Segment:
    """Parse the value of a ``segments`` line (``rec start end``); ``where`` = "file:line"."""
    parts = value.split()
    if len(parts) != 3:
        raise FormatError(f"{where}: expected 'utt recording start end', got {len(parts) + 1} fields")
    try:
        start, end = float(parts[1]), float(parts[2])
    except ValueError:
        raise FormatError(f"{where}: start/end times {parts[1]!r} {parts[2]!r} are not numbers") from None
    if start < 0:
        raise FormatError(f"{where}: negative start time {start}")
    if end != -1 and end <= start:
        raise FormatError(f"{where}: end time {end} is not after start time {start}")
    return Segment(parts[0], start, end)


@dataclass
class DataDir:
    path: Path
    wav: dict[str, str]  # recording id -> path or "cmd |"
    utt2spk: dict[str, str]
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    spk2utt: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike, text: bool = True) -> "DataDir":
        """Read a data dir. Requires wav.scp and utt2spk; text, segments, utt2dur optional;
        spk2utt is derived from utt2spk. Raises DataDirError / FormatError. ``text=False``
        leaves the transcripts unread (``.text`` None): steps that do not need them (features)
        do not fail on them."""
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: no such data directory")
        for name in ("wav.scp", "utt2spk"):
            if not (path / name).is_file():
                raise DataDirError(f"{path}: missing {name}")
        wav = read_table(path / "wav.scp", allow_empty_value=False)
        utt2spk = read_table(path / "utt2spk", allow_empty_value=False)
        for utt, spk in utt2spk.items():
            if len(spk.split()) != 1:
                raise FormatError(f"{path / 'utt2spk'}: utterance {utt}: speaker {spk!r} is not one token")
        transcripts = read_table(path / "text") if text and (path / "text").is_file() else None
        segments = None
        if (path / "segments").is_file():
            segments = {}
            from asr.io.tables import iter_table

            for e in iter_table(path / "segments"):
                if e.key in segments:
                    raise FormatError(f"{path / 'segments'}:{e.line}: duplicate key {e.key!r}")
                segments[e.key] = parse_segment(e.value, f"{path / 'segments'}:{e.line}")
        utt2dur = None
        if (path / "utt2dur").is_file():
            utt2dur = {}
            for utt, v in read_table(path / "utt2dur", allow_empty_value=False).items():
                try:
                    utt2dur[utt] = float(v)
                except ValueError:
                    raise FormatError(f"{path / 'utt2dur'}: utterance {utt}: duration {v!r} is not a number") from None
        dd = cls(path, wav, utt2spk, transcripts, segments, utt2dur)
        dd.spk2utt = spk2utt_of(utt2spk)
        return dd

    @property
    def utt_ids(self) -> list[str]:
        """Sorted utterance ids (from utt2spk)."""
        return sorted_ids(self.utt2spk)

    def audio_spec(self, utt: str) -> tuple[str, str, float | None, float | None]:
        """``(recording_id, wav.scp value, start, end)`` of an utterance (start/end None when
        the utterance is the whole recording). Raises DataDirError when it has no audio."""
        if self.segments is not None:
            seg = self.segments.get(utt)
            if seg is None:
                raise DataDirError(f"{self.path / 'segments'}: utterance {utt} has no segment")
            spec = self.wav.get(seg.recording)
            if spec is None:
                raise DataDirError(f"{self.path / 'wav.scp'}: recording {seg.recording} of utterance {utt} is missing")
            return seg.recording, spec, seg.start, seg.end
        spec = self.wav.get(utt)
        if spec is None:
            raise DataDirError(f"{self.path / 'wav.scp'}: utterance {utt} is missing")
        return utt, spec, None, None


def spk2utt_of(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    """spk -> sorted utterance ids, speakers in sorted order."""
    out: dict[str, list[str]] = {}
    for utt in sorted_ids(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return {spk: out[spk] for spk in sorted_ids(out)}


def write_spk2utt(path: str | os.PathLike, utt2spk: dict[str, str]) -> None:
    write_table(path, ((spk, " ".join(utts)) for spk, utts in spk2utt_of(utt2spk).items()))


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, utt_ids: Iterable[str]) -> Path:
    """Write the data dir ``dst`` holding only ``utt_ids`` of ``src`` (every per-utterance,
    per-recording and per-speaker file that exists is filtered; spk2utt regenerated).
    Unknown ids are a DataDirError."""
    src, dst = Path(src), Path(dst)
    dd = DataDir.load(src)
    keep = set(utt_ids)
    unknown = keep - dd.utt2spk.keys()
    if unknown:
        raise DataDirError(f"{src}: {len(unknown)} requested utterances not in utt2spk, e.g. {sorted_ids(unknown)[0]}")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise DataDirError(f"{src}: subset destination must differ from the source")
    recs = {dd.segments[u].recording for u in keep} if dd.segments is not None else keep
    spks = {dd.utt2spk[u] for u in keep}
    # built whole and swapped in: an earlier subset's files that the source no longer has
    # (e.g. a cmvn.scp of features since recomputed) do not survive
    with atomic_dir(dst, replaces=DATA_DIR_MARKERS) as tmp:
        for names, ids in ((PER_UTT_FILES, keep), (PER_REC_FILES, recs), (PER_SPK_FILES, spks)):
            for name in names:
                if (src / name).is_file():
                    table = read_table(src / name)
                    write_table(tmp / name, ((k, v) for k, v in table.items() if k in ids))
        write_spk2utt(tmp / "spk2utt", {u: dd.utt2spk[u] for u in keep})
        for name in WHOLE_DIR_FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, tmp / name)
    return dst
