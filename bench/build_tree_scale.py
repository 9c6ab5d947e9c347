"""Time `asr build-tree` on a synthetic corpus of a given size (default 5 h = 1.8 M frames).

    python bench/build_tree_scale.py [--hours 5] [--num-leaves 1500] [--workdir /tmp/bt_bench]

Makes a lang dir (40 speech phones, 1,000 random words), monophone alignments with random
durations and 40-dim Gaussian features, then runs build-tree and prints its timings.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=5.0)
    ap.add_argument("--num-leaves", type=int, default=1500)
    ap.add_argument("--workdir", default="/tmp/bt_bench")
    a = ap.parse_args()
    import kaldiio

    from asr.align.compile import AlignmentCompiler
    from asr.cli import main as asr_main
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import monophone_tree
    from asr.io.int_ark import write_int_ark
    from asr.lang.lang_dir import LangDir
    from asr.lang.prepare import prepare_lang

    rng = np.random.default_rng(0)
    w = Path(a.workdir)
    d = w / "dict"
    d.mkdir(parents=True, exist_ok=True)
    phones = [f"P{i}" for i in range(40)]
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("\n".join(phones) + "\n")
    lex = {f"W{i}": " ".join(rng.choice(phones, rng.integers(2, 8))) for i in range(1000)}
    (d / "lexicon.txt").write_text("".join(f"{k} {v}\n" for k, v in lex.items()) + "<UNK> SPN\n")
    prepare_lang(d, w / "lang")
    lang = LangDir(w / "lang")
    topo = lang.topology()
    tree = monophone_tree(lang.sets, {p: topo.num_pdf_classes(p) for p in topo.phones})
    tm = TransitionModel.build(tree, topo)
    comp = AlignmentCompiler(tree, tm)
    words = [lang.words[k] for k in lex]
    means = rng.normal(0, 2, (max(lang.phone_names) + 1, 5, 40)).astype(np.float32)
    data = w / "data"
    data.mkdir(exist_ok=True)
    target = int(a.hours * 360000)
    total, alis, u = 0, {}, 0
    t0 = time.time()
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as wr:
        while total < target:
            seq = [lang.optional_silence]
            for wid in rng.choice(words, 12):
                seq += lang.align_lexicon[wid][0]
            seq.append(lang.optional_silence)
            seq = np.array(seq)
            lens = np.array([rng.integers(topo.num_states(p), 4 * topo.num_states(p)) for p in seq])
            fa = comp.compile(seq, lens)
            x = means[fa.phones, tm.tid2hmm_state[fa.tids]] + rng.normal(0, 1, (len(fa.tids), 40)).astype(np.float32)
            utt = f"u{u:05d}"
            wr[utt] = x
            alis[utt] = fa.tids
            total += len(fa.tids)
            u += 1
    (data / "utt2spk").write_text("".join(f"{k} {k}\n" for k in sorted(alis)))
    ali = w / "ali"
    ali.mkdir(exist_ok=True)
    tm.write(ali / "final.mdl")
    write_int_ark(ali / "ali.tid.ark", sorted(alis.items()))
    print(f"corpus: {u} utterances, {total} frames ({total / 360000:.2f} h), made in {time.time() - t0:.1f} s")
    t0 = time.time()
    asr_main(["build-tree", "--lang", str(w / "lang"), "--cmvn", "none", "--num-leaves", str(a.num_leaves),
              str(data), str(ali), str(w / "tree")])
    info = json.loads((w / "tree" / "build_tree.json").read_text())
    print(f"build-tree: {time.time() - t0:.1f} s wall; stats {info['stats_seconds']} s, "
          f"splitting {info['seconds']} s, leaves {info['leaves']}, contexts {info['contexts']}, "
          f"gain/frame {info['gain_per_frame']:.3f}")


if __name__ == "__main__":
    main()
