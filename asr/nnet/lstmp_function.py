"""The standard peephole LSTMP recurrence (Sak et al. 2014) as one autograd function with
a hand-written backward: the speed path of :class:`asr.nnet.lstm_cell.PeepholeLSTMLayer`.

It computes exactly what the generic TorchScript recurrence of ``lstm_cell.py`` computes
for a layer with all three sigmoid gates (i, f, o) and no Greff flag — peepholes and
cell clipping optional, recurrent projection optional — but:

- the forward loop records no autograd graph (one node for the whole chunk instead of
  about 20 per frame);
- the backward loop does only the work that is recurrent (the gate and cell gradients
  frame by frame); the weight gradients are one matrix product over all T·B frames
  after the loop (``dW_hh = R_prev^T dPre``, ``dW_rec = M^T dR``), the peephole
  gradients one reduction.

Both loops are TorchScript (no Python per frame). ``tests/test_nnet_models.py`` checks
outputs and every gradient against the generic recurrence (and gradcheck in float64).

Gate blocks of ``xw`` and ``w_hh_t``: i, f, o, g (``PeepholeLSTMLayer`` layout).
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from asr.nnet.deep_common import script


def _forward_impl(xw: Tensor, r0: Tensor, c0: Tensor, w_hh_t: Tensor, peep: Tensor, w_rec_t: Tensor,
                  cell_clip: float, use_peep: bool, use_rec: bool
                  ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Returns ``(out[T,B,R], ifo[T,B,3,H], g[T,B,H], c_prev_all[T+1,B,H] (c_0..c_T),
    c_raw[T,B,H] (before clipping), m[T,B,H], h[T,B,H])``. ``peep[3,H]`` (i, f, o)."""
    T = xw.shape[0]
    B = xw.shape[1]
    H = c0.shape[1]
    r = r0
    c = c0
    outs: List[Tensor] = []
    ifos: List[Tensor] = []
    gs: List[Tensor] = []
    cs: List[Tensor] = [c0]
    raws: List[Tensor] = []
    ms: List[Tensor] = []
    hs: List[Tensor] = []
    p_if = peep[:2].unsqueeze(0)  # [1, 2, H]
    p_o = peep[2]
    for x_t in xw.unbind(0):
        pre = torch.addmm(x_t, r, w_hh_t)  # [B, 4H]
        a_if = pre[:, : 2 * H].view(B, 2, H)
        if use_peep:
            a_if = torch.addcmul(a_if, p_if, c.unsqueeze(1))
        s_if = torch.sigmoid(a_if)
        i = s_if[:, 0]
        f = s_if[:, 1]
        g = torch.tanh(pre[:, 3 * H:])
        c_raw = torch.addcmul(f * c, i, g)
        c = torch.clamp(c_raw, -cell_clip, cell_clip) if cell_clip > 0.0 else c_raw
        a_o = pre[:, 2 * H: 3 * H]
        if use_peep:
            a_o = torch.addcmul(a_o, p_o, c)
        o = torch.sigmoid(a_o)
        h = torch.tanh(c)
        m = o * h
        r = torch.mm(m, w_rec_t) if use_rec else m
        outs.append(r)
        ifos.append(torch.cat([s_if, o.unsqueeze(1)], dim=1))
        gs.append(g)
        cs.append(c)
        raws.append(c_raw)
        ms.append(m)
        hs.append(h)
    if T == 0:
        e = xw.new_zeros(0, B, H)
        return xw.new_zeros(0, B, r0.shape[1]), xw.new_zeros(0, B, 3, H), e, c0.unsqueeze(0), e, e, e
    return (torch.stack(outs), torch.stack(ifos), torch.stack(gs), torch.stack(cs), torch.stack(raws),
            torch.stack(ms), torch.stack(hs))


def _backward_impl(d_out: Tensor, d_rT: Tensor, d_cT: Tensor, ifo: Tensor, g: Tensor, c_all: Tensor,
                   c_raw: Tensor, h: Tensor, w_hh_t: Tensor, peep: Tensor, w_rec_t: Tensor,
                   cell_clip: float, use_peep: bool, use_rec: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The recurrent part of the backward: ``(d_pre[T,B,4H], d_r_all[T,B,R] (total gradient
    of each r_t), d_r0, d_c0, d_a[T,B,3,H] (gate pre-activation gradients i, f, o))``."""
    T = ifo.shape[0]
    B = ifo.shape[1]
    H = g.shape[2]
    i_all = ifo[:, :, 0]
    f_all = ifo[:, :, 1]
    o_all = ifo[:, :, 2]
    # frame-local factors of the chain rule, for all frames at once
    k_c = o_all * (1.0 - h * h)  # dm → dc through h = tanh(c)
    k_o = h * o_all * (1.0 - o_all)  # dm → d a_o
    k_ifg = torch.stack([g * i_all * (1.0 - i_all),  # dc~ → d a_i
                         c_all[:-1] * f_all * (1.0 - f_all),  # dc~ → d a_f
                         i_all * (1.0 - g * g)], dim=2)  # dc~ → d a_g   [T, B, 3, H]
    clip = cell_clip > 0.0
    # where the forward clipped c, no gradient flows back through c_raw (empty when not clipping)
    pass_clip = ((c_raw >= -cell_clip) & (c_raw <= cell_clip)).to(c_raw.dtype) if clip else c_raw.new_empty(0)
    p_if = peep[:2].unsqueeze(0)
    p_o = peep[2]
    d_r = d_rT
    d_c = d_cT
    d_pres: List[Tensor] = []
    d_rs: List[Tensor] = []
    for t in range(T - 1, -1, -1):
        d_r = d_r + d_out[t]
        d_rs.append(d_r)
        d_m = torch.mm(d_r, w_rec_t.t()) if use_rec else d_r
        d_ao = d_m * k_o[t]
        d_c = torch.addcmul(d_c, d_m, k_c[t])
        if use_peep:
            d_c = torch.addcmul(d_c, d_ao, p_o)
        d_craw = d_c * pass_clip[t] if clip else d_c
        d_ifg = d_craw.unsqueeze(1) * k_ifg[t]  # [B, 3, H]: a_i, a_f, a_g
        d_c = d_craw * f_all[t]
        if use_peep:
            d_c = d_c + (d_ifg[:, :2] * p_if).sum(1)
        d_pre = torch.cat([d_ifg[:, 0], d_ifg[:, 1], d_ao, d_ifg[:, 2]], dim=1)  # i, f, o, g
        d_pres.append(d_pre)
        d_r = torch.mm(d_pre, w_hh_t.t())
    d_pres.reverse()
    d_rs.reverse()
    if T == 0:
        return d_out.new_zeros(0, B, 4 * H), d_out, d_r, d_c, d_out.new_zeros(0, B, 3, H)
    d_pre_all = torch.stack(d_pres)
    d_a = torch.stack([d_pre_all[:, :, :H], d_pre_all[:, :, H: 2 * H], d_pre_all[:, :, 2 * H: 3 * H]], dim=2)
    return d_pre_all, torch.stack(d_rs), d_r, d_c, d_a


_forward = script(_forward_impl)
_backward = script(_backward_impl)


class PeepholeLSTMPFunction(torch.autograd.Function):
    """``(xw[T,B,4H], r0[B,R], c0[B,H], w_hh_t[R,4H], peep[3,H], w_rec_t[H,R] or empty)``
    → ``(out[T,B,R], r_T, c_T)``. ``peep`` is ignored (zero gradient) when ``use_peep``
    is false; ``w_rec_t`` when ``use_rec`` is false (then R = H and r_t = m_t)."""

    @staticmethod
    def forward(ctx, xw, r0, c0, w_hh_t, peep, w_rec_t, cell_clip: float, use_peep: bool, use_rec: bool):
        out, ifo, g, c_all, c_raw, m, h = _forward(xw, r0, c0, w_hh_t, peep, w_rec_t, cell_clip, use_peep, use_rec)
        ctx.save_for_backward(r0, w_hh_t, peep, w_rec_t, out, ifo, g, c_all, c_raw, m, h)
        ctx.opts = (cell_clip, use_peep, use_rec)
        r_T = out[-1] if out.shape[0] else r0
        return out, r_T, c_all[-1]

    @staticmethod
    def backward(ctx, d_out, d_rT, d_cT):
        r0, w_hh_t, peep, w_rec_t, out, ifo, g, c_all, c_raw, m, h = ctx.saved_tensors
        cell_clip, use_peep, use_rec = ctx.opts
        T, B, R = out.shape
        H = g.shape[2]
        d_out = torch.zeros_like(out) if d_out is None else d_out.contiguous()
        d_rT = torch.zeros_like(r0) if d_rT is None else d_rT
        d_cT = torch.zeros_like(c_all[0]) if d_cT is None else d_cT
        d_pre, d_r_all, d_r0, d_c0, d_a = _backward(d_out, d_rT, d_cT, ifo, g, c_all, c_raw, h, w_hh_t, peep,
                                                     w_rec_t, cell_clip, use_peep, use_rec)
        d_w_hh_t = d_peep = d_w_rec_t = None
        if ctx.needs_input_grad[3]:
            r_prev = torch.cat([r0.unsqueeze(0), out[:-1]], dim=0).reshape(T * B, R)
            d_w_hh_t = torch.mm(r_prev.t(), d_pre.reshape(T * B, 4 * H))
        if ctx.needs_input_grad[4]:
            if use_peep:
                c_seen = torch.stack([c_all[:-1], c_all[:-1], c_all[1:]], dim=2)  # i, f see c_{t-1}; o sees c_t
                d_peep = (d_a * c_seen).sum((0, 1))
            else:
                d_peep = torch.zeros_like(peep)
        if ctx.needs_input_grad[5] and use_rec:
            d_w_rec_t = torch.mm(m.reshape(T * B, H).t(), d_r_all.reshape(T * B, R))
        return d_pre, d_r0, d_c0, d_w_hh_t, d_peep, d_w_rec_t, None, None, None


def peephole_lstmp(xw: Tensor, r0: Tensor, c0: Tensor, w_hh_t: Tensor, peep: Tensor, w_rec_t: Tensor,
                   cell_clip: float, use_peep: bool, use_rec: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """The recurrence of a standard peephole LSTMP layer: ``(out[T,B,R], r_T, c_T)``.
    Under autocast it runs in float32 (the recurrence is small; its state stays exact)."""
    if torch.is_autocast_enabled(xw.device.type):
        with torch.autocast(device_type=xw.device.type, enabled=False):
            args = [t.float() for t in (xw, r0, c0, w_hh_t, peep, w_rec_t)]
            return PeepholeLSTMPFunction.apply(*args, float(cell_clip), use_peep, use_rec)
    return PeepholeLSTMPFunction.apply(xw, r0, c0, w_hh_t, peep, w_rec_t, float(cell_clip), use_peep, use_rec)
