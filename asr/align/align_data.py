"""Align a data dir's transcripts in parallel jobs, into an alignment dir.

Two sources of frame scores, one engine:

- equal alignment (``model_dir=None``): each utterance's training graph equally aligned
  to its frame count (``asr.align.equal``; Kaldi ``align-equal-compiled``), no features read;
- a network (``model_dir``): log p(s|x) − log p(s) from an acoustic model dir
  (``model.safetensors``, ``model.yaml``, ``log_priors.npy``) searched by Viterbi over the
  training graph (``asr.align.forced.ForcedAligner``: kaldi-decoder's FasterDecoder with
  ``beam``, then ``retry_beam``; an utterance that fails both is skipped and counted).

    stats = align_data_dir("data/train", "data/lang", "exp/mono_ali",
                           model_dir="exp/mono/final", tree_dir="exp/mono_ali0", cfg=AlignConfig(nj=2))

Work is cut into tasks of about ``task_frames`` frames (a job holds one task's features and
posteriors at a time: memory per job is bounded whatever the corpus size) handed to ``nj``
worker processes (fork; one torch thread each). Each task writes its transition-ids to a part
file; the parts are joined in utterance order at the end, so the parent never holds the
corpus either. One progress bar per call (stderr, on a terminal).

Output: an alignment dir (``asr.align.ali_dir.AliDir``, kind ``align``; the layout of ``asr
import-ali``, docs/contracts.md) written at once: ``ali.tid.ark``, ``ali.pdf.ark``,
``phones.ark``, ``tree``, ``final.mdl``, ``num_pdfs``, ``silence_pdfs.int``, ``phones.txt``,
``excluded.txt`` (utterance and reason per skipped utterance), ``align_stats.json`` (the
counts), ``ali_dir.json`` (last). A dir made from the same data, lang dir, tree, network and
options is left as it is (unless ``force``); more than ``max_failures`` of the utterances
skipped is an AlignmentError with nothing written (asr.failures).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr.errors import AlignmentError
from asr.failures import DEFAULT_MAX_FAILURES, Failures
from asr.io.atomic import atomic_write_text
from asr.io.int_ark import iter_int_ark, write_int_ark
from asr.workers import die_with_parent

log = logging.getLogger(__name__)

LONG_UTTERANCE_SECONDS = 30.0
FRAME_SHIFT = 0.01


@dataclass
class AlignConfig:
    """Options of a data-dir alignment (Kaldi's ``align.sh`` defaults for networks)."""

    acoustic_scale: float = 0.1  # scale of log p(s|x) - log p(s) in the search
    transition_scale: float = 1.0  # scale of the forward transition log-probabilities
    self_loop_scale: float = 0.1  # scale of the self-loop log-probabilities
    beam: float = 10.0  # first search beam
    retry_beam: float = 40.0  # second try for utterances that do not reach the final state
    nj: int = 1  # parallel jobs (processes)
    task_frames: int = 8000  # frames per task: bounds a job's memory
    map_oov: bool = False  # map words missing from the lexicon to the lang's OOV word
    max_duration: float | None = None  # skip utterances longer than this (seconds); None: align all
    seed: int = 0  # equal alignment: added to each utterance's seed
    silence: str = "edges"  # equal alignment's path: "edges" (silence at both ends) or "random" (Kaldi)
    update_transitions: bool = False  # re-estimate transition probabilities from the result (Kaldi MleUpdate)
    edge_silence: bool = False  # the path must begin and end with silence (else optional there, as in L.fst)


_JOB: dict = {}  # what the workers inherit at fork time


def align_data_dir(data_dir, lang_dir, out_dir, tree_dir=None, model_dir=None, utts=None,
                   cfg: AlignConfig | None = None, desc: str = "align", progress: bool = True,
                   max_failures: float = DEFAULT_MAX_FAILURES, force: bool = False,
                   copies: dict[str, str] | None = None, speeds: dict[str, float] | None = None) -> dict:
    """Align ``utts`` (default: every utterance with features and a transcript) of
    ``data_dir``; write the alignment dir ``out_dir`` and return its statistics (with
    ``"skipped": True`` when ``out_dir`` was up to date and left as it is).

    ``copies``: copy -> source utterance (augmented copies of the same length, e.g. with
    noise or reverberation added, as utt2uniq says): a copy whose source is aligned here gets
    the source's alignment instead of its own search, as Kaldi recipes copy the clean data's
    alignments to its reverberated copies (counted as ``copied``). ``speeds``: copy -> the
    speed factor of its audio against the source's (``asr.augment.data_dir.read_speed_factors``):
    such a copy gets the source's alignment rescaled to its own frame count, state by state
    (``asr.augment.alignments.warp_tids``, as ``asr augment-data-dir --ali-dir`` does; counted
    as ``copied`` and ``rescaled``); one the rescaling cannot fit is skipped and counted.

    ``tree_dir``: tree + final.mdl of the HMM states (default: a monophone model built from
    the lang dir, as ``asr import-ali`` without ``--tree-dir``). ``model_dir``: network
    whose scaled likelihoods drive the search; None = equal alignment."""
    from tqdm import tqdm

    from asr.align.ali_dir import REPLACEABLE, AliDir
    from asr.io.atomic import check_replaceable
    from asr.align.forced import ForcedAligner
    from asr.align.import_ali import load_model, read_num_frames
    from asr.align.transcripts import read_transcripts
    from asr.lang.lang_dir import LangDir

    cfg = cfg or AlignConfig()
    t0 = time.time()
    data_dir, out = Path(data_dir), Path(out_dir)
    if model_dir is not None and tree_dir is not None:
        _check_network_tree(Path(model_dir), Path(tree_dir))
    if model_dir is not None:
        _check_network_features(Path(model_dir), data_dir)
    check_replaceable(out, REPLACEABLE)  # before the work, not after it
    inputs = _inputs(data_dir, lang_dir, tree_dir, model_dir, utts, cfg)
    speeds = speeds or {}
    if copies:
        from asr.io.fingerprint import text_hash

        inputs["copies"] = text_hash("\n".join(f"{c} {src}" + (f" {speeds[c]:g}" if c in speeds else "")
                                               for c, src in sorted(copies.items())))
    if not force and AliDir.up_to_date(out, "align", inputs):
        log.info("%s is up to date (aligned from the same data, lang dir, model and options); skipping", out)
        return dict(json.loads((out / "align_stats.json").read_text()), skipped=True)
    lang = LangDir(lang_dir)
    tree, tm = load_model(lang, Path(tree_dir) if tree_dir else None)
    transcripts = read_transcripts(data_dir, lang, map_oov=cfg.map_oov)
    num_frames = read_num_frames(data_dir)
    stats: Counter = Counter()
    excluded: list[tuple[str, str]] = []

    def exclude(utt, key, reason):
        stats[key] += 1
        excluded.append((utt, reason))

    wanted = sorted(num_frames if utts is None else set(utts), key=lambda u: u.encode("utf-8"))
    todo = []
    for u in wanted:
        if u not in num_frames:
            exclude(u, "no_features", "no features")
        elif u not in transcripts.word_ids:
            exclude(u, "no_transcript", "empty transcript" if u in transcripts.empty else "no transcript")
        elif num_frames[u] == 0:
            exclude(u, "no_features", "0 frames")
        elif cfg.max_duration is not None and num_frames[u] * FRAME_SHIFT > cfg.max_duration:
            exclude(u, "too_long", f"{num_frames[u] * FRAME_SHIFT:.1f} s > --max-duration {cfg.max_duration:g} s")
        else:
            todo.append(u)
    copied = {}
    if copies:  # copies of utterances aligned here follow their source
        searched = set(todo)
        copied = {c: src for c, src in copies.items() if c in searched and src in searched and c != src
                  and (num_frames[c] == num_frames[src] or c in speeds)}
        todo = [u for u in todo if u not in copied]
    stats["utterances"] = len(wanted)
    stats["oov_tokens"] = sum(transcripts.oov_per_utt.get(u, 0) for u in todo)
    stats["long_utterances"] = sum(1 for u in todo if num_frames[u] * FRAME_SHIFT > LONG_UTTERANCE_SECONDS)
    tasks = _make_tasks(todo, num_frames, cfg.task_frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = out.parent / f".{out.name}.parts"  # per-task results, joined into the dir at the end
    if parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    aligner = ForcedAligner(lang, tree, tm, cfg.transition_scale, cfg.self_loop_scale, cfg.acoustic_scale,
                            cfg.beam, cfg.retry_beam, unpruned_retry=False, edge_silence=cfg.edge_silence)
    _JOB.update(aligner=aligner, words=transcripts.word_ids, num_frames=num_frames, cfg=cfg, parts=parts,
                model_dir=str(model_dir) if model_dir else None, data_dir=str(data_dir))
    nj = max(1, min(int(cfg.nj), len(tasks)))
    bar = tqdm(total=len(todo), desc=desc, unit="utt", disable=not progress, leave=False,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)
    done_parts: list[Path] = [parts / f"part.{i:06d}.ark" for i in range(len(tasks))]
    try:
        if nj == 1:
            _init_worker()
            results = map(_run_task, enumerate(tasks))
            _collect(results, stats, excluded, bar)
        else:
            with mp.get_context("fork").Pool(nj, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
                _collect(pool.imap_unordered(_run_task, enumerate(tasks)), stats, excluded, bar)
        if copied:
            warp = _Warp(tm, speeds, num_frames, data_dir) if set(copied) & set(speeds) else None
            written, unfit = _copy_alignments(done_parts, copied, parts / "copies.ark", stats, warp)
            done_parts.append(parts / "copies.ark")
            for c in sorted(set(copied) - written - set(unfit)):
                exclude(c, "failed", f"failed: its source {copied[c]} did not align")
            for c, why in sorted(unfit.items()):
                exclude(c, "failed", f"failed: its source's alignment at speed {speeds[c]:g}: {why}")
        failures = Failures(desc, len(wanted), excluded)
        failures.log(log)
        failures.check(max_failures, AlignmentError, f"{out} not written")
        stats["seconds"] = round(time.time() - t0, 2)
        summary = {k: (int(v) if not isinstance(v, float) else v) for k, v in sorted(stats.items())}
        summary["source"] = f"network {model_dir}" if model_dir else "equal alignment"
        summary["config"] = asdict(cfg)
        with AliDir.writer(out, "align", inputs) as tmp:
            write_alignment_dir(tmp, lang, tree, tm, done_parts, excluded, summary, cfg.update_transitions)
    finally:
        bar.close()
        _JOB.clear()
        shutil.rmtree(parts, ignore_errors=True)
    log.info("%s: %s", out, describe_stats(summary))
    return summary


class _Warp:
    """Rescales a source's transition-ids to a speed-perturbed copy's frame count."""

    def __init__(self, tm, speeds: dict[str, float], num_frames: dict[str, int], data_dir: Path):
        from asr.augment.alignments import self_loop_tids
        from asr.features.fbank import FbankComputer
        from asr.features.make_fbank import FEATURE_OPTIONS

        conf = data_dir / FEATURE_OPTIONS  # the frame geometry of the features (default: Kaldi's 25/10 ms)
        fbank = FbankComputer(conf if conf.is_file() else None)
        self.tm, self.speeds, self.num_frames = tm, speeds, num_frames
        self.loops = self_loop_tids(tm)
        self.geometry = {"frame_shift": fbank.frame_shift, "frame_length": fbank.frame_length}

    def __call__(self, copy: str, tids: np.ndarray) -> np.ndarray:
        from asr.augment.alignments import warp_tids

        return warp_tids(tids, self.speeds[copy], self.num_frames[copy], self.tm, self.loops, **self.geometry)


def _copy_alignments(part_files: list[Path], copied: dict[str, str], out: Path, stats: Counter,
                     warp: _Warp | None = None) -> tuple[set[str], dict[str, str]]:
    """The sources' alignments (streamed from the part files) under their copies' ids, into
    ``out`` (rescaled by ``warp`` for a copy with a speed factor); returns the copies written
    and copy -> reason for each whose rescaling failed."""
    written: set[str] = set()
    unfit: dict[str, str] = {}
    by_source: dict[str, list[str]] = {}
    for c, src in copied.items():
        by_source.setdefault(src, []).append(c)

    def items():
        for p in part_files:
            if p.exists():
                for u, t in iter_int_ark(p):
                    for c in by_source.get(u, ()):
                        if warp is not None and c in warp.speeds:
                            try:
                                t_c = warp(c, t)
                            except AlignmentError as e:
                                unfit[c] = str(e)
                                continue
                            stats["rescaled"] += 1
                        else:
                            t_c = t
                        written.add(c)
                        stats["aligned"] += 1
                        stats["copied"] += 1
                        stats["frames"] += len(t_c)
                        yield c, t_c

    write_int_ark(out, items())
    return written, unfit


def _inputs(data_dir: Path, lang_dir, tree_dir, model_dir, utts, cfg: AlignConfig) -> dict:
    """What an alignment is made from (its ali_dir.json ``inputs``): transcripts, frame counts
    (and features with a network), lang dir, tree and transition model, network, the
    utterance subset and the options that change the result (not ``nj``)."""
    from asr.io.fingerprint import feature_fingerprints, path_hash, text_hash

    options = {k: v for k, v in asdict(cfg).items() if k not in ("nj", "task_frames")}
    if not options["edge_silence"]:  # as alignments made before the option existed
        del options["edge_silence"]
    inputs = {"options": options, "text": path_hash(data_dir / "text"), "lang": path_hash(lang_dir),
              "utt2num_frames": path_hash(data_dir / "utt2num_frames"),
              "tree_dir": [path_hash(Path(tree_dir) / n) for n in ("tree", "final.mdl")] if tree_dir else None,
              "utts": None if utts is None else text_hash("\n".join(sorted(utts)))}
    if model_dir is not None:
        inputs["model"] = [path_hash(Path(model_dir) / n) for n in ("model.safetensors", "model.yaml",
                                                                     "log_priors.npy")]
        inputs["features"] = feature_fingerprints(data_dir)
    return inputs


def shortest_utterances(num_frames: dict[str, int], n: int) -> list[str]:
    """The ``n`` utterances with fewest frames (ties by id), as Kaldi's ``--shortest``."""
    return sorted(num_frames, key=lambda u: (num_frames[u], u))[: max(int(n), 0)]


def describe_stats(s: dict) -> str:
    """One line: aligned / skipped counts of an alignment run."""
    parts = [f"aligned {s.get('aligned', 0)} of {s.get('utterances', 0)} utterances"]
    if s.get("copied"):
        parts.append(f"{s['copied']} of them augmented copies given their source's alignment"
                     + (f" ({s['rescaled']} rescaled to their speed)" if s.get("rescaled") else ""))
    if s.get("retried"):
        parts.append(f"{s['retried']} after a retry with the wider beam")
    skipped = [(k, s.get(k, 0)) for k in ("failed", "too_short", "no_features", "no_transcript", "too_long")]
    parts += [f"{v} {k.replace('_', ' ')}" for k, v in skipped if v]
    if s.get("long_utterances"):
        parts.append(f"{s['long_utterances']} longer than {LONG_UTTERANCE_SECONDS:g} s")
    if s.get("oov_tokens"):
        parts.append(f"{s['oov_tokens']} OOV tokens mapped")
    return ", ".join(parts)


def write_alignment_dir(out: Path, lang, tree, tm, part_files, excluded, stats: dict, update_transitions: bool) -> None:
    """The files of an alignment dir from sorted transition-id part files (streamed)."""
    from asr.align.import_ali import write_model_files
    from asr.hmm.kaldi_ali import ali_to_phones

    def tids():
        for p in part_files:
            if p.exists():
                yield from iter_int_ark(p)

    if update_transitions:
        stats["transitions"] = tm.mle_update(tm.accumulate(t for _, t in tids()))
    write_int_ark(out / "ali.tid.ark", tids())
    write_int_ark(out / "ali.pdf.ark", ((u, tm.tid2pdf[t]) for u, t in tids()))
    write_int_ark(out / "phones.ark", ((u, ali_to_phones(tm, t, per_frame=True, utt=u)) for u, t in tids()))
    write_model_files(out, tree, tm, lang)
    excluded = sorted(excluded, key=lambda x: x[0].encode("utf-8"))
    atomic_write_text(out / "excluded.txt", "".join(f"{u} {r}\n" for u, r in excluded))
    atomic_write_text(out / "align_stats.json", json.dumps(stats, indent=1, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    raise TypeError(type(x))


def _make_tasks(utts: list[str], num_frames: dict[str, int], task_frames: int) -> list[list[str]]:
    tasks, cur, n = [], [], 0
    for u in utts:
        cur.append(u)
        n += num_frames[u]
        if n >= task_frames:
            tasks.append(cur)
            cur, n = [], 0
    if cur:
        tasks.append(cur)
    return tasks


def _collect(results, stats: Counter, excluded: list, bar) -> None:
    for counts, bad, n in results:
        stats.update(counts)
        excluded.extend(bad)
        bar.update(n)


def _check_network_tree(model_dir: Path, tree_dir: Path) -> None:
    """A network that records the tree of its training alignments (``training.alignment_tree``
    in model.yaml) aligns only with that tree: another tree's pdf ids mean other states, and
    the alignments would be wrong without any error."""
    from asr.nnet.model_dir import CONFIG, read_model_config, trained_on_another_tree

    if (model_dir / CONFIG).is_file() and trained_on_another_tree(read_model_config(model_dir), tree_dir / "tree"):
        raise AlignmentError(f"{model_dir}: the network was trained on alignments of another tree than "
                             f"{tree_dir / 'tree'} (its pdf ids mean other states): align with the tree it was "
                             f"trained with")


def _check_network_features(model_dir: Path, data_dir: Path) -> None:
    """The data dir's features are those the network was trained on (the check decoding makes:
    asr.nnet.model_dir.check_features)."""
    from asr.features.reader import FeatureReader
    from asr.nnet.model_dir import check_features, read_model_config

    def first_dim() -> int:
        reader = FeatureReader(data_dir, cmvn="none")
        if not reader.utt_ids:
            raise AlignmentError(f"{data_dir}: no utterances with features")
        return reader[reader.utt_ids[0]].shape[1]

    check_features(model_dir, read_model_config(model_dir), data_dir, first_dim)


# -- worker side --------------------------------------------------------------------

def _init_worker(parent: int | None = None) -> None:
    """Per job: one torch thread; the network, its priors and a feature reader. ``parent``: the
    pid of the process that forked the pool (a pool worker dies with it)."""
    if parent is not None:
        die_with_parent(parent)
    if _JOB.get("model_dir") is None:
        return
    import torch

    from asr.features.reader import FeatureReader
    from asr.nnet.model_dir import load_acoustic_model, read_global_cmvn

    torch.set_num_threads(1)
    model, config = load_acoustic_model(_JOB["model_dir"])
    prior_path = Path(_JOB["model_dir"]) / "log_priors.npy"
    if not prior_path.is_file():
        raise AlignmentError(f"{prior_path}: missing (run `asr compute-priors --model-dir {_JOB['model_dir']}`)")
    priors = np.load(prior_path).astype(np.float32).reshape(-1)
    num_pdfs = _JOB["aligner"].tm.num_pdfs
    if len(priors) != num_pdfs or int(config["num_pdfs"]) != num_pdfs:
        raise AlignmentError(f"{_JOB['model_dir']}: the network has {config['num_pdfs']} outputs and "
                             f"{len(priors)} priors, the tree {num_pdfs} pdfs")
    # global/online CMVN: the model dir's training stats, else the data dir's own
    global_stats = read_global_cmvn(_JOB["model_dir"])
    _JOB.update(model=model, delay=int(config.get("output_delay", 0)), priors=priors,
                reader=FeatureReader(_JOB["data_dir"], cmvn=config.get("cmvn", "speaker"), global_stats=global_stats))


def _run_task(item):
    index, utts = item
    from asr.align.equal import equal_align

    aligner, words, cfg = _JOB["aligner"], _JOB["words"], _JOB["cfg"]
    counts: Counter = Counter()
    bad: list[tuple[str, str]] = []
    done: list[tuple[str, np.ndarray]] = []
    if _JOB.get("model_dir") is None:
        if "compiler" not in _JOB:
            from asr.align.compile import AlignmentCompiler

            _JOB["compiler"] = AlignmentCompiler(aligner.tree, aligner.tm, reorder=aligner.reorder)
        for u in utts:
            try:
                done.append((u, equal_align(aligner, words[u], _JOB["num_frames"][u], u, cfg.seed, cfg.silence,
                                            _JOB["compiler"])))
            except AlignmentError as e:
                counts["too_short"] += 1
                bad.append((u, f"too_short: {e}"))
    else:
        from asr.nnet.inference import log_posteriors

        feats, ok = [], []
        for u in utts:
            try:
                feats.append(_JOB["reader"][u])
                ok.append(u)
            except Exception as e:  # noqa: BLE001 - an unreadable utterance is skipped and counted
                counts["no_features"] += 1
                bad.append((u, f"no_features: {e}"))
        posts = log_posteriors(_JOB["model"], feats, _JOB["delay"]) if feats else []
        for u, post in zip(ok, posts):
            try:
                tids, _, retry = aligner.align(post - _JOB["priors"], words[u], u)
            except AlignmentError as e:
                counts["failed"] += 1
                bad.append((u, f"failed: {e}"))
                continue
            counts["retried"] += int(retry > 0)
            done.append((u, tids))
    counts["aligned"] += len(done)
    counts["frames"] += sum(len(t) for _, t in done)
    write_int_ark(_JOB["parts"] / f"part.{index:06d}.ark", done)
    return counts, bad, len(utts)
