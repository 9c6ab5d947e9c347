"""asr compute-wer-bootci: bootstrap intervals, paired comparison, sclite's MAPSSWE (checked
against the real sc_stats when SCTK is installed)."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.score.significance import compare, mapsswe

SCTK = next((Path(p) for p in ("/usr/lib/sctk/bin", str(Path(shutil.which("sc_stats") or "/nonexistent").parent))
             if (Path(p) / "sc_stats").is_file() and (Path(p) / "sclite").is_file()), None)
VOCAB = [f"w{i}" for i in range(30)]


def corrupt(rng, ref, p):
    out = []
    for w in ref:
        x = rng.random()
        if x < p / 3:
            continue
        if x < 2 * p / 3:
            out.append(VOCAB[rng.integers(len(VOCAB))])
        elif x < p:
            out += [w, VOCAB[rng.integers(len(VOCAB))]]
        else:
            out.append(w)
    return out


def corpus(seed, n, p1, p2):
    rng = np.random.default_rng(seed)
    ref, h1, h2 = {}, {}, {}
    for i in range(n):
        utt = f"spk{i % 5}-{i:04d}"
        ref[utt] = list(rng.choice(VOCAB, int(rng.integers(1, 15))))
        h1[utt], h2[utt] = corrupt(rng, ref[utt], p1), corrupt(rng, ref[utt], p2)
    return ref, h1, h2


def write_text(path, table):
    path.write_text("".join(f"{u} {' '.join(w)}\n" for u, w in table.items()))
    return str(path)


@pytest.mark.skipif(SCTK is None, reason="NIST SCTK (sclite, sc_stats) not installed (Debian package sctk)")
@pytest.mark.parametrize("seed,p1,p2", [(3, 0.25, 0.15), (4, 0.1, 0.1), (5, 0.4, 0.05)])
def test_mapsswe_equals_sc_stats(tmp_path, seed, p1, p2):
    ref, h1, h2 = corpus(seed, 150, p1, p2)
    for name, table in (("ref", ref), ("h1", h1), ("h2", h2)):
        (tmp_path / f"{name}.trn").write_text("".join(f"{' '.join(w)} ({u})\n" for u, w in table.items()))
    for name in ("h1", "h2"):
        subprocess.run([str(SCTK / "sclite"), "-r", "ref.trn", "trn", "-h", f"{name}.trn", "trn", name, "-i",
                        "spu_id", "-o", "sgml", "-O", "."], cwd=tmp_path, check=True, capture_output=True)
    sgml = (tmp_path / "h1.trn.sgml").read_bytes() + (tmp_path / "h2.trn.sgml").read_bytes()
    subprocess.run([str(SCTK / "sc_stats"), "-p", "-t", "mapsswe", "-v", "-n", "out"], input=sgml, cwd=tmp_path,
                   check=True, capture_output=True)
    line = next(x for x in (tmp_path / "out.stats.mapsswe").read_text().splitlines() if x.startswith("MTCH_PR"))
    segs, mean, std, z = re.search(r"# segs: (\d+).*mean: (\S+)\) \(std dev: (\S+)\) \(Z Stat: (\S+)\)",
                                   line).groups()
    m = mapsswe(ref, h1, h2)
    assert m.segments == int(segs)
    assert (round(m.mean, 3), round(m.std, 3), round(m.z, 3)) == (float(mean), float(std), float(z))


def test_bootstrap_intervals_and_paired_difference():
    ref, h1, h2 = corpus(1, 400, 0.3, 0.15)
    c = compare(ref, h1, h2, replications=2000, seed=0)
    assert c.sys1.ci[0] < c.sys1.wer < c.sys1.ci[1] and c.sys2.ci[0] < c.sys2.wer < c.sys2.ci[1]
    assert c.diff == pytest.approx(c.sys1.wer - c.sys2.wer)
    assert 0 < c.diff_ci[0] < c.diff < c.diff_ci[1] and c.p_improve > 0.99 and c.mapsswe.significant
    # the paired interval of the difference is narrower than the two systems' intervals suggest
    assert c.diff_ci[1] - c.diff_ci[0] < (c.sys1.ci[1] - c.sys1.ci[0]) + (c.sys2.ci[1] - c.sys2.ci[0])
    # four times the data: about half the width
    big = compare(*corpus(1, 1600, 0.3, 0.15), replications=2000, seed=0)
    ratio = (big.sys1.ci[1] - big.sys1.ci[0]) / (c.sys1.ci[1] - c.sys1.ci[0])
    assert 0.4 < ratio < 0.6
    # a system against itself: no difference, never an improvement
    same = compare(ref, h1, h1, replications=500)
    assert same.diff == 0 and same.diff_ci == (0.0, 0.0) and same.p_improve == 0 and not same.mapsswe.significant
    # seeded
    assert compare(ref, h1, h2, replications=500, seed=7) == compare(ref, h1, h2, replications=500, seed=7)


def test_cli_lines_and_bad_input(tmp_path, capsys, caplog):
    ref, h1, h2 = corpus(2, 100, 0.2, 0.2)
    del h2["spk1-0001"]  # missing: an empty hypothesis in mode all
    r, a, b = (write_text(tmp_path / n, t) for n, t in (("ref", ref), ("a", h1), ("b", h2)))
    # as compute-wer --mode: strict (default) refuses the missing utterance, naming the HYP file
    assert main(["compute-wer-bootci", "--replications", "500", r, a, b]) == 1
    err = capsys.readouterr().err
    assert f"{b}: no hypothesis for utterance 'spk1-0001' (--mode strict)" in err and len(err.splitlines()) == 1
    assert main(["compute-wer-bootci", "--replications", "500", "--mode", "present", r, a, b]) == 0
    assert f"{b}: 1 reference utterance(s) have no hypothesis (--mode present: skipped)" in caplog.text
    capsys.readouterr()
    assert main(["compute-wer-bootci", "--mode", "all", "--replications", "500", "--names", "lstmp,dnn", r, a, b]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"lstmp: %WER \d+\.\d\d 95% Conf Interval \[ \d+\.\d\d, \d+\.\d\d \] \(\d+ / \d+\)", out[0])
    assert out[1].startswith("dnn: %WER") and out[2].startswith("Difference lstmp - dnn: %WER")
    assert out[3].startswith("Probability of dnn improving lstmp: ") and out[4].startswith("MAPSSWE: ")
    assert main(["compute-wer-bootci", r, a]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    h1["zz-extra"] = ["x"]
    c = write_text(tmp_path / "c", h1)
    assert main(["compute-wer-bootci", r, a, c]) == 1
    assert f"{c}: 1 hypothesis utterance(s) not in the reference {r}, e.g. 'zz-extra'" in capsys.readouterr().err
