"""Commands on Kaldi data dirs: validate-data-dir, fix-data-dir, subset-data-dir, split-data-dir,
prep-librispeech."""

from __future__ import annotations

import argparse
import sys

from asr.cli import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "validate-data-dir",
        help="report every problem of a Kaldi data dir (file:line: message)",
        description="Check a Kaldi data dir (wav.scp, segments, text, utt2spk, spk2utt, utt2dur, "
        "feats.scp, cmvn.scp) and print every problem as FILE:LINE: MESSAGE: unsorted or duplicate "
        "ids, missing/unreadable audio, utterances without (or with empty) text, speakers without "
        "utterances, utt2spk/spk2utt disagreement, segments on missing recordings or past the end "
        "of the audio. Exit status 1 if any problem, else 0.",
    )
    p.add_argument("data_dir", metavar="DIR", help='the Kaldi data dir to check')
    p.add_argument("--no-check-audio", dest="check_audio", action="store_false",
                   help="do not open audio files to check they decode and how long they are (faster)")
    p.set_defaults(func=_validate)

    p = sub.add_parser(
        "fix-data-dir",
        help="keep the consistent part of a data dir, sort it, regenerate spk2utt",
        description="Repair a Kaldi data dir in place: keep the utterances that have a speaker, "
        "usable audio, non-empty text (and features/durations where those files exist), sort every "
        "file, regenerate spk2utt. Prints every dropped item with its reason (a dropped utterance "
        "with its transcript); lines that are not UTF-8 are dropped, never rewritten. The files as "
        "they were are copied to DIR/.backup/ first (Kaldi's fix_data_dir.sh), or to DIR/.backup.1, "
        ".backup.2 ... when an earlier run's backup is there: a backup is never overwritten.",
    )
    p.add_argument("data_dir", metavar="DIR",
                   help='the Kaldi data dir to repair in place (originals kept in DIR/.backup)')
    p.add_argument("--no-check-audio", dest="check_audio", action="store_false",
                   help="do not open audio files (only check they exist)")
    p.set_defaults(func=_fix)

    p = sub.add_parser(
        "subset-data-dir",
        help="write a data dir holding a subset of the utterances",
        description="Copy the utterances chosen by --utt-list, --spk-list or --first of SRC into "
        "the data dir DST (every per-utterance, per-recording and per-speaker file is filtered). "
        "An utterance or speaker not in SRC, or a subset without utterances, is an error.",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--utt-list", metavar="FILE", help="file with one utterance id per line (first field)")
    g.add_argument("--spk-list", metavar="FILE", help="file with one speaker id per line (first field)")
    g.add_argument("--first", type=positive_int, metavar="N", help="the first N utterances (sorted order), N >= 1")
    p.add_argument("src", metavar="SRC", help='the data dir to take utterances from')
    p.add_argument("dst", metavar="DST", help='the data dir to write')
    p.set_defaults(func=_subset)

    p = sub.add_parser(
        "split-data-dir",
        help="split a data dir by speaker into N parts (DIR/splitN/1..N)",
        description="Write DIR/splitN/1 .. DIR/splitN/N, complete data dirs with about equal "
        "numbers of utterances; no speaker is split across parts (Kaldi split_data.sh).",
    )
    p.add_argument("data_dir", metavar="DIR", help='the data dir to split')
    p.add_argument("num_jobs", type=int, metavar="N", help='the number of parts (by speaker)')
    p.set_defaults(func=_split)

    p = sub.add_parser(
        "prep-librispeech",
        help="Kaldi data dir from LibriSpeech parts (FLAC read directly; Kaldi's ids)",
        description="Write the Kaldi data dir DST (wav.scp with FLAC paths, text, utt2spk, spk2utt, "
        "spk2gender, utt2dur) from one or more LibriSpeech parts laid out as "
        "SRC/READER/CHAPTER/READER-CHAPTER-UTT.flac with READER-CHAPTER.trans.txt, as Kaldi's "
        "local/data_prep.sh: utterance id READER-CHAPTER-UTT, speaker READER-CHAPTER, gender from "
        "SPEAKERS.TXT beside SRC. Several SRC dirs are combined (e.g. the three train parts). "
        "Chapters without a transcript, transcript lines without audio, audio without a transcript "
        "line, malformed lines and unreadable FLACs are skipped and counted, each named on stderr "
        "and in DST/prep_skipped.txt. "
        "E.g.: asr prep-librispeech LibriSpeech/dev-clean data/dev_clean; "
        "asr prep-librispeech LibriSpeech/train-clean-100 LibriSpeech/train-clean-360 "
        "LibriSpeech/train-other-500 data/train_960",
    )
    p.add_argument("src", metavar="SRC", nargs="+", help="part directory (e.g. LibriSpeech/dev-clean); several are combined")
    p.add_argument("dst", metavar="DST", help="output data dir (replaced when complete)")
    p.add_argument("--speakers", metavar="FILE", help="SPEAKERS.TXT to take genders from (default: SRC/../SPEAKERS.TXT)")
    p.add_argument("--nj", type=positive_int, default=4, help="threads reading FLAC headers for utt2dur (default 4)")
    p.set_defaults(func=_prep_librispeech)

    p = sub.add_parser(
        "download-openslr",
        help="download OpenSLR resources (LibriSpeech 12, LMs/lexicon 11, mini_librispeech 31): resumable, verified",
        description="Fetch BASE_URL/RESOURCE/NAME for each NAME into DIR: resumable (NAME.part continued with HTTP "
        "Range requests, after dropped connections too), verified (size as OpenSLR publishes it, SHA-256 where "
        "known or given with --checksums; a mismatch removes the file and fails), skipped when present (a file "
        "of the right size; an already extracted LibriSpeech part DIR/LibriSpeech/PART, unless it lacks the .complete "
        "mark and its archive is still in DIR: an interrupted extraction, done again). .tar.gz archives are "
        "extracted into DIR (DIR/LibriSpeech/PART/.complete marks them; a damaged archive is an error and nothing "
        "of it is kept). A NAME without an extension is a "
        "corpus part (dev-clean = dev-clean.tar.gz). "
        "E.g.: asr download-openslr 12 corpus dev-clean test-clean; "
        "asr download-openslr 11 corpus/lm librispeech-lexicon.txt 3-gram.pruned.3e-7.arpa.gz 4-gram.arpa.gz",
    )
    p.add_argument("resource", metavar="RESOURCE", help="OpenSLR resource number (11, 12, 31)")
    p.add_argument("dir", metavar="DIR", help="where the files go")
    p.add_argument("names", metavar="NAME", nargs="+", help="file names, or part names (dev-clean)")
    p.add_argument("--base-url", default="https://www.openslr.org/resources",
                   help="the resources' base URL (a mirror, e.g. https://us.openslr.org/resources)")
    p.add_argument("--checksums", metavar="FILE", help="sha256sum-style lines 'SHA256  NAME' to verify against")
    p.add_argument("--no-extract", dest="extract", action="store_false", help="keep archives packed")
    p.add_argument("--remove-archive", action="store_true", help="delete each archive once extracted")
    p.add_argument("--retries", type=int, default=5, help="attempts to resume an interrupted transfer")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry")
    p.set_defaults(func=_download_openslr)


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asr.data.validate import validate_data_dir

    d = Path(args.data_dir)
    problems = validate_data_dir(d, check_audio=args.check_audio)
    for p in problems:
        print(p.format(d))
    n = len(problems)
    if n:
        print(f"{d}: {n} problem{'s' if n != 1 else ''} (run `asr fix-data-dir` to keep the consistent part)")
    else:
        from asr.data.datadir import DataDir

        dd = DataDir.load(d)
        recs = len({s.recording for s in dd.segments.values()}) if dd.segments is not None else len(dd.wav)
        print(f"{d}: 0 problems ({len(dd.utt2spk)} utterances, {len(dd.spk2utt)} speakers, {recs} recordings)")
    return 1 if problems else 0


def _fix(args: argparse.Namespace) -> int:
    from asr.data.fix import fix_data_dir

    r = fix_data_dir(args.data_dir, check_audio=args.check_audio)
    for line in r.dropped:
        print(line)
    print(
        f"{args.data_dir}: kept {r.num_utts} utterances, {r.num_speakers} speakers, {r.num_recordings} recordings; "
        f"dropped {r.num_dropped_utts} utterances ({len(r.dropped)} items); "
        + (f"originals in {r.backup}" if r.backup else "nothing changed (no backup made)")
    )
    return 0


def _subset(args: argparse.Namespace) -> int:
    from asr.data.datadir import DataDir, sorted_ids, subset_data_dir
    from asr.errors import DataDirError
    from asr.io.tables import iter_table

    dd = DataDir.load(args.src)
    if args.first is not None:
        utts = dd.utt_ids[: args.first]
    elif args.utt_list:
        utts = [e.key for e in iter_table(args.utt_list)]
    else:
        spks = {e.key for e in iter_table(args.spk_list)}
        unknown = spks - dd.spk2utt.keys()
        if unknown:
            raise DataDirError(f"{args.src}: {len(unknown)} requested speakers not in utt2spk, e.g. "
                               f"{sorted_ids(unknown)[0]}")
        utts = [u for u in dd.utt_ids if dd.utt2spk[u] in spks]
    if not utts:
        raise DataDirError(f"{args.utt_list or args.spk_list}: lists no ids; an empty subset is not written")
    subset_data_dir(args.src, args.dst, utts)
    print(f"{args.dst}: {len(set(utts))} utterances", file=sys.stderr)
    return 0


def _split(args: argparse.Namespace) -> int:
    from asr.data.split import split_data_dir

    for path in split_data_dir(args.data_dir, args.num_jobs):
        print(path)
    return 0


def _prep_librispeech(args: argparse.Namespace) -> int:
    from asr.data.librispeech import prepare_librispeech

    s = prepare_librispeech(args.src, args.dst, args.speakers, args.nj)
    genders = ", ".join(f"{n} {g}" for g, n in sorted(s.genders.items()))
    print(f"{args.dst}: {s.utterances} utterances, {s.speakers} speakers ({s.readers} readers"
          f"{': ' + genders if genders else ''}), {s.hours:.2f} hours")
    if s.num_skipped:
        reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in s.skipped.items())
        print(f"{args.dst}: skipped {s.num_skipped} ({reasons}); see {args.dst}/prep_skipped.txt")
    return 0


def _download_openslr(args: argparse.Namespace) -> int:
    from asr.data.openslr import download, read_checksums

    names = [n if "." in n else f"{n}.tar.gz" for n in args.names]
    sums = read_checksums(args.checksums) if args.checksums else None
    for line in download(args.resource, names, args.dir, args.base_url, sums, args.extract, args.remove_archive,
                         args.retries, args.timeout):
        print(line)
    return 0
