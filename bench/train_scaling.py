"""Training throughput of one process vs N processes: `asr train` (1 process, T threads)
vs DDP (N ranks × T threads) vs ASGD (N workers × T threads), on the same data and the
same global number of streams B.

Every configuration is a real `asr train` run (`python -m asr train ...`, features read
from the data dir's arks): first `--max-updates W` (start-up and warm-up, not timed),
then `--resume --max-updates W+U`; frames/s = frames with a target trained in those U
updates (all ranks) / the wall time rank 0 spent on them (from the two checkpoints'
positions; process start-up and loading are excluded). ASGD applies N updates per batch
step (one per worker); its frames are counted the same way.

Prints one line per configuration and

    scaling efficiency ddp=E asgd=E      (E = fps_N / (N × fps_1))
    limit (independent processes, no communication) = L; of the limit: ddp=E/L asgd=E/L
    work efficiency per CPU-second ddp=E asgd=E limit=E

The limit is N independent single processes of B/N streams each, side by side, that
never communicate: what no data-parallel scheme on this machine can beat (the cores'
shared caches and memory bandwidth, and smaller matrix products at B/N streams, cost it
before any communication does).

The second line divides by CPU time instead of wall time (rank 0's CPU time × N: every
thread of the process, communication and read-ahead included): the efficiency the
processes would reach with a core each, i.e. with the load of other jobs on a shared
machine taken out. The first line is the figure that counts; on a busy machine the
second says how much of its shortfall is the machine.

Goal (issue 13) on a 2-core machine with N = 2, T = 1: E ≥ 0.85 for both.

    python bench/train_scaling.py [--data DIR --ali ARK] [--config conf/lstmp.yaml]
        [--workers 2] [--threads 1] [--updates 30] [--warmup 5] [--repeats 1] [--device cpu]

Data: by default the synth recipe's (recipes/synth/data/train, exp/tree/ali.pdf.ark;
`recipes/synth/run.sh --stage 0 --stop-stage 3`), else `--synthetic-frames N` writes a
random corpus (feats.ark/scp, alignments) of N frames into a temporary dir.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SYNTH = ROOT / "recipes" / "synth"


def write_random_data(root: Path, num_frames: int, dim: int = 40, num_pdfs: int = 2000, seed: int = 0,
                      copies: int = 1) -> tuple[Path, Path]:
    """A data dir (feats.ark/scp, utt2num_frames, utt2spk) of random 1.5–6 s utterances and
    their random pdf alignments; ``copies`` > 1 lists every utterance that many times
    (new ids, same ark entries), as a corpus that many times larger."""
    import kaldiio

    rng = np.random.default_rng(seed)
    d = root / "data"
    d.mkdir(parents=True)
    ali = []
    with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats1.scp'}") as w:
        total = u = 0
        while total < num_frames:
            n = int(rng.integers(150, 600))
            utt = f"u{u:06d}"
            w(utt, rng.standard_normal((n, dim)).astype(np.float32))
            ali.append((utt, rng.integers(0, num_pdfs, n).astype(np.int32)))
            total += n
            u += 1
    replicate(d / "feats1.scp", ali, d, root / "ali.ark", copies)
    (root / "num_pdfs").write_text(f"{num_pdfs}\n")
    (d / "feats1.scp").unlink()
    return d, root / "ali.ark"


def replicate(scp: Path, ali, out_dir: Path, out_ali: Path, copies: int, utt2spk: dict | None = None) -> None:
    """feats.scp, utt2num_frames, utt2spk and alignments listing every utterance ``copies`` times."""
    from asr.io.int_ark import write_int_ark

    lines = scp.read_text().splitlines()
    ali = dict(ali)
    with open(out_dir / "feats.scp", "w") as f, open(out_dir / "utt2num_frames", "w") as n, \
            open(out_dir / "utt2spk", "w") as s:
        for c in range(copies):
            for line in lines:
                utt, spec = line.split(maxsplit=1)
                new = f"c{c}-{utt}" if copies > 1 else utt
                f.write(f"{new} {spec}\n")
                n.write(f"{new} {len(ali[utt])}\n")
                s.write(f"{new} {(utt2spk or {}).get(utt, 'spk')}\n")
    write_int_ark(out_ali, ((f"c{c}-{u}" if copies > 1 else u, a) for c in range(copies) for u, a in ali.items()))


def checkpoint_position(exp: Path) -> dict:
    import torch

    return torch.load(exp / "checkpoint.pt", map_location="cpu", weights_only=True)["position"]


def run_config(label: str, base_args: list[str], extra: list[str], warmup: int, updates: int, tmp: Path,
               env: dict, copies: int = 1) -> dict:
    """``copies`` > 1: that many independent single processes side by side (separate output
    dirs, no communication); frames are summed, the time is the slowest one's."""
    exps = [tmp / (label if copies == 1 else f"{label}-{k}") for k in range(copies)]
    cmds = [[sys.executable, "-m", "asr", "-q", "train", *base_args, "--out", str(e), "--no-progress", *extra]
            for e in exps]
    for args in (["--max-updates", str(warmup)], ["--resume", "--max-updates", str(warmup + updates)]):
        procs = [subprocess.Popen(c + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                 for c in cmds]
        for p in procs:
            err = p.communicate()[1]
            if p.returncode:
                sys.exit(f"{label}: asr train failed:\n{err[-3000:]}")
        if args[0] == "--max-updates":
            p0 = [checkpoint_position(e) for e in exps]
    p1 = [checkpoint_position(e) for e in exps]
    if any(b["epoch"] != a["epoch"] for a, b in zip(p0, p1)):
        sys.exit(f"{label}: an epoch ended inside the timed updates; use a larger corpus or fewer --updates")
    frames = sum(b["acc"][2] - a["acc"][2] for a, b in zip(p0, p1))
    seconds = max(b["acc"][3] - a["acc"][3] for a, b in zip(p0, p1))
    cpu = p1[0].get("cpu_seconds", 0.0) - p0[0].get("cpu_seconds", 0.0)
    return {"label": label, "frames": frames, "seconds": seconds, "fps": frames / seconds, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SYNTH / "data" / "train")
    ap.add_argument("--ali", type=Path, default=SYNTH / "exp" / "tree" / "ali.pdf.ark")
    ap.add_argument("--synthetic-frames", type=int, default=0,
                    help="use a random corpus of this many frames instead of --data/--ali")
    ap.add_argument("--config", type=Path, default=ROOT / "conf" / "lstmp.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--one-threads", type=int, default=None,
                    help="threads of the 1-process run (default --threads). With N × --threads here it answers "
                         "'one process using every core, or N processes?': then the efficiency lines are not "
                         "printed, the speed-up of each N-process mode over the one process is")
    ap.add_argument("--updates", type=int, default=30, help="timed updates (batches) per configuration")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default=None, help="comma-separated subset of: one,ddp,asgd,limit")
    ap.add_argument("--repeats", type=int, default=1,
                    help="run the configurations in turn this many times; each figure is the run of median frames/s "
                         "(a shared or virtual machine's speed drifts by several per cent within minutes)")
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="train_scaling.") as tmp:
        tmp = Path(tmp)
        if args.synthetic_frames:
            data, ali = write_random_data(tmp / "corpus", args.synthetic_frames)
            cmvn_note = "random corpus"
        else:
            data, ali = args.data, args.ali
            if not (data / "feats.scp").is_file() or not ali.is_file():
                sys.exit(f"no {data}/feats.scp or {ali}: run recipes/synth/run.sh --stage 0 --stop-stage 3, "
                         "or pass --synthetic-frames N")
            cmvn_note = str(data)
        import yaml

        N, T = args.workers, args.threads
        T1 = args.one_threads or T
        c = yaml.safe_load(args.config.read_text())
        if args.synthetic_frames:  # random features have no cmvn.scp
            c["training"]["cmvn"] = "none"
        cfg = tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump(c))
        c["training"]["streams"] = int(c["training"].get("streams", 64)) // N  # each independent process: B/N
        cfg_part = tmp / "config_part.yaml"
        cfg_part.write_text(yaml.safe_dump(c))
        base = ["--config", str(cfg), "--feats", str(data), "--ali", str(ali), "--device", args.device]
        load = os.getloadavg()
        print(f"data {cmvn_note}; config {args.config}; {N} processes × {T} thread(s); {args.updates} timed updates "
              f"after {args.warmup}; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        runs = {
            "one": (f"1 process × {T1} thread(s)", ["--num-threads", str(T1)]),
            "ddp": (f"DDP {N} ranks × {T}", ["--workers", str(N), "--num-threads", str(T)]),
            "asgd": (f"ASGD {N} workers × {T}", ["--workers", str(N), "--num-threads", str(T), "--mode", "asgd"]),
            # the raw limit of any data-parallel scheme here: N processes of B/N streams that never talk
            "limit": (f"{N} independent × {T}, B/{N}", ["--num-threads", str(T), "--config", str(cfg_part)]),
        }
        only = set(args.only.split(",")) if args.only else set(runs)
        tries: dict[str, list[dict]] = {k: [] for k in runs if k in only}
        for rep in range(args.repeats):
            for key in tries:
                label, extra = runs[key]
                t0 = time.time()
                r = run_config(f"{key}{rep}", base, extra, args.warmup, args.updates, tmp, env,
                               copies=N if key == "limit" else 1)
                tries[key].append(r)
                print(f"{label:<28} {r['frames']:>9d} frames {r['seconds']:>8.2f} s {r['fps']:>9.0f} frames/s "
                      f"rank 0 CPU {r['cpu']:>7.2f} s (run {time.time() - t0:.0f} s)", flush=True)
        res = {k: sorted(v, key=lambda r: r["fps"])[len(v) // 2] for k, v in tries.items()}
        if args.repeats > 1:
            print("median of " + str(args.repeats) + " runs: " + " ".join(f"{k}={r['fps']:.0f}" for k, r in res.items()))
        if "one" in res and T1 != T:
            print(f"speed-up over 1 process × {T1} threads: " + " ".join(
                f"{k}={res[k]['fps'] / res['one']['fps']:.2f}" for k in ("ddp", "asgd", "limit") if k in res))
        elif "one" in res:
            eff = {k: res[k]["fps"] / (N * res["one"]["fps"]) for k in ("ddp", "asgd") if k in res}
            if eff:
                print("scaling efficiency " + " ".join(f"{k}={v:.2f}" for k, v in eff.items()))
            if "limit" in res:
                lim = res["limit"]["fps"] / (N * res["one"]["fps"])
                print(f"limit (independent processes, no communication) = {lim:.2f}; of the limit: "
                      + " ".join(f"{k}={v / lim:.2f}" for k, v in eff.items()))
            if res["one"]["cpu"] > 0:
                # frames per CPU-second (rank 0's CPU time × N): what the efficiency would be if every
                # process had a core of its own, i.e. with the load of other jobs taken out
                per_cpu = {k: (res[k]["frames"] / (N * res[k]["cpu"])) / (res["one"]["frames"] / res["one"]["cpu"])
                           for k in ("ddp", "asgd", "limit") if k in res and res[k]["cpu"] > 0}
                print("work efficiency per CPU-second " + " ".join(f"{k}={v:.2f}" for k, v in per_cpu.items()))
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
