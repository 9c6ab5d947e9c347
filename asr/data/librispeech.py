"""LibriSpeech → Kaldi data dirs (``asr prep-librispeech``): Kaldi's ``local/data_prep.sh`` in Python.

A LibriSpeech part (``LibriSpeech/dev-clean``, ``train-clean-100``, ``train-clean-5`` of
mini_librispeech ...) is laid out as::

    PART/READER/CHAPTER/READER-CHAPTER.trans.txt     "READER-CHAPTER-UTT WORDS ..." per line
    PART/READER/CHAPTER/READER-CHAPTER-UTT.flac      16 kHz FLAC
    PART/../SPEAKERS.TXT                              ";ID | SEX | SUBSET | MINUTES | NAME"

The data dir gets Kaldi's ids: utterance ``READER-CHAPTER-UTT``, speaker ``READER-CHAPTER``
(one speaker per reader and chapter, as Kaldi's recipe, so CMVN is per chapter), and
``wav.scp`` (utterance → absolute FLAC path, read by soundfile: no ``flac`` binary),
``text`` (the transcript as given, upper case), ``utt2spk``, ``spk2utt``, ``spk2gender``
(m/f from SPEAKERS.TXT), ``utt2dur`` (from the FLAC headers). Several parts combine into one
dir (``train-clean-100 train-clean-360 train-other-500`` → a 960 h train dir).

Odd cases are skipped, counted and named (file and reason), never silently:
a chapter without a transcript file, a transcript line whose audio is missing, audio without
a transcript line, a malformed transcript line (one that is not UTF-8 too), an unreadable
FLAC, an utterance id seen in two parts. A reader missing from SPEAKERS.TXT keeps its utterances, but then no
``spk2gender`` is written (Kaldi requires one line per speaker). The dir is written beside
DST and renamed into place at the end, so an interrupted run leaves no dir that looks done.

Example::

    >>> s = prepare_librispeech(["LibriSpeech/dev-clean"], "data/dev_clean")   # doctest: +SKIP
    >>> s.utterances, s.speakers, round(s.hours, 2)                               # doctest: +SKIP
    (2703, 97, 5.39)
"""

from __future__ import annotations

import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from asr.data.datadir import DATA_DIR_MARKERS
from asr.errors import DataDirError, FormatError
from asr.io.atomic import atomic_dir, atomic_write_text
from asr.io.tables import utf8_error, write_table

log = logging.getLogger(__name__)

SPEAKERS_FILE = "SPEAKERS.TXT"
_UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_MAX_LOGGED = 20  # skip messages logged one by one; all of them go to DST/prep_skipped.txt

# what can be skipped (the keys of PrepSummary.skipped)
SKIP_REASONS = (
    "chapter_without_transcript",
    "utterance_without_audio",
    "audio_without_transcript",
    "bad_transcript_line",
    "unreadable_audio",
    "duplicate_utterance",
)


@dataclass(frozen=True)
class Utterance:
    """One LibriSpeech utterance: ``utt`` = ``READER-CHAPTER-UTT``, ``speaker`` = ``READER-CHAPTER``."""

    utt: str
    speaker: str
    reader: str
    flac: Path
    text: str


@dataclass
class PrepSummary:
    """What ``prepare_librispeech`` wrote (also saved as ``DST/prep.json``)."""

    parts: list[str]
    utterances: int = 0
    speakers: int = 0
    readers: int = 0
    hours: float = 0.0
    genders: dict[str, int] = field(default_factory=dict)  # readers per gender
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    readers_without_gender: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())


class _Skips:
    """Skip messages: counted per reason, the first few logged, all kept."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, reason: str, where: Path | str, message: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        line = f"{where}: {message} ({reason}; skipped)"
        self.lines.append(line)
        if len(self.lines) <= _MAX_LOGGED:
            log.warning("%s", line)
        elif len(self.lines) == _MAX_LOGGED + 1:
            log.warning("more skipped items: see prep_skipped.txt in the output dir")


def read_speakers_txt(path: str | os.PathLike) -> dict[str, str]:
    """``SPEAKERS.TXT`` → reader id → ``"m"`` / ``"f"``. Lines starting with ``;`` are comments;
    fields are separated by ``|`` (a name may itself hold ``|``, as reader 60's does)."""
    path = Path(path)
    out: dict[str, str] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith(";"):
                continue
            fields = [x.strip() for x in line.split("|", 4)]
            if len(fields) < 2 or not fields[0].isdigit() or fields[1].upper() not in ("M", "F"):
                raise FormatError(f"{path}:{lineno}: expected 'ID | SEX | SUBSET | MINUTES | NAME' with SEX M or F")
            out[fields[0]] = fields[1].lower()
    return out


def scan_part(part_dir: str | os.PathLike, skips: _Skips) -> Iterator[Utterance]:
    """The utterances of one part, in directory order (reader, chapter, transcript line).
    Odd cases go to ``skips``."""
    part = Path(part_dir).resolve()
    if not part.is_dir():
        raise DataDirError(f"{part_dir}: no such LibriSpeech part directory")
    for reader_dir in _subdirs(part):
        for chapter_dir in _subdirs(reader_dir):
            reader, chapter = reader_dir.name, chapter_dir.name
            trans = chapter_dir / f"{reader}-{chapter}.trans.txt"
            flacs = {p.stem: p for p in chapter_dir.iterdir() if p.suffix == ".flac" and p.is_file()}
            if not trans.is_file():
                skips.add("chapter_without_transcript", chapter_dir,
                          f"no transcript file {trans.name}; its {len(flacs)} FLAC files are left out")
                continue
            listed: set[str] = set()
            with open(trans, "rb") as f:
                for lineno, raw_bytes in enumerate(f, 1):
                    try:
                        raw = raw_bytes.decode("utf-8")
                    except UnicodeDecodeError as e:
                        skips.add("bad_transcript_line", f"{trans}:{lineno}", utf8_error(e))
                        listed.update(b.decode("utf-8", "replace") for b in raw_bytes.split(maxsplit=1)[:1])
                        continue
                    parts = raw.split(maxsplit=1)
                    if not parts:
                        continue
                    utt = parts[0]
                    m = _UTT_ID.match(utt)
                    if len(parts) < 2 or not parts[1].strip():
                        skips.add("bad_transcript_line", f"{trans}:{lineno}", f"utterance {utt} has no words")
                        listed.add(utt)
                        continue
                    if m is None or (m.group(1), m.group(2)) != (reader, chapter):
                        skips.add("bad_transcript_line", f"{trans}:{lineno}",
                                  f"id {utt!r} is not {reader}-{chapter}-NNNN")
                        listed.add(utt)
                        continue
                    listed.add(utt)
                    flac = flacs.get(utt)
                    if flac is None:
                        skips.add("utterance_without_audio", f"{trans}:{lineno}",
                                  f"utterance {utt} is listed but {chapter_dir / (utt + '.flac')} does not exist")
                        continue
                    yield Utterance(utt, f"{reader}-{chapter}", reader, flac, " ".join(parts[1].split()))
            for stem in sorted(set(flacs) - listed):
                skips.add("audio_without_transcript", flacs[stem], f"no line for {stem} in {trans.name}")


def prepare_librispeech(
    parts: Iterable[str | os.PathLike],
    dst: str | os.PathLike,
    speakers_txt: str | os.PathLike | None = None,
    nj: int = 4,
) -> PrepSummary:
    """Write the Kaldi data dir ``dst`` from one or more LibriSpeech parts (see the module doc).
    ``speakers_txt``: SPEAKERS.TXT (default: the one beside each part). ``nj``: threads reading
    FLAC headers. Returns the summary (also in ``dst/prep.json``)."""
    parts = [Path(p) for p in parts]
    if not parts:
        raise DataDirError("prep-librispeech: no part directories given")
    for p in parts:
        if not p.is_dir():
            raise DataDirError(f"{p}: no such LibriSpeech part directory")
    dst = Path(dst)
    skips = _Skips()
    genders = _genders(parts, speakers_txt)
    utts: dict[str, Utterance] = {}
    for part in parts:
        n0 = len(utts)
        for u in scan_part(part, skips):
            if u.utt in utts:
                skips.add("duplicate_utterance", u.flac, f"utterance {u.utt} already read from {utts[u.utt].flac}")
                continue
            utts[u.utt] = u
        log.info("%s: %d utterances", part, len(utts) - n0)
    durations = _durations(list(utts.values()), skips, nj)
    kept = [utts[k] for k in sorted(durations, key=lambda k: k.encode("utf-8"))]
    if not kept:
        raise DataDirError(f"no usable utterance in {', '.join(map(str, parts))}"
                           + (f" ({len(skips.lines)} skipped; first: {skips.lines[0]})" if skips.lines else ""))
    readers = sorted({u.reader for u in kept}, key=int)
    no_gender = [r for r in readers if r not in genders] if genders is not None else readers
    summary = PrepSummary(
        parts=[str(p) for p in parts], utterances=len(kept), speakers=len({u.speaker for u in kept}),
        readers=len(readers), hours=round(sum(durations.values()) / 3600, 4),
        skipped=dict(sorted(skips.counts.items())), readers_without_gender=no_gender,
    )
    if genders is not None:
        for r in readers:
            if r in genders:
                summary.genders[genders[r]] = summary.genders.get(genders[r], 0) + 1
    if genders is not None and no_gender:
        log.warning("%d readers are not in SPEAKERS.TXT (e.g. %s): no spk2gender written", len(no_gender), no_gender[0])
    _write_dir(dst, kept, durations, genders if not no_gender else None, summary, skips)
    return summary


def _subdirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir()), key=lambda p: p.name)


def _genders(parts: list[Path], speakers_txt) -> dict[str, str] | None:
    """Reader genders from the given SPEAKERS.TXT, else from the one beside each part (as
    given, else as resolved: a linked part); None when there is none at all."""
    if speakers_txt is not None:
        return read_speakers_txt(speakers_txt)
    out: dict[str, str] = {}
    found = False
    for part in parts:
        # beside the part as given (a part may be a link to another disk), else beside its target
        for d in dict.fromkeys((Path(os.path.abspath(part)).parent, part.resolve().parent)):
            p = d / SPEAKERS_FILE
            if p.is_file():
                found = True
                out.update(read_speakers_txt(p))
                break
    if not found:
        log.warning("no %s beside %s: no spk2gender written", SPEAKERS_FILE, parts[0])
        return None
    return out


def _durations(utts: list[Utterance], skips: _Skips, nj: int) -> dict[str, float]:
    """utt → seconds from the FLAC header; unreadable files are skipped."""
    import soundfile as sf
    from tqdm import tqdm

    def info(u: Utterance):
        try:
            if os.path.getsize(u.flac) == 0:
                return u, "empty file"
            i = sf.info(str(u.flac))
        except Exception as e:  # libsndfile errors, OSError
            return u, str(e).strip() or type(e).__name__
        if i.samplerate <= 0 or i.frames <= 0:
            return u, "no samples"
        return u, i.frames / i.samplerate

    out: dict[str, float] = {}
    with ThreadPoolExecutor(max(1, nj)) as pool:
        for u, d in tqdm(pool.map(info, utts), total=len(utts), desc="prep-librispeech", unit="utt",
                         disable=None, leave=False):
            if isinstance(d, str):
                skips.add("unreadable_audio", u.flac, f"cannot read the FLAC file: {d}")
            else:
                out[u.utt] = d
    return out


def _write_dir(dst: Path, utts: list[Utterance], durations: dict[str, float], genders: dict[str, str] | None,
               summary: PrepSummary, skips: _Skips) -> None:
    """Write everything into a temporary dir, then swap it in (an existing ``dst`` is replaced
    only when it is a data dir: a mistyped DST such as a corpus part is an error, not deleted)."""
    with atomic_dir(dst, replaces=DATA_DIR_MARKERS) as tmp:
        write_table(tmp / "wav.scp", [(u.utt, str(u.flac)) for u in utts])
        write_table(tmp / "text", [(u.utt, u.text) for u in utts])
        write_table(tmp / "utt2spk", [(u.utt, u.speaker) for u in utts])
        spk2utt: dict[str, list[str]] = {}
        for u in utts:
            spk2utt.setdefault(u.speaker, []).append(u.utt)
        write_table(tmp / "spk2utt", [(s, " ".join(v)) for s, v in spk2utt.items()])
        if genders is not None:
            write_table(tmp / "spk2gender", [(s, genders[s.split("-")[0]]) for s in spk2utt])
        write_table(tmp / "utt2dur", [(u.utt, f"{durations[u.utt]:.3f}") for u in utts])
        if skips.lines:
            atomic_write_text(tmp / "prep_skipped.txt", "".join(line + "\n" for line in skips.lines))
        atomic_write_text(tmp / "prep.json", json.dumps(asdict(summary), indent=1) + "\n")
