"""Highway LSTM (Zhang et al. 2016, arXiv 1510.08983): a depth (carry) gate lets the cell of
layer l+1 take the cell of layer l at the same frame directly.

Per layer (peephole LSTMP; ``r`` is the recurrent output, ``r = W_rm m`` or ``m`` without
projection), and for every layer above the first::

    d_t = σ(W_xd x_t + w_cd ⊙ c_{t-1} + w_ld ⊙ c_t^{lower} + b_d)
    c_t = d_t ⊙ c_t^{lower} + f_t ⊙ c_{t-1} + i_t ⊙ tanh(W_xc x_t + W_rc r_{t-1} + b_c)

The depth gate has no recurrent matrix (as in the paper); its two cell terms are diagonal.
The first layer has no lower cell and is a plain peephole LSTMP layer. All layers have the
same cell size.

The layers run one after the other over the whole chunk: layer l's cells for all frames are
known before layer l+1 starts, so ``w_ld ⊙ c^{lower}`` is folded into the input projection
outside the loop. The loop over time is TorchScript; each step is one matmul with the
recurrent weights plus elementwise ops.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from asr.nnet.deep_common import init_uniform_, parse_sizes, script, zero_state


def build_highway_lstm(config: dict, num_inputs: int, num_pdfs: int) -> "HighwayLSTM":
    """Registry entry for family ``highway_lstm`` (config keys: asr/nnet/deep_common.py)."""
    return HighwayLSTM(num_inputs, num_pdfs, **parse_sizes(config))


class HighwayLSTM(nn.Module):
    """Stack of highway LSTMP layers and a linear output layer.

    ``forward(x[B, T, D], state=None) -> (logits[B, T, num_pdfs], (r[L, B, P], c[L, B, N]))``;
    pass the returned state to the next chunk of the same streams.
    """

    def __init__(self, num_inputs: int, num_pdfs: int, num_layers: int = 3, cell_dim: int = 256,
                 proj_dim: int = 0, cell_clip: float = 50.0, init_scale: float = 0.0):
        super().__init__()
        self.num_inputs, self.num_pdfs = num_inputs, num_pdfs
        self.num_layers, self.cell_dim = num_layers, cell_dim
        self.out_dim = proj_dim or cell_dim
        self.layers = nn.ModuleList(
            HighwayLSTMLayer(num_inputs if l == 0 else self.out_dim, cell_dim, proj_dim,
                               depth_gate=l > 0, cell_clip=cell_clip)
            for l in range(num_layers)
        )
        self.output = nn.Linear(self.out_dim, num_pdfs)
        init_uniform_(self, init_scale, cell_dim)

    def forward(self, x: Tensor, state: Optional[tuple[Tensor, Tensor]] = None):
        r0, c0 = state if state is not None else zero_state(x, self.num_layers, self.out_dim, self.cell_dim)
        rs, cs = [], []
        lower_cells: Optional[Tensor] = None
        for l, layer in enumerate(self.layers):
            x, lower_cells, (r, c) = layer(x, r0[l], c0[l], lower_cells)
            rs.append(r)
            cs.append(c)
        return self.output(x), (torch.stack(rs), torch.stack(cs))

    def describe(self) -> str:
        first = self.layers[0]
        proj = first.w_rm.shape[0] if first.w_rm is not None else "-"
        return (f"{self.num_layers} x highway peephole LSTM{'P' if first.w_rm is not None else ''} layer(s) "
                f"(TorchScript), input {self.num_inputs}, cells {self.cell_dim}, recurrent proj {proj}, "
                f"depth gate on layers 2..{self.num_layers}, cell clip {first.cell_clip or 'off'}; "
                f"output {self.out_dim} -> {self.num_pdfs}")


class HighwayLSTMLayer(nn.Module):
    """One highway layer: a peephole LSTM(P) layer with the depth gate (without it on the first layer).

    ``forward(x[B, T, D], r0[B, P], c0[B, N], lower_cells[B, T, N] | None)
    -> (outputs[B, T, P], cells[B, T, N], (r_T, c_T))``. Gate order of the fused input
    projection: i, f, g, o (as torch.nn.LSTM), then d.
    """

    def __init__(self, input_dim: int, cell_dim: int, proj_dim: int = 0, depth_gate: bool = False,
                 cell_clip: float = 50.0):
        super().__init__()
        n = cell_dim
        self.depth_gate = depth_gate
        self.cell_clip = cell_clip
        out = proj_dim or cell_dim
        self.w_x = nn.Linear(input_dim, (5 if depth_gate else 4) * n)
        self.w_r = nn.Parameter(torch.empty(4 * n, out))
        # peepholes: i and f see c_{t-1}, o sees c_t; the depth gate sees c_{t-1} and c^{lower}_t
        self.peep = nn.Parameter(torch.empty(3, n))
        if depth_gate:
            self.depth_peep = nn.Parameter(torch.empty(2, n))  # [w_cd, w_ld]
        self.w_rm = nn.Parameter(torch.empty(proj_dim, n)) if proj_dim else None

    def forward(self, x: Tensor, r0: Tensor, c0: Tensor, lower_cells: Optional[Tensor] = None):
        n = self.peep.shape[1]
        pre = self.w_x(x).transpose(0, 1)  # [T, B, G*N]
        carry: Optional[Tensor] = None
        pre_d: Optional[Tensor] = None
        w_cd: Optional[Tensor] = None
        if self.depth_gate:
            if lower_cells is None:
                raise ValueError("a highway layer needs the lower layer's cells")
            carry = lower_cells.transpose(0, 1)
            pre_d = pre[:, :, 4 * n:] + self.depth_peep[1] * carry
            pre = pre[:, :, :4 * n]
            w_cd = self.depth_peep[0]
        outs, cells, r, c = peephole_lstmp_recurrence(
            pre.contiguous(), self.w_r.t(), self.peep, self.w_rm, r0, c0, carry, pre_d, w_cd, self.cell_clip)
        return outs.transpose(0, 1), cells.transpose(0, 1), (r, c)


def _peephole_lstmp_recurrence(pre: Tensor, w_r_t: Tensor, peep: Tensor, w_rm: Optional[Tensor],
                              r: Tensor, c: Tensor, carry: Optional[Tensor], pre_d: Optional[Tensor],
                              w_cd: Optional[Tensor], cell_clip: float):
    """Loop over time. ``pre[T, B, 4N]`` = input projections + biases (i, f, g, o);
    ``carry[T, B, N]`` the lower layer's cells and ``pre_d[T, B, N]`` the depth gate's
    precomputed input (highway layers only). Returns outputs [T, B, P], cells [T, B, N] and
    the final (r, c)."""
    outs: list[Tensor] = []
    cells: list[Tensor] = []
    p_i, p_f, p_o = peep[0], peep[1], peep[2]
    # unbind once: indexing pre[t] would cost a full-size zero tensor per step in backward
    pres = pre.unbind(0)
    carries = carry.unbind(0) if carry is not None else pres
    pre_ds = pre_d.unbind(0) if pre_d is not None else pres
    for t in range(len(pres)):
        z = torch.addmm(pres[t], r, w_r_t)
        zi, zf, zg, zo = z.chunk(4, 1)
        i = torch.sigmoid(zi + p_i * c)
        f = torch.sigmoid(zf + p_f * c)
        c_new = f * c + i * torch.tanh(zg)
        if carry is not None and pre_d is not None and w_cd is not None:
            d = torch.sigmoid(pre_ds[t] + w_cd * c)
            c_new = c_new + d * carries[t]
        c = torch.clamp(c_new, -cell_clip, cell_clip) if cell_clip > 0.0 else c_new
        o = torch.sigmoid(zo + p_o * c)
        m = o * torch.tanh(c)
        r = m if w_rm is None else torch.mm(m, w_rm.t())
        outs.append(r)
        cells.append(c)
    return torch.stack(outs), torch.stack(cells), r, c


peephole_lstmp_recurrence = script(_peephole_lstmp_recurrence)
