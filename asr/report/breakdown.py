"""Where a test set's errors are: WER per recording condition and per speaker.

A test set made by ``asr augment-data-dir`` (e.g. the synth recipe's ``test_hard``) says in
``reco2aug`` what was done to each recording. ``condition_groups`` turns one utterance's
items into the groups it belongs to, one per dimension:

=================  =======================================================
dimension          groups
=================  =======================================================
room            ``none``, ``RT60 < 0.4 s``, ``RT60 >= 0.4 s`` (``RT60 unknown`` without rt60)
noise           ``none`` or the noise type (``babble``, ``colored``, ``music``)
SNR             ``< 10 dB``, ``10-15 dB``, ``15-20 dB``, ``>= 20 dB`` (with noise only)
channel         ``wideband``, ``telephone``
speed           ``1``, ``0.9``, ... (only when the set has more than one)
all perturbations  ``clean`` (no room, noise, telephone channel, volume change, speed 1) or ``perturbed``
=================  =======================================================

``breakdown`` adds each utterance's word errors (Kaldi's edit distance, as ``asr
compute-wer``) into its groups and per speaker (``utt2spk``), so a table can show, for every
system, which conditions and which voices make the errors, e.g.::

    | condition | words | lstmp | dnn |
    | room: none | 1,394 | 5.38 | 4.95 |
    | room: RT60 >= 0.4 s | 803 | 19.30 | 17.81 |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import DataDirError

DIMENSIONS = ("room", "noise", "SNR", "channel", "speed", "all perturbations")


def condition_groups(items: dict[str, str]) -> dict[str, str]:
    """One utterance's ``reco2aug`` items -> {dimension: group}; see the module docstring.

    >>> condition_groups({"speed": "1", "room": "test-5", "rt60": "0.385", "noise": "babble", "snr": "15.29"})
    {'room': 'RT60 < 0.4 s', 'noise': 'babble', 'SNR': '15-20 dB', 'channel': 'wideband', 'speed': '1', \
'all perturbations': 'perturbed'}
    """
    out = {}
    room = "room" in items
    if not room:
        out["room"] = "none"
    elif "rt60" not in items:
        out["room"] = "RT60 unknown"
    else:
        out["room"] = "RT60 < 0.4 s" if _number(items, "rt60") < 0.4 else "RT60 >= 0.4 s"
    noise = items.get("noise")
    out["noise"] = noise or "none"
    if noise and "snr" in items:
        snr = _number(items, "snr")
        out["SNR"] = "< 10 dB" if snr < 10 else "10-15 dB" if snr < 15 else "15-20 dB" if snr < 20 else ">= 20 dB"
    tel = "telephone" in items
    out["channel"] = "telephone" if tel else "wideband"
    speed = items.get("speed", "1")
    out["speed"] = speed
    changed = room or noise or tel or "volume" in items or _number(items, "speed", 1.0) != 1.0
    out["all perturbations"] = "perturbed" if changed else "clean"
    return out


def _number(items: dict[str, str], key: str, default: float | None = None) -> float:
    if key not in items and default is not None:
        return default
    try:
        return float(items[key])
    except ValueError:
        raise ValueError(f"bad '{key}={items[key]}'") from None


@dataclass
class Tally:
    """Word errors and reference words of one group."""

    errors: int = 0
    words: int = 0

    @property
    def wer(self) -> float | None:
        """None when the group has no reference words."""
        return 100.0 * self.errors / self.words if self.words else None


@dataclass
class Breakdown:
    """One system on one test set: ``groups[(dimension, group)]`` and ``speakers[spk]``."""

    groups: dict[tuple[str, str], Tally] = field(default_factory=dict)
    speakers: dict[str, Tally] = field(default_factory=dict)


def breakdown(ref: dict[str, list[str]], hyp: dict[str, list[str]], groups: dict[str, list[tuple[str, str]]],
              utt2spk: dict[str, str], ref_name: str = "ref", hyp_name: str = "hyp") -> Breakdown:
    """Per-group and per-speaker WER of ``hyp`` against ``ref`` (utterances missing from
    ``hyp`` count as empty hypotheses, as ``compute-wer --mode all``). ``groups``: utterance ->
    its (dimension, group) pairs (``condition_groups(...).items()``); an utterance without an
    entry is in no condition group."""
    from asr.score.wer import score_texts

    # a hypothesis of an utterance not in ref is an error (a file of another set)
    res = score_texts(ref, hyp, mode="all", ref_name=ref_name, hyp_name=hyp_name)
    out = Breakdown()
    for u in res.utts:
        tallies = [out.groups.setdefault(k, Tally()) for k in groups.get(u.utt, ())]
        if u.utt in utt2spk:
            tallies.append(out.speakers.setdefault(utt2spk[u.utt], Tally()))
        for t in tallies:
            t.errors += u.counts.errors
            t.words += len(u.ref)
    return out


def breakdown_tables(test_set: str, data_dir: str | os.PathLike, systems: list[tuple[str, Path]]) -> str:
    """Markdown: WER of every system (name, hypothesis file) by condition (when ``data_dir``
    has ``reco2aug``) and by speaker; "" when no system has hypotheses."""
    from asr.augment.data_dir import read_reco2aug
    from asr.io.tables import read_table
    from asr.score.wer import read_text

    data_dir = Path(data_dir)
    ref = read_text(data_dir / "text")
    conditions = read_reco2aug(data_dir)
    groups = {}
    for utt, items in conditions.items():
        try:
            groups[utt] = list(condition_groups(items).items())
        except ValueError as e:
            raise DataDirError(f"{data_dir / 'reco2aug'}: utterance {utt}: {e}") from None
    utt2spk = read_table(data_dir / "utt2spk") if (data_dir / "utt2spk").is_file() else {}
    # every utterance of the set is counted in every table, or the tables' words would not add up
    for table, name in ((groups, "reco2aug"), (utt2spk, "utt2spk")):
        missing = [u for u in ref if u not in table] if table else []
        if missing:
            raise DataDirError(f"{data_dir / name}: utterance {missing[0]} of {data_dir / 'text'} has no entry "
                               f"({len(missing)} utterance(s) missing)")
    results = [(name, breakdown(ref, read_text(hyp), groups, utt2spk, str(data_dir / "text"), str(hyp)))
               for name, hyp in systems]
    if not results:
        return ""
    names = [n for n, _ in results]
    head = "| {} | words | " + " | ".join(names) + " |"
    rule = "|---|---:|" + "---:|" * len(names)
    out = []
    if conditions:
        keys = sorted({k for _, b in results for k in b.groups}, key=_condition_order)
        # a dimension with a single group says nothing (e.g. speed on a set without speed perturbation)
        keys = [k for k in keys if sum(1 for x in keys if x[0] == k[0]) > 1]
    if conditions and keys:
        out += [f"WER in % of {test_set} by recording condition (from `{data_dir.name}/reco2aug`):", "",
                head.format("condition"), rule]
        for k in keys:
            words = results[0][1].groups[k].words
            out.append(f"| {k[0]}: {k[1]} | {words:,} | " + " | ".join(_cell(b.groups.get(k)) for _, b in results) + " |")
        out.append("")
    if utt2spk:
        spks = sorted({s for _, b in results for s in b.speakers})
        out += [f"WER in % of {test_set} by speaker:", "", head.format("speaker"), rule]
        for s in spks:
            words = results[0][1].speakers[s].words if s in results[0][1].speakers else 0
            out.append(f"| {s} | {words:,} | " + " | ".join(_cell(b.speakers.get(s)) for _, b in results) + " |")
        out.append("")
    return "\n".join(out)


def _cell(t: Tally | None) -> str:
    return "n/a" if t is None or t.wer is None else f"{t.wer:.2f}"


def _condition_order(key: tuple[str, str]) -> tuple[int, int, str]:
    dim, group = key
    first = {"none": 0, "wideband": 0, "clean": 0, "< 10 dB": 0, "10-15 dB": 1, "15-20 dB": 2, ">= 20 dB": 3,
             "RT60 < 0.4 s": 1, "RT60 >= 0.4 s": 2}
    return DIMENSIONS.index(dim), first.get(group, 5), group
