"""Online cepstral mean (and variance) normalisation, Kaldi's ``OnlineCmvn`` semantics.

Frame t is normalised with the stats of the window of the last ``cmn_window`` frames
ending at t (frames ``max(0, t - cmn_window + 1) .. t``; nothing from the future). While
that window holds fewer than ``cmn_window`` frames it is topped up with up to
``global_frames`` frames' worth of the global stats (scaled to that count), as Kaldi's
``SmoothOnlineCmvnStats`` does, so the first frames are normalised with the training
mean instead of their own few values. Without global stats only the window is used.

Every chunk is processed with one cumulative sum over (history + chunk) in float64, so
the result does not depend on how the audio was chunked (``OnlineCmvn(...).apply(all)``
equals applying it chunk by chunk)::

    >>> cmvn = OnlineCmvn(dim=40, global_stats=stats)      # stats: Kaldi [2, 41] matrix
    >>> normed = np.concatenate([cmvn.apply(chunk) for chunk in chunks])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.errors import FeatureError

_VAR_FLOOR = 1.0e-20


@dataclass(frozen=True)
class OnlineCmvnOptions:
    """Kaldi ``OnlineCmvnOptions`` (same names and defaults)."""

    cmn_window: int = 600  # frames in the moving window
    global_frames: int = 200  # frames of global stats used to top up a short window
    normalize_mean: bool = True
    normalize_variance: bool = False

    def __post_init__(self):
        if self.cmn_window < 1 or self.global_frames < 0:
            raise FeatureError(f"online CMVN: cmn_window must be >= 1 and global_frames >= 0 "
                               f"(got {self.cmn_window}, {self.global_frames})")
        if self.normalize_variance and not self.normalize_mean:
            raise FeatureError("online CMVN: normalize_variance needs normalize_mean (as Kaldi)")


class OnlineCmvn:
    """Running CMVN over a stream of feature chunks (one speaker / stream)."""

    def __init__(self, dim: int, global_stats: np.ndarray | None = None, opts: OnlineCmvnOptions | None = None):
        self.dim = int(dim)
        self.opts = opts or OnlineCmvnOptions()
        if global_stats is not None:
            global_stats = np.asarray(global_stats, dtype=np.float64)
            if global_stats.shape != (2, self.dim + 1):
                raise FeatureError(f"online CMVN: global stats of shape {global_stats.shape}, expected "
                                   f"(2, {self.dim + 1})")
            if global_stats[0, -1] < 1.0:
                raise FeatureError(f"online CMVN: global stats have count {global_stats[0, -1]}")
        self.global_stats = global_stats
        self._hist = np.zeros((0, self.dim), dtype=np.float64)  # last cmn_window - 1 raw frames
        self.num_frames = 0

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """Normalise the next ``feats [n, dim]`` of the stream -> float32 ``[n, dim]``."""
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise FeatureError(f"online CMVN: expected [n, {self.dim}] features, got shape {feats.shape}")
        n = len(feats)
        if n == 0 or not (self.opts.normalize_mean or self.opts.normalize_variance):
            self._push(feats)
            return feats.astype(np.float32)
        W = self.opts.cmn_window
        x = np.concatenate([self._hist, feats])
        h = len(self._hist)
        pos = np.arange(h, h + n)  # positions of the new frames in x
        first = np.maximum(pos - W + 1, 0)  # window starts (x starts at most W - 1 frames back)
        cs = np.zeros((len(x) + 1, self.dim))
        np.cumsum(x, axis=0, out=cs[1:])
        sums = cs[pos + 1] - cs[first]
        count = (pos + 1 - first).astype(np.float64)
        sq = None
        if self.opts.normalize_variance:
            cs2 = np.zeros_like(cs)
            np.cumsum(x * x, axis=0, out=cs2[1:])
            sq = cs2[pos + 1] - cs2[first]
        if self.global_stats is not None:
            g = self.global_stats
            take = np.minimum(W - count, self.opts.global_frames)  # >= 0: count <= W
            scale = (take / g[0, -1])[:, None]
            sums = sums + scale * g[0, :-1]
            if sq is not None:
                sq = sq + scale * g[1, :-1]
            count = count + take
        mean = sums / count[:, None]
        out = feats - mean
        if sq is not None:
            out /= np.sqrt(np.maximum(sq / count[:, None] - mean * mean, _VAR_FLOOR))
        self._push(feats)
        return out.astype(np.float32)

    def _push(self, feats: np.ndarray) -> None:
        keep = self.opts.cmn_window - 1
        self.num_frames += len(feats)
        if keep <= 0:
            self._hist = self._hist[:0]
        else:
            self._hist = np.concatenate([self._hist, feats])[-keep:]
