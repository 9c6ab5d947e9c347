"""Read a data dir's features with CMVN applied: what the trainer, aligner and decoder use.

    reader = FeatureReader("data/train", cmvn="speaker")
    reader.utt_ids            # sorted utterance ids that have features
    reader.num_frames(utt)    # from utt2num_frames (or the matrix header)
    reader[utt]               # float32 [T, D], CMVN applied
    for utt, feats in reader: ...   # sequential read (arks opened once)

cmvn: "speaker" (cmvn.scp keyed by speaker + utt2spk, as Kaldi), "utterance" (mean
normalisation from the utterance itself; what ``asr transcribe`` uses for a "speaker"
model), "global" (fixed global stats), "online" (Kaldi's online CMVN: a causal running
window over the utterance, topped up with the global stats; exactly what streaming
recognition computes, so a model trained with it decodes the same offline and streaming)
or "none". The global stats of "global" and "online" are ``global_stats`` when given (a
model dir's: the training data's), else DATA_DIR/global_cmvn.stats from
``asr compute-cmvn --global``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from asr.errors import DataDirError, FeatureError, FormatError
from asr.features.cmvn import apply_cmvn, cmvn_stats
from asr.features.online_cmvn import OnlineCmvn, OnlineCmvnOptions
from asr.io.tables import read_table

CMVN_MODES = ("speaker", "utterance", "global", "online", "none")
GLOBAL_STATS_MODES = ("global", "online")  # the modes that need global stats
GLOBAL_CMVN_FILE = "global_cmvn.stats"


class FeatureReader:
    def __init__(self, data_dir: str | os.PathLike, cmvn: str = "speaker", norm_vars: bool = False,
                 global_stats: np.ndarray | None = None):
        import kaldiio

        if cmvn not in CMVN_MODES:
            raise FeatureError(f"unknown cmvn mode {cmvn!r} (one of {', '.join(CMVN_MODES)})")
        self.data_dir = Path(data_dir)
        self.cmvn = cmvn
        self.norm_vars = norm_vars
        feats_scp = self.data_dir / "feats.scp"
        if not feats_scp.is_file():
            raise DataDirError(f"{feats_scp}: no features (run `asr make-fbank {self.data_dir}` first)")
        self._scp = read_table(feats_scp, allow_empty_value=False)
        self.utt_ids: list[str] = sorted(self._scp, key=lambda u: u.encode("utf-8"))
        self._kaldiio = kaldiio
        self._fds: dict = {}
        self._pid = os.getpid()
        n2f = self.data_dir / "utt2num_frames"
        self._num_frames: dict[str, int] = {}
        if n2f.is_file():
            for utt, v in read_table(n2f, allow_empty_value=False).items():
                try:
                    self._num_frames[utt] = int(v)
                except ValueError:
                    raise FormatError(f"{n2f}: utterance {utt}: frame count {v!r} is not an integer") from None
        self._utt2spk: dict[str, str] = {}
        self._spk_stats: dict[str, np.ndarray] = {}
        self._global_stats: np.ndarray | None = None
        if cmvn == "speaker":
            cmvn_scp = self.data_dir / "cmvn.scp"
            if not cmvn_scp.is_file():
                raise DataDirError(f"{cmvn_scp}: no CMVN stats (run `asr compute-cmvn {self.data_dir}` first)")
            u2s = self.data_dir / "utt2spk"
            if not u2s.is_file():
                raise DataDirError(f"{u2s}: missing (needed for per-speaker CMVN)")
            self._utt2spk = read_table(u2s, allow_empty_value=False)
            for spk, spec in read_table(cmvn_scp, allow_empty_value=False).items():
                self._spk_stats[spk] = np.asarray(kaldiio.load_mat(spec), dtype=np.float64)
        elif cmvn in GLOBAL_STATS_MODES:
            if global_stats is None:
                path = self.data_dir / GLOBAL_CMVN_FILE
                if not path.is_file():
                    raise DataDirError(f"{path}: no global CMVN stats (run `asr compute-cmvn --global "
                                       f"{self.data_dir}`)")
                global_stats = kaldiio.load_mat(str(path))
            self._global_stats = np.asarray(global_stats, dtype=np.float64)

    @property
    def global_stats(self) -> np.ndarray | None:
        """The global stats of "global"/"online" CMVN (None in other modes)."""
        return self._global_stats

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __contains__(self, utt: str) -> bool:
        return utt in self._scp

    def num_frames(self, utt: str) -> int:
        if utt not in self._scp:
            raise FeatureError(f"{self.data_dir}: utterance {utt} has no features")
        n = self._num_frames.get(utt)
        if n is None:
            n = self._num_frames[utt] = int(self.raw(utt).shape[0])
        return n

    def raw(self, utt: str) -> np.ndarray:
        """Features without CMVN."""
        spec = self._scp.get(utt)
        if spec is None:
            raise FeatureError(f"{self.data_dir}: utterance {utt} has no features")
        if self._pid != os.getpid():  # forked (e.g. a DataLoader worker): never share file offsets
            self._fds = {}
            self._pid = os.getpid()
        try:
            return np.asarray(self._kaldiio.load_mat(spec, fd_dict=self._fds), dtype=np.float32)
        except Exception as e:  # kaldiio raises plain exceptions on bad arks
            why = str(e).strip() or type(e).__name__  # kaldiio's EOF errors have no text
            raise FeatureError(f"{self.data_dir}/feats.scp: utterance {utt}: cannot read {spec}: {why}") from None

    def normalise(self, utt: str, feats: np.ndarray) -> np.ndarray:
        """Apply this reader's CMVN to ``feats`` of utterance ``utt``."""
        if self.cmvn != "speaker":
            return normalise_utterance(feats, self.cmvn, self._global_stats, self.norm_vars)
        spk = self._utt2spk.get(utt)
        if spk is None:
            raise FeatureError(f"{self.data_dir}/utt2spk: utterance {utt} has no speaker")
        stats = self._spk_stats.get(spk)
        if stats is None:
            raise FeatureError(f"{self.data_dir}/cmvn.scp: no stats for speaker {spk} (utterance {utt})")
        return apply_cmvn(feats, stats, self.norm_vars)

    def __getitem__(self, utt: str) -> np.ndarray:
        return self.normalise(utt, self.raw(utt))

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for utt in self.utt_ids:
            yield utt, self[utt]

    def close(self) -> None:
        for fd in self._fds.values():
            fd.close()
        self._fds.clear()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def normalise_utterance(feats: np.ndarray, cmvn: str, global_stats: np.ndarray | None = None,
                        norm_vars: bool = False, online_opts: OnlineCmvnOptions | None = None) -> np.ndarray:
    """CMVN of one utterance known by itself (no speaker): "speaker" and "utterance" use the
    utterance's own stats, "global" the fixed ``global_stats``, "online" Kaldi's online CMVN
    started from ``global_stats`` (one stream per utterance; window and global frames from
    ``online_opts``, default Kaldi's), "none" nothing. -> float32."""
    feats = np.asarray(feats, dtype=np.float32)
    if cmvn == "none" or len(feats) == 0:
        return feats
    if cmvn in ("speaker", "utterance"):
        return apply_cmvn(feats, cmvn_stats(feats), norm_vars)
    if cmvn not in GLOBAL_STATS_MODES:
        raise FeatureError(f"unknown cmvn mode {cmvn!r} (one of {', '.join(CMVN_MODES)})")
    if global_stats is None:
        raise FeatureError(f"cmvn {cmvn}: no global CMVN stats")
    if cmvn == "global":
        return apply_cmvn(feats, global_stats, norm_vars)
    opts = dataclasses.replace(online_opts or OnlineCmvnOptions(), normalize_variance=norm_vars)
    return OnlineCmvn(feats.shape[1], global_stats, opts).apply(feats)
