"""Phone-level frame accuracy next to pdf accuracy (``asr train --phone-map MDL``).

A context-dependent tree ties HMM states into pdfs; a frame classified into another pdf
of the *right phone* (the right phone in the wrong tied state) is a pdf error but a phone
hit. The transition model (``final.mdl`` of a tree dir) says which phones each pdf can
belong to. A frame counts as phone-correct when the predicted pdf and the reference pdf
share a phone. With Kaldi's shared roots (word-position variants of a phone share a tree
root, so all their pdfs cover the same phones) this is exactly "the reference frame's
phone is among the predicted pdf's phones"; a pdf that serves several unrelated phones
would count a little generously.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asr.errors import ConfigError


class PhoneAccuracy:
    """Counts phone-correct frames from predicted and reference pdf ids."""

    def __init__(self, pdf_phones: np.ndarray):
        import torch

        self.pdf_phones = torch.from_numpy(np.asarray(pdf_phones, dtype=bool))  # [num_pdfs, num_phones + 1]

    @classmethod
    def from_transition_model(cls, path: str | os.PathLike, num_pdfs: int) -> "PhoneAccuracy":
        """From a transition model file, or a dir holding ``final.mdl`` (a tree or alignment dir)."""
        from asr.hmm.transition_model import TransitionModel

        path = Path(path)
        if path.is_dir():
            path = path / "final.mdl"
        if not path.is_file():
            raise ConfigError(f"--phone-map {path}: no such transition model")
        tm = TransitionModel.read(path)
        if tm.num_pdfs != num_pdfs:
            raise ConfigError(f"--phone-map {path}: {tm.num_pdfs} pdfs, the alignments have {num_pdfs}")
        t = tm.tuples
        m = np.zeros((num_pdfs, int(t[:, 0].max()) + 1), dtype=bool)
        m[t[:, 2], t[:, 0]] = True
        m[t[:, 3], t[:, 0]] = True
        return cls(m)

    def correct(self, pred, ref) -> int:
        """Frames whose predicted pdf (``pred[F]``) shares a phone with the reference pdf (``ref[F]``)."""
        if self.pdf_phones.device != pred.device:
            self.pdf_phones = self.pdf_phones.to(pred.device)
        m = self.pdf_phones
        return int((m[pred] & m[ref]).any(dim=1).sum())
