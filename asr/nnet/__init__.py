"""Acoustic models: LSTMP and the LSTM family, DNN baseline, model registry."""
