"""asr import-ali (ctm, kaldi text/binary/gz, pdf, textgrid), ali-to-pdf/phones, length checks."""

import json
import subprocess
import sys

import numpy as np
import pytest

from asr.align.compile import AlignmentCompiler, fix_short_segments
from asr.hmm.kaldi_ali import ali_to_phones, is_reordered, split_to_phones
from asr.cli import main
from asr.errors import AlignmentError
from asr.hmm.transition_model import TransitionModel
from asr.hmm.tree import ContextDependency
from asr.io.int_ark import read_int_ark, write_int_ark
from hmm_test_helpers import make_data, make_lang


@pytest.fixture()
def setup(tmp_path):
    return make_lang(tmp_path), make_data(tmp_path), tmp_path


def stats(d):
    return json.loads((d / "import_stats.json").read_text())


def test_ctm_import(setup):
    lang, data, tmp = setup
    out = tmp / "ali"
    assert main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"),
                 str(out)]) == 0
    s = stats(out)
    assert s["utterances_imported"] == 3 and s["oov_words"] == 1 and s["phones_lengthened"] == 1
    phones = read_int_ark(out / "phones.ark")
    # u2 "A BAT": AA_S(14) 0-.02 is 1 frame, lengthened to its 3 states from B_B(15)
    assert phones["u2"].tolist() == [14] * 3 + [15] * 8 + [13] * 20 + [24] * 10 + [1] * 19
    # u3 "ZOO CAT": the OOV is <UNK> = SPN_S (10)
    assert phones["u3"][0] == 10 and len(phones["u3"]) == 58
    tm = TransitionModel.read(out / "final.mdl")
    tids = read_int_ark(out / "ali.tid.ark")
    pdfs = read_int_ark(out / "ali.pdf.ark")
    for u in tids:
        assert np.array_equal(tm.tid2pdf[tids[u]], pdfs[u])
        assert np.array_equal(ali_to_phones(tm, tids[u], per_frame=True), phones[u])
        assert is_reordered(tm, tids[u])
    # the first frames of u2: AA_S states 0,1,2 one frame each (forward transitions)
    assert tm.tid2hmm_state[tids["u2"][:3]].tolist() == [0, 1, 2] and not tm.is_self_loop[tids["u2"][:3]].any()
    assert tm.is_final[tids["u2"][2]]
    assert (out / "num_pdfs").read_text() == f"{tm.num_pdfs}\n"
    tree = ContextDependency.read(out / "tree")
    assert tree.context_width == 1 and tree.num_pdfs == tm.num_pdfs
    # SIL and SPN position variants: 2 silence sets x 5 states
    assert len((out / "silence_pdfs.int").read_text().split()) == 10
    # Kaldi-style sequence output of ali-to-phones
    r = subprocess.run([sys.executable, "-m", "asr", "ali-to-phones", str(out / "final.mdl"),
                        str(out / "ali.tid.ark"), "-"], capture_output=True, text=True, check=True)
    assert "u2 14 15 13 24 1\n" in r.stdout


def test_length_mismatch(setup):
    lang, data, tmp = setup
    make_data(tmp, frames=(120, 57, 50))  # u1 -1 (fixed), u2 -3 (excluded), u3 -8 (excluded)
    out = tmp / "ali"
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(out)])
    s = stats(out)
    assert s["utterances_imported"] == 1 and s["excluded_length_mismatch"] == 2
    assert s["length_fixed_within_tolerance"] == 1
    assert len(read_int_ark(out / "phones.ark")["u1"]) == 120
    excl = (out / "excluded.txt").read_text()
    assert "u2 length_mismatch: labels span 60 frames, features have 57" in excl
    # a wider tolerance takes u2 in
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--tolerance", "3", "--lang", str(lang), str(data),
          str(data / "phones.ctm"), str(out)])
    assert stats(out)["utterances_imported"] == 2


@pytest.mark.parametrize("form", ["text", "binary", "binary.gz", "text.gz"])
def test_kaldi_import_forms(setup, form):
    lang, data, tmp = setup
    ref = tmp / "ref"
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    tids = read_int_ark(ref / "ali.tid.ark")
    kdir = tmp / "kaldi_ali"
    kdir.mkdir()
    (kdir / "final.mdl").write_bytes((ref / "final.mdl").read_bytes())
    name = "ali.1.gz" if form.endswith("gz") else "ali.1"
    items = sorted(tids.items())
    write_int_ark(kdir / name, items[:2], binary=form.startswith("binary"))
    write_int_ark(kdir / name.replace(".1", ".2"), items[2:], binary=form.startswith("binary"))
    out = tmp / "imp"
    assert main(["import-ali", "--max-failures", "1", "--format", "kaldi", str(data), str(kdir), str(out)]) == 0
    for f in ("ali.pdf.ark", "ali.tid.ark", "phones.ark"):
        assert (out / f).read_text() == (ref / f).read_text()
    # ali-to-pdf on the binary gz file equals the pdf ark
    main(["ali-to-pdf", str(kdir / "final.mdl"), str(kdir / name), str(tmp / "pdf.ark")])
    got = read_int_ark(tmp / "pdf.ark")
    want = read_int_ark(ref / "ali.pdf.ark")
    assert all(np.array_equal(got[u], want[u]) for u in got)
    # mapped through a tree dir (the same model): identical
    out2 = tmp / "imp2"
    assert main(["import-ali", "--max-failures", "1", "--format", "kaldi", "--tree-dir", str(ref), str(data), str(kdir), str(out2)]) == 0
    assert (out2 / "ali.tid.ark").read_text() == (ref / "ali.tid.ark").read_text()


def test_kaldi_import_errors_and_padding(setup):
    lang, data, tmp = setup
    ref = tmp / "ref"
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    tids = read_int_ark(ref / "ali.tid.ark")
    tids["u1"] = tids["u1"][:-1]  # one short: padded
    tids["u3"] = tids["u3"].copy()
    tids["u3"][5] = 99999  # bad transition-id: excluded
    write_int_ark(tmp / "ali.1.gz", sorted(tids.items()), binary=True)
    out = tmp / "imp"
    main(["import-ali", "--max-failures", "1", "--format", "kaldi", "--mdl", str(ref / "final.mdl"), str(data), str(tmp / "ali.1.gz"),
          str(out)])
    s = stats(out)
    assert s["utterances_imported"] == 2 and s["excluded_bad_tid"] == 1 and s["length_fixed_within_tolerance"] == 1
    got = read_int_ark(out / "ali.tid.ark")["u1"]
    tm = TransitionModel.read(ref / "final.mdl")
    assert len(got) == 120 and tm.is_self_loop[got[-1]]
    r = subprocess.run([sys.executable, "-m", "asr", "import-ali", "--format", "kaldi", str(data),
                        str(tmp / "nothing*.gz"), str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and "no such file" in r.stderr
    # a truncated or corrupt gzip file: one line naming it (import-ali and ali-to-pdf)
    gz = (tmp / "ali.1.gz").read_bytes()
    for name, cut in (("cut.1.gz", gz[: len(gz) // 2]), ("bad.1.gz", gz[:10] + b"garbage" * 20)):
        (tmp / name).write_bytes(cut)
        for cmd in (["import-ali", "--format", "kaldi", "--mdl", str(ref / "final.mdl"), str(data), str(tmp / name),
                     str(tmp / "imp2")],
                    ["ali-to-pdf", str(ref / "final.mdl"), str(tmp / name), str(tmp / "pdf.ark")]):
            r = subprocess.run([sys.executable, "-m", "asr", *cmd], capture_output=True, text=True)
            assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
            assert f"{tmp / name}: truncated or corrupt gzip file" in r.stderr
    assert not (tmp / "imp2").exists() and not (tmp / "pdf.ark").exists()


def test_kaldi_import_refuses_tids_that_are_no_path(setup):
    lang, data, tmp = setup
    ref = tmp / "ref"
    main(["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    tids = read_int_ark(ref / "ali.tid.ark")
    tm = TransitionModel.read(ref / "final.mdl")
    tids["u2"] = tids["u2"][::-1].copy()  # in range, but no path through the HMMs
    tids["u3"] = np.minimum(tids["u3"] + 1, tm.num_transition_ids)  # as another model's transition-ids
    write_int_ark(tmp / "ali.1", sorted(tids.items()))
    out = tmp / "imp"
    assert main(["import-ali", "--max-failures", "1", "--format", "kaldi", "--mdl", str(ref / "final.mdl"), str(data),
                 str(tmp / "ali.1"), str(out)]) == 0
    s = stats(out)
    assert s["utterances_imported"] == 1 and s["excluded_not_a_path"] == 2
    excl = (out / "excluded.txt").read_text().splitlines()
    assert [ln.split()[:2] for ln in excl] == [["u2", "not_a_path:"], ["u3", "not_a_path:"]]
    assert "u3 not_a_path: utterance u3: frame 1: transition-id" in excl[1] and "another final.mdl" in excl[1]
    # Kaldi's non-reordered form is a path too
    from asr.hmm.kaldi_ali import check_path, reorder_alignment

    ok = read_int_ark(ref / "ali.tid.ark")["u1"]
    loop = tm.is_self_loop[ok]
    starts = np.flatnonzero(~loop)
    ends = np.concatenate([starts[1:] - 1, [len(ok) - 1]])
    plain = ok.copy()
    plain[starts], plain[ends] = ok[ends], ok[starts]
    assert np.array_equal(reorder_alignment(tm, plain), ok)
    check_path(tm, plain, "u1")
    with pytest.raises(AlignmentError, match="ends inside a phone"):
        check_path(tm, plain[:-1], "u1")


def test_kaldi_import_redone_when_the_model_beside_the_alignments_changes(setup):
    lang, data, tmp = setup
    ref = tmp / "ref"
    main(["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    kdir = tmp / "kaldi_ali"
    kdir.mkdir()
    write_int_ark(kdir / "ali.1", sorted(read_int_ark(ref / "ali.tid.ark").items()))
    tm = TransitionModel.read(ref / "final.mdl")
    tm.write(kdir / "final.mdl")
    out = tmp / "imp"
    cmd = ["import-ali", "--format", "kaldi", str(data), str(kdir / "ali.1"), str(out)]
    assert main(cmd) == 0 and not (out / "tree").exists()
    tm.log_probs[1:] = np.log(0.5)  # another final.mdl, same transition-ids
    tm.write(kdir / "final.mdl")
    assert main(cmd) == 0
    assert (out / "final.mdl").read_bytes() == (kdir / "final.mdl").read_bytes()
    (kdir / "tree").write_bytes((ref / "tree").read_bytes())  # a tree beside it now: the output's tree
    assert main(cmd) == 0
    assert (out / "tree").read_text() == (ref / "tree").read_text()


def test_nothing_aligned_writes_no_dir(setup):
    lang, data, tmp = setup
    (data / "utt2num_frames").write_text("")
    (data / "text").write_text("")
    for cmd in (["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm")],
                ["align-equal", str(data), str(lang)]):
        r = subprocess.run([sys.executable, "-m", "asr", *cmd, str(tmp / "out")], capture_output=True, text=True)
        assert r.returncode == 1 and "out not written: no utterance was aligned" in r.stderr, r.stderr
        assert not (tmp / "out").exists()


def test_pdf_import(setup):
    lang, data, tmp = setup
    write_int_ark(tmp / "pdf.ark", [("u1", np.zeros(119, np.int32)), ("u2", np.ones(60, np.int32)),
                                    ("u3", np.full(58, 7, np.int32))])
    out = tmp / "imp"
    assert main(["import-ali", "--max-failures", "1", "--format", "pdf", str(data), str(tmp / "pdf.ark"), str(out)]) == 0
    got = read_int_ark(out / "ali.pdf.ark")
    assert len(got["u1"]) == 120 and got["u3"].tolist() == [7] * 58
    assert not (out / "phones.ark").exists()


TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.623
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.623
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.02
            text = "a"
        intervals [2]:
            xmin = 0.02
            xmax = 0.42
            text = "bat"
        intervals [3]:
            xmin = 0.42
            xmax = 0.623
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.623
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.02
            text = "aa"
        intervals [2]:
            xmin = 0.02
            xmax = 0.12
            text = "b"
        intervals [3]:
            xmin = 0.12
            xmax = 0.32
            text = "aa"
        intervals [4]:
            xmin = 0.32
            xmax = 0.42
            text = "t"
        intervals [5]:
            xmin = 0.42
            xmax = 0.623
            text = ""
'''


def test_textgrid_import(setup):
    lang, data, tmp = setup
    tg = tmp / "mfa" / "spk1"
    tg.mkdir(parents=True)
    (tg / "u2.TextGrid").write_text(TEXTGRID)
    (tmp / "map.txt").write_text("aa AA\nb B\nt T\nSIL\n")
    ref = tmp / "ref"
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    out = tmp / "imp"
    # transcript of u2 lower-cased in the TextGrid: positions come from the data dir's text
    assert main(["import-ali", "--max-failures", "1", "--format", "textgrid", "--phone-map", str(tmp / "map.txt"), "--lang", str(lang),
                 str(data), str(tmp / "mfa"), str(out)]) == 0
    assert read_int_ark(out / "phones.ark")["u2"].tolist() == read_int_ark(ref / "phones.ark")["u2"].tolist()
    s = stats(out)
    assert s["utterances_imported"] == 1 and s["excluded_no_alignment"] == 2
    # without a transcript, the word tier gives the positions
    (data / "text").write_text("u1 CAT AT TAB\n")
    main(["import-ali", "--max-failures", "1", "--format", "textgrid", "--phone-map", str(tmp / "map.txt"), "--lang", str(lang),
          str(data), str(tmp / "mfa"), str(out)])
    assert read_int_ark(out / "phones.ark")["u2"].tolist() == read_int_ark(ref / "phones.ark")["u2"].tolist()


def test_unparseable_phones_excluded(setup):
    lang, data, tmp = setup
    (data / "text").write_text("u1 CAT AT TAB\nu2 BAT BAT\nu3 ZOO CAT\n")
    out = tmp / "ali"
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(out)])
    assert stats(out)["excluded_labels"] == 1
    assert "u2 labels: utterance u2: phone sequence does not match" in (out / "excluded.txt").read_text()


def test_overlapping_and_unknown_phones_excluded(setup):
    lang, data, tmp = setup
    ctm = (data / "phones.ctm").read_text()
    ctm = ctm.replace("u2 1 0.12 0.20 AA", "u2 1 0.08 0.24 AA")  # line 14: starts inside B (line 13)
    ctm = ctm.replace("u3 1 0.4 0.1 AA", "u3 1 0.4 0.1 aa")  # not a phone of the lang
    (tmp / "bad.ctm").write_text(ctm)
    out = tmp / "ali"
    assert main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data),
                 str(tmp / "bad.ctm"), str(out)]) == 0
    s = stats(out)
    assert s["utterances_imported"] == 1 and s["excluded_overlap"] == 1 and s["excluded_labels"] == 1
    excl = (out / "excluded.txt").read_text().splitlines()
    assert excl == [f"u2 overlap: {tmp / 'bad.ctm'}:14 AA at 0.08-0.32 s overlaps {tmp / 'bad.ctm'}:13 B at 0.02-0.12 s",
                    "u3 labels: utterance u3: phone(s) aa not in phones.txt"]


def test_split_to_phones_not_reordered(setup):
    lang, data, tmp = setup
    ref = tmp / "ref"
    main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    tm = TransitionModel.read(ref / "final.mdl")
    tree = ContextDependency.read(ref / "tree")
    comp = AlignmentCompiler(tree, tm, reorder=False)
    fa = comp.compile(np.array([1, 19, 13, 24, 1]), np.array([6, 3, 4, 5, 7]))
    assert not is_reordered(tm, fa.tids)
    ph, lens = split_to_phones(tm, fa.tids)
    assert ph.tolist() == [1, 19, 13, 24, 1] and lens.tolist() == [6, 3, 4, 5, 7]
    assert tm.is_self_loop[fa.tids[0]] and tm.is_final[fa.tids[5]]
    with pytest.raises(AlignmentError, match="fewer than its 3 states"):
        comp.compile(np.array([19]), np.array([2]))


def test_fix_short_segments():
    got, n = fix_short_segments(np.array([5, 1, 0, 9]), np.array([3, 3, 3, 3]))
    assert got.tolist() == [3, 3, 3, 6] and n == 2
    assert fix_short_segments(np.array([2, 2]), np.array([3, 3])) is None


def test_textgrid_short_form(tmp_path):
    from asr.align.timed import read_textgrid

    p = tmp_path / "a.TextGrid"
    p.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n0.3\n<exists>\n1\n"IntervalTier"\n'
                 '"phones"\n0\n0.3\n2\n0\n0.1\n""\n0.1\n0.3\n"AA"\n')
    assert [(iv.start, iv.end, iv.label) for iv in read_textgrid(p)["phones"]] == [(0, 0.1, ""), (0.1, 0.3, "AA")]
    p.write_text("not a textgrid")
    with pytest.raises(Exception, match="not a Praat TextGrid"):
        read_textgrid(p)


def test_frame_conventions():
    from asr.align.timed import Interval, expected_frames, intervals_to_frames

    ivs = [Interval(0.0, 0.1, "a"), Interval(0.1, 0.15, "b"), Interval(0.2, 0.3, "c")]
    # centre: frame k's centre k*0.01 + 0.0125; gap 0.15-0.2 holds centres of frames 14..18
    labels, lens = intervals_to_frames(ivs, 30, "center")
    assert labels == ["a", "b", None, "c"] and lens.tolist() == [9, 5, 5, 11]
    labels, lens = intervals_to_frames(ivs, 30, "kaldi")  # (k + 0.5) * 0.01
    assert labels == ["a", "b", None, "c"] and lens.tolist() == [10, 5, 5, 10]
    assert expected_frames(0.3) == 28 and expected_frames(0.02) == 0
