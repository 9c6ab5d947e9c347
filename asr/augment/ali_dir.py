"""The alignment dir of an augmented data dir (``asr augment-data-dir --ali-dir``).

Input: an alignment dir as ``asr import-ali`` / ``asr build-tree`` write it (``ali.tid.ark``,
``ali.pdf.ark``, ``phones.ark``, ``final.mdl``, ``tree``, ``num_pdfs``, ``silence_pdfs.int``,
...). Output: the same layout for the augmented utterances: an utterance of an
environment copy (same length as its source) gets its source's alignment unchanged; a
speed-perturbed one gets it rescaled to the frame count of its new audio
(``asr.augment.alignments``): transition-ids by HMM states, then pdfs and phones through
``final.mdl``, so the three arks agree. Without ``ali.tid.ark`` each ark present is
rescaled by runs. The other files are copied (``excluded.txt`` is replaced by the list of
augmented utterances without an alignment, with the reason); ``augment_stats.json`` holds
the counts. Both dirs are ``asr.align.ali_dir.AliDir`` (the source must be finished; the
output is written at once, kind ``augment``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from asr.align.ali_dir import INFO, PDF_ARK, PHONE_ARK, TID_ARK, AliDir
from asr.augment.alignments import self_loop_tids, warp_runs, warp_tids
from asr.errors import AlignmentError, DataDirError
from asr.io.atomic import atomic_write_text
from asr.io.fingerprint import file_hash
from asr.io.int_ark import read_int_ark, write_int_ark

log = logging.getLogger(__name__)

ARKS = (TID_ARK, PDF_ARK, PHONE_ARK)
_NOT_COPIED = ARKS + (INFO, "excluded.txt", "augment_stats.json")


def augment_ali_dir(src: Path, dst: Path, out_utts, fbank_config=None) -> dict:
    """Write ``dst`` for ``out_utts`` (``asr.augment.data_dir.OutUtt`` list); returns counts."""
    from asr.features.fbank import FbankComputer

    source = AliDir.load(src)
    present = [a for a in ARKS if a in source.info["files"]]
    if src.resolve() == dst.resolve():
        raise DataDirError(f"{dst}: the output alignment dir must differ from the source")
    fbank = FbankComputer(fbank_config)
    arks = {a: read_int_ark(src / a) for a in present}
    tm = None
    if "ali.tid.ark" in arks:
        from asr.hmm.transition_model import TransitionModel

        if not (src / "final.mdl").is_file():
            raise DataDirError(f"{src}: ali.tid.ark without final.mdl")
        tm = TransitionModel.read(src / "final.mdl")
        _check_consistent(src, arks, tm)
        loops = self_loop_tids(tm)
    out: dict[str, list] = {a: [] for a in present}
    excluded: list[tuple[str, str]] = []
    counts = {"utterances": 0, "rescaled": 0, "copied": 0, "missing": 0, "failed": 0}
    first = present[0]
    for u in sorted(out_utts, key=lambda u: u.utt.encode()):
        src_ali = arks[first].get(u.source)
        if src_ali is None:
            counts["missing"] += 1
            excluded.append((u.utt, f"source utterance {u.source} has no alignment"))
            continue
        if u.factor == 1.0:
            for a in present:
                out[a].append((u.utt, arks[a][u.source]))
            counts["copied"] += 1
            continue
        n = u.num_samples if u.rate == fbank.sample_rate else int(round(u.num_samples * fbank.sample_rate / u.rate))
        frames = fbank.num_frames(n)
        geometry = {"frame_shift": fbank.frame_shift, "frame_length": fbank.frame_length}
        try:
            if tm is not None:
                tids = warp_tids(arks["ali.tid.ark"][u.source], u.factor, frames, tm, loops, **geometry)
                new = {"ali.tid.ark": tids, "ali.pdf.ark": tm.tid2pdf[tids], "phones.ark": tm.tid2phone[tids]}
            else:
                new = {a: warp_runs(arks[a][u.source], u.factor, frames, **geometry) for a in present}
        except AlignmentError as e:
            counts["failed"] += 1
            excluded.append((u.utt, f"speed {u.factor:g}: {e}"))
            continue
        for a in present:
            out[a].append((u.utt, new[a]))
        counts["rescaled"] += 1
    counts["utterances"] = counts["rescaled"] + counts["copied"]
    if excluded:
        log.warning("%s: %d augmented utterances have no alignment (reasons in %s)", dst, len(excluded),
                    dst / "excluded.txt")
    inputs = {"alignments": file_hash(src / INFO),
              "utterances": [[u.utt, u.source, u.factor, u.num_samples, u.rate] for u in out_utts]}
    with AliDir.writer(dst, "augment", inputs) as tmp:
        for name in sorted(source.info["files"]):
            if name not in _NOT_COPIED:
                shutil.copyfile(src / name, tmp / name)
        for a in present:
            write_int_ark(tmp / a, out[a])
        atomic_write_text(tmp / "excluded.txt", "".join(f"{u} {why}\n" for u, why in excluded))
        atomic_write_text(tmp / "augment_stats.json", json.dumps({"source": str(src), **counts}, indent=1) + "\n")
    return counts


def _check_consistent(src: Path, arks: dict, tm) -> None:
    """The pdf and phone arks must be the transition-ids' pdfs and phones (else the
    rescaled arks, derived from the transition-ids, would silently change meaning)."""
    tids = arks["ali.tid.ark"]
    for name, table in (("ali.pdf.ark", tm.tid2pdf), ("phones.ark", tm.tid2phone)):
        for utt, v in arks.get(name, {}).items():
            t = tids.get(utt)
            if t is None or len(t) != len(v) or np.any(table[t] != v):
                raise AlignmentError(f"{src / name}: utterance {utt} does not match ali.tid.ark through final.mdl")
