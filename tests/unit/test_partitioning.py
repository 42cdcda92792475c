"""Which partition a key lands on is the producer's default partitioner's choice, for any key
and partition count, whether or not it was asked before."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from shared.kafka.partitioning import partition_of_key


@given(st.lists(st.tuples(st.binary(max_size=40), st.integers(1, 64)), max_size=30))
def test_a_key_lands_where_the_default_partitioner_sends_it(keys: list[tuple[bytes, int]]) -> None:
    for key, partitions in [*keys, *keys]:
        every = list(range(partitions))
        assert partition_of_key(key, partitions) == DefaultPartitioner()(key, every, every)
