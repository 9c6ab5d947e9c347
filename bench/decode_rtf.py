"""Real-time factors of decoding on one core: network forward and search, separately.

    python bench/decode_rtf.py                                   # generated fixture
    python bench/decode_rtf.py --model-dir MODEL --data-dir DATA [--graph-dir G] [--max-utts N]

Generated fixture (default): a synthetic lexicon/trigram LM/triphone tree
(bench/graph_fixture.py, --num-words, default 1000), its HCLG, and a network built from
--model-config (default conf/lstmp.yaml) with random weights and uniform priors; the
"utterances" are random features (timing the forward only). Search is timed on "sharp"
scores (each frame's pdf along a random graph path favoured, plus noise), which is what a
trained model looks like to the decoder; --flat also times the 1-best search on the random
network's flat, search-saturating scores (the lattice decoder has no max-active, so it is
not run on those). With --model-dir/--data-dir: the real model on the data dir's features.

Prints one line per measurement, ``name: seconds / audio seconds = RTF``, and a JSON
summary; torch.set_num_threads(1) throughout (one core). Timings on a shared machine are
noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def build_fixture(root: Path, num_words: int, model_config: Path) -> Path:
    import torch

    from asr.config import load_yaml
    from asr.features.fbank import FbankComputer
    from asr.graph.mkgraph import make_graph
    from asr.hmm.transition_model import TransitionModel
    from asr.nnet.model_dir import ModelDir, save_model_dir
    from asr.nnet.registry import build_model
    from graph_fixture import make_fixture

    fx = make_fixture(root, num_words=num_words, num_bigrams=num_words * 20, num_trigrams=num_words * 26)
    tm = TransitionModel.read(fx["tree_dir"] / "final.mdl")
    md = root / "model"
    cfg = load_yaml(model_config)["model"]
    torch.manual_seed(0)
    net = build_model(cfg, 40, tm.num_pdfs)
    save_model_dir(md, net, cfg, 40, tm.num_pdfs, output_delay=5, cmvn="none")
    np.save(md / "log_priors.npy", np.full(tm.num_pdfs, -np.log(tm.num_pdfs), np.float32))
    t = time.perf_counter()
    stats = make_graph(fx["lang"], fx["tree_dir"], fx["lm"], root / "graph")
    print(f"fixture: {fx['num_words']} words, {fx['num_ngrams']} n-grams, {tm.num_pdfs} pdfs; "
          f"HCLG {stats['states']} states / {stats['arcs']} arcs in {time.perf_counter() - t:.1f} s", flush=True)
    ModelDir.pack(md, md, fx["tree_dir"], fx["lang"], FbankComputer(None).all_options, graph_dir=root / "graph")
    return md


def sharp_scores(rec, num_frames: int, rng) -> np.ndarray:
    """Scaled log-likelihoods favouring the pdfs along a random HCLG path (plus noise)."""
    from asr.graph.fst_arrays import read_fst

    fa = read_fst(rec.graph_dir / "HCLG.fst")
    # random walk over the graph, one emitting arc (transition-id) per frame
    order = np.argsort(fa.src, kind="stable")
    starts = np.searchsorted(fa.src[order], np.arange(fa.num_states + 1))
    pdfs = []
    s = fa.start
    while len(pdfs) < num_frames:
        lo, hi = starts[s], starts[s + 1]
        if hi == lo:
            s = fa.start
            continue
        k = order[rng.integers(lo, hi)]
        if fa.ilabel[k] > 0:
            pdfs.append(rec.tm.tid2pdf[fa.ilabel[k]])
        s = fa.dst[k]
    m = rng.normal(-8.0, 1.0, size=(num_frames, rec.tm.num_pdfs)).astype(np.float32)
    m[np.arange(num_frames), pdfs] = rng.normal(0.0, 0.5, num_frames)
    return m * rec.cfg.acoustic_scale * 10  # scaled: target ~0, others ~ -8 * scale * 10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir")
    ap.add_argument("--data-dir")
    ap.add_argument("--graph-dir")
    ap.add_argument("--max-utts", type=int, default=50)
    ap.add_argument("--num-utts", type=int, default=10, help="fixture: utterances")
    ap.add_argument("--frames", type=int, default=500, help="fixture: frames per utterance")
    ap.add_argument("--num-words", type=int, default=1000, help="fixture: vocabulary size")
    ap.add_argument("--model-config", default=str(HERE.parent / "conf" / "lstmp.yaml"))
    ap.add_argument("--acoustic-scale", type=float, default=0.1)
    ap.add_argument("--beam", type=float, default=13.0)
    ap.add_argument("--max-active", type=int, default=7000)
    ap.add_argument("--lattice-beam", type=float, default=8.0)
    ap.add_argument("--lattices", action="store_true", help="also time lattice generation")
    ap.add_argument("--flat", action="store_true", help="fixture: also time 1-best search on the random network's scores")
    args = ap.parse_args()

    import torch

    from asr.decode.model import Recognizer
    from asr.decode.search import SearchConfig

    torch.set_num_threads(1)
    cfg = SearchConfig(beam=args.beam, max_active=args.max_active, lattice_beam=args.lattice_beam,
                       acoustic_scale=args.acoustic_scale)
    tmp = None
    rng = np.random.default_rng(0)
    if args.model_dir:
        if not args.data_dir:
            ap.error("--model-dir needs --data-dir")
        from asr.features.reader import FeatureReader

        rec = Recognizer(args.model_dir, args.graph_dir, cfg)
        reader = FeatureReader(args.data_dir, cmvn=rec.cmvn_mode)
        utts = reader.utt_ids[: args.max_utts]
        feats = [reader[u] for u in utts]
    else:
        tmp = Path(tempfile.mkdtemp(prefix="decode_rtf."))
        md = build_fixture(tmp, args.num_words, Path(args.model_config))
        rec = Recognizer(md, None, cfg)
        feats = [rng.normal(size=(args.frames, 40)).astype(np.float32) for _ in range(args.num_utts)]
    frames = sum(len(f) for f in feats)
    audio = frames * 0.01
    out = {"frames": frames, "audio_seconds": audio, "threads": torch.get_num_threads()}

    def report(name, t0):
        wall, cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
        out[name] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "rtf": round(wall / audio, 5),
                     "rtf_cpu": round(cpu / audio, 5)}
        print(f"{name}: {wall:.2f} s ({cpu:.2f} s CPU) / {audio:.1f} s audio = RTF {wall / audio:.4f} "
              f"(CPU {cpu / audio:.4f})", flush=True)

    t = (time.perf_counter(), time.process_time())
    ll = rec.forward(feats)
    report("forward", t)
    if tmp is None or args.flat:
        name = "search_1best" if tmp is None else "search_1best_flat"
        t = (time.perf_counter(), time.process_time())
        hyps = [rec.search(m) for m in ll]
        report(name, t)
        if args.lattices and tmp is None:
            t = (time.perf_counter(), time.process_time())
            lats = [rec.search(m, lattice=True) for m in ll]
            report("search_lattice", t)
            out["lattice_equals_1best"] = sum(a.words == b.words for a, b in zip(hyps, lats)) / len(hyps)
    if tmp is not None:
        sharp = [sharp_scores(rec, len(f), rng) for f in feats]
        t = (time.perf_counter(), time.process_time())
        hyps = [rec.search(m) for m in sharp]
        report("search_1best_sharp", t)
        if args.lattices:
            t = (time.perf_counter(), time.process_time())
            lats = [rec.search(m, lattice=True) for m in sharp]
            report("search_lattice_sharp", t)
            out["lattice_equals_1best"] = sum(a.words == b.words for a, b in zip(hyps, lats)) / len(hyps)
        shutil.rmtree(tmp, ignore_errors=True)
    search = out.get("search_1best_sharp") or out.get("search_1best")
    out["rtf_total"] = round((out["forward"]["seconds"] + search["seconds"]) / audio, 5)
    out["rtf_total_cpu"] = round((out["forward"]["cpu_seconds"] + search["cpu_seconds"]) / audio, 5)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
