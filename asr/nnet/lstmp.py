"""Stacked LSTMP acoustic model (Sak, Senior & Beaufays 2014) and its plain-LSTM form.

Config (the ``model:`` section; defaults in brackets)::

    family: lstmp            # or lstm (= no recurrent projection)
    num_layers: 2
    cell_dim: 800            # n_c
    proj_dim: 512            # n_r, recurrent projection (lstmp only)
    nonrec_proj_dim: 0       # n_p, optional non-recurrent projection p_t
    peepholes: true          # diagonal peepholes w_ic, w_fc, w_oc
    cell_clip: 50            # clip c_t to [-50, 50]; null = no clipping
    variant: []              # Greff et al. flags: NIG NFG NOG NIAF NOAF NP CIFG FGR
    init_scale: null         # e.g. 0.02 → all weights U(-0.02, 0.02) (paper); null = PyTorch default
    implementation: auto     # auto | custom | fused

``implementation: auto`` uses the fast path ``torch.nn.LSTM(proj_size=n_r)`` (MKL/cuDNN
kernels) when the layer has no peepholes, no p_t and no variant flag; nn.LSTM cannot
clip cells, so ``cell_clip`` is not applied on the fast path (logged). ``custom`` forces
the TorchScript peephole cell; ``fused`` demands the fast path.

State across truncated-BPTT chunks: a tuple of tensors, each ``[num_layers, B, ...]``
(batch on dim 1): ``(r, c)`` and, for FGR, the previous gate activations.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from asr.errors import ConfigError
from asr.nnet.lstm_cell import CellOptions, PeepholeLSTMLayer

log = logging.getLogger(__name__)

# nn.LSTM(proj_size) on CPU: oneDNN has no projection kernel, ATen's own is used (not an error)
warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")

def build_lstmp(config: dict[str, Any], num_inputs: int, num_pdfs: int) -> "LSTMPModel":
    return LSTMPModel(config, num_inputs, num_pdfs)


def _variant_flags(v) -> tuple[str, ...]:
    if v is None or v == "vanilla":
        return ()
    if isinstance(v, str):
        v = v.replace(",", " ").split()
    return tuple(str(f).upper() for f in v if str(f).lower() != "vanilla")


class LSTMPModel(nn.Module):
    """N stacked (peephole) LSTM(P) layers and a linear output layer over pdfs (logits)."""

    def __init__(self, config: dict[str, Any], num_inputs: int, num_pdfs: int):
        super().__init__()
        self.num_inputs = int(num_inputs)
        self.num_pdfs = int(num_pdfs)
        self.num_layers = int(config.get("num_layers", 2))
        cell = int(config.get("cell_dim", 800))
        proj = int(config.get("proj_dim") or 0)
        nonrec = int(config.get("nonrec_proj_dim") or 0)
        peep = bool(config.get("peepholes", True))
        clip = config.get("cell_clip", 50.0)
        clip = float(clip) if clip else 0.0
        flags = _variant_flags(config.get("variant"))
        impl = config.get("implementation", "auto")
        if proj and proj >= cell:
            log.warning("recurrent projection %d is not smaller than cell_dim %d", proj, cell)
        fusable = not peep and not nonrec and not flags
        if impl == "fused" and not fusable:
            raise ConfigError("implementation fused (nn.LSTM) needs peepholes: false, nonrec_proj_dim: 0, no variant")
        self.fused = fusable and impl != "custom"
        self.cell_clip = clip
        if self.fused:
            if clip:
                log.info("nn.LSTM fast path: cell clipping (±%g) is not applied", clip)
            self.lstm = nn.LSTM(num_inputs, cell, num_layers=self.num_layers, proj_size=proj, batch_first=True)
            out_dim = proj or cell
            self.layers = None
        else:
            self.lstm = None
            layers = []
            d = num_inputs
            for _ in range(self.num_layers):
                opts = CellOptions(d, cell, proj, nonrec, peep, clip, flags)
                layers.append(PeepholeLSTMLayer(opts))
                d = opts.output_dim
            self.layers = nn.ModuleList(layers)
            out_dim = d
        self.output = nn.Linear(out_dim, num_pdfs)
        scale = config.get("init_scale")
        if scale:
            for p in self.parameters():
                nn.init.uniform_(p, -float(scale), float(scale))

    def forward(self, x: Tensor, state=None):
        """``x[B, T, D]`` → ``(logits[B, T, num_pdfs], new_state)``."""
        if self.fused:
            y, (h, c) = self.lstm(x, None if state is None else (state[0], state[1]))
            return self.output(y), (h, c)
        y = x.transpose(0, 1)  # time-major for the recurrence
        new = []
        for k, layer in enumerate(self.layers):
            s = None if state is None else tuple(t[k] for t in state)
            y, s = layer(y, s)
            new.append(s)
        logits = self.output(y.transpose(0, 1))
        return logits, tuple(torch.stack(parts, 0) for parts in zip(*new))

    def describe(self) -> str:
        if self.fused:
            kind = f"nn.LSTM fast path (proj_size={self.lstm.proj_size}, no peepholes, no cell clip)"
            return (f"{self.num_layers} x LSTM{'P' if self.lstm.proj_size else ''} layer(s), cells "
                    f"{self.lstm.hidden_size}, input {self.num_inputs}; {kind}; output {self.output.in_features}"
                    f" -> {self.num_pdfs}")
        o = self.layers[0].opts
        lines = [f"{self.num_layers} x peephole LSTM{'P' if o.rec_proj_dim else ''} layer(s) (TorchScript cell)"]
        for k, layer in enumerate(self.layers):
            o = layer.opts
            lines.append(
                f"  layer {k + 1}: input {o.input_dim}, cells {o.cell_dim}, recurrent proj {o.rec_proj_dim or '-'}, "
                f"non-recurrent proj {o.nonrec_proj_dim or '-'}, peepholes {'on' if o.use_peepholes else 'off'}, "
                f"cell clip {o.cell_clip or 'off'}, variant {' '.join(o.flags) or 'vanilla'}")
        lines.append(f"  output: {self.output.in_features} -> {self.num_pdfs} (softmax over pdfs)")
        return "\n".join(lines)
