"""Repair a Kaldi data dir (``asr fix-data-dir``, after Kaldi's fix_data_dir.sh).

Keeps the utterances that have everything (speaker, audio, non-empty text, and features /
durations where those files exist), the recordings they use and their speakers; drops
duplicate lines (first wins), malformed lines, missing or unreadable audio, segments on
unknown recordings or past the end of the audio, lines that are not UTF-8; sorts every file;
regenerates spk2utt. The files as they were are copied to ``DIR/.backup/`` first, as Kaldi's
fix_data_dir.sh does, but a backup is never overwritten: when ``.backup`` is there (an earlier
run), ``.backup.1``, ``.backup.2`` ... is used; when nothing needs fixing no file is touched
and no backup made. Every drop is reported, a dropped utterance with its transcript.
"""

from __future__ import annotations

import filecmp
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.audio import MAX_OVERSHOOT, is_pipe
from asr.data.datadir import PER_REC_FILES, PER_SPK_FILES, PER_UTT_FILES, parse_segment, write_spk2utt
from asr.data.validate import LenientTable, Problem, _duration
from asr.errors import DataDirError, FormatError
from asr.io.tables import write_table

BACKUP_DIR = ".backup"


@dataclass
class FixReport:
    dropped: list[str] = field(default_factory=list)  # one line per dropped item, with the reason
    num_utts: int = 0
    num_speakers: int = 0
    num_recordings: int = 0
    num_dropped_utts: int = 0
    backup: Path | None = None  # where the originals went; None when nothing changed


def fix_data_dir(data_dir: str | os.PathLike, check_audio: bool = True) -> FixReport:
    d = Path(data_dir)
    for name in ("wav.scp", "utt2spk"):
        if not (d / name).is_file():
            raise DataDirError(f"{d}: missing {name}; cannot fix")
    report = FixReport()
    problems: list[Problem] = []  # duplicates etc. found while reading; turned into drop lines
    names = [n for n in (*PER_UTT_FILES, *PER_REC_FILES, *PER_SPK_FILES) if (d / n).is_file()]
    tables = {n: LenientTable(d, n, problems, need_value=(n != "text")) for n in names}
    report.dropped += [p.format(d) + " (dropped)" for t in tables.values() for p in t.skipped]

    wav = tables["wav.scp"]
    durations: dict[str, float] = {}
    good_recs: set[str] = set()
    for e in wav.lines:
        reason = None
        if not e.value:
            reason = "no audio path"
        elif is_pipe(e.value):
            pass
        elif not os.path.isfile(e.value) or not os.access(e.value, os.R_OK):
            reason = f"audio file {e.value} missing or unreadable"
        elif check_audio:
            dur = _duration(e.value)
            if isinstance(dur, str):
                reason = f"cannot read audio {e.value}: {dur}"
            else:
                durations[e.key] = dur
        if reason:
            report.dropped.append(f"{d / 'wav.scp'}:{e.line}: recording {e.key} dropped: {reason}")
        else:
            good_recs.add(e.key)

    segs = tables.get("segments")
    utt_rec: dict[str, str] = {}
    if segs is not None:
        for e in segs.lines:
            try:
                seg = parse_segment(e.value, "")
            except FormatError as err:
                report.dropped.append(f"{d / 'segments'}:{e.line}: utterance {e.key} dropped{err}")
                continue
            dur = durations.get(seg.recording)
            if seg.recording not in good_recs:
                report.dropped.append(f"{d / 'segments'}:{e.line}: utterance {e.key} dropped: recording {seg.recording} missing or unreadable")
            elif dur is not None and (seg.start >= dur or (seg.end != -1 and seg.end - dur > MAX_OVERSHOOT)):
                report.dropped.append(f"{d / 'segments'}:{e.line}: utterance {e.key} dropped: segment {seg.start}-{seg.end} s past the end of {seg.recording} ({dur:.3f} s)")
            else:
                utt_rec[e.key] = seg.recording
    else:
        utt_rec = {r: r for r in good_recs}

    u2s = tables["utt2spk"]
    text = tables.get("text")

    def transcript(utt: str) -> str:
        return f"; text: {text.first[utt].value}" if text is not None and utt in text and text.first[utt].value else ""

    keep: dict[str, str] = {}
    for e in u2s.lines:
        reason = None
        if len(e.value.split()) != 1:
            reason = f"speaker {e.value!r} is not one token"
        elif e.key not in utt_rec:
            reason = "no usable audio"
        elif text is not None and not (e.key in text and text.first[e.key].value):
            reason = "no text" if e.key not in text else "empty text"
        else:
            for name in ("feats.scp", "utt2dur", "utt2num_frames"):
                if name in tables and e.key not in tables[name]:
                    reason = f"not in {name}"
                    break
        if reason:
            report.dropped.append(f"{d / 'utt2spk'}:{e.line}: utterance {e.key} dropped: {reason}{transcript(e.key)}")
        else:
            keep[e.key] = e.value
    for name in ("text", "segments", "feats.scp", "utt2dur", "utt2num_frames") + (("wav.scp",) if segs is None else ()):
        t = tables.get(name)
        for e in t.lines if t is not None else ():
            if e.key not in u2s:
                report.dropped.append(f"{d / name}:{e.line}: utterance {e.key} dropped: not in utt2spk"
                                      + (transcript(e.key) if name == "text" else ""))
    if not keep:
        raise DataDirError(f"{d}: no utterance has everything it needs; nothing left to keep (data dir unchanged)")

    used_recs = {utt_rec[u] for u in keep}
    if segs is not None:
        for e in wav.lines:
            if e.key in good_recs and e.key not in used_recs:
                report.dropped.append(f"{d / 'wav.scp'}:{e.line}: recording {e.key} dropped: no utterance uses it")
    speakers = set(keep.values())

    # the fixed files are written aside first: when they are the files as they are, nothing is
    # touched and no backup is made (a re-run does not pile up copies)
    new = Path(tempfile.mkdtemp(prefix=".fix.", dir=d))
    try:
        for name, t in tables.items():
            ids = keep if name in PER_UTT_FILES else used_recs if name in PER_REC_FILES else speakers
            write_table(new / name, ((e.key, e.value) for e in t.lines if e.key in ids))
        write_spk2utt(new / "spk2utt", keep)
        written = sorted(p.name for p in new.iterdir())
        if not all((d / n).is_file() and filecmp.cmp(d / n, new / n, shallow=False) for n in written):
            report.backup = _new_backup_dir(d)
            for name in names + (["spk2utt"] if (d / "spk2utt").is_file() else []):
                shutil.copy2(d / name, report.backup / name)
            for name in written:
                os.replace(new / name, d / name)
    finally:
        shutil.rmtree(new, ignore_errors=True)
    report.num_utts, report.num_speakers, report.num_recordings = len(keep), len(speakers), len(used_recs)
    report.num_dropped_utts = len(u2s.lines) - len(keep)
    return report


def _new_backup_dir(d: Path) -> Path:
    """A new, empty ``d/.backup``, or ``d/.backup.N`` (the first free N) when an earlier run's
    backup is there: the originals it holds are never overwritten."""
    for n in itertools.count():
        backup = d / (BACKUP_DIR if n == 0 else f"{BACKUP_DIR}.{n}")
        try:
            backup.mkdir()
            return backup
        except FileExistsError:
            continue
