"""Optimizers and learning-rate schedules from the typed ``training:`` config
(:class:`asr.train.config.TrainingConfig`; keys documented there).

The learning rate is a pure function of the update count (no scheduler state), so a
resumed run gets exactly the rates of an uninterrupted one, and ASGD workers can compute
the rate of the global update count they observe.
"""

from __future__ import annotations

import math

from asr.errors import ConfigError
from asr.train.config import SCHEDULES, TrainingConfig


def make_optimizer(params, cfg: TrainingConfig):
    import torch

    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    raise ConfigError(f"training.optimizer: unknown optimizer {cfg.optimizer!r} (sgd, adam, adamw)")


def lr_at(update: int, updates_per_epoch: int, total_updates: int, cfg: TrainingConfig) -> float:
    """Learning rate for update number ``update`` (0-based)."""
    lr = cfg.lr
    sched = cfg.schedule
    kind = sched.type
    if kind == "constant":
        return lr
    if kind == "exponential":
        return max(sched.min_lr, lr * sched.decay ** (update / max(1, updates_per_epoch)))
    if kind in ("warmup_exponential", "warmup_cosine"):
        # a warm-up longer than a fifth of the run (tiny corpora) is shortened to that
        warm = min(sched.warmup_updates, total_updates // 5)
        final = sched.final_lr_factor
        if update < warm:
            return lr * (update + 1) / warm
        span = max(1, total_updates - warm)
        frac = min(1.0, (update - warm) / span)
        if kind == "warmup_exponential":
            factor = final ** frac
        else:
            factor = final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * frac))
        return max(sched.min_lr, lr * factor)
    raise ConfigError(f"training.schedule.type: unknown schedule {kind!r} ({', '.join(SCHEDULES)})")
