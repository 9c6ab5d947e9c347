"""``asr nnet-info``: show a model's architecture and parameter count."""

from __future__ import annotations

import argparse


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
