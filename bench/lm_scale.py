"""`asr make-lm` at scale: words/s and peak RSS on synthetic-grammar text of N words.

The text comes from the synthetic corpus grammar (asr/data/synth/grammar.py: an RM-like
task, 1,082 words), one sentence per line, generated once per size and seed into
--text-dir. Each measurement runs `asr make-lm` (the real command, ARPA written) in a fresh
child process and reports wall and CPU seconds, words/s and the child's peak resident
memory (ru_maxrss), plus the model's n-gram counts. Extra make-lm options (e.g.
"--min-counts 1,2,2") go through --make-lm-opts.

    python bench/lm_scale.py --words 10000000 40000000 [--order 5] [--make-lm-opts "..."]

Run under `flock /tmp/measure.lock` on a shared machine; record `uptime` with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

READ_CHILD = r"""
import json, resource, sys, time
from asr.lm.arpa import read_arpa
t0, c0 = time.perf_counter(), time.process_time()
lm = read_arpa(sys.argv[1])
print("RESULT " + json.dumps({"read_arpa_wall_s": time.perf_counter() - t0, "read_arpa_cpu_s": time.process_time() - c0,
      "read_arpa_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""

CHILD = r"""
import json, resource, sys, time
from asr.cli import main
t0, c0 = time.perf_counter(), time.process_time()
rc = main(sys.argv[1:])
out = {"rc": rc, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
       "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
print("RESULT " + json.dumps(out))
"""


def make_text(path: Path, words: int, seed: int) -> int:
    """Write sentences of the synthetic grammar until ``words`` words; returns the count."""
    import numpy as np

    from asr.data.synth.grammar import Grammar

    if path.exists():
        return int(path.with_suffix(".words").read_text())
    g, rng, n = Grammar(), np.random.default_rng(seed), 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        lines = []
        while n < words:
            s = g.sample(rng)
            n += len(s)
            lines.append(" ".join(s))
            if len(lines) == 10000:
                f.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    path.with_suffix(".words").write_text(str(n))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, nargs="+", default=[10_000_000, 40_000_000])
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--text-dir", default="/tmp/lm_scale")
    ap.add_argument("--make-lm-opts", default="", help="extra options for asr make-lm")
    ap.add_argument("--keep-arpa", action="store_true")
    ap.add_argument("--read-back", action="store_true",
                    help="also measure reading the ARPA back (asr.lm.arpa.read_arpa, as lmrescore and lm-ppl do)")
    args = ap.parse_args()
    d = Path(args.text_dir)
    d.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for n in args.words:
        text = d / f"grammar_{n}_{args.seed}.txt"
        t0 = time.time()
        words = make_text(text, n, args.seed)
        gen_s = time.time() - t0
        arpa = d / f"lm{args.order}_{n}.arpa"
        cmd = [sys.executable, "-c", CHILD, "-q", "make-lm", "--order", str(args.order), *args.make_lm_opts.split(),
               str(text), str(arpa)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
        if r.returncode != 0 or not line:
            print(f"make-lm failed on {words} words:\n{r.stderr[-3000:]}", file=sys.stderr)
            sys.exit(1)
        res = json.loads(line[0][7:])
        ngrams = []
        with open(arpa) as f:
            for row in f:
                if row.startswith("ngram "):
                    ngrams.append(int(row.split("=")[1]))
                elif row.startswith("\\1-grams"):
                    break
        res.update({"words": words, "order": args.order, "ngrams": ngrams, "total_ngrams": sum(ngrams),
                    "words_per_s_wall": round(words / res["wall_s"]), "words_per_s_cpu": round(words / res["cpu_s"]),
                    "arpa_bytes": arpa.stat().st_size, "text_gen_s": round(gen_s, 1),
                    "make_lm_opts": args.make_lm_opts, "load": os.getloadavg()})
        if args.read_back:
            r = subprocess.run([sys.executable, "-c", READ_CHILD, str(arpa)], capture_output=True, text=True, env=env)
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if r.returncode != 0 or not line:
                sys.exit(f"read_arpa failed:\n{r.stderr[-3000:]}")
            res.update(json.loads(line[0][7:]))
        if not args.keep_arpa:
            arpa.unlink()
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
