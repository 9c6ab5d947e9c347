"""Acoustic models: LSTMP and the LSTM family, DNN baseline, model registry."""

from asr.nnet.registry import FAMILIES, build_model, count_parameters

__all__ = ["FAMILIES", "build_model", "count_parameters"]
