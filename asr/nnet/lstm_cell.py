"""One peephole LSTM layer (Sak et al. 2014 LSTMP; Greff et al. 2015 variants).

Equations (``shared/reference/lstm-variants.md`` §1 and §5), per frame t::

    i_t = σ(W_ix x_t + W_ir r_{t-1} + w_ic ⊙ c_{t-1} + b_i)
    f_t = σ(W_fx x_t + W_fr r_{t-1} + w_fc ⊙ c_{t-1} + b_f)
    c_t = clip(f_t ⊙ c_{t-1} + i_t ⊙ g(W_cx x_t + W_cr r_{t-1} + b_c))
    o_t = σ(W_ox x_t + W_or r_{t-1} + w_oc ⊙ c_t + b_o)       # output peephole sees c_t
    m_t = o_t ⊙ h(c_t)
    r_t = W_rm m_t            (recurrent projection; r_t = m_t without one)
    p_t = W_pm m_t            (optional non-recurrent projection)
    layer output = [r_t ; p_t]

Greff variant flags: NIG (i = 1), NFG (f = 1), NOG (o = 1), NIAF (g = identity),
NOAF (h = identity), NP (no peepholes), CIFG (f = 1 − i, no forget-gate parameters),
FGR (full gate recurrence: the gate pre-activations of i, f, o also get
R · [i; f; o]_{t−1}, i.e. nine extra H×H matrices when all three gates exist).

Speed: the input projections of all frames are one matmul; the recurrence over frames
is a TorchScript function (no Python per frame). Gate blocks are laid out as the
present sigmoid gates in the order (i, f, o), then the block input g, so FGR's extra
term is one matmul onto a contiguous slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor, nn

from asr.errors import ConfigError
from asr.nnet.deep_common import script
from asr.nnet.lstmp_function import peephole_lstmp

GREFF_FLAGS = ("NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR")


@dataclass(frozen=True)
class CellOptions:
    """Structural options of a peephole LSTM layer."""

    input_dim: int
    cell_dim: int
    rec_proj_dim: int = 0  # n_r; 0 = no recurrent projection (r_t = m_t)
    nonrec_proj_dim: int = 0  # n_p; 0 = no p_t
    peepholes: bool = True
    cell_clip: float = 0.0  # 0 or less = no clipping
    flags: Tuple[str, ...] = ()

    def __post_init__(self):
        bad = [f for f in self.flags if f not in GREFF_FLAGS]
        if bad:
            raise ConfigError(f"unknown LSTM variant flag(s) {bad}; known: {', '.join(GREFF_FLAGS)}")
        if "CIFG" in self.flags and ("NIG" in self.flags or "NFG" in self.flags):
            raise ConfigError("variant CIFG (f = 1 - i) cannot be combined with NIG or NFG")
        if self.cell_dim <= 0 or self.input_dim <= 0:
            raise ConfigError(f"cell_dim and input_dim must be positive (got {self.cell_dim}, {self.input_dim})")

    @property
    def has_i(self) -> bool:
        return "NIG" not in self.flags

    @property
    def has_f(self) -> bool:  # f has its own parameters
        return "NFG" not in self.flags and "CIFG" not in self.flags

    @property
    def has_o(self) -> bool:
        return "NOG" not in self.flags

    @property
    def use_peepholes(self) -> bool:
        return self.peepholes and "NP" not in self.flags

    @property
    def recurrent_dim(self) -> int:
        return self.rec_proj_dim or self.cell_dim

    @property
    def output_dim(self) -> int:
        return self.recurrent_dim + self.nonrec_proj_dim

    @property
    def sigmoid_gates(self) -> List[str]:
        return [g for g, on in (("i", self.has_i), ("f", self.has_f), ("o", self.has_o)) if on]


class PeepholeLSTMLayer(nn.Module):
    """A single (uni-directional) peephole LSTM layer over ``x[T, B, input_dim]`` (time-major).

    Parameters: ``weight_ih[G*H, n_i]``, ``weight_hh[G*H, n_r]``, ``bias[G*H]`` with gate
    blocks (present sigmoid gates in order i, f, o, then g); ``peep_i/peep_f/peep_o[H]``
    for the peepholes of present gates; ``weight_rec[n_r, H]`` (W_rm), ``weight_nonrec[n_p, H]``
    (W_pm); ``weight_fgr[S*H, S*H]`` for FGR. State per layer: ``(r[B, n_r], c[B, H],
    gates[B, S*H])`` (gates only used by FGR; an empty tensor otherwise).
    """

    def __init__(self, opts: CellOptions):
        super().__init__()
        self.opts = opts
        H = opts.cell_dim
        self.gate_names = opts.sigmoid_gates + ["g"]
        G = len(self.gate_names)
        S = len(opts.sigmoid_gates)
        self.weight_ih = nn.Parameter(torch.empty(G * H, opts.input_dim))
        self.weight_hh = nn.Parameter(torch.empty(G * H, opts.recurrent_dim))
        self.bias = nn.Parameter(torch.empty(G * H))
        self.peep_i = nn.Parameter(torch.empty(H)) if opts.use_peepholes and opts.has_i else None
        self.peep_f = nn.Parameter(torch.empty(H)) if opts.use_peepholes and opts.has_f else None
        self.peep_o = nn.Parameter(torch.empty(H)) if opts.use_peepholes and opts.has_o else None
        self.weight_rec = nn.Parameter(torch.empty(opts.rec_proj_dim, H)) if opts.rec_proj_dim else None
        self.weight_nonrec = nn.Parameter(torch.empty(opts.nonrec_proj_dim, H)) if opts.nonrec_proj_dim else None
        self.weight_fgr = nn.Parameter(torch.empty(S * H, S * H)) if "FGR" in opts.flags and S else None
        # all three gates, no Greff flag but NP, no p_t: asr.nnet.lstmp_function's speed path
        self.standard = set(opts.flags) <= {"NP"} and not opts.nonrec_proj_dim
        self.reset_parameters()

    def reset_parameters(self, scale: float | None = None) -> None:
        """U(−scale, scale) for every parameter; default scale 1/sqrt(H) (as nn.LSTM)."""
        s = 1.0 / math.sqrt(self.opts.cell_dim) if scale is None else scale
        for p in self.parameters():
            nn.init.uniform_(p, -s, s)

    def gate_slice(self, name: str) -> slice:
        """Rows of ``weight_ih``/``weight_hh``/``bias`` that belong to gate ``name`` (i, f, o, g)."""
        k = self.gate_names.index(name)
        H = self.opts.cell_dim
        return slice(k * H, (k + 1) * H)

    def zero_state(self, batch: int, device=None, dtype=None) -> Tuple[Tensor, Tensor, Tensor]:
        o = self.opts
        S = len(o.sigmoid_gates) if self.weight_fgr is not None else 0
        z = dict(device=device, dtype=dtype)
        return (torch.zeros(batch, o.recurrent_dim, **z), torch.zeros(batch, o.cell_dim, **z),
                torch.zeros(batch, S * o.cell_dim, **z))

    def forward(self, x: Tensor, state: Tuple[Tensor, Tensor, Tensor] | None = None):
        """``x[T, B, n_i]`` → ``(y[T, B, n_r + n_p], (r_T, c_T, gates_T))``."""
        T, B, _ = x.shape
        if state is None:
            state = self.zero_state(B, x.device, x.dtype)
        o = self.opts
        xw = torch.addmm(self.bias, x.reshape(T * B, -1), self.weight_ih.t()).view(T, B, -1)
        if self.standard:  # the speed path: one autograd node, hand-written backward
            peep = (torch.stack([self.peep_i, self.peep_f, self.peep_o]) if o.use_peepholes
                    else x.new_zeros(3, o.cell_dim))
            w_rec_t = self.weight_rec.t() if self.weight_rec is not None else x.new_zeros(0)
            out, r, c = peephole_lstmp(xw, state[0], state[1], self.weight_hh.t(), peep, w_rec_t,
                                       o.cell_clip, o.use_peepholes, self.weight_rec is not None)
            return out, (r, c, state[2])
        empty = x.new_zeros(0)
        out, m_all, r, c, g = _recurrence(
            xw, state[0], state[1], state[2], self.weight_hh.t(),
            self.peep_i if self.peep_i is not None else empty,
            self.peep_f if self.peep_f is not None else empty,
            self.peep_o if self.peep_o is not None else empty,
            self.weight_rec.t() if self.weight_rec is not None else empty,
            self.weight_fgr.t() if self.weight_fgr is not None else empty,
            o.has_i, o.has_f, o.has_o, "CIFG" in o.flags, "NIAF" in o.flags, "NOAF" in o.flags,
            float(o.cell_clip), self.weight_nonrec is not None,
        )
        if self.weight_nonrec is not None:
            p = torch.matmul(m_all, self.weight_nonrec.t())
            out = torch.cat([out, p], dim=-1)
        return out, (r, c, g)

    @torch.no_grad()
    def load_from_nn_lstm(self, lstm: nn.LSTM, layer: int = 0) -> None:
        """Copy weights of ``lstm``'s layer into this layer (peepholes → 0). Requires the
        plain vanilla structure (all gates, no FGR, no p_t). Used to check equivalence."""
        o = self.opts
        if o.flags or o.nonrec_proj_dim:
            raise ConfigError("load_from_nn_lstm needs a vanilla layer without p_t")
        H = o.cell_dim
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        w_hh = getattr(lstm, f"weight_hh_l{layer}")
        b = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        torch_order = {"i": 0, "f": 1, "g": 2, "o": 3}
        for name in self.gate_names:
            src = slice(torch_order[name] * H, (torch_order[name] + 1) * H)
            dst = self.gate_slice(name)
            self.weight_ih[dst] = w_ih[src]
            self.weight_hh[dst] = w_hh[src]
            self.bias[dst] = b[src]
        for p in (self.peep_i, self.peep_f, self.peep_o):
            if p is not None:
                p.zero_()
        if self.weight_rec is not None:
            self.weight_rec.copy_(getattr(lstm, f"weight_hr_l{layer}"))


def _gate(pre: Tensor, k: int, H: int, peep: Tensor, c: Tensor, use_peep: bool) -> Tensor:
    """sigmoid of gate k's pre-activation block, plus its peephole term peep ⊙ c."""
    a = pre[:, k * H : (k + 1) * H]
    if use_peep:
        a = a + peep * c
    return torch.sigmoid(a)


def _recurrence_impl(
    xw: Tensor,
    r0: Tensor,
    c0: Tensor,
    g0: Tensor,
    w_hh_t: Tensor,
    peep_i: Tensor,
    peep_f: Tensor,
    peep_o: Tensor,
    w_rec_t: Tensor,
    w_fgr_t: Tensor,
    has_i: bool,
    has_f: bool,
    has_o: bool,
    cifg: bool,
    niaf: bool,
    noaf: bool,
    cell_clip: float,
    keep_m: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    H = c0.shape[1]
    use_pi = peep_i.numel() > 0
    use_pf = peep_f.numel() > 0
    use_po = peep_o.numel() > 0
    use_rec = w_rec_t.numel() > 0
    use_fgr = w_fgr_t.numel() > 0
    S = int(has_i) + int(has_f) + int(has_o)
    ki = 0
    kf = int(has_i)
    ko = int(has_i) + int(has_f)
    r = r0
    c = c0
    gprev = g0
    outs: List[Tensor] = []
    ms: List[Tensor] = []
    for x_t in xw.unbind(0):  # one unbind, not one xw[t] view per step
        pre = torch.addmm(x_t, r, w_hh_t)
        if use_fgr:
            sig = pre[:, : S * H] + torch.mm(gprev, w_fgr_t)
            pre = torch.cat([sig, pre[:, S * H :]], dim=1)
        i = _gate(pre, ki, H, peep_i, c, use_pi) if has_i else torch.ones_like(c)
        if cifg:
            f = 1.0 - i
        else:
            f = _gate(pre, kf, H, peep_f, c, use_pf) if has_f else torch.ones_like(c)
        z = pre[:, S * H :]
        if not niaf:
            z = torch.tanh(z)
        c = f * c + i * z
        if cell_clip > 0.0:
            c = torch.clamp(c, -cell_clip, cell_clip)
        og = _gate(pre, ko, H, peep_o, c, use_po) if has_o else torch.ones_like(c)
        m = og * (c if noaf else torch.tanh(c))
        r = torch.mm(m, w_rec_t) if use_rec else m
        if use_fgr:
            gl: List[Tensor] = []
            if has_i:
                gl.append(i)
            if has_f:
                gl.append(f)
            if has_o:
                gl.append(og)
            gprev = torch.cat(gl, dim=1)
        outs.append(r)
        if keep_m:
            ms.append(m)
    out = torch.stack(outs, 0)
    m_all = torch.stack(ms, 0) if keep_m else out.new_zeros(0)
    return out, m_all, r, c, gprev


_recurrence = script(_recurrence_impl)
