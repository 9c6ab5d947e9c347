"""Small fixtures shared by the lang/hmm/align tests (made in tmp dirs by the tests)."""

from pathlib import Path

import numpy as np

from asr.align.compile import AlignmentCompiler
from asr.hmm.transition_model import TransitionModel
from asr.hmm.tree import monophone_tree
from asr.io.int_ark import write_int_ark
from asr.lang.lang_dir import LangDir

from asr.lang.prepare import prepare_lang

LEXICON = "BAT B AA T\nCAT K AA T\nA AA\nAT AA T\nTAB T AA B\nTAB T AA B AA\n"

CTM = """u1 1 0.00 0.20 SIL
u1 1 0.20 0.10 K
u1 1 0.30 0.10 AA
u1 1 0.40 0.10 T
u1 1 0.50 0.08 AA
u1 1 0.58 0.10 T
u1 1 0.68 0.05 SIL
u1 1 0.73 0.10 T
u1 1 0.83 0.10 AA
u1 1 0.93 0.10 B
u1 1 1.03 0.195 SIL
u2 1 0.00 0.02 AA
u2 1 0.02 0.10 B
u2 1 0.12 0.20 AA
u2 1 0.32 0.10 T
u2 1 0.42 0.203 SIL
u3 1 0.0 0.3 SPN
u3 1 0.3 0.1 K
u3 1 0.4 0.1 AA
u3 1 0.5 0.1 T
"""


def make_dict(d: Path, lexicon: str = LEXICON, probs: bool = False) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "nonsilence_phones.txt").write_text("AA\nB\nK\nT\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "extra_questions.txt").write_text("B K T\n")
    (d / ("lexiconp.txt" if probs else "lexicon.txt")).write_text(lexicon)
    return d


def make_lang(tmp: Path) -> Path:
    prepare_lang(make_dict(tmp / "dict"), tmp / "lang")
    return tmp / "lang"


def make_data(tmp: Path, frames=(120, 60, 58)) -> Path:
    d = tmp / "data"
    d.mkdir(parents=True, exist_ok=True)
    (d / "text").write_text("u1 CAT AT TAB\nu2 A BAT\nu3 ZOO CAT\n")
    (d / "utt2num_frames").write_text("".join(f"u{i + 1} {n}\n" for i, n in enumerate(frames)))
    (d / "phones.ctm").write_text(CTM)
    return d


def synth_corpus(tmp, n_utts=80, dim=5, seed=0):
    """Alignments (monophone model) and features: each (base phone, state) has its own mean;
    the middle state of AA is shifted by +4 when the left phone is a K."""
    import kaldiio

    rng = np.random.default_rng(seed)
    lang_dir = make_lang(tmp)
    lang = LangDir(lang_dir)
    topo = lang.topology()
    tree = monophone_tree(lang.sets, {p: topo.num_pdf_classes(p) for p in topo.phones})
    tm = TransitionModel.build(tree, topo)
    comp = AlignmentCompiler(tree, tm)
    words = [w for w in lang.align_lexicon if lang.word_names[w] not in ("<eps>", "<UNK>")]
    names = lang.phone_names
    base = {p: lang.base_phone(names[p]) for p in names}
    means = {(b, s): rng.normal(0, 3, dim) for b in {"SIL", "SPN", "AA", "B", "K", "T"} for s in range(5)}
    data = tmp / "data"
    data.mkdir()
    alis, texts = {}, {}
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u in range(n_utts):
            phones = [lang.optional_silence]
            wids = rng.choice(words, size=6)
            for wid in wids:
                phones += lang.align_lexicon[wid][0]
            phones.append(lang.optional_silence)
            phones = np.array(phones)
            lens = np.array([rng.integers(topo.num_states(p), 3 * topo.num_states(p) + 1) for p in phones])
            fa = comp.compile(phones, lens)
            states = tm.tid2hmm_state[fa.tids]
            x = np.stack([means[(base[p], s)] for p, s in zip(fa.phones, states)])
            inst = np.repeat(np.arange(len(phones)), lens)
            left = np.concatenate([[0], phones[:-1]])[inst]
            planted = (np.array([base[p] == "AA" for p in fa.phones]) & (states == 1)
                       & np.array([base.get(p, "") == "K" for p in left]))
            x[planted] += 4.0
            x += rng.normal(0, 1, x.shape)
            utt = f"utt{u:03d}"
            w[utt] = x.astype(np.float32)
            alis[utt] = fa.tids
            texts[utt] = " ".join(lang.word_names[int(x)] for x in wids)
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(texts.items())))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in sorted(alis)))
    from asr.align.ali_dir import AliDir

    ali = tmp / "ali"
    with AliDir.writer(ali, "test", {}) as d:  # an alignment dir as asr import-ali writes one
        tm.write(d / "final.mdl")
        write_int_ark(d / "ali.tid.ark", sorted(alis.items()))
        write_int_ark(d / "ali.pdf.ark", sorted((u, tm.tid2pdf[a]) for u, a in alis.items()))
    return lang_dir, data, ali, lang
