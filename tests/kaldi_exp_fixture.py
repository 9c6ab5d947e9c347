"""A small Kaldi GMM experiment written in Kaldi's documented binary formats, for import tests.

``make_kaldi_exp(fixture, parts, work)`` plays the part of a user's Kaldi setup on the
LibriSpeech-shaped fixture:

- ``work/lang``: a lang dir from the fixture's ``librispeech-lexicon.txt``; with
  ``shuffle_phones`` the nonsilence phone lines are shuffled first, as Kaldi's
  ``prepare_dict.sh`` (Perl hash order) leaves them, so its phone ids differ from ours;
- ``work/data``: the train parts' data dir with features (to build the tree);
- ``work/exp/tri1``: ``tree`` (binary ``ContextDependency``), ``final.mdl`` (binary
  ``TransitionModel`` followed by an ``AmDiagGmm``, one Gaussian per pdf estimated from
  the features), ``ali.1.gz .. ali.J.gz`` (gzipped binary int32-vector arks of
  transition-ids, Kaldi's ``BasicVectorHolder`` form), ``phones.txt``, ``num_jobs``,
  ``graph/`` (HCLG.fst, words.txt, phones.txt, disambig_tid.int);

from the fixture's exact phone times (CTM import, then a triphone tree), so the
alignments are true ones. ``expected_pdfs`` are the pdf alignments as the tree maps
them (before the transition-ids were written), for comparing with an import.
"""

from __future__ import annotations

import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.cli import main
from asr.io.int_ark import read_int_ark, write_int_ark


@dataclass
class KaldiExp:
    exp: Path
    lang: Path
    data: Path
    expected_pdfs: dict[str, np.ndarray]


def _run(*args) -> None:
    rc = main([str(a) for a in args])
    assert rc == 0, f"asr {' '.join(map(str, args))} failed ({rc})"


def make_kaldi_exp(fx, parts: list[str], work: Path, num_leaves: int = 60, num_jobs: int = 2,
                   shuffle_phones: bool = True, graph: bool = True) -> KaldiExp:
    work.mkdir(parents=True, exist_ok=True)
    dict_dir, lang, data = work / "dict", work / "lang", work / "data"
    _run("prepare-dict", fx.lm_dir / "librispeech-lexicon.txt", dict_dir)
    if shuffle_phones:
        lines = (dict_dir / "nonsilence_phones.txt").read_text().splitlines(True)
        random.Random(7).shuffle(lines)
        (dict_dir / "nonsilence_phones.txt").write_text("".join(lines))
    _run("prepare-lang", dict_dir, lang)
    _run("prep-librispeech", *[fx.part(p) for p in parts], data)
    _run("make-fbank", "--nj", 2, "--no-progress", data)
    _run("compute-cmvn", "--no-progress", data)
    ctm = work / "phones.ctm"
    ctm.write_text("".join((fx.root / "alignments" / f"{p}.phones.ctm").read_text() for p in parts))
    _run("import-ali", "--format", "ctm", "--lang", lang, data, ctm, work / "ali_mono")
    tree_dir = work / "tree"
    _run("build-tree", "--lang", lang, "--num-leaves", num_leaves, "--min-count", 20, data, work / "ali_mono", tree_dir)
    exp = work / "exp" / "tri1"
    write_kaldi_exp(tree_dir, lang, data, exp, num_jobs)
    if graph:
        _run("make-graph", "--fst-type", "vector", lang, tree_dir, fx.lm_dir / "3-gram.pruned.3e-7.arpa.gz",
             exp / "graph")
    return KaldiExp(exp, lang, data, read_int_ark(tree_dir / "ali.pdf.ark"))


def write_kaldi_exp(tree_dir: Path, lang: Path, data: Path, exp: Path, num_jobs: int) -> None:
    """Write ``exp`` from one of our tree dirs in Kaldi's binary formats (see the module doc)."""
    from asr.features.reader import FeatureReader
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import ContextDependency

    exp.mkdir(parents=True, exist_ok=True)
    ContextDependency.read(tree_dir / "tree").write(exp / "tree", binary=True)
    tm = TransitionModel.read(tree_dir / "final.mdl")
    tids = read_int_ark(tree_dir / "ali.tid.ark")
    pdfs = read_int_ark(tree_dir / "ali.pdf.ark")
    # one diagonal Gaussian per pdf from the (CMVN-normalised) features
    reader = FeatureReader(data, cmvn="speaker")
    dim = None
    acc = cnt = sq = None
    for utt, f in reader:
        if utt not in pdfs:
            continue
        if dim is None:
            dim = f.shape[1]
            acc, sq, cnt = np.zeros((tm.num_pdfs, dim)), np.zeros((tm.num_pdfs, dim)), np.zeros(tm.num_pdfs)
        p = pdfs[utt][: len(f)]
        np.add.at(acc, p, f[: len(p)])
        np.add.at(sq, p, f[: len(p)] ** 2)
        np.add.at(cnt, p, 1)
    c = np.maximum(cnt, 1)[:, None]
    means, var = acc / c, np.maximum(sq / c - (acc / c) ** 2, 1e-2)
    var[cnt == 0] = 1.0
    (exp / "final.mdl").write_bytes(tm.to_bytes(binary=True) + am_diag_gmm_bytes(means, var))
    utts = sorted(tids, key=lambda u: u.encode())
    for j in range(num_jobs):
        write_int_ark(exp / f"ali.{j + 1}.gz", ((u, tids[u]) for u in utts[j::num_jobs]), binary=True)
    shutil.copyfile(lang / "phones.txt", exp / "phones.txt")
    (exp / "num_jobs").write_text(f"{num_jobs}\n")
    (exp / "cmvn_opts").write_text("\n")


def am_diag_gmm_bytes(means: np.ndarray, var: np.ndarray) -> bytes:
    """Kaldi ``AmDiagGmm::Write`` (binary), one single-Gaussian ``DiagGmm`` per pdf."""
    num_pdfs, dim = means.shape
    out = [b"<DIMENSION> ", _i32(dim), b"<NUMPDFS> ", _i32(num_pdfs)]
    for m, v in zip(means, var):
        inv = 1.0 / v
        gconst = -0.5 * (dim * np.log(2 * np.pi) + np.log(v).sum() + (m * m * inv).sum())
        out += [b"<DiagGMM> ", b"<GCONSTS> ", _fv([gconst]), b"<WEIGHTS> ", _fv([1.0]),
                b"<MEANS_INVVARS> ", _fm((m * inv)[None]), b"<INV_VARS> ", _fm(inv[None]), b"</DiagGMM> "]
    return b"".join(out)


def _i32(v: int) -> bytes:
    return b"\x04" + struct.pack("<i", v)


def _fv(v) -> bytes:
    v = np.asarray(v, dtype="<f4")
    return b"FV " + _i32(len(v)) + v.tobytes()


def _fm(m: np.ndarray) -> bytes:
    m = np.asarray(m, dtype="<f4")
    return b"FM " + _i32(m.shape[0]) + _i32(m.shape[1]) + m.tobytes()
