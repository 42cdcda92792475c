"""How a long verification shares the log's partitions among the processes that compare them."""

from __future__ import annotations

from aiokafka import TopicPartition

from services.audit.application.verification import _shared_out


def test_the_busiest_partitions_go_first_each_to_the_least_loaded_process() -> None:
    limits = {TopicPartition("policy.events", p): n for p, n in enumerate([300, 310, 290])}
    limits |= {TopicPartition("policy.alerts", 0): 20, TopicPartition("policy.deadletter", 0): 0}
    shares = _shared_out(limits, 3)
    assert shares == [
        {("policy.events", 1): 310},
        {("policy.events", 0): 300, ("policy.deadletter", 0): 0},
        {("policy.events", 2): 290, ("policy.alerts", 0): 20},
    ]


def test_never_more_processes_than_partitions() -> None:
    limits = {TopicPartition("policy.events", 0): 5, TopicPartition("policy.events", 1): 7}
    assert _shared_out(limits, 3) == [{("policy.events", 1): 7}, {("policy.events", 0): 5}]
