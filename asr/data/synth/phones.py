"""The corpus phone set and the map from espeak-ng's English phoneme mnemonics to it.

espeak marks stress (``'`` primary, ``,`` secondary) on vowels and has allophones and
accent-specific vowels; we drop stress and merge the variants into an ARPAbet-like set
of 46 speech phones (ASCII, Kaldi-safe), plus ``SIL`` (silence, espeak's pauses) and
``SPN`` (spoken noise, for ``<UNK>``).
"""

from __future__ import annotations

SILENCE = "SIL"
SPOKEN_NOISE = "SPN"

# espeak mnemonic (stress removed) -> phone
ESPEAK_TO_PHONE: dict[str, str] = {
    # vowels
    "A:": "AA", "A@": "AA", "aa": "AE", "a": "AE",
    "V": "AH",
    "O:": "AO", "O@": "AO", "o@": "AO", "O": "AO", "O2": "AO",
    "0": "OH",
    "aU": "AW", "aU@": "AW",
    "aI": "AY", "aI2": "AY", "aI3": "AY", "aI@": "AY",
    "E": "EH", "e@": "EA",
    "3": "ER", "3:": "ER", "IR": "ER", "VR": "ER", "@r": "ER",
    "eI": "EY",
    "I": "IH", "I2": "IH", "I#": "IH",
    "i": "IY", "i:": "IY",
    "i@": "IA", "i@3": "IA",
    "oU": "OW", "OI": "OY",
    "U": "UH", "u:": "UW", "U@": "UA",
    "@": "AX", "@-": "AX", "@2": "AX", "@5": "AX", "a#": "AX",
    "@L": "EL",
    # consonants
    "b": "B", "d": "D", "g": "G", "k": "K", "p": "P", "t": "T", "t2": "T", "t[": "T", "?": "T",
    "t#": "DX", "d#": "DX",
    "f": "F", "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH",
    "h": "HH", "x": "HH", "tS": "CH", "dZ": "JH",
    "m": "M", "n": "N", "n-": "N", "N": "NG",
    "l": "L", "l/": "L", "r": "R", "r-": "R", "w": "W", "w#": "W", "j": "Y",
}

# zero-width modifiers: the event is dropped and the previous phone continues
MODIFIERS = frozenset({";"})

NONSILENCE_PHONES: tuple[str, ...] = tuple(sorted(set(ESPEAK_TO_PHONE.values())))
SILENCE_PHONES: tuple[str, ...] = (SILENCE, SPOKEN_NOISE)


def is_pause(mnemonic: str) -> bool:
    """espeak pauses (``_``, ``_:``, ``_!``...) become silence."""
    return mnemonic.startswith("_")


def map_mnemonic(mnemonic: str) -> str | None:
    """The phone for an espeak mnemonic, ``SIL`` for a pause, ``""`` for a zero-width
    modifier, None when unknown."""
    if is_pause(mnemonic):
        return SILENCE
    m = mnemonic.lstrip("',%=")
    if m in MODIFIERS:
        return ""
    return ESPEAK_TO_PHONE.get(m)
