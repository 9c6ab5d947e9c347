"""Residual LSTM (Kim, El-Khamy, Lee 2017, arXiv 1701.03360): a spatial shortcut from the
layer input, added to the projected cell output *before* the output gate, so the shortcut
reuses the output gate and the projection and needs no gate of its own::

    i_t = σ(W_ix x_t + W_ih h_{t-1} + w_ic ⊙ c_{t-1} + b_i)
    f_t = σ(W_fx x_t + W_fh h_{t-1} + w_fc ⊙ c_{t-1} + b_f)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(W_cx x_t + W_ch h_{t-1} + b_c)
    o_t = σ(W_ox x_t + W_oh h_{t-1} + w_oc ⊙ c_t + b_o)
    m_t = W_p tanh(c_t)
    h_t = o_t ⊙ (m_t + W_h x_t)          # W_h = identity when dim x == dim h

The output gate has the size of h (the projection size P); its peephole on c_t is diagonal,
so it exists only when P == N (cell size); with P != N the output gate has no peephole.
The temporal path (c) and the spatial path (h) stay separate. Only the first layer, whose
input is the feature vector, needs the matrix W_h.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from asr.nnet.deep_common import init_uniform_, parse_sizes, script, zero_state


def build_residual_lstm(config: dict, num_inputs: int, num_pdfs: int) -> "ResidualLSTM":
    """Registry entry for family ``residual_lstm`` (config keys: asr/nnet/deep_common.py;
    ``proj_dim`` is the output size P, 0 = cell_dim)."""
    sizes = parse_sizes(config)
    sizes["proj_dim"] = sizes["proj_dim"] or sizes["cell_dim"]
    return ResidualLSTM(num_inputs, num_pdfs, **sizes)


class ResidualLSTM(nn.Module):
    """Stack of residual LSTM layers and a linear output layer.

    ``forward(x[B, T, D], state=None) -> (logits[B, T, num_pdfs], (h[L, B, P], c[L, B, N]))``.
    """

    def __init__(self, num_inputs: int, num_pdfs: int, num_layers: int = 3, cell_dim: int = 256,
                 proj_dim: int = 256, cell_clip: float = 50.0, init_scale: float = 0.0):
        super().__init__()
        self.num_inputs, self.num_pdfs = num_inputs, num_pdfs
        self.num_layers, self.cell_dim, self.out_dim = num_layers, cell_dim, proj_dim
        self.layers = nn.ModuleList(
            ResidualLSTMLayer(num_inputs if l == 0 else proj_dim, cell_dim, proj_dim, cell_clip)
            for l in range(num_layers)
        )
        self.output = nn.Linear(proj_dim, num_pdfs)
        init_uniform_(self, init_scale, cell_dim)

    def forward(self, x: Tensor, state: Optional[tuple[Tensor, Tensor]] = None):
        h0, c0 = state if state is not None else zero_state(x, self.num_layers, self.out_dim, self.cell_dim)
        hs, cs = [], []
        for l, layer in enumerate(self.layers):
            x, (h, c) = layer(x, h0[l], c0[l])
            hs.append(h)
            cs.append(c)
        return self.output(x), (torch.stack(hs), torch.stack(cs))

    def describe(self) -> str:
        first = self.layers[0]
        return (f"{self.num_layers} x residual peephole LSTM layer(s) (TorchScript), input {self.num_inputs}, "
                f"cells {self.cell_dim}, projection/output {self.out_dim}, shortcut "
                f"{'W_h' if first.shortcut is not None else 'identity'} on layer 1, identity above, "
                f"output-gate peephole {'on' if first.peep_o is not None else 'off (P != N)'}, "
                f"cell clip {first.cell_clip or 'off'}; output {self.out_dim} -> {self.num_pdfs}")


class ResidualLSTMLayer(nn.Module):
    """``forward(x[B, T, D], h0[B, P], c0[B, N]) -> (h[B, T, P], (h_T, c_T))``."""

    def __init__(self, input_dim: int, cell_dim: int, proj_dim: int, cell_clip: float = 50.0):
        super().__init__()
        n, p = cell_dim, proj_dim
        self.cell_clip = cell_clip
        # fused input projection, gate order i, f, g (cell input), o; o has size P
        self.w_x = nn.Linear(input_dim, 3 * n + p)
        self.w_h = nn.Parameter(torch.empty(3 * n + p, p))  # recurrent, from h_{t-1}
        self.peep = nn.Parameter(torch.empty(2, n))  # w_ic, w_fc
        self.peep_o = nn.Parameter(torch.empty(n)) if p == n else None
        self.w_p = nn.Parameter(torch.empty(p, n))  # output projection
        self.shortcut = nn.Linear(input_dim, p, bias=False) if input_dim != p else None

    def forward(self, x: Tensor, h0: Tensor, c0: Tensor):
        pre = self.w_x(x).transpose(0, 1).contiguous()  # [T, B, 3N+P]
        skip = (x if self.shortcut is None else self.shortcut(x)).transpose(0, 1).contiguous()
        outs, h, c = residual_lstm_recurrence(pre, skip, self.w_h.t(), self.peep, self.peep_o,
                                              self.w_p.t(), h0, c0, self.cell_clip)
        return outs.transpose(0, 1), (h, c)


def _residual_lstm_recurrence(pre: Tensor, skip: Tensor, w_h_t: Tensor, peep: Tensor,
                             peep_o: Optional[Tensor], w_p_t: Tensor, h: Tensor, c: Tensor,
                             cell_clip: float):
    """Loop over time: ``pre[T, B, 3N+P]`` input projections + biases, ``skip[T, B, P]`` the
    shortcut (x or W_h x). Returns h[T, B, P] and the final (h, c)."""
    n = peep.shape[1]
    outs: list[Tensor] = []
    pres, skips = pre.unbind(0), skip.unbind(0)  # not pre[t]: see peephole_lstmp_recurrence
    for t in range(len(pres)):
        z = torch.addmm(pres[t], h, w_h_t)
        zi, zf, zg, zo = torch.split(z, [n, n, n, z.shape[1] - 3 * n], 1)
        i = torch.sigmoid(zi + peep[0] * c)
        f = torch.sigmoid(zf + peep[1] * c)
        c = f * c + i * torch.tanh(zg)
        if cell_clip > 0.0:
            c = torch.clamp(c, -cell_clip, cell_clip)
        if peep_o is not None:
            zo = zo + peep_o * c
        o = torch.sigmoid(zo)
        h = o * (torch.mm(torch.tanh(c), w_p_t) + skips[t])
        outs.append(h)
    return torch.stack(outs), h, c


residual_lstm_recurrence = script(_residual_lstm_recurrence)
