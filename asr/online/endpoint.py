"""Endpointing with Kaldi's rules (``online2/online-endpoint.h``, same names and defaults).

A segment ends when any rule holds. Each rule has four conditions, all needed::

    must_contain_nonsilence   the best path has a non-silence frame
    min_trailing_silence      seconds of silence phones at the end of the best path
    max_relative_cost         best final cost minus best cost (inf: the path need not be
                              able to end; 0: it ends in the best state)
    min_utterance_length      seconds decoded in this segment

Defaults: rule1 (no speech for 5 s), rule2 (0.5 s silence, ending in a likely final
state, relative cost <= 2), rule3 (1 s, <= 8), rule4 (2 s, any), rule5 (the segment
reached 20 s: the maximum utterance length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass
class EndpointRule:
    must_contain_nonsilence: bool = True
    min_trailing_silence: float = 1.0
    max_relative_cost: float = math.inf
    min_utterance_length: float = 0.0

    def holds(self, trailing_silence: float, relative_cost: float, utterance_length: float) -> bool:
        contains_nonsilence = utterance_length > trailing_silence
        return ((contains_nonsilence or not self.must_contain_nonsilence)
                and trailing_silence >= self.min_trailing_silence
                and relative_cost <= self.max_relative_cost
                and utterance_length >= self.min_utterance_length)


@dataclass
class EndpointConfig:
    rule1: EndpointRule = field(default_factory=lambda: EndpointRule(False, 5.0, math.inf, 0.0))
    rule2: EndpointRule = field(default_factory=lambda: EndpointRule(True, 0.5, 2.0, 0.0))
    rule3: EndpointRule = field(default_factory=lambda: EndpointRule(True, 1.0, 8.0, 0.0))
    rule4: EndpointRule = field(default_factory=lambda: EndpointRule(True, 2.0, math.inf, 0.0))
    rule5: EndpointRule = field(default_factory=lambda: EndpointRule(False, 0.0, math.inf, 20.0))

    def rules(self) -> list[tuple[str, EndpointRule]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def detected(self, num_frames: int, trailing_silence_frames: int, frame_shift: float,
                 relative_cost: float) -> str | None:
        """The first rule that holds (its name), or None. ``num_frames``: frames decoded in the
        segment; ``relative_cost``: inf when no final state is active."""
        length = num_frames * frame_shift
        silence = trailing_silence_frames * frame_shift
        for name, rule in self.rules():
            if rule.holds(silence, relative_cost, length):
                return name
        return None

    def needs_relative_cost(self) -> bool:
        return any(math.isfinite(r.max_relative_cost) for _, r in self.rules())


def add_endpoint_options(parser) -> None:
    """Kaldi's command-line names: ``--endpoint.rule2.min-trailing-silence=0.5`` etc."""
    g = parser.add_argument_group("endpointing (Kaldi OnlineEndpointConfig; a segment ends when any rule holds)")
    g.add_argument("--no-endpointing", action="store_true", help="one segment per stream (ends at end of audio)")
    default = EndpointConfig()
    for name, rule in default.rules():
        for f in fields(EndpointRule):
            opt = f"--endpoint.{name}.{f.name.replace('_', '-')}"
            val = getattr(rule, f.name)
            if f.type in (bool, "bool"):
                g.add_argument(opt, type=_bool, default=val, metavar="BOOL",
                               help=f"{name}: {_RULE_HELP[f.name]} (default {str(val).lower()})")
            else:
                g.add_argument(opt, type=float, default=val, metavar="X",
                               help=f"{name}: {_RULE_HELP[f.name]} (default {val:g})")


_RULE_HELP = {  # Kaldi's OnlineEndpointRule fields
    "must_contain_nonsilence": "the segment must hold some non-silence",
    "min_trailing_silence": "seconds of silence at the end of the segment at least",
    "max_relative_cost": "cost of the best final state relative to the best state at most (inf: any)",
    "min_utterance_length": "segment length in seconds at least",
}


def endpoint_config_from_args(args) -> EndpointConfig | None:
    if getattr(args, "no_endpointing", False):
        return None
    cfg = EndpointConfig()
    for name, rule in cfg.rules():
        for f in fields(EndpointRule):
            key = f"endpoint.{name}.{f.name.replace('_', '-')}".replace("-", "_")
            if hasattr(args, key):
                setattr(rule, f.name, getattr(args, key))
    return cfg


def _bool(s: str) -> bool:
    v = s.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(s)
