"""Throughput of the LibriSpeech recipe's heavy stages, for projecting their time and memory
to the real corpus (recipes/librispeech/README.md).

On a LibriSpeech-shaped part of synthesised FLAC speech (tests/librispeech_fixture.py,
--utts utterances) it measures, each in a fresh child process with its peak RSS:

  prep      `asr prep-librispeech` (directory walk, transcripts, FLAC headers): files/s
  fbank     `asr make-fbank --nj 1` on the FLAC data dir: x real time on one core
  lang      `asr prepare-dict` + `asr prepare-lang` on a generated lexicon of --lexicon-words
            words (LibriSpeech's has 200,000; random CMUdict-style pronunciations)
  train     the paper-size LSTMP (conf/lstmp_paper.yaml: 2 x 800/512, peepholes, 14,247
            outputs) forward + backward + SGD step on random features, torch threads 1:
            frames/s for B = 4 streams x T = 20 (the paper's per-worker shape) and B = 32;
            and its forward alone (no gradients, 8 x 300 frames: decoding's share)

    python bench/librispeech_stages.py [--utts 300] [--work /tmp/ls_stages] [--train-updates 5]
                                       [--lexicon-words 200000] [--stages prep,fbank,lang,train]

Run under `flock /tmp/measure.lock` on a shared machine and record `uptime` with the figures.
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

TRAIN_CHILD = r"""
import json, resource, sys, time
import torch
from asr.config import load_yaml
from asr.nnet import build_model
torch.set_num_threads(1)
cfg = load_yaml(sys.argv[1])
B, T, updates = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = build_model(cfg["model"], 40, 14247)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(B, T, 40)
y = torch.randint(0, 14247, (B, T))
state = None
def step():
    global state
    out, state = model(x, state)
    state = tuple(s.detach() for s in state)
    loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    opt.zero_grad(); loss.backward(); opt.step()
step()
t0 = time.perf_counter()
for _ in range(updates):
    step()
dt = time.perf_counter() - t0
with torch.no_grad():  # decoding's network forward: whole utterances, batched
    xf = torch.randn(8, 300, 40)
    model(xf)
    t1 = time.perf_counter()
    for _ in range(3):
        model(xf)
    fwd = 8 * 300 * 3 / (time.perf_counter() - t1)
print("RESULT " + json.dumps({"stage": "train", "streams": B, "chunk": T, "frames_per_s": round(B * T * updates / dt, 1),
      "forward_frames_per_s": round(fwd, 1),
      "params": sum(p.numel() for p in model.parameters()),
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def child(cmd: list[str], env: dict) -> tuple[float, str]:
    """Wall seconds and stdout of a child command (which prints its own peak RSS)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return wall, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utts", type=int, default=300)
    ap.add_argument("--work", default="/tmp/ls_stages")
    ap.add_argument("--train-updates", type=int, default=5)
    ap.add_argument("--lexicon-words", type=int, default=200_000)
    ap.add_argument("--stages", default="prep,fbank,lang,train")
    args = ap.parse_args()
    stages = set(args.stages.split(","))
    work = Path(args.work)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    timed = [sys.executable, "-c",
             "import resource, runpy, sys, json; sys.argv = sys.argv[1:]; "
             "code = 0\ntry:\n    runpy.run_module('asr', run_name='__main__')\nexcept SystemExit as e:\n"
             "    code = e.code or 0\nprint('RSS ' + json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
             " / 2**20)); sys.exit(code)", "asr"]
    part = work / "LibriSpeech" / "train-clean-100"
    if stages & {"prep", "fbank"} and not part.is_dir():
        sys.path.insert(0, str(ROOT / "tests"))
        from librispeech_fixture import make_librispeech_fixture

        make_librispeech_fixture(work, {"train-clean-100": args.utts}, lm=False)
    data = work / "data"
    if "prep" in stages or "fbank" in stages:
        prep_and_fbank(timed, env, part, data, stages)
    if "lang" in stages:
        lang(timed, env, work, args.lexicon_words)
    if "train" in stages:
        for b, t in ((4, 20), (32, 20)):
            _, out = child([sys.executable, "-c", TRAIN_CHILD, str(ROOT / "conf" / "lstmp_paper.yaml"), str(b),
                            str(t), str(args.train_updates)], env)
            print(out.split("RESULT ")[-1].strip(), flush=True)
    print(json.dumps({"load": os.getloadavg()}))


def prep_and_fbank(timed, env, part, data, stages) -> None:
    wall, out = child(timed + ["prep-librispeech", str(part), str(data)], env)
    prep = json.loads((data / "prep.json").read_text())
    rss = float(out.split("RSS ")[-1])
    print(json.dumps({"stage": "prep", "files": prep["utterances"], "hours": prep["hours"], "wall_s": round(wall, 2),
                      "files_per_s": round(prep["utterances"] / wall, 1), "peak_rss_gib": round(rss, 3)}), flush=True)
    if (data / "feats.scp").exists():
        (data / "feats.scp").unlink()
    wall, out = child(timed + ["make-fbank", "--nj", "1", "--force", "--no-progress", "--config",
                               str(ROOT / "conf" / "fbank.conf"), str(data)], env)
    rss = float(out.split("RSS ")[-1])
    print(json.dumps({"stage": "fbank", "hours": prep["hours"], "wall_s": round(wall, 2),
                      "x_real_time_per_core": round(prep["hours"] * 3600 / wall, 1),
                      "peak_rss_gib": round(rss, 3)}), flush=True)


def lang(timed, env, work: Path, n_words: int) -> None:
    """prepare-dict + prepare-lang on a generated CMUdict-style lexicon of n_words words."""
    import numpy as np

    vowels = ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]
    cons = ["B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH",
            "V", "W", "Y", "Z", "ZH"]
    rng = np.random.default_rng(0)
    work.mkdir(parents=True, exist_ok=True)
    lex = work / "lexicon.txt"
    with open(lex, "w") as f:
        for i in range(n_words):
            n = int(rng.integers(2, 11))
            pron = [(vowels[rng.integers(len(vowels))] + str(rng.integers(3))) if rng.random() < 0.4
                    else cons[rng.integers(len(cons))] for _ in range(n)]
            f.write(f"W{i:07d}\t{' '.join(pron)}\n")
    t_dict, out = child(timed + ["prepare-dict", str(lex), str(work / "dict")], env)
    t_lang, out2 = child(timed + ["prepare-lang", str(work / "dict"), str(work / "lang")], env)
    print(json.dumps({"stage": "lang", "words": n_words, "prepare_dict_s": round(t_dict, 1),
                      "prepare_lang_s": round(t_lang, 1),
                      "peak_rss_gib": round(max(float(out.split("RSS ")[-1]), float(out2.split("RSS ")[-1])), 3),
                      "L_disambig_bytes": (work / "lang" / "L_disambig.fst").stat().st_size}), flush=True)


if __name__ == "__main__":
    main()
