"""Commands of the decode stage: ``asr decode``, ``asr transcribe``."""

from __future__ import annotations

import argparse

from asr.cli import DefaultsHelpFormatter, positive_float, positive_int
import sys

from asr.failures import add_max_failures_option


def search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", required=True, help="self-contained model dir (docs/contracts.md)")
    p.add_argument("--graph-dir", default=None, help="graph dir with HCLG.fst and words.txt (default MODEL_DIR/graph); "
                   "graphs made by Kaldi's mkgraph.sh are accepted")
    p.add_argument("--acoustic-scale", type=positive_float, default=0.1, help="scale of log p(s|x) - log p(s)")
    p.add_argument("--beam", type=positive_float, default=13.0, help="search beam")
    p.add_argument("--max-active", type=positive_int, default=7000, help="max active states (1-best decoder)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "decode",
        help="decode a data dir with features: hyp.txt, lattices, decode.json, wer",
        description="Decode DATA_DIR (feats.scp; cmvn.scp for per-speaker CMVN) with the model dir's network, "
        "priors, transition model and HCLG into DECODE_DIR: hyp.txt (1-best), lat.<job>.gz (word lattices, "
        "Kaldi text format, with --lattices), hyp.ctm (word CTM: '<utt> 1 <start> <dur> <word> <conf>', times from the decoder's alignment, confidences = lattice word posteriors, 1 without --lattices), decode.json (options, frames, forward/search seconds, RTF) and "
        "wer when DATA_DIR/text exists. Without --lattices the 1-best comes from FasterDecoder (beam, "
        "max-active); with --lattices from LatticeSimpleDecoder (beam, lattice-beam; no max-active). "
        "The model dir must be complete (asr pack-model-dir) and the graph built for its tree and transition "
        "model (else a one-line error naming both); features made by asr make-fbank must have the model's "
        "options. DECODE_DIR is written at once; when it was decoded from the same model dir, graph, features "
        "and options it is left as it is (--force decodes again). Utterances that fail are skipped and "
        "counted. E.g.: asr decode --model-dir exp/lstmp/final --nj 2 --lattices data/test exp/lstmp/decode_test",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help='data dir with feats.scp (and text to score against)')
    p.add_argument("decode_dir", metavar="DECODE_DIR",
                   help='the decode dir to write (hyp.txt, hyp.ctm, lat.*, decode.json, wer)')
    search_options(p)
    p.add_argument("--lattice-beam", type=positive_float, default=8.0, help="lattice pruning beam")
    p.add_argument("--lattices", action="store_true", help="write word lattices lat.<job>.gz (for lmrescore)")
    p.add_argument("--nj", type=positive_int, default=1, help="parallel jobs (processes)")
    p.add_argument("--num-threads", type=int, default=None,
                   help="torch threads per job (default: the cores divided by --nj, at least 1)")
    p.add_argument("--batch-size", type=int, default=8, help="utterances per network forward batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-ctm", action="store_true",
                   help="do not write hyp.ctm (word times and confidences; needs the graph's transition-id labels)")
    add_max_failures_option(p)
    p.add_argument("--force", action="store_true", help="decode even when DECODE_DIR is up to date")
    p.set_defaults(func=_decode)

    t = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files with a model dir: prints '<id> <words>' per file",
        description="Transcribe audio files (any format soundfile reads, any sample rate: resampled to the "
        "model's, logged; multi-channel audio: --channel, logged) with a self-contained model dir: fbank "
        "features with the options recorded in the model dir, per-utterance CMVN, network, 1-best search. "
        "Prints '<id> <words>' per file, id = file stem; digital silence prints '<id>' (no words) with a "
        "warning. A file that cannot be used (unreadable, 0 samples, too short for one frame, NaN samples) "
        "gets a one-line error on stderr and is counted; the others are still transcribed, and the exit code "
        "is 1. E.g.: asr transcribe --model-dir exp/final a.wav b.flac",
        formatter_class=DefaultsHelpFormatter,
    )
    t.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files; with --stream also '-' (raw PCM on stdin)")
    search_options(t)
    t.add_argument("--ctm", metavar="FILE", default=None,
                   help="also write word times to FILE ('-': stdout after the transcripts) as a CTM: "
                   "'<id> 1 <start> <duration> <word> <conf>'")
    t.add_argument("--channel", type=int, default=0,
                   help="channel of multi-channel audio (-1 = average of the channels); the same rule as "
                   "asr make-fbank --channel")
    t.add_argument("--num-threads", type=int, default=None, help="torch threads (default: the available cores)")
    from asr.online.commands import add_stream_options

    s = t.add_argument_group("streaming (--stream; docs/streaming.md)")
    s.add_argument("--stream", action="store_true",
                   help="recognise as a stream: online features and CMVN, chunked network forward, incremental "
                   "search; partials on one updating line on a terminal, '<id> <words>' per endpointed segment")
    s.add_argument("--sample-rate", type=positive_int, default=16000, help="sample rate of raw PCM on stdin ('-')")
    s.add_argument("--chunk-seconds", type=positive_float, default=0.1, help="audio fed per step")
    s.add_argument("--realtime", action="store_true", help="feed files no faster than real time")
    s.add_argument("--stdin-id", default="stdin", help="id printed for '-'")
    add_stream_options(t)
    t.set_defaults(func=_transcribe)


def search_config(args):
    from asr.decode.search import SearchConfig
    from asr.errors import ConfigError

    if args.acoustic_scale <= 0 or args.beam <= 0 or args.max_active <= 0:
        raise ConfigError("--acoustic-scale, --beam and --max-active must be positive")
    return SearchConfig(beam=args.beam, max_active=args.max_active,
                        lattice_beam=getattr(args, "lattice_beam", 8.0), acoustic_scale=args.acoustic_scale)


def _decode(args) -> int:
    from asr.decode.decode_dir import decode_data_dir

    info = decode_data_dir(args.model_dir, args.data_dir, args.decode_dir, graph_dir=args.graph_dir, nj=args.nj,
                           cfg=search_config(args), lattices=args.lattices, batch_size=args.batch_size,
                           num_threads=args.num_threads, progress=not args.no_progress, ctm=not args.no_ctm,
                           max_failures=args.max_failures, force=args.force)
    if info.get("skipped"):
        print(f"{args.decode_dir} is up to date (same model dir, graph, features and options); not decoded again")
    failed = f", {info['failed_utterances']} failed (skipped)" if info.get("failed_utterances") else ""
    print(f"decoded {info['utterances']} utterances{failed} ({info['audio_seconds']:.1f} s audio): "
          f"RTF {info['rtf']} (forward {info['rtf_forward']}, search {info['rtf_search']})")
    if "wer" in info:
        print(info["wer"])
    return 0


def _transcribe(args) -> int:
    from asr.errors import ConfigError

    if "-" in args.audio and not args.stream:
        raise ConfigError("'-' (raw PCM on stdin) needs --stream")
    if args.audio.count("-") > 1:
        raise ConfigError("'-' can be given once")
    _check_unique_ids(args.audio, args.stdin_id)
    ctm_out = None
    try:
        if args.ctm not in (None, "-"):
            ctm_out = open(args.ctm + ".tmp", "w")
        if args.stream:
            rc = _transcribe_stream(args, ctm_out)
        else:
            rc = _transcribe_files(args, ctm_out)
    finally:
        if ctm_out is not None:
            ctm_out.close()
    if ctm_out is not None:
        import os

        os.replace(args.ctm + ".tmp", args.ctm)
    return rc


def _check_unique_ids(audio: list[str], stdin_id: str) -> None:
    """Refuse two inputs with the same output id (the file name without its extension; '-':
    --stdin-id): their transcripts could not be told apart."""
    from pathlib import Path

    from asr.errors import ConfigError

    seen: dict[str, str] = {}
    for a in audio:
        uid = stdin_id if a == "-" else Path(a).stem
        if uid in seen:
            raise ConfigError(f"{seen[uid]} and {a} have the same id {uid!r} (the file name without its extension): "
                              "rename one")
        seen[uid] = a


def _transcribe_files(args, ctm_out) -> int:
    from asr.decode.decode_dir import transcribe_files
    from asr.features.online_cmvn import OnlineCmvnOptions

    failed = 0
    ctm = []
    for uid, words, err, lines in transcribe_files(args.model_dir, args.audio, args.graph_dir, search_config(args),
                                                   word_times=args.ctm is not None, channel=args.channel,
                                                   num_threads=args.num_threads,
                                                   cmvn_opts=OnlineCmvnOptions(cmn_window=args.cmn_window,
                                                                               global_frames=args.global_frames)):
        if err is not None:
            print(f"asr transcribe: error: {err}", file=sys.stderr, flush=True)
            failed += 1
        else:
            print(f"{uid} {' '.join(words)}".rstrip(), flush=True)
            ctm += lines or []
    if args.ctm:
        (ctm_out or sys.stdout).write("".join(ctm))
    return _failed_summary(len(args.audio), failed)


def _failed_summary(n: int, failed: int) -> int:
    """The exit code of ``transcribe`` (offline and --stream alike), with the count of failures."""
    if failed:
        print(f"asr transcribe: {n - failed} of {n} files transcribed, {failed} failed", file=sys.stderr)
        return 1
    return 0


def _transcribe_stream(args, ctm_out) -> int:
    import io

    import torch

    from asr.online.commands import stream_options
    from asr.online.recognizer import OnlineModel
    from asr.online.stream_input import transcribe_stream

    torch.set_num_threads(1)
    model = OnlineModel(args.model_dir, args.graph_dir, stream_options(args, search_config(args)))
    buf = io.StringIO() if args.ctm == "-" else ctm_out
    failed = 0
    for uid, err in transcribe_stream(model, args.audio, sample_rate=args.sample_rate, chunk_seconds=args.chunk_seconds,
                                      realtime=args.realtime, ctm_out=buf, stdin_id=args.stdin_id,
                                      channel=args.channel):
        if err is not None:
            print(f"asr transcribe: error: {err}", file=sys.stderr, flush=True)
            failed += 1
    if args.ctm == "-":
        sys.stdout.write(buf.getvalue())
    return _failed_summary(len(args.audio), failed)
