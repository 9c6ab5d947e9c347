"""asr build-tree on synthetic Gaussian features: recovers a planted context split."""

import json

import numpy as np

from asr.align.compile import AlignmentCompiler
from asr.cli import main
from asr.hmm.build_tree import TreeStats, build_tree, gauss_loglike
from asr.hmm.transition_model import TransitionModel
from asr.hmm.tree import ContextDependency, monophone_tree
from asr.io.int_ark import read_int_ark, write_int_ark
from asr.lang.lang_dir import LangDir
from hmm_test_helpers import make_lang


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
    alis = {}
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u in range(n_utts):
            phones = [lang.optional_silence]
            for wid in rng.choice(words, size=6):
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
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in sorted(alis)))
    ali = tmp / "ali"
    ali.mkdir()
    tm.write(ali / "final.mdl")
    write_int_ark(ali / "ali.tid.ark", sorted(alis.items()))
    return lang_dir, data, ali, lang


def test_planted_context_split(tmp_path):
    lang_dir, data, ali, lang = synth_corpus(tmp_path)
    out = tmp_path / "tree"
    assert main(["build-tree", "--lang", str(lang_dir), "--cmvn", "none", "--num-leaves", "30",
                 "--min-count", "20", str(data), str(ali), str(out)]) == 0
    tree = ContextDependency.read(out / "tree")
    assert tree.num_pdfs == 30 and tree.context_width == 3
    ph = lang.phones
    # AA middle state: every K left context -> one pdf, every other left context -> another
    with_k = {tree.compute((ph[k], ph["AA_I"], ph["T_E"]), 1) for k in ("K_B", "K_I", "K_E", "K_S")}
    without = {tree.compute((ph[o], ph["AA_I"], ph["T_E"]), 1) for o in ("B_B", "T_B", "SIL")}
    assert len(with_k) == 1 and len(without) == 1 and with_k != without
    # states of a phone are told apart; AA's other states ignore the K context
    assert tree.compute((ph["K_B"], ph["AA_I"], ph["T_E"]), 0) == tree.compute((ph["B_B"], ph["AA_I"], ph["T_E"]), 0)
    info = json.loads((out / "build_tree.json").read_text())
    assert info["leaves"] == 30 and info["loglike_gain"] > 0 and info["utterances"] == 80
    tm = TransitionModel.read(out / "final.mdl")
    assert tm.num_pdfs == 30
    # the mapped alignments use the new tree's pdfs and agree with the transition model
    pdfs = read_int_ark(out / "ali.pdf.ark")
    tids = read_int_ark(out / "ali.tid.ark")
    src = read_int_ark(ali / "ali.tid.ark")
    src_tm = TransitionModel.read(ali / "final.mdl")
    for u in list(pdfs)[:10]:
        assert np.array_equal(tm.tid2pdf[tids[u]], pdfs[u])
        assert np.array_equal(tm.tid2phone[tids[u]], src_tm.tid2phone[src[u]])
        assert np.array_equal(tm.tid2hmm_state[tids[u]], src_tm.tid2hmm_state[src[u]])
    sil = {int(x) for x in (out / "silence_pdfs.int").read_text().split()}
    assert sil and all(tm.tid2pdf[t] in sil for t in range(1, tm.num_transition_ids + 1)
                       if tm.tid2phone[t] in lang.silence_phones)
    assert (out / "num_pdfs").read_text().strip() == "30"


def test_monophone_context_width_1(tmp_path):
    lang_dir, data, ali, lang = synth_corpus(tmp_path, n_utts=30)
    out = tmp_path / "mono"
    assert main(["build-tree", "--lang", str(lang_dir), "--cmvn", "none", "--context-width", "1",
                 "--num-leaves", "12", str(data), str(ali), str(out)]) == 0
    tree = ContextDependency.read(out / "tree")
    assert tree.context_width == 1 and tree.central_position == 0 and tree.num_pdfs == 12


def test_gain_and_min_count():
    rng = np.random.default_rng(1)
    # two contexts of one phone with different means: the split gain is the likelihood difference
    x1, x2 = rng.normal(0, 1, (200, 2)), rng.normal(5, 1, (200, 2))

    def st(x):
        return np.concatenate([[len(x)], x.sum(0), (x * x).sum(0)])

    stats = TreeStats(np.array([[0, 2, 3], [0, 2, 4]], np.int32), np.array([0, 0], np.int32),
                      np.stack([st(x1), st(x2)]), 3, 1)
    roots = [(True, True, [2]), (True, True, [3]), (True, True, [4])]
    npc = {2: 1, 3: 1, 4: 1}
    tree, info = build_tree(stats, roots, npc, [[3], [4]], num_leaves=4, min_count=10)
    want = gauss_loglike(st(x1))[0] + gauss_loglike(st(x2))[0] - gauss_loglike(st(np.vstack([x1, x2])))[0]
    assert abs(info["loglike_gain"] - want) < 1e-6 * abs(want)
    assert tree.compute((0, 2, 3), 0) != tree.compute((0, 2, 4), 0)
    tree, info = build_tree(stats, roots, npc, [[3], [4]], num_leaves=4, min_count=300)
    assert info["loglike_gain"] == 0 and tree.num_pdfs == 3
