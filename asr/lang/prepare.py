"""``asr prepare-lang``: a Kaldi dict dir → a Kaldi lang dir (``utils/prepare_lang.sh``).

Output layout (as Kaldi, with position-dependent phones by default)::

    phones.txt   <eps> 0, silence phones (SIL SIL_B SIL_E SIL_I SIL_S ...), non-silence
                 phones (AA_B AA_E AA_I AA_S ...), then #0 ... #k
    words.txt    <eps> 0, words (byte order), #0, <s>, </s>
    topo         3-state speech phones, 5-state silence phones (gen_topo.pl)
    L.fst        lexicon with optional silence (prob 0.5) — make_lexicon_fst.py
    L_disambig.fst  the same with disambiguation symbols and #0 self-loops
    oov.txt oov.int
    phones/{silence,nonsilence,optional_silence,disambig,context_indep}.{txt,int,csl}
    phones/{sets,extra_questions}.{txt,int}  phones/roots.{txt,int}
    phones/word_boundary.{txt,int}  phones/align_lexicon.{txt,int}
    phones/wdisambig.txt phones/wdisambig_{phones,words}.int

The OOV word (``--oov``, default ``<UNK>``) must have a pronunciation; when the lexicon has
none it gets one with the garbage phone ``SPN`` (added as a silence phone), as Kaldi recipes do.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from asr.errors import FormatError
from asr.io.atomic import atomic_dir, atomic_write_text
from asr.lang.dict_dir import read_dict_dir
from asr.hmm.topology import make_kaldi_topology

log = logging.getLogger(__name__)

POSITIONS = ("_B", "_E", "_I", "_S")


def prepare_lang(
    dict_dir: str | os.PathLike,
    lang_dir: str | os.PathLike,
    oov_word: str = "<UNK>",
    position_dependent_phones: bool = True,
    sil_prob: float = 0.5,
    num_sil_states: int = 5,
    num_nonsil_states: int = 3,
    share_silence_phones: bool = False,
    garbage_phone: str = "SPN",
) -> dict:
    """Build the lang dir; returns a summary dict (numbers of phones, words, disambig symbols)."""
    dd = read_dict_dir(dict_dir)
    if not 0.0 <= sil_prob < 1.0:
        raise FormatError(f"--sil-prob must be in [0, 1), got {sil_prob}")
    if oov_word not in dd.lexicon.words():
        known = {p for line in dd.silence_phones + dd.nonsilence_phones for p in line}
        if garbage_phone not in known:
            dd.silence_phones.append([garbage_phone])
        dd.lexicon.entries.append((oov_word, 1.0, [garbage_phone]))
        log.info("OOV word %s not in the lexicon: added '%s %s'", oov_word, oov_word, garbage_phone)
    # built whole and swapped in: no file of an earlier lang dir (e.g. phones/word_boundary.*
    # of position-dependent phones) survives, and an interrupted run leaves the old one
    with atomic_dir(lang_dir, replaces=("phones.txt", "words.txt", "L.fst")) as tmp:
        summary = _write_lang(dd, Path(dict_dir), tmp, oov_word, position_dependent_phones, sil_prob,
                              num_sil_states, num_nonsil_states, share_silence_phones)
    log.info("lang dir %s: %d phones, %d disambiguation symbols, %d words, %d pronunciations",
             lang_dir, summary["phones"], summary["disambig"], summary["words"], summary["prons"])
    return summary


def _write_lang(dd, dict_dir: Path, out: Path, oov_word: str, position_dependent_phones: bool, sil_prob: float,
                num_sil_states: int, num_nonsil_states: int, share_silence_phones: bool) -> dict:
    """The lang dir's files (from the dict dir ``dd`` read from ``dict_dir``), written into ``out``
    (see prepare_lang)."""
    (out / "phones").mkdir(parents=True, exist_ok=True)

    # phone_map: base phone -> its variants (Kaldi's phone_map.txt)
    def variants(p: str, silence: bool) -> list[str]:
        if not position_dependent_phones:
            return [p]
        return ([p] if silence else []) + [p + s for s in POSITIONS]

    sil_map = {p: variants(p, True) for line in dd.silence_phones for p in line}
    nonsil_map = {p: variants(p, False) for line in dd.nonsilence_phones for p in line}
    phone_map = {**sil_map, **nonsil_map}

    def apply_map(line: list[str]) -> list[str]:
        return [v for p in line for v in phone_map[p]]

    # lexicon with position markers
    lex = []
    for word, prob, phones in dd.lexicon.entries:
        if position_dependent_phones:
            if len(phones) == 1:
                phones = [phones[0] + "_S"]
            else:
                phones = [phones[0] + "_B"] + [p + "_I" for p in phones[1:-1]] + [phones[-1] + "_E"]
        lex.append((word, prob, phones))

    silence = [v for line in dd.silence_phones for v in apply_map(line)]
    nonsilence = [v for line in dd.nonsilence_phones for v in apply_map(line)]
    if share_silence_phones:
        sets = [[v for line in dd.silence_phones for v in apply_map(line)]] + [apply_map(l) for l in dd.nonsilence_phones]
        roots = [("not-shared", "not-split", sets[0])] + [("shared", "split", s) for s in sets[1:]]
    else:
        sets = [apply_map(l) for l in dd.silence_phones + dd.nonsilence_phones]
        roots = [("shared", "split", s) for s in sets]
    extra_q = [apply_map(q) for q in dd.extra_questions]
    if position_dependent_phones:
        nonsil_base = [p for line in dd.nonsilence_phones for p in line]
        sil_base = [p for line in dd.silence_phones for p in line]
        for s in POSITIONS:
            extra_q.append([p + s for p in nonsil_base])
        for s in ("",) + POSITIONS:
            extra_q.append([p + s for p in sil_base])

    lex_disambig, max_disambig = add_lex_disambig(lex)
    ndisambig = max_disambig + 1  # one more for the optional silence in L_disambig
    disambig = [f"#{i}" for i in range(ndisambig + 1)]

    phones_list = ["<eps>"] + silence + nonsilence + disambig
    phone_id = {p: i for i, p in enumerate(phones_list)}
    if len(phone_id) != len(phones_list):
        raise FormatError(f"{dict_dir}: duplicate phone symbols after adding position markers")
    words = sorted({w for w, _, _ in lex}, key=lambda w: w.encode("utf-8"))
    words_list = ["<eps>"] + words + ["#0", "<s>", "</s>"]
    word_id = {w: i for i, w in enumerate(words_list)}

    def write_syms(path: Path, syms: list[str]) -> None:
        atomic_write_text(path, "".join(f"{s} {i}\n" for i, s in enumerate(syms)))

    def write_list(name: str, items: list[str], csl: bool = True) -> None:
        atomic_write_text(out / "phones" / f"{name}.txt", "".join(f"{x}\n" for x in items))
        atomic_write_text(out / "phones" / f"{name}.int", "".join(f"{phone_id[x]}\n" for x in items))
        if csl:
            atomic_write_text(out / "phones" / f"{name}.csl", ":".join(str(phone_id[x]) for x in items) + "\n")

    def write_lines(name: str, lines: list[list[str]]) -> None:
        atomic_write_text(out / "phones" / f"{name}.txt", "".join(" ".join(l) + "\n" for l in lines))
        atomic_write_text(out / "phones" / f"{name}.int",
                          "".join(" ".join(str(phone_id[p]) for p in l) + "\n" for l in lines))

    write_syms(out / "phones.txt", phones_list)
    write_syms(out / "words.txt", words_list)
    write_list("silence", silence)
    write_list("nonsilence", nonsilence)
    write_list("optional_silence", [dd.optional_silence])
    write_list("context_indep", silence)
    write_list("disambig", disambig)
    write_lines("sets", sets)
    write_lines("extra_questions", extra_q)
    atomic_write_text(out / "phones" / "roots.txt", "".join(f"{a} {b} {' '.join(s)}\n" for a, b, s in roots))
    atomic_write_text(out / "phones" / "roots.int",
                      "".join(f"{a} {b} {' '.join(str(phone_id[p]) for p in s)}\n" for a, b, s in roots))
    if position_dependent_phones:
        kinds = {"_I": "internal", "_B": "begin", "_S": "singleton", "_E": "end"}
        wb = [(p, kinds.get(p[-2:], "nonword")) for p in silence + nonsilence]
        atomic_write_text(out / "phones" / "word_boundary.txt", "".join(f"{p} {k}\n" for p, k in wb))
        atomic_write_text(out / "phones" / "word_boundary.int", "".join(f"{phone_id[p]} {k}\n" for p, k in wb))
    align = sorted({(w, w, *p) for w, _, p in lex} | {("<eps>", "<eps>", dd.optional_silence)},
                   key=lambda t: " ".join(t).encode("utf-8"))
    atomic_write_text(out / "phones" / "align_lexicon.txt", "".join(" ".join(t) + "\n" for t in align))
    atomic_write_text(out / "phones" / "align_lexicon.int", "".join(
        " ".join([str(word_id[t[0]]), str(word_id[t[1]])] + [str(phone_id[p]) for p in t[2:]]) + "\n" for t in align))
    atomic_write_text(out / "phones" / "wdisambig.txt", "#0\n")
    atomic_write_text(out / "phones" / "wdisambig_phones.int", f"{phone_id['#0']}\n")
    atomic_write_text(out / "phones" / "wdisambig_words.int", f"{word_id['#0']}\n")
    atomic_write_text(out / "oov.txt", oov_word + "\n")
    atomic_write_text(out / "oov.int", f"{word_id[oov_word]}\n")

    topo = make_kaldi_topology([phone_id[p] for p in nonsilence], [phone_id[p] for p in silence],
                               num_nonsil_states, num_sil_states)
    topo.write(out / "topo")

    sil_id = phone_id[dd.optional_silence]
    lex_int = [(word_id[w], pr, [phone_id[p] for p in ph]) for w, pr, ph in lex]
    lexd_int = [(word_id[w], pr, [phone_id[p] for p in ph]) for w, pr, ph in lex_disambig]
    write_fst(lexicon_fst_text(lex_int, sil_prob, sil_id, None), out / "L.fst")
    write_fst(lexicon_fst_text(lexd_int, sil_prob, sil_id, phone_id[f"#{ndisambig}"]), out / "L_disambig.fst",
              self_loops=(phone_id["#0"], word_id["#0"]))
    summary = {"phones": len(silence) + len(nonsilence), "disambig": len(disambig), "words": len(words),
               "prons": len(lex)}
    return summary


def add_lex_disambig(lex: list[tuple[str, float, list[str]]]) -> tuple[list, int]:
    """Kaldi ``add_lex_disambig.pl``: append ``#1``, ``#2``... to pronunciations that are
    duplicates or prefixes of others. Returns the new lexicon and the highest symbol used."""
    count: dict[tuple, int] = {}
    prefixes: set[tuple] = set()
    for _, _, p in lex:
        count[tuple(p)] = count.get(tuple(p), 0) + 1
        for k in range(len(p) - 1, -1, -1):
            prefixes.add(tuple(p[:k]))
    out = []
    max_d = 0
    last: dict[tuple, int] = {}
    for w, pr, p in lex:
        key = tuple(p)
        if key not in prefixes and count[key] == 1:
            out.append((w, pr, list(p)))
            continue
        cur = last.get(key, 0) + 1
        last[key] = cur
        max_d = max(max_d, cur)
        out.append((w, pr, list(p) + [f"#{cur}"]))
    return out, max_d


def lexicon_fst_text(lex: list[tuple[int, float, list[int]]], sil_prob: float, sil_phone: int,
                     sil_disambig: int | None) -> str:
    """Text FST (integer labels) as Kaldi's ``make_lexicon_fst.py``."""
    lines = []
    arc = lambda s, d, i, o, c: lines.append(f"{s}\t{d}\t{i}\t{o}\t{c:.10g}")  # noqa: E731
    if sil_prob == 0.0:
        loop, nxt = 0, 1
        for w, pr, pron in lex:
            cost = -math.log(pr)
            cur = loop
            for i in range(len(pron) - 1):
                arc(cur, nxt, pron[i], w if i == 0 else 0, cost if i == 0 else 0.0)
                cur, nxt = nxt, nxt + 1
            i = len(pron) - 1
            arc(cur, loop, pron[i], w if i <= 0 else 0, cost if i <= 0 else 0.0)
        lines.append(f"{loop}\t0")
        return "\n".join(lines) + "\n"
    sil_cost, nosil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    start, loop, sil, nxt = 0, 1, 2, 3
    arc(start, loop, 0, 0, nosil_cost)
    arc(start, sil, 0, 0, sil_cost)
    if sil_disambig is None:
        arc(sil, loop, sil_phone, 0, 0.0)
    else:
        arc(sil, nxt, sil_phone, 0, 0.0)
        arc(nxt, loop, sil_disambig, 0, 0.0)
        nxt += 1
    for w, pr, pron in lex:
        cost = -math.log(pr)
        cur = loop
        for i in range(len(pron) - 1):
            arc(cur, nxt, pron[i], w if i == 0 else 0, cost if i == 0 else 0.0)
            cur, nxt = nxt, nxt + 1
        i = len(pron) - 1
        arc(cur, loop, pron[i], w if i <= 0 else 0, nosil_cost + (cost if i <= 0 else 0.0))
        arc(cur, sil, pron[i], w if i <= 0 else 0, sil_cost + (cost if i <= 0 else 0.0))
    lines.append(f"{loop}\t0")
    return "\n".join(lines) + "\n"


def write_fst(text: str, path: Path, self_loops: tuple[int, int] | None = None) -> None:
    """Compile a text FST with kaldifst, add #0 self-loops if asked (fstaddselfloops),
    sort arcs on output labels, write atomically."""
    import kaldifst

    fst = kaldifst.compile(text, acceptor=False)
    if self_loops is not None:
        kaldifst.add_self_loops(fst, [self_loops[0]], [self_loops[1]])
    kaldifst.arcsort(fst, sort_type="olabel")
    tmp = path.with_name(f".{path.name}.tmp")
    fst.write(str(tmp))
    os.replace(tmp, path)
