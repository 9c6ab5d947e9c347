"""Speakers of the synthetic corpus: (English accent × espeak voice variant) pairs.

Each speaker gets a base rate and pitch; utterances jitter around them. Train, dev and
test speakers are disjoint; every accent and every voice variant of a dev or test
speaker also occurs (with other partners) in training, so held-out speakers are new
combinations, as new people are in a real corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.errors import ConfigError

# espeak voice name -> short tag used in speaker ids (lowercase alphanumerics)
ACCENTS: dict[str, str] = {
    "en-us": "us",
    "en": "gb",
    "en-gb-scotland": "sc",
    "en-gb-x-rp": "rp",
    "en-gb-x-gbclan": "lan",
    "en-gb-x-gbcwmd": "wmd",
    "en-us-nyc": "nyc",
    "en-029": "car",
}
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt2", "klatt4",
)


@dataclass(frozen=True)
class Speaker:
    id: str  # e.g. "sc-f2"
    voice: str  # espeak voice name, e.g. "en-gb-scotland+f2"
    accent: str
    base_rate: float  # words per minute
    base_pitch: float  # espeak pitch 0..100


def all_speakers(seed: int) -> list[Speaker]:
    """Every (accent, variant) pair, with seeded base rate and pitch, in a fixed order."""
    rng = np.random.default_rng([seed, 7919])
    out = []
    for accent, tag in ACCENTS.items():
        for variant in VARIANTS:
            out.append(
                Speaker(f"{tag}-{variant}", f"{accent}+{variant}", accent,
                        float(rng.uniform(145, 185)), float(rng.uniform(30, 70)))
            )
    return out


def split_speakers(seed: int, num_train: int, num_dev: int, num_test: int) -> dict[str, list[Speaker]]:
    """Disjoint train/dev/test speaker lists (seeded)."""
    speakers = all_speakers(seed)
    if num_train + num_dev + num_test > len(speakers):
        raise ConfigError(f"asked for {num_train + num_dev + num_test} speakers; only {len(speakers)} voices exist")
    if min(num_train, num_dev, num_test) < 1:
        raise ConfigError("every split needs at least one speaker")
    rng = np.random.default_rng([seed, 104729])
    for _ in range(1000):
        order = rng.permutation(len(speakers))
        train = [speakers[i] for i in order[:num_train]]
        seen_acc = {s.accent for s in train}
        seen_var = {s.voice.split("+")[1] for s in train}
        rest = [speakers[i] for i in order[num_train:]
                if speakers[i].accent in seen_acc and speakers[i].voice.split("+")[1] in seen_var]
        if len(seen_acc) == len(ACCENTS) and len(rest) >= num_dev + num_test:
            split = {"train": train, "dev": rest[:num_dev], "test": rest[num_dev:num_dev + num_test]}
            return {k: sorted(v, key=lambda s: s.id) for k, v in split.items()}
    raise ConfigError("could not find a speaker split covering all accents; use more training speakers")
