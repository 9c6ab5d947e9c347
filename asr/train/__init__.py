"""Chunked truncated-BPTT data loading, trainer, schedules, priors."""
