"""aiokafka (asyncio client) against a real `strom serve`: produce, then assign + seek_to_beginning."""

from __future__ import annotations

import asyncio

import pytest

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

TIMEOUT_S = 30


async def round_trip(bootstrap: str, topic: str, codec: str | None) -> tuple[list, list]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec)
    await producer.start()
    try:
        sent = [(f"k{i % 4}".encode(), f"value-{i}".encode()) for i in range(300)]
        metas = await asyncio.gather(*[await producer.send(topic, key=k, value=v) for k, v in sent])
        assert [m.offset for m in metas] == list(range(len(sent)))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = []
        while len(got) < len(sent):
            batch = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=1000), TIMEOUT_S)
            got.extend((m.key, m.value) for m in batch.get(tp, []))
        return sent, got
    finally:
        await consumer.stop()


@pytest.mark.parametrize("codec", [None, "gzip"])
def test_produce_then_assign_and_read(broker, topic_name, codec):
    sent, got = asyncio.run(asyncio.wait_for(round_trip(broker.bootstrap, topic_name, codec), 2 * TIMEOUT_S))
    assert got == sent
