"""The trail as an RFC 6962 (RFC 9162) Merkle tree. Pure: hashes in, hashes out.

Leaf ``i`` is entry ``i + 1``'s canonical bytes (``chain.canonical``); its hash is
SHA-256(0x00 || bytes), an interior node's SHA-256(0x01 || left || right). The tree is kept as
its perfect subtrees: node (level, index) covers leaves [index * 2^level, (index + 1) * 2^level).
Appending needs only the frontier, the perfect subtrees of the current size; a proof or a root
names the nodes it needs (``*_nodes``), which the store reads in one query, and is then computed
from them (``*_from``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Node = tuple[int, int]
"""(level, index) of a perfect subtree."""
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, slots=True)
class Frontier:
    """The tree of ``size`` leaves as its perfect subtrees, largest first: (level, hash)."""

    size: int = 0
    nodes: tuple[tuple[int, bytes], ...] = ()

    def append(self, leaf: bytes, made: list[tuple[int, int, bytes]] | None = None) -> Frontier:
        """The tree with one more leaf; every node it completes is added to ``made``."""
        index, level, current = self.size, 0, leaf_hash(leaf)
        if made is not None:
            made.append((0, index, current))
        nodes = list(self.nodes)
        while index & 1:
            _, left = nodes.pop()
            current, index, level = node_hash(left, current), index >> 1, level + 1
            if made is not None:
                made.append((level, index, current))
        nodes.append((level, current))
        return Frontier(self.size + 1, tuple(nodes))

    def root(self) -> bytes:
        """RFC 6962's MTH of the whole tree: its perfect subtrees folded right to left."""
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            acc = node_hash(left, acc)
        return acc


def frontier_nodes(size: int) -> list[Node]:
    """The perfect subtrees a tree of ``size`` leaves is made of, largest first."""
    nodes, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_nodes(lo: int, hi: int) -> list[Node]:
    """The perfect subtrees D[lo:hi] is made of, largest first (``lo`` aligned, as every right
    part of an RFC 6962 split is)."""
    nodes, start = [], lo
    for level in range(max(hi - lo, 1).bit_length() - 1, -1, -1):
        if start + (1 << level) <= hi:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


Part = list[Node]
"""The nodes one element of a proof is made of (folded right to left)."""


def inclusion_parts(index: int, size: int) -> list[Part]:
    """RFC 6962 PATH(index, D[0:size]): each element as the perfect subtrees it is made of."""
    parts: list[Part] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            parts.append(_range_nodes(lo + k, hi))
            hi = lo + k
        else:
            parts.append(_range_nodes(lo, lo + k))
            lo += k
    return list(reversed(parts))


def consistency_parts(old: int, new: int) -> list[Part]:
    """RFC 6962 PROOF(old, D[0:new]) for 0 < old <= new."""
    parts: list[Part] = []
    lo, hi, m, complete = 0, new, old, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                parts.append(_range_nodes(lo, hi))
            break
        k = _split(n)
        if m <= k:
            parts.append(_range_nodes(lo + k, hi))
            hi = lo + k
        else:
            parts.append(_range_nodes(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return list(reversed(parts))


def needed(parts: Iterable[Part]) -> set[Node]:
    return {node for part in parts for node in part}


def resolve(parts: Sequence[Part], hashes: Mapping[Node, bytes]) -> list[bytes]:
    """The proof's hashes, from the stored nodes it names."""
    return [_fold([hashes[node] for node in part]) for part in parts]


def root_from(size: int, hashes: Mapping[Node, bytes]) -> bytes:
    nodes = frontier_nodes(size)
    return _fold([hashes[node] for node in nodes]) if nodes else EMPTY_ROOT


# --- verifying, as a client does (RFC 9162 2.1.3.2 and 2.1.4.2) ---------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root the inclusion proof leads to from ``leaf`` (its bytes), or None if it cannot."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def consistent(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``new`` leaves extends the one of ``old``."""
    if old == new:
        return old_root == new_root and not proof
    if not 0 < old < new or not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def tree_of(leaves: Sequence[bytes]) -> tuple[Frontier, dict[Node, bytes]]:
    """A whole tree at once (tests and checks): its frontier and every node."""
    frontier, made = Frontier(), list[tuple[int, int, bytes]]()
    for leaf in leaves:
        frontier = frontier.append(leaf, made)
    return frontier, {(level, index): digest for level, index, digest in made}
