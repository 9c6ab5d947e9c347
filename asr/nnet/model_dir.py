"""The model dir: a self-contained acoustic model, everything decoding needs
(``asr transcribe``, ``asr decode``, ``asr serve``).

Files::

    model.safetensors  network weights
    model.yaml         model (family config), num_inputs, num_pdfs, output_delay, cmvn,
                       fbank (EVERY fbank option, Kaldi names: sample-frequency, num-mel-bins,
                       frame-length, frame-shift, dither, ...), fingerprints (SHA-256 of every
                       other file of the dir, by relative path), sizes (their byte sizes), plus
                       what the trainer adds (training summary; ``training.alignment_tree``:
                       SHA-256 of the tree of the training alignments, which packing checks;
                       ``training.fbank``: the training features' fbank options, which packing,
                       decoding and alignment check)
    log_priors.npy     float32 [num_pdfs]
    tree, final.mdl    the context-dependency tree and transition model (Kaldi formats)
    phones.txt words.txt
    fbank.conf         the same fbank options as a Kaldi option file
    graph/             optional graph dir (asr.graph.graph_dir): HCLG.fst, words.txt, ...
    global_cmvn.stats  the training data's global CMVN stats (Kaldi 2 x (D+1) matrix): required
                       when cmvn is "global" or "online" (the stats those modes normalise with),
                       else optional (the prior of streaming recognition's online CMVN)
    lm/first_pass.arpa lm/rescore.arpa   optional LMs (``.arpa.gz`` when given gzipped; files
                       over 64 MiB are hard-linked when possible, not copied)

Two stages write it: the trainer writes the network part (``save_model_dir``: weights and
model.yaml without fbank/fingerprints), then ``ModelDir.pack`` (``asr pack-model-dir``)
assembles the complete dir from the network, priors, tree dir, lang dir, feature options,
graph and LMs, checking that they fit together, and writes it atomically (packing in place
is fine). ``ModelDir.load`` accepts only a complete dir whose files still have the recorded
fingerprints; errors are one line naming the file.

Example::

    >>> md = ModelDir.load("exp/lstmp/final")
    >>> md.num_pdfs, md.cmvn, md.fbank["num-mel-bins"]
    (1500, 'speaker', '40')
    >>> fbank = md.fbank_computer()          # the training features' options
    >>> model, cfg = load_acoustic_model(md.path)
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from asr.errors import AsrError, ModelError
from asr.features.reader import CMVN_MODES, GLOBAL_STATS_MODES
from asr.io.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
CONFIG = "model.yaml"
PRIORS = "log_priors.npy"
TREE = "tree"
MDL = "final.mdl"
PHONES = "phones.txt"
WORDS = "words.txt"
FBANK_CONF = "fbank.conf"
GRAPH = "graph"
FIRST_PASS_LM = "lm/first_pass.arpa"
RESCORE_LM = "lm/rescore.arpa"
GLOBAL_CMVN = "global_cmvn.stats"
REQUIRED = (WEIGHTS, PRIORS, TREE, MDL, PHONES, WORDS, FBANK_CONF)
PACKED_KEYS = ("fbank", "fingerprints", "sizes")  # what pack adds to the trainer's model.yaml
# ... and the SHA-256 of model.yaml's own settings (output_delay, cmvn, fbank, ...), checked on
# load when present (model dirs packed before it have none): an edited setting gives wrong
# times or words, not an error
CONFIG_FINGERPRINT = "config_fingerprint"


@dataclass
class ModelDir:
    path: Path
    config: dict[str, Any]  # model.yaml

    @property
    def num_pdfs(self) -> int:
        return int(self.config["num_pdfs"])

    @property
    def num_inputs(self) -> int:
        return int(self.config["num_inputs"])

    @property
    def output_delay(self) -> int:
        return int(self.config.get("output_delay", 0))

    @property
    def cmvn(self) -> str:
        return str(self.config.get("cmvn", "speaker"))

    @property
    def fbank(self) -> dict[str, str]:
        """Every fbank option (Kaldi names -> string values)."""
        return dict(self.config["fbank"])

    @property
    def fingerprints(self) -> dict[str, str]:
        return dict(self.config["fingerprints"])

    @property
    def graph_dir(self) -> Path | None:
        """The model's own graph dir, or None when packed without one."""
        return self.path / GRAPH if (self.path / GRAPH / "HCLG.fst").is_file() else None

    def file(self, name: str) -> Path:
        return self.path / name

    def lm(self, name: str) -> Path | None:
        """``FIRST_PASS_LM`` or ``RESCORE_LM`` (or its ``.gz``) when the dir has it."""
        for p in (self.path / name, self.path / f"{name}.gz"):
            if p.is_file():
                return p
        return None

    def fbank_computer(self):
        from asr.features.fbank import FbankComputer

        return FbankComputer.from_options(self.fbank)

    def log_priors(self):
        return read_priors(self.path / PRIORS, self.num_pdfs)

    def global_cmvn_stats(self):
        """The training data's global CMVN stats (float64 [2, D+1]), or None when not packed."""
        return read_global_cmvn(self.path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelDir":
        """A complete, unchanged model dir (ModelError naming the missing/bad/changed file).
        Files up to 64 MiB are re-hashed, larger ones (big LMs, graphs) compared by size."""
        from asr.io.fingerprint import unchanged

        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"{path}: no such model dir")
        cfg = read_model_config(path)
        for key in PACKED_KEYS:
            if not isinstance(cfg.get(key), dict) or not cfg[key]:
                raise ModelError(f"{path}: not a complete model dir ({CONFIG} has no {key}: section; "
                                 f"assemble it with asr pack-model-dir)")
        for name in REQUIRED:
            if not (path / name).is_file():
                raise ModelError(f"{path}: incomplete model dir: missing {name}")
        sizes = cfg["sizes"]
        for name, digest in cfg["fingerprints"].items():
            f = path / name
            if not f.is_file():
                raise ModelError(f"{path}: incomplete model dir: missing {name}")
            if not unchanged(f, digest, sizes.get(name)):
                raise ModelError(f"{f} was changed after the model dir was packed (its SHA-256 differs "
                                 f"from {path / CONFIG}); re-run asr pack-model-dir")
        recorded = cfg.get(CONFIG_FINGERPRINT)
        if recorded is not None and recorded != _config_fingerprint(cfg):
            raise ModelError(f"{path / CONFIG} was edited after the model dir was packed (its settings differ from "
                             f"its {CONFIG_FINGERPRINT}); re-run asr pack-model-dir")
        md = cls(path, cfg)
        _check_fbank(md.fbank, md.num_inputs, str(path / CONFIG))
        if md.cmvn in GLOBAL_STATS_MODES and GLOBAL_CMVN not in md.fingerprints:
            raise ModelError(f"{path}: cmvn {md.cmvn} needs the training data's {GLOBAL_CMVN} "
                             f"(re-pack with asr pack-model-dir --global-cmvn)")
        return md

    @classmethod
    def pack(cls, out: str | os.PathLike, network: str | os.PathLike, tree_dir: str | os.PathLike,
             lang_dir: str | os.PathLike, fbank: dict[str, str], priors: str | os.PathLike | None = None,
             graph_dir: str | os.PathLike | None = None, first_pass_lm: str | os.PathLike | None = None,
             rescore_lm: str | os.PathLike | None = None, global_cmvn: str | os.PathLike | None = None,
             force: bool = False) -> "ModelDir":
        """Assemble (atomically) the model dir ``out`` from the network dir ``network`` (weights +
        model.yaml of the trainer; may be ``out`` itself), priors (default NETWORK/log_priors.npy),
        ``tree_dir`` (tree, final.mdl), ``lang_dir`` (phones.txt, words.txt), ``fbank`` options
        (Kaldi names), an optional graph dir, LMs and global CMVN stats. Checks: priors, tree, transition model and
        network agree on the number of pdfs; the fbank options give the network's input
        dimension; the graph was built from this tree / transition model / phones.txt / words.txt.
        Skips the work (returns the loaded dir) when ``out`` is complete and holds exactly
        these inputs, unless ``force``."""
        from asr.features.fbank import FbankComputer

        network, tree_dir, lang_dir = Path(network), Path(tree_dir), Path(lang_dir)
        priors = Path(priors) if priors is not None else network / PRIORS
        net_cfg = {k: v for k, v in read_model_config(network).items() if k not in _PACK_ADDED}
        num_pdfs, num_inputs = int(net_cfg["num_pdfs"]), int(net_cfg["num_inputs"])
        sources = {WEIGHTS: network / WEIGHTS, PRIORS: priors, TREE: tree_dir / TREE, MDL: tree_dir / MDL,
                   PHONES: lang_dir / PHONES, WORDS: lang_dir / WORDS}
        for name, lm in ((FIRST_PASS_LM, first_pass_lm), (RESCORE_LM, rescore_lm)):
            if lm is not None:
                sources[name + (".gz" if str(lm).endswith(".gz") else "")] = Path(lm)
        if global_cmvn is not None:
            sources[GLOBAL_CMVN] = Path(global_cmvn)
        elif net_cfg.get("cmvn") in GLOBAL_STATS_MODES:
            raise ModelError(f"cannot pack {out}: the network was trained with cmvn {net_cfg['cmvn']}: give the "
                             f"training data's global CMVN stats (--global-cmvn DATA/{GLOBAL_CMVN})")
        for name, src in sources.items():
            if not src.is_file():
                raise ModelError(f"cannot pack {out}: missing {src}")
        if global_cmvn is not None:
            _check_cmvn_stats(Path(global_cmvn), num_inputs)
        try:
            fbank_opts = FbankComputer.from_options(fbank).all_options
        except AsrError as e:
            raise ModelError(f"cannot pack {out}: fbank options: {e}") from None
        _check_fbank(fbank_opts, num_inputs, "the fbank options")
        recorded = ((net_cfg.get("training") or {}).get("fbank"))
        if recorded:
            from asr.features.make_fbank import feature_option_differences

            diff = feature_option_differences(fbank_opts, recorded)
            if diff:
                raise ModelError(f"cannot pack {out}: the fbank options differ from those the network was trained "
                                 f"with ({network / CONFIG} training.fbank): {diff}")
        load_acoustic_model(network)  # the weights load into the network model.yaml describes
        read_priors(priors, num_pdfs)
        _check_tree(tree_dir, num_pdfs, network, net_cfg)
        if graph_dir is not None:
            from asr.graph.graph_dir import GraphDir

            g = GraphDir.load(graph_dir)
            log.info(g.check_model(tree_dir / TREE, tree_dir / MDL, lang_dir / PHONES))
            _same_file(g.words, lang_dir / WORDS, "the graph's word table")
            for p in sorted(Path(graph_dir).rglob("*")):
                if p.is_file():
                    sources[f"{GRAPH}/{p.relative_to(graph_dir).as_posix()}"] = p
        fbank_text = "".join(f"--{k}={v}\n" for k, v in fbank_opts.items())
        wanted = _source_fingerprints(sources, fbank_text)
        if not force:
            current = _try_load(Path(out))
            if current is not None and current.fingerprints == wanted and current.fbank == fbank_opts and \
                    {k: v for k, v in current.config.items() if k not in _PACK_ADDED} == net_cfg:
                log.info("%s is up to date (packed from the same network, priors, tree, tables, graph, LMs and "
                         "fbank options); skipping", out)
                return current
        import yaml

        with _atomic_dir(out) as tmp:
            for name, src in sources.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(src, tmp / name)
            atomic_write_text(tmp / FBANK_CONF, fbank_text)
            sizes = {name: (tmp / name).stat().st_size for name in wanted}
            cfg = dict(net_cfg, fbank=fbank_opts, fingerprints=wanted, sizes=sizes)
            cfg[CONFIG_FINGERPRINT] = _config_fingerprint(cfg)
            atomic_write_text(tmp / CONFIG, yaml.safe_dump(cfg, sort_keys=False))
        md = cls.load(out)
        log.info("packed model dir %s: %d inputs (%s mel bins, %s Hz), %d pdfs, cmvn %s%s%s", out, md.num_inputs,
                 fbank_opts["num-mel-bins"], fbank_opts["sample-frequency"], md.num_pdfs, md.cmvn,
                 ", graph" if graph_dir is not None else "", ", LMs" if (first_pass_lm or rescore_lm) else "")
        return md


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link for big files (LMs and graphs of gigabytes; every writer of the toolkit
    replaces files by renaming, so a link never changes under the model dir), else a copy."""
    from asr.io.fingerprint import FULL_CHECK_BYTES

    if src.stat().st_size > FULL_CHECK_BYTES:
        try:
            os.link(src.resolve(), dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def _atomic_dir(out):
    from asr.io.atomic import atomic_dir

    return atomic_dir(out, replaces=(WEIGHTS, CONFIG))


_PACK_ADDED = PACKED_KEYS + (CONFIG_FINGERPRINT,)


def _config_fingerprint(cfg: dict) -> str:
    """SHA-256 of a model.yaml's settings: all but the file fingerprints, sizes and itself."""
    import json

    from asr.io.fingerprint import text_hash

    keep = {k: v for k, v in cfg.items() if k not in ("fingerprints", "sizes", CONFIG_FINGERPRINT)}
    return text_hash(json.dumps(keep, sort_keys=True, default=str))


def _source_fingerprints(sources: dict[str, Path], fbank_text: str) -> dict[str, str]:
    from asr.io.fingerprint import file_hash, text_hash

    fp = {name: file_hash(src) for name, src in sources.items()}
    fp[FBANK_CONF] = text_hash(fbank_text)
    return dict(sorted(fp.items()))


def _try_load(path: Path) -> "ModelDir | None":
    if not path.is_dir():
        return None
    try:
        return ModelDir.load(path)
    except AsrError:
        return None


def _same_file(a: Path, b: Path, what: str) -> None:
    from asr.io.fingerprint import file_hash

    if file_hash(a) != file_hash(b):
        raise ModelError(f"{what} {a} differs from {b}: the graph was built with another lang dir")


def _check_fbank(options: dict[str, str], num_inputs: int, source: str) -> None:
    from asr.features.fbank import FbankComputer

    try:
        dim = FbankComputer.from_options({str(k): str(v) for k, v in options.items()}).dim
    except AsrError as e:
        raise ModelError(f"{source}: fbank options: {e}") from None
    if dim != num_inputs:
        raise ModelError(f"{source}: fbank options give {dim}-dim features but the network takes {num_inputs} inputs")


def trained_fbank(config: dict) -> dict[str, str] | None:
    """The fbank options of the features the network was trained on: a packed dir's ``fbank``,
    else what ``asr train`` records (``training.fbank``, from the --feats dir's fbank.conf);
    None when neither is recorded."""
    return (config or {}).get("fbank") or ((config or {}).get("training") or {}).get("fbank") or None


def check_features(model_dir: str | os.PathLike, config: dict, data_dir: str | os.PathLike,
                   feat_dim: Callable[[], int]) -> None:
    """Refuse a data dir whose features were computed with other options (DATA_DIR/fbank.conf,
    written by asr make-fbank) than those the network was trained on (``trained_fbank``), or,
    without either record, features of another dimension (``feat_dim()``: that of the data's
    first utterance). Dither may differ (``feature_option_differences``). Used by decoding
    and by alignment with a network."""
    from asr.errors import FeatureError
    from asr.features.fbank import FbankComputer
    from asr.features.make_fbank import FEATURE_OPTIONS, feature_option_differences

    conf = Path(data_dir) / FEATURE_OPTIONS
    trained = trained_fbank(config)
    if conf.is_file() and trained is not None:
        diff = feature_option_differences(FbankComputer(conf).all_options, trained)
        if diff:
            raise FeatureError(f"{conf} differs from the features the model was trained on "
                               f"({Path(model_dir) / CONFIG}): {diff}")
        return
    dim, num_inputs = feat_dim(), int(config["num_inputs"])
    if dim != num_inputs:
        raise FeatureError(f"{data_dir}/feats.scp has {dim}-dim features, the model {model_dir} takes {num_inputs}")
    log.info("%s: %s: only the feature dimension (%d) was checked against the model", data_dir,
             f"no {FEATURE_OPTIONS} (features not made by asr make-fbank)" if trained is not None
             else "the model records no fbank options", dim)


def alignment_tree_of(config: dict) -> str | None:
    """SHA-256 of the tree of the network's training alignments, as ``asr train`` records it
    in model.yaml (``training.alignment_tree``); None when not recorded."""
    return ((config or {}).get("training") or {}).get("alignment_tree")


def trained_on_another_tree(config: dict, tree_file: str | os.PathLike) -> bool:
    """True when the network's model.yaml (``config``) records the tree of its training
    alignments and ``tree_file`` is another one (its pdf ids mean other states); False when
    it is the same, or nothing is recorded, or there is no such file."""
    from asr.io.fingerprint import file_hash

    recorded = alignment_tree_of(config)
    return bool(recorded) and Path(tree_file).is_file() and file_hash(tree_file) != recorded


def _check_tree(tree_dir: Path, num_pdfs: int, network: Path, net_cfg: dict) -> None:
    """The tree and transition model have the network's pdfs; when the network records the
    tree of its training alignments (``training.alignment_tree``), it is this tree."""
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import ContextDependency

    if trained_on_another_tree(net_cfg, tree_dir / TREE):
        raise ModelError(f"the network {network} was trained on alignments of another tree than {tree_dir / TREE} "
                         f"(its pdf ids mean other states): retrain it on the alignments of {tree_dir}")

    tree = ContextDependency.read(tree_dir / TREE)
    tm = TransitionModel.read(tree_dir / MDL)
    if not tree.num_pdfs == tm.num_pdfs == num_pdfs:
        raise ModelError(f"pdf counts differ: {tree_dir / TREE} {tree.num_pdfs}, {tree_dir / MDL} {tm.num_pdfs}, "
                         f"network {network / CONFIG} {num_pdfs}")


def _check_cmvn_stats(path: Path, num_inputs: int) -> None:
    import kaldiio

    try:
        shape = kaldiio.load_mat(str(path)).shape
    except Exception as e:  # noqa: BLE001 - kaldiio raises ValueError/OSError/struct errors
        raise ModelError(f"{path}: not a Kaldi CMVN stats matrix ({type(e).__name__})") from None
    if shape != (2, num_inputs + 1):
        raise ModelError(f"{path}: CMVN stats of shape {list(shape)}, the network takes {num_inputs} inputs "
                         f"(expected [2, {num_inputs + 1}])")


def read_global_cmvn(model_dir: str | os.PathLike):
    """MODEL_DIR/global_cmvn.stats as float64 [2, D+1], or None when the dir has none (a
    packed model dir or a trainer's network dir)."""
    import kaldiio
    import numpy as np

    path = Path(model_dir) / GLOBAL_CMVN
    return np.asarray(kaldiio.load_mat(str(path)), dtype=np.float64) if path.is_file() else None


def read_priors(path: str | os.PathLike, num_pdfs: int | None = None):
    """log_priors.npy as float32 [num_pdfs] (ModelError naming the file when it is not one)."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"missing {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError/UnpicklingError
        raise ModelError(f"{path}: not a .npy array of log priors ({type(e).__name__}: {e})".splitlines()[0]) from None
    if arr.ndim != 1 or arr.dtype.kind != "f" or (num_pdfs is not None and len(arr) != num_pdfs):
        want = f"{num_pdfs} " if num_pdfs is not None else ""
        raise ModelError(f"{path}: expected a float vector of {want}log priors, got {arr.dtype} {list(arr.shape)}")
    if np.isnan(arr).any():
        raise ModelError(f"{path}: log priors contain NaN")
    return arr.astype(np.float32)


def save_model_dir(out_dir: str | os.PathLike, model, model_config: dict[str, Any], num_inputs: int,
                   num_pdfs: int, output_delay: int, cmvn: str = "speaker", extra: dict[str, Any] | None = None) -> Path:
    """The network part of a model dir (what the trainer writes): weights, then model.yaml
    (without fbank/fingerprints: ``ModelDir.pack`` completes the dir). Each file atomic."""
    import yaml
    from safetensors.torch import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / WEIGHTS, save(tensors))
    meta = {"model": dict(model_config), "num_inputs": int(num_inputs), "num_pdfs": int(num_pdfs),
            "output_delay": int(output_delay), "cmvn": cmvn}
    if extra:
        meta.update(extra)
    atomic_write_text(out / CONFIG, yaml.safe_dump(meta, sort_keys=False))
    return out


def read_model_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    """model.yaml of a (network or complete) model dir, its keys type-checked."""
    from asr.config import load_yaml

    path = Path(model_dir) / CONFIG
    if not path.is_file():
        raise ModelError(f"{model_dir}: not a model dir (no {CONFIG})")
    try:
        cfg = load_yaml(path)
    except AsrError as e:
        raise ModelError(str(e)) from None
    for key in ("model", "num_inputs", "num_pdfs"):
        if key not in cfg:
            raise ModelError(f"{path}: missing key {key!r}")
    if not isinstance(cfg["model"], dict) or "family" not in cfg["model"]:
        raise ModelError(f"{path}: 'model' must be a mapping with a 'family'")
    cfg.setdefault("output_delay", 0)
    for key, low in (("num_inputs", 1), ("num_pdfs", 1), ("output_delay", 0)):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ModelError(f"{path}: {key} must be an integer >= {low}, got {v!r}")
    if cfg.get("cmvn", "speaker") not in CMVN_MODES:
        raise ModelError(f"{path}: cmvn must be one of {', '.join(CMVN_MODES)}, got {cfg['cmvn']!r}")
    return cfg


def load_acoustic_model(model_dir: str | os.PathLike, device: str = "cpu"):
    """Build the model described by ``model_dir/model.yaml`` and load its weights.

    Returns ``(model, config)`` with the model in eval mode on ``device``."""
    from safetensors.torch import load_file

    from asr.nnet.registry import build_model

    cfg = read_model_config(model_dir)
    path = Path(model_dir) / WEIGHTS
    try:
        model = build_model(cfg["model"], int(cfg["num_inputs"]), int(cfg["num_pdfs"]))
    except AsrError as e:
        raise ModelError(f"{Path(model_dir) / CONFIG}: {e}") from None
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"{Path(model_dir) / CONFIG}: the model: section does not describe a network "
                         f"({type(e).__name__}: {e})".splitlines()[0]) from None
    if not path.is_file():
        raise ModelError(f"{model_dir}: no {WEIGHTS}")
    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise ModelError(f"{path}: cannot read weights: {e}".splitlines()[0]) from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of another shape
        raise ModelError(f"{path}: weights do not match {CONFIG} ({str(e).splitlines()[-1].strip()})") from None
    if missing or unexpected:
        raise ModelError(f"{path}: weights do not match model.yaml (missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.to(device).eval()
    return model, cfg
