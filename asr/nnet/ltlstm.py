"""Layer-trajectory LSTM (Li, Liu, Gong 2018, arXiv 1808.09522).

A standard stack of time-LSTMs (the peephole LSTM(P) layers of the lstm/lstmp families,
asr.nnet.lstm_cell, recurrent over t) and a layer-LSTM
that, at every frame t, scans the time-LSTM outputs h_t^1 .. h_t^L over the layer index::

    j_t^l = σ(U_jh h_t^l + U_jg g_t^{l-1} + q_j ⊙ m_t^{l-1} + d_j)
    e_t^l = σ(U_eh h_t^l + U_eg g_t^{l-1} + q_e ⊙ m_t^{l-1} + d_e)
    m_t^l = e_t^l ⊙ m_t^{l-1} + j_t^l ⊙ tanh(U_sh h_t^l + U_sg g_t^{l-1} + d_s)
    v_t^l = σ(U_vh h_t^l + U_vg g_t^{l-1} + q_v ⊙ m_t^l + d_v)
    g_t^l = v_t^l ⊙ tanh(m_t^l)

g_t^L feeds the senone classifier; h_t^l feeds only the next time-LSTM. The layer-LSTM's
weights are shared over l (it is an LSTM whose "time" axis is depth) and it has no
recurrence over t, so it carries no state across chunks.

Execution: the whole time-LSTM stack runs first; then the layer-LSTM runs over depth once,
batched over all B·T frames (one matmul for the U_*h terms of every layer and frame, then
L small steps). It adds L steps to the sequential depth, not T·L: the time recurrence is
untouched, as in the paper, where the layer-LSTM of frame t runs beside the time-LSTM of
frame t+1.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from asr.errors import ConfigError
from asr.nnet.deep_common import init_uniform_, parse_sizes, script
from asr.nnet.lstm_cell import CellOptions, PeepholeLSTMLayer


def build_ltlstm(config: dict, num_inputs: int, num_pdfs: int) -> "LayerTrajectoryLSTM":
    """Registry entry for family ``ltlstm``: the common keys (asr/nnet/deep_common.py) for
    the time-LSTMs plus ``layer_cell_dim`` (layer-LSTM cells; 0 = cell_dim)."""
    sizes = parse_sizes(config)
    layer_cell_dim = int(config.get("layer_cell_dim") or 0) or sizes["cell_dim"]
    return LayerTrajectoryLSTM(num_inputs, num_pdfs, layer_cell_dim=layer_cell_dim, **sizes)


class LayerTrajectoryLSTM(nn.Module):
    """``forward(x[B, T, D], state=None) -> (logits[B, T, num_pdfs], state)``; the state is the
    time-LSTMs' state only, as the lstmp family's: (r[L, B, P], c[L, B, N], gates[L, B, 0])."""

    def __init__(self, num_inputs: int, num_pdfs: int, num_layers: int = 3, cell_dim: int = 256,
                 proj_dim: int = 0, layer_cell_dim: int = 256, cell_clip: float = 50.0,
                 init_scale: float = 0.0):
        super().__init__()
        if layer_cell_dim < 1:
            raise ConfigError(f"model config for family ltlstm: layer_cell_dim must be positive, got {layer_cell_dim}")
        self.num_inputs, self.num_pdfs = num_inputs, num_pdfs
        self.num_layers, self.cell_dim = num_layers, cell_dim
        self.out_dim = proj_dim or cell_dim
        self.time_layers = nn.ModuleList(
            PeepholeLSTMLayer(CellOptions(num_inputs if l == 0 else self.out_dim, cell_dim, proj_dim,
                                          cell_clip=cell_clip))
            for l in range(num_layers)
        )
        self.layer_lstm = LayerLSTM(self.out_dim, layer_cell_dim)
        self.output = nn.Linear(layer_cell_dim, num_pdfs)
        init_uniform_(self, init_scale, cell_dim)

    def forward(self, x: Tensor, state: Optional[tuple[Tensor, Tensor]] = None):
        layer_outputs, new_state = self.time_stack(x, state)
        return self.output(self.layer_lstm(layer_outputs)), new_state

    def time_stack(self, x: Tensor, state: Optional[tuple[Tensor, ...]] = None):
        """The time-LSTMs alone: (outputs of every layer [L, B, T, P], new state)."""
        y = x.transpose(0, 1)  # time-major for the recurrence
        outs, new = [], []
        for l, layer in enumerate(self.time_layers):
            y, s = layer(y, None if state is None else tuple(t[l] for t in state))
            outs.append(y)
            new.append(s)
        return torch.stack(outs).transpose(1, 2), tuple(torch.stack(parts) for parts in zip(*new))

    def describe(self) -> str:
        o = self.time_layers[0].opts
        k = self.layer_lstm.q.shape[1]
        return (f"{self.num_layers} x time peephole LSTM{'P' if o.rec_proj_dim else ''} layer(s) "
                f"(TorchScript), input {self.num_inputs}, cells {self.cell_dim}, recurrent proj "
                f"{o.rec_proj_dim or '-'}, cell clip {o.cell_clip or 'off'}; layer-LSTM over depth (shared weights, {k} cells, "
                f"batched over frames); output {k} -> {self.num_pdfs}")


class LayerLSTM(nn.Module):
    """The depth-recurrent LSTM: ``forward(h[L, B, T, P]) -> g^L [B, T, K]``.
    Gate order of the fused matrices: j (input), e (forget), s (cell input), v (output)."""

    def __init__(self, input_dim: int, cell_dim: int):
        super().__init__()
        self.u_h = nn.Linear(input_dim, 4 * cell_dim)  # U_*h and the biases d_*
        self.u_g = nn.Parameter(torch.empty(4 * cell_dim, cell_dim))  # U_*g
        self.q = nn.Parameter(torch.empty(3, cell_dim))  # q_j, q_e, q_v

    def forward(self, h: Tensor) -> Tensor:
        num_layers, b, t, _ = h.shape
        pre = self.u_h(h.reshape(num_layers, b * t, -1))  # every layer and frame at once
        g = layer_lstm_recurrence(pre, self.u_g.t(), self.q)
        return g.reshape(b, t, -1)


def _layer_lstm_recurrence(pre: Tensor, u_g_t: Tensor, q: Tensor) -> Tensor:
    """Loop over depth: ``pre[L, F, 4K]`` (F frames). Returns g^L [F, K]."""
    k = q.shape[1]
    g = pre.new_zeros(pre.shape[1], k)
    m = pre.new_zeros(pre.shape[1], k)
    for pre_l in pre.unbind(0):
        z = torch.addmm(pre_l, g, u_g_t)
        zj, ze, zs, zv = z.chunk(4, 1)
        j = torch.sigmoid(zj + q[0] * m)
        e = torch.sigmoid(ze + q[1] * m)
        m = e * m + j * torch.tanh(zs)
        v = torch.sigmoid(zv + q[2] * m)
        g = v * torch.tanh(m)
    return g


layer_lstm_recurrence = script(_layer_lstm_recurrence)
