"""The alignment dir, which is also a tree dir: what ``asr import-ali``, ``asr align`` and
``asr build-tree`` write (and flat start), what ``asr build-tree``, ``asr train``,
``asr compute-priors``, ``asr make-graph`` and ``asr pack-model-dir`` read.

Files::

    ali.pdf.ark        pdf id per feature frame (text int-vector ark; always)
    ali.tid.ark        transition-id per frame (not for --format pdf)
    phones.ark         phone id per frame (not for --format pdf)
    tree, final.mdl    the tree and transition model the ids refer to (absent for pdf arks
                       imported without --tree-dir)
    num_pdfs           one integer
    silence_pdfs.int   pdfs of silence phones (when the lang dir is known; for priors)
    phones.txt         the lang dir's phone table (when known)
    excluded.txt       utterances left out and why
    <step>_stats.json  import_stats.json / align_stats.json / build_tree.json: counts of the step
    ali_dir.json       written last, marks the dir complete: ``kind`` (import, align, tree,
                       flat_start, ...), ``inputs`` (fingerprints of what it was made from and the
                       options), ``files`` (size and SHA-256 of every file above), ``num_pdfs``,
                       ``utterances``, ``frames``

Writing: ``with AliDir.writer(out, kind, inputs) as tmp: ...write files into tmp...`` builds
the whole dir beside ``out`` and replaces ``out`` only when the block succeeded (ali_dir.json
written last), so a failed step leaves no ``ali.tid.ark`` that looks finished. Reading:
``AliDir.load(out)`` checks completeness (one-line AlignmentError naming the missing or
changed file); ``AliDir.up_to_date(out, kind, inputs)`` is the "already done" test.

Example::

    >>> inputs = {"ctm": file_hash("data/train/phones.ctm"), "lang": dir_hash("data/lang"), ...}
    >>> if not AliDir.up_to_date("exp/ali", "import", inputs):
    ...     with AliDir.writer("exp/ali", "import", inputs) as tmp:
    ...         write_int_ark(tmp / "ali.pdf.ark", ...)
    >>> ali = AliDir.load("exp/ali"); ali.num_pdfs, ali.file("ali.pdf.ark")
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from asr.errors import AlignmentError
from asr.io.fingerprint import file_hash, first_difference

log = logging.getLogger(__name__)

INFO = "ali_dir.json"
PDF_ARK = "ali.pdf.ark"
TID_ARK = "ali.tid.ark"
PHONE_ARK = "phones.ark"
# an existing dir holding one of these is an alignment dir (or a flat start's OUT holding its
# work dir, whose log/ it makes first) that a writer may replace; any other non-empty dir (a
# data or lang dir, or an exp/ given as OUT by mistake) is an error, not deleted
REPLACEABLE = (INFO, PDF_ARK, TID_ARK, "work/log")
_HASH_CHECKED = ("tree", "final.mdl", "num_pdfs", "silence_pdfs.int", "phones.txt")  # small, decisive


@dataclass
class AliDir:
    path: Path
    info: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.info.get("kind", ""))

    @property
    def num_pdfs(self) -> int | None:
        """Pdfs of the dir's model (None: pdf arks imported without a tree)."""
        v = self.info["num_pdfs"]
        return None if v is None else int(v)

    @property
    def has_tids(self) -> bool:
        return TID_ARK in self.info.get("files", {})

    @property
    def has_model(self) -> bool:
        """True when the dir holds the tree and transition model its ids refer to."""
        files = self.info.get("files", {})
        return "tree" in files and "final.mdl" in files

    def file(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def load(cls, path: str | os.PathLike, need_tids: bool = False, need_model: bool = False) -> "AliDir":
        """A complete alignment dir (AlignmentError naming what is missing or changed)."""
        path = Path(path)
        if not path.is_dir():
            raise AlignmentError(f"{path}: no such alignment dir")
        if not (path / INFO).is_file():
            what = "made before ali_dir.json existed, or by a step that failed" if (path / PDF_ARK).exists() else \
                "nothing finished there"
            raise AlignmentError(f"{path}: not a finished alignment dir (no {INFO}: {what}); re-run the step")
        try:
            info = json.loads((path / INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise AlignmentError(f"{path / INFO}: unreadable ({type(e).__name__})") from None
        if not isinstance(info, dict) or not isinstance(info.get("files"), dict) or "num_pdfs" not in info:
            raise AlignmentError(f"{path / INFO}: not an ali_dir.json written by asr")
        for name, rec in info["files"].items():
            f = path / name
            if not f.is_file():
                raise AlignmentError(f"{path}: incomplete alignment dir: missing {name}")
            changed = f.stat().st_size != rec["size"] or (name in _HASH_CHECKED and file_hash(f) != rec["sha256"])
            if changed:
                raise AlignmentError(f"{f} was changed after {path} was written (it differs from {path / INFO}); "
                                     f"re-run the step that made it")
        d = cls(path, info)
        if need_tids and not d.has_tids:
            raise AlignmentError(f"{path}: has no {TID_ARK} (pdf-only alignments); this step needs transition-ids")
        if need_model and not d.has_model:
            raise AlignmentError(f"{path}: has no tree and final.mdl")
        return d

    @classmethod
    def up_to_date(cls, path: str | os.PathLike, kind: str, inputs: dict[str, Any]) -> bool:
        """True when ``path`` is a finished alignment dir of ``kind`` made from exactly ``inputs``."""
        try:
            d = cls.load(path)
        except AlignmentError:
            return False
        if d.kind != kind or not isinstance(d.info.get("inputs"), dict):
            return False
        diff = first_difference(d.info["inputs"], _plain(inputs))
        if diff is not None:
            log.info("%s: %s changed since it was made; redoing it", path, diff)
            return False
        return True

    @classmethod
    @contextlib.contextmanager
    def writer(cls, path: str | os.PathLike, kind: str, inputs: dict[str, Any]) -> Iterator[Path]:
        """Yield a temporary dir to write the alignment dir's files into; on success
        ali_dir.json is written (``num_pdfs`` from the num_pdfs file, counts from ali.pdf.ark)
        and the dir replaces ``path``; on an exception nothing changes at ``path``."""
        from asr.io.atomic import atomic_dir, atomic_write_text

        with atomic_dir(path, replaces=REPLACEABLE) as tmp:
            yield tmp
            if not (tmp / PDF_ARK).is_file():
                raise AlignmentError(f"{path}: no {PDF_ARK} written")
            files = {p.name: {"size": p.stat().st_size, "sha256": file_hash(p)}
                     for p in sorted(tmp.iterdir()) if p.is_file() and p.name != INFO}
            utts, frames = _count(tmp / PDF_ARK)
            if not utts:
                raise AlignmentError(f"{path} not written: no utterance was aligned")
            num_pdfs = int((tmp / "num_pdfs").read_text().split()[0]) if (tmp / "num_pdfs").is_file() else None
            info = {"kind": kind, "num_pdfs": num_pdfs, "utterances": utts, "frames": frames,
                    "inputs": _plain(inputs), "files": files}
            atomic_write_text(tmp / INFO, json.dumps(info, indent=1) + "\n")


def _count(pdf_ark: Path) -> tuple[int, int]:
    from asr.io.int_ark import iter_int_ark

    utts = frames = 0
    for _, a in iter_int_ark(pdf_ark):
        utts += 1
        frames += len(a)
    return utts, frames


def _plain(obj: Any) -> Any:
    """JSON round trip: what ali_dir.json holds (tuples become lists, paths strings)."""
    return json.loads(json.dumps(obj, default=str))
