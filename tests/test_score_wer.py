"""asr compute-wer: Kaldi compute-wer output, alignments, sclite agreement, bad input."""

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asr.cli import main
from asr.score.align import align_many, count, counts_many, edit_counts

SCLITE = shutil.which("sclite") or next(
    (p for p in ("/usr/lib/sctk/bin/sclite", "/usr/bin/sclite") if Path(p).is_file()), None
)


def levenshtein(a, b):
    """Plain reference DP (unit costs)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def random_pairs(n, seed, vocab="abcdef", maxlen=12):
    rng = random.Random(seed)
    V = list(vocab)
    pairs = [([], []), (["a"], []), ([], ["b", "c"])]
    while len(pairs) < n:
        ref = [rng.choice(V) for _ in range(rng.randint(0, maxlen))]
        if rng.random() < 0.5:
            hyp = [rng.choice(V) for _ in range(rng.randint(0, maxlen))]
        else:  # a noisy copy: the realistic case
            hyp = []
            for w in ref:
                r = rng.random()
                if r < 0.15:
                    continue
                hyp.append(rng.choice(V) if r < 0.35 else w)
                if rng.random() < 0.1:
                    hyp.append(rng.choice(V))
        pairs.append((ref, hyp))
    return pairs


def write_text(path, entries):
    path.write_text("".join(f"{u} {' '.join(w)}".rstrip() + "\n" for u, w in entries))
    return str(path)


def run_cli(capsys, *args):
    rc = main(["compute-wer", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def kaldi_levenshtein_alignment(a, b, eps="***"):
    """Literal port of Kaldi's LevenshteinAlignment (util/edit-distance-inl.h)."""
    M, N = len(a), len(b)
    e = [[0] * (N + 1) for _ in range(M + 1)]
    for n in range(N + 1):
        e[0][n] = n
    for m in range(1, M + 1):
        e[m][0] = e[m - 1][0] + 1
        for n in range(1, N + 1):
            e[m][n] = min(e[m - 1][n - 1] + (a[m - 1] != b[n - 1]), e[m - 1][n] + 1, e[m][n - 1] + 1)
    out = []
    m, n = M, N
    while m or n:
        if m == 0:
            lm, ln = m, n - 1
        elif n == 0:
            lm, ln = m - 1, n
        else:
            sub_or_ok = e[m - 1][n - 1] + (a[m - 1] != b[n - 1])
            dele, ins = e[m - 1][n] + 1, e[m][n - 1] + 1
            if sub_or_ok <= min(dele, ins):
                lm, ln = m - 1, n - 1
            elif dele <= ins:
                lm, ln = m - 1, n
            else:
                lm, ln = m, n - 1
        out.append((eps if lm == m else a[lm], eps if ln == n else b[ln]))
        m, n = lm, ln
    return out[::-1]


def kaldi_levenshtein_edit_distance(ref, hyp):
    """Literal port of Kaldi's LevenshteinEditDistance with ins/del/sub (compute-wer)."""
    e = [dict(ins=0, sub=0, dele=i, cost=i) for i in range(len(ref) + 1)]
    for h in range(1, len(hyp) + 1):
        cur = [dict(e[0])]
        cur[0]["ins"] += 1
        cur[0]["cost"] += 1
        for r in range(1, len(ref) + 1):
            ins_err = e[r]["cost"] + 1
            del_err = cur[r - 1]["cost"] + 1
            sub_err = e[r - 1]["cost"] + (hyp[h - 1] != ref[r - 1])
            if sub_err < ins_err and sub_err < del_err:
                c = dict(e[r - 1], cost=sub_err)
                c["sub"] += hyp[h - 1] != ref[r - 1]
            elif del_err < ins_err:
                c = dict(cur[r - 1], cost=del_err)
                c["dele"] += 1
            else:
                c = dict(e[r], cost=ins_err)
                c["ins"] += 1
            cur.append(c)
        e = cur
    return e[-1]["ins"], e[-1]["dele"], e[-1]["sub"]


def test_edit_distance_equals_reference_and_kaldialign():
    kaldialign = pytest.importorskip("kaldialign")
    pairs = random_pairs(400, seed=1)
    counts = counts_many(pairs, "kaldi")  # one batch of mixed lengths
    details = align_many(pairs, "align-text")
    sclite = align_many(pairs, "sclite")
    for (ref, hyp), c, steps, sc in zip(pairs, counts, details, sclite):
        assert c.errors == levenshtein(ref, hyp)
        k = kaldialign.edit_distance(ref, hyp)
        assert (c.ins, c.dele, c.sub) == (k["ins"], k["del"], k["sub"]), (ref, hyp)
        assert (c.ins, c.dele, c.sub) == kaldi_levenshtein_edit_distance(ref, hyp)
        assert edit_counts(ref, hyp, "kaldi") == c  # single-pair path agrees with the batch
        assert [(r or "***", h or "***") for r, h, _ in steps] == kaldi_levenshtein_alignment(ref, hyp)
        for st in (steps, sc):
            assert [x[0] for x in st if x[0] is not None] == ref
            assert [x[1] for x in st if x[1] is not None] == hyp
        assert count(steps).errors == c.errors


def test_kaldi_output_lines(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", [("u1", "a b c d".split()), ("u2", "x y".split())])
    hyp = write_text(tmp_path / "hyp", [("u1", "a c c d e".split()), ("u2", "x y".split())])
    rc, out, _ = run_cli(capsys, ref, hyp)
    assert rc == 0
    assert out == (
        "%WER 33.33 [ 2 / 6, 1 ins, 0 del, 1 sub ]\n"
        "%SER 50.00 [ 1 / 2 ]\n"
        "Scored 2 sentences, 0 not present in hyp.\n"
    )


def test_kaldi_style_arguments_and_stdin(tmp_path):
    ref = write_text(tmp_path / "ref", [("u1", "a b c d".split())])
    hyp = write_text(tmp_path / "hyp", [("u1", "a b".split())])
    p = subprocess.run([sys.executable, "-m", "asr", "compute-wer", "--text", "--mode=present", f"ark:{ref}", "ark,t:-"],
                       input=Path(hyp).read_text(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "%WER 50.00 [ 2 / 4, 0 ins, 2 del, 0 sub ]"


def test_reference_without_words_is_an_error(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", [("u1", [])])
    hyp = write_text(tmp_path / "hyp", [("u1", ["x"])])
    for h in (hyp, ref):  # Kaldi prints %WER inf / -nan and succeeds; there is no rate to report
        rc, out, err = run_cli(capsys, ref, h)
        assert rc == 1 and out == "" and err.strip() == f"asr compute-wer: error: {ref}: the reference has no words to score"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    rc, out, err = run_cli(capsys, empty, empty)
    assert rc == 1 and "empty.txt: the reference has no words to score" in err


def test_modes_and_partial(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", [("u1", ["a", "b"]), ("u2", ["c", "d", "e"])])
    hyp = write_text(tmp_path / "hyp", [("u1", ["a", "b"])])
    rc, out, err = run_cli(capsys, ref, hyp)
    assert rc == 1 and "no hypothesis for utterance 'u2'" in err
    rc, out, _ = run_cli(capsys, "--mode", "present", ref, hyp)
    assert out.splitlines() == [
        "%WER 0.00 [ 0 / 2, 0 ins, 0 del, 0 sub ] [PARTIAL]",
        "%SER 0.00 [ 0 / 1 ]",
        "Scored 1 sentences, 1 not present in hyp.",
    ]
    rc, out, _ = run_cli(capsys, "--mode", "all", ref, hyp)
    assert out.splitlines()[0] == "%WER 60.00 [ 3 / 5, 0 ins, 3 del, 0 sub ] [PARTIAL]"
    assert out.splitlines()[2] == "Scored 2 sentences, 1 not present in hyp."


def test_bad_input(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", [("u1", ["a"])])
    rc, _, err = run_cli(capsys, ref, tmp_path / "nope.txt")
    assert rc == 1 and "nope.txt" in err and "no such file" in err
    dup = write_text(tmp_path / "dup", [("u1", ["a"]), ("u1", ["b"])])
    rc, _, err = run_cli(capsys, ref, dup)
    assert rc == 1 and "duplicate key 'u1'" in err and "dup:2" in err
    extra = write_text(tmp_path / "extra", [("u1", ["a"]), ("zz", ["b"])])
    rc, _, err = run_cli(capsys, ref, extra)
    assert rc == 1 and "'zz'" in err and "not in the reference" in err
    # through the real CLI: one-line error, exit code 1
    p = subprocess.run([sys.executable, "-m", "asr", "compute-wer", ref, str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and p.stdout == ""


def test_details_and_per_speaker(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", [("s1-u1", "a bb c".split()), ("s1-u2", "x".split()),
                                       ("s2-u1", "p q".split())])
    hyp = write_text(tmp_path / "hyp", [("s1-u1", "a zzz c d".split()), ("s1-u2", []),
                                       ("s2-u1", "p q".split())])
    u2s = write_text(tmp_path / "utt2spk", [("s1-u1", ["s1"]), ("s1-u2", ["s1"]), ("s2-u1", ["s2"])])
    rc, out, _ = run_cli(capsys, "--details", "--utt2spk", u2s, ref, hyp)
    assert rc == 0
    lines = out.splitlines()
    assert lines[3:15] == [
        "s1-u1 ref  a   bb  c  ***",
        "s1-u1 hyp  a  zzz  c   d ",
        "s1-u1 op   C   S   C   I ",
        "s1-u1 #csid 2 1 1 0",
        "s1-u2 ref   x ",
        "s1-u2 hyp  ***",
        "s1-u2 op    D ",
        "s1-u2 #csid 0 0 0 1",
        "s2-u1 ref  p  q",
        "s2-u1 hyp  p  q",
        "s2-u1 op   C  C",
        "s2-u1 #csid 2 0 0 0",
    ]
    hdr = [i for i, x in enumerate(lines) if x.startswith("SPEAKER")]
    assert len(hdr) == 1
    table = lines[hdr[0]:]
    assert table[1].split() == ["s1", "raw", "2", "4", "2", "1", "1", "1", "3", "2"]
    assert table[2].split() == ["s1", "sys", "2", "4", "50.00", "25.00", "25.00", "25.00", "75.00", "100.00"]
    assert table[-2].split() == ["SUM", "raw", "3", "6", "4", "1", "1", "1", "3", "2"]
    # details to a file
    rc, out, _ = run_cli(capsys, "--details-out", tmp_path / "per_utt", ref, hyp)
    assert len(out.splitlines()) == 3
    assert (tmp_path / "per_utt").read_text().count("#csid") == 3


def sclite_counts(tmp_path, pairs):
    """Per-utterance (C, S, D, I) from the real sclite (trn input, pra output)."""
    with open(tmp_path / "ref.trn", "w") as f:
        for i, (r, _) in enumerate(pairs):
            f.write(" ".join(r) + f" (spk-{i:04d})\n")
    with open(tmp_path / "hyp.trn", "w") as f:
        for i, (_, h) in enumerate(pairs):
            f.write(" ".join(h) + f" (spk-{i:04d})\n")
    p = subprocess.run([SCLITE, "-r", str(tmp_path / "ref.trn"), "trn", "-h", str(tmp_path / "hyp.trn"),
                        "trn", "-i", "spu_id", "-o", "pra", "stdout"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = {m.group(1): tuple(map(int, m.groups()[1:])) for m in re.finditer(
        r"id: \((\S+)\)\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", p.stdout)}
    assert len(got) == len(pairs)
    return got


@pytest.mark.skipif(SCLITE is None, reason="NIST sclite not installed (Debian package sctk)")
def test_sclite_mode_equals_sclite(tmp_path, capsys):
    pairs = random_pairs(600, seed=7)
    pairs += [(["Hello", "World"], ["hello", "WORLD", "x"]), (["A"], ["a"])]  # sclite ignores case
    pairs += [(["a", "(b)", "c"], ["a", "c"]), (["foo-", "bar"], ["foo", "bar"]), (["x", "-", "y"], ["x", "y"])]
    sc = sclite_counts(tmp_path, pairs)
    ref = write_text(tmp_path / "ref", [(f"spk-{i:04d}", r) for i, (r, _) in enumerate(pairs)])
    hyp = write_text(tmp_path / "hyp", [(f"spk-{i:04d}", h) for i, (_, h) in enumerate(pairs)])
    rc, out, _ = run_cli(capsys, "--sclite", "--details", ref, hyp)
    assert rc == 0
    ours = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 6 and f[1] == "#csid":
            c, s, i, d = map(int, f[2:])
            ours[f[0]] = (c, s, d, i)
    assert ours == sc
    tot = [sum(v[k] for v in sc.values()) for k in range(4)]
    c, s, d, i = tot
    assert out.splitlines()[0].startswith(f"%WER {100 * (s + d + i) / (c + s + d):.2f} [ {s + d + i} / {c + s + d}, "
                                          f"{i} ins, {d} del, {s} sub ]")
    # the two alignments really differ on some pairs (so this test can tell them apart)
    differ = sum(edit_counts(r, h, "kaldi") != edit_counts([w.lower() for w in r], [w.lower() for w in h], "sclite")
                 for r, h in pairs)
    assert differ > 0


def test_batching_does_not_change_alignments():
    from asr.score.align import _moves

    pairs = random_pairs(300, seed=11, maxlen=60)
    for rule in ("kaldi", "align-text", "sclite"):
        one_batch = _moves(pairs, rule)
        assert _moves(pairs, rule, max_cells=2000) == one_batch
        assert _moves(pairs, rule, max_batch=1) == one_batch
