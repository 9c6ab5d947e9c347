"""``asr augment-data-dir``: speed, volume, reverberation, noise and telephone copies of a data dir."""

from __future__ import annotations

import argparse

from asr.augment.noise import NOISE_TYPES
from asr.cli import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "augment-data-dir",
        help="perturbed copies of a Kaldi data dir: speed (sp0.9-), volume, simulated rooms (rvb1-), noise, telephone",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Write DST, a Kaldi data dir of perturbed copies of the data dir SRC (any Kaldi data dir:
wav.scp with files or pipes, optional segments), with new 16-bit audio files DST/wav/.

For every recording: one copy per --speed factor (sox's `speed`: pitch and tempo
together, resampled with soxr; ids sp0.9-<id>, factor 1.0 keeps the ids), then of each,
--num-copies environment copies <prefix><k>-<id> (rvb1-sp0.9-<id>), each reverberated in
a room simulated by pyroomacoustics (image method), given noise at a random SNR and passed
through a telephone channel with the given probabilities; --volume scales every copy by a
random gain. Utterance, recording and speaker ids are prefixed as Kaldi's
perturb_data_dir_speed.sh and reverberate_data_dir.py do; text, utt2spk, spk2utt, segments,
utt2lang, spk2gender and every *.ctm (times divided by the speed factor) are carried over,
utt2dur and utt2uniq written. DST/reco2aug says what was done to each recording,
DST/excluded.txt which source recordings were skipped (unreadable, silent), and
DST/augment.json (written last) the settings and timing. Every choice is seeded by --seed
and the new id: the output is byte-identical for any --nj. A finished DST with the same
settings is kept as is.

With --ali-dir (an alignment dir of SRC: asr import-ali / build-tree layout) the
alignments are carried to --out-ali-dir, rescaled for speed-perturbed utterances to the
frame count of their new audio (--fbank-config gives the frame options).""",
        epilog="""\
e.g.: asr augment-data-dir --speed 0.9,1.0,1.1 --ali-dir exp/tree --out-ali-dir exp/tree_sp data/train data/train_sp
      asr augment-data-dir --reverb-prob 1 --noise-prob 0.5 --include-original data/train data/train_rvb
      asr augment-data-dir --reverb-prob 1 --noise-prob 1 --telephone-prob 0.3 --room-set test data/test data/test_hard""",
    )
    p.add_argument("src", metavar="SRC", help="source data dir")
    p.add_argument("dst", metavar="DST", help="output data dir (its wav/ holds the new audio)")
    g = p.add_argument_group("speed and volume")
    g.add_argument("--speed", type=_floats, default=(), metavar="F,F,...",
                   help="speed factors, one copy each (Kaldi's 3-way: 0.9,1.0,1.1); default: none")
    g.add_argument("--random-speed", action="store_true",
                   help="give each environment copy one speed factor drawn from --speed (ids rvb1-sp1.1-<id>) "
                        "instead of one copy per factor; with --include-original the original stays unperturbed")
    g.add_argument("--volume", action="store_true",
                   help="scale every output copy by a random gain from --volume-range (Kaldi perturb_data_dir_volume.sh)")
    g.add_argument("--volume-range", type=float, nargs=2, default=(0.125, 2.0), metavar=("LO", "HI"),
                   help="gain range of --volume (default: Kaldi's 0.125 2.0)")
    g = p.add_argument_group("environment copies (reverberation, noise, telephone)")
    g.add_argument("--num-copies", type=int, default=1, metavar="N", help="environment copies per (speed) copy")
    g.add_argument("--include-original", action="store_true",
                   help="also keep each (speed) copy without environment perturbation (ids without the prefix)")
    g.add_argument("--prefix", default=None,
                   help="id prefix of environment copy k is PREFIX<k>- (default: rvb with reverberation, "
                        "else noise, else tel)")
    g.add_argument("--reverb-prob", type=float, default=0.0, metavar="P",
                   help="probability that an environment copy is reverberated in a simulated room")
    g.add_argument("--room-set", default="train",
                   help="name of the room set; its rooms depend on the name only, so sets of different names "
                        "(train, test) share no room")
    g.add_argument("--num-rooms", type=int, default=20, help="rooms in the set")
    g.add_argument("--rt60", type=float, nargs=2, default=(0.2, 0.7), metavar=("LO", "HI"),
                   help="range of the rooms' reverberation times in seconds")
    g.add_argument("--noise-prob", type=float, default=0.0, metavar="P",
                   help="probability that an environment copy gets additive noise")
    g.add_argument("--noise-types", type=_names, default=NOISE_TYPES, metavar="T,T,...",
                   help=f"noise types drawn from, uniformly ({','.join(NOISE_TYPES)}): colored = random "
                        "spectral tilt and equaliser, babble = 3-7 other talkers of SRC, music = random tones")
    g.add_argument("--snr", type=float, nargs=2, default=(5.0, 20.0), metavar=("LO", "HI"),
                   help="range of the SNR in dB (signal power over noise power, whole recording)")
    g.add_argument("--telephone-prob", type=float, default=0.0, metavar="P",
                   help="probability that an environment copy passes a telephone channel (8 kHz band, "
                        "random equaliser, 8-bit mu-law)")
    g = p.add_argument_group("output and alignments")
    g.add_argument("--seed", type=int, default=1, help="random seed")
    g.add_argument("--nj", type=positive_int, default=1, help="parallel jobs (processes)")
    g.add_argument("--audio-format", choices=("wav", "flac"), default="wav", help="format of the new audio files")
    g.add_argument("--ali-dir", default=None, metavar="DIR", help="alignment dir of SRC to carry over")
    g.add_argument("--out-ali-dir", default=None, metavar="DIR", help="where the alignments of DST go")
    g.add_argument("--fbank-config", default=None, metavar="FILE",
                   help="Kaldi fbank option file giving the frame options of the alignments "
                        "(default: the toolkit's, 25 ms / 10 ms, snip-edges)")
    p.set_defaults(func=_run)


def _floats(s: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None


def _names(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def _run(args: argparse.Namespace) -> int:
    from asr.augment.data_dir import AugmentConfig, augment_data_dir

    config = AugmentConfig(
        speed_factors=args.speed, random_speed=args.random_speed, volume=tuple(args.volume_range) if args.volume else None,
        num_copies=args.num_copies, include_original=args.include_original, reverb_prob=args.reverb_prob,
        noise_prob=args.noise_prob, telephone_prob=args.telephone_prob, prefix=args.prefix, snr_db=tuple(args.snr),
        noise_types=args.noise_types, room_set=args.room_set, num_rooms=args.num_rooms, rt60=tuple(args.rt60),
        seed=args.seed, audio_format=args.audio_format,
    )
    s = augment_data_dir(args.src, args.dst, config, nj=args.nj, ali_dir=args.ali_dir, out_ali_dir=args.out_ali_dir,
                         fbank_config=args.fbank_config).data
    skipped = s["recordings_skipped"]
    line = (f"{args.dst}: {s['utterances_out']} utterances from {s['utterances_in']} "
            f"({s['copies_per_recording']} copies each), {skipped} recording{'s' if skipped != 1 else ''} skipped"
            + (f" (see {args.dst}/excluded.txt)" if skipped else "")
            + f"; {s['audio_out_hours']:.3f} h written, real-time factor {s['rtf_per_core']} per core")
    print(line)
    if "alignments" in s:
        a = s["alignments"]
        print(f"{args.out_ali_dir}: {a['utterances']} alignments ({a['rescaled']} rescaled, {a['copied']} copied), "
              f"{a['missing'] + a['failed']} without ({a['missing']} missing in the source, {a['failed']} failed)")
    return 0
