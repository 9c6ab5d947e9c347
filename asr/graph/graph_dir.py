"""The graph dir: a decoding graph and what it was built from (``asr make-graph`` output,
or a graph made by Kaldi's ``utils/mkgraph.sh``).

Files::

    HCLG.fst          OpenFst graph, input labels = transition-ids, output labels = word ids
    words.txt         the word table of the graph's output labels
    phones.txt        the phone table of the lang dir it was built with
    disambig_tid.int  disambiguation transition-ids (numbered from num_transition_ids + 1)
    num_pdfs          pdfs of the transition model it was built with (as Kaldi's mkgraph.sh)
    graph.json        ours only, written last: ``inputs`` (SHA-256 of L_disambig.fst, words.txt,
                      phones.txt, phones/disambig.int, tree, final.mdl, LM), ``options``,
                      ``files`` (SHA-256 of HCLG.fst and words.txt as written; ``sizes``: their
                      sizes: files over 64 MiB are checked by size on loading), ``num_pdfs``,
                      ``num_transition_ids``, ``stats``

``GraphDir.load(path)`` checks completeness (one-line GraphError naming the missing or
changed file); ``graph.check_model(tree, final_mdl, phones_txt)`` refuses a graph built for
another tree/transition model (ModelError naming both files). A Kaldi graph (no graph.json)
is checked by content instead: ``num_pdfs``, the first disambiguation id (= the model's
transition-ids + 1), phones.txt identity; input labels beyond the model's transition-ids are
caught when the graph is loaded. ``check_model`` returns a log line saying what was checked.

Example::

    >>> g = GraphDir.load("exp/graph")
    >>> log.info(g.check_model("exp/lstmp/final/tree", "exp/lstmp/final/final.mdl",
    ...                        "exp/lstmp/final/phones.txt"))
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.errors import GraphError, ModelError
from asr.io.fingerprint import file_hash, first_difference, unchanged

log = logging.getLogger(__name__)

HCLG = "HCLG.fst"
WORDS = "words.txt"
PHONES = "phones.txt"
DISAMBIG = "disambig_tid.int"
NUM_PDFS = "num_pdfs"
INFO = "graph.json"
LM_ARPA = "lm_arpa_sha256"  # graph.json: SHA-256 of the ARPA text G was compiled from (None: a G.fst)


@dataclass
class GraphDir:
    path: Path
    info: dict[str, Any] | None  # graph.json; None for a graph made by Kaldi's mkgraph.sh

    @property
    def hclg(self) -> Path:
        return self.path / HCLG

    @property
    def words(self) -> Path:
        return self.path / WORDS

    @property
    def phones(self) -> Path:
        return self.path / PHONES

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GraphDir":
        """Check that ``path`` is a complete graph dir (ours or Kaldi's) and return it."""
        path = Path(path)
        if not path.is_dir():
            raise GraphError(f"{path}: no such graph dir")
        for name in (HCLG, WORDS):
            if not (path / name).is_file():
                raise GraphError(f"{path}: incomplete graph dir: missing {name}")
        info = None
        if (path / INFO).exists():
            info = _read_json(path / INFO)
            files = info.get("files")
            if not isinstance(files, dict) or not isinstance(info.get("inputs"), dict):
                raise GraphError(f"{path / INFO}: not a graph.json written by asr make-graph")
            sizes = info.get("sizes", {})
            for name, digest in files.items():
                if not (path / name).is_file():
                    raise GraphError(f"{path}: incomplete graph dir: missing {name}")
                if not unchanged(path / name, digest, sizes.get(name)):
                    raise GraphError(f"{path / name} was changed after the graph was built "
                                     f"(its SHA-256 differs from {path / INFO}); rebuild the graph")
        return cls(path, info)

    def check_model(self, tree: str | os.PathLike | None, final_mdl: str | os.PathLike,
                    phones: str | os.PathLike | None = None, tm=None) -> str:
        """Refuse (ModelError) a graph not built for this tree / transition model / phone set;
        returns a line saying what was checked. ``tm``: the TransitionModel of ``final_mdl``
        if already read (needed for a Kaldi graph)."""
        if self.info is not None:
            built = self.info["inputs"]
            for key, path in (("tree", tree), ("final.mdl", final_mdl), ("phones.txt", phones)):
                if path is None or key not in built:
                    continue
                digest = file_hash(path)
                if digest != built[key]:
                    raise ModelError(
                        f"graph {self.path} was built for another {key} than {path}: "
                        f"{self.path / INFO} records {key} {built[key][:12]}, {path} is {digest[:12]} "
                        f"(rebuild the graph with the model's tree dir, or decode with the model's own graph)")
            return (f"graph {self.path} matches the model: tree, final.mdl and phones.txt are the ones "
                    f"it was built from ({INFO})")
        return self._check_kaldi_graph(final_mdl, phones, tm)

    def _check_kaldi_graph(self, final_mdl, phones, tm) -> str:
        if tm is None:
            from asr.hmm.transition_model import TransitionModel

            tm = TransitionModel.read(final_mdl)
        checked = []
        if (self.path / NUM_PDFS).is_file():
            n = _read_int(self.path / NUM_PDFS)
            if n != tm.num_pdfs:
                raise ModelError(f"graph {self.path} was built for another model than {final_mdl}: "
                                 f"{self.path / NUM_PDFS} says {n} pdfs, {final_mdl} has {tm.num_pdfs}")
            checked.append(f"num_pdfs {n} = the model's")
        if (self.path / DISAMBIG).is_file():
            ids = _read_ints(self.path / DISAMBIG)
            if ids:
                if min(ids) != tm.num_transition_ids + 1:
                    raise ModelError(
                        f"graph {self.path} was built for another model than {final_mdl}: disambiguation ids in "
                        f"{self.path / DISAMBIG} start at {min(ids)}, {final_mdl} has {tm.num_transition_ids} "
                        f"transition-ids (a graph for it starts them at {tm.num_transition_ids + 1})")
                checked.append(f"disambiguation ids from {min(ids)} = the model's transition-ids + 1")
        if phones is not None and Path(phones).is_file() and self.phones.is_file():
            if file_hash(phones) != file_hash(self.phones):
                raise ModelError(f"graph {self.path} was built with another phone set: {self.phones} differs "
                                 f"from {phones}")
            checked.append("phones.txt identical")
        if not checked:
            log.warning("graph %s has no %s, %s, %s nor %s: it cannot be checked against %s beyond its "
                        "transition-id range", self.path, INFO, NUM_PDFS, DISAMBIG, PHONES, final_mdl)
        return (f"graph {self.path} has no {INFO} (Kaldi mkgraph.sh?): checked by content: "
                + "; ".join(checked + ["input labels within the model's transition-ids (checked on loading)"]))

    def words_hash(self) -> str:
        return file_hash(self.words)


def graph_inputs(lang_dir: str | os.PathLike, tree_dir: str | os.PathLike, lm: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of everything an HCLG is built from (the ``inputs`` of graph.json)."""
    lang_dir, tree_dir = Path(lang_dir), Path(tree_dir)
    files = {"L_disambig.fst": lang_dir / "L_disambig.fst", "words.txt": lang_dir / "words.txt",
             "phones.txt": lang_dir / "phones.txt", "disambig.int": lang_dir / "phones" / "disambig.int",
             "tree": tree_dir / "tree", "final.mdl": tree_dir / "final.mdl", "lm": Path(lm)}
    for p in files.values():
        if not p.is_file():
            raise GraphError(f"missing {p}")
    return {k: file_hash(p) for k, p in files.items()}


def up_to_date(graph_dir: str | os.PathLike, inputs: dict[str, str], options: dict[str, Any]) -> bool:
    """True when ``graph_dir`` is a complete graph dir of ours built from ``inputs`` with ``options``."""
    try:
        g = GraphDir.load(graph_dir)
    except GraphError:
        return False
    if g.info is None:
        return False
    diff = first_difference(g.info["inputs"], inputs)
    if diff is not None:
        log.info("%s: %s changed since the graph was built; rebuilding", graph_dir, diff)
        return False
    return g.info.get("options") == options


def write_info(graph_dir: Path, inputs: dict[str, str], options: dict[str, Any], num_pdfs: int,
               num_transition_ids: int, stats: dict[str, Any], lm_arpa: str | None = None) -> None:
    """Write graph.json (last: it marks the graph dir complete). ``lm_arpa``: SHA-256 of the
    ARPA LM's text (``asr.io.fingerprint.arpa_text_hash``; None when G was given as an FST)."""
    from asr.io.atomic import atomic_write_text

    info = {"inputs": inputs, "options": options,
            "files": {HCLG: file_hash(graph_dir / HCLG), WORDS: file_hash(graph_dir / WORDS)},
            "sizes": {HCLG: (graph_dir / HCLG).stat().st_size, WORDS: (graph_dir / WORDS).stat().st_size},
            "num_pdfs": num_pdfs, "num_transition_ids": num_transition_ids, "stats": stats,
            LM_ARPA: lm_arpa}
    atomic_write_text(graph_dir / INFO, json.dumps(info, indent=1) + "\n")


def _read_json(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise GraphError(f"{path}: unreadable ({type(e).__name__})") from None
    if not isinstance(info, dict):
        raise GraphError(f"{path}: not a JSON object")
    return info


def _read_ints(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text(encoding="utf-8").split()]
    except (OSError, ValueError, UnicodeDecodeError):
        raise GraphError(f"{path}: expected integers") from None


def _read_int(path: Path) -> int:
    ints = _read_ints(path)
    if len(ints) != 1:
        raise GraphError(f"{path}: expected one integer")
    return ints[0]
