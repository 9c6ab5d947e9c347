"""``asr train`` and ``asr compute-priors``."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an acoustic model (LSTMP/LSTM/DNN) with cross-entropy on pdf alignments",
        description="Train a frame classifier on features of a data dir and pdf-id alignments with "
        "truncated BPTT (B utterance streams, T-frame chunks, output delay). Writes EXP/checkpoint.pt, "
        "EXP/log.csv, EXP/steps.csv, EXP/training_curves.png and EXP/final/ (model dir of the best "
        "epoch by dev frame accuracy: model.safetensors + model.yaml).",
    )
    p.add_argument("--config", required=True, help="YAML with model: and training: sections (conf/lstmp.yaml ...)")
    p.add_argument("--feats", required=True, metavar="DATA_DIR", help="training data dir with feats.scp (+ cmvn.scp)")
    p.add_argument("--ali", required=True, metavar="ALI_ARK", help="pdf-id alignments (int-vector ark), one per frame")
    p.add_argument("--dev-feats", metavar="DIR", help="dev data dir (frame accuracy monitor, model selection)")
    p.add_argument("--dev-ali", metavar="ARK", help="dev pdf-id alignments")
    p.add_argument("--out", required=True, metavar="EXP", help="experiment directory")
    p.add_argument("--num-pdfs", type=int, default=None,
                   help="number of pdfs (default: file num_pdfs next to ALI_ARK, else max pdf id + 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--resume", action="store_true", help="continue from EXP/checkpoint.pt exactly where it stopped")
    p.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--max-updates", type=int, default=None,
                   help="stop after this many updates in total (with a checkpoint; --resume continues)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)

    q = subparsers.add_parser(
        "compute-priors",
        help="log state priors from pdf alignments (silence counts divided by 2.7)",
        description="Count pdf ids in ALI_ARK, divide the counts of silence pdfs by the silence factor "
        "(Sak et al. 2014: 2.7), normalise, floor, renormalise, and save log-priors as a float32 .npy "
        "(decoding uses log p(s|x) - log p(s)).",
    )
    q.add_argument("ali", metavar="ALI_ARK", help="pdf-id alignments (int-vector ark)")
    q.add_argument("out", metavar="OUT_NPY", nargs="?", default=None,
                   help="output .npy (default: MODEL_DIR/log_priors.npy with --model-dir)")
    q.add_argument("--model-dir", default=None, help="write MODEL_DIR/log_priors.npy; also gives num_pdfs")
    q.add_argument("--num-pdfs", type=int, default=None,
                   help="number of pdfs (default: model dir's model.yaml, or file num_pdfs next to ALI_ARK)")
    q.add_argument("--silence-pdfs", default=None, metavar="FILE",
                   help="silence pdf ids, one per line (default: silence_pdfs.int next to ALI_ARK if present)")
    q.add_argument("--silence-factor", type=float, default=2.7, help="divide silence counts by this (default 2.7)")
    q.add_argument("--floor", type=float, default=1e-8, help="minimum prior before renormalising (default 1e-8)")
    q.set_defaults(func=run_compute_priors)


def _num_pdfs_near(ali_path) -> int | None:
    from pathlib import Path

    from asr.errors import FormatError

    f = Path(ali_path).parent / "num_pdfs"
    if not f.is_file():
        return None
    try:
        return int(f.read_text().split()[0])
    except (ValueError, IndexError):
        raise FormatError(f"{f}: expected one integer") from None


def run_train(args: argparse.Namespace) -> int:
    import logging

    import torch

    from asr.config import load_yaml
    from asr.errors import ConfigError
    from asr.features.reader import FeatureReader
    from asr.io.int_ark import read_int_ark
    from asr.train.data import load_corpus
    from asr.train.trainer import train, training_config

    log = logging.getLogger("asr.train")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    if bool(args.dev_feats) != bool(args.dev_ali):
        raise ConfigError("--dev-feats and --dev-ali go together")
    config = load_yaml(args.config)
    tcfg = training_config(config)
    ali = read_int_ark(args.ali)
    num_pdfs = args.num_pdfs or _num_pdfs_near(args.ali)
    if not num_pdfs:
        num_pdfs = max(int(a.max()) for a in ali.values() if len(a)) + 1
        log.warning("no --num-pdfs and no num_pdfs file next to %s: using max pdf id + 1 = %d", args.ali, num_pdfs)
    tol = int(tcfg["length_tolerance"])
    reader = FeatureReader(args.feats, cmvn=tcfg["cmvn"])
    corpus = load_corpus(reader, ali, num_pdfs, name=str(args.feats), length_tolerance=tol)
    dev = None
    if args.dev_feats:
        # global/online CMVN: the dev set is normalised with the training data's stats, as in decoding
        dreader = FeatureReader(args.dev_feats, cmvn=tcfg["cmvn"], global_stats=reader.global_stats)
        dev = load_corpus(dreader, read_int_ark(args.dev_ali), num_pdfs, name=str(args.dev_feats), length_tolerance=tol)
    summary = train(config, corpus, args.out, dev_corpus=dev, num_pdfs=num_pdfs, device=args.device,
                    resume=args.resume, max_updates=args.max_updates, progress=not args.no_progress)
    hist = summary["history"]
    if summary["stopped_early"]:
        print(f"stopped after {summary['updates']} updates (--max-updates); continue with --resume")
    if hist:
        last = hist[-1]
        print(f"epochs {summary['epochs_done']} updates {summary['updates']} train-acc {last['train_acc']:.4f} "
              f"dev-acc {last['dev_acc']:.4f} best-epoch {summary['best_epoch']}")
    return 0


def run_compute_priors(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    import numpy as np

    from asr.errors import ConfigError
    from asr.io.atomic import atomic_write
    from asr.io.int_ark import iter_int_ark
    from asr.train.priors import count_pdfs, log_priors_from_counts, read_int_list

    log = logging.getLogger("asr.train")
    out = args.out
    num_pdfs = args.num_pdfs
    if args.model_dir:
        from asr.nnet.model_dir import read_model_config

        out = out or str(Path(args.model_dir) / "log_priors.npy")
        num_pdfs = num_pdfs or int(read_model_config(args.model_dir)["num_pdfs"])
    if not out:
        raise ConfigError("give OUT_NPY or --model-dir")
    num_pdfs = num_pdfs or _num_pdfs_near(args.ali)
    if not num_pdfs:
        raise ConfigError("give --num-pdfs N (or --model-dir, or a num_pdfs file next to ALI_ARK)")
    sil_file = args.silence_pdfs
    if sil_file is None and (Path(args.ali).parent / "silence_pdfs.int").is_file():
        sil_file = str(Path(args.ali).parent / "silence_pdfs.int")
        log.info("silence pdfs from %s", sil_file)
    sil = read_int_list(sil_file) if sil_file else []
    if not sil:
        log.warning("no silence pdfs: priors are plain state frequencies")
    counts = count_pdfs(iter_int_ark(args.ali), num_pdfs, source=args.ali)
    logp = log_priors_from_counts(counts, sil, args.silence_factor, args.floor)
    with atomic_write(out, "wb") as f:
        np.save(f, logp)
    unseen = int((counts == 0).sum())
    print(f"wrote {out}: {num_pdfs} pdfs, {int(counts.sum())} frames, {len(sil)} silence pdfs, {unseen} unseen")
    return 0
