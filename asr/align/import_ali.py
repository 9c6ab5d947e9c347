"""``asr import-ali``: external alignments → frame-synchronous pdf / transition-id / phone arks.

Formats:
- ``ctm``: phone CTM (``utt chan start dur phone``); HMM states split uniformly inside
  each phone; word-position phones from the transcript (``DATA_DIR/text``) and lexicon, or
  from a word CTM (``--words-ctm``);
- ``textgrid``: Praat TextGrids (one per utterance, ``<utt>.TextGrid``, searched
  recursively), phone tier ``--phone-tier`` (default ``phones``), words ``--word-tier``;
- ``kaldi``: Kaldi ``ali.*.gz`` (text or binary int-vector arks, gzipped or not) with their
  ``final.mdl``: pdfs exactly as ``ali-to-pdf``, phones as ``ali-to-phones --per-frame``;
- ``pdf``: pdf-id arks as ``ali-to-pdf`` writes them.

Frame counts are checked against ``DATA_DIR/utt2num_frames``: within ``--tolerance``
frames the alignment is padded (last frame repeated) or trimmed; beyond it the utterance
is reported and excluded. Everything skipped is counted in ``import_stats.json``; the
excluded utterances and the reason are listed in ``excluded.txt``.

Output dir: ``ali.pdf.ark``, ``ali.tid.ark``, ``phones.ark`` (text int arks, one entry per
frame), ``tree``, ``final.mdl``, ``num_pdfs``, ``silence_pdfs.int``, ``import_stats.json``.
Without ``--tree-dir`` the model is a monophone one built from the lang dir (phones of one
line of ``phones/sets.txt`` share pdfs, as Kaldi's ``gmm-init-mono --shared-phones``), its
transition probabilities estimated from the imported alignments (Kaldi ``MleUpdate``);
with it, states are mapped through that tree and ``final.mdl`` (kept as it is).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from asr.align.ali_dir import PDF_ARK, PHONE_ARK, TID_ARK, AliDir
from asr.errors import AlignmentError, DataDirError, FormatError, ModelError
from asr.failures import DEFAULT_MAX_FAILURES, Failures
from asr.io.atomic import atomic_write_text
from asr.io.fingerprint import path_hash
from asr.io.int_ark import iter_int_ark, write_int_ark
from asr.io.tables import read_table

log = logging.getLogger(__name__)

FORMATS = ("ctm", "textgrid", "kaldi", "pdf")


def read_num_frames(data_dir: Path) -> dict[str, int]:
    p = data_dir / "utt2num_frames"
    if p.is_file():
        out = {}
        for utt, v in read_table(p, allow_empty_value=False).items():
            try:
                out[utt] = int(v)
            except ValueError:
                raise FormatError(f"{p}: utterance {utt}: frame count {v!r} is not an integer") from None
        return out
    scp = data_dir / "feats.scp"
    if scp.is_file():
        import kaldiio

        log.info("%s missing: reading frame counts from %s", p, scp)
        return {utt: int(kaldiio.load_mat(spec).shape[0]) for utt, spec in read_table(scp).items()}
    raise DataDirError(f"{data_dir}: needs utt2num_frames (or feats.scp) to check alignment lengths")


def read_text(data_dir: Path) -> dict[str, list[str]]:
    p = data_dir / "text"
    if not p.is_file():
        return {}
    return {utt: v.split() for utt, v in read_table(p).items()}


def load_model(lang, tree_dir: Path | None):
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import ContextDependency, monophone_tree

    if tree_dir is not None:
        tree = ContextDependency.read(tree_dir / "tree")
        tm = TransitionModel.read(tree_dir / "final.mdl")
    else:
        if lang is None:
            raise ModelError("--lang is needed to build the monophone model (or give --tree-dir)")
        topo = lang.topology()
        tree = monophone_tree(lang.sets, {p: topo.num_pdf_classes(p) for p in topo.phones})
        tm = TransitionModel.build(tree, topo)
    if tree.num_pdfs != tm.num_pdfs:
        raise ModelError(f"tree has {tree.num_pdfs} pdfs but final.mdl has {tm.num_pdfs}")
    return tree, tm


def write_model_files(out: Path, tree, tm, lang) -> None:
    """tree, final.mdl, num_pdfs, silence_pdfs.int (and phones.txt when a lang is known)."""
    out.mkdir(parents=True, exist_ok=True)
    if tree is not None:
        tree.write(out / "tree")
    tm.write(out / "final.mdl")
    atomic_write_text(out / "num_pdfs", f"{tm.num_pdfs}\n")
    if lang is not None:
        sil = np.isin(tm.tid2phone, np.array(lang.silence_phones))
        sil[0] = False
        pdfs = sorted(set(tm.tid2pdf[sil].tolist()))
        atomic_write_text(out / "silence_pdfs.int", "".join(f"{p}\n" for p in pdfs))
        shutil.copyfile(lang.path / "phones.txt", out / "phones.txt")


class _Stats:
    def __init__(self):
        self.c = Counter()
        self.excluded: list[tuple[str, str]] = []

    def exclude(self, utt: str, reason: str, detail: str) -> None:
        self.c[f"excluded_{reason}"] += 1
        self.excluded.append((utt, f"{reason}: {detail}"))
        if len(self.excluded) <= 20:
            log.warning("excluding %s: %s", utt, detail)
        elif len(self.excluded) == 21:
            log.warning("more excluded utterances: see excluded.txt")


def _fit_length(arr: np.ndarray, n: int, pad_value) -> np.ndarray:
    if len(arr) >= n:
        return arr[:n]
    return np.concatenate([arr, np.full(n - len(arr), pad_value, dtype=arr.dtype)])


def import_alignments(
    fmt: str,
    data_dir: str | os.PathLike,
    sources: list[str],
    out_dir: str | os.PathLike,
    lang_dir: str | os.PathLike | None = None,
    tree_dir: str | os.PathLike | None = None,
    mdl: str | os.PathLike | None = None,
    words_ctm: str | os.PathLike | None = None,
    tolerance: int = 1,
    convention: str = "center",
    frame_shift: float = 0.01,
    frame_length: float = 0.025,
    reorder: bool = True,
    phone_map: str | os.PathLike | None = None,
    phone_tier: str = "phones",
    word_tier: str = "words",
    max_failures: float = DEFAULT_MAX_FAILURES,
    force: bool = False,
    kind: str = "import",
    extra_inputs: dict | None = None,
    finish=None,
) -> dict:
    """Import alignments into the alignment dir ``out_dir`` (asr.align.ali_dir, written at
    once); returns the statistics written to ``import_stats.json``. When ``out_dir`` was made
    from the same inputs and options it is left as it is, unless ``force``. Utterances that
    cannot be imported are excluded and counted; more than ``max_failures`` of them is an
    AlignmentError (nothing written). A caller that adds files to the dir (``asr
    import-kaldi-exp``) passes its ``kind``, its own ``extra_inputs`` and ``finish(tmp_dir,
    summary)``, called before the dir is sealed; a skipped import returns ``"skipped": True``."""
    from asr.lang.lang_dir import LangDir

    if fmt not in FORMATS:
        raise AlignmentError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    data_dir, out = Path(data_dir), Path(out_dir)
    if fmt == "kaldi":
        mdl = _kaldi_mdl(sources, mdl)
    options = {"format": fmt, "tolerance": tolerance, "convention": convention, "frame_shift": frame_shift,
               "frame_length": frame_length, "reorder": reorder, "phone_tier": phone_tier, "word_tier": word_tier}
    inputs = {"options": options, "sources": [_source_hash(s) for s in sources], "lang": path_hash(lang_dir), "tree_dir": _model_hash(tree_dir),
              "mdl": [path_hash(mdl), path_hash(mdl.parent / "tree")] if fmt == "kaldi" else path_hash(mdl),
              "words_ctm": path_hash(words_ctm), "phone_map": path_hash(phone_map),
              "utt2num_frames": path_hash(data_dir / "utt2num_frames"), "feats.scp": path_hash(data_dir / "feats.scp"),
              "text": path_hash(data_dir / "text"), **(extra_inputs or {})}
    if not force and AliDir.up_to_date(out, kind, inputs):
        log.info("%s is up to date (imported from the same alignments, data and lang dir); skipping", out)
        return dict(json.loads((out / "import_stats.json").read_text()), skipped=True)
    lang = LangDir(lang_dir) if lang_dir is not None else None
    tree_dir = Path(tree_dir) if tree_dir is not None else None
    num_frames = read_num_frames(data_dir)
    stats = _Stats()
    stats.c["utterances_in_data"] = len(num_frames)
    results: dict[str, tuple] = {}

    if fmt in ("ctm", "textgrid"):
        if lang is None:
            raise AlignmentError(f"--format {fmt} needs --lang")
        tree, tm = load_model(lang, tree_dir)
        results = _import_timed(fmt, data_dir, sources, lang, tree, tm, num_frames, stats, words_ctm, tolerance,
                                convention, frame_shift, frame_length, reorder, phone_map, phone_tier, word_tier)
    elif fmt == "kaldi":
        results, tree, tm = _import_kaldi(sources, mdl, lang, tree_dir, num_frames, stats, tolerance, reorder)
    else:
        results, tree, tm = _import_pdf(sources, tree_dir, num_frames, stats, tolerance)

    utts = sorted(results, key=lambda u: u.encode("utf-8"))
    failures = Failures("import-ali", len(num_frames), stats.excluded)
    failures.check(max_failures, AlignmentError, f"{out} not written")
    stats.c["utterances_imported"] = len(utts)
    stats.c["frames_imported"] = int(sum(len(results[u][0]) for u in utts))
    with AliDir.writer(out, kind, inputs) as tmp:
        write_int_ark(tmp / PDF_ARK, ((u, results[u][0]) for u in utts))
        if fmt != "pdf":
            write_int_ark(tmp / TID_ARK, ((u, results[u][1]) for u in utts))
            write_int_ark(tmp / PHONE_ARK, ((u, results[u][2]) for u in utts))
        if tm is not None:
            if fmt in ("ctm", "textgrid") and tree_dir is None:
                # a model built here: transition probabilities from the imported alignments
                upd = tm.mle_update(tm.accumulate(results[u][1] for u in utts))
                stats.c["transition_states_updated"] = upd["transition_states_updated"]
            write_model_files(tmp, tree, tm, lang)
        atomic_write_text(tmp / "excluded.txt", "".join(f"{u} {r}\n" for u, r in stats.excluded))
        summary = dict(sorted(stats.c.items()))
        summary["format"] = fmt
        atomic_write_text(tmp / "import_stats.json", json.dumps(summary, indent=1) + "\n")
        if finish is not None:
            finish(tmp, summary)
    n_excl = len(stats.excluded)
    log.info("%s (%d frames)%s", failures.summary(), summary["frames_imported"],
             f"; see {out / 'excluded.txt'}" if n_excl else "")
    return summary


def _source_hash(source: str) -> str | list:
    """Fingerprint of an alignment source: a file, a dir, or a glob pattern (its matches)."""
    if Path(source).exists():
        return path_hash(source)
    return [path_hash(p) for p in sorted(glob.glob(source))]


def _model_hash(tree_dir) -> list | None:
    if tree_dir is None:
        return None
    return [path_hash(Path(tree_dir) / "tree"), path_hash(Path(tree_dir) / "final.mdl")]


# -- CTM / TextGrid ----------------------------------------------------------

def _read_phone_map(path) -> dict[str, str]:
    if path is None:
        return {}
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            t = line.split()
            if not t:
                continue
            if len(t) == 1:  # "label" alone: maps the empty label
                out[""] = t[0]
            elif len(t) == 2:
                out[t[0]] = t[1]
            else:
                raise FormatError(f"{path}:{lineno}: expected 'label phone'")
    return out


def _gather_textgrids(sources: list[str], phone_tier: str, word_tier: str):
    from asr.align.timed import read_textgrid

    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.TextGrid")))
        else:
            files.extend(Path(x) for x in sorted(glob.glob(s)) or [s])
    phones, words = {}, {}
    for f in files:
        tiers = read_textgrid(f)
        tier = tiers.get(phone_tier)
        if tier is None:
            cand = [n for n in tiers if "phone" in n.lower()]
            if not cand:
                raise FormatError(f"{f}: no tier named {phone_tier!r} (tiers: {', '.join(tiers)})")
            tier = tiers[cand[0]]
        phones[f.stem] = tier
        wt = tiers.get(word_tier)
        if wt is not None:
            words[f.stem] = [iv for iv in wt if iv.label]
    return phones, words


def _import_timed(fmt, data_dir, sources, lang, tree, tm, num_frames, stats, words_ctm, tolerance, convention,
                  shift, length, reorder, phone_map, phone_tier, word_tier):
    from tqdm import tqdm

    from asr.align.compile import AlignmentCompiler, fix_short_segments
    from asr.align.labels import LabelMapper
    from asr.align.timed import expected_frames, first_overlap, intervals_to_frames, read_ctm

    if fmt == "ctm":
        phone_ivs: dict = {}
        for s in sources:
            for utt, ivs in read_ctm(s).items():
                phone_ivs.setdefault(utt, []).extend(ivs)
        for ivs in phone_ivs.values():  # an utterance in several CTMs
            ivs.sort(key=lambda iv: iv.start)
        word_ivs = read_ctm(words_ctm) if words_ctm else {}
    else:
        phone_ivs, word_ivs = _gather_textgrids(sources, phone_tier, word_tier)
        if words_ctm:
            word_ivs = read_ctm(words_ctm)
    mapper = LabelMapper(lang, _read_phone_map(phone_map))
    compiler = AlignmentCompiler(tree, tm, reorder=reorder)
    text = read_text(data_dir)
    results = {}
    for utt in tqdm(sorted(num_frames), desc="import-ali", unit="utt", disable=None, leave=False):
        ivs = phone_ivs.get(utt)
        if not ivs:
            stats.exclude(utt, "no_alignment", "no phone labels for this utterance")
            continue
        overlap = first_overlap(ivs, shift / 2)  # rounded times (speed-perturbed CTMs) overlap a little
        if overlap:
            stats.exclude(utt, "overlap", overlap)
            continue
        T = num_frames[utt]
        n_exp = expected_frames(max(iv.end for iv in ivs), shift, length)
        if abs(n_exp - T) > tolerance:
            stats.exclude(utt, "length_mismatch",
                          f"labels span {n_exp} frames, features have {T} (tolerance {tolerance})")
            continue
        if n_exp != T:
            stats.c["length_fixed_within_tolerance"] += 1
        labels, lengths = intervals_to_frames(ivs, T, convention, shift, length)
        words = None
        if utt in text:
            words, n_oov = mapper.word_ids(text[utt])
            stats.c["oov_words"] += n_oov
        w_ivs = None
        if utt in word_ivs:
            w_ivs = [(iv.start, iv.end, 0) for iv in word_ivs[utt]]
        # label midpoints for word-time positions (gaps: -1); non-gap labels are ivs in order
        mid_iter = iter([(iv.start + iv.end) / 2 for iv in ivs])
        mids = [-1.0 if lab is None else next(mid_iter) for lab in labels]
        try:
            phone_ids = np.array(mapper.to_ids(labels, words, mids, w_ivs, utt), dtype=np.int64)
        except AlignmentError as e:
            stats.exclude(utt, "labels", str(e))
            continue
        phone_ids, lengths = _merge_silence(phone_ids, lengths, lang.optional_silence)
        fixed = fix_short_segments(lengths, compiler.min_length[phone_ids])
        if fixed is None:
            stats.exclude(utt, "too_short", f"{T} frames cannot hold the HMM states of its {len(phone_ids)} phones")
            continue
        lengths, n_short = fixed
        stats.c["phones_lengthened"] += n_short
        stats.c["phones"] += len(phone_ids)
        try:
            fa = compiler.compile(phone_ids, lengths, utt=utt)
        except AlignmentError as e:
            stats.exclude(utt, "model", str(e))
            continue
        results[utt] = (fa.pdfs, fa.tids, fa.phones)
    extra = set(phone_ivs) - set(num_frames)
    if extra:
        stats.c["alignments_without_features"] = len(extra)
        log.warning("%d aligned utterances have no features in %s (ignored)", len(extra), data_dir)
    return results


def _merge_silence(phones: np.ndarray, lengths: np.ndarray, sil: int):
    """Join consecutive instances of the optional-silence phone (a gap next to a SIL label)."""
    if len(phones) < 2:
        return phones, lengths
    dup = np.zeros(len(phones), dtype=bool)
    dup[1:] = (phones[1:] == sil) & (phones[:-1] == sil)
    if not dup.any():
        return phones, lengths
    group = np.cumsum(~dup) - 1
    return phones[~dup], np.bincount(group, weights=lengths).astype(np.int64)


# -- Kaldi / pdf arks -----------------------------------------------------------

def _expand_sources(sources: list[str], pattern: str) -> list[Path]:
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files.extend(sorted(p.glob(pattern), key=lambda x: (len(x.name), x.name)))
        elif p.exists():
            files.append(p)
        else:
            g = sorted(glob.glob(s))
            if not g:
                raise AlignmentError(f"{s}: no such file")
            files.extend(Path(x) for x in g)
    if not files:
        raise AlignmentError(f"no alignment files in {', '.join(sources)}")
    return files


def _iter_arks(files: list[Path]):
    seen = set()
    for f in files:
        for utt, arr in iter_int_ark(f):
            if utt in seen:
                raise FormatError(f"{f}: utterance {utt} appears twice in the alignments")
            seen.add(utt)
            yield utt, arr


def _kaldi_mdl(sources: list[str], mdl) -> Path:
    """The final.mdl of Kaldi alignments: ``mdl``, or the one next to the first alignment file
    (its tree, when there is one beside it, is the output's tree)."""
    if mdl is not None:
        return Path(mdl)
    cand = _expand_sources(sources, "ali.*")[0].parent / "final.mdl"
    if not cand.exists():
        raise ModelError("--mdl is needed (no final.mdl next to the alignments)")
    return cand


def _import_kaldi(sources, mdl, lang, tree_dir, num_frames, stats, tolerance, reorder):
    from asr.align.compile import AlignmentCompiler
    from asr.hmm.kaldi_ali import ali_to_phones, check_path, check_tids, split_to_phones
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import ContextDependency

    files = _expand_sources(sources, "ali.*")
    src_tm = TransitionModel.read(mdl)
    src_tree_path = mdl.parent / "tree"
    src_tree = ContextDependency.read(src_tree_path) if src_tree_path.exists() else None
    if tree_dir is not None:
        tree, tm = load_model(lang, tree_dir)
        compiler = AlignmentCompiler(tree, tm, reorder=reorder)
    else:
        tree, tm, compiler = src_tree, src_tm, None
    results = {}
    for utt, ali in _iter_arks(files):
        if utt not in num_frames:
            stats.c["alignments_without_features"] += 1
            continue
        try:
            ali = check_tids(src_tm, ali, utt)
        except AlignmentError as e:
            stats.exclude(utt, "bad_tid", str(e))
            continue
        try:
            check_path(src_tm, ali, utt)
        except AlignmentError as e:
            stats.exclude(utt, "not_a_path", str(e))
            continue
        T = num_frames[utt]
        if abs(len(ali) - T) > tolerance:
            stats.exclude(utt, "length_mismatch", f"alignment has {len(ali)} frames, features {T} "
                                                 f"(tolerance {tolerance})")
            continue
        if compiler is None:
            pdfs = src_tm.tid2pdf[ali]
            phones = ali_to_phones(src_tm, ali, per_frame=True, utt=utt)
            tids = ali
        else:
            ph, lens = split_to_phones(src_tm, ali, utt)
            try:
                fa = compiler.compile(ph, lens, src_tm.tid2hmm_state[ali], utt=utt)
            except AlignmentError as e:
                stats.exclude(utt, "model", str(e))
                continue
            pdfs, tids, phones = fa.pdfs, fa.tids, fa.phones
        if len(ali) != T:
            stats.c["length_fixed_within_tolerance"] += 1
            last = int(tids[-1]) if len(tids) else 0
            loop = tm.self_loop_of(int(tm.tid2tstate[last])) if last else 0
            pad_tid = loop or last
            tids = _fit_length(tids, T, pad_tid)
            pdfs = _fit_length(pdfs, T, tm.tid2pdf[pad_tid] if pad_tid else 0)
            phones = _fit_length(phones, T, phones[-1] if len(phones) else 0)
        results[utt] = (pdfs, tids, phones)
    missing = set(num_frames) - set(results) - {u for u, _ in stats.excluded}
    for utt in sorted(missing):
        stats.exclude(utt, "no_alignment", "no alignment for this utterance")
    return results, tree, tm


def _import_pdf(sources, tree_dir, num_frames, stats, tolerance):
    files = _expand_sources(sources, "*.ark*")
    tree = tm = None
    num_pdfs = None
    if tree_dir is not None:
        tree, tm = load_model(None, tree_dir)
        num_pdfs = tm.num_pdfs
    results = {}
    for utt, pdfs in _iter_arks(files):
        if utt not in num_frames:
            stats.c["alignments_without_features"] += 1
            continue
        if len(pdfs) and (pdfs.min() < 0 or (num_pdfs is not None and pdfs.max() >= num_pdfs)):
            stats.exclude(utt, "bad_pdf", f"pdf ids outside 0..{(num_pdfs or 0) - 1}")
            continue
        T = num_frames[utt]
        if abs(len(pdfs) - T) > tolerance:
            stats.exclude(utt, "length_mismatch", f"alignment has {len(pdfs)} frames, features {T} "
                                                 f"(tolerance {tolerance})")
            continue
        if len(pdfs) != T:
            stats.c["length_fixed_within_tolerance"] += 1
            pdfs = _fit_length(pdfs, T, pdfs[-1] if len(pdfs) else 0)
        results[utt] = (pdfs, None, None)
    missing = set(num_frames) - set(results) - {u for u, _ in stats.excluded}
    for utt in sorted(missing):
        stats.exclude(utt, "no_alignment", "no alignment for this utterance")
    return results, tree, tm
