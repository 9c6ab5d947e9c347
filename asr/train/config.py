"""The ``training:`` section of a training config, typed and checked.

Every key, its type and its default are the fields below (in the spirit of icefall's
``get_params()``: one place that documents every knob). An unknown key, a value of the
wrong type or out of range is a :class:`~asr.errors.ConfigError` naming the key::

    >>> TrainingConfig.from_dict({"epoch": 1})
    Traceback (most recent call last):
    ...
    asr.errors.ConfigError: training.epoch: unknown key (did you mean 'epochs'?)

A YAML file looks like this (all keys optional)::

    training:
      optimizer: adam            # sgd | adam | adamw
      lr: 0.002
      schedule: {type: warmup_cosine, warmup_updates: 200, final_lr_factor: 0.05}
      grad_clip: 5.0
      epochs: 3
      streams: 64                # B: GLOBAL number of utterance streams (split across ranks)
      chunk: 40                  # T_bptt
      output_delay: 5
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from asr.features.reader import CMVN_MODES
from asr.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
# keys that do not change what is trained: how long (epochs: a finished run may be resumed
# to train more), how fast, when to checkpoint or evaluate, the guards. ``--resume`` may
# change them; every other key must be the checkpoint's (TrainingConfig.recorded).
RESUMABLE_KEYS = ("epochs", "prefetch", "checkpoint_every", "eval_streams", "eval_chunk", "nan_patience",
                  "divergence_factor", "chance_margin")
SCHEDULES = ("constant", "exponential", "warmup_exponential", "warmup_cosine")


@dataclass
class ScheduleConfig:
    """``training.schedule``: the learning rate as a pure function of the update count
    (asr/train/schedule.py), so a resumed run gets exactly the rates of an uninterrupted one."""

    type: str = "constant"
    """constant, exponential, warmup_exponential or warmup_cosine"""
    decay: float = 0.5
    """exponential: lr × decay per epoch (continuous in updates)"""
    warmup_updates: int = 0
    """warmup_*: linear ramp from 0 over this many updates (at most a fifth of the run)"""
    final_lr_factor: float = 0.05
    """warmup_*: the lr at the last update is lr × final_lr_factor"""
    min_lr: float = 0.0
    """floor of the learning rate"""

    def check(self, where: str) -> None:
        _choice(where, "type", self.type, SCHEDULES)
        _min(where, "warmup_updates", self.warmup_updates, 0)
        _min(where, "min_lr", self.min_lr, 0.0)
        if not 0.0 < self.decay:
            raise ConfigError(f"{where}.decay: must be > 0 (got {self.decay})")
        if not 0.0 < self.final_lr_factor:
            raise ConfigError(f"{where}.final_lr_factor: must be > 0 (got {self.final_lr_factor})")


@dataclass
class TrainingConfig:
    """``training:`` section of a training config (see the module docstring)."""

    # --- optimizer (asr/train/schedule.py)
    optimizer: str = "adam"
    """sgd, adam or adamw"""
    lr: float = 1e-3
    """peak learning rate"""
    momentum: float = 0.0
    """sgd: momentum"""
    nesterov: bool = False
    """sgd: Nesterov momentum"""
    betas: tuple[float, float] = (0.9, 0.999)
    """adam(w): moment decay rates"""
    eps: float = 1e-8
    """adam(w): denominator epsilon"""
    weight_decay: float = 0.0
    """L2 (sgd, adam) or decoupled (adamw) weight decay"""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """learning-rate schedule (ScheduleConfig)"""
    grad_clip: Optional[float] = 5.0
    """clip the gradient norm to this (null = no clipping); DDP clips the synchronised gradient"""
    # --- data and truncated BPTT (asr/train/data.py)
    epochs: int = 8
    """passes over the training data"""
    streams: int = 32
    """B: the GLOBAL number of parallel utterance streams; with N ranks/workers each runs B/N"""
    chunk: int = 20
    """T_bptt: frames per chunk (Sak et al.: 20)"""
    output_delay: int = 5
    """d: the target of frame t is presented at step t + d"""
    seed: int = 1
    """model initialisation and the per-epoch utterance shuffle"""
    cmvn: str = "speaker"
    """feature normalisation (FeatureReader): speaker, utterance, global, online (Kaldi online CMVN
    from the training data's global stats; offline = streaming) or none"""
    length_tolerance: int = 0
    """frames an alignment may differ from its features (cut or last pdf repeated)"""
    prefetch: int = 8
    """batches read ahead by the loader thread (bounds the feature memory)"""
    # --- bookkeeping
    checkpoint_every: int = 0
    """also checkpoint every N updates (0: at the end of each epoch only)"""
    eval_streams: int = 64
    """dev evaluation streams (the result does not depend on them)"""
    eval_chunk: int = 100
    """dev evaluation chunk length"""
    amp: bool = False
    """bfloat16 autocast on CUDA (ignored on CPU)"""
    # --- guards
    nan_patience: int = 5
    """abort after this many non-finite losses or gradients in a row"""
    divergence_factor: Optional[float] = 100.0
    """abort when the training loss (checked every 50 updates) exceeds this × max(ln num_pdfs,
    the loss of the first update) (null = off)"""
    chance_margin: Optional[float] = 0.005
    """after the last epoch, fail when the best monitored frame accuracy is not above the
    majority-pdf share + this margin (a model at chance); null = off"""

    @classmethod
    def from_dict(cls, data: Any, where: str = "training") -> "TrainingConfig":
        """Build from the YAML mapping; errors name ``where.key``."""
        cfg = _from_mapping(cls, data if data is not None else {}, where)
        cfg.check(where)
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], source: str = "") -> "TrainingConfig":
        """The ``training:`` section of a whole config (``source`` prefixes errors, e.g. the file)."""
        where = f"{source}: training" if source else "training"
        return cls.from_dict(config.get("training"), where)

    def check(self, where: str = "training") -> None:
        _choice(where, "optimizer", self.optimizer, OPTIMIZERS)
        _choice(where, "cmvn", self.cmvn, CMVN_MODES)
        for key in ("epochs", "streams", "chunk", "eval_streams", "eval_chunk", "nan_patience", "prefetch"):
            _min(where, key, getattr(self, key), 1)
        for key in ("output_delay", "checkpoint_every", "length_tolerance"):
            _min(where, key, getattr(self, key), 0)
        if self.lr <= 0:
            raise ConfigError(f"{where}.lr: must be > 0 (got {self.lr})")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"{where}.grad_clip: must be > 0 or null (got {self.grad_clip})")
        if self.divergence_factor is not None and self.divergence_factor <= 1:
            raise ConfigError(f"{where}.divergence_factor: must be > 1 or null (got {self.divergence_factor})")
        self.schedule.check(f"{where}.schedule")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def recorded(self) -> dict[str, Any]:
        """What a run is trained with, as ``{"training.key": value}`` (``training.schedule.type``
        ...): every key but RESUMABLE_KEYS. A checkpoint records it; ``--resume`` compares."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if key in RESUMABLE_KEYS:
                continue
            if isinstance(value, dict):
                out.update({f"training.{key}.{k}": v for k, v in value.items()})
            else:
                out[f"training.{key}"] = value
        return out


def describe_keys(cls=TrainingConfig, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """``(key, type, default, doc)`` for every key (nested sections flattened), for docs and --help."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(getattr(b, "value", None), ast.Constant):
            docs[a.target.id] = " ".join(str(b.value.value).split())
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += describe_keys(tp, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append((prefix + f.name, _type_name(tp), default, docs.get(f.name, "")))
    return out


# --- checking --------------------------------------------------------------------------

def _from_mapping(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"{where}.{key}: unknown key{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(tp, value: Any, where: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value if value is not None else {}, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    raise TypeError(f"unsupported config type {tp}")  # a bug in the dataclass, not in the user's file


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{_type_name(args[0])} or null"
    if origin is tuple:
        return "[" + ", ".join(_type_name(a) for a in typing.get_args(tp)) + "]"
    return {int: "int", float: "float", bool: "bool", str: "str"}.get(tp, str(tp))


def _choice(where: str, key: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{where}.{key}: {value!r} is not one of {', '.join(choices)}")


def _min(where: str, key: str, value, lo) -> None:
    if value < lo:
        raise ConfigError(f"{where}.{key}: must be >= {lo} (got {value})")


TOP_LEVEL_KEYS = ("model", "training", "num_inputs", "num_pdfs")


def check_top_level(config: dict[str, Any], source: str) -> None:
    """A training config has ``model:`` and ``training:`` (``num_inputs``/``num_pdfs`` are
    read by ``asr nnet-info``); anything else is a typo."""
    for key in config:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(TOP_LEVEL_KEYS)})"
            raise ConfigError(f"{source}: {key}: unknown top-level key{hint}")
    if "model" not in config:
        raise ConfigError(f"{source}: no model: section")
    if not isinstance(config["model"], dict):
        raise ConfigError(f"{source}: model: expected a mapping of keys, got {type(config['model']).__name__}")
