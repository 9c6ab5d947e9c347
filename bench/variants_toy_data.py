"""Toy sequence task for bench/variants_toy_study.sh: 40 pdfs with a sparse bigram, segments of
5–12 frames, 40-dim features = pdf mean + N(0, 1.5²) noise (single frames are ambiguous;
context helps). Writes train/ (300 utterances) and dev/ (40) with feats.scp, utt2spk, and
train.ali / dev.ali into the current directory."""
import sys
from pathlib import Path

import kaldiio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asr.io.int_ark import write_int_ark  # noqa: E402

P, D = 40, 40
means = np.random.default_rng(0).standard_normal((P, D))
trans = np.random.default_rng(1).dirichlet(np.ones(P) * 0.1, size=P)  # sparse pdf bigram
def make(name, n_utts, seed):
    rng = np.random.default_rng(seed); d = Path(name); d.mkdir(exist_ok=True); ali = {}
    with kaldiio.WriteHelper(f"ark,scp:{d/'feats.ark'},{d/'feats.scp'}") as w:
        for u in range(n_utts):
            segs, s = [], rng.integers(P)
            while sum(len(x) for x in segs) < 150:
                segs.append(np.full(rng.integers(5, 13), s)); s = rng.choice(P, p=trans[s])
            seg = np.concatenate(segs)
            f = (means[seg] + rng.standard_normal((len(seg), D)) * 1.5).astype(np.float32)
            w(f"{name}{u:04d}", f); ali[f"{name}{u:04d}"] = seg
    (d/"utt2spk").write_text("".join(f"{u} spk\n" for u in sorted(ali)))
    write_int_ark(f"{name}.ali", sorted(ali.items()))
make("train", 300, 1); make("dev", 40, 2)
