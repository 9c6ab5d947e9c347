"""Looking at alignments: per-phone duration statistics and a PNG of one utterance."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from asr.errors import AlignmentError

log = logging.getLogger(__name__)


def _phone_instances(ali_dir: Path):
    """Yield (utt, phone ids, lengths) per utterance: from ali.tid.ark + final.mdl (Kaldi's
    SplitToPhones) when present, else from runs of phones.ark."""
    from asr.hmm.kaldi_ali import split_to_phones
    from asr.io.int_ark import iter_int_ark

    tid_path, mdl = ali_dir / "ali.tid.ark", ali_dir / "final.mdl"
    if tid_path.exists() and mdl.exists():
        from asr.hmm.transition_model import TransitionModel

        tm = TransitionModel.read(mdl)
        for utt, ali in iter_int_ark(tid_path):
            ph, ln = split_to_phones(tm, ali, utt)
            yield utt, ph, ln
        return
    ph_path = ali_dir / "phones.ark"
    if not ph_path.exists():
        raise AlignmentError(f"{ali_dir}: needs ali.tid.ark + final.mdl or phones.ark")
    for utt, frames in iter_int_ark(ph_path):
        if len(frames) == 0:
            continue
        change = np.nonzero(np.diff(frames))[0] + 1
        starts = np.concatenate([[0], change])
        yield utt, frames[starts], np.diff(np.concatenate([starts, [len(frames)]]))


def ali_stats(ali_dir: str | os.PathLike, phone_names: dict[int, str] | None = None,
              base_of=None, frame_shift: float = 0.01) -> list[dict]:
    """Per-phone duration statistics (frames): instances, mean, std, min, 5/50/95th percentile,
    max, share of all frames. ``base_of`` maps a phone name to the name to group by."""
    ali_dir = Path(ali_dir)
    phones, lengths = [], []
    n_utts = 0
    for _, ph, ln in _phone_instances(ali_dir):
        phones.append(ph)
        lengths.append(ln)
        n_utts += 1
    if not phones:
        raise AlignmentError(f"{ali_dir}: no alignments")
    ph = np.concatenate(phones)
    ln = np.concatenate(lengths).astype(np.float64)
    names = np.array([(phone_names or {}).get(int(p), str(int(p))) for p in ph])
    if base_of is not None:
        names = np.array([base_of(n) for n in names])
    total = ln.sum()
    rows = []
    for name in sorted(set(names.tolist()), key=lambda n: -ln[names == n].sum()):
        d = ln[names == name]
        p5, p50, p95 = np.percentile(d, [5, 50, 95])
        rows.append({"phone": name, "count": int(len(d)), "mean": float(d.mean()), "std": float(d.std()),
                     "min": int(d.min()), "p5": float(p5), "median": float(p50), "p95": float(p95),
                     "max": int(d.max()), "frames_pct": float(100 * d.sum() / total)})
    log.info("%d utterances, %d phone instances, %d frames (%.2f h)", n_utts, len(ln), int(total),
             total * frame_shift / 3600)
    return rows


def format_stats(rows: list[dict]) -> str:
    head = f"{'phone':<12}{'count':>8}{'mean':>8}{'std':>7}{'min':>5}{'p5':>6}{'median':>7}{'p95':>7}{'max':>6}{'%frames':>9}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['phone']:<12}{r['count']:>8}{r['mean']:>8.2f}{r['std']:>7.2f}{r['min']:>5}{r['p5']:>6.1f}"
                     f"{r['median']:>7.1f}{r['p95']:>7.1f}{r['max']:>6}{r['frames_pct']:>9.2f}")
    return "\n".join(lines) + "\n"


def plot_alignment(ali_dir: str | os.PathLike, utt: str, out_png: str | os.PathLike, data_dir=None,
                   phone_names: dict[int, str] | None = None, frame_shift: float = 0.01) -> None:
    """PNG: the utterance's filterbank spectrogram (from ``data_dir``'s features, if given)
    with phone boundaries and labels (solid) and HMM-state boundaries (dotted); a pdf-id
    track underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asr.io.atomic import atomic_write_bytes
    from asr.io.int_ark import iter_int_ark

    ali_dir = Path(ali_dir)
    tids = pdfs = None
    for u, a in iter_int_ark(ali_dir / "ali.pdf.ark"):
        if u == utt:
            pdfs = a
            break
    if pdfs is None:
        raise AlignmentError(f"{ali_dir}/ali.pdf.ark: no utterance {utt}")
    inst = None
    for u, ph, ln in _phone_instances(ali_dir):
        if u == utt:
            inst = (ph, ln)
            break
    state_bounds = []
    if (ali_dir / "ali.tid.ark").exists() and (ali_dir / "final.mdl").exists():
        from asr.hmm.transition_model import TransitionModel

        tm = TransitionModel.read(ali_dir / "final.mdl")
        for u, a in iter_int_ark(ali_dir / "ali.tid.ark"):
            if u == utt:
                tids = a
                break
        if tids is not None:
            st = tm.tid2hmm_state[tids]
            state_bounds = (np.nonzero(np.diff(st))[0] + 1).tolist()
    feats = None
    if data_dir is not None:
        from asr.features.reader import FeatureReader

        reader = FeatureReader(data_dir, cmvn="none")
        if utt in reader:
            feats = reader[utt]
    T = len(pdfs)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, T / 25), 5), sharex=True,
                             gridspec_kw={"height_ratios": [4, 1]})
    ax = axes[0]
    if feats is not None:
        ax.imshow(feats.T, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, len(feats) * frame_shift, 0, feats.shape[1]))
        ax.set_ylabel("fbank bin")
    else:
        ax.set_ylim(0, 1)
        ax.set_yticks([])
    top = ax.get_ylim()[1]
    for b in state_bounds:
        ax.axvline(b * frame_shift, color="cyan", lw=0.5, ls=":")
    if inst is not None:
        ph, ln = inst
        starts = np.concatenate([[0], np.cumsum(ln)[:-1]])
        for p, s, n in zip(ph.tolist(), starts.tolist(), ln.tolist()):
            ax.axvline(s * frame_shift, color="white" if feats is not None else "black", lw=1.0)
            ax.text((s + n / 2) * frame_shift, top * 0.97, (phone_names or {}).get(p, str(p)), ha="center",
                    va="top", fontsize=7, color="white" if feats is not None else "black", rotation=90)
    ax.set_title(f"{utt}: {T} frames")
    axes[1].step(np.arange(T) * frame_shift, pdfs, where="post", lw=0.8)
    axes[1].set_ylabel("pdf")
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(Path(out_png), buf.getvalue())
