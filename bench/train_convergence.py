"""Dev frame accuracy against training wall time: 1 process vs DDP × N vs ASGD × N on
the synth recipe's LSTMP (conf/lstmp.yaml), the same data and global streams.

Each run is a real `asr train`, advanced in segments (`--max-updates k·S`, then
`--resume`); after each segment the checkpoint's model is evaluated on the dev set here
(not timed). Time = the training wall time rank 0 reports in the checkpoint (process
start-up, checkpoint loading and the evaluations excluded). Writes a PNG and prints a
Markdown table (final and best dev accuracy, time, frames/s).

    python bench/train_convergence.py [--config conf/lstmp.yaml] [--workers 2]
        [--segments-per-epoch 4] [--runs one,ddp,asgd] [--one-threads 2]
        [--png docs/train_convergence.png] [--work /tmp/train_convergence]

Data: the synth recipe's default corpus (`recipes/synth/run.sh --stage 0 --stop-stage 3`):
data/train, exp/tree/ali.pdf.ark, data/dev, exp/ali_dev/ali.pdf.ark. Runs are kept in
--work and continued when the script is started again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNTH = ROOT / "recipes" / "synth"
sys.path.insert(0, str(ROOT))


def trained_seconds(ck: dict) -> float:
    """Training wall time so far: finished epochs + the current one."""
    return sum(float(r["seconds"]) for r in ck["history"]) + float(ck["position"]["acc"][3]) * (
        ck["position"]["batch"] > 0)


def evaluate_checkpoint(ck: dict, dev, num_pdfs: int, tcfg) -> float:
    from asr.nnet.registry import build_model
    from asr.train.metrics import evaluate

    model = build_model(ck["model_config"], dev.feat_dim, num_pdfs)
    model.load_state_dict(ck["model"])
    return evaluate(model, dev, tcfg.output_delay, tcfg.eval_streams, tcfg.eval_chunk, "cpu").acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "conf" / "lstmp.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one-threads", type=int, default=2, help="torch threads of the one-process run")
    ap.add_argument("--segments-per-epoch", type=int, default=4)
    ap.add_argument("--runs", default="one,ddp,asgd")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "train_convergence.png")
    ap.add_argument("--work", type=Path, default=Path("/tmp/train_convergence"))
    ap.add_argument("--data", type=Path, default=SYNTH / "data")
    ap.add_argument("--tree", type=Path, default=SYNTH / "exp" / "tree")
    ap.add_argument("--dev-ali", type=Path, default=SYNTH / "exp" / "ali_dev" / "ali.pdf.ark")
    args = ap.parse_args()

    import torch

    from asr.config import load_yaml
    from asr.features.reader import FeatureReader
    from asr.io.int_ark import iter_int_ark
    from asr.train.config import TrainingConfig
    from asr.train.data import epoch_order, make_schedule, open_feature_set

    torch.set_num_threads(2)
    cfg = load_yaml(args.config)
    tcfg = TrainingConfig.from_config(cfg, str(args.config))
    num_pdfs = int((args.tree / "num_pdfs").read_text().split()[0])
    train_ali = args.tree / "ali.pdf.ark"
    dev = open_feature_set(FeatureReader(args.data / "dev", cmvn=tcfg.cmvn), iter_int_ark(args.dev_ali), num_pdfs)
    lengths = open_feature_set(FeatureReader(args.data / "train", cmvn=tcfg.cmvn), iter_int_ark(train_ali),
                               num_pdfs).lengths
    per_epoch = len(make_schedule(lengths, tcfg.streams, tcfg.chunk, tcfg.output_delay,
                                  epoch_order(len(lengths), tcfg.seed, 0)))
    seg = max(1, per_epoch // args.segments_per_epoch)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    N = args.workers
    runs = {
        "one": (f"1 process × {args.one_threads} threads", ["--num-threads", str(args.one_threads)]),
        "ddp": (f"DDP {N} ranks × 1 thread", ["--workers", str(N), "--num-threads", "1"]),
        "asgd": (f"ASGD {N} workers × 1 thread", ["--workers", str(N), "--num-threads", "1", "--mode", "asgd"]),
    }
    args.work.mkdir(parents=True, exist_ok=True)
    curves = {}
    print(f"{per_epoch} updates per epoch, segments of {seg}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for key in args.runs.split(","):
        label, extra = runs[key]
        exp = args.work / key
        points_file = args.work / f"{key}.json"
        points = json.loads(points_file.read_text()) if points_file.exists() else []
        cmd = [sys.executable, "-m", "asr", "-q", "train", "--config", str(args.config), "--feats",
               str(args.data / "train"), "--ali", str(train_ali), "--dev-feats", str(args.data / "dev"), "--dev-ali",
               str(args.dev_ali), "--out", str(exp), "--num-pdfs", str(num_pdfs), "--no-progress", *extra]
        while True:
            ck_path = exp / "checkpoint.pt"
            ck = torch.load(ck_path, map_location="cpu", weights_only=True) if ck_path.exists() else None
            if ck is not None and ck["position"]["epoch"] >= tcfg.epochs:
                break
            done = ck["position"]["update"] if ck else 0
            target = (done // seg + 1) * seg
            t0 = time.time()
            r = subprocess.run(cmd + (["--resume"] if ck else []) + ["--max-updates", str(target)],
                               capture_output=True, text=True, env=env)
            if r.returncode:
                sys.exit(f"{key}: asr train failed:\n{r.stderr[-3000:]}")
            ck = torch.load(ck_path, map_location="cpu", weights_only=True)
            acc = evaluate_checkpoint(ck, dev, num_pdfs, tcfg)
            p = ck["position"]
            points.append({"update": p["update"], "epoch": p["epoch"] + p["batch"] / per_epoch,
                           "seconds": trained_seconds(ck), "dev_acc": acc, "load": os.getloadavg()[0]})
            points_file.write_text(json.dumps(points, indent=1))
            print(f"{key}: update {p['update']} epoch {points[-1]['epoch']:.2f} trained {points[-1]['seconds']:.0f} s "
                  f"dev acc {acc:.4f} (segment took {time.time() - t0:.0f} s, load {points[-1]['load']:.1f})",
                  flush=True)
        hist = ck["history"]
        frames = sum(int(r["train_frames"]) for r in hist)
        curves[key] = (label, points, {"final": float(hist[-1]["dev_acc"]), "best": max(float(r["dev_acc"]) for r in hist),
                                       "seconds": sum(float(r["seconds"]) for r in hist),
                                       "fps": frames / sum(float(r["seconds"]) for r in hist)})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, (label, points, _) in curves.items():
        ax.plot([p["seconds"] / 60 for p in points], [p["dev_acc"] for p in points], "o-", label=label, ms=3)
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel("dev frame accuracy")
    ax.set_title(f"{args.config.name} on the synth corpus, {tcfg.epochs} epochs, B = {tcfg.streams}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)
    print(f"wrote {args.png}")
    print("| run | final dev acc | best dev acc | training time | frames/s |")
    print("|---|---|---|---|---|")
    for key, (label, _, s) in curves.items():
        print(f"| {label} | {s['final']:.4f} | {s['best']:.4f} | {s['seconds'] / 60:.1f} min | {s['fps']:.0f} |")


if __name__ == "__main__":
    main()
