"""Acoustic-model directories: ``model.safetensors`` + ``model.yaml``.

``model.yaml`` holds ``model`` (the family config as given to ``build_model``),
``num_inputs``, ``num_pdfs``, ``output_delay`` and ``cmvn`` (the feature normalisation
the model was trained with), plus whatever extra keys the writer adds (e.g. training
summary). The other files of a complete model dir (priors, tree, graph) are written by
their own stages; see docs/contracts.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from asr.errors import ModelError
from asr.io.atomic import atomic_write_bytes, atomic_write_text

WEIGHTS = "model.safetensors"
CONFIG = "model.yaml"


def save_model_dir(out_dir: str | os.PathLike, model, model_config: dict[str, Any], num_inputs: int,
                   num_pdfs: int, output_delay: int, cmvn: str = "speaker", extra: dict[str, Any] | None = None) -> Path:
    """Write weights and config of ``model`` into ``out_dir`` (atomically, file by file)."""
    import yaml
    from safetensors.torch import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / WEIGHTS, save(tensors))
    meta = {"model": dict(model_config), "num_inputs": int(num_inputs), "num_pdfs": int(num_pdfs),
            "output_delay": int(output_delay), "cmvn": cmvn}
    if extra:
        meta.update(extra)
    atomic_write_text(out / CONFIG, yaml.safe_dump(meta, sort_keys=False))
    return out


def read_model_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    from asr.config import load_yaml

    path = Path(model_dir) / CONFIG
    if not path.is_file():
        raise ModelError(f"{model_dir}: not a model dir (no {CONFIG})")
    cfg = load_yaml(path)
    for key in ("model", "num_inputs", "num_pdfs"):
        if key not in cfg:
            raise ModelError(f"{path}: missing key {key!r}")
    cfg.setdefault("output_delay", 0)
    return cfg


def load_acoustic_model(model_dir: str | os.PathLike, device: str = "cpu"):
    """Build the model described by ``model_dir/model.yaml`` and load its weights.

    Returns ``(model, config)`` with the model in eval mode on ``device``."""
    from safetensors.torch import load_file

    from asr.nnet.registry import build_model

    cfg = read_model_config(model_dir)
    model = build_model(cfg["model"], int(cfg["num_inputs"]), int(cfg["num_pdfs"]))
    path = Path(model_dir) / WEIGHTS
    if not path.is_file():
        raise ModelError(f"{model_dir}: no {WEIGHTS}")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ModelError(f"{path}: cannot read weights: {e}") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{path}: weights do not match model.yaml (missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.to(device).eval()
    return model, cfg
