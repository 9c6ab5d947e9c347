"""Transition model: Kaldi's tid numbering, final.mdl byte layout, text form, reading errors."""

import struct

import numpy as np
import pytest

from asr.errors import FormatError, ModelError
from asr.hmm.topology import HmmState, Topology, make_kaldi_topology
from asr.hmm.transition_model import TransitionModel
from asr.hmm.tree import PDF_CLASS, ConstantNode, ContextDependency, SplitNode, TableNode, monophone_tree

TOPO_TEXT = """<Topology>
<TopologyEntry>
<ForPhones>
2 3
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.6 <Transition> 2 0.4 </State>
<State> 2 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
"""


def small_model():
    topo = Topology.from_text(TOPO_TEXT)
    # N=2, P=1 (left biphone). pdfs: phone 1 -> 0; phone 2 state 0 -> 4 if left is 3 else 1;
    # phone 2 state 1 -> 2; phone 3 state 0 -> 3, state 1 -> 2 (shared with phone 2).
    p2 = TableNode(PDF_CLASS, [SplitNode(0, frozenset({3}), ConstantNode(4), ConstantNode(1)), ConstantNode(2)])
    p3 = TableNode(PDF_CLASS, [ConstantNode(3), ConstantNode(2)])
    tree = ContextDependency(2, 1, TableNode(1, [None, ConstantNode(0), p2, p3]))
    return topo, tree, TransitionModel.build(tree, topo)


def test_tid_numbering_hand_checked():
    _, tree, tm = small_model()
    # Kaldi rules: tuples (phone, hmm-state, pdf, pdf) sorted; each tuple gets one tid per
    # transition of its HMM state, in the topology's order, tids from 1.
    assert tm.tuples.tolist() == [
        [1, 0, 0, 0],
        [2, 0, 1, 1], [2, 0, 4, 4],
        [2, 1, 2, 2],
        [3, 0, 3, 3],
        [3, 1, 2, 2],
    ]
    assert tm.num_transition_ids == 12 and tm.num_pdfs == 5
    #                       tid: 0   1  2  3  4  5  6  7  8  9 10 11 12
    assert tm.tid2pdf.tolist() == [-1, 0, 0, 1, 1, 4, 4, 2, 2, 3, 3, 2, 2]
    assert tm.tid2phone.tolist()[1:] == [1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
    assert tm.tid2hmm_state.tolist()[1:] == [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]
    assert tm.is_self_loop.tolist() == [False] + [True, False] * 6
    assert tm.is_final.tolist()[1:] == [False, True, False, False, False, False, False, True,
                                        False, False, False, True]
    np.testing.assert_allclose(tm.log_probs[1:5], np.log([0.75, 0.25, 0.5, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(tm.log_probs[7:9], np.log([0.6, 0.4]), rtol=1e-6)
    assert tm.tuple_to_tstate(2, 0, 4, 4) == 3
    assert tm.pair_to_tid(3, 1) == 6 and tm.self_loop_of(3) == 5
    assert tm.tid_of(4, 2) == 8
    # log p(forward) ignoring the self-loop: log(0.4) - log(1 - 0.6) = 0
    assert abs(tm.transition_log_prob_ignoring_self_loops(8)) < 1e-6
    assert tree.compute((3, 2), 0) == 4 and tree.compute((1, 2), 0) == 1 and tree.compute((0, 3), 1) == 2
    with pytest.raises(ModelError):
        tm.tuple_to_tstate(2, 0, 3, 3)


def expected_binary(tm_topo_phones=(1, 2, 3)):
    """The bytes Kaldi writes for small_model(), spelled out from io-funcs / hmm-topology.cc."""
    i32 = lambda v: b"\x04" + struct.pack("<i", v)  # noqa: E731  WriteBasicType<int32>
    f32 = lambda v: b"\x04" + struct.pack("<f", v)  # noqa: E731  WriteBasicType<float>
    ivec = lambda xs: b"\x04" + struct.pack("<i", len(xs)) + struct.pack(f"<{len(xs)}i", *xs)  # noqa: E731
    b = b"\x00B<TransitionModel> <Topology> "
    b += ivec([1, 2, 3]) + ivec([-1, 1, 0, 0])
    b += i32(2)  # entries
    b += i32(3) + i32(0) + i32(2) + i32(0) + f32(0.5) + i32(1) + f32(0.5)
    b += i32(1) + i32(2) + i32(1) + f32(0.6) + i32(2) + f32(0.4)
    b += i32(-1) + i32(0)
    b += i32(2) + i32(0) + i32(2) + i32(0) + f32(0.75) + i32(1) + f32(0.25)
    b += i32(-1) + i32(0)
    b += b"</Topology> <Triples> " + i32(6)
    for row in [(1, 0, 0), (2, 0, 1), (2, 0, 4), (2, 1, 2), (3, 0, 3), (3, 1, 2)]:
        b += b"".join(i32(v) for v in row)
    b += b"</Triples> <LogProbs> FV " + i32(13)
    lp = np.log(np.array([1, 0.75, 0.25, 0.5, 0.5, 0.5, 0.5, 0.6, 0.4, 0.5, 0.5, 0.6, 0.4], dtype="<f4"))
    b += lp.tobytes() + b"</LogProbs> </TransitionModel> "
    return b


def test_binary_layout_and_roundtrip(tmp_path):
    _, _, tm = small_model()
    path = tmp_path / "final.mdl"
    tm.write(path)
    assert path.read_bytes() == expected_binary()
    back = TransitionModel.read(path)
    assert back == tm
    assert np.array_equal(back.tid2pdf, tm.tid2pdf)
    # an acoustic model after the TransitionModel is skipped
    path.write_bytes(expected_binary() + b"<DIMENSION> \x04\x28\x00\x00\x00<NUMPDFS> garbage")
    assert TransitionModel.read(path) == tm


def test_text_roundtrip(tmp_path):
    _, _, tm = small_model()
    path = tmp_path / "final.txt"
    tm.write(path, binary=False)
    text = path.read_text()
    assert text.startswith("<TransitionModel> \n<Topology> \n<TopologyEntry> \n<ForPhones> \n2 3 \n")
    assert "<Triples> 6 \n1 0 0 \n2 0 1 \n" in text and "</TransitionModel> \n" in text
    back = TransitionModel.read(path)
    assert back == tm
    path.write_text(text + "<DIMENSION> 40 <NUMPDFS> 5 ...")  # GMM text follows: ignored
    assert TransitionModel.read(path) == tm


def test_non_hmm_topology_tuples(tmp_path):
    topo = Topology(
        [[HmmState(0, 1, [(0, 0.5), (1, 0.5)]), HmmState()]], {1: 0, 2: 0})
    tree = monophone_tree([[1], [2]], {1: 2, 2: 2})
    tm = TransitionModel.build(tree, topo)
    assert tm.tuples.tolist() == [[1, 0, 0, 1], [2, 0, 2, 3]]
    assert tm.tid2pdf.tolist() == [-1, 1, 0, 3, 2]  # self-loop -> self-loop pdf
    tm.write(tmp_path / "m")
    assert b"<Tuples> " in (tmp_path / "m").read_bytes()
    assert TransitionModel.read(tmp_path / "m") == tm
    tm.write(tmp_path / "t", binary=False)
    assert "<ForwardPdfClass> 0 <SelfLoopPdfClass> 1" in (tmp_path / "t").read_text()
    assert TransitionModel.read(tmp_path / "t") == tm


def test_kaldi_standard_topology_and_mono_model():
    topo = make_kaldi_topology([3, 4], [1, 2])
    assert topo.num_pdf_classes(1) == 5 and topo.num_pdf_classes(3) == 3
    assert topo.min_length(1) == 3 and topo.min_length(3) == 3
    tree = monophone_tree([[1, 2], [3], [4]], {p: topo.num_pdf_classes(p) for p in topo.phones})
    assert tree.to_text().startswith("ContextDependency 1 0 ToPdf SE 0 [ 1 2 ]\n{ TE -1 5 ( CE 0 CE 1 CE 2 CE 3 CE 4 )")
    tm = TransitionModel.build(tree, topo)
    assert tm.num_pdfs == 11
    # silence state 0 has 4 transitions, states 1-3 have 4, state 4 has 2: (4*4+2) per silence phone
    assert tm.num_transition_ids == 2 * 18 + 2 * 6
    # phones 1 and 2 share pdfs
    assert set(tm.tid2pdf[tm.tid2phone == 1]) == set(tm.tid2pdf[tm.tid2phone == 2]) == {0, 1, 2, 3, 4}


def test_bad_model_files(tmp_path):
    p = tmp_path / "bad.mdl"
    p.write_bytes(b"\x00B<TransitionModel> <Topology> \x04\x01\x00")
    with pytest.raises(FormatError, match="bad.mdl"):
        TransitionModel.read(p)
    p.write_text("<TransitionModel>\n<Topology>\n<TopologyEntry>\n<ForPhones>\n1\n</ForPhones>\n"
                 "<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>\n<State> 1 </State>\n"
                 "</TopologyEntry>\n</Topology>\n<Triples> 1\n1 0 0\n</Triples>\n<LogProbs>\n [ 0 -0.7 0.3 ]\n"
                 "</LogProbs>\n</TransitionModel>\n")
    with pytest.raises(ModelError, match="log-probs"):
        TransitionModel.read(p)
    with pytest.raises(ModelError):
        TransitionModel.read(tmp_path / "missing.mdl")


def test_mle_update_like_kaldi():
    _, _, tm = small_model()
    counts = np.zeros(13)
    counts[1:3] = [30, 10]  # tstate 1: self-loop 0.75, forward 0.25 -> unchanged
    counts[3:5] = [1000, 0]  # tstate 2: forward floored at 0.01 (renormalised 3 times, then floored)
    counts[7:9] = [2, 1]  # tstate 4: 3 counts < mincount 5 -> kept
    info = tm.mle_update(counts)
    assert info["transition_states_updated"] == 2 and info["transition_states_skipped"] == 4
    np.testing.assert_allclose(np.exp(tm.log_probs[1:3]), [0.75, 0.25], rtol=1e-6)
    p = np.array([1.0, 0.0])
    for _ in range(3):
        p = np.maximum(p / p.sum(), 0.01)
    np.testing.assert_allclose(np.exp(tm.log_probs[3:5]), p, rtol=1e-6)
    np.testing.assert_allclose(np.exp(tm.log_probs[7:9]), [0.6, 0.4], rtol=1e-6)
    assert tm.non_self_loop_log_probs[2] == pytest.approx(np.log(1 - p[0]), rel=1e-5)
    assert info["transition_objf_gain"] > 0
