"""asr ali-stats and asr plot-ali."""

import json
import subprocess
import sys

import pytest

from asr.cli import main
from hmm_test_helpers import make_data, make_lang


@pytest.fixture()
def ali(tmp_path):
    lang, data = make_lang(tmp_path), make_data(tmp_path)
    out = tmp_path / "ali"
    main(["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(out)])
    return out


def test_ali_stats(ali, tmp_path):
    r = subprocess.run([sys.executable, "-m", "asr", "ali-stats", "--base-phones", "--json", str(tmp_path / "s.json"),
                        str(ali)], capture_output=True, text=True, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["phone", "count", "mean"]
    rows = {x["phone"]: x for x in json.loads((tmp_path / "s.json").read_text())}
    # one K (in CAT) in u1 and in u3, 10 frames each
    assert rows["K"]["count"] == 2 and rows["K"]["mean"] == 10.0
    assert abs(sum(x["frames_pct"] for x in rows.values()) - 100) < 1e-6
    assert rows["AA"]["min"] == 3  # the 1-frame AA_S lengthened to its 3 states
    # --json naming a file of ALI_DIR: refused, the alignments kept
    before = (ali / "ali.tid.ark").read_bytes()
    r = subprocess.run([sys.executable, "-m", "asr", "ali-stats", "--json", str(ali / "ali.tid.ark"), str(ali)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "the output would overwrite the input" in r.stderr
    assert (ali / "ali.tid.ark").read_bytes() == before


def test_plot_ali(ali, tmp_path):
    png = tmp_path / "u2.png"
    assert main(["plot-ali", str(ali), "u2", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = subprocess.run([sys.executable, "-m", "asr", "plot-ali", str(ali), "nope", str(png)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no utterance nope" in r.stderr
