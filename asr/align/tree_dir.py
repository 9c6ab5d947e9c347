"""Making a tree dir (``asr build-tree``): statistics, questions, tree, transition model and
the alignments mapped to the new pdfs."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from asr.align.ali_dir import INFO, PDF_ARK, PHONE_ARK, TID_ARK, AliDir
from asr.errors import AlignmentError, ModelError
from asr.io.atomic import atomic_write_text
from asr.io.fingerprint import feature_fingerprints, file_hash, path_hash
from asr.io.int_ark import read_int_ark, write_int_ark

log = logging.getLogger(__name__)


def build_tree_dir(data_dir, ali_dir, tree_dir, lang_dir, num_leaves: int = 1500, context_width: int = 3,
                   central_position: int | None = None, min_count: float = 50.0, thresh: float = 0.0,
                   cmvn: str = "speaker", ci_phones: list[int] | None = None, force: bool = False) -> dict:
    """Build the tree dir ``tree_dir`` (an alignment dir, asr.align.ali_dir, written at once)
    from the alignment dir ``ali_dir``; returns the statistics of build_tree.json. Left as it
    is when it was built from the same features, alignments, lang dir and options, unless
    ``force``. ``ci_phones``: context-independent phones (None: the lang's
    ``phones/context_indep.int``, i.e. the silence phones; [] for none)."""
    from asr.align.ali_dir import REPLACEABLE
    from asr.align.compile import AlignmentCompiler
    from asr.io.atomic import check_replaceable
    from asr.align.import_ali import write_model_files
    from asr.hmm.kaldi_ali import split_to_phones
    from asr.features.reader import FeatureReader
    from asr.hmm.build_tree import accumulate_stats, build_tree, cluster_phones
    from asr.hmm.transition_model import TransitionModel
    from asr.lang.lang_dir import LangDir

    t0 = time.time()
    ali_dir, out = Path(ali_dir), Path(tree_dir)
    check_replaceable(out, REPLACEABLE)  # before the work, not after it
    if central_position is None:
        central_position = context_width // 2
    if not 0 <= central_position < context_width:
        raise ModelError(f"central position {central_position} outside the context width {context_width}")
    source = AliDir.load(ali_dir, need_tids=True)
    if not source.file("final.mdl").is_file():
        raise AlignmentError(f"{ali_dir}: no final.mdl (build-tree needs the transition model of the alignments)")
    lang = LangDir(lang_dir)
    topo = lang.topology()
    if ci_phones is None:
        ci_phones = lang.context_indep_phones
    ci_phones = sorted(int(p) for p in ci_phones)
    unknown = sorted(set(ci_phones) - set(topo.phones))
    if unknown:
        raise ModelError(f"context-independent phone {unknown[0]} is not a phone of {lang_dir}")
    options = {"num_leaves": num_leaves, "context_width": context_width, "central_position": central_position,
               "min_count": min_count, "thresh": thresh, "cmvn": cmvn, "ci_phones": ci_phones}
    inputs = {"options": options, "alignments": file_hash(source.file(INFO)), "lang": path_hash(lang_dir),
              "features": feature_fingerprints(data_dir)}
    if not force and AliDir.up_to_date(out, "tree", inputs):
        log.info("%s is up to date (built from the same features, alignments, lang dir and options); skipping", out)
        return json.loads((out / "build_tree.json").read_text())
    src_tm = TransitionModel.read(source.file("final.mdl"))
    alis = read_int_ark(source.file(TID_ARK))
    reader = FeatureReader(data_dir, cmvn=cmvn)
    stats, counts = accumulate_stats(reader, alis, src_tm, context_width, central_position, ci_phones=ci_phones)
    t_stats = time.time() - t0
    questions = cluster_phones(stats, lang.sets) + [q for q in lang.extra_questions if q]
    npc = {p: topo.num_pdf_classes(p) for p in topo.phones}
    tree, info = build_tree(stats, lang.roots, npc, questions, num_leaves, min_count, thresh)
    tm = TransitionModel.build(tree, topo)
    # map the alignments to the new pdfs (same phones and HMM states)
    comp = AlignmentCompiler(tree, tm)
    comp.set_pdf_table(stats.windows, stats.pdf_classes)
    mapped = {}
    for utt in sorted(alis, key=lambda u: u.encode("utf-8")):
        ali = alis[utt]
        ph, lens = split_to_phones(src_tm, ali, utt)
        mapped[utt] = comp.compile(ph, lens, src_tm.tid2hmm_state[ali], utt=utt)
    # transition probabilities re-estimated from the alignments (Kaldi MleUpdate)
    info.update(tm.mle_update(tm.accumulate(a.tids for a in mapped.values())))
    info.update(counts)
    info.update({"context_width": context_width, "central_position": central_position,
                 "ci_phones": ci_phones,
                 "num_leaves_requested": num_leaves, "min_count": min_count, "stats_seconds": round(t_stats, 2),
                 "total_seconds": round(time.time() - t0, 2), "num_transition_ids": tm.num_transition_ids})
    with AliDir.writer(out, "tree", inputs) as tmp:
        write_model_files(tmp, tree, tm, lang)
        write_int_ark(tmp / PDF_ARK, ((u, a.pdfs) for u, a in mapped.items()))
        write_int_ark(tmp / TID_ARK, ((u, a.tids) for u, a in mapped.items()))
        write_int_ark(tmp / PHONE_ARK, ((u, a.phones) for u, a in mapped.items()))
        info["silence_pdfs"] = len({int(x) for x in (tmp / "silence_pdfs.int").read_text().split()})
        atomic_write_text(tmp / "build_tree.json", json.dumps(info, indent=1) + "\n")
    log.info("tree dir %s: %d pdfs, %d transition-ids, %d utterances (%.1f s)", out, tm.num_pdfs,
             tm.num_transition_ids, len(mapped), info["total_seconds"])
    return info
