"""The ``lstm`` family: the LSTMP stack without a recurrent projection (r_t = m_t).

Same config keys as ``lstmp`` (see asr/nnet/lstmp.py) except ``proj_dim``. With
``peepholes: false`` it runs on ``torch.nn.LSTM``.
"""

from __future__ import annotations

from typing import Any

from asr.errors import ConfigError
from asr.nnet.lstmp import LSTMPModel


def build_lstm(config: dict[str, Any], num_inputs: int, num_pdfs: int) -> LSTMPModel:
    if config.get("proj_dim"):
        raise ConfigError("family lstm has no recurrent projection; use family lstmp for proj_dim")
    return LSTMPModel({**config, "proj_dim": 0}, num_inputs, num_pdfs)
