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


# The keys of each family's ``model:`` section and their values: (kind, bound); kind "int",
# "number" (an int or a float), "bool", "str" or "strings" (a string or a list of them), with
# "?" when null is allowed (= the family's default); bound: the minimum of a number, the
# choices of a string. check_model_config is the one place they are checked: the builders
# only read them.
_RECURRENT = {"num_layers": ("int", 1), "cell_dim": ("int", 1), "proj_dim": ("int?", 0),
              "cell_clip": ("number?", 0), "init_scale": ("number?", 0)}
_LSTMP = {**_RECURRENT, "nonrec_proj_dim": ("int?", 0), "peepholes": ("bool", None), "variant": ("strings?", None),
          "implementation": ("str", ("auto", "custom", "fused"))}
MODEL_KEYS: dict[str, dict[str, tuple[str, Any]]] = {
    "dnn": {"splice": ("int", 0), "hidden_dim": ("int", 1), "num_layers": ("int", 1),
            "activation": ("str", ("relu", "sigmoid")), "init_scale": ("number?", 0)},
    "lstmp": _LSTMP,
    "lstm": _LSTMP,
    "residual_lstm": _RECURRENT,
    "highway_lstm": _RECURRENT,
    "ltlstm": {**_RECURRENT, "layer_cell_dim": ("int?", 0)},
}


def check_model_config(config: Any, source: str = "") -> None:
    """A ``model:`` section: a known family, its keys only, each of its type and range (one-line
    ConfigError naming ``source``, e.g. the config file, and the key)."""
    where = f"{source}: model" if source else "model"
    if not isinstance(config, dict) or "family" not in config:
        raise ConfigError(f"{where}: needs a 'family' key (one of {', '.join(sorted(FAMILIES))})")
    family = config["family"]
    if family not in FAMILIES:
        raise ConfigError(f"{where}.family: unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    keys = MODEL_KEYS[family]
    unknown = sorted(str(k) for k in config if k != "family" and k not in keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for family {family} (known: {', '.join(keys)})")
    for key, value in config.items():
        if key != "family" and not _fits(value, *keys[key]):
            raise ConfigError(f"{where}.{key}: bad value {value!r} (expected {_expected(*keys[key])})")


def _fits(value: Any, kind: str, bound: Any) -> bool:
    if value is None:
        return kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    if kind == "str":
        return isinstance(value, str) and (bound is None or value in bound)
    if isinstance(value, bool) or not isinstance(value, int if kind == "int" else (int, float, str)):
        return False
    if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            return False
    return bound is None or value >= bound


def _expected(kind: str, bound: Any) -> str:
    base = kind.rstrip("?")
    text = {"bool": "true or false", "strings": "a string or a list of strings", "int": "an integer",
            "number": "a number", "str": "a string"}[base]
    if base == "str" and bound:
        text = f"one of {', '.join(bound)}"
    elif base in ("int", "number") and bound is not None:
        text += f" >= {bound}"
    return text + (" or null" if kind.endswith("?") else "")


def build_model(config: dict[str, Any], num_inputs: int, num_pdfs: int):
    """Build the acoustic model described by a ``model:`` config section (check_model_config)."""
    check_model_config(config)
    family = config["family"]
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
