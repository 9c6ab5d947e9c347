"""Alignment import (CTM, TextGrid, Kaldi ali + final.mdl, pdf arks) and forced alignment."""
