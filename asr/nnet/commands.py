"""``asr nnet-info`` (a model's architecture and parameter count) and ``asr pack-model-dir``."""

from __future__ import annotations

import argparse

from asr.cli import DefaultsHelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "nnet-info",
        help="print an acoustic model's architecture and number of parameters",
        description="Print the architecture of the model described by a YAML config (its model: "
        "section) or a model dir (model.yaml), a parameter breakdown per top-level module, and a "
        "line 'num-params N' (all trainable parameters, biases included). 'num-params-no-bias N' "
        "is the count of the paper's formula (Sak et al. 2014 count no biases).",
    )
    p.add_argument("source", metavar="CONFIG_OR_MODEL_DIR", help="a YAML config or a model dir")
    p.add_argument("--num-inputs", type=int, default=None,
                   help="input feature dimension (default: the model dir's, the config's num_inputs, else 40)")
    p.add_argument("--num-pdfs", type=int, default=None,
                   help="number of output pdfs (default: the model dir's or the config's num_pdfs)")
    p.set_defaults(func=run_nnet_info)

    p = subparsers.add_parser(
        "pack-model-dir",
        help="assemble a self-contained model dir (network, priors, tree, tables, fbank options, graph, LMs)",
        description="Assemble OUT_DIR, the model dir `asr transcribe` / `asr decode` use (docs/contracts.md), "
        "from the trainer's network dir (model.safetensors + model.yaml; default OUT_DIR itself: packing in "
        "place), its priors, a tree dir (tree, final.mdl), a lang dir (phones.txt, words.txt), the fbank "
        "options the training features were computed with (every option is recorded in model.yaml), and "
        "optionally a graph dir and LMs. Checks that they fit (pdf counts, feature dimension, the graph was "
        "built from this tree/transition model/phones/words) and records the SHA-256 of every file; OUT_DIR "
        "is replaced only when everything succeeded, and is left as it is when it already holds exactly "
        "these inputs. E.g.: asr pack-model-dir --tree-dir exp/tree --lang data/lang --feats data/train "
        "--graph-dir exp/graph --first-pass-lm exp/lm/lm5_pruned.arpa --rescore-lm exp/lm/lm5.arpa "
        "exp/lstmp/final",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="the model dir to write")
    p.add_argument("--network", metavar="DIR", default=None,
                   help="network dir written by asr train (EXP/final; default OUT_DIR)")
    p.add_argument("--priors", metavar="NPY", default=None, help="log priors (default NETWORK/log_priors.npy)")
    p.add_argument("--tree-dir", required=True, help="tree dir with tree and final.mdl (asr build-tree, asr import-ali)")
    p.add_argument("--lang", required=True, help="lang dir (phones.txt, words.txt)")
    p.add_argument("--feats", metavar="DATA_DIR", default=None,
                   help="training data dir: its fbank.conf (written by asr make-fbank) gives the feature options")
    p.add_argument("--fbank-config", metavar="CONF", default=None,
                   help="Kaldi fbank option file (instead of --feats; with it, both must agree)")
    p.add_argument("--graph-dir", default=None, help="graph dir to include as OUT_DIR/graph")
    p.add_argument("--first-pass-lm", metavar="ARPA", default=None, help="LM of the graph (OUT_DIR/lm/first_pass.arpa)")
    p.add_argument("--rescore-lm", metavar="ARPA", default=None, help="rescoring LM (OUT_DIR/lm/rescore.arpa)")
    p.add_argument("--global-cmvn", metavar="STATS", default=None,
                   help="global CMVN stats of the training data (asr compute-cmvn --global): the prior of "
                   "streaming recognition's online CMVN (OUT_DIR/global_cmvn.stats)")
    p.add_argument("--force", action="store_true", help="repack even when OUT_DIR is up to date")
    p.set_defaults(func=run_pack_model_dir)


def run_pack_model_dir(args: argparse.Namespace) -> int:
    from asr.errors import ConfigError
    from asr.features.fbank import FbankComputer
    from asr.features.make_fbank import read_feature_options
    from asr.nnet.model_dir import ModelDir

    if not args.feats and not args.fbank_config:
        raise ConfigError("give --feats DATA_DIR (features made by asr make-fbank) or --fbank-config CONF")
    options = None
    if args.feats:
        options = read_feature_options(args.feats)
    if args.fbank_config:
        conf = FbankComputer(args.fbank_config).all_options
        if options is not None and conf != options:
            diff = sorted(k for k in conf if conf[k] != options.get(k))
            raise ConfigError(f"{args.fbank_config} differs from the options {args.feats}'s features were computed "
                              f"with ({', '.join(f'{k}: {conf[k]} vs {options.get(k)}' for k in diff[:3])})")
        options = conf
    md = ModelDir.pack(args.out_dir, args.network or args.out_dir, args.tree_dir, args.lang, options,
                       priors=args.priors, graph_dir=args.graph_dir, first_pass_lm=args.first_pass_lm,
                       rescore_lm=args.rescore_lm, global_cmvn=args.global_cmvn, force=args.force)
    print(f"model dir {md.path}: {md.num_pdfs} pdfs, {md.num_inputs} inputs ({md.fbank['num-mel-bins']} mel bins, "
          f"{md.fbank['sample-frequency']} Hz), cmvn {md.cmvn}, graph {'yes' if md.graph_dir else 'no'}")
    return 0


def run_nnet_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asr.config import load_yaml
    from asr.errors import ConfigError
    from asr.nnet.model_dir import read_model_config
    from asr.nnet.registry import build_model, count_parameters

    src = Path(args.source)
    if src.is_dir():
        cfg = read_model_config(src)
    else:
        cfg = load_yaml(src)
    model_cfg = cfg.get("model", cfg)
    num_inputs = args.num_inputs or cfg.get("num_inputs") or 40
    num_pdfs = args.num_pdfs or cfg.get("num_pdfs")
    if not num_pdfs:
        raise ConfigError(f"{src}: no num_pdfs in the config; give --num-pdfs N")
    model = build_model(model_cfg, int(num_inputs), int(num_pdfs))
    counts = count_parameters(model)
    print(f"family {model_cfg['family']}")
    print(model.describe())
    for name, child in model.named_children():
        sub = count_parameters(child)
        if sub["total"] == 0:
            continue
        if name == "layers":
            for k, layer in enumerate(child):
                c = count_parameters(layer)
                print(f"params layer {k + 1}: {c['weights']} weights + {c['biases']} biases")
        else:
            print(f"params {name}: {sub['weights']} weights + {sub['biases']} biases")
    print(f"num-inputs {num_inputs}")
    print(f"num-pdfs {num_pdfs}")
    print(f"num-params-no-bias {counts['weights']}")
    print(f"num-params {counts['total']}")
    return 0
