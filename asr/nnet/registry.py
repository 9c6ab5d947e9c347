"""Model registry: ``family`` name → builder ``(config, num_inputs, num_pdfs) -> nn.Module``.

Builders are named as ``"module:function"`` strings and imported on first use, so adding
a family is one line here (plus its module). Every model follows the contract
``forward(x[B, T, D], state=None) -> (logits[B, T, num_pdfs], new_state)`` where the state
is ``None`` or a tuple of tensors with the batch on dim 1 (so the trainer can reset and
detach streams generically: asr.nnet.state), and has ``describe() -> str``.
"""

from __future__ import annotations

import importlib
from typing import Any

from asr.errors import ConfigError

FAMILIES: dict[str, str] = {
    "lstmp": "asr.nnet.lstmp:build_lstmp",
    "lstm": "asr.nnet.lstm:build_lstm",
    "dnn": "asr.nnet.dnn:build_dnn",
    "residual_lstm": "asr.nnet.residual_lstm:build_residual_lstm",
    "highway_lstm": "asr.nnet.highway_lstm:build_highway_lstm",
    "ltlstm": "asr.nnet.ltlstm:build_ltlstm",
}

# Families whose output for frame t depends on frames up to t + output_delay only (the
# LSTMs are unidirectional; the DNN's splice window lies within its state and the delay):
# their chunked forward with carried state equals the whole-utterance forward, so they can
# stream (asr.online). A family missing here is refused by the streaming recognizer.
CAUSAL_FAMILIES: frozenset[str] = frozenset({"lstmp", "lstm", "dnn", "residual_lstm", "highway_lstm", "ltlstm"})


def build_model(config: dict[str, Any], num_inputs: int, num_pdfs: int):
    """Build the acoustic model described by a ``model:`` config section."""
    if not isinstance(config, dict) or "family" not in config:
        raise ConfigError(f"model config needs a 'family' key (one of {', '.join(sorted(FAMILIES))})")
    family = config["family"]
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    if num_inputs <= 0 or num_pdfs <= 0:
        raise ConfigError(f"num_inputs and num_pdfs must be positive (got {num_inputs}, {num_pdfs})")
    module, func = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), func)(config, int(num_inputs), int(num_pdfs))


def count_parameters(model) -> dict[str, int]:
    """``total`` trainable parameters, ``weights`` (no biases: the paper's formula counts
    none) and ``biases`` (parameters whose name ends in ``bias``, nn.LSTM's b_ih and b_hh
    both counted)."""
    total = weights = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        total += p.numel()
        if not name.split(".")[-1].startswith("bias"):
            weights += p.numel()
    return {"total": total, "weights": weights, "biases": total - weights}
