"""How records appended outside a transaction are cut into batches and sealed, and what their
appenders hear when a batch cannot be sent (aiokafka's batch interface stood in for; the broker's
side is tests/integration/test_sealed_batches.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import RecordMetadata, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.kafka.sealed_batches import SealedBatches, size_at_most
from shared.provenance.keys import SigningKey, key_id
from shared.provenance.seals import PROOF_HEADER, Proof, Sealer

BATCH = 16 * 1024


def sealer() -> Sealer:
    private = Ed25519PrivateKey.generate()
    return Sealer(SigningKey(private, key_id(private.public_key()), "tasks"))


class Batches:
    """aiokafka's producer as far as batches go: keeps each batch sent, or refuses the ``refused``th."""

    def __init__(self, refused: int | None = None) -> None:
        self.sent: list[tuple[str, int, list[bytes]]] = []
        self._refused = refused

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[RecordMetadata]:
        if len(self.sent) == self._refused:
            self.sent.append((topic, partition, []))
            raise KafkaTimeoutError("no room in the queue")
        base = sum(len(proofs) for t, p, proofs in self.sent if (t, p) == (topic, partition))
        self.sent.append((topic, partition, _proofs(batch)))
        done: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(RecordMetadata(topic, partition, TopicPartition(topic, partition), base, -1, 0, 0))
        return done


def _signed(raw: bytes) -> bool:
    proof = Proof.parse(raw)
    assert proof is not None
    return proof.signature is not None


def _proofs(batch: BatchBuilder) -> list[bytes]:
    records = DefaultRecordBatch(bytes(batch._builder.build()))  # the bytes the broker would get
    return [dict(record.headers)[PROOF_HEADER] for record in records]


async def append(batches: SealedBatches, producer: Any, values: list[tuple[int, bytes]]) -> list[Any]:
    appended = [
        batches.add(producer, "t", partition, b"k", value, [], size_at_most(b"k", value, []))
        for partition, value in values
    ]
    await batches.drained()
    return await asyncio.gather(*appended, return_exceptions=True)


async def test_each_batch_fits_and_only_its_last_record_is_signed(tmp_path: Any) -> None:
    producer = Batches()
    values = [(n % 2, bytes(700 + 37 * n)) for n in range(80)]  # ~90 kB on two partitions
    placed = await append(SealedBatches(sealer(), BATCH), producer, values)

    assert [(m.partition, m.offset) for m in placed] == [(n % 2, n // 2) for n in range(80)]
    assert len(producer.sent) > 2
    for _, _, proofs in producer.sent:
        signed = [_signed(proof) for proof in proofs]
        assert signed == [False] * (len(proofs) - 1) + [True]
    for partition in (0, 1):
        chain = [Proof.parse(p) for t, part, proofs in producer.sent if part == partition for p in proofs]
        assert [proof.n for proof in chain if proof is not None] == list(range(1, 41))


async def test_a_batch_that_cannot_be_sent_fails_each_of_its_records_and_the_next_is_sent() -> None:
    producer = Batches(refused=0)
    values = [(0, bytes(3000)) for _ in range(12)]  # ~36 kB: three batches or more
    placed = await append(SealedBatches(sealer(), BATCH), producer, values)

    refused = [outcome for outcome in placed if isinstance(outcome, BaseException)]
    assert refused and all(isinstance(outcome, KafkaTimeoutError) for outcome in refused)
    assert placed[: len(refused)] == refused, "the first batch's records, and only they"
    assert all(isinstance(outcome, RecordMetadata) for outcome in placed[len(refused) :])


def test_a_batch_takes_no_more_than_its_records_bounds_its_header_and_one_signature() -> None:
    writer = sealer()
    writer._links["t", 0] = (10**19, bytes(32))  # a chain's place at its longest: twenty digits
    builder, bounds = BatchBuilder(10**6, 0), 0
    records = [(b"k" * n, bytes(100 * n), [("h" * n, bytes(n))] * n) for n in range(1, 30)]
    for i, (key, value, headers) in enumerate(records):
        proof = writer.seal("t", 0, key, value, headers, sign=i == len(records) - 1)
        assert builder.append(timestamp=None, key=key, value=value, headers=[*headers, (PROOF_HEADER, proof)])
        bounds += size_at_most(key, value, headers)
    assert builder.size() <= 61 + bounds + 132
    assert builder.size() > bounds - 30 * len(records), "a bound, not a guess"


async def test_an_appender_waits_while_a_batchs_worth_waits_on_its_partition() -> None:
    """As aiokafka's send waits while a full batch waits: appending and sending take turns a batch
    at a time, and a writer whose broker is away does not pile up records."""
    broker_back = asyncio.Event()

    class Stalled(Batches):
        async def send_batch(
            self, batch: BatchBuilder, topic: str, *, partition: int
        ) -> asyncio.Future[RecordMetadata]:
            await broker_back.wait()
            return await super().send_batch(batch, topic, partition=partition)

    producer, batches, size = Stalled(), SealedBatches(sealer(), BATCH), size_at_most(b"k", bytes(500), [])
    appended = [batches.add(producer, "t", 0, b"k", bytes(500), [], size)]
    await asyncio.sleep(0)  # the first record is taken, and its batch waits for the broker
    while not batches.full("t", 0):
        appended.append(batches.add(producer, "t", 0, b"k", bytes(500), [], size))
    assert len(appended) * size < 2 * BATCH
    assert not batches.full("t", 1), "another partition has room"
    room = asyncio.create_task(batches.room("t", 0))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not room.done()

    broker_back.set()
    await asyncio.wait_for(room, timeout=10)
    await batches.drained()
    placed = await asyncio.gather(*appended)
    assert [m.offset for m in placed] == list(range(len(appended)))


async def test_a_record_asked_to_carry_its_own_signature_has_it_wherever_it_is_in_its_batch() -> None:
    """A forwarded command is judged alone by its reader (services/tasks/entrypoints/command_topic.py)."""
    producer, batches, size = Batches(), SealedBatches(sealer(), BATCH), size_at_most(b"k", b"v", [])
    appended = [batches.add(producer, "t", 0, b"k", b"v", [], size, signed=n == 2) for n in range(5)]
    await batches.drained()
    await asyncio.gather(*appended)

    [(_, _, proofs)] = producer.sent
    assert [_signed(proof) for proof in proofs] == [False, False, True, False, True]
