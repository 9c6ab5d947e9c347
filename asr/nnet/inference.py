"""Batched acoustic-model inference: per-frame log-posteriors log p(s | x)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def log_posteriors(model, feats_list: Sequence[np.ndarray], output_delay: int,
                   max_batch_frames: int = 200_000, device: str | None = None) -> list[np.ndarray]:
    """Run ``model`` over whole utterances; return ``float32[T, num_pdfs]`` log-softmax per
    utterance in input order, row t = frame t.

    Each utterance gets its last frame repeated ``output_delay`` times; the first
    ``output_delay`` outputs are dropped (the target of frame t is emitted at step t+d).
    Utterances are batched by similar length (padding goes after the end, which a causal
    model never sees for real frames). No gradients.
    """
    import torch

    d = int(output_delay)
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = "cpu"
    results: list[np.ndarray | None] = [None] * len(feats_list)
    lengths = np.array([len(f) for f in feats_list], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pos = 0
            while pos < len(order):
                if lengths[order[pos]] == 0:  # only empty utterances left
                    for u in order[pos:]:
                        results[u] = np.zeros((0, int(model.num_pdfs)), dtype=np.float32)
                    break
                longest = int(lengths[order[pos]]) + d
                n = max(1, min(len(order) - pos, max_batch_frames // max(longest, 1)))
                idx = order[pos : pos + n]
                pos += n
                dim = np.asarray(feats_list[idx[0]]).shape[1]
                batch = np.zeros((len(idx), longest, dim), dtype=np.float32)
                for b, u in enumerate(idx):
                    f = np.asarray(feats_list[u], dtype=np.float32)
                    T = len(f)
                    if T == 0:
                        continue
                    batch[b, :T] = f
                    batch[b, T : T + d] = f[-1]
                logits, _ = model(torch.from_numpy(batch).to(device))
                logp = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
                for b, u in enumerate(idx):
                    T = int(lengths[u])
                    results[u] = np.ascontiguousarray(logp[b, d : d + T], dtype=np.float32)
    finally:
        model.train(was_training)
    return results
