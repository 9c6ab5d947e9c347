"""Whole FSTs as numpy arrays, moved through the OpenFst binary formats.

Python access to kaldifst arcs costs about a microsecond per arc, so every bulk arc
operation in graph building (H, self-loops, relabelling, sorting) works on
:class:`FstArrays` and crosses to kaldifst objects as OpenFst binary data.

ConstFst binary layout (OpenFst, file version 2, tropical "standard" arcs)::

    header: int32 magic 2125659606 | str fst_type | str arc_type | int32 version
            | int32 flags | uint64 properties | int64 start | int64 num_states | int64 num_arcs
            (str = int32 length + bytes)
    states: num_states x {float32 final, uint32 first_arc, uint32 num_arcs,
                          uint32 num_input_epsilons, uint32 num_output_epsilons}
    arcs:   num_arcs x {int32 ilabel, int32 olabel, float32 weight, int32 nextstate}

VectorFst files are converted to const layout with kaldifst (C++) before parsing; symbol
tables embedded in a file are skipped.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import GraphError

FST_MAGIC = 2125659606
SYMBOL_TABLE_MAGIC = 2125658996
_HAS_ISYMBOLS, _HAS_OSYMBOLS = 0x1, 0x2
_STATE_DT = np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("nie", "<u4"), ("noe", "<u4")])
_ARC_DT = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])

# OpenFst property bits used in headers we write.
_K_EXPANDED = 0x1
_K_ACCEPTOR = 0x10000
_K_NOT_ACCEPTOR = 0x20000
_K_ILABEL_SORTED = 0x10000000
_K_NOT_ILABEL_SORTED = 0x20000000
_K_OLABEL_SORTED = 0x40000000
_K_NOT_OLABEL_SORTED = 0x80000000


@dataclass
class FstArrays:
    """A tropical FST: arcs as parallel arrays (sorted by source state), finals with inf = not final."""

    start: int
    final: np.ndarray  # float32 [num_states]
    src: np.ndarray  # int32 [num_arcs]
    ilabel: np.ndarray  # int32
    olabel: np.ndarray  # int32
    weight: np.ndarray  # float32
    dst: np.ndarray  # int32

    @property
    def num_states(self) -> int:
        return int(self.final.shape[0])

    @property
    def num_arcs(self) -> int:
        return int(self.src.shape[0])

    def sorted_arcs(self, by: str = "ilabel") -> "FstArrays":
        """Arcs sorted by (source, ``by`` label, other label) -- OpenFst arcsort order."""
        if by == "ilabel":
            keys = (self.src, self.ilabel, self.olabel)
        elif by == "olabel":
            keys = (self.src, self.olabel, self.ilabel)
        else:
            raise ValueError(f"sort by ilabel or olabel, not {by!r}")
        order = _sort_order(*keys)
        return FstArrays(
            self.start, self.final, self.src[order], self.ilabel[order], self.olabel[order], self.weight[order], self.dst[order]
        )


def _sort_order(*keys: np.ndarray) -> np.ndarray:
    """Stable order sorting by ``keys`` (most significant first, all >= 0): one argsort of
    a packed int64 key when the bit widths fit in 63 bits, else np.lexsort."""
    if len(keys[0]) == 0:
        return np.zeros(0, np.int64)
    bits = [max(int(k.max()), 0).bit_length() for k in keys]
    if sum(bits) > 63 or min(int(k.min()) for k in keys) < 0:
        return np.lexsort(keys[::-1])
    packed = np.zeros(len(keys[0]), np.int64)
    for k, b in zip(keys, bits):
        packed = (packed << b) | k.astype(np.int64)
    return np.argsort(packed, kind="stable")


def empty_fst() -> FstArrays:
    z = np.zeros(0, np.int32)
    return FstArrays(-1, np.zeros(0, np.float32), z, z, z, np.zeros(0, np.float32), z)


# ----------------------------------------------------------------------------- binary I/O


def _read_str(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<i", buf, pos)
    return buf[pos + 4 : pos + 4 + n].decode("ascii", "replace"), pos + 4 + n


def parse_header(buf: bytes, name: str = "<fst>") -> tuple[dict, int]:
    if len(buf) < 4 or struct.unpack_from("<i", buf, 0)[0] != FST_MAGIC:
        raise GraphError(f"{name}: not an OpenFst binary file (bad magic number)")
    fst_type, pos = _read_str(buf, 4)
    arc_type, pos = _read_str(buf, pos)
    version, flags, props, start, nstates, narcs = struct.unpack_from("<iiQqqq", buf, pos)
    pos += struct.calcsize("<iiQqqq")
    hdr = dict(fst_type=fst_type, arc_type=arc_type, version=version, flags=flags, properties=props,
               start=start, num_states=nstates, num_arcs=narcs)
    return hdr, pos


def _skip_symbol_table(buf: bytes, pos: int, name: str) -> int:
    """Position after an OpenFst binary symbol table (magic | name | int64 available key |
    int64 size | size x {str symbol, int64 key}) starting at ``pos``."""
    if struct.unpack_from("<i", buf, pos)[0] != SYMBOL_TABLE_MAGIC:
        raise GraphError(f"{name}: bad symbol table in the FST header")
    _, pos = _read_str(buf, pos + 4)
    _, size = struct.unpack_from("<qq", buf, pos)
    pos += 16
    for _ in range(size):
        (n,) = struct.unpack_from("<i", buf, pos)
        pos += 4 + n + 8
    return pos


def from_const_bytes(buf: bytes, name: str = "<fst>") -> FstArrays:
    """Parse ConstFst binary data (standard arcs) into arrays; embedded symbol tables are skipped."""
    hdr, pos = parse_header(buf, name)
    for flag in (_HAS_ISYMBOLS, _HAS_OSYMBOLS):
        if hdr["flags"] & flag:
            pos = _skip_symbol_table(buf, pos, name)
    if hdr["fst_type"] != "const" or hdr["arc_type"] != "standard":
        raise GraphError(f"{name}: expected a const/standard FST, found {hdr['fst_type']}/{hdr['arc_type']}")
    if hdr["version"] == 1:  # aligned file version: sections start on 16-byte boundaries
        pos = (pos + 15) // 16 * 16
    ns, na = hdr["num_states"], hdr["num_arcs"]
    states = np.frombuffer(buf, _STATE_DT, ns, pos)
    pos += ns * _STATE_DT.itemsize
    if hdr["version"] == 1:
        pos = (pos + 15) // 16 * 16
    arcs = np.frombuffer(buf, _ARC_DT, na, pos)
    narcs = states["narcs"].astype(np.int64)
    src = np.repeat(np.arange(ns, dtype=np.int32), narcs)
    # ConstFst stores each state's arcs contiguously from 'pos'; states are laid out in order.
    if ns and not np.array_equal(states["pos"].astype(np.int64), np.concatenate(([0], np.cumsum(narcs)[:-1]))):
        idx = np.repeat(states["pos"].astype(np.int64) - np.cumsum(narcs) + narcs, narcs) + np.arange(narcs.sum())
        arcs = arcs[idx]
    return FstArrays(
        int(hdr["start"]),
        states["final"].astype(np.float32),
        src,
        arcs["ilabel"].astype(np.int32),
        arcs["olabel"].astype(np.int32),
        arcs["weight"].astype(np.float32),
        arcs["nextstate"].astype(np.int32),
    )


def relabel_const_inplace(buf: bytearray, hdr: dict, pos: int, tid2pdf: np.ndarray, name: str = "<fst>") -> None:
    """Map the input labels of ConstFst data (file version 2) from transition-ids to
    ``tid2pdf[tid] + 1`` in place (0 stays 0); the header's sort flags are updated."""
    ns, na = hdr["num_states"], hdr["num_arcs"]
    arcs = np.frombuffer(buf, _ARC_DT, na, pos + ns * _STATE_DT.itemsize)
    il = arcs["ilabel"]
    tid2pdf = np.asarray(tid2pdf, dtype=np.int64)
    if na and (int(il.max()) >= len(tid2pdf) or int(il.min()) < 0):
        raise GraphError(f"{name}: input label {int(il.max())} is not a transition-id of the model "
                         f"({len(tid2pdf) - 1} transition-ids): graph and model do not match")
    table = (tid2pdf + 1).astype(np.int32)
    table[0] = 0
    il[...] = table[il]  # arcs is a writable view into buf
    # input labels changed: sortedness, acceptor and input-determinism become unknown/false
    props = int(hdr["properties"]) & ~(_K_ILABEL_SORTED | _K_ACCEPTOR | 0x40000 | 0x80000)
    props |= _K_NOT_ILABEL_SORTED
    off = pos - struct.calcsize("<Qqqq")
    struct.pack_into("<Q", buf, off, int(props))


def to_const_bytes(fa: FstArrays) -> bytes:
    """ConstFst binary data for ``fa`` (arcs are grouped by source state, order otherwise kept)."""
    order = np.argsort(fa.src, kind="stable")
    src, il, ol, w, dst = fa.src[order], fa.ilabel[order], fa.olabel[order], fa.weight[order], fa.dst[order]
    ns, na = fa.num_states, fa.num_arcs
    narcs = np.bincount(src, minlength=ns).astype(np.int64)
    first = np.concatenate(([0], np.cumsum(narcs)[:-1])).astype(np.int64)
    states = np.zeros(ns, _STATE_DT)
    states["final"] = fa.final
    states["pos"] = first
    states["narcs"] = narcs
    states["nie"] = np.bincount(src[il == 0], minlength=ns)
    states["noe"] = np.bincount(src[ol == 0], minlength=ns)
    arcs = np.zeros(na, _ARC_DT)
    arcs["ilabel"], arcs["olabel"], arcs["weight"], arcs["nextstate"] = il, ol, w, dst
    props = _K_EXPANDED
    if na:
        same = src[1:] == src[:-1]
        props |= _K_ILABEL_SORTED if not np.any(same & (il[1:] < il[:-1])) else _K_NOT_ILABEL_SORTED
        props |= _K_OLABEL_SORTED if not np.any(same & (ol[1:] < ol[:-1])) else _K_NOT_OLABEL_SORTED
        props |= _K_ACCEPTOR if np.array_equal(il, ol) else _K_NOT_ACCEPTOR
    else:
        props |= _K_ILABEL_SORTED | _K_OLABEL_SORTED | _K_ACCEPTOR
    head = struct.pack("<i", FST_MAGIC)
    for s in (b"const", b"standard"):
        head += struct.pack("<i", len(s)) + s
    head += struct.pack("<iiQqqq", 2, 0, props, fa.start if ns else -1, ns, na)
    return head + states.tobytes() + arcs.tobytes()


def read_fst(path: str | os.PathLike) -> FstArrays:
    """Read an OpenFst binary file (vector or const, standard arcs) into arrays."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise GraphError(f"cannot read FST {path}: {e}") from e
    hdr, _ = parse_header(buf, str(path))
    if hdr["arc_type"] != "standard":
        raise GraphError(f"{path}: arc type {hdr['arc_type']!r}, expected 'standard' (tropical)")
    if hdr["fst_type"] == "const" and hdr["version"] in (1, 2):
        return from_const_bytes(buf, str(path))
    if hdr["fst_type"] != "vector":
        raise GraphError(f"{path}: FST type {hdr['fst_type']!r}, expected 'vector' or 'const'")
    import kaldifst

    f = kaldifst.StdVectorFst.read(str(path))
    if f is None:
        raise GraphError(f"{path}: cannot read FST (kaldifst rejected it)")
    return from_kaldifst(f)


def write_fst(fa: FstArrays, path: str | os.PathLike, fst_type: str = "const") -> None:
    """Write arrays as an OpenFst binary file (``const`` or ``vector``), atomically."""
    from asr.io.atomic import atomic_write_bytes

    if fst_type == "const":
        atomic_write_bytes(path, to_const_bytes(fa))
    elif fst_type == "vector":
        atomic_write_bytes(path, _kaldifst_bytes(to_kaldifst(fa)))
    else:
        raise ValueError(f"fst_type must be const or vector, not {fst_type!r}")


def to_kaldifst(fa: FstArrays, const: bool = False):
    """A ``kaldifst.StdVectorFst`` (or ``StdConstFst``) holding ``fa``."""
    import kaldifst

    fd, tmp = tempfile.mkstemp(suffix=".fst", dir=_tmp_dir())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(to_const_bytes(fa))
        cf = kaldifst.StdConstFst.read(tmp)
        if cf is None:
            raise GraphError("kaldifst could not read a ConstFst we wrote")
        return cf if const else kaldifst.StdVectorFst(cf)
    finally:
        os.unlink(tmp)


def from_kaldifst(fst) -> FstArrays:
    """Arrays from a kaldifst FST (any standard-arc type)."""
    import kaldifst

    if fst.type != "const":
        fst = kaldifst.StdConstFst(fst)
    return from_const_bytes(_kaldifst_bytes(fst))


def _kaldifst_bytes(fst) -> bytes:
    """The OpenFst binary file kaldifst writes for ``fst`` (through a temporary file)."""
    fd, tmp = tempfile.mkstemp(suffix=".fst", dir=_tmp_dir())
    os.close(fd)
    try:
        if not fst.write(tmp):
            raise GraphError("kaldifst could not write an FST")
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def _tmp_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
