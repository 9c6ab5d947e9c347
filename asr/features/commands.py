"""Feature commands: make-fbank, compute-cmvn."""

from __future__ import annotations

import argparse
import logging

from asr.cli import positive_int
from asr.failures import add_max_failures_option

logger = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "make-fbank",
        help="compute Kaldi-compatible log mel filterbanks for a data dir (feats.scp + arks)",
        description="Compute log mel filterbank features (kaldi-native-fbank, samples in Kaldi's "
        "int16 scale, numbers equal to Kaldi's compute-fbank-feats) for every utterance of DATA_DIR. "
        "Writes ARK_DIR/raw_fbank_<name>.<job>.ark (Kaldi binary), DATA_DIR/feats.scp and "
        "DATA_DIR/utt2num_frames and DATA_DIR/fbank.conf (every option used). Jobs split the data by "
        "speaker and run in parallel; a re-run skips finished jobs whose inputs are unchanged (options, "
        "wav.scp/segments entries, audio file size and mtime), so a replaced wav is recomputed. Utterances "
        "that fail (unreadable audio, NaN samples, too short) are skipped and counted (exit status 0 unless "
        "all failed or more than --max-failures did); they are left out of feats.scp. The transcripts are "
        "not read. E.g.: asr make-fbank --config conf/fbank.conf --nj 4 data/train",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="Kaldi data dir with wav.scp (and segments, utt2spk)")
    p.add_argument("ark_dir", metavar="ARK_DIR", nargs="?", help="where the arks go (default DATA_DIR/data)")
    p.add_argument("--config", metavar="CONF", help="Kaldi option file, e.g. conf/fbank.conf "
                   "(default: 40 bins, 25/10 ms, 16 kHz, dither 0, snip-edges)")
    p.add_argument("--nj", type=positive_int, default=1, metavar="N", help="parallel jobs (default 1; at most one per speaker)")
    p.add_argument("--channel", type=int, default=0,
                   help="channel of multi-channel audio (default 0, as Kaldi; -1 = average of the channels); "
                   "the same rule as asr transcribe --channel")
    p.add_argument("--no-resample", dest="resample", action="store_false",
                   help="treat audio at another sample rate as an error instead of resampling it")
    add_max_failures_option(p)
    p.add_argument("--strict", action="store_true", help="fail (and write no feats.scp) if any utterance fails "
                   "(= --max-failures 0)")
    p.add_argument("--force", action="store_true", help="recompute jobs that are already finished")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_make_fbank)

    p = sub.add_parser(
        "compute-cmvn",
        help="per-speaker (and global) CMVN stats of a data dir's features",
        description="Accumulate Kaldi CMVN stats (2 x (D+1) double matrices: sums, sums of "
        "squares, count) per speaker from DATA_DIR/feats.scp; writes ARK_DIR/cmvn_<name>.ark and "
        "DATA_DIR/cmvn.scp keyed by speaker; with --global also DATA_DIR/global_cmvn.stats. Utterances "
        "whose features cannot be read or hold NaN/inf are skipped and counted (exit status 0 unless all "
        "failed or more than --max-failures did). E.g.: asr compute-cmvn --global data/train",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="Kaldi data dir with feats.scp (asr make-fbank) and utt2spk")
    p.add_argument("ark_dir", metavar="ARK_DIR", nargs="?", help="where the ark goes (default DATA_DIR/data)")
    p.add_argument("--global", dest="global_stats", action="store_true", help="also write global stats")
    add_max_failures_option(p)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_compute_cmvn)


def _make_fbank(args: argparse.Namespace) -> int:
    from asr.features.make_fbank import make_fbank

    r = make_fbank(args.data_dir, args.ark_dir, config=args.config, nj=args.nj, channel=args.channel,
                   resample=args.resample, max_failures=0.0 if args.strict else args.max_failures, force=args.force,
                   progress=args.progress)
    rtf = f", {r.audio_seconds / r.seconds:.0f}x real time" if r.audio_seconds and r.seconds else ""
    print(
        f"{args.data_dir}: features for {r.num_done} of {r.num_utts} utterances, {len(r.failed)} failed "
        f"(skipped); {r.num_jobs} jobs, {r.jobs_skipped} already done; {r.seconds:.1f} s{rtf}"
    )
    return 0


def _compute_cmvn(args: argparse.Namespace) -> int:
    from asr.features.compute_cmvn import compute_cmvn

    r = compute_cmvn(args.data_dir, args.ark_dir, global_stats=args.global_stats, progress=args.progress,
                     max_failures=args.max_failures)
    print(f"{args.data_dir}: CMVN stats for {r.num_speakers} speakers ({r.num_utts} utterances, {r.num_frames} frames)"
          + (f"; global stats in {r.global_stats}" if r.global_stats else ""))
    if r.failures.failed:
        print(r.failures.summary())
    return 0
