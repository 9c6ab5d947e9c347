"""Peak memory of `asr train` on a corpus and on the same corpus 10 times over, with the
same number of updates: features are read from the arks as training goes, so the peak
RSS should not grow with the corpus beyond the alignments (goal, issue 13: ratio ≤ 1.2).

The 10× corpus lists every utterance of the data dir 10 times (new ids, the same ark
entries, the same speakers' CMVN) with its alignment copied; both corpora are written
the same way (feats.scp, utt2num_frames, utt2spk, alignments). Peak RSS is the training
process's ``ru_maxrss`` (os.wait4).

    python bench/train_memory.py [--data DIR --ali ARK] [--config conf/lstmp.yaml]
        [--copies 10] [--updates 20] [--threads 1] [--asr-root OTHER_CHECKOUT]

Data: by default the synth recipe's (recipes/synth/data/train, exp/tree/ali.pdf.ark),
else `--synthetic-frames N` (a random corpus).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_scaling import ROOT, SYNTH, replicate, write_random_data  # noqa: E402


def corpus_copy(data: Path, ali: Path, out: Path, copies: int) -> tuple[Path, Path]:
    from asr.io.int_ark import iter_int_ark
    from asr.io.tables import read_table

    d = out / f"x{copies}"
    d.mkdir(parents=True)
    u2s = read_table(data / "utt2spk") if (data / "utt2spk").is_file() else {}
    scp_utts = set(read_table(data / "feats.scp"))
    alignments = [(u, a) for u, a in iter_int_ark(ali) if u in scp_utts]
    keep = {u for u, _ in alignments}
    lines = [line for line in (data / "feats.scp").read_text().splitlines() if line.split(maxsplit=1)[0] in keep]
    (out / "feats.scp").write_text("\n".join(lines) + "\n")
    replicate(out / "feats.scp", alignments, d, out / f"ali_x{copies}.ark", copies, u2s)
    for f in ("cmvn.scp", "global_cmvn.stats"):
        if (data / f).is_file():
            shutil.copy(data / f, d / f)
    spk = {line.split()[1] for line in (d / "utt2spk").read_text().splitlines()}
    (d / "spk2utt").write_text("".join(f"{s}\n" for s in sorted(spk)))  # not read by training
    return d, out / f"ali_x{copies}.ark"


def peak_rss(cmd: list[str], env: dict) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``cmd``."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{err.decode()[-3000:]}")
    return ru.ru_maxrss / 1024, time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SYNTH / "data" / "train")
    ap.add_argument("--ali", type=Path, default=SYNTH / "exp" / "tree" / "ali.pdf.ark")
    ap.add_argument("--synthetic-frames", type=int, default=0)
    ap.add_argument("--config", type=Path, default=ROOT / "conf" / "lstmp.yaml")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--asr-root", type=Path, default=ROOT,
                    help="checkout whose `asr` is measured (e.g. an older one, for comparison)")
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(args.asr_root), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="train_memory.") as tmp:
        tmp = Path(tmp)
        cfg = args.config
        if args.synthetic_frames:
            import yaml

            data, ali = write_random_data(tmp / "corpus", args.synthetic_frames)
            c = yaml.safe_load(cfg.read_text())
            c["training"]["cmvn"] = "none"
            cfg = tmp / "config.yaml"
            cfg.write_text(yaml.safe_dump(c))
        else:
            data, ali = args.data, args.ali
            if not (data / "feats.scp").is_file() or not ali.is_file():
                sys.exit(f"no {data}/feats.scp or {ali}: run recipes/synth/run.sh --stage 0 --stop-stage 3, "
                         "or pass --synthetic-frames N")
        num_pdfs = (ali.parent / "num_pdfs").read_text().split()[0] if (ali.parent / "num_pdfs").is_file() else None
        print(f"config {args.config}; {args.updates} updates; {args.threads} thread(s); load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        res = {}
        for copies in (1, args.copies):
            d, a = corpus_copy(data, ali, tmp / f"c{copies}", copies)
            frames = sum(int(line.split()[1]) for line in (d / "utt2num_frames").read_text().splitlines())
            cmd = [sys.executable, "-m", "asr", "-q", "train", "--config", str(cfg), "--feats", str(d), "--ali", str(a),
                   "--out", str(tmp / f"exp{copies}"), "--max-updates", str(args.updates), "--num-threads",
                   str(args.threads), "--no-progress"] + (["--num-pdfs", num_pdfs] if num_pdfs else [])
            rss, secs = peak_rss(cmd, env)
            res[copies] = rss
            print(f"{copies:>3}× corpus: {frames:>10d} frames ({frames * 40 * 4 / 2**20:>7.0f} MiB of 40-dim features "
                  f"in memory), ali {a.stat().st_size / 2**20:.0f} MiB: peak RSS {rss:.0f} MiB ({secs:.0f} s)", flush=True)
        print(f"peak RSS ratio {args.copies}x/1x = {res[args.copies] / res[1]:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
