"""A learnable corpus for flat-start tests, made in a tmp dir: features whose phone identity
is recoverable, transcripts, and the true phone times (a CTM) to measure alignments against.

Lang: tests/hmm_test_helpers.py's (phones SIL SPN AA B K T, words BAT CAT A AT TAB).
Each utterance: leading silence, 3-6 random words, a silence between words with
probability 0.3, trailing silence; every phone instance lasts 6-14 frames. Features (8
dims): a mean per base phone plus a smaller one per HMM state (thirds of the instance),
Gaussian noise. No CMVN (networks trained on it use ``cmvn: none``).
"""

from pathlib import Path

import numpy as np
from hmm_test_helpers import make_lang

from asr.lang.lang_dir import LangDir

TINY_NET = """model: {family: dnn, splice: SPLICE, hidden_dim: 64, num_layers: 2, activation: relu}
training: {optimizer: adam, lr: 0.004, schedule: {type: warmup_cosine, warmup_updates: 20, final_lr_factor: 0.1},
           grad_clip: 5.0, epochs: EPOCHS, streams: 8, chunk: 20, output_delay: SPLICE, seed: 1, cmvn: none}
"""


def tiny_net_config(path: Path, epochs: int = 4, splice: int = 0) -> Path:
    """A tiny DNN config (frame classifier by default, as the flat start's CI network)."""
    path.write_text(TINY_NET.replace("EPOCHS", str(epochs)).replace("SPLICE", str(splice)))
    return path


def learnable_corpus(tmp: Path, n_utts: int = 60, dim: int = 8, seed: int = 0, name: str = "data"):
    """Returns (lang_dir, data_dir, ctm_path)."""
    import kaldiio

    rng = np.random.default_rng(seed)
    lang_dir = tmp / "lang"
    if not lang_dir.exists():
        make_lang(tmp)
    lang = LangDir(lang_dir)
    words = ["BAT", "CAT", "A", "AT", "TAB"]
    prons = {w: lang.align_lexicon[lang.words[w]][0] for w in words}
    names = lang.phone_names
    bases = sorted({lang.base_phone(names[p]) for p in names if names[p][0].isalpha()})
    mean_rng = np.random.default_rng(1234)  # the same "acoustics" in every data dir
    phone_mean = {b: mean_rng.normal(0, 3, dim) for b in bases}
    state_mean = {(b, s): mean_rng.normal(0, 1.0, dim) for b in bases for s in range(3)}
    data = tmp / name
    data.mkdir(parents=True)
    texts, ctm, nframes = {}, [], {}
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u in range(n_utts):
            utt = f"utt{u:03d}"
            ws = list(rng.choice(words, size=int(rng.integers(3, 7))))
            segs = [("SIL", int(rng.integers(15, 30)))]
            for k, word in enumerate(ws):
                segs += [(lang.base_phone(names[p]), int(rng.integers(6, 15))) for p in prons[word]]
                if k + 1 < len(ws) and rng.random() < 0.3:
                    segs.append(("SIL", int(rng.integers(5, 15))))
            segs.append(("SIL", int(rng.integers(15, 30))))
            rows = []
            for base, n in segs:
                for f in range(n):
                    rows.append(phone_mean[base] + state_mean[(base, min(3 * f // n, 2))])
            x = np.array(rows) + rng.normal(0, 0.7, (len(rows), dim))
            w[utt] = x.astype(np.float32)
            texts[utt] = " ".join(ws)
            nframes[utt] = len(rows)
            start = 0
            for base, n in segs:  # frame k stands for 10k+12.5 ms; boundaries between centres
                t0 = 0.0 if start == 0 else start * 0.01 + 0.0075
                t1 = (start + n) * 0.01 + 0.0075
                ctm.append(f"{utt} 1 {t0:.4f} {t1 - t0:.4f} {base}")
                start += n
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(texts.items())))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in sorted(texts)))
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u in sorted(texts)))
    (data / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u in sorted(texts)))
    (data / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in sorted(nframes.items())))
    ctm_path = tmp / f"{name}.ctm"
    ctm_path.write_text("\n".join(ctm) + "\n")
    return lang_dir, data, ctm_path
