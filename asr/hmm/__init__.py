"""Transition model (transition-id <-> pdf) and context-dependency trees (state tying)."""
