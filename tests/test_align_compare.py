"""asr compare-ali against hand-computed cases (CTM and alignment-dir inputs)."""

import json

from asr.cli import main

# u1: boundaries off by 10, 30, 0 and 50 ms. u2: HYP inserts a short silence inside a word
# (position-dependent names on the HYP side). u3: HYP has T where REF has K.
REF = """u1 1 0.00 0.30 SIL
u1 1 0.30 0.12 K
u1 1 0.42 0.18 AA
u1 1 0.60 0.15 T
u1 1 0.75 0.25 SIL
u2 1 0.00 0.20 SIL
u2 1 0.20 0.10 B
u2 1 0.30 0.20 AA
u2 1 0.50 0.20 SIL
u3 1 0.00 0.20 SIL
u3 1 0.20 0.10 K
u3 1 0.30 0.20 AA
u3 1 0.50 0.20 SIL
"""
HYP = """u1 1 0.00 0.31 SIL
u1 1 0.31 0.14 K
u1 1 0.45 0.15 AA
u1 1 0.60 0.10 T
u1 1 0.70 0.30 SIL
u2 1 0.00 0.20 SIL
u2 1 0.20 0.10 B_B
u2 1 0.30 0.05 SIL
u2 1 0.35 0.15 AA_E
u2 1 0.50 0.20 SIL
u3 1 0.00 0.20 SIL
u3 1 0.20 0.12 T
u3 1 0.32 0.18 AA
u3 1 0.50 0.20 SIL
u4 1 0.00 0.20 SIL
"""


def test_compare_ctms_hand_computed(tmp_path, capsys):
    (tmp_path / "ref.ctm").write_text(REF)
    (tmp_path / "hyp.ctm").write_text("".join(ln + "\n" for ln in HYP.splitlines() if ln.startswith("u1")))
    assert main(["compare-ali", str(tmp_path / "ref.ctm"), str(tmp_path / "hyp.ctm")]) == 0
    # u1 alone: 98 frames; REF/HYP differ on frame 29 (K/SIL), 41-43 (AA/K), 69-73 (T/SIL)
    assert capsys.readouterr().out.splitlines() == [
        "boundaries within 10 ms: 50.0 % (4 boundaries, 1 utts)",
        "boundaries within 20 ms: 50.0 % (4 boundaries, 1 utts); frame phone agreement 90.8 %",
        "boundaries within 40 ms: 75.0 % (4 boundaries, 1 utts)",
        # signed offsets +10, +30, 0, -50 ms
        "boundary offset HYP - REF: mean -2.5 ms, median +5.0 ms (4 matched boundaries)",
    ]
    (tmp_path / "hyp.ctm").write_text(HYP)
    out = tmp_path / "c.json"
    assert main(["compare-ali", "--json", str(out), str(tmp_path / "ref.ctm"), str(tmp_path / "hyp.ctm")]) == 0
    # 10 boundaries: u1 2/2/3 within 10/20/40 ms, u2 3/3/3 (the inserted silence leaves B's end
    # and AA's start; B's end is exact), u3 2/3/3 (K unmatched: AA's start is 20 ms late).
    # Frames 234 (98 + 68 + 68), differing 9 + 5 + 12.
    assert capsys.readouterr().out.splitlines() == [
        "boundaries within 10 ms: 70.0 % (10 boundaries, 3 utts)",
        "boundaries within 20 ms: 80.0 % (10 boundaries, 3 utts); frame phone agreement 88.9 %",
        "boundaries within 40 ms: 90.0 % (10 boundaries, 3 utts)",
        "boundary offset HYP - REF: mean +1.0 ms, median +0.0 ms (10 matched boundaries)",
    ]
    j = json.loads(out.read_text())
    assert j["utterances_only_in_hyp"] == 1 and j["frames"] == 234 and j["matched_boundaries"] == 10
    assert abs(j["median_abs_error_ms"] - 0.0) < 1e-6


def _ali_dir(d, utts: dict[str, list[tuple[str, int]]]):
    d.mkdir()
    names = ["<eps>", "SIL", "K_B", "AA_I", "T_E", "B_B"]
    (d / "phones.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    lines = []
    for u, segs in utts.items():
        ids = [str(names.index(n)) for n, k in segs for _ in range(k)]
        lines.append(f"{u} {' '.join(ids)}\n")
    (d / "phones.ark").write_text("".join(lines))
    return d


def test_compare_alignment_dir_frame_times(tmp_path, capsys):
    """An alignment dir's boundary between frames k-1 and k is at 10k + 7.5 ms (center
    convention): the exact frames of REF agree to 2.5 ms; two frames late is 17.5 ms off."""
    (tmp_path / "ref.ctm").write_text(REF)
    exact = _ali_dir(tmp_path / "exact", {"u1": [("SIL", 29), ("K_B", 12), ("AA_I", 18), ("T_E", 15), ("SIL", 24)]})
    assert main(["compare-ali", str(tmp_path / "ref.ctm"), str(exact)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "boundaries within 10 ms: 100.0 % (4 boundaries, 1 utts)"
    assert out[1].endswith("frame phone agreement 100.0 %")
    late = _ali_dir(tmp_path / "late", {"u1": [("SIL", 31), ("K_B", 12), ("AA_I", 18), ("T_E", 15), ("SIL", 22)]})
    assert main(["compare-ali", "--json", str(tmp_path / "j"), str(tmp_path / "ref.ctm"), str(late)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "boundaries within 10 ms: 0.0 % (4 boundaries, 1 utts)"
    assert out[1] == "boundaries within 20 ms: 100.0 % (4 boundaries, 1 utts); frame phone agreement 91.8 %"
    j = json.loads((tmp_path / "j").read_text())
    assert abs(j["mean_abs_error_ms"] - 17.5) < 1e-6
    # two frames late: +17.5 ms, the signed offset says so (an exact dir: -2.5 ms, the grid)
    assert j["mean_offset_ms"] == 17.5 and j["offset_histogram_frames"] == {"+2": 4}
    assert out[3] == "boundary offset HYP - REF: mean +17.5 ms, median +17.5 ms (4 matched boundaries)"
    # dir vs dir, and the Kaldi convention (boundaries at 10k ms: 0 and 10 ms off)
    assert main(["compare-ali", str(exact), str(late)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "boundaries within 10 ms: 0.0 % (4 boundaries, 1 utts)"
    assert main(["compare-ali", "--frame-convention", "kaldi", str(tmp_path / "ref.ctm"), str(exact)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "boundaries within 10 ms: 100.0 % (4 boundaries, 1 utts)"


def test_compare_bad_input(tmp_path, capsys):
    (tmp_path / "ref.ctm").write_text(REF)
    (tmp_path / "other.ctm").write_text("x9 1 0.0 0.5 SIL\n")
    assert main(["compare-ali", str(tmp_path / "ref.ctm"), str(tmp_path / "other.ctm")]) == 1
    assert "no utterance in common" in capsys.readouterr().err
    assert main(["compare-ali", str(tmp_path / "ref.ctm"), str(tmp_path / "nothing")]) == 1
    assert "no such CTM file or alignment dir" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare-ali", str(tmp_path / "ref.ctm"), str(tmp_path / "empty")]) == 1
    assert "no phones.txt" in capsys.readouterr().err
    assert main(["compare-ali", "--json", str(tmp_path / "ref.ctm"), str(tmp_path / "ref.ctm"), str(tmp_path / "ref.ctm")]) == 1
    assert "the output would overwrite the input" in capsys.readouterr().err
    assert (tmp_path / "ref.ctm").read_text() == REF


def test_compare_refuses_two_phone_sets(tmp_path, capsys):
    """Lower-cased phone names on one side: an error naming phones of each side, not figures."""
    (tmp_path / "ref.ctm").write_text(REF)
    lower = "".join(" ".join(ln.split()[:4] + [ln.split()[4].lower()]) + "\n" for ln in REF.splitlines())
    (tmp_path / "hyp.ctm").write_text(lower)
    assert main(["compare-ali", str(tmp_path / "ref.ctm"), str(tmp_path / "hyp.ctm")]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    err = cap.err.strip()
    assert len(err.splitlines()) == 1 and "ref.ctm: 100 % of its phones are not in" in err
    assert "only in " in err and " AA " in f" {err} " and " aa" in err
