"""``asr import-kaldi-exp``: a Kaldi GMM experiment → our tree / transition model / alignment dir.

A user with a Kaldi experiment (``exp/tri6b``, ``exp/tri6b_ali_960``: ``final.mdl``, ``tree``,
``ali.*.gz``, ``phones.txt``, ``num_jobs``; optionally a graph dir with ``HCLG.fst``) and its
lang dir (``data/lang``) points us at them; the output dir is laid out as ``asr import-ali``
outputs (and is itself a tree dir), so training runs on Kaldi's senones::

    OUT/ali.pdf.ark ali.tid.ark phones.ark   per frame, pdfs exactly as Kaldi's ali-to-pdf
    OUT/tree                                 Kaldi's tree, byte for byte (read and re-written
                                             exactly first: the import fails otherwise)
    OUT/final.mdl                            the TransitionModel of Kaldi's final.mdl (the GMMs
                                             are not needed and not copied)
    OUT/num_pdfs silence_pdfs.int phones.txt import_stats.json excluded.txt
    OUT/graph/HCLG.fst words.txt phones.txt disambig_tid.int   (with a graph) Kaldi's graph,
                                             checked against the transition model and words
    OUT/kaldi_exp.json                       sources, their sha256, sizes, checks made

Checks (each failure is one line naming the file): the exp's ``phones.txt`` equals the lang
dir's (Kaldi exp dirs carry a copy; a different phone set makes every id wrong); the tree
reads and writes back byte-identically; ``final.mdl``'s transition states are exactly the
ones Kaldi derives from this tree and topology (so the model belongs to the tree); the
topology equals the lang dir's ``topo``; the graph's input labels are transition-ids of this
model and its output labels words of its ``words.txt``. Alignment lengths are checked
against ``DATA_DIR/utt2num_frames`` as in ``import-ali``.

Example::

    asr import-kaldi-exp data/train_960 data/lang exp/tri6b_ali_960 exp/kaldi_ali \\
        --graph-dir exp/tri6b/graph_tgsmall
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from asr.errors import AlignmentError, GraphError, ModelError
from asr.failures import DEFAULT_MAX_FAILURES
from asr.io.atomic import atomic_write_text

log = logging.getLogger(__name__)

GRAPH_FILES = ("HCLG.fst", "words.txt", "phones.txt", "disambig_tid.int")


def import_kaldi_exp(data_dir, lang_dir, exp_dir, out_dir, graph_dir=None, tolerance: int = 1,
                     max_failures: float = DEFAULT_MAX_FAILURES, force: bool = False) -> dict:
    """Import (see the module doc) into the alignment dir ``out_dir`` (asr.align.ali_dir,
    written at once, kind ``kaldi_exp``); returns the summary written to ``kaldi_exp.json``.
    Left as it is when imported from the same experiment, graph, data and options, unless
    ``force``."""
    from asr.align.import_ali import import_alignments
    from asr.hmm.topology import Topology
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import ContextDependency
    from asr.lang.lang_dir import LangDir

    exp, out = Path(exp_dir), Path(out_dir)
    lang = LangDir(lang_dir)
    for name in ("final.mdl", "tree"):
        if not (exp / name).is_file():
            raise ModelError(f"{exp}: not a Kaldi GMM exp dir (missing {name})")
    alis = sorted(exp.glob("ali.*.gz"), key=lambda p: (len(p.name), p.name))
    if not alis:
        raise AlignmentError(f"{exp}: no ali.*.gz alignment files")
    _check_num_jobs(exp, alis)
    if (exp / "phones.txt").is_file():
        _check_same_table(exp / "phones.txt", lang.path / "phones.txt", "phone set")
    else:
        log.warning("%s has no phones.txt: cannot check that it used the phones of %s", exp, lang.path)

    tree_bytes = (exp / "tree").read_bytes()
    tree = ContextDependency.read(exp / "tree")
    if tree.to_bytes(binary=tree_bytes[:2] == b"\x00B") != tree_bytes:
        raise ModelError(f"{exp / 'tree'}: read but not written back byte for byte; refusing an inexact import")
    tm = TransitionModel.read(exp / "final.mdl")
    if tree.num_pdfs != tm.num_pdfs:
        raise ModelError(f"{exp}: tree has {tree.num_pdfs} pdfs, final.mdl {tm.num_pdfs}")
    rebuilt = TransitionModel.build(tree, tm.topo)
    if not np.array_equal(rebuilt.tuples, tm.tuples):
        raise ModelError(f"{exp / 'final.mdl'}: its transition states are not the ones of {exp / 'tree'} "
                         "(model and tree from different experiments?)")
    lang_topo = Topology.read(lang.path / "topo")
    if lang_topo != tm.topo:
        raise ModelError(f"{exp / 'final.mdl'}: its HMM topology differs from {lang.path / 'topo'}")
    unknown = sorted(set(tm.topo.phones) - set(lang.phone_names))
    if unknown:
        raise ModelError(f"{exp / 'final.mdl'}: phones {unknown[:5]} are not in {lang.path / 'phones.txt'}")

    graph_info = None
    if graph_dir is not None:
        graph_info = _check_graph(Path(graph_dir), tm, lang)

    def finish(tmp: Path, stats: dict) -> None:
        """Kaldi's tree byte for byte (import-ali writes the text form), the graph, kaldi_exp.json:
        written into the alignment dir before it is sealed (ali_dir.json)."""
        from asr.io.atomic import atomic_write_bytes

        atomic_write_bytes(tmp / "tree", tree_bytes)
        if graph_info is not None:
            _copy_graph(Path(graph_dir), tmp / "graph")
        summary.update(alignments=stats)
        atomic_write_text(tmp / "kaldi_exp.json", json.dumps(summary, indent=1) + "\n")

    summary = {
        "exp_dir": str(exp.resolve()),
        "lang_dir": str(lang.path.resolve()),
        "graph_dir": str(Path(graph_dir).resolve()) if graph_dir is not None else None,
        "alignment_files": [p.name for p in alis],
        "num_pdfs": tm.num_pdfs,
        "num_transition_ids": tm.num_transition_ids,
        "context_width": tree.context_width,
        "central_position": tree.central_position,
        "tree_format": "binary" if tree_bytes[:2] == b"\x00B" else "text",
        "sha256": {name: _sha256(exp / name) for name in ("tree", "final.mdl")},
        "graph": graph_info,
        "checks": ["phones.txt equal" if (exp / "phones.txt").is_file() else "phones.txt absent (unchecked)",
                   "tree re-written byte-identically", "final.mdl transition states = tree x topology",
                   "topology = lang topo"] + (["graph labels within the model and words"] if graph_info else []),
    }
    extra = {"exp_tree": summary["sha256"]["tree"], "graph": graph_info["sha256"] if graph_info else None}
    stats = import_alignments("kaldi", data_dir, [str(p) for p in alis], out, lang_dir=lang.path,
                              mdl=exp / "final.mdl", tolerance=tolerance, kind="kaldi_exp", extra_inputs=extra,
                              finish=finish, max_failures=max_failures, force=force)
    if stats.get("skipped"):
        return json.loads((out / "kaldi_exp.json").read_text())
    log.info("imported %s: %d pdfs (context %d), %d utterances%s", exp, tm.num_pdfs, tree.context_width,
             stats["utterances_imported"], f", graph {graph_dir}" if graph_info else "")
    return summary


def _check_num_jobs(exp: Path, alis: list[Path]) -> None:
    p = exp / "num_jobs"
    if not p.is_file():
        return
    try:
        n = int(p.read_text().split()[0])
    except (ValueError, IndexError):
        raise AlignmentError(f"{p}: not a number") from None
    names = {a.name for a in alis}
    missing = [f"ali.{j}.gz" for j in range(1, n + 1) if f"ali.{j}.gz" not in names]
    if missing:
        raise AlignmentError(f"{exp}: num_jobs is {n} but {missing[0]} is missing (incomplete alignment run?)")


def _check_same_table(a: Path, b: Path, what: str) -> None:
    la, lb = a.read_text(encoding="utf-8").split("\n"), b.read_text(encoding="utf-8").split("\n")
    la, lb = [x.split() for x in la if x.strip()], [x.split() for x in lb if x.strip()]
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            raise ModelError(f"{a}:{i}: {' '.join(x)!r} but {b}:{i} is {' '.join(y)!r}: the {what} differs "
                             f"(use the lang dir the experiment was trained with)")
    if len(la) != len(lb):
        raise ModelError(f"{a} has {len(la)} entries, {b} {len(lb)}: the {what} differs "
                         f"(use the lang dir the experiment was trained with)")


def _check_graph(g: Path, tm, lang) -> dict:
    """Kaldi graph dir: every file there, input labels transition-ids (0 = epsilon),
    output labels in words.txt; words.txt equal to the lang dir's when that has one."""
    from asr.graph.fst_arrays import read_fst
    from asr.lang.lang_dir import read_symbol_table

    for name in GRAPH_FILES:
        if not (g / name).is_file():
            raise GraphError(f"{g}: not a graph dir (missing {name})")
    _check_same_table(g / "phones.txt", lang.path / "phones.txt", "phone set of the graph")
    fa = read_fst(g / "HCLG.fst")
    if len(fa.ilabel):
        bad = (fa.ilabel < 0) | (fa.ilabel > tm.num_transition_ids)
        if bad.any():
            raise GraphError(f"{g / 'HCLG.fst'}: input label {int(fa.ilabel[bad][0])} is not a transition-id of "
                             f"the model (1..{tm.num_transition_ids}): graph built for another model")
    words = read_symbol_table(g / "words.txt")
    ids = set(words.values())
    if len(fa.olabel):
        used = np.unique(fa.olabel)
        missing = [int(w) for w in used if w != 0 and int(w) not in ids]
        if missing:
            raise GraphError(f"{g / 'HCLG.fst'}: output label {missing[0]} is not in {g / 'words.txt'}")
    return {"states": int(len(fa.final)), "arcs": int(len(fa.ilabel)), "words": len(words),
            "sha256": _sha256(g / "HCLG.fst")}


def _copy_graph(src: Path, dst: Path) -> None:
    """Kaldi's graph files (and its num_pdfs when present: decoding checks it)."""
    dst.mkdir(parents=True)
    for name in GRAPH_FILES + ("num_pdfs",):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
