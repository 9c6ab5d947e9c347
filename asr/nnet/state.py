"""Recurrent state handling shared by trainer and inference.

A model's state is ``None`` or a tuple of tensors with the batch on dim 1
(``[layers, B, ...]``), as nn.LSTM's ``(h, c)``.
"""

from __future__ import annotations

from torch import Tensor


def reset_streams(state, keep: Tensor):
    """Zero the state of the streams where ``keep[B]`` is False (a new utterance starts)
    and detach from the previous chunk's graph (truncated BPTT)."""
    if state is None:
        return None
    out = []
    for s in state:
        k = keep.to(s.dtype).view(1, -1, *([1] * (s.dim() - 2)))
        out.append(s.detach() * k)
    return tuple(out)


def detach_state(state):
    return None if state is None else tuple(s.detach() for s in state)
