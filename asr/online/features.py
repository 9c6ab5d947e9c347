"""Online features: audio chunks -> kaldi-native-fbank ``OnlineFbank`` -> online CMVN.

``OnlineFeatures`` takes samples as they arrive (any chunking, float samples in Kaldi's
int16 scale at the model's sample rate) and returns the normalised frames that became
ready. The fbank options are the model's (the same ``FbankComputer`` options the offline
path uses), so frames equal offline fbank frames exactly; the CMVN is ``OnlineCmvn``
(the model's ``cmvn`` mode decides: ``none`` = no normalisation, ``global`` = the model's
fixed global stats, otherwise the running window topped up with the global stats: exactly
what offline decoding computes for an ``online`` model, an approximation of the per-speaker
or per-utterance CMVN of other models).
"""

from __future__ import annotations

import numpy as np

from asr.errors import FeatureError
from asr.features.online_cmvn import OnlineCmvn, OnlineCmvnOptions
from asr.features.reader import GLOBAL_STATS_MODES


class OnlineFeatures:
    """One stream's feature pipeline."""

    def __init__(self, fbank, cmvn_mode: str = "speaker", global_stats: np.ndarray | None = None,
                 cmvn_opts: OnlineCmvnOptions | None = None):
        self.fbank = fbank  # asr.features.fbank.FbankComputer (options only; one OnlineFbank per stream)
        self._fb = fbank._knf.OnlineFbank(fbank._opts)
        self.cmvn_mode = cmvn_mode
        self.global_stats = global_stats
        self._cmvn = None
        if cmvn_mode in GLOBAL_STATS_MODES and global_stats is None:
            raise FeatureError(f"the model uses {cmvn_mode} CMVN but has no global_cmvn.stats")
        if cmvn_mode not in ("global", "none"):
            self._cmvn = OnlineCmvn(fbank.dim, global_stats, cmvn_opts)
        self._taken = 0  # frames returned so far
        self.finished = False

    @property
    def sample_rate(self) -> int:
        return self.fbank.sample_rate

    def accept_waveform(self, samples: np.ndarray) -> None:
        """Append samples (1-D, int16 scale, at ``sample_rate``)."""
        if self.finished:
            raise FeatureError("audio after the end of the stream")
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if len(samples):
            self._fb.accept_waveform(float(self.fbank.sample_rate), samples)

    def input_finished(self) -> None:
        """No more audio: the last frames become ready (without snip-edges)."""
        if not self.finished:
            self._fb.input_finished()
            self.finished = True

    def read(self) -> np.ndarray:
        """The normalised frames that became ready since the last call, float32 ``[n, dim]``."""
        ready = self._fb.num_frames_ready
        if ready <= self._taken:
            return np.zeros((0, self.fbank.dim), dtype=np.float32)
        raw = np.stack([self._fb.get_frame(i) for i in range(self._taken, ready)]).astype(np.float32)
        self._fb.pop(ready - self._taken)  # OnlineFbank keeps every frame until popped: memory would grow
        self._taken = ready  # with the stream's length (frame indices stay absolute after a pop)
        if self._cmvn is not None:
            return self._cmvn.apply(raw)
        if self.cmvn_mode == "global":
            from asr.features.cmvn import apply_cmvn

            return apply_cmvn(raw, self.global_stats)
        return raw

    @property
    def num_frames(self) -> int:
        return self._taken
