"""Size a model config to a parameter budget, to compare families at equal size.

All size keys of the ``model:`` section (``cell_dim``, ``proj_dim``, ``nonrec_proj_dim``,
``layer_cell_dim``, ``hidden_dim``) are scaled by one common factor, so a family keeps its
shape (e.g. projection = cell_dim / 2) while its total parameter count (biases included,
output layer included) comes as close to the budget as integer sizes allow.
"""

from __future__ import annotations

import copy
from typing import Any

from asr.errors import ConfigError

SIZE_KEYS = ("cell_dim", "proj_dim", "nonrec_proj_dim", "layer_cell_dim", "hidden_dim")


def count_params(model_config: dict[str, Any], num_inputs: int, num_pdfs: int) -> int:
    """Trainable parameters of the model the config describes."""
    from asr.nnet.registry import build_model

    model = build_model(model_config, num_inputs, num_pdfs)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def scale_to_budget(model_config: dict[str, Any], num_inputs: int, num_pdfs: int, budget: int,
                    ) -> tuple[dict[str, Any], int]:
    """Return (a copy of the config with its sizes scaled, its parameter count), the count
    closest to ``budget`` among the integer sizes tried (bisection on the scale factor)."""
    if budget <= 0:
        raise ConfigError(f"parameter budget must be positive, got {budget}")
    base = {k: int(model_config[k]) for k in SIZE_KEYS if model_config.get(k)}
    if "cell_dim" not in base and "hidden_dim" not in base:
        raise ConfigError(f"model config for family {model_config.get('family')} has no cell_dim to scale")

    def sized(scale: float) -> dict[str, Any]:
        cfg = copy.deepcopy(model_config)
        for k, v in base.items():
            cfg[k] = max(1, round(v * scale))
        return cfg

    cache: dict[tuple, tuple[dict, int]] = {}

    def evaluate(scale: float) -> tuple[dict, int]:
        cfg = sized(scale)
        key = tuple(cfg[k] for k in base)
        if key not in cache:
            cache[key] = (cfg, count_params(cfg, num_inputs, num_pdfs))
        return cache[key]

    lo, hi = 1e-3, 1.0
    while evaluate(hi)[1] < budget and hi < 1e4:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if evaluate(mid)[1] < budget:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4:
            break
    return min((evaluate(lo), evaluate(hi)), key=lambda cp: abs(cp[1] - budget))
