"""Cepstral mean (and variance) normalisation with Kaldi's stats format and semantics.

Stats are Kaldi's 2 x (D+1) double matrix: row 0 = [sum x_d ..., count], row 1 =
[sum x_d^2 ..., 0] (``compute-cmvn-stats``). ``apply_cmvn`` is ``apply-cmvn``.
"""

from __future__ import annotations

import logging

import numpy as np

from asr.errors import FeatureError

logger = logging.getLogger(__name__)

_VAR_FLOOR = 1.0e-20  # Kaldi ApplyCmvn's variance floor


def cmvn_stats(feats: np.ndarray) -> np.ndarray:
    """Kaldi CMVN stats of one feature matrix ``[T, D]`` -> float64 ``[2, D+1]``."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise FeatureError(f"cmvn: expected a [T, D] matrix, got shape {feats.shape}")
    d = feats.shape[1]
    stats = np.zeros((2, d + 1), dtype=np.float64)
    stats[0, :d] = feats.sum(axis=0)
    stats[1, :d] = np.square(feats).sum(axis=0)
    stats[0, d] = feats.shape[0]
    return stats


def accumulate_stats(total: np.ndarray | None, feats: np.ndarray) -> np.ndarray:
    """Add the stats of ``feats`` to ``total`` (None to start)."""
    s = cmvn_stats(feats)
    return s if total is None else total + s


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = False) -> np.ndarray:
    """Normalise ``feats [T, D]`` with ``stats [2, D+1]`` as Kaldi ``apply-cmvn``: subtract the
    mean; with ``norm_vars`` also divide by the standard deviation (variance floored at 1e-20).
    Returns float32 ``[T, D]``; raises FeatureError when the count is < 1 or dims differ."""
    feats = np.asarray(feats)
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 2 or stats.shape[0] != 2:
        raise FeatureError(f"cmvn: stats must be [2, D+1], got shape {stats.shape}")
    d = stats.shape[1] - 1
    if feats.ndim != 2 or feats.shape[1] != d:
        raise FeatureError(f"cmvn: feature dim {feats.shape[-1] if feats.ndim else '?'} does not match stats dim {d}")
    count = stats[0, d]
    if count < 1.0:
        raise FeatureError(f"cmvn: insufficient stats for normalisation: count = {count}")
    mean = stats[0, :d] / count
    if not norm_vars:
        return (feats.astype(np.float64) - mean).astype(np.float32)
    var = stats[1, :d] / count - mean * mean
    if np.any(var < _VAR_FLOOR):
        logger.warning("cmvn: flooring %d variances to %g", int(np.sum(var < _VAR_FLOOR)), _VAR_FLOOR)
        var = np.maximum(var, _VAR_FLOOR)
    scale = 1.0 / np.sqrt(var)
    return ((feats.astype(np.float64) - mean) * scale).astype(np.float32)
