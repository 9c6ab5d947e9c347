"""``asr align``: Viterbi forced alignment of transcripts to per-frame log-likelihoods.

Per utterance the training graph is built as Kaldi's ``compile-train-graphs`` does:
a linear word acceptor G, composed with the lexicon ``L.fst`` (pronunciation variants and
optional silence), then with the phone context (``kaldifst.compose_context``), then each
context-dependent phone is expanded into its HMM (transition-ids as input labels, self-loops
searched without reordering, the result reordered as Kaldi's default ``--reorder=true``). Weights: ``transition_scale``·log p(transition | not self-loop) on forward
arcs plus ``self_loop_scale``·log(1 − p(loop)), ``self_loop_scale``·log p(loop) on self-loops
(Kaldi's defaults for alignment: 1.0 and 0.1). The search is kaldi-decoder's C++
``FasterDecoder`` over ``acoustic_scale``·loglik[t, pdf(tid)] (``DecodableCtc``), with a
retry at ``retry_beam`` when the final state is not reached, and a last unpruned search.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from asr.errors import AlignmentError, DataDirError, FormatError, ModelError
from asr.failures import DEFAULT_MAX_FAILURES

log = logging.getLogger(__name__)


class ForcedAligner:
    def __init__(self, lang, tree, tm, transition_scale: float = 1.0, self_loop_scale: float = 0.1,
                 acoustic_scale: float = 0.1, beam: float = 10.0, retry_beam: float = 40.0, reorder: bool = True,
                 unpruned_retry: bool = True, edge_silence: bool = False):
        import kaldifst

        self.reorder = reorder
        self.unpruned_retry = unpruned_retry  # False: fail after the retry beam (Kaldi), e.g. bad transcripts
        self.kaldifst = kaldifst
        self.lang, self.tree, self.tm = lang, tree, tm
        self.transition_scale, self.self_loop_scale = transition_scale, self_loop_scale
        self.acoustic_scale, self.beam, self.retry_beam = acoustic_scale, beam, retry_beam
        self.L = kaldifst.StdVectorFst.read(str(lang.path / "L.fst"))
        kaldifst.arcsort(self.L, sort_type="olabel")
        # edge_silence: the path must begin and end with the optional-silence phone (a phone
        # acceptor composed before L∘G); otherwise silence at the edges is optional, as in L.fst
        self.edges = self._edge_silence_acceptor() if edge_silence else None
        self._hmm_cache: dict[tuple, list] = {}
        from asr.align.compile import AlignmentCompiler

        self._tid_table = AlignmentCompiler(tree, tm).tid_table

    # -- graph -------------------------------------------------------------------
    def _edge_silence_acceptor(self):
        """Phone sequences that begin and end with the optional-silence phone. States: 0
        start, 1 after a non-silence phone, 2 (final) after silence."""
        sil = self.lang.optional_silence
        phones = sorted(p for p in self.lang.phone_names if p > 0)
        lines = [f"0 2 {sil} {sil}"]
        for p in phones:
            dst = 2 if p == sil else 1
            lines += [f"1 {dst} {p} {p}", f"2 {dst} {p} {p}"]
        fst = self.kaldifst.compile("\n".join(lines + ["2"]) + "\n", acceptor=False)
        self.kaldifst.arcsort(fst, sort_type="olabel")
        return fst

    def _hmm_arcs(self, window: tuple[int, ...]):
        """Arcs (from_state, to_state, tid, cost) of the HMM of ``window``'s central phone;
        state -1 = entry is 0, len(entry)-1 = exit."""
        arcs = self._hmm_cache.get(window)
        if arcs is not None:
            return arcs
        tm, tree = self.tm, self.tree
        phone = window[tree.central_position]
        entry = tm.topo.topology_for_phone(phone)
        arcs = []
        for j, st in enumerate(entry[:-1]):
            fpdf = tree.compute(window, st.forward_pdf_class)
            lpdf = tree.compute(window, st.self_loop_pdf_class)
            if fpdf is None or lpdf is None:
                raise AlignmentError(f"the tree has no pdf for phone window {list(window)} state {j}")
            tstate = tm.tuple_to_tstate(phone, j, fpdf, lpdf)
            loop_tid = int(self._tid_table[tstate, j])
            log_loop = float(tm.log_probs[loop_tid]) if loop_tid else None
            log_nonloop = math.log(max(1.0 - math.exp(log_loop), 1e-10)) if loop_tid else 0.0
            for dst, _ in st.transitions:
                tid = int(self._tid_table[tstate, dst])
                if dst == j:
                    cost = -self.self_loop_scale * log_loop
                else:
                    cost = -(self.transition_scale * (float(tm.log_probs[tid]) - log_nonloop)
                             + self.self_loop_scale * log_nonloop)
                arcs.append((j, dst, tid, cost))
        self._hmm_cache[window] = arcs
        return arcs

    def graph(self, word_ids: list[int]):
        """The utterance's training graph (words out) and the transition-ids it uses: input
        label k stands for transition-id ``tids[k - 1]`` (a compact relabelling, so the
        decodable needs one column per transition-id of this utterance only)."""
        kf = self.kaldifst
        g = "".join(f"{i} {i + 1} {w} {w}\n" for i, w in enumerate(word_ids)) + f"{len(word_ids)}\n"
        G = kf.compile(g, acceptor=False)
        LG = kf.compose(self.L, G, connect=True)
        if self.edges is not None:
            LG = kf.compose(self.edges, LG, connect=True)
        CLG, ilabels = kf.compose_context([], self.tree.context_width, self.tree.central_position, LG)
        n = CLG.num_states
        lines, finals = [], []
        next_state = n
        compact: dict[int, int] = {}
        for s in range(n):
            fw = CLG.final(s).value
            if math.isfinite(fw):
                finals.append(f"{s} {fw:.6g}")
            for arc in kf.ArcIterator(CLG, s):
                w = arc.weight.value
                if arc.ilabel == 0:
                    lines.append(f"{s} {arc.nextstate} 0 {arc.olabel} {w:.6g}")
                    continue
                window = tuple(int(p) for p in ilabels[arc.ilabel])
                if len(window) != self.tree.context_width:
                    raise AlignmentError(f"unexpected context window {list(window)} in the training graph")
                hmm = self._hmm_arcs(window)
                num_states = len(self.tm.topo.topology_for_phone(window[self.tree.central_position]))
                ids = {0: next_state}
                for j in range(1, num_states - 1):
                    ids[j] = next_state + j
                ids[num_states - 1] = arc.nextstate
                next_state += num_states - 1
                lines.append(f"{s} {ids[0]} 0 {arc.olabel} {w:.6g}")
                for a, b, tid, cost in hmm:
                    label = compact.setdefault(tid, len(compact) + 1)
                    lines.append(f"{ids[a]} {ids[b]} {label} 0 {cost:.6g}")
        if CLG.start < 0:
            raise AlignmentError("empty training graph (transcript words not in L.fst?)")
        # the compiler numbers states in order of appearance: put the start state first
        start_lines = [ln for ln in lines if ln.split(" ", 1)[0] == str(CLG.start)]
        other = [ln for ln in lines if ln.split(" ", 1)[0] != str(CLG.start)]
        text = "\n".join(start_lines + other + finals) + "\n"
        tids = np.zeros(len(compact), dtype=np.int32)
        for tid, label in compact.items():
            tids[label - 1] = tid
        return kf.compile(text, acceptor=False, keep_state_numbering=True), tids

    # -- search ------------------------------------------------------------------
    def align(self, loglik: np.ndarray, word_ids: list[int], utt: str = "?") -> tuple[np.ndarray, float, bool]:
        """Best transition-id sequence; returns (tids, total cost, retries: 0 = first beam,
        1 = retry beam, 2 = unpruned search)."""
        import kaldi_decoder
        import kaldifst

        if loglik.ndim != 2 or loglik.shape[1] != self.tm.num_pdfs:
            raise AlignmentError(f"utterance {utt}: log-likelihood matrix {loglik.shape} does not have one column "
                                 f"per pdf of the model ({self.tm.num_pdfs})")
        hclg, graph_tids = self.graph(word_ids)
        mat = np.ascontiguousarray(self.acoustic_scale * loglik[:, self.tm.tid2pdf[graph_tids]], dtype=np.float32)
        # the last try is an unpruned Viterbi search (the graph of one utterance is small)
        beams = (self.beam, self.retry_beam, 1e9) if self.unpruned_retry else (self.beam, self.retry_beam)
        for retry, beam in enumerate(beams):
            opts = kaldi_decoder.FasterDecoderOptions(beam=beam, max_active=1 << 30)
            dec = kaldi_decoder.FasterDecoder(hclg, opts)
            dec.decode(kaldi_decoder.DecodableCtc(mat))
            if dec.reached_final():
                ok, best = dec.get_best_path()
                ok2, isyms, _, weight = kaldifst.get_linear_symbol_sequence(best)
                tids = graph_tids[np.array(isyms, dtype=np.int64) - 1]
                if len(tids) != len(loglik):
                    raise AlignmentError(f"utterance {utt}: best path has {len(tids)} frames, expected {len(loglik)}")
                if self.reorder:
                    from asr.hmm.kaldi_ali import reorder_alignment

                    tids = reorder_alignment(self.tm, tids)
                cost = float(weight.value1 + weight.value2) if hasattr(weight, "value1") else float("nan")
                return tids, cost, retry
        what = "" if self.unpruned_retry else f" within beam {self.retry_beam:g}"
        raise AlignmentError(f"utterance {utt}: no path through the transcript's graph fits its "
                             f"{len(loglik)} frames{what} (too few frames, or wrong transcript?)")


def read_matrices(path: str | os.PathLike):
    """Kaldi matrix archive (``.ark``, ``.scp``; an ``ark:``/``scp:`` prefix is allowed)."""
    import kaldiio

    s = str(path)
    if s.startswith(("ark:", "scp:")):
        kind, s = s.split(":", 1)
    else:
        kind = "scp" if s.endswith(".scp") else "ark"
    if not Path(s).exists():
        raise FormatError(f"{s}: no such file")
    try:
        if kind == "scp":
            for k, v in kaldiio.load_scp(s).items():
                yield k, np.asarray(v, dtype=np.float32)
        else:
            for k, v in kaldiio.load_ark(s):
                yield k, np.asarray(v, dtype=np.float32)
    except (ValueError, OSError) as e:
        raise FormatError(f"{s}: cannot read Kaldi matrices: {e}") from None


def align_dir(data_dir, loglikes, out_dir, lang_dir, tree_dir, acoustic_scale: float = 0.1, beam: float = 10.0,
              retry_beam: float = 40.0, transition_scale: float = 1.0, self_loop_scale: float = 0.1,
              log_priors: str | os.PathLike | None = None, max_failures: float = DEFAULT_MAX_FAILURES,
              force: bool = False) -> dict:
    """Align DATA_DIR/text to the per-frame log-likelihoods ``loglikes`` into the alignment dir
    ``out_dir`` (asr.align.ali_dir, written at once); returns align_stats.json's counts.
    Utterances that fail are excluded and counted (more than ``max_failures``: AlignmentError,
    nothing written). Left as it is when made from the same inputs and options, unless ``force``."""
    import json

    from asr.align.ali_dir import PDF_ARK, PHONE_ARK, TID_ARK, AliDir
    from asr.failures import Failures
    from asr.io.fingerprint import path_hash

    from tqdm import tqdm

    from asr.align.import_ali import load_model, read_num_frames, read_text, write_model_files
    from asr.hmm.kaldi_ali import ali_to_phones
    from asr.align.labels import LabelMapper
    from asr.io.atomic import atomic_write_text
    from asr.io.int_ark import write_int_ark
    from asr.lang.lang_dir import LangDir

    data_dir, out = Path(data_dir), Path(out_dir)
    options = {"acoustic_scale": acoustic_scale, "beam": beam, "retry_beam": retry_beam,
               "transition_scale": transition_scale, "self_loop_scale": self_loop_scale}
    ll_path = str(loglikes).split(":", 1)[1] if str(loglikes).startswith(("ark:", "scp:")) else str(loglikes)
    inputs = {"options": options, "loglikes": path_hash(ll_path), "log_priors": path_hash(log_priors),
              "lang": path_hash(lang_dir), "tree_dir": [path_hash(Path(tree_dir) / n) for n in ("tree", "final.mdl")]
              if tree_dir else None, "text": path_hash(data_dir / "text"),
              "utt2num_frames": path_hash(data_dir / "utt2num_frames")}
    if not force and AliDir.up_to_date(out, "align", inputs):
        log.info("%s is up to date (aligned from the same log-likelihoods, transcripts and model); skipping", out)
        return json.loads((out / "align_stats.json").read_text())
    lang = LangDir(lang_dir)
    tree, tm = load_model(lang, Path(tree_dir) if tree_dir else None)
    aligner = ForcedAligner(lang, tree, tm, transition_scale, self_loop_scale, acoustic_scale, beam, retry_beam)
    text = read_text(data_dir)
    if not text:
        raise AlignmentError(f"{data_dir}/text: missing or empty (forced alignment needs transcripts)")
    try:
        num_frames = read_num_frames(data_dir)
    except DataDirError:  # neither utt2num_frames nor feats.scp: frame counts are only a check here
        num_frames = {}
    mapper = LabelMapper(lang)
    prior = None
    if log_priors is not None:  # the matrices are log posteriors: subtract log p(s)
        prior = _read_log_priors(log_priors, tm.num_pdfs)
    results, excluded = {}, []
    stats = {"utterances": 0, "aligned": 0, "retried": 0, "unpruned": 0, "oov_words": 0, "failed": 0, "no_transcript": 0,
             "no_loglikes": 0, "frames": 0, "length_mismatch": 0}
    seen = set()
    for utt, ll in tqdm(read_matrices(loglikes), desc="align", unit="utt", disable=None, leave=False):
        stats["utterances"] += 1
        seen.add(utt)
        if ll.ndim != 2 or ll.shape[1] != tm.num_pdfs:  # another model's log-likelihoods: nothing aligns right
            raise AlignmentError(f"{ll_path}: utterance {utt}: {ll.shape[-1]} columns, but the model has "
                                 f"{tm.num_pdfs} pdfs (log-likelihoods of another model?)")
        if utt not in text:
            stats["no_transcript"] += 1
            excluded.append((utt, "no transcript"))
            continue
        if utt in num_frames and abs(num_frames[utt] - len(ll)) > 0:
            stats["length_mismatch"] += 1
            excluded.append((utt, f"{len(ll)} log-likelihood rows but {num_frames[utt]} feature frames"))
            continue
        if prior is not None:
            ll = ll - prior
        words, n_oov = mapper.word_ids(text[utt])
        stats["oov_words"] += n_oov
        try:
            tids, _, retried = aligner.align(ll, words, utt)
        except AlignmentError as e:
            stats["failed"] += 1
            excluded.append((utt, str(e)))
            if stats["failed"] <= 20:
                log.warning("%s", e)
            continue
        stats["retried"] += int(retried >= 1)
        stats["unpruned"] += int(retried == 2)
        results[utt] = tids
        stats["aligned"] += 1
        stats["frames"] += len(tids)
    for utt in sorted(set(text) - seen, key=lambda u: u.encode("utf-8")):
        stats["utterances"] += 1
        stats["no_loglikes"] += 1
        excluded.append((utt, f"no log-likelihoods in {ll_path}"))
    utts = sorted(results, key=lambda u: u.encode("utf-8"))
    failures = Failures("align", stats["utterances"], excluded)
    failures.check(max_failures, AlignmentError, f"{out} not written")
    with AliDir.writer(out, "align", inputs) as tmp:
        write_int_ark(tmp / TID_ARK, ((u, results[u]) for u in utts))
        write_int_ark(tmp / PDF_ARK, ((u, tm.tid2pdf[results[u]]) for u in utts))
        write_int_ark(tmp / PHONE_ARK, ((u, ali_to_phones(tm, results[u], per_frame=True)) for u in utts))
        write_model_files(tmp, tree, tm, lang)
        atomic_write_text(tmp / "excluded.txt", "".join(f"{u} {r}\n" for u, r in excluded))
        atomic_write_text(tmp / "align_stats.json", json.dumps(stats, indent=1) + "\n")
    log.info("%s (%d retried with beam %g, %d of them unpruned)", failures.summary(), stats["retried"], retry_beam,
             stats["unpruned"])
    return stats


def _read_log_priors(path, num_pdfs: int) -> np.ndarray:
    """A model dir's log_priors.npy or a text vector, as float32 [num_pdfs]."""
    if str(path).endswith(".npy"):
        from asr.nnet.model_dir import read_priors

        try:
            return read_priors(path, num_pdfs)
        except ModelError as e:
            raise AlignmentError(str(e)) from None
    try:
        prior = np.loadtxt(path, dtype=np.float32).reshape(-1)
    except (OSError, ValueError) as e:
        raise AlignmentError(f"{path}: not a text vector of log priors ({type(e).__name__})") from None
    if len(prior) != num_pdfs:
        raise AlignmentError(f"{path}: {len(prior)} log-priors for {num_pdfs} pdfs")
    return prior
