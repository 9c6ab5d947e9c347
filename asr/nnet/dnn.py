"""Feed-forward DNN baseline on spliced frames (±k context).

Config (``model:`` section)::

    family: dnn
    splice: 5            # k: frames of context on each side (window 2k+1)
    hidden_dim: 1024
    num_layers: 4        # hidden layers
    activation: relu     # relu | sigmoid
    init_scale: null     # e.g. 0.02 → U(-0.02, 0.02); null = PyTorch default

To stream through truncated-BPTT chunks like the LSTMs, the DNN is causal with a built-in
latency of k frames: the output at step s sees input frames s−2k … s, i.e. the ±k window
centred on frame s−k. The left context is carried across chunks in the state
(``[1, B, 2k, D]``, zeros at the start of an utterance); the right context of the last
frames comes from the trainer/decoder repeating the last frame ``output_delay`` times. So
train it with ``output_delay`` = ``splice`` (the default presets do): then the output for
frame t (at step t + d) is the window centred on t.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def build_dnn(config: dict[str, Any], num_inputs: int, num_pdfs: int) -> "SplicedDNN":
    return SplicedDNN(config, num_inputs, num_pdfs)


class SplicedDNN(nn.Module):
    def __init__(self, config: dict[str, Any], num_inputs: int, num_pdfs: int):
        super().__init__()
        self.num_inputs = int(num_inputs)
        self.num_pdfs = int(num_pdfs)
        self.splice = int(config.get("splice", 5))
        hidden = int(config.get("hidden_dim", 1024))
        nlayers = int(config.get("num_layers", 4))
        act = config.get("activation", "relu")
        self.activation = act
        layers: list[nn.Module] = []
        d = num_inputs * (2 * self.splice + 1)
        for _ in range(nlayers):
            layers += [nn.Linear(d, hidden), nn.ReLU() if act == "relu" else nn.Sigmoid()]
            d = hidden
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(d, num_pdfs)
        scale = config.get("init_scale")
        if scale:
            for p in self.parameters():
                nn.init.uniform_(p, -float(scale), float(scale))

    def forward(self, x: Tensor, state=None):
        """``x[B, T, D]`` → ``(logits[B, T, num_pdfs], (history[1, B, 2k, D],))``."""
        B, T, D = x.shape
        k2 = 2 * self.splice
        if state is None:
            hist = x.new_zeros(B, k2, D)
        else:
            hist = state[0][0]
        xx = torch.cat([hist, x], dim=1)  # [B, T + 2k, D]
        win = xx.unfold(1, k2 + 1, 1)  # [B, T, D, 2k + 1]
        spliced = win.transpose(2, 3).reshape(B, T, (k2 + 1) * D)
        logits = self.output(self.hidden(spliced))
        return logits, (xx[:, xx.shape[1] - k2 :].unsqueeze(0),)

    def describe(self) -> str:
        nh = sum(1 for m in self.hidden if isinstance(m, nn.Linear))
        hd = self.output.in_features
        return (f"DNN: splice ±{self.splice} frames ({self.num_inputs} x {2 * self.splice + 1} = "
                f"{self.num_inputs * (2 * self.splice + 1)} inputs), {nh} x {hd} {self.activation} hidden layers, "
                f"output {hd} -> {self.num_pdfs}; causal latency {self.splice} frames")
