"""Flat start: alignments from transcripts alone (equal alignment, CI network rounds, tree, CD network)."""
