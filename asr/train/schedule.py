"""Optimizers and learning-rate schedules from the ``training:`` config section.

The learning rate is a pure function of the update count (no scheduler state), so a
resumed run gets exactly the rates of an uninterrupted one.

    optimizer: sgd | adam | adamw
    lr: 0.001
    momentum: 0.0            # sgd
    nesterov: false          # sgd
    betas: [0.9, 0.999]      # adam(w)
    weight_decay: 0.0
    schedule:
      type: constant | exponential | warmup_exponential | warmup_cosine
      decay: 0.5             # exponential: lr × decay per epoch (continuous in updates)
      warmup_updates: 500    # warmup_*: linear ramp from 0 (at most a fifth of all updates)
      final_lr_factor: 0.05  # warmup_*: lr at the last update = lr × final_lr_factor
      min_lr: 0.0
"""

from __future__ import annotations

import math
from typing import Any

from asr.errors import ConfigError

SCHEDULES = ("constant", "exponential", "warmup_exponential", "warmup_cosine")


def make_optimizer(params, cfg: dict[str, Any]):
    import torch

    name = str(cfg.get("optimizer", "adam")).lower()
    lr = float(cfg.get("lr", 1e-3))
    wd = float(cfg.get("weight_decay", 0.0))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg.get("momentum", 0.0)),
                               nesterov=bool(cfg.get("nesterov", False)), weight_decay=wd)
    if name in ("adam", "adamw"):
        betas = tuple(float(b) for b in cfg.get("betas", (0.9, 0.999)))
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=betas, eps=float(cfg.get("eps", 1e-8)), weight_decay=wd)
    raise ConfigError(f"training config: unknown optimizer {name!r} (sgd, adam, adamw)")


def lr_at(update: int, updates_per_epoch: int, total_updates: int, cfg: dict[str, Any]) -> float:
    """Learning rate for update number ``update`` (0-based)."""
    lr = float(cfg.get("lr", 1e-3))
    sched = cfg.get("schedule") or {"type": "constant"}
    kind = sched.get("type", "constant")
    min_lr = float(sched.get("min_lr", 0.0))
    if kind == "constant":
        return lr
    if kind == "exponential":
        decay = float(sched.get("decay", 0.5))
        return max(min_lr, lr * decay ** (update / max(1, updates_per_epoch)))
    if kind in ("warmup_exponential", "warmup_cosine"):
        # a warm-up longer than a fifth of the run (tiny corpora) is shortened to that
        warm = min(int(sched.get("warmup_updates", 0)), total_updates // 5)
        final = float(sched.get("final_lr_factor", 0.05))
        if update < warm:
            return lr * (update + 1) / warm
        span = max(1, total_updates - warm)
        frac = min(1.0, (update - warm) / span)
        if kind == "warmup_exponential":
            factor = final ** frac
        else:
            factor = final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * frac))
        return max(min_lr, lr * factor)
    raise ConfigError(f"training config: unknown schedule type {kind!r} ({', '.join(SCHEDULES)})")
