"""The trail's Merkle tree against RFC 6962's own recursive definitions (MTH, PATH, PROOF),
written here as the RFC writes them, for every tree up to a few hundred leaves."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.transparency.merkle import (
    EMPTY_ROOT,
    consistency_parts,
    consistent,
    frontier_nodes,
    inclusion_parts,
    leaf_hash,
    needed,
    resolve,
    root_from,
    root_from_inclusion,
    tree_of,
)


def mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


LEAVES = [f"leaf {i}".encode() for i in range(300)]


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_roots_and_proofs_are_rfc_6962s(size: int, data: st.DataObject) -> None:
    leaves = LEAVES[:size]
    frontier, nodes = tree_of(leaves)
    assert frontier.root() == mth(leaves) == root_from(size, nodes)
    assert set(frontier_nodes(size)) <= set(nodes)
    index = data.draw(st.integers(0, size - 1))
    proof = resolve(inclusion_parts(index, size), nodes)
    assert proof == path(index, leaves)
    assert root_from_inclusion(index, size, leaves[index], proof) == mth(leaves)
    assert root_from_inclusion(index, size, b"another leaf", proof) != mth(leaves)
    old = data.draw(st.integers(1, size))
    consistency = resolve(consistency_parts(old, size), nodes)
    assert consistency == (subproof(old, leaves, True) if old < size else [])
    assert consistent(old, size, mth(leaves[:old]), mth(leaves), consistency)
    if old < size:
        forked = [*leaves[: old - 1], b"forked", *leaves[old:]]
        assert not consistent(old, size, mth(forked[:old]), mth(leaves), consistency)
    assert needed(inclusion_parts(index, size)) <= set(nodes)


def test_the_empty_tree_and_a_single_leaf() -> None:
    assert tree_of([])[0].root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert tree_of([b"x"])[0].root() == leaf_hash(b"x")
