"""HMM topologies (Kaldi ``HmmTopology``, ``hmm/hmm-topology.cc``).

Text form (the lang dir's ``topo``)::

    <Topology>
    <TopologyEntry>
    <ForPhones>
    4 5 6
    </ForPhones>
    <State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
    ...
    <State> 3 </State>
    </TopologyEntry>
    </Topology>

The last state of each entry is the non-emitting final state. ``make_kaldi_topology`` builds
what Kaldi's ``utils/gen_topo.pl`` builds: 3-state left-to-right speech phones, 5-state
silence phones (ergodic middle states).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import FormatError
from asr.hmm.kaldi_objects import KaldiReader, KaldiWriter

NO_PDF = -1


@dataclass
class HmmState:
    forward_pdf_class: int = NO_PDF
    self_loop_pdf_class: int = NO_PDF
    transitions: list[tuple[int, float]] = field(default_factory=list)


class Topology:
    """A list of topology entries and the phones each one covers."""

    def __init__(self, entries: list[list[HmmState]], phone2idx: dict[int, int]):
        for entry in entries:  # probabilities are float32 in Kaldi
            for st in entry:
                st.transitions = [(int(d), float(np.float32(p))) for d, p in st.transitions]
        self.entries = entries
        self.phone2idx = dict(phone2idx)
        self.phones = sorted(self.phone2idx)
        self.check()

    # -- queries --------------------------------------------------------------
    def topology_for_phone(self, phone: int) -> list[HmmState]:
        try:
            return self.entries[self.phone2idx[phone]]
        except KeyError:
            raise FormatError(f"topology: phone {phone} is not covered by any <TopologyEntry>") from None

    def num_pdf_classes(self, phone: int) -> int:
        entry = self.topology_for_phone(phone)
        return 1 + max(max(s.forward_pdf_class, s.self_loop_pdf_class) for s in entry)

    def num_states(self, phone: int) -> int:
        """Number of emitting states (the entry minus its final state)."""
        return len(self.topology_for_phone(phone)) - 1

    def is_hmm(self) -> bool:
        return all(s.forward_pdf_class == s.self_loop_pdf_class for e in self.entries for s in e)

    def min_length(self, phone: int) -> int:
        """Fewest frames a path through the phone's HMM takes (Kaldi ``MinLength``)."""
        entry = self.topology_for_phone(phone)
        big = 1 << 30
        best = [big] * len(entry)
        best[0] = 0 if entry[0].forward_pdf_class == NO_PDF else 1
        changed = True
        while changed:
            changed = False
            for s, st in enumerate(entry):
                if best[s] == big:
                    continue
                for dst, _ in st.transitions:
                    cand = best[s] + (0 if entry[dst].forward_pdf_class == NO_PDF else 1)
                    if cand < best[dst]:
                        best[dst] = cand
                        changed = True
        return best[-1]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Topology):
            return NotImplemented
        return self.phone2idx == other.phone2idx and self.entries == other.entries

    # -- checks ----------------------------------------------------------------
    def check(self) -> None:
        if not self.entries or not self.phone2idx:
            raise FormatError("topology: empty")
        used = set(self.phone2idx.values())
        for i, entry in enumerate(self.entries):
            where = f"topology entry {i}"
            if i not in used:
                raise FormatError(f"{where}: covers no phones")
            if len(entry) < 2:
                raise FormatError(f"{where}: needs at least one emitting state and a final state")
            if entry[-1].transitions or entry[-1].forward_pdf_class != NO_PDF:
                raise FormatError(f"{where}: the last state must be non-emitting with no transitions")
            classes = set()
            for j, st in enumerate(entry[:-1]):
                if st.forward_pdf_class != NO_PDF:
                    classes.update((st.forward_pdf_class, st.self_loop_pdf_class))
                if not st.transitions:
                    raise FormatError(f"{where}: state {j} has no transitions out")
                dsts = [d for d, _ in st.transitions]
                if len(set(dsts)) != len(dsts):
                    raise FormatError(f"{where}: state {j} has a duplicate transition")
                for d, p in st.transitions:
                    if not 0 <= d < len(entry):
                        raise FormatError(f"{where}: state {j}: invalid destination {d}")
                    if p <= 0:
                        raise FormatError(f"{where}: state {j}: non-positive transition probability")
                    if d == len(entry) - 1 and st.forward_pdf_class == NO_PDF:
                        raise FormatError(f"{where}: state {j}: a non-emitting state may not go to the final state")
            if sorted(classes) != list(range(len(classes))):
                raise FormatError(f"{where}: pdf classes must be contiguous from 0, got {sorted(classes)}")

    # -- I/O -------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike) -> "Topology":
        """Read a topology file (Kaldi text form, or binary with the ``\\0B`` header)."""
        reader = KaldiReader.open(path)
        return cls.read_from(reader)

    @classmethod
    def from_text(cls, text: str, name: str = "<topo>") -> "Topology":
        return cls.read_from(KaldiReader(text.encode(), False, name))

    @classmethod
    def read_from(cls, r: KaldiReader) -> "Topology":
        r.expect("<Topology>")
        entries: list[list[HmmState]] = []
        phone2idx: dict[int, int] = {}
        if not r.binary:
            while True:
                tok = r.token()
                if tok == "</Topology>":
                    break
                if tok != "<TopologyEntry>":
                    raise r._fail(f"expected <TopologyEntry> or </Topology>, got {tok!r}")
                r.expect("<ForPhones>")
                phones = []
                while True:
                    tok = r.token()
                    if tok == "</ForPhones>":
                        break
                    try:
                        phones.append(int(tok))
                    except ValueError:
                        raise r._fail(f"expected a phone id, got {tok!r}") from None
                entry: list[HmmState] = []
                tok = r.token()
                while tok != "</TopologyEntry>":
                    if tok != "<State>":
                        raise r._fail(f"expected <State> or </TopologyEntry>, got {tok!r}")
                    idx = r.int32()
                    if idx != len(entry):
                        raise r._fail(f"states must be numbered in order from 0; expected {len(entry)}, got {idx}")
                    tok = r.token()
                    st = HmmState()
                    if tok == "<PdfClass>":
                        st.forward_pdf_class = st.self_loop_pdf_class = r.int32()
                        tok = r.token()
                    elif tok == "<ForwardPdfClass>":
                        st.forward_pdf_class = r.int32()
                        r.expect("<SelfLoopPdfClass>")
                        st.self_loop_pdf_class = r.int32()
                        tok = r.token()
                    while tok == "<Transition>":
                        dst = r.int32()
                        st.transitions.append((dst, r.float()))
                        tok = r.token()
                    if tok != "</State>":
                        raise r._fail(f"expected </State>, got {tok!r}")
                    entry.append(st)
                    tok = r.token()
                for p in phones:
                    if p <= 0:
                        raise r._fail(f"phone ids must be positive, got {p}")
                    if p in phone2idx:
                        raise r._fail(f"phone {p} appears in more than one topology entry")
                    phone2idx[p] = len(entries)
                entries.append(entry)
        else:
            phones = r.int_vector()
            p2i = r.int_vector()
            n = r.int32()
            is_hmm = True
            if n == -1:
                is_hmm = False
                n = r.int32()
            for _ in range(n):
                entry = []
                for _ in range(r.int32()):
                    st = HmmState()
                    st.forward_pdf_class = r.int32()
                    st.self_loop_pdf_class = st.forward_pdf_class if is_hmm else r.int32()
                    for _ in range(r.int32()):
                        dst = r.int32()
                        st.transitions.append((dst, r.float()))
                    entry.append(st)
                entries.append(entry)
            r.expect("</Topology>")
            for p in phones.tolist():
                phone2idx[p] = int(p2i[p])
        try:
            return cls(entries, phone2idx)
        except FormatError as e:
            raise FormatError(f"{r.name}: {e}") from None

    def write_to(self, w: KaldiWriter) -> None:
        is_hmm = self.is_hmm()
        w.token("<Topology>")
        if not w.binary:
            w.raw("\n")
            for i, entry in enumerate(self.entries):
                w.token("<TopologyEntry>")
                w.raw("\n")
                w.token("<ForPhones>")
                w.raw("\n")
                w.raw("".join(f"{p} " for p in self.phones if self.phone2idx[p] == i) + "\n")
                w.token("</ForPhones>")
                w.raw("\n")
                for j, st in enumerate(entry):
                    w.token("<State>")
                    w.int32(j)
                    if st.forward_pdf_class != NO_PDF:
                        if is_hmm:
                            w.token("<PdfClass>")
                            w.int32(st.forward_pdf_class)
                        else:
                            w.token("<ForwardPdfClass>")
                            w.int32(st.forward_pdf_class)
                            w.token("<SelfLoopPdfClass>")
                            w.int32(st.self_loop_pdf_class)
                    for dst, p in st.transitions:
                        w.token("<Transition>")
                        w.int32(dst)
                        w.float(p)
                    w.token("</State>")
                    w.raw("\n")
                w.token("</TopologyEntry>")
                w.raw("\n")
        else:
            w.int_vector(self.phones)
            p2i = [-1] * (max(self.phones) + 1)
            for p, i in self.phone2idx.items():
                p2i[p] = i
            w.int_vector(p2i)
            if not is_hmm:
                w.int32(-1)
            w.int32(len(self.entries))
            for entry in self.entries:
                w.int32(len(entry))
                for st in entry:
                    w.int32(st.forward_pdf_class)
                    if not is_hmm:
                        w.int32(st.self_loop_pdf_class)
                    w.int32(len(st.transitions))
                    for dst, p in st.transitions:
                        w.int32(dst)
                        w.float(p)
        w.token("</Topology>")
        w.newline()

    def to_text(self) -> str:
        w = KaldiWriter(binary=False)
        self.write_to(w)
        return w.getvalue().decode("latin-1")

    def write(self, path: str | os.PathLike) -> None:
        from asr.io.atomic import atomic_write_text

        atomic_write_text(Path(path), self.to_text())


def make_kaldi_topology(
    nonsilence_phones: list[int],
    silence_phones: list[int],
    num_nonsil_states: int = 3,
    num_sil_states: int = 5,
) -> Topology:
    """The topology Kaldi's ``utils/gen_topo.pl`` writes.

    Speech phones: ``num_nonsil_states`` left-to-right states, self-loop 0.75, forward 0.25.
    Silence (5 states): state 0 goes to states 0..3, states 1..3 go to 1..4 (all 1/4),
    state 4 has self-loop 0.75 and exit 0.25. With ``num_sil_states == 1`` a single state.
    """
    if not 1 <= num_nonsil_states <= 100:
        raise FormatError(f"unexpected number of non-silence states {num_nonsil_states}")
    if not (num_sil_states == 1 or 3 <= num_sil_states <= 100):
        raise FormatError(f"unexpected number of silence states {num_sil_states} (1 or >= 3)")
    entries: list[list[HmmState]] = []
    phone2idx: dict[int, int] = {}
    if nonsilence_phones:
        n = num_nonsil_states
        entry = [HmmState(s, s, [(s, 0.75), (s + 1, 0.25)]) for s in range(n)]
        entry.append(HmmState())
        phone2idx.update({p: len(entries) for p in nonsilence_phones})
        entries.append(entry)
    if silence_phones:
        n = num_sil_states
        if n > 1:
            tp = 1.0 / (n - 1)
            entry = [HmmState(0, 0, [(d, tp) for d in range(n - 1)])]
            for s in range(1, n - 1):
                entry.append(HmmState(s, s, [(d, tp) for d in range(1, n)]))
            entry.append(HmmState(n - 1, n - 1, [(n - 1, 0.75), (n, 0.25)]))
        else:
            entry = [HmmState(0, 0, [(0, 0.75), (1, 0.25)])]
        entry.append(HmmState())
        phone2idx.update({p: len(entries) for p in silence_phones})
        entries.append(entry)
    return Topology(entries, phone2idx)
