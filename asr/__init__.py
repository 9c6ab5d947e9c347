"""asr: hybrid HMM/LSTM speech recognition in Python and PyTorch."""

__version__ = "0.1.0"
