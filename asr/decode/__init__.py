"""Decodables, WFST search, lattices, lattice rescoring, transcription."""
