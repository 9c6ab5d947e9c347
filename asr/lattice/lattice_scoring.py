"""Score a decode dir's lattices over LM weights and insertion penalties (Kaldi score.sh).

For every (LMWT, WIP) the best path of each lattice (``asr.lattice.lattice_io.best_paths``:
minimises ``graph + WIP * words + acoustic / LMWT``, all pairs in one pass per lattice)
becomes ``DECODE_DIR/scoring/hyp_LMWT_WIP.txt`` and its ``compute-wer`` output
``DECODE_DIR/wer_LMWT_WIP``; ``DECODE_DIR/scoring/best_wer`` holds the best ``%WER`` line
followed by its file name (as Kaldi's ``best_wer``), ``scoring/lmwt`` and ``scoring/wip``
the chosen pair, ``scoring/best_hyp.txt`` its hypotheses, ``scoring/sweep.json`` the grid,
the choice, its acoustic scale (1 / LMWT) and whether it lies on an edge of the grid
(``lmwt_at_edge``, ``wip_at_edge``: the optimum may then be outside; a warning is logged).
Ties go to the first pair in (WIP, LMWT) order. A fixed pair (the one chosen on dev, applied to test) writes
``DECODE_DIR/hyp.txt`` (and ``DECODE_DIR/wer`` when the data dir has a ``text``), with the pair in
``DECODE_DIR/scoring/fixed.json`` (``asr results`` checks it against dev's choice). Either mode scores
every pair before writing, so a failed run (e.g. hypotheses for utterances the text lacks) writes nothing.

Unlike Kaldi's score.sh (``compute-wer --mode=present``), by default reference utterances
without a hypothesis (no lattice, or no successful path) are scored as empty hypotheses
(``mode="all"``: their words count as deletions, and the %WER line says [PARTIAL]);
``mode="present"`` is Kaldi's choice. The best pair's (or the fixed pair's) per-utterance
alignments and per-speaker table go to ``scoring/wer_details/{per_utt,per_spk}`` as in
Kaldi's ``scoring_kaldi/wer_details``.
"""

from __future__ import annotations

import math
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from asr.lattice.lattice_io import best_paths, read_lattices
from asr.errors import DecodeError, FormatError
from asr.io.atomic import atomic_write_text
from asr.io.tables import read_table, write_table
from asr.score.wer import WerResult, format_details, format_per_speaker, format_summary, read_text, score_texts

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    lmwt: float
    wip: str
    wer: WerResult
    hyps: dict[str, list[str]]


def lattice_files(decode_dir: str | os.PathLike) -> list[Path]:
    """``lat.<job>.gz`` files of a decode dir, in job order."""
    decode_dir = Path(decode_dir)
    files = [p for p in decode_dir.glob("lat.*.gz") if re.fullmatch(r"lat\.\d+\.gz", p.name)]
    if not files:
        raise DecodeError(f"{decode_dir}: no lattices (lat.<job>.gz)")
    return sorted(files, key=lambda p: int(p.name.split(".")[1]))


def find_words_table(decode_dir: str | os.PathLike, words: str | os.PathLike | None = None) -> Path:
    """The word symbol table for a decode dir: ``words`` if given, else ``DECODE_DIR/words.txt``,
    the graph dir named in ``decode.json`` (key ``graph_dir`` or ``graph``), or
    ``DECODE_DIR/../graph/words.txt``."""
    if words is not None:
        if not Path(words).is_file():
            raise FormatError(f"{words}: no such word table")
        return Path(words)
    decode_dir = Path(decode_dir)
    tried = [decode_dir / "words.txt"]
    meta = decode_dir / "decode.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            info = {}
        for key in ("graph_dir", "graph"):
            if isinstance(info.get(key), str):
                tried.append(Path(info[key]) / "words.txt")
    tried.append(decode_dir.parent / "graph" / "words.txt")
    for p in tried:
        if p.is_file():
            return p
    raise FormatError(f"no word table for {decode_dir} (tried {', '.join(map(str, tried))}); pass --words")


def parse_lmwts(spec: str) -> list[float]:
    """``7:17`` (integers 7..17), ``10``, or ``8,10,12.5``."""
    try:
        if ":" in spec:
            lo, hi = spec.split(":")
            vals = [float(x) for x in range(int(lo), int(hi) + 1)]
        else:
            vals = [float(x) for x in spec.split(",")]
    except ValueError:
        raise FormatError(f"bad LM weight list {spec!r} (want e.g. 7:17 or 10 or 8,10,12)") from None
    if not vals or not all(math.isfinite(v) and v > 0 for v in vals):
        raise FormatError(f"bad LM weight list {spec!r}: need positive weights")
    return vals


def parse_wips(spec: str) -> list[str]:
    """``0.0,0.5,1.0``: kept as given (they name the output files), checked to be numbers."""
    out = [s.strip() for s in spec.split(",") if s.strip()]
    try:
        finite = all(math.isfinite(float(s)) for s in out)
    except ValueError:
        finite = False
    if not finite:
        raise FormatError(f"bad word insertion penalty list {spec!r} (want finite numbers, e.g. 0.0,0.5,1.0)")
    if not out:
        raise FormatError("empty word insertion penalty list")
    return out


def format_lmwt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def decode_best_paths(decode_dir, weights: list[tuple[float, float]], words: list[str]) -> list[dict[str, list[str]]]:
    """Best-path word sequences of every lattice for every (lmwt, wip) pair."""
    from tqdm import tqdm

    out: list[dict[str, list[str]]] = [{} for _ in weights]
    failed = 0
    for path in lattice_files(decode_dir):
        for utt, lat in tqdm(read_lattices(path), desc=path.name, unit="utt", leave=False, disable=None):
            for k, bp in enumerate(best_paths(lat, weights)):
                if bp is None:
                    if k == 0:
                        failed += 1
                    continue
                try:
                    out[k][utt] = [words[i] for i in bp.words.tolist()]
                except IndexError:
                    raise DecodeError(f"{path}: utterance {utt!r}: word id outside the word table") from None
    if failed:
        log.warning("%d lattice(s) had no successful path; those utterances get no hypothesis", failed)
    return out


def sweep(data_dir, decode_dir, lmwts: list[float], wips: list[str], words: list[str],
          mode: str = "all") -> SweepResult:
    """Score all (LMWT, WIP) pairs, write Kaldi-style files, return the best. Every pair is
    scored before anything is written: a failure leaves the decode dir as it was."""
    decode_dir = Path(decode_dir)
    text = Path(data_dir) / "text"
    ref = read_text(text)
    pairs = [(lmwt, wip) for wip in wips for lmwt in lmwts]
    hyps = decode_best_paths(decode_dir, [(l, float(w)) for l, w in pairs], words)
    scored = [(lmwt, wip, hyp, score_texts(ref, hyp, mode=mode, ref_name=str(text),
                                           hyp_name=_best_paths_name(decode_dir, lmwt, wip)))
              for (lmwt, wip), hyp in zip(pairs, hyps)]
    best: SweepResult | None = None
    for lmwt, wip, hyp, res in scored:
        name = f"{format_lmwt(lmwt)}_{wip}"
        write_table(decode_dir / "scoring" / f"hyp_{name}.txt", ((u, " ".join(w)) for u, w in hyp.items()))
        atomic_write_text(decode_dir / f"wer_{name}", format_summary(res))
        if best is None or _rate(res) < _rate(best.wer):
            best = SweepResult(lmwt, wip, res, hyp)
    assert best is not None
    name = f"{format_lmwt(best.lmwt)}_{best.wip}"
    atomic_write_text(decode_dir / "scoring" / "best_wer", f"{format_summary(best.wer).splitlines()[0]} {decode_dir / f'wer_{name}'}\n")
    atomic_write_text(decode_dir / "scoring" / "lmwt", format_lmwt(best.lmwt) + "\n")
    atomic_write_text(decode_dir / "scoring" / "wip", best.wip + "\n")
    write_table(decode_dir / "scoring" / "best_hyp.txt", ((u, " ".join(w)) for u, w in best.hyps.items()))
    write_wer_details(data_dir, decode_dir / "scoring" / "wer_details", ref, best.hyps, mode)
    edges = sweep_edges(best, lmwts, wips)
    if edges["lmwt_at_edge"]:
        log.warning("%s: the best LMWT %s is at the edge of the sweep %s..%s; widen --lmwt", decode_dir,
                    format_lmwt(best.lmwt), format_lmwt(min(lmwts)), format_lmwt(max(lmwts)))
    if edges["wip_at_edge"]:
        log.warning("%s: the best WIP %s is at the edge of the sweep %s; widen --wip", decode_dir, best.wip,
                    ",".join(wips))
    atomic_write_text(decode_dir / "scoring" / "sweep.json", json.dumps({
        "lmwts": [float(x) for x in lmwts], "wips": list(wips), "lmwt": float(best.lmwt), "wip": best.wip,
        "acoustic_scale": round(1.0 / best.lmwt, 5), "wer": round(100.0 * _rate(best.wer), 4), **edges,
    }, indent=1) + "\n")
    return best


def sweep_edges(best: SweepResult, lmwts: list[float], wips: list[str]) -> dict[str, bool]:
    """Whether the chosen LMWT / WIP is the smallest or largest value swept (with more than
    one value swept): then the optimum may lie outside the sweep."""
    wip_values = [float(w) for w in wips]
    return {
        "lmwt_at_edge": len(set(lmwts)) > 1 and best.lmwt in (min(lmwts), max(lmwts)),
        "wip_at_edge": len(set(wip_values)) > 1 and float(best.wip) in (min(wip_values), max(wip_values)),
    }


def write_wer_details(data_dir, out_dir: Path, ref: dict, hyp: dict, mode: str) -> None:
    """Kaldi's ``scoring_kaldi/wer_details``: ``per_utt`` alignments and, when the data dir
    has an ``utt2spk``, the ``per_spk`` table."""
    res = score_texts(ref, hyp, mode=mode, details=True)
    atomic_write_text(out_dir / "per_utt", format_details(res))
    utt2spk = Path(data_dir) / "utt2spk"
    if utt2spk.is_file():
        atomic_write_text(out_dir / "per_spk", format_per_speaker(res, read_table(utt2spk, allow_empty_value=False)))


def _rate(res: WerResult) -> float:
    return res.errors / res.num_words if res.num_words else float(res.errors)


def _best_paths_name(decode_dir: Path, lmwt: float, wip: str) -> str:
    """How scoring errors name a hypothesis: the decode dir's best paths at a pair."""
    return f"{decode_dir} (best paths at LMWT {format_lmwt(lmwt)}, WIP {wip})"


def apply_fixed(data_dir, decode_dir, lmwt: float, wip: str, words: list[str], mode: str = "all",
                best_from=None) -> WerResult | None:
    """Best paths at one (LMWT, WIP): write DECODE_DIR/hyp.txt, and DECODE_DIR/wer when the
    data dir has a text, with the pair in DECODE_DIR/scoring/fixed.json (``read_fixed``).
    Scored before anything is written (a failure leaves the decode dir as it was); ``wer``
    is written last. Returns the WER result or None without a reference."""
    decode_dir = Path(decode_dir)
    hyp = decode_best_paths(decode_dir, [(lmwt, float(wip))], words)[0]
    text = Path(data_dir) / "text" if data_dir is not None else None
    res = ref = None
    if text is not None and text.is_file():
        ref = read_text(text)
        res = score_texts(ref, hyp, mode=mode, ref_name=str(text), hyp_name=_best_paths_name(decode_dir, lmwt, wip))
    (decode_dir / "wer").unlink(missing_ok=True)  # until the new one is written: no stale pair of files
    atomic_write_text(decode_dir / FIXED, json.dumps({"lmwt": float(lmwt), "wip": wip,
                                                      "best_from": None if best_from is None else str(best_from)}) + "\n")
    write_table(decode_dir / "hyp.txt", ((u, " ".join(w)) for u, w in hyp.items()))
    if res is None:
        return None
    write_wer_details(data_dir, decode_dir / "scoring" / "wer_details", ref, hyp, mode)
    atomic_write_text(decode_dir / "wer", format_summary(res))
    return res


FIXED = "scoring/fixed.json"


def read_fixed(decode_dir) -> tuple[float, str] | None:
    """The (LMWT, WIP) DECODE_DIR/hyp.txt and wer were scored at by a fixed-pair
    ``score-lattices`` (None when they were not: e.g. ``asr decode``'s own wer)."""
    p = Path(decode_dir) / FIXED
    if not p.is_file():
        return None
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
        return float(info["lmwt"]), str(info["wip"])
    except (OSError, ValueError, KeyError, TypeError):
        raise FormatError(f"{p}: unreadable (not written by asr score-lattices?)") from None


def read_chosen(dev_decode_dir) -> tuple[float, str]:
    """The (LMWT, WIP) a sweep chose on a dev decode dir (its scoring/lmwt and scoring/wip)."""
    d = Path(dev_decode_dir) / "scoring"
    try:
        lmwt = float((d / "lmwt").read_text().split()[0])
        wip = (d / "wip").read_text().split()[0]
    except (OSError, IndexError, ValueError):
        raise FormatError(f"{d}: no lmwt/wip files from a sweep (run score-lattices on the dev dir first)") from None
    return lmwt, wip
