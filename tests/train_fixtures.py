"""A toy frame-classification task for training tests: feature arks whose frames are noisy
copies of one mean per pdf, with their pdf alignments (5-frame segments)."""

from pathlib import Path

import numpy as np

from asr.io.int_ark import write_int_ark


def make_data(root: Path, name: str, n_utts: int, seed: int, num_pdfs: int, dim: int,
              max_len: int = 40, nan: bool = False) -> tuple[Path, Path]:
    """Write ROOT/NAME/{feats.ark,feats.scp,utt2spk} and ROOT/NAME.ali; returns both paths.
    Utterances are 15..max_len-1 frames; the pdf means are the same for every call."""
    import kaldiio

    rng = np.random.default_rng(seed)
    means = np.random.default_rng(0).standard_normal((num_pdfs, dim)) * 2
    d = root / name
    d.mkdir()
    ali = {}
    with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
        for u in range(n_utts):
            n = int(rng.integers(15, max_len))
            seg = np.repeat(rng.integers(0, num_pdfs, n // 5 + 1), 5)[:n]
            f = (means[seg] + rng.standard_normal((n, dim)) * 0.5).astype(np.float32)
            if nan:
                f[:] = np.nan
            utt = f"{name}{u:03d}"
            w(utt, f)
            ali[utt] = seg
    (d / "utt2spk").write_text("".join(f"{u} spk\n" for u in sorted(ali)))
    write_int_ark(root / f"{name}.ali", sorted(ali.items()))
    return d, root / f"{name}.ali"
