"""LMDB's file format (0.9, 64-bit), read with plain file I/O instead of LMDB.

LMDB trusts its file: a truncated data.mdb makes it read past the end of its map
(SIGBUS), a zeroed or garbled page trips an assertion (SIGABRT) or sends it after
garbage. None of that can be caught in Python, so a store is vetted before LMDB reads
a page of it: the two meta pages (magic, version, page size, last page, txn id) before
LMDB opens the file, then, inside a read transaction (so writers leave its pages alone),
the pages of the trees automem reads, walked from their roots: page types and levels,
node bounds, key order, overflow runs, no page used twice, none past the file's end.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Iterator

import lmdb
import msgspec

MAGIC = 0xBEEFC0DE
DATA_VERSION = 1
PAGE_HEADER = 16  # pgno u64, pad u16, flags u16, lower u16, upper u16 (overflow: pages u32)
NODE_HEADER = 8  # lo u16, hi u16, flags u16, ksize u16
META_SIZE = 136
INVALID_PAGE = (1 << 64) - 1
P_BRANCH, P_LEAF, P_OVERFLOW, P_META = 0x01, 0x02, 0x04, 0x08
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
INTEGERKEY = 0x08
MAX_MAP = 1 << 48  # bytes: no map LMDB could make on a 64-bit machine is larger (the address space)
MAX_DEPTH = 32

_page_header = struct.Struct("<QHHHH")
_node_header = struct.Struct("<HHHH")
_tree = struct.Struct("<IHHQQQQQ")  # MDB_db: pad (the free tree's: page size), flags, depth, 3 page counts, entries, root
_u16 = struct.Struct("<H")
_u64 = struct.Struct("<Q")


class Damaged(Exception):
    """The file is not safe for LMDB to map: the message says where and why."""


class NotLmdb(Damaged):
    """The file does not start with an LMDB meta page: not an LMDB file (or its first page is gone)."""


class Tree(msgspec.Struct, frozen=True):
    flags: int
    depth: int
    entries: int
    root: int

    @classmethod
    def parse(cls, buf: bytes | mmap.mmap, at: int) -> tuple[int, Tree]:
        pad, flags, depth, _b, _l, _o, entries, root = _tree.unpack_from(buf, at)
        return pad, cls(flags, depth, entries, root)


class Meta(msgspec.Struct, frozen=True):
    page_size: int
    map_size: int
    last_page: int
    txnid: int
    free: Tree
    main: Tree


def _meta_at(buf: mmap.mmap, at: int, which: int) -> tuple[int, Meta]:
    _pgno, _pad, flags, _lo, _up = _page_header.unpack_from(buf, at)
    magic, version, _addr, map_size = struct.unpack_from("<IIQQ", buf, at + PAGE_HEADER)
    if not flags & P_META or magic != MAGIC:
        raise (NotLmdb if which == 0 else Damaged)(f"meta page {which} is not an LMDB meta page (flags {flags:#x}, magic {magic:#x})")
    if version != DATA_VERSION:
        raise Damaged(f"meta page {which} has LMDB data version {version}, not {DATA_VERSION}")
    psize, free = Tree.parse(buf, at + PAGE_HEADER + 24)
    _, main = Tree.parse(buf, at + PAGE_HEADER + 72)
    last, txnid = struct.unpack_from("<QQ", buf, at + PAGE_HEADER + 120)
    return psize, Meta(psize, map_size, last, txnid, free, main)


class Stale(Exception):
    """Both meta pages moved past the snapshot asked for (two commits since): take a new one."""


def read_meta(buf: mmap.mmap, txnid: int | None = None) -> Meta:
    """The meta of snapshot `txnid` (None: the newer one, as LMDB picks), checked."""
    size = len(buf)
    if size < PAGE_HEADER + META_SIZE:
        raise NotLmdb(f"data.mdb is {size} bytes, shorter than an LMDB meta page")
    psize, first = _meta_at(buf, 0, 0)
    if psize < 512 or psize > 65536 or psize & (psize - 1):
        raise Damaged(f"meta page 0 gives a page size of {psize}")
    if size < 2 * psize:
        raise Damaged(f"data.mdb is {size} bytes, shorter than its two meta pages of {psize}")
    _, second = _meta_at(buf, psize, 1)
    if txnid is None:
        meta = second if second.txnid > first.txnid else first
    else:
        found = next((m for m in (first, second) if m.txnid == txnid), None)
        if found is None:
            raise Stale(txnid)
        meta = found
    if meta.last_page < 1 or meta.map_size < (meta.last_page + 1) * psize or meta.map_size > MAX_MAP:
        raise Damaged(f"the meta of txn {meta.txnid} is inconsistent (last page {meta.last_page}, "
                      f"map size {meta.map_size})")
    return meta


class _Walk:
    """One pass over the trees of a file; `problems` collects what is wrong, in page order met."""

    def __init__(self, buf: mmap.mmap, meta: Meta, limit: int) -> None:
        self.buf, self.meta, self.limit = buf, meta, limit
        self.psize = meta.page_size
        self.seen = bytearray(meta.last_page + 1)
        self.problems: list[str] = []
        self.named: dict[bytes, Tree] = {}
        self.free_pages: list[int] = []

    def full(self) -> bool:
        return len(self.problems) >= self.limit

    def page(self, pgno: int, tree: str, what: str) -> int | None:
        """The file offset of a page the tree may claim, or None (a problem noted)."""
        if not 2 <= pgno <= self.meta.last_page:
            self.problems.append(f"{tree}: {what} points at page {pgno}, outside pages 2..{self.meta.last_page}")
            return None
        if self.seen[pgno]:
            self.problems.append(f"{tree}: page {pgno} is used twice")
            return None
        self.seen[pgno] = 1
        at = pgno * self.psize
        if at + self.psize > len(self.buf):
            self.problems.append(f"data.mdb is truncated: {tree} needs page {pgno}, past its end at {len(self.buf)} bytes")
            return None
        if _u64.unpack_from(self.buf, at)[0] != pgno:
            self.problems.append(f"{tree}: page {pgno} carries page number {_u64.unpack_from(self.buf, at)[0]} (zeroed or overwritten)")
            return None
        return at

    def tree(self, name: str, tree: Tree) -> None:
        if tree.root == INVALID_PAGE:
            if tree.depth or tree.entries:
                self.problems.append(f"{name}: no root page but depth {tree.depth}, {tree.entries} entries")
            return
        if not 1 <= tree.depth <= MAX_DEPTH:
            self.problems.append(f"{name}: depth {tree.depth}")
            return
        integer = bool(tree.flags & INTEGERKEY)
        stack: list[tuple[int, int, bytes | None, bytes | None]] = [(tree.root, 1, None, None)]
        while stack and not self.full():
            pgno, level, low, high = stack.pop()
            at = self.page(pgno, name, f"level {level}")
            if at is not None:
                stack += reversed(self.node_page(name, integer, pgno, at, level == tree.depth, level, low, high))

    def node_page(self, name: str, integer: bool, pgno: int, at: int, leaf: bool, level: int,
                  low: bytes | None, high: bytes | None) -> list[tuple[int, int, bytes | None, bytes | None]]:
        """Check one branch or leaf page; return its children (branch) to walk next."""
        _pgno, _pad, flags, lower, upper = _page_header.unpack_from(self.buf, at)
        want = P_LEAF if leaf else P_BRANCH
        where = f"{name}: page {pgno}"
        if flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META) != want or flags & 0x20:
            self.problems.append(f"{where} at level {level} should be a {'leaf' if leaf else 'branch'} page, its flags are {flags:#x}")
            return []
        psize = self.psize
        keys = (lower - PAGE_HEADER) >> 1
        if lower < PAGE_HEADER or lower > upper or upper > psize or keys < (1 if leaf or name == "free" else 2):
            self.problems.append(f"{where}: bad header (lower {lower}, upper {upper}, {keys} keys)")
            return []
        children: list[tuple[int, int, bytes | None, bytes | None]] = []
        prev: bytes | None = None
        for i in range(keys):
            ptr = _u16.unpack_from(self.buf, at + PAGE_HEADER + 2 * i)[0]
            if ptr < upper or ptr + NODE_HEADER > psize:
                self.problems.append(f"{where}: node {i} at {ptr} lies outside the page's node area")
                return []
            lo, hi, nflags, ksize = _node_header.unpack_from(self.buf, at + ptr)
            kat = at + ptr + NODE_HEADER
            if ptr + NODE_HEADER + ksize > psize:
                self.problems.append(f"{where}: node {i}'s key runs past the page")
                return []
            if leaf or i:
                key = self.buf[kat:kat + ksize]
                order = int.from_bytes(key, "little").to_bytes(8, "big") if integer and ksize == 8 else key
                if (prev is not None and order <= prev) or (low is not None and order < low) or (high is not None and order >= high):
                    self.problems.append(f"{where}: node {i}'s key is out of order")
                    return []
                prev = order
            if not leaf:
                children.append((lo | hi << 16 | nflags << 32, level + 1, prev if i else low, None))
                continue
            if not self.leaf_data(name, pgno, i, kat + ksize, lo | hi << 16, nflags, key, at + psize):
                return []
        for n in range(len(children) - 1):  # each child's keys lie below the next separator
            children[n] = (*children[n][:3], children[n + 1][2])
        if children:
            children[-1] = (*children[-1][:3], high)
        return children

    def leaf_data(self, name: str, pgno: int, i: int, dat: int, dsize: int, nflags: int, key: bytes, end: int) -> bool:
        """Check node i's value: inline within its page, or an intact overflow run."""
        where = f"{name}: page {pgno}"
        if nflags & F_DUPDATA or nflags & ~(F_BIGDATA | F_SUBDATA | F_DUPDATA):
            self.problems.append(f"{where}: node {i} has flags {nflags:#x}, not a plain key/value")
            return False
        if nflags & F_BIGDATA:
            if dat + 8 > end:
                self.problems.append(f"{where}: node {i}'s overflow page number runs past the page")
                return False
            first = _u64.unpack_from(self.buf, dat)[0]
            at = self.page(first, name, f"page {pgno} node {i}")
            if at is None:
                return False
            flags = _page_header.unpack_from(self.buf, at)[2]
            pages = struct.unpack_from("<I", self.buf, at + 12)[0]
            if (first + pages) * self.psize > len(self.buf):
                self.problems.append(f"data.mdb is truncated: {name} needs pages {first}..{first + pages - 1}, "
                                     f"past its end at {len(self.buf)} bytes")
                return False
            if not flags & P_OVERFLOW or first + pages - 1 > self.meta.last_page or dsize > pages * self.psize - PAGE_HEADER:
                self.problems.append(f"{where}: node {i}'s overflow run at page {first} is broken "
                                     f"(flags {flags:#x}, {pages} pages, {dsize} bytes)")
                return False
            for p in range(first + 1, first + pages):
                if self.seen[p]:
                    self.problems.append(f"{name}: page {p} is used twice")
                    return False
                self.seen[p] = 1
            dat = at + PAGE_HEADER
        elif dat + dsize > end:
            self.problems.append(f"{where}: node {i}'s value ({dsize} bytes) runs past the page")
            return False
        if nflags & F_SUBDATA:
            if dsize != _tree.size:
                self.problems.append(f"{where}: node {i} names a database with a {dsize}-byte record")
                return False
            self.named[bytes(key)] = Tree.parse(self.buf, dat)[1]
        elif name == "free":
            count = _u64.unpack_from(self.buf, dat)[0] if dsize >= 8 else -1
            if dsize != 8 * (count + 1):
                self.problems.append(f"{where}: free list {i} holds {dsize} bytes for {count} pages")
                return False
            self.free_pages += struct.unpack_from(f"<{count}Q", self.buf, dat + 8)
        return True


def _mapped(path: Path) -> mmap.mmap:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise NotLmdb("data.mdb is empty")
        return mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)


def check_header(path: Path) -> None:
    """Before LMDB opens the file: two LMDB meta pages (LMDB would initialise an empty file)."""
    with _mapped(path) as buf:
        read_meta(buf)


def problems(path: Path, txnid: int | None = None, trees: tuple[bytes, ...] | None = None, limit: int = 100,
             walk: bool = True) -> Iterator[str]:
    """What is wrong with the pages of snapshot `txnid` of `path` (data.mdb; None: the newest):
    the meta; the free list; with `walk`, the main tree and the named trees (`trees`, or
    all), every page they use. Hold an LMDB read transaction of `txnid` meanwhile, so no
    writer reuses its pages. Without `walk`, the file is only checked to hold every page
    that the free list does not account for (the cheap check for big files)."""
    try:
        buf = _mapped(path)
    except Damaged as exc:
        yield str(exc)
        return
    with buf:
        try:
            meta = read_meta(buf, txnid)
        except Damaged as exc:
            yield str(exc)
            return
        w = _Walk(buf, meta, limit)
        try:
            w.tree("free", meta.free)
            if walk:
                w.tree("main", meta.main)
                for name, tree in sorted(w.named.items()):
                    if (trees is None or name in trees) and not tree.flags and not w.full():
                        w.tree(name.decode("utf-8", "replace"), tree)
        except (struct.error, ValueError, IndexError) as exc:  # a bound not checked above: still damage
            w.problems.append(f"unreadable page structure ({exc})")
        free = set(w.free_pages)
        if walk:
            in_use = [p for p in free if p > meta.last_page or w.seen[p]]
            if in_use and not w.full():
                w.problems.append(f"free list: page {min(in_use)} is listed free but is in use or past the last page")
        else:
            top = meta.last_page
            while top in free:  # pages a commit allocated and gave back were never written
                top -= 1
            if (top + 1) * meta.page_size > len(buf):
                w.problems.append(f"data.mdb is truncated: {len(buf)} bytes, its pages in use reach page {top} "
                                  f"({(top + 1) * meta.page_size} bytes)")
        yield from w.problems[:limit]


def held_problems(env: lmdb.Environment, path: Path, trees: tuple[bytes, ...] | None = None, limit: int = 100,
                  walk: bool = True) -> list[str]:
    """problems() of the environment's current snapshot, walked inside a read transaction of
    it (a registered reader: writers leave its pages alone); a new one if it moved on."""
    for _ in range(10):
        with env.begin() as txn:
            try:
                return list(problems(path, txn.id(), trees, limit, walk))
            except Stale:
                continue
    return ["the store changed faster than it could be checked: retry"]


def vet(env: lmdb.Environment, path: Path, trees: tuple[bytes, ...], walk_limit: int) -> None:
    """Raise Damaged at the first problem of the current snapshot: every page of `trees` when
    the file has at most `walk_limit` bytes, else the cheap check (`automem store check` walks all)."""
    found = held_problems(env, path, trees, limit=1, walk=os.path.getsize(path) <= walk_limit)
    if found:
        raise Damaged(found[0])
