"""Config parsing, initialisation and state helpers shared by the deep LSTM families
(residual_lstm, highway_lstm, ltlstm).

Config keys common to them (the ``model:`` section; defaults in brackets), as for
``lstmp`` (asr/nnet/lstmp.py)::

    family: residual_lstm | highway_lstm | ltlstm
    num_layers: 3
    cell_dim: 256
    proj_dim: 0          # recurrent projection (0 = none; residual_lstm: output size, 0 = cell_dim)
    cell_clip: 50        # clip c_t to [-clip, clip]; null or 0 = no clipping
    init_scale: null     # e.g. 0.02 → every parameter U(-0.02, 0.02); null = U(±1/sqrt(cell_dim))
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn


def parse_sizes(config: dict[str, Any]) -> dict[str, Any]:
    """The common options (checked by asr.nnet.registry.check_model_config): num_layers, cell_dim,
    proj_dim, cell_clip (0 = off), init_scale."""
    return {
        "num_layers": int(config.get("num_layers", 3)),
        "cell_dim": int(config.get("cell_dim", 256)),
        "proj_dim": int(config.get("proj_dim") or 0),
        "cell_clip": float(config.get("cell_clip", 50.0) or 0.0),
        "init_scale": float(config.get("init_scale") or 0.0),
    }


def init_uniform_(module: nn.Module, init_scale: float, cell_dim: int) -> None:
    """Every parameter of the recurrent layers U(−s, s) with s = init_scale, or 1/sqrt(cell_dim)
    when init_scale is 0 (as nn.LSTM and the lstmp family); the output layer keeps nn.Linear's
    default unless init_scale is given."""
    s = init_scale or 1.0 / math.sqrt(cell_dim)
    for name, p in module.named_parameters():
        if name.startswith("output.") and not init_scale:
            continue
        nn.init.uniform_(p, -s, s)


def zero_state(x: Tensor, num_layers: int, out_dim: int, cell_dim: int) -> tuple[Tensor, Tensor]:
    """All-zero (r, c) state, each [num_layers, B, dim], for a batch x[B, T, D]."""
    b = x.shape[0]
    return (x.new_zeros(num_layers, b, out_dim), x.new_zeros(num_layers, b, cell_dim))


def script(fn):
    """torch.jit.script without its deprecation warning."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(fn)
