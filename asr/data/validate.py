"""Find every problem of a Kaldi data dir (``asr validate-data-dir``), each with file and line.

Checked: required files (wav.scp, utt2spk, text, spk2utt); per file: blank or malformed lines,
duplicate ids, unsorted ids (C locale); wav.scp: missing or unreadable audio files, and
(with ``check_audio``) files libsndfile cannot open; segments: malformed lines, unknown
recordings, segments past the end of their audio (beyond Kaldi's 0.5 s tolerance);
text: utterances without text, empty text, text for unknown utterances; utt2spk vs
spk2utt agreement and speakers with no utterances; utt2spk sorted also by speaker (Kaldi's
requirement: speaker id a prefix of utterance ids); utterances without audio; feats.scp,
utt2num_frames, utt2dur, cmvn.scp, spk2gender keys (and m/f genders).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from asr.data.audio import MAX_OVERSHOOT, is_pipe
from asr.data.datadir import parse_segment, sort_key
from asr.errors import FormatError
from asr.io.tables import utf8_error


@dataclass(frozen=True)
class Problem:
    file: str  # file name inside the data dir ("" for the dir itself)
    line: int  # 1-based, 0 when not about one line
    message: str

    def format(self, data_dir: Path) -> str:
        where = str(data_dir / self.file) if self.file else str(data_dir)
        return f"{where}:{self.line}: {self.message}" if self.line else f"{where}: {self.message}"


@dataclass
class Line:
    key: str
    value: str
    line: int


class LenientTable:
    """A leniently read table: problems recorded, first occurrence wins. Lines left out (empty,
    not UTF-8, a duplicate id) are also in ``skipped``."""

    def __init__(self, data_dir: Path, name: str, problems: list[Problem], need_value: bool = True):
        self.name = name
        self.lines: list[Line] = []
        self.first: dict[str, Line] = {}
        self.skipped: list[Problem] = []
        prev: Line | None = None
        for lineno, raw in enumerate((data_dir / name).read_bytes().splitlines(), 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                self._skip(problems, Problem(name, lineno, utf8_error(e)))
                continue
            if not line:
                self._skip(problems, Problem(name, lineno, "empty line"))
                continue
            parts = line.split(maxsplit=1)
            entry = Line(parts[0], parts[1].strip() if len(parts) > 1 else "", lineno)
            if need_value and not entry.value:
                problems.append(Problem(name, lineno, f"id {entry.key!r} has no value"))
            if entry.key in self.first:
                self._skip(problems, Problem(name, lineno, f"duplicate id {entry.key!r} (first on line {self.first[entry.key].line})"))
                continue
            if prev is not None and sort_key(entry.key) < sort_key(prev.key):
                problems.append(Problem(name, lineno, f"not sorted: {entry.key!r} after {prev.key!r} (line {prev.line}); run `asr fix-data-dir`"))
            self.first[entry.key] = entry
            self.lines.append(entry)
            prev = entry

    def _skip(self, problems: list[Problem], p: Problem) -> None:
        problems.append(p)
        self.skipped.append(p)

    def __contains__(self, key: str) -> bool:
        return key in self.first

    def keys(self):
        return self.first.keys()


def validate_data_dir(data_dir: str | os.PathLike, check_audio: bool = True) -> list[Problem]:
    """Every problem of the data dir, in file order. Empty list = valid."""
    d = Path(data_dir)
    problems: list[Problem] = []
    if not d.is_dir():
        return [Problem("", 0, "no such data directory")]
    tables: dict[str, LenientTable] = {}
    for name in ("wav.scp", "utt2spk", "text", "spk2utt"):
        if not (d / name).is_file():
            hint = " (run `asr fix-data-dir` to create it)" if name == "spk2utt" else ""
            problems.append(Problem(name, 0, f"missing{hint}"))
    for name in _FILE_ORDER[1:]:
        if (d / name).is_file():
            tables[name] = LenientTable(d, name, problems, need_value=(name not in ("text", "spk2utt")))

    wav, utt2spk, text = tables.get("wav.scp"), tables.get("utt2spk"), tables.get("text")
    segments, spk2utt = tables.get("segments"), tables.get("spk2utt")

    # wav.scp: audio files
    durations: dict[str, float] = {}
    if wav is not None:
        for e in wav.lines:
            if not e.value or is_pipe(e.value):
                continue
            if len(e.value.split()) != 1:
                problems.append(Problem("wav.scp", e.line, f"recording {e.key}: {e.value!r} is neither a file path nor a command ending in '|'"))
            elif not os.path.isfile(e.value):
                problems.append(Problem("wav.scp", e.line, f"recording {e.key}: audio file {e.value} does not exist"))
            elif not os.access(e.value, os.R_OK):
                problems.append(Problem("wav.scp", e.line, f"recording {e.key}: audio file {e.value} is not readable"))
            elif check_audio:
                dur = _duration(e.value)
                if isinstance(dur, str):
                    problems.append(Problem("wav.scp", e.line, f"recording {e.key}: cannot read audio {e.value}: {dur}"))
                else:
                    durations[e.key] = dur

    # segments
    if segments is not None:
        for e in segments.lines:
            try:
                seg = parse_segment(e.value, "")
            except FormatError as err:
                problems.append(Problem("segments", e.line, f"utterance {e.key}{err}"))
                continue
            if wav is not None and seg.recording not in wav:
                problems.append(Problem("segments", e.line, f"utterance {e.key}: recording {seg.recording} is not in wav.scp"))
            dur = durations.get(seg.recording)
            if dur is not None:
                if seg.start >= dur:
                    problems.append(Problem("segments", e.line, f"utterance {e.key}: starts at {seg.start} s, after the end of {seg.recording} ({dur:.3f} s)"))
                elif seg.end != -1 and seg.end - dur > MAX_OVERSHOOT:
                    problems.append(Problem("segments", e.line, f"utterance {e.key}: ends at {seg.end} s, past the end of {seg.recording} ({dur:.3f} s)"))

    # utterances: audio, text, speaker
    if utt2spk is not None:
        prev_spk: Line | None = None
        for e in utt2spk.lines:
            if e.value and len(e.value.split()) != 1:
                problems.append(Problem("utt2spk", e.line, f"utterance {e.key}: speaker {e.value!r} is not one token"))
            if segments is not None:
                if e.key not in segments:
                    problems.append(Problem("utt2spk", e.line, f"utterance {e.key} has no segment in segments"))
            elif wav is not None and e.key not in wav:
                problems.append(Problem("utt2spk", e.line, f"utterance {e.key} has no audio in wav.scp"))
            if text is not None and e.key not in text:
                problems.append(Problem("utt2spk", e.line, f"utterance {e.key} has no text"))
            if e.value and prev_spk is not None and sort_key(e.value) < sort_key(prev_spk.value):
                problems.append(Problem("utt2spk", e.line, f"utterance {e.key}: speaker {e.value!r} sorts before {prev_spk.value!r} of line {prev_spk.line}; utterance ids must start with the speaker id so both orders agree"))
            if e.value:
                prev_spk = e
    if text is not None:
        for e in text.lines:
            if not e.value:
                problems.append(Problem("text", e.line, f"utterance {e.key}: empty text"))
            if utt2spk is not None and e.key not in utt2spk:
                problems.append(Problem("text", e.line, f"utterance {e.key} is not in utt2spk"))
    if segments is not None and utt2spk is not None:
        for e in segments.lines:
            if e.key not in utt2spk:
                problems.append(Problem("segments", e.line, f"utterance {e.key} is not in utt2spk"))
    elif wav is not None and utt2spk is not None:
        for e in wav.lines:
            if e.key not in utt2spk:
                problems.append(Problem("wav.scp", e.line, f"utterance {e.key} is not in utt2spk"))

    # spk2utt agreement
    if spk2utt is not None and utt2spk is not None:
        listed: dict[str, tuple[str, int]] = {}
        for e in spk2utt.lines:
            utts = e.value.split()
            if not utts:
                problems.append(Problem("spk2utt", e.line, f"speaker {e.key} has no utterances"))
            for u in utts:
                if u in listed:
                    problems.append(Problem("spk2utt", e.line, f"utterance {u} listed twice (also speaker {listed[u][0]} on line {listed[u][1]})"))
                    continue
                listed[u] = (e.key, e.line)
                if u not in utt2spk:
                    problems.append(Problem("spk2utt", e.line, f"speaker {e.key}: utterance {u} is not in utt2spk"))
                elif utt2spk.first[u].value != e.key:
                    problems.append(Problem("spk2utt", e.line, f"speaker {e.key}: utterance {u} belongs to speaker {utt2spk.first[u].value} in utt2spk (line {utt2spk.first[u].line})"))
        for e in utt2spk.lines:
            if e.key not in listed:
                problems.append(Problem("utt2spk", e.line, f"utterance {e.key} (speaker {e.value}) is missing from spk2utt"))

    # optional per-utterance / per-speaker files
    if utt2spk is not None:
        for name in ("utt2dur", "feats.scp", "utt2num_frames"):
            t = tables.get(name)
            if t is None:
                continue
            for e in t.lines:
                if e.key not in utt2spk:
                    problems.append(Problem(name, e.line, f"utterance {e.key} is not in utt2spk"))
        for name in ("utt2dur", "utt2num_frames"):
            t = tables.get(name)
            for e in t.lines if t is not None else ():
                try:
                    float(e.value)
                except ValueError:
                    problems.append(Problem(name, e.line, f"utterance {e.key}: {e.value!r} is not a number"))
        if "feats.scp" in tables:
            for e in utt2spk.lines:
                if e.key not in tables["feats.scp"]:
                    problems.append(Problem("utt2spk", e.line, f"utterance {e.key} has no features in feats.scp"))
        if "cmvn.scp" in tables:
            speakers = {e.value for e in utt2spk.lines}
            for e in tables["cmvn.scp"].lines:
                if e.key not in speakers:
                    problems.append(Problem("cmvn.scp", e.line, f"speaker {e.key} has no utterances in utt2spk"))
            for spk in sorted(speakers - tables["cmvn.scp"].keys(), key=sort_key):
                problems.append(Problem("cmvn.scp", 0, f"speaker {spk} has no CMVN stats"))
        if "spk2gender" in tables:  # Kaldi: one line per speaker of utt2spk, gender m or f
            speakers = {e.value for e in utt2spk.lines}
            for e in tables["spk2gender"].lines:
                if e.key not in speakers:
                    problems.append(Problem("spk2gender", e.line, f"speaker {e.key} has no utterances in utt2spk"))
                if e.value not in ("m", "f"):
                    problems.append(Problem("spk2gender", e.line, f"speaker {e.key}: gender {e.value!r} is not m or f"))
            for spk in sorted(speakers - tables["spk2gender"].keys(), key=sort_key):
                problems.append(Problem("spk2gender", 0, f"speaker {spk} has no gender"))
    order = {name: i for i, name in enumerate(_FILE_ORDER)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line))
    return problems


_FILE_ORDER = ("", "wav.scp", "segments", "utt2spk", "spk2utt", "text", "utt2dur", "feats.scp", "utt2num_frames", "cmvn.scp",
               "spk2gender")


def _duration(path: str) -> float | str:
    """Duration in seconds, or the reason libsndfile cannot open the file."""
    import soundfile as sf

    if os.path.getsize(path) == 0:
        return "empty file"
    try:
        info = sf.info(path)
    except Exception as e:
        return str(e)
    if info.samplerate <= 0:
        return "invalid sample rate"
    from asr.data.audio import wav_truncation

    short = wav_truncation(path, info.frames, info.samplerate)
    if short is not None:
        return f"truncated: {short}"
    return info.frames / info.samplerate
