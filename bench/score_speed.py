"""Speed of the scoring-side tools on synthetic data (CPU seconds, one process).

    python bench/score_speed.py [--utts 200] [--seed 0]

Prints: lattice rescoring (ms per lattice, microseconds per output arc, state/arc
expansion), the 33-pair LMWT x WIP best-path sweep (ms per lattice), lattice archive
write/read (microseconds per arc), and compute-wer (microseconds per utterance, Kaldi
and sclite alignments). The LMs are random trigram ARPAs over a 2000-word vocabulary
(first pass: 20k bigrams + 5k trigrams; rescoring: 100k + 100k); lattices are word
sausages of 20 slots with 8 alternatives plus 4 skip arcs per slot (a pessimistic
shape: every path has its own history).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.lattice.lattice_io import Lattice, best_paths, read_lattices, write_lattices  # noqa: E402
from asr.lattice.lmrescore import LatticeRescorer  # noqa: E402
from asr.lm.arpa import read_arpa  # noqa: E402
from asr.score.wer import score_texts  # noqa: E402

V = 2000
WORDS = ["<eps>"] + [f"w{i}" for i in range(1, V)]


def random_arpa(path: Path, n2: int, n3: int, seed: int) -> None:
    r = np.random.default_rng(seed)
    vocab = WORDS[1:]
    bi: set = set()
    while len(bi) < n2:
        bi.add((int(r.integers(0, len(vocab))), int(r.integers(0, len(vocab)))))
    bl = sorted(bi)
    tri: set = set()
    while len(tri) < n3:
        a, b = bl[r.integers(0, len(bl))]
        tri.add((a, b, int(r.integers(0, len(vocab)))))
    with open(path, "w") as f:
        f.write(f"\\data\\\nngram 1={len(vocab) + 2}\nngram 2={len(bl)}\nngram 3={len(tri)}\n\n\\1-grams:\n")
        f.write("-1.5 </s>\n-99 <s> -0.3\n")
        for w in vocab:
            f.write(f"{-r.uniform(2, 4):.4f} {w} {-r.uniform(0, 1):.4f}\n")
        f.write("\n\\2-grams:\n")
        for a, b in bl:
            f.write(f"{-r.uniform(0.5, 2):.4f} {vocab[a]} {vocab[b]} {-r.uniform(0, 1):.4f}\n")
        f.write("\n\\3-grams:\n")
        for a, b, c in sorted(tri):
            f.write(f"{-r.uniform(0.1, 1):.4f} {vocab[a]} {vocab[b]} {vocab[c]}\n")
        f.write("\n\\end\\\n")


def sausage(rng, slots: int = 20, alts: int = 8) -> Lattice:
    src, dst, w = [], [], []
    for t in range(slots):
        for _ in range(alts):
            src.append(t), dst.append(t + 1), w.append(int(rng.integers(1, V)))
        if t + 2 <= slots:
            for _ in range(alts // 2):
                src.append(t), dst.append(t + 2), w.append(int(rng.integers(1, V)))
    n = len(src)
    fg = np.full(slots + 1, np.inf)
    fg[-1] = 0.0
    return Lattice(src, dst, w, rng.uniform(0, 10, n), rng.uniform(0, 100, n), fg, fg.copy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utts", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        random_arpa(tmp / "old.arpa", 20_000, 5_000, 1)
        random_arpa(tmp / "new.arpa", 100_000, 100_000, 2)
        t = time.process_time()
        old, new = read_arpa(tmp / "old.arpa"), read_arpa(tmp / "new.arpa")
        print(f"read 2 ARPA files: {time.process_time() - t:.2f} s")
        lats = [(f"u{i:05d}", sausage(rng)) for i in range(args.utts)]
        arcs_in = sum(lat.num_arcs for _, lat in lats)

        rescorer = LatticeRescorer(old, new, WORDS)
        t = time.process_time()
        outs = [(u, rescorer.rescore(lat, u)) for u, lat in lats]
        dt = time.process_time() - t
        arcs_out = sum(o.num_arcs for _, o in outs)
        print(f"lmrescore: {1000 * dt / len(lats):.1f} ms/lattice, {1e6 * dt / arcs_out:.1f} us/output arc "
              f"({arcs_in / len(lats):.0f} -> {arcs_out / len(lats):.0f} arcs per lattice)")

        weights = [(float(lm), wip) for wip in (0.0, 0.5, 1.0) for lm in range(7, 18)]
        t = time.process_time()
        for _, o in outs:
            best_paths(o, weights)
        dt = time.process_time() - t
        print(f"best paths, {len(weights)} (LMWT, WIP) pairs: {1000 * dt / len(outs):.1f} ms/lattice "
              f"({arcs_out / len(outs):.0f} arcs)")

        t = time.process_time()
        write_lattices(tmp / "lat.1.gz", outs)
        tw = time.process_time() - t
        t = time.process_time()
        n = sum(1 for _ in read_lattices(tmp / "lat.1.gz"))
        tr = time.process_time() - t
        assert n == len(outs)
        print(f"lattice archive: write {1e6 * tw / arcs_out:.2f} us/arc, read {1e6 * tr / arcs_out:.2f} us/arc")

    r = random.Random(args.seed)
    vocab = [f"w{i}" for i in range(500)]
    ref, hyp = {}, {}
    for i in range(5000):
        words = [r.choice(vocab) for _ in range(r.randint(3, 30))]
        ref[f"u{i}"] = words
        hyp[f"u{i}"] = [w if r.random() < 0.85 else r.choice(vocab) for w in words if r.random() > 0.05]
    for sclite in (False, True):
        t = time.process_time()
        score_texts(ref, hyp, sclite=sclite)
        dt = time.process_time() - t
        print(f"compute-wer{' --sclite' if sclite else ''}: {1e6 * dt / len(ref):.0f} us/utterance (5000 utterances)")


if __name__ == "__main__":
    main()
