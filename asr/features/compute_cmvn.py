"""``asr compute-cmvn``: per-speaker (and global) CMVN stats of a data dir's features.

Writes ARK_DIR/cmvn_<name>.ark (Kaldi binary double matrices 2 x (D+1), one per speaker) and
DATA_DIR/cmvn.scp keyed by speaker, as Kaldi's compute_cmvn_stats.sh; with ``global_stats``
also DATA_DIR/global_cmvn.stats (one such matrix over all utterances, Kaldi binary,
``kaldiio.load_mat`` reads it).

An utterance whose features cannot be read (a feats.scp entry pointing at a truncated or
missing ark), or are empty or hold NaN/inf, is skipped and counted as Kaldi's
compute-cmvn-stats does; the run fails (nothing written) when none is left or more than
``max_failures`` of them failed. A speaker all of whose utterances failed gets no stats.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import DataDirError, FeatureError
from asr.failures import DEFAULT_MAX_FAILURES, Failures
from asr.features.cmvn import accumulate_stats
from asr.features.reader import GLOBAL_CMVN_FILE, FeatureReader

logger = logging.getLogger(__name__)


@dataclass
class CmvnReport:
    num_speakers: int
    num_utts: int
    num_frames: int
    cmvn_scp: Path
    global_stats: Path | None
    failures: Failures


def compute_cmvn(
    data_dir: str | os.PathLike,
    ark_dir: str | os.PathLike | None = None,
    global_stats: bool = False,
    progress: bool = True,
    max_failures: float = DEFAULT_MAX_FAILURES,
) -> CmvnReport:
    import kaldiio
    from tqdm import tqdm

    from asr.io.atomic import atomic_write
    from asr.io.tables import read_table

    data_dir = Path(data_dir)
    reader = FeatureReader(data_dir, cmvn="none")
    utt2spk = read_table(data_dir / "utt2spk", allow_empty_value=False) if (data_dir / "utt2spk").is_file() else None
    if utt2spk is None:
        raise DataDirError(f"{data_dir}: missing utt2spk")
    spk_stats: dict[str, np.ndarray] = {}
    total = None
    n_utts = 0
    failures = Failures("compute-cmvn", total=len(reader))
    for utt in tqdm(reader.utt_ids, unit="utt", desc="compute-cmvn", disable=not progress, leave=False):
        spk = utt2spk.get(utt)
        if spk is None:
            raise DataDirError(f"{data_dir}/utt2spk: utterance {utt} (in feats.scp) has no speaker")
        try:
            feats = reader.raw(utt)
        except FeatureError as e:
            failures.add(utt, str(e))
            continue
        if len(feats) == 0:
            failures.add(utt, "no frames")
            continue
        bad = int(np.size(feats) - np.count_nonzero(np.isfinite(feats)))
        if bad:
            failures.add(utt, f"{bad} NaN/inf feature values")
            continue
        spk_stats[spk] = accumulate_stats(spk_stats.get(spk), feats)
        n_utts += 1
    reader.close()
    failures.log(logger)
    failures.check(max_failures, DataDirError, f"{data_dir}/feats.scp")
    if not spk_stats:
        raise DataDirError(f"{data_dir}: no features to compute CMVN stats from")

    ark_dir = Path(ark_dir) if ark_dir is not None else data_dir / "data"
    ark_dir = ark_dir.absolute()
    ark = ark_dir / f"cmvn_{data_dir.absolute().name}.ark"
    speakers = sorted(spk_stats, key=lambda s: s.encode("utf-8"))
    scp_lines = []
    with atomic_write(ark, "wb") as f:
        for spk in speakers:
            offset = f.tell() + len(spk.encode("utf-8")) + 1
            kaldiio.save_ark(f, {spk: spk_stats[spk]})
            scp_lines.append(f"{spk} {ark}:{offset}\n")
            total = spk_stats[spk] if total is None else total + spk_stats[spk]
    with atomic_write(data_dir / "cmvn.scp") as f:
        f.writelines(scp_lines)
    global_path = None
    if global_stats:
        global_path = data_dir / GLOBAL_CMVN_FILE
        with atomic_write(global_path, "wb") as f:
            kaldiio.save_mat(f, total)
    return CmvnReport(len(speakers), n_utts, int(total[0, -1]), data_dir / "cmvn.scp", global_path, failures)
