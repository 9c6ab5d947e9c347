"""Kaldi data directories (wav.scp, segments, text, utt2spk, spk2utt), audio reading, validation."""
