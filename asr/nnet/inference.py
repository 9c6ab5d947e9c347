"""Batched acoustic-model inference: per-frame log-posteriors log p(s | x)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


# Steps per forward call: a longer batch (a file of minutes) runs window by window with the
# recurrent state carried (every family is causal and takes a state, as streaming does; equal
# to one call up to float rounding). One call's memory grows with its steps: about 35 KB a
# frame for the default LSTMP, 12 GB for an hour.
CHUNK_FRAMES = 6000


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
                x = torch.from_numpy(batch).to(device)
                logp = np.empty((len(idx), longest, int(model.num_pdfs)), dtype=np.float32)
                state = None
                for t in range(0, longest, CHUNK_FRAMES):  # one window unless the batch is long
                    logits, state = model(x[:, t:t + CHUNK_FRAMES], state)
                    logp[:, t:t + CHUNK_FRAMES] = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
                for b, u in enumerate(idx):
                    T = int(lengths[u])
                    results[u] = np.ascontiguousarray(logp[b, d : d + T], dtype=np.float32)
    finally:
        model.train(was_training)
    return results
