#!/usr/bin/env python3
"""HCLG build time and memory on a synthetic 5k-word trigram triphone task (issue goal:
≤ 30 s on one core, ≤ 4 GiB).

    python bench/graph_build.py [--num-words 5000] [--bigrams 100000] [--trigrams 130000] [--mono]

Prints the time of each mkgraph step, peak memory, and the share of the build spent in
kaldifst's C++ (composition, determinization, minimization, context expansion: the raw
library limit) against our own numpy steps (reading, H, self-loops, conversions, writing).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

LIBRARY_STEPS = ("LG", "CLG", "HCLGa", "rmsymbols+minimize")  # kaldifst calls (plus conversions)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-words", type=int, default=5000)
    ap.add_argument("--bigrams", type=int, default=100_000)
    ap.add_argument("--trigrams", type=int, default=130_000)
    ap.add_argument("--mono", action="store_true", help="monophone graph (default: triphone)")
    args = ap.parse_args()

    from asr.graph.mkgraph import make_graph
    from graph_fixture import make_fixture

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fx = make_fixture(root, num_words=args.num_words, num_bigrams=args.bigrams, num_trigrams=args.trigrams,
                          triphone=not args.mono)
        print(f"fixture: {fx['num_words']} words, {fx['num_ngrams']} n-grams, {fx['num_pdfs']} pdfs, "
              f"{'mono' if args.mono else 'triphone'}", flush=True)
        t0 = time.perf_counter()
        stats = make_graph(fx["lang"], fx["tree_dir"], fx["lm"], root / "graph")
        wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    secs, cpus = stats["seconds"], stats["cpu_seconds"]
    print(f"HCLG: {stats['states']:,} states, {stats['arcs']:,} arcs, {stats['ilabels']:,} context-dependent labels")
    print(f"  {'step':20s} {'wall s':>8s} {'CPU s':>8s}")
    for k, v in secs.items():
        print(f"  {k:20s} {v:8.2f} {cpus[k]:8.2f}")
    total_cpu = stats["total_cpu_seconds"]
    lib = sum(cpus.get(k, 0.0) for k in LIBRARY_STEPS)
    print(f"total {wall:.1f} s wall, {total_cpu:.1f} s CPU (arpa2fst's child process included), "
          f"peak memory {peak:.2f} GiB (goal: ≤ 30 s, ≤ 4 GiB)")
    if lib > 0:
        print(f"kaldifst-dominated steps {lib:.1f} s CPU, own steps {total_cpu - lib:.1f} s CPU: "
              f"build / library-limit ratio {total_cpu / lib:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
