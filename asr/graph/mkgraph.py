"""HCLG construction with Kaldi ``utils/mkgraph.sh`` semantics.

    G     = arpa2fst(LM, #0 on back-off arcs)            (or a given G.fst)
    LG    = minimize_encoded(determinize_star(L_disambig o G, log semiring))
    CLG   = compose_context(LG)                          (N, P from the tree; mono when N = 1)
    Ha    = H transducer without self-loops              (asr.graph.h_transducer)
    HCLGa = minimize_encoded(rmsymbols(determinize_star(Ha o CLG), disambig tids))
    HCLG  = arcsort(add_self_loops(HCLGa, reorder, self-loop scale 0.1))

Differences from mkgraph.sh: no ``fstpushspecial`` on LG and no ``fstrmepslocal`` after
removing the disambiguation symbols (kaldifst has neither; both only change weight
placement / epsilon count, not the weighted language), so graphs are equivalent but not
byte-identical to Kaldi's.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from asr.errors import GraphError
from asr.graph import fst_arrays as fa_mod
from asr.graph import graph_dir as gd
from asr.graph.fst_arrays import FstArrays
from asr.graph.h_transducer import make_h_transducer
from asr.graph.self_loops import add_self_loops
from asr.io.fingerprint import arpa_text_hash
from asr.io.atomic import atomic_dir, atomic_write_text, check_replaceable
from asr.lm.grammar_fst import compile_arpa

log = logging.getLogger(__name__)

# an existing dir holding one of these is a graph dir that make-graph may replace
GRAPH_DIR_FILES = (gd.HCLG, gd.INFO)


def read_symbols(path: str | os.PathLike) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise GraphError(f"{path}:{lineno}: expected 'symbol id'")
            out[parts[0]] = int(parts[1])
    return out


def read_int_list(path: str | os.PathLike) -> list[int]:
    with open(path, encoding="utf-8") as f:
        return [int(x) for x in f.read().split()]


def is_fst(lm_path: str | os.PathLike) -> bool:
    """True when the LM file is an OpenFst G.fst rather than an ARPA file."""
    lm_path = Path(lm_path)
    if lm_path.suffix == ".arpa" or str(lm_path).endswith(".arpa.gz"):
        return False
    with open(lm_path, "rb") as f:
        return f.read(4) == fa_mod.FST_MAGIC.to_bytes(4, "little", signed=True)


def make_g(lm_path: str | os.PathLike, words_txt: str | os.PathLike) -> FstArrays:
    """G from an ARPA file (kaldilm.arpa2fst with ``#0`` on back-off arcs) or a G.fst."""
    lm_path = Path(lm_path)
    if is_fst(lm_path):
        return fa_mod.read_fst(lm_path)
    if "#0" not in read_symbols(words_txt):
        raise GraphError(f"{words_txt}: no #0 symbol (needed for G's back-off arcs)")
    with tempfile.TemporaryDirectory(dir=fa_mod._tmp_dir()) as tmp:
        compile_arpa(lm_path, words_txt, Path(tmp) / "G.fst")
        return fa_mod.read_fst(Path(tmp) / "G.fst")


def _cpu_seconds() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_graph(lang_dir, tree_dir, lm_path, graph_dir, transition_scale: float = 1.0,
               self_loop_scale: float = 0.1, fst_type: str = "const", force: bool = False) -> dict:
    """Build the graph dir ``graph_dir`` (asr.graph.graph_dir: HCLG.fst, words.txt, phones.txt,
    disambig_tid.int, num_pdfs, graph.json) atomically; returns stats. When ``graph_dir`` is
    complete and was built from the same inputs (SHA-256) and options, nothing is done
    (stats of that build, with ``"skipped": True``) unless ``force``."""
    import kaldifst

    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import ContextDependency

    lang_dir, tree_dir, graph_dir = Path(lang_dir), Path(tree_dir), Path(graph_dir)
    check_replaceable(graph_dir, GRAPH_DIR_FILES)  # before the work, not after it
    inputs = gd.graph_inputs(lang_dir, tree_dir, lm_path)
    options = {"transition_scale": transition_scale, "self_loop_scale": self_loop_scale, "fst_type": fst_type}
    if not force and gd.up_to_date(graph_dir, inputs, options):
        log.info("%s is up to date (built from the same lang dir, tree, transition model and LM); skipping",
                 graph_dir)
        return dict(gd.GraphDir.load(graph_dir).info["stats"], skipped=True)
    times: dict[str, float] = {}
    cpu_times: dict[str, float] = {}
    t0, c0 = time.perf_counter(), _cpu_seconds()

    def lap(name: str) -> None:  # wall and CPU seconds of a step (CPU includes arpa2fst's child)
        nonlocal t0, c0
        t, c = time.perf_counter(), _cpu_seconds()
        times[name], cpu_times[name] = round(t - t0, 3), round(c - c0, 3)
        t0, c0 = t, c

    tree = ContextDependency.read(tree_dir / "tree")
    tm = TransitionModel.read(tree_dir / "final.mdl")
    disambig_phones = read_int_list(lang_dir / "phones" / "disambig.int")
    L = fa_mod.read_fst(lang_dir / "L_disambig.fst").sorted_arcs("olabel")
    G = make_g(lm_path, lang_dir / "words.txt").sorted_arcs("ilabel")
    lap("read")
    log.info("L: %d states, %d arcs; G: %d states, %d arcs", L.num_states, L.num_arcs, G.num_states, G.num_arcs)

    LG = kaldifst.compose(fa_mod.to_kaldifst(L), fa_mod.to_kaldifst(G), match_side="left",
                          compose_filter="sequence", connect=True)
    if LG.num_states == 0:
        raise GraphError("L o G is empty (do words.txt of the lang dir and the LM agree?)")
    kaldifst.determinize_star(LG, use_log=True)
    kaldifst.minimize_encoded(LG)
    lap("LG")
    log.info("LG: %d states", LG.num_states)

    CLG, ilabels = kaldifst.compose_context(disambig_phones, tree.context_width, tree.central_position, LG)
    del LG
    lap("CLG")
    log.info("CLG: %d states, %d ilabels", CLG.num_states, len(ilabels))

    Ha, disambig_tids = make_h_transducer(ilabels, tree, tm, transition_scale)
    lap("H")
    clg = fa_mod.from_kaldifst(CLG).sorted_arcs("ilabel")
    del CLG
    HCLGa = kaldifst.compose(fa_mod.to_kaldifst(Ha), fa_mod.to_kaldifst(clg), match_side="left",
                             compose_filter="sequence", connect=True)
    del clg, Ha
    kaldifst.determinize_star(HCLGa, use_log=True)
    lap("HCLGa")
    if len(disambig_tids):  # fstrmsymbols: disambiguation ids (the largest ids) -> epsilon
        a = fa_mod.from_kaldifst(HCLGa)
        a.ilabel[a.ilabel >= disambig_tids[0]] = 0
        HCLGa = fa_mod.to_kaldifst(a)
        del a
    kaldifst.minimize_encoded(HCLGa)
    kaldifst.connect(HCLGa)
    a = fa_mod.from_kaldifst(HCLGa)
    del HCLGa
    lap("rmsymbols+minimize")
    hclg = add_self_loops(a, tm, self_loop_scale).sorted_arcs("ilabel")
    lap("self-loops")
    if hclg.num_states == 0:
        raise GraphError("HCLG is empty")

    with atomic_dir(graph_dir, replaces=GRAPH_DIR_FILES) as tmp:
        fa_mod.write_fst(hclg, tmp / gd.HCLG, fst_type)
        shutil.copyfile(lang_dir / "words.txt", tmp / gd.WORDS)
        shutil.copyfile(lang_dir / "phones.txt", tmp / gd.PHONES)
        atomic_write_text(tmp / gd.DISAMBIG, "".join(f"{t}\n" for t in disambig_tids))
        atomic_write_text(tmp / gd.NUM_PDFS, f"{tm.num_pdfs}\n")
        lap("write")
        stats = {"states": hclg.num_states, "arcs": hclg.num_arcs, "context_width": tree.context_width,
                 "central_position": tree.central_position, "ilabels": len(ilabels), "seconds": times,
                 "total_seconds": round(sum(times.values()), 3), "cpu_seconds": cpu_times,
                 "total_cpu_seconds": round(sum(cpu_times.values()), 3)}
        # the ARPA text's hash (None for a G.fst): what lmrescore --old-lm is checked against
        lm_arpa = None if is_fst(lm_path) else arpa_text_hash(lm_path)
        gd.write_info(tmp, inputs, options, tm.num_pdfs, tm.num_transition_ids, stats, lm_arpa)
    log.info("HCLG: %d states, %d arcs in %.1f s (%s)", hclg.num_states, hclg.num_arcs,
             stats["total_seconds"], times)
    return stats


def load_graph(path: str | os.PathLike, tid2pdf=None):
    """Read an HCLG (ours or Kaldi's, vector or const) as a kaldifst FST for the decoders.

    With ``tid2pdf`` the input labels are relabelled from transition-ids to ``pdf + 1``
    (a ConstFst is returned): the decoder then reads the [T, num_pdfs] log-likelihood
    matrix directly instead of a [T, num_tids] copy with one column per transition-id,
    which costs more than the search itself on a sharp acoustic model. The search is the
    same (same arcs, weights and scores); only the raw lattice's input labels differ.
    """
    import kaldifst

    path = Path(path)
    if not path.exists():
        raise GraphError(f"missing graph {path}")
    if tid2pdf is not None:
        import tempfile

        buf = bytearray(path.read_bytes())
        try:
            hdr, pos = fa_mod.parse_header(buf, str(path))
        except GraphError:
            raise
        except Exception as e:  # noqa: BLE001 - truncated header
            raise GraphError(f"{path}: not an OpenFst file ({e})") from e
        if not (hdr["fst_type"] == "const" and hdr["version"] == 2 and not hdr["flags"] & 0x3):
            buf = bytearray(fa_mod.to_const_bytes(fa_mod.read_fst(path)))
            hdr, pos = fa_mod.parse_header(buf, str(path))
        fa_mod.relabel_const_inplace(buf, hdr, pos, tid2pdf, str(path))
        fd, tmp = tempfile.mkstemp(suffix=".fst", dir=fa_mod._tmp_dir())
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf)
            del buf
            g = kaldifst.StdConstFst.read(tmp)
        finally:
            os.unlink(tmp)
        if g is None:
            raise GraphError(f"{path}: kaldifst could not read the relabelled graph")
        return g
    with open(path, "rb") as f:
        buf = f.read(256)
    try:
        hdr, _ = fa_mod.parse_header(buf, str(path))
    except GraphError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated header
        raise GraphError(f"{path}: not an OpenFst file ({e})") from e
    if hdr["arc_type"] != "standard":
        raise GraphError(f"{path}: arc type {hdr['arc_type']!r}, expected 'standard'")
    if hdr["flags"] & 0x3:
        g = fa_mod.to_kaldifst(fa_mod.read_fst(path), const=True)
    elif hdr["fst_type"] == "const":
        g = kaldifst.StdConstFst.read(str(path))
    elif hdr["fst_type"] == "vector":
        g = kaldifst.StdVectorFst.read(str(path))
    else:
        g = fa_mod.to_kaldifst(fa_mod.read_fst(path), const=True)
    if g is None:
        raise GraphError(f"{path}: kaldifst could not read the graph")
    return g
