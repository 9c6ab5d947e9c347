"""Training throughput on CPU: `asr train`'s inner loop vs a bare forward+backward loop.

For every model config in CONFIGS (add families there), with the same shapes (B streams,
T-frame chunks, D inputs, P pdfs):
  trainer  frames/s of asr.train.trainer.train's update loop, data loading included
           (in-memory corpus → chunk schedule → batch assembly in the read-ahead thread →
           state reset → step → metrics),
           on a random corpus with realistic utterance lengths;
  bare     frames/s of a bare loop: the same model, fixed random tensors,
           forward + cross-entropy + backward + optimizer step, state carried;
and for the peephole cell: bare loop of the TorchScript peephole LSTMP vs the
nn.LSTM(proj_size) fast path of the same sizes.
Frames are B·T steps per update for both (the trainer's share of steps with a target —
less than 1 through delay and padding — is printed as 'target share').
Goals (issue 5): trainer ≥ 0.8 × bare; peephole cell ≥ 0.5 × nn.LSTM(proj_size).

    python bench/train_throughput.py [--threads 2] [--updates 40] [--repeats 2] [--streams 64] [--chunk 40]
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.config import load_yaml  # noqa: E402
from asr.nnet import build_model  # noqa: E402
from asr.train.config import TrainingConfig  # noqa: E402
from asr.train.data import InMemorySet  # noqa: E402
from asr.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (label, config file, model overrides): add families here.
CONFIGS = [
    ("lstmp (nn.LSTM proj)", "conf/lstmp.yaml", {}),
    ("lstm (nn.LSTM)", "conf/lstm.yaml", {}),
    ("dnn", "conf/dnn.yaml", {}),
    ("lstmp peephole cell", "conf/lstmp.yaml", {"peepholes": True, "cell_clip": 50, "implementation": "custom"}),
    # Greff et al. vanilla and its eight variants, and the deep families, at conf/lstm.yaml's shape
    ("lstm peephole (vanilla)", "conf/lstm.yaml", {"peepholes": True, "cell_clip": 50, "implementation": "custom"}),
    *[(f"lstm_{v.lower()}", "conf/lstm.yaml", {"peepholes": True, "cell_clip": 50, "implementation": "custom",
                                               "variant": [v]})
      for v in ("NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR")],
    ("residual_lstm", "conf/residual_lstm.yaml", {"num_layers": 2, "cell_dim": 288, "proj_dim": 288}),
    ("highway_lstm", "conf/highway_lstm.yaml", {"num_layers": 2, "cell_dim": 288}),
    ("ltlstm", "conf/ltlstm.yaml", {"num_layers": 2, "cell_dim": 288, "layer_cell_dim": 288}),
]


def random_corpus(num_frames: int, dim: int, num_pdfs: int, seed: int = 0) -> InMemorySet:
    rng = np.random.default_rng(seed)
    lengths = []
    total = 0
    while total < num_frames:
        n = int(rng.integers(150, 600))  # 1.5–6 s utterances
        lengths.append(n)
        total += n
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    feats = rng.standard_normal((total, dim)).astype(np.float32)
    targets = rng.integers(0, num_pdfs, total).astype(np.int16)
    return InMemorySet("random", [f"u{i}" for i in range(len(lengths))], offsets, targets, feats)


def bare_loop(model_cfg, tcfg, dim, num_pdfs, updates, warmup, seed=0) -> float:
    """frames/s of forward + CE + backward + step on fixed tensors (state carried)."""
    from asr.train.schedule import make_optimizer

    torch.manual_seed(seed)
    model = build_model(model_cfg, dim, num_pdfs)
    tcfg = TrainingConfig.from_dict(tcfg)
    opt = make_optimizer(model.parameters(), tcfg)
    B, T = tcfg.streams, tcfg.chunk
    x = torch.randn(B, T, dim)
    y = torch.randint(0, num_pdfs, (B, T))
    state = None
    t0 = 0.0
    for k in range(warmup + updates):
        if k == warmup:
            t0 = time.perf_counter()
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, num_pdfs), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tcfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
    return updates * B * T / (time.perf_counter() - t0)


def trainer_loop(config, corpus, num_pdfs, updates, warmup) -> tuple[float, float]:
    """(frames/s, target share) of asr.train.trainer.train's loop, timed between updates."""
    stamps: dict[int, float] = {}
    config = copy.deepcopy(config)
    config["training"].update({"checkpoint_every": 0, "epochs": 1, "chance_margin": None})
    with tempfile.TemporaryDirectory() as tmp:
        train(config, corpus, tmp, num_pdfs=num_pdfs, max_updates=warmup + updates, progress=False,
              on_update=lambda u: stamps.__setitem__(u, time.perf_counter()))
        with open(Path(tmp) / "steps.csv") as f:
            rows = f.read().splitlines()[1:]
    frames = sum(int(r.split(",")[5]) for r in rows[warmup:])
    B, T = int(config["training"]["streams"]), int(config["training"]["chunk"])
    dt = stamps[warmup + updates] - stamps[warmup]
    return updates * B * T / dt, frames / (updates * B * T)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--updates", type=int, default=40, help="timed updates per measurement")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the best of each is reported")
    ap.add_argument("--streams", type=int, default=None, help="override the configs' streams (B)")
    ap.add_argument("--chunk", type=int, default=None, help="override the configs' chunk (T)")
    ap.add_argument("--num-pdfs", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--only", default=None, help="run only configs whose label contains this")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, D={args.dim}, P={args.num_pdfs}, "
          f"{args.updates} timed updates after {args.warmup} warm-up, best of {args.repeats} interleaved runs")
    print(f"{'config':<24} {'B':>4} {'T':>4} {'params':>9} {'bare f/s':>9} {'trainer f/s':>11} {'ratio':>6} "
          f"{'target share':>12}")
    bare_ref = {}
    for label, path, overrides in CONFIGS:
        if args.only and args.only not in label:
            continue
        cfg = load_yaml(ROOT / path)
        cfg["model"].update(overrides)
        t = cfg["training"]
        if args.streams:
            t["streams"] = args.streams
        if args.chunk:
            t["chunk"] = args.chunk
        B, T = int(t["streams"]), int(t["chunk"])
        corpus = random_corpus(B * T * (args.updates + args.warmup) * 2, args.dim, args.num_pdfs)
        n_params = sum(p.numel() for p in build_model(cfg["model"], args.dim, args.num_pdfs).parameters())
        bare = fps = 0.0
        for _ in range(args.repeats):  # interleaved; best of each (the machine is shared)
            bare = max(bare, bare_loop(cfg["model"], t, args.dim, args.num_pdfs, args.updates, args.warmup))
            f, share = trainer_loop(cfg, corpus, args.num_pdfs, args.updates, args.warmup)
            fps = max(fps, f)
        bare_ref[label] = bare
        print(f"{label:<24} {B:>4} {T:>4} {n_params:>9} {bare:>9.0f} {fps:>11.0f} {fps / bare:>6.2f} {share:>12.2f}",
              flush=True)
    if "lstm (nn.LSTM)" in bare_ref:
        print("bare frames/s relative to lstm (nn.LSTM): " + ", ".join(
            f"{label} {fps / bare_ref['lstm (nn.LSTM)']:.2f}" for label, fps in bare_ref.items()))
    if "lstmp peephole cell" in bare_ref and "lstmp (nn.LSTM proj)" in bare_ref:
        r = bare_ref["lstmp peephole cell"] / bare_ref["lstmp (nn.LSTM proj)"]
        print(f"peephole cell / nn.LSTM(proj_size), bare loops: {r:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
