"""Speed and peak memory of n-gram counting + modified Kneser-Ney estimation.

Generates a synthetic text (Zipfian words over a large vocabulary with some local
structure; almost every 5-gram is distinct, the hard case for memory), then runs
read_corpus + count_ngrams + estimate_kneser_ney in a fresh single-threaded child process
and prints tokens/s and the child's peak resident memory (ru_maxrss). Goal for a 5-gram on
5 M tokens: <= 60 s and <= 4 GiB on one core.

    python bench/lm_speed.py [--tokens 5000000] [--order 5] [--vocab 50000] [--write-arpa]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_text(path: Path, tokens: int, vocab: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    # Zipf ranks, then a cheap "grammar": each word is, with prob. 0.5, a fixed successor of the previous one
    ranks = np.minimum(rng.zipf(1.1, size=tokens), vocab) - 1
    succ = rng.integers(0, vocab, size=vocab)
    follow = rng.random(tokens) < 0.5
    ids = ranks.copy()
    ids[1:][follow[1:]] = succ[ranks[:-1][follow[1:]]]
    lens = rng.integers(5, 26, size=tokens // 5 + 1)
    ends = np.cumsum(lens)
    ends = ends[ends < tokens]
    names = np.array([f"w{i}" for i in range(vocab)], dtype=object)
    words = names[ids]
    with open(path, "w") as f:
        start = 0
        for e in list(ends) + [tokens]:
            f.write(" ".join(words[start:e]) + "\n")
            start = e
    return tokens


CHILD = r"""
import json, resource, sys, time
from asr.lm.counting import read_corpus, count_ngrams
from asr.lm.kneser_ney import estimate_kneser_ney
text, order, write = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
clock = time.perf_counter
cpu = time.process_time
t0, c0 = clock(), cpu()
corpus = read_corpus(text)
t1, c1 = clock(), cpu()
n_tok, n_words = corpus.num_tokens, corpus.num_words
counts = count_ngrams(corpus, order)
del corpus
t2, c2 = clock(), cpu()
lm, disc = estimate_kneser_ney(counts)
t3, c3 = clock(), cpu()
out = {"words": n_words, "tokens_with_markers": n_tok, "read_s": t1 - t0, "count_s": t2 - t1,
       "estimate_s": t3 - t2, "read_cpu": c1 - c0, "count_cpu": c2 - c1, "estimate_cpu": c3 - c2,
       "ngrams": lm.num_ngrams(), "peak_rss_gib": rss()}
if write != "-":
    from asr.lm.arpa import write_arpa
    del counts
    write_arpa(lm, write)
    out["write_arpa_s"] = clock() - t3
    out["write_arpa_cpu"] = cpu() - c3
    out["peak_rss_with_write_gib"] = rss()
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=5_000_000)
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--write-arpa", action="store_true", help="also time writing the ARPA file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        text = Path(d) / "text.txt"
        t = time.perf_counter()
        make_text(text, args.tokens, args.vocab)
        print(f"generated {args.tokens} words ({text.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-c", CHILD, str(text), str(args.order), str(Path(d) / "lm.arpa") if args.write_arpa else "-"]
        if sys.platform.startswith("linux"):
            cmd = ["taskset", "-c", "0"] + cmd  # one core
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode != 0:
            sys.exit(r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"order {args.order}, {res['words']} words ({res['tokens_with_markers']} tokens with <s>/</s>), "
          f"generator vocabulary {args.vocab}, n-grams per order {res['ngrams']}")
    for kind, suffix in (("wall", "_s"), ("cpu", "_cpu")):
        total = res["read" + suffix] + res["count" + suffix] + res["estimate" + suffix]
        print(f"{kind:>4}: read+tokenise {res['read' + suffix]:.1f} s, count {res['count' + suffix]:.1f} s, "
              f"estimate {res['estimate' + suffix]:.1f} s: total {total:.1f} s = {res['words'] / total / 1e3:.0f} k words/s")
    if "write_arpa_s" in res:
        print(f"write ARPA: wall {res['write_arpa_s']:.1f} s, cpu {res['write_arpa_cpu']:.1f} s, "
              f"peak RSS incl. writing {res['peak_rss_with_write_gib']:.2f} GiB")
    print(f"peak memory of counting+estimation (child max RSS) {res['peak_rss_gib']:.2f} GiB; goal <= 60 s, <= 4 GiB "
          f"(child wall {wall:.1f} s; cpu time is the better figure on a shared machine)")


if __name__ == "__main__":
    main()
