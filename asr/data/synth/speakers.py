"""Speakers of the synthetic corpus: (English accent × espeak voice variant) pairs.

Each speaker gets a base rate and pitch; utterances jitter around them. Train, dev and
test speakers are disjoint; every accent and every voice variant of a dev or test
speaker also occurs (with other partners) in training, so held-out speakers are new
combinations, as new people are in a real corpus. The *unseen* speakers (the hard test
set's) use voice variants that no other split uses at all (``HELD_OUT_VARIANTS``).
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
# espeak-ng voice variants (data/voices/!v) of the train, dev and test speakers: the numbered
# and klatt variants and the human-like named ones (not whisper, robot or croak voices)
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "Andy", "Annie", "adam", "anika", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed",
    "edward", "iven", "john", "max", "michel", "norbert", "pablo", "paul", "quincy", "rob", "robert",
    "sandro", "shelby", "steph", "victor", "zac",
)
# variants only the unseen speakers (the hard test set) use
HELD_OUT_VARIANTS: tuple[str, ...] = ("m8", "f5", "klatt6", "linda", "travis", "ian", "gustave", "grandma")
SPLIT_NAMES = ("train", "dev", "test", "test_unseen")


@dataclass(frozen=True)
class Speaker:
    id: str  # e.g. "sc-f2"
    voice: str  # espeak voice name, e.g. "en-gb-scotland+f2"
    accent: str
    base_rate: float  # words per minute
    base_pitch: float  # espeak pitch 0..100


def all_speakers(seed: int, variants: tuple[str, ...] = VARIANTS) -> list[Speaker]:
    """Every (accent, variant) pair, with seeded base rate (wpm) and pitch, in a fixed order."""
    rng = np.random.default_rng([seed, 7919, len(variants)])
    out = []
    for accent, tag in ACCENTS.items():
        for variant in variants:
            out.append(
                Speaker(f"{tag}-{variant.lower()}", f"{accent}+{variant}", accent,
                        float(rng.uniform(130, 210)), float(rng.uniform(15, 85)))
            )
    return out


def variant_of(speaker: Speaker) -> str:
    return speaker.voice.split("+")[1]


def split_speakers(seed: int, num_train: int, num_dev: int, num_test: int,
                   num_unseen: int = 0) -> dict[str, list[Speaker]]:
    """Disjoint train/dev/test speaker lists (seeded), and ``num_unseen`` speakers of held-out
    variants (split ``test_unseen``)."""
    speakers = all_speakers(seed)
    if num_train + num_dev + num_test > len(speakers):
        raise ConfigError(f"asked for {num_train + num_dev + num_test} speakers; only {len(speakers)} voices exist")
    if min(num_train, num_dev, num_test) < 1:
        raise ConfigError("every split needs at least one speaker")
    held_out = all_speakers(seed, HELD_OUT_VARIANTS)
    if not 0 <= num_unseen <= len(held_out):
        raise ConfigError(f"asked for {num_unseen} unseen speakers; only {len(held_out)} held-out voices exist")
    rng = np.random.default_rng([seed, 104729])
    for _ in range(1000):
        order = rng.permutation(len(speakers))
        train = [speakers[i] for i in order[:num_train]]
        seen_acc = {s.accent for s in train}
        seen_var = {variant_of(s) for s in train}
        rest = [speakers[i] for i in order[num_train:]
                if speakers[i].accent in seen_acc and variant_of(speakers[i]) in seen_var]
        if len(seen_acc) == len(ACCENTS) and len(rest) >= num_dev + num_test:
            split = {"train": train, "dev": rest[:num_dev], "test": rest[num_dev:num_dev + num_test]}
            break
    else:
        raise ConfigError("could not find a speaker split covering all accents; use more training speakers")
    # unseen: held-out variants in turn, each with a random accent
    pick = np.random.default_rng([seed, 130363]).permutation(len(held_out))
    by_variant: dict[str, list[Speaker]] = {}
    for i in pick:
        by_variant.setdefault(variant_of(held_out[i]), []).append(held_out[i])
    unseen = []
    while len(unseen) < num_unseen:
        for v in HELD_OUT_VARIANTS:
            if by_variant[v] and len(unseen) < num_unseen:
                unseen.append(by_variant[v].pop())
    split["test_unseen"] = unseen
    return {k: sorted(v, key=lambda s: s.id) for k, v in split.items()}
