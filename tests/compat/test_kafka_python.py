"""kafka-python (a pure-Python client) against a real `strom serve`.

The client auto-detects the broker's API versions (no `api_version` pinned), so these tests also
check that ApiVersions answers what kafka-python's probe expects.
"""

from __future__ import annotations

import pytest

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

TIMEOUT_S = 30


def consume_all(broker, topic: str, partitions: list[int], expected: int) -> list:
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      consumer_timeout_ms=5000)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = []
        for m in c:
            got.append(m)
            if len(got) >= expected:
                break
        return got
    finally:
        c.close()


def producer(broker, **conf) -> KafkaProducer:
    # kafka-python >= 3 (like the Java client >= 3.0) enables idempotence by default, which needs
    # InitProducerId; the round trips below use a plain producer, and test_default_idempotent_producer
    # covers the default.
    return KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False, **conf)


def test_api_version_is_auto_detected(broker):
    # No api_version given: the client probes ApiVersions and infers a broker version from it.
    p = producer(broker)
    try:
        version = p.config["api_version"]
    finally:
        p.close()
    assert version is not None and version >= (2, 1), f"kafka-python inferred broker version {version}"


def test_default_idempotent_producer(broker, topic_name):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        meta = p.send(topic_name, value=b"v").get(timeout=TIMEOUT_S)
    finally:
        p.close(timeout=5)
    assert meta.offset == 0
    (m,) = consume_all(broker, topic_name, [0], 1)
    assert m.value == b"v"


def test_produce_then_assign_and_read(broker, topic_name):
    p = producer(broker)
    try:
        futures = [p.send(topic_name, key=f"k{i % 5}".encode(), value=f"v{i}".encode()) for i in range(500)]
        p.flush(TIMEOUT_S)
        metas = [f.get(timeout=TIMEOUT_S) for f in futures]
    finally:
        p.close()
    assert [m.offset for m in metas] == list(range(500))  # auto-created with num.partitions=1

    got = consume_all(broker, topic_name, [0], 500)
    assert [(m.key, m.value, m.offset) for m in got] == [(f"k{i % 5}".encode(), f"v{i}".encode(), i)
                                                         for i in range(500)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_round_trip(broker, topic_name, codec):
    p = producer(broker, compression_type=codec, linger_ms=20)
    try:
        futures = [p.send(topic_name, value=f"value-{i}-".encode() * 10) for i in range(100)]
        p.flush(TIMEOUT_S)
        assert [f.get(timeout=TIMEOUT_S).offset for f in futures] == list(range(100))
    finally:
        p.close()
    got = consume_all(broker, topic_name, [0], 100)
    assert [m.value for m in got] == [f"value-{i}-".encode() * 10 for i in range(100)]


def test_admin_create_list_delete_topic(broker, topic_name):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        a.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1)])
        assert topic_name in a.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])
        (desc,) = a.describe_topics([topic_name])
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1, 2]
        a.delete_topics([topic_name])
        assert topic_name not in a.list_topics()
    finally:
        a.close()
