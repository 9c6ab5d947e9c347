"""``asr train`` and ``asr compute-priors``."""

from __future__ import annotations

import argparse


def _paragraphs(text: str, width: int = 88) -> str:
    import textwrap

    return "\n\n".join(textwrap.fill(p, width) for p in text.split("\n\n"))


def register(subparsers) -> None:
    from asr.cli import positive_float, positive_int
    from asr.failures import add_max_failures_option

    p = subparsers.add_parser(
        "train",
        help="train an acoustic model (LSTMP/LSTM/DNN) with cross-entropy on pdf alignments",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs("Train a frame classifier on features of a data dir and pdf-id alignments with "
        "truncated BPTT (B utterance streams, T-frame chunks, output delay). Features are read from "
        "feats.scp as training goes (CMVN on the fly), so memory does not grow with the corpus. Writes "
        "EXP/checkpoint.pt, EXP/log.csv, EXP/steps.csv, EXP/training_curves.png and, when training has "
        "finished, EXP/final/ (model dir of the best epoch by dev frame accuracy: model.safetensors + "
        "model.yaml).\n\n"
        "Several processes: `asr train --workers N ...` (one machine), or the same arguments under "
        "`torchrun --nproc-per-node N [--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT] -m asr "
        "train ...`; training.streams is the global number of streams (each process runs B/N). "
        "--mode ddp: synchronous data parallel, the same updates as one process; --mode asgd: "
        "asynchronous SGD as in Sak et al. 2014 (see docs/distributed.md)."),
        epilog="e.g. asr train --config conf/lstmp.yaml --feats data/train --ali exp/tree/ali.pdf.ark "
        "--dev-feats data/dev --dev-ali exp/ali_dev/ali.pdf.ark --out exp/lstmp --workers 2",
    )
    p.add_argument("--config", required=True, help="YAML with model: and training: sections (conf/lstmp.yaml ...); "
                   "the training keys are documented in docs/acoustic-models.md")
    p.add_argument("--feats", required=True, metavar="DATA_DIR", help="training data dir with feats.scp (+ cmvn.scp)")
    p.add_argument("--ali", required=True, metavar="ALI_ARK", help="pdf-id alignments (int-vector ark), one per frame")
    p.add_argument("--dev-feats", metavar="DIR", help="dev data dir (frame accuracy monitor, model selection)")
    p.add_argument("--dev-ali", metavar="ARK", help="dev pdf-id alignments")
    p.add_argument("--out", required=True, metavar="EXP", help="experiment directory")
    p.add_argument("--num-pdfs", type=int, default=None,
                   help="number of pdfs (default: file num_pdfs next to ALI_ARK, else max pdf id + 1)")
    p.add_argument("--device", default="cpu",
                   help="cpu or cuda (default cpu); several processes use gloo on cpu, nccl on cuda (one GPU per rank)")
    p.add_argument("--resume", action="store_true",
                   help="continue from EXP/checkpoint.pt exactly where it stopped; the checkpoint must have been "
                        "made from the same config, features and alignments (else an error)")
    p.add_argument("--restart-if-changed", action="store_true",
                   help="with --resume: when the checkpoint was made from another config, features or alignments, "
                        "start afresh instead of stopping with an error (what a recipe re-run wants)")
    p.add_argument("--num-threads", type=int, default=None,
                   help="torch CPU threads per process (default: torch's choice for one process; "
                   "cores // processes-per-machine when several run side by side)")
    p.add_argument("--max-updates", type=int, default=None,
                   help="stop after this many updates (batches) in total (with a checkpoint; --resume continues)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_max_failures_option(p)
    p.add_argument("--phone-map", metavar="MDL", default=None,
                   help="transition model (e.g. exp/tree/final.mdl, or its dir) giving each pdf's phones: "
                   "log phone frame accuracy next to pdf accuracy (train_phone_acc, dev_phone_acc in log.csv)")
    g = p.add_argument_group("several processes")
    g.add_argument("--mode", choices=("ddp", "asgd"), default="ddp",
                   help="ddp: synchronous data parallel (default); asgd: asynchronous SGD, each process updating "
                   "shared parameters on its own streams without waiting (Sak et al. 2014)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="start N training processes on this machine through torch's elastic launcher "
                   "(as torchrun --nproc-per-node N)")
    g.add_argument("--nnodes", type=int, default=1, metavar="M",
                   help="with --workers: machines taking part (start the same command on each; default 1)")
    g.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                   help="with --nnodes > 1: c10d rendezvous address every machine can reach")
    g.add_argument("--rdzv-id", default="asr-train", help="with --nnodes > 1: a name for this run's rendezvous")
    g.add_argument("--rdzv-timeout", type=int, default=900, metavar="S",
                   help="with --nnodes > 1: seconds to wait for all machines to join (default 900)")
    g.add_argument("--max-restarts", type=int, default=0, metavar="K",
                   help="with --workers: restart all processes up to K times when one fails; they resume "
                   "from the last checkpoint (default 0)")
    g.add_argument("--asgd-params", choices=("auto", "shared", "rpc"), default="auto",
                   help="--mode asgd: where the parameters live: shared = shared memory of this machine "
                   "(Hogwild), rpc = parameter-server shards on torch.distributed.rpc (several machines); "
                   "auto = shared on one CPU machine, else rpc")
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
    q.add_argument("--num-pdfs", type=positive_int, default=None,
                   help="number of pdfs (default: model dir's model.yaml, or file num_pdfs next to ALI_ARK)")
    q.add_argument("--silence-pdfs", default=None, metavar="FILE",
                   help="silence pdf ids, one per line (default: silence_pdfs.int next to ALI_ARK if present)")
    q.add_argument("--silence-factor", type=positive_float, default=2.7,
                   help="divide silence counts by this (default 2.7)")
    q.add_argument("--floor", type=float, default=1e-8, help="minimum prior before renormalising (default 1e-8)")
    q.set_defaults(func=run_compute_priors)


def _tree_near(ali_path) -> str | None:
    """SHA-256 of the tree beside the alignments (an alignment dir's), None without one."""
    from pathlib import Path

    from asr.io.fingerprint import file_hash

    f = Path(ali_path).parent / "tree"
    return file_hash(f) if f.is_file() else None


def _num_pdfs_near(ali_path, given: int | None = None) -> int | None:
    """The number of pdfs in the file num_pdfs beside the alignments (an alignment dir's), None
    without one; ``given`` (--num-pdfs) must agree with it."""
    from pathlib import Path

    from asr.errors import ConfigError, FormatError

    f = Path(ali_path).parent / "num_pdfs"
    if not f.is_file():
        return given
    try:
        near = int(f.read_text().split()[0])
    except (ValueError, IndexError):
        raise FormatError(f"{f}: expected one integer") from None
    if given is not None and given != near:
        raise ConfigError(f"--num-pdfs {given} disagrees with {f} ({near}): the alignments {ali_path} have "
                          f"{near} pdfs")
    return near


def _check_dev_tree(ali, dev_ali) -> None:
    """The dev alignments' pdfs are the training alignments' (the trees beside them, when both
    have one, are the same file)."""
    from pathlib import Path

    from asr.errors import ConfigError

    tree, dev_tree = _tree_near(ali), _tree_near(dev_ali)
    if tree and dev_tree and tree != dev_tree:
        raise ConfigError(f"--dev-ali {dev_ali}: alignments of another tree ({Path(dev_ali).parent / 'tree'}) than "
                          f"--ali's ({Path(ali).parent / 'tree'}): their pdf ids mean other states")


def _training_fbank(feats, dev_feats) -> dict[str, str] | None:
    """The fbank options of the training features (--feats DIR/fbank.conf, as asr make-fbank
    writes it; None without one); --dev-feats must have been computed with the same."""
    from pathlib import Path

    from asr.errors import ConfigError
    from asr.features.make_fbank import FEATURE_OPTIONS, feature_option_differences, read_feature_options

    if not (Path(feats) / FEATURE_OPTIONS).is_file():
        return None
    options = read_feature_options(feats)
    if dev_feats and (Path(dev_feats) / FEATURE_OPTIONS).is_file():
        diff = feature_option_differences(read_feature_options(dev_feats), options)
        if diff:
            raise ConfigError(f"{Path(dev_feats) / FEATURE_OPTIONS} differs from the training features' "
                              f"{Path(feats) / FEATURE_OPTIONS}: {diff}")
    return options


def run_train(args: argparse.Namespace) -> int:
    from asr.errors import AsrError, ConfigError
    from asr.train import distributed as D

    config, tcfg = _load_config(args.config)
    if bool(args.dev_feats) != bool(args.dev_ali):
        raise ConfigError("--dev-feats and --dev-ali go together")
    child = D.launched_by_torchrun()
    if args.workers is not None and not child:
        return _launch(args, tcfg)
    if not child and (args.nnodes != 1 or args.rdzv_endpoint or args.max_restarts):
        raise ConfigError("--nnodes, --rdzv-endpoint and --max-restarts go with --workers N")
    _set_threads(args.num_threads, child)
    dist = D.init_from_env(args.device)
    try:
        if args.workers is not None and args.workers != dist.local_world_size:
            raise ConfigError(f"--workers {args.workers} but the launcher started {dist.local_world_size} "
                              "processes on this machine")
        code = _train(args, config, tcfg, dist)
        dist.barrier()  # every rank done before any leaves: no rank tears down what another still uses
        return code
    except AsrError as e:
        if getattr(e, "replicated", False):  # every rank raised it alike: rank 0 prints it
            dist.barrier()  # no rank leaves first (the launcher would stop rank 0 before it prints)
            if not dist.is_main:
                return 1
            raise
        if dist.enabled:
            raise type(e)(f"rank {dist.rank}/{dist.world_size}: {e}") from None
        raise
    except RuntimeError as e:
        if dist.enabled and _lost_peer(e):
            from asr.errors import TrainingError

            raise TrainingError(f"rank {dist.rank}/{dist.world_size}: lost contact with the other ranks "
                                f"({str(e).splitlines()[0][:200]})") from None
        raise
    finally:
        D.shutdown(dist)


def _lost_peer(e: BaseException) -> bool:
    """A collective failed because another rank went away (killed, crashed)."""
    import torch.distributed as dist

    text = str(e).lower()
    return isinstance(e, getattr(dist, "DistError", ())) or any(
        w in text for w in ("gloo", "nccl", "tensorpipe", "connection reset", "connection closed", "broken pipe",
                            "pipe closed", "timed out"))


def _load_config(path):
    from asr.config import load_yaml
    from asr.nnet.registry import check_model_config
    from asr.train.config import TrainingConfig, check_top_level

    config = load_yaml(path)
    check_top_level(config, str(path))
    check_model_config(config["model"], str(path))
    return config, TrainingConfig.from_config(config, str(path))


def _set_threads(num_threads: int | None, child: bool) -> None:
    import os

    from asr.errors import ConfigError
    from asr.threads import set_torch_threads

    if num_threads is not None:
        if num_threads < 1:
            raise ConfigError(f"--num-threads must be >= 1 (got {num_threads})")
        set_torch_threads(num_threads)
    elif child:  # ranks side by side: cores // ranks on this machine (one process keeps torch's default)
        set_torch_threads(None, jobs=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def _launch(args: argparse.Namespace, tcfg) -> int:
    """``--workers N``: check what can be checked here (one-line errors, nothing started),
    then start N processes through torch's elastic launcher."""
    from pathlib import Path

    from asr.errors import ConfigError, TrainingError
    from asr.train.distributed import LaunchOptions, launch
    from asr.train.checkpoint import CHECKPOINT

    opts = LaunchOptions(workers=args.workers, nnodes=args.nnodes, rdzv_endpoint=args.rdzv_endpoint,
                         rdzv_id=args.rdzv_id, max_restarts=args.max_restarts, rdzv_timeout=args.rdzv_timeout)
    opts.check()
    if tcfg.streams % opts.world_size:
        raise ConfigError(f"{args.config}: training.streams {tcfg.streams} is not divisible by {opts.world_size} "
                          f"processes ({opts.workers} workers × {opts.nnodes} nodes); B is the global number of "
                          "streams, each process runs B/N")
    if args.device.startswith("cuda"):
        import torch

        if torch.cuda.device_count() < opts.workers:
            raise ConfigError(f"--device cuda --workers {opts.workers}: one GPU per process, but this machine has "
                              f"{torch.cuda.device_count()}")
    for d in filter(None, (args.feats, args.dev_feats)):
        if not (Path(d) / "feats.scp").is_file():
            raise ConfigError(f"{Path(d) / 'feats.scp'}: no features")
    for f in filter(None, (args.ali, args.dev_ali)):
        if not Path(f).is_file():
            raise ConfigError(f"{f}: no such alignment file")
    ckpt = Path(args.out) / CHECKPOINT
    if ckpt.exists() and not args.resume:
        raise TrainingError(f"{args.out} already has {CHECKPOINT}; use --resume to continue or choose another --out")
    if args.resume and not ckpt.exists():
        raise TrainingError(f"--resume: no {ckpt}")
    launch(opts, list(args._argv), threads=args.num_threads, quiet_launcher=args.verbose == 0)
    return 0


def _train(args: argparse.Namespace, config, tcfg, dist) -> int:
    import logging

    from asr.errors import AsrError
    from asr.features.reader import FeatureReader
    from asr.train.distributed import agree_on_error
    from asr.io.int_ark import iter_int_ark
    from asr.train.data import open_feature_set
    from asr.train.trainer import train

    log = logging.getLogger("asr.train")
    error = None
    try:
        num_pdfs = _num_pdfs_near(args.ali, args.num_pdfs)
        if args.dev_ali:
            _check_dev_tree(args.ali, args.dev_ali)
        fbank = _training_fbank(args.feats, args.dev_feats)
    except AsrError as e:
        error = e
    agree_on_error(dist, error)  # every rank reads the same files: the same outcome on each
    if not num_pdfs:
        num_pdfs = max((int(a.max()) for _, a in iter_int_ark(args.ali) if len(a)), default=0) + 1
        log.warning("no --num-pdfs and no num_pdfs file next to %s: using max pdf id + 1 = %d", args.ali, num_pdfs)
    tol = tcfg.length_tolerance
    try:
        reader = FeatureReader(args.feats, cmvn=tcfg.cmvn)
        train_set = open_feature_set(reader, iter_int_ark(args.ali), num_pdfs,
                                     name=str(args.feats), length_tolerance=tol, max_failures=args.max_failures)
        dev = None
        if args.dev_feats:
            # global/online CMVN: the dev set is normalised with the training data's stats, as in decoding
            dreader = FeatureReader(args.dev_feats, cmvn=tcfg.cmvn, global_stats=reader.global_stats)
            dev = open_feature_set(dreader, iter_int_ark(args.dev_ali),
                                   num_pdfs, name=str(args.dev_feats), length_tolerance=tol,
                                   max_failures=args.max_failures)
        phone_map = None
        if args.phone_map:
            from asr.train.phones import PhoneAccuracy

            phone_map = PhoneAccuracy.from_transition_model(args.phone_map, num_pdfs)
    except AsrError as e:
        error = e
    agree_on_error(dist, error)
    summary = train(config, train_set, args.out, dev_set=dev, num_pdfs=num_pdfs, device=args.device,
                    resume=args.resume, restart_if_changed=args.restart_if_changed, max_updates=args.max_updates, progress=not args.no_progress, dist=dist,
                    mode=args.mode, phone_map=phone_map, asgd_params=args.asgd_params,
                    alignment_tree=_tree_near(args.ali), fbank=fbank,
                    inputs={"--feats": args.feats, "--ali": args.ali, "--dev-feats": args.dev_feats,
                            "--dev-ali": args.dev_ali})
    if not dist.is_main:
        return 0
    hist = summary["history"]
    if summary["stopped_early"]:
        by = f" ({summary['updates']} updates by {dist.world_size} workers)" if args.mode == "asgd" else ""
        print(f"stopped after {summary['steps']} updates{by} (--max-updates); continue with --resume")
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
    from asr.io.atomic import atomic_write, check_distinct_output
    from asr.io.int_ark import iter_int_ark
    from asr.train.priors import count_pdfs, log_priors_from_counts, read_int_list

    log = logging.getLogger("asr.train")
    out = args.out
    near = _num_pdfs_near(args.ali, args.num_pdfs)  # the num_pdfs file beside ALI_ARK (--num-pdfs must agree)
    num_pdfs = args.num_pdfs
    if args.model_dir:
        from asr.nnet.model_dir import read_model_config, trained_on_another_tree

        out = out or str(Path(args.model_dir) / "log_priors.npy")
        net_cfg = read_model_config(args.model_dir)
        num_pdfs = num_pdfs or int(net_cfg["num_pdfs"])
        if trained_on_another_tree(net_cfg, Path(args.ali).parent / "tree"):
            raise ConfigError(f"{args.ali}: alignments of another tree than the one {args.model_dir} was trained "
                              f"on (model.yaml training.alignment_tree): priors would count other states")
    if not out:
        raise ConfigError("give OUT_NPY or --model-dir")
    num_pdfs = num_pdfs or near
    if not num_pdfs:
        raise ConfigError("give --num-pdfs N (or --model-dir, or a num_pdfs file next to ALI_ARK)")
    sil_file = args.silence_pdfs
    if sil_file is None and (Path(args.ali).parent / "silence_pdfs.int").is_file():
        sil_file = str(Path(args.ali).parent / "silence_pdfs.int")
        log.info("silence pdfs from %s", sil_file)
    check_distinct_output(out, args.ali, sil_file)
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
