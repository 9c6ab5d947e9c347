"""asr build-tree on synthetic Gaussian features: recovers a planted context split."""

import json

import numpy as np

from asr.cli import main
from asr.hmm.build_tree import TreeStats, build_tree, gauss_loglike
from asr.hmm.transition_model import TransitionModel
from asr.hmm.tree import ContextDependency
from asr.io.int_ark import read_int_ark
from hmm_test_helpers import make_data, synth_corpus


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
    # dev data (the CTM fixture) imported through the triphone tree: pdfs from its contexts
    dev = make_data(tmp_path / "dev")
    imp = tmp_path / "dev_ali"
    assert main(["import-ali", "--format", "ctm", "--lang", str(lang_dir), "--tree-dir", str(out), str(dev),
                 str(dev / "phones.ctm"), str(imp)]) == 0
    ph = read_int_ark(imp / "phones.ark")["u2"]  # AA_S B_B AA_I T_E SIL
    st = tm.tid2hmm_state[read_int_ark(imp / "ali.tid.ark")["u2"]]
    pd = read_int_ark(imp / "ali.pdf.ark")["u2"]
    assert pd[5] == tree.compute((ph[0], ph[5], lang.phones["AA_I"]), int(st[5]))  # B_B between AA_S and AA_I


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


def test_silence_is_context_independent(tmp_path):
    """A left-context effect planted in silence: by default (Kaldi's --ci-phones = the lang's
    context_indep phones) silence keeps one pdf per state in every context; with
    --ci-phones '' the tree splits silence on its context."""
    import kaldiio

    from asr.hmm.kaldi_ali import split_to_phones

    lang_dir, data, ali, lang = synth_corpus(tmp_path, n_utts=60)
    tm = TransitionModel.read(ali / "final.mdl")
    sil, ph = lang.optional_silence, lang.phones
    t_end = [ph[p] for p in ph if p.startswith("T_")]
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats2.ark,{data}/feats.scp") as w:
        for utt, tids in sorted(read_int_ark(ali / "ali.tid.ark").items()):
            phones, lengths = split_to_phones(tm, tids)
            inst = np.repeat(np.arange(len(phones)), lengths)
            left = np.concatenate([[0], phones[:-1]])[inst]
            x = feats[utt].copy()
            x[(phones[inst] == sil) & np.isin(left, t_end)] += 6.0
            w[utt] = x
    contexts = [p for p in lang.phone_names if p not in lang.disambig_phones and p > 0]

    def sil_pdfs(tree):
        return [{tree.compute((a, sil, b), s) for a in contexts for b in contexts} for s in range(5)]

    for opts, one_per_state in (([], True), (["--ci-phones", ""], False)):
        out = tmp_path / f"tree{len(opts)}"
        assert main(["build-tree", "--lang", str(lang_dir), "--cmvn", "none", "--num-leaves", "40",
                     "--min-count", "20", *opts, str(data), str(ali), str(out)]) == 0
        per_state = sil_pdfs(ContextDependency.read(out / "tree"))
        assert all(len(p) == 1 for p in per_state) == one_per_state, per_state
    info = json.loads((tmp_path / "tree0" / "build_tree.json").read_text())
    assert info["ci_phones"] == sorted(lang.context_indep_phones) and sil in info["ci_phones"]
