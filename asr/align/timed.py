"""Time-stamped phone/word labels: CTM and Praat TextGrid readers, and their conversion to
frame-level phone instances.

Frame convention (``--frame-convention``):
- ``center`` (default): frame k's window is [k·shift, k·shift + length); it belongs to the
  label whose interval contains the window centre k·shift + length/2;
- ``kaldi``: frame k stands for time k·shift (as ``ali-to-phones --ctm-output`` writes);
  it belongs to the label containing (k + 0.5)·shift.
Frames before the first label go to the first, after the last label to the last; frames
in gaps between labels become the optional-silence phone.

The number of frames a labelled duration implies is Kaldi's (snip-edges) count for audio
of that duration: 1 + floor((end − length) / shift).
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import FormatError

log = logging.getLogger(__name__)


@dataclass
class Interval:
    start: float
    end: float
    label: str
    where: str = ""  # "file:line" of a CTM line (for messages)


def first_overlap(ivs: list[Interval], tolerance: float) -> str | None:
    """The first two of ``ivs`` (sorted by start) that overlap by more than ``tolerance``
    seconds (rounded times overlap a little), as a message; None when none do (one
    utterance's phones follow each other, maybe with gaps)."""
    for a, b in zip(ivs, ivs[1:]):
        if b.start < a.end - tolerance:
            return (f"{b.where or 'phone'} {b.label} at {b.start:g}-{b.end:g} s overlaps {a.where or 'phone'} "
                    f"{a.label} at {a.start:g}-{a.end:g} s")
    return None


def read_ctm(path: str | os.PathLike) -> dict[str, list[Interval]]:
    """``utt channel start dur label [conf]`` lines → per-utterance intervals sorted by start."""
    out: dict[str, list[Interval]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            t = raw.split()
            if not t or t[0].startswith(";;"):
                continue
            if len(t) not in (5, 6):
                raise FormatError(f"{path}:{lineno}: expected 'utt channel start duration label [confidence]'")
            try:
                start, dur = float(t[2]), float(t[3])
            except ValueError:
                raise FormatError(f"{path}:{lineno}: start/duration are not numbers") from None
            if start < 0 or dur < 0 or not math.isfinite(start + dur):
                raise FormatError(f"{path}:{lineno}: negative or non-finite time")
            out.setdefault(t[0], []).append(Interval(start, start + dur, t[4], f"{path}:{lineno}"))
    for ivs in out.values():
        ivs.sort(key=lambda iv: iv.start)
    return out


_TG_NUM = r"([-+0-9.eE]+)"


def read_textgrid(path: str | os.PathLike) -> dict[str, list[Interval]]:
    """Praat TextGrid (long or short text form) → {tier name: intervals}; empty labels kept as ''."""
    path = Path(path)
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FormatError(f"{path}: not UTF-8/UTF-16 text")
    if "ooTextFile" not in text[:200]:
        raise FormatError(f"{path}: not a Praat TextGrid (no ooTextFile header)")
    if re.search(r"^\s*xmin\s*=", text, re.M):  # long ("key = value") form
        tiers: dict[str, list[Interval]] = {}
        cur: list[Interval] | None = None
        xmin = xmax = 0.0
        for m in re.finditer(r'(\w+)\s*=\s*("(?:[^"]|"")*"|[^\s]+)', text):
            key, val = m.group(1), m.group(2)
            if val.startswith('"'):
                val = val[1:-1].replace('""', '"')
            try:
                if key == "class":
                    cur = [] if val == "IntervalTier" else None
                elif key == "name" and cur is not None:
                    tiers[val] = cur
                elif key == "xmin":
                    xmin = float(val)
                elif key == "xmax":
                    xmax = float(val)
                elif key == "text" and cur is not None:
                    cur.append(Interval(xmin, xmax, val.strip()))
            except ValueError:
                raise FormatError(f"{path}: malformed TextGrid value {key} = {val!r}") from None
        return tiers
    # short form: the values in order
    tokens = [m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
              for m in re.finditer(r'"((?:[^"]|"")*)"|([-+]?\d[\d.eE+-]*|<exists>|<absent>)', text)]
    try:
        pos = tokens.index("TextGrid") + 1
        pos += 2  # xmin xmax
        if tokens[pos] in ("<exists>", "<absent>"):
            pos += 1
        ntiers = int(tokens[pos])
        pos += 1
        tiers = {}
        for _ in range(ntiers):
            cls, name = tokens[pos], tokens[pos + 1]
            pos += 4  # class name xmin xmax
            n = int(tokens[pos])
            pos += 1
            ivs = []
            if cls == "IntervalTier":
                for _ in range(n):
                    ivs.append(Interval(float(tokens[pos]), float(tokens[pos + 1]), tokens[pos + 2].strip()))
                    pos += 3
            else:  # TextTier: points
                pos += 2 * n
            tiers[name] = ivs
    except (IndexError, ValueError):
        raise FormatError(f"{path}: malformed TextGrid") from None
    return tiers


def expected_frames(duration: float, shift: float = 0.01, length: float = 0.025) -> int:
    """Frames Kaldi's fbank (snip-edges) gives for ``duration`` seconds."""
    if duration + 1e-6 < length:
        return 0
    return 1 + int(math.floor((duration - length) / shift + 1e-6))


def intervals_to_frames(ivs: list[Interval], num_frames: int, convention: str = "center",
                        shift: float = 0.01, length: float = 0.025) -> tuple[list[str | None], np.ndarray]:
    """Labels and frame counts of consecutive phone instances covering ``num_frames`` frames.

    Each interval keeps its place even when no frame point falls in it (length 0, to be
    lengthened later); gaps between intervals that contain frame points come back as
    ``None`` (optional silence). The first interval absorbs frames before it, the last
    those after it. The intervals must not overlap (``first_overlap``)."""
    if not ivs or num_frames <= 0:
        return [], np.zeros(0, np.int64)
    labels: list[str | None] = []
    starts: list[float] = []
    prev_end = ivs[0].start
    for iv in ivs:
        if iv.start > prev_end + 1e-6:
            labels.append(None)
            starts.append(prev_end)
        labels.append(iv.label)
        starts.append(iv.start)
        prev_end = max(prev_end, iv.end)
    point = np.arange(num_frames) * shift + (length / 2 if convention == "center" else shift / 2)
    bounds = np.searchsorted(point, np.array(starts[1:]) - 1e-9, side="left")
    bounds = np.concatenate([[0], bounds, [num_frames]])
    lengths = np.diff(bounds)
    keep = [i for i, lab in enumerate(labels) if lab is not None or lengths[i] > 0]
    return [labels[i] for i in keep], lengths[keep]
