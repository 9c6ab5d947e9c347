"""Flat start without GMMs (Senior et al. 2014, "GMM-free DNN training"): alignments from
transcripts alone.

    summary = flat_start("data/train", "data/lang", "exp/ali_train_flat")

``OUT`` (here ``exp/ali_train_flat``) ends up an alignment dir laid out as ``asr import-ali``'s
output (with the CD round: a tree dir, as ``asr build-tree``'s), so every later stage takes
it unchanged. The steps are directories of the work dir ``WORK`` (default ``OUT/work``); a
finished step is skipped when re-run, an interrupted training resumes from its checkpoint:

1. ``ali0``: equal alignment (``asr align-equal``, silence at the utterance edges) of the
   ``init_utts`` shortest utterances under a monophone model built from the lang dir —
   short utterances first, as Kaldi's monophone stage, because a uniform segmentation is
   least wrong on them;
2. ``mono1``: a context-independent network (monophone HMM states; ``ci_config``, a frame
   classifier) trained on ``ali0`` with ``asr train``, plain state priors with
   ``asr compute-priors``;
3. ``ali1``: Viterbi realignment of the same utterances with ``mono1``'s
   log p(s|x) − log p(s) (``asr.align.align_data``; ``nj`` jobs); then ``mono2`` on ``ali1``,
   ``ali2`` ... up to ``ali<rounds>``; then ``context_rounds`` more rounds the same way with a
   network that sees ±5 frames (``ctx_config``). The last round aligns every utterance of
   the set. Each round logs how many frames changed state;
4. ``tree``: the decision tree (``asr build-tree``, ``num_leaves``) from the last CI
   alignments;
5. ``cd``: a context-dependent network (``cd_config``) on the tree's alignments, then
   ``ali_cd``: one CD realignment round (unless ``cd_realign`` is off);
6. the last alignment dir's files are copied into ``OUT``; ``WORK/final`` is the last
   network's model dir, completed with its tree and transition model, so
   ``asr align --lang LANG --model-dir OUT/work/final DATA DIR`` aligns other data (dev, test).

``OUT/flat_start.json`` (written last: it marks a finished flat start) records every step
(counts, frames changed, training accuracy, seconds); ``WORK/log/*.log`` the output of each
command run.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asr.errors import ConfigError, TrainingError
from asr.failures import DEFAULT_MAX_FAILURES
from asr.io.atomic import atomic_write_text
from asr.workers import die_with_parent

log = logging.getLogger(__name__)

# The networks (only keys that `asr train` knows, as in conf/dnn.yaml).
# CI: a frame classifier without context (splice 0). With context a network can learn
# labels shifted against the acoustics, and a flat start then settles on shifted, blurred
# boundaries (±5 frames of context: 46 % of boundaries within 20 ms after 4 rounds on the
# synth corpus, against 72 % without context; docs/flat-start.md); like a GMM, a frame
# classifier can only move labels to where the acoustics are. Small batches: many updates
# on the small short-utterance subset.
CI_CONFIG: dict[str, Any] = {
    "model": {"family": "dnn", "splice": 0, "hidden_dim": 256, "num_layers": 3, "activation": "relu"},
    "training": {"optimizer": "adam", "lr": 0.002,
                 "schedule": {"type": "warmup_cosine", "warmup_updates": 100, "final_lr_factor": 0.05},
                 "grad_clip": 5.0, "epochs": 4, "streams": 16, "chunk": 20, "output_delay": 0, "seed": 1,
                 "cmvn": "speaker"},
}
# Context CI rounds (``context_rounds``): the same monophone targets, ±5 frames of context
# (window centred on the frame: output_delay = splice), once the frame-classifier rounds have
# put the boundaries roughly in place. On the noisy, reverberant synth corpus a frame
# classifier cannot hold good boundaries: trained on the exact CTM alignments and realigning
# with it, 70.8 % of boundaries within 20 ms; this network, 86.0 % (docs/flat-start.md).
CTX_CONFIG: dict[str, Any] = {
    "model": {"family": "dnn", "splice": 5, "hidden_dim": 384, "num_layers": 3, "activation": "relu"},
    "training": {"optimizer": "adam", "lr": 0.002,
                 "schedule": {"type": "warmup_cosine", "warmup_updates": 100, "final_lr_factor": 0.05},
                 "grad_clip": 5.0, "epochs": 4, "streams": 16, "chunk": 20, "output_delay": 5, "seed": 1,
                 "cmvn": "speaker"},
}
# CD: ±5 frames of context (window centred on the frame: output_delay = splice), trained on
# the whole set once the CI rounds have put the boundaries in place. One epoch of a 384-wide
# network aligns the synth corpus as well as two of a 512-wide one (71.2 % of boundaries
# within 20 ms) in half the time.
CD_CONFIG: dict[str, Any] = {
    "model": {"family": "dnn", "splice": 5, "hidden_dim": 384, "num_layers": 3, "activation": "relu"},
    "training": {"optimizer": "adam", "lr": 0.002,
                 "schedule": {"type": "warmup_cosine", "warmup_updates": 200, "final_lr_factor": 0.05},
                 "grad_clip": 5.0, "epochs": 1, "streams": 64, "chunk": 40, "output_delay": 5, "seed": 1,
                 "cmvn": "speaker"},
}


@dataclass
class FlatStartConfig:
    """Options of a flat start (defaults measured on the synth corpus: docs/flat-start.md)."""

    init_utts: int = 1000  # equal alignment, and the CI rounds, on this many shortest utterances
    init_originals: bool = True  # ... taken from the utterances that are not augmented copies (utt2uniq)
    copy_augmented: bool = True  # augmented copies of the same length get their source's alignment (utt2uniq)
    rescale_speed: bool = True  # ... and speed-perturbed copies (reco2aug) get it rescaled to their speed
    rounds: int = 3  # CI rounds with the frame classifier (train on the last alignments, realign)
    context_rounds: int = 2  # then CI rounds with ctx_config's network; the last round of all aligns every utterance
    silence: str = "edges"  # equal alignment's path (asr.align.equal)
    edge_silence: bool = True  # realignments: every utterance begins and ends with silence
    num_leaves: int = 1000  # leaves of the CD tree
    cd_realign: bool = True  # train a CD network and realign once with it
    nj: int = 2  # alignment jobs (one torch thread each)
    num_threads: int = 0  # torch threads for training (0: all cores)
    acoustic_scale: float = 0.1
    beam: float = 10.0
    retry_beam: float = 40.0
    map_oov: bool = False
    max_duration: float | None = None  # skip utterances longer than this (seconds); None: align all
    max_failures: float = DEFAULT_MAX_FAILURES  # a step fails when more of the utterances than this are skipped
    ci_config: dict = field(default_factory=lambda: copy.deepcopy(CI_CONFIG))
    ctx_config: dict = field(default_factory=lambda: copy.deepcopy(CTX_CONFIG))
    cd_config: dict = field(default_factory=lambda: copy.deepcopy(CD_CONFIG))


def flat_start(data_dir, lang_dir, out_dir, work_dir=None, cfg: FlatStartConfig | None = None,
               progress: bool = True, force: bool = False) -> dict:
    """Run (or resume) a flat start into the alignment dir ``out_dir`` (steps in ``work_dir``,
    default ``out_dir/work``); returns the summary written to ``out_dir/flat_start.json``
    (with ``"skipped": True`` when ``out_dir`` was up to date: made from the same data, lang
    dir and options; ``force`` redoes it, each step still skipped when up to date)."""
    from asr.align.ali_dir import INFO, REPLACEABLE, AliDir
    from asr.align.align_data import (
        FRAME_SHIFT,
        LONG_UTTERANCE_SECONDS,
        AlignConfig,
        shortest_utterances,
    )
    from asr.align.import_ali import read_num_frames
    from asr.align.transcripts import read_transcripts
    from asr.io.atomic import check_distinct_output, check_replaceable
    from asr.lang.lang_dir import LangDir

    cfg = cfg or FlatStartConfig()
    if cfg.rounds < 1:
        raise ConfigError("flat start needs at least one realignment round (--rounds >= 1)")
    if cfg.context_rounds < 0:
        raise ConfigError("--context-rounds must be >= 0")
    if cfg.init_utts < 1:
        raise ConfigError("--init-utts must be >= 1")
    data_dir, lang_dir, ali_out = Path(data_dir), Path(lang_dir), Path(out_dir)
    check_distinct_output(ali_out, data_dir, lang_dir)
    check_replaceable(ali_out, REPLACEABLE)  # not an exp/ or data dir given as OUT by mistake
    inputs = _inputs(data_dir, lang_dir, cfg)
    if not force and AliDir.up_to_date(ali_out, "flat_start", inputs) and _final_model_intact(ali_out):
        log.info("%s is up to date (a flat start from the same data, lang dir and options); skipping", ali_out)
        return dict(json.loads((ali_out / "flat_start.json").read_text()), skipped=True)
    lang = LangDir(lang_dir)
    read_transcripts(data_dir, lang, map_oov=cfg.map_oov)  # fail fast on words missing from the lexicon
    # OUT is redone: until it is sealed again it must not look finished (its steps change under it)
    (ali_out / INFO).unlink(missing_ok=True)
    exp = Path(work_dir) if work_dir else ali_out / "work"
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "log").mkdir(exist_ok=True)
    num_frames = read_num_frames(data_dir)
    t_start = time.time()
    summary: dict[str, Any] = {"data_dir": str(data_dir), "lang_dir": str(lang_dir), "utterances": len(num_frames),
                               "options": _options_json(cfg), "steps": []}
    acfg = AlignConfig(acoustic_scale=cfg.acoustic_scale, beam=cfg.beam, retry_beam=cfg.retry_beam, nj=cfg.nj,
                       silence=cfg.silence, map_oov=cfg.map_oov, max_duration=cfg.max_duration,
                       update_transitions=True, edge_silence=cfg.edge_silence)
    runner = _Runner(exp, data_dir, lang_dir, cfg, acfg, progress, summary)

    # 1. equal alignment of the shortest utterances
    short = {u: n for u, n in num_frames.items() if n * FRAME_SHIFT <= LONG_UTTERANCE_SECONDS}
    copies = _augmented_copies(data_dir)
    if cfg.init_originals and copies:  # not the augmented copies (noise, reverberation): Kaldi's
        short = {u: n for u, n in short.items() if u not in copies} or short  # mono stage trains on clean data
    runner.copies = copies if cfg.copy_augmented else {}
    if cfg.copy_augmented and cfg.rescale_speed:
        from asr.augment.data_dir import read_speed_factors

        runner.speeds = read_speed_factors(data_dir)  # used for the copies only
    init = shortest_utterances(short or num_frames, cfg.init_utts)
    runner.align("ali0", init, model_dir=None, tree_dir=None, desc="equal alignment")
    # 2-3. CI rounds on the same short utterances: train on the last alignments, realign;
    # the last CI network aligns every utterance
    # (then the context rounds, numbered on: mono5/ali5 ... with the default 4 rounds)
    prev = "ali0"
    last = cfg.rounds + cfg.context_rounds
    for k in range(1, last + 1):
        model = runner.train(f"mono{k}", prev, cfg.ci_config if k <= cfg.rounds else cfg.ctx_config)
        utts = sorted(num_frames) if k == last else init
        runner.align(f"ali{k}", utts, model_dir=model, tree_dir=exp / prev, desc=f"round {k}", prev=prev)
        prev = f"ali{k}"
    last_model = model
    # 4-5. CD tree from the CI alignments, CD network, CD realignment
    if cfg.cd_realign:
        runner.build_tree("tree", prev)
        last_model = runner.train("cd", "tree", cfg.cd_config)
        runner.align("ali_cd", sorted(num_frames), model_dir=last_model, tree_dir=exp / "tree",
                     desc="CD round", prev="tree")
        prev = "ali_cd"
    # 6. outputs: the model dir completed, OUT sealed as an alignment dir of kind flat_start
    _complete_model_dir(last_model, exp / prev)
    _link(exp / "final", last_model)
    summary["final_alignments"] = str(ali_out)
    summary["final_model"] = str(exp / "final")
    summary["seconds"] = round(time.time() - t_start, 1)
    atomic_write_text(exp / "flat_start.json", json.dumps(summary, indent=1) + "\n")
    _write_out_dir(exp / prev, ali_out, exp, inputs, summary)
    log.info("flat start done in %.0f s: alignments in %s, model dir %s", summary["seconds"], ali_out,
             exp / "final")
    return summary


def _final_model_intact(out: Path) -> bool:
    """OUT's WORK/final (when OUT holds the work dir) is still the model dir it was sealed with."""
    final = out / "work" / "final"
    return not (out / "work").is_dir() or (final / "model.yaml").is_file()


def _inputs(data_dir: Path, lang_dir: Path, cfg: FlatStartConfig) -> dict:
    """What a flat start is made from (OUT/ali_dir.json ``inputs``): transcripts, features,
    lang dir and the options that change the result."""
    from asr.io.fingerprint import feature_fingerprints, path_hash

    return {"options": _options_json(cfg), "text": path_hash(data_dir / "text"), "lang": path_hash(lang_dir),
            "features": feature_fingerprints(data_dir)}


def _write_out_dir(src: Path, out: Path, exp: Path, inputs: dict, summary: dict) -> None:
    """OUT, written at once (asr.align.ali_dir): the last step's alignment files, its
    align_stats.json and flat_start.json (the steps). A work dir inside OUT is carried over
    by hard links (it stays intact until OUT is replaced)."""
    from asr.align.ali_dir import INFO, AliDir

    with AliDir.writer(out, "flat_start", inputs) as tmp:
        for f in sorted(src.iterdir()):
            if f.is_file() and f.name != INFO:
                shutil.copyfile(f, tmp / f.name)
        atomic_write_text(tmp / "flat_start.json", json.dumps(summary, indent=1) + "\n")
        if exp.resolve().parent == out.resolve():
            shutil.copytree(exp, tmp / exp.name, symlinks=True, copy_function=os.link)


class _Runner:
    """The steps, each skipped when its output is complete; records each in the summary."""

    def __init__(self, exp: Path, data_dir: Path, lang_dir: Path, cfg: FlatStartConfig, acfg, progress: bool,
                 summary: dict):
        self.exp, self.data_dir, self.lang_dir = exp, data_dir, lang_dir
        self.cfg, self.acfg, self.progress, self.summary = cfg, acfg, progress, summary
        self.subsets: dict[frozenset, Path] = {}
        self.copies: dict[str, str] = {}  # augmented copy -> source: given the source's alignment
        self.speeds: dict[str, float] = {}  # speed-perturbed copy -> factor: the source's alignment rescaled

    def _record(self, entry: dict) -> None:
        self.summary["steps"].append(entry)
        atomic_write_text(self.exp / "flat_start.json", json.dumps(self.summary, indent=1) + "\n")

    def align(self, name: str, utts: list[str], model_dir, tree_dir, desc: str, prev: str | None = None) -> None:
        from asr.align.align_data import align_data_dir, describe_stats

        out = self.exp / name
        t0 = time.time()
        stats = align_data_dir(self.data_dir, self.lang_dir, out, tree_dir=tree_dir, model_dir=model_dir,
                               utts=utts, cfg=self.acfg, desc=desc, progress=self.progress,
                               max_failures=self.cfg.max_failures, copies=self.copies,
                               speeds=self.speeds)
        entry = {"step": name, "kind": "align", "source": "equal" if model_dir is None else str(model_dir),
                 "skipped": bool(stats.get("skipped")),
                 **{k: stats.get(k, 0) for k in ("utterances", "aligned", "copied", "rescaled", "retried", "failed", "too_short",
                                                  "no_features", "no_transcript", "long_utterances", "frames")}}
        line = f"{desc}: {describe_stats(stats)}"
        if prev is not None:
            changed = changed_frames(self.exp / prev, out)
            entry.update(changed)
            line += (f"; {changed['state_changed_percent']:.1f} % of frames changed state, "
                     f"{changed['phone_changed_percent']:.1f} % changed phone (vs {prev}, "
                     f"{changed['frames_compared']:,} frames)")
        entry["seconds"] = round(stats.get("seconds", time.time() - t0), 1)
        log.info("%s", line)
        self._record(entry)

    def train(self, name: str, ali_name: str, net_config: dict) -> Path:
        """Train a network on EXP/ali_name's pdf alignments; priors; returns its model dir."""
        import yaml

        from asr.align.ali_dir import INFO
        from asr.io.fingerprint import feature_fingerprints, file_hash

        out, ali = self.exp / name, self.exp / ali_name
        model_dir = out / "final"
        t0 = time.time()
        # what the network is made from: a finished one (.done) from the same inputs is kept;
        # a started one from other inputs is removed (its checkpoint would not fit)
        inputs = json.loads(json.dumps({"alignments": file_hash(ali / INFO), "config": net_config,
                                        "features": feature_fingerprints(self.data_dir)}))
        skipped = _read_json(out / ".done") == inputs
        if skipped:
            log.info("%s: trained on the same alignments, features and config; skipping", out)
        else:
            if out.exists() and _read_json(out / "inputs.json") != inputs:
                shutil.rmtree(out)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "inputs.json", json.dumps(inputs, indent=1) + "\n")
            data = self._data_for(ali)
            conf = self.exp / f"{name}.yaml"
            atomic_write_text(conf, yaml.safe_dump(net_config, sort_keys=False))
            num_pdfs = (ali / "num_pdfs").read_text().split()[0]
            threads = self.cfg.num_threads or os.cpu_count() or 1
            args = ["train", "--config", str(conf), "--feats", str(data), "--ali", str(ali / "ali.pdf.ark"),
                    "--num-pdfs", num_pdfs, "--out", str(out), "--num-threads", str(threads)]
            if (out / "checkpoint.pt").is_file():
                args.append("--resume")
            log.info("training %s on %s (%s pdfs; log: %s)", name, ali, num_pdfs, self.exp / "log" / f"train.{name}.log")
            run_asr(args, self.exp / "log" / f"train.{name}.log")
            # plain state frequencies: log p(s|x) - log p(s) is then the scaled likelihood the
            # realignment needs (dividing silence counts by 2.7 would favour silence everywhere)
            run_asr(["compute-priors", "--silence-factor", "1.0", "--model-dir", str(model_dir),
                     str(ali / "ali.pdf.ark")],
                    self.exp / "log" / f"priors.{name}.log")
            atomic_write_text(out / ".done", json.dumps(inputs, indent=1) + "\n")
        acc = _last_train_acc(out / "log.csv")
        log.info("%s: train frame accuracy %s (%.0f s)", name, f"{acc:.3f}" if acc is not None else "?",
                 time.time() - t0)
        self._record({"step": name, "kind": "train", "alignments": ali_name, "train_acc": acc, "skipped": skipped,
                      "seconds": round(time.time() - t0, 1)})
        return model_dir

    def build_tree(self, name: str, ali_name: str) -> None:
        """The CD tree dir (asr.align.tree_dir; left as it is when up to date)."""
        from asr.align.tree_dir import build_tree_dir

        out = self.exp / name
        t0 = time.time()
        log.info("the CD tree (%d leaves) from %s", self.cfg.num_leaves, self.exp / ali_name)
        cmvn = str((self.cfg.ci_config.get("training") or {}).get("cmvn", "speaker"))
        info = build_tree_dir(self.data_dir, self.exp / ali_name, out, self.lang_dir, num_leaves=self.cfg.num_leaves,
                              cmvn=cmvn)
        self._record({"step": name, "kind": "tree", "alignments": ali_name,
                      "num_pdfs": int((out / "num_pdfs").read_text()), "seconds": round(time.time() - t0, 1),
                      "build_seconds": info.get("total_seconds")})

    def _data_for(self, ali: Path) -> Path:
        """The data dir to train on: the whole set, or a subset dir holding just the
        utterances of ``ali`` (so training reads no other features)."""
        from asr.data.datadir import subset_data_dir
        from asr.io.int_ark import iter_int_ark
        from asr.io.tables import read_table

        utts = {u for u, _ in iter_int_ark(ali / "ali.pdf.ark")}
        if utts == set(read_table(self.data_dir / "feats.scp")):
            return self.data_dir
        return subset_data_dir(self.data_dir, self.exp / "data" / ali.name, sorted(utts))


def run_asr(args: list[str], log_path: Path) -> None:
    """Run ``asr ARGS`` in a subprocess (this checkout's package), output to ``log_path``;
    a failure raises with the log's last line."""
    import asr

    env = dict(os.environ)
    root = str(Path(asr.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "asr", *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as f:
        f.write("# " + shlex.join(["asr", *args]) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, check=False,
                            preexec_fn=die_with_parent).returncode
    if rc != 0:
        lines = [ln for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        raise TrainingError(f"`asr {args[0]}` failed (exit {rc}): {lines[-1] if lines else ''} (log: {log_path})")


def changed_frames(prev_dir: Path, new_dir: Path) -> dict:
    """Frames whose pdf (HMM state) and whose phone differ between two alignment dirs with
    the same pdfs, over the utterances in both."""
    from asr.io.int_ark import read_int_ark

    a_pdf, b_pdf = read_int_ark(prev_dir / "ali.pdf.ark"), read_int_ark(new_dir / "ali.pdf.ark")
    a_ph, b_ph = read_int_ark(prev_dir / "phones.ark"), read_int_ark(new_dir / "phones.ark")
    n = state = phone = 0
    for u in a_pdf.keys() & b_pdf.keys():
        if len(a_pdf[u]) != len(b_pdf[u]):
            continue
        n += len(a_pdf[u])
        state += int((a_pdf[u] != b_pdf[u]).sum())
        phone += int((a_ph[u] != b_ph[u]).sum())
    return {"frames_compared": n, "state_changed_percent": round(100.0 * state / max(n, 1), 2),
            "phone_changed_percent": round(100.0 * phone / max(n, 1), 2)}


def _augmented_copies(data_dir: Path) -> dict[str, str]:
    """Augmented copy -> source utterance, from DATA_DIR/utt2uniq (as asr augment-data-dir
    writes it; only sources in the data dir); empty without utt2uniq."""
    from asr.io.tables import read_table

    path = data_dir / "utt2uniq"
    if not path.is_file():
        return {}
    uniq = read_table(path)
    return {u: src for u, src in uniq.items() if u != src and src in uniq}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _last_train_acc(log_csv: Path) -> float | None:
    if not log_csv.is_file():
        return None
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return round(float(rows[-1]["train_acc"]), 4) if rows else None
    except (KeyError, ValueError):
        return None


def _options_json(cfg: FlatStartConfig) -> dict:
    d = asdict(cfg)
    d.pop("nj")  # how fast, not what: may change between runs
    d.pop("num_threads")
    d.pop("max_failures")
    for key in ("init_originals", "copy_augmented", "rescale_speed"):
        if not d[key]:  # what flat starts did before the options existed
            del d[key]
    if not d["edge_silence"]:
        del d["edge_silence"]
    if not d["context_rounds"]:  # a flat start without them is what it was before they existed
        del d["context_rounds"], d["ctx_config"]
    return d


def _complete_model_dir(model_dir: Path, ali_dir: Path) -> None:
    """The network's model dir gets the tree, the transition model (as re-estimated by its
    last alignment) and phones.txt, so `asr align --model-dir` needs nothing else."""
    for name in ("tree", "final.mdl", "phones.txt"):
        shutil.copyfile(ali_dir / name, model_dir / name)


def _link(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)
