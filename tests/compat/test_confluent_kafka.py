"""confluent-kafka (librdkafka) against a real `strom serve`: admin, keyed produce, assign-and-read."""

from __future__ import annotations

import pytest

import confluent_kafka as ck
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

TIMEOUT_S = 30


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(broker, name: str, partitions: int) -> None:
    a = admin(broker)  # keep the handle alive until the future resolves
    futures = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                              operation_timeout=TIMEOUT_S)
    futures[name].result(timeout=TIMEOUT_S)


def produce(broker, topic: str, records: list[tuple[bytes, bytes]], **conf) -> list:
    """Produces keyed records with acks=all; returns the delivered messages (all must succeed)."""
    delivered, errors = [], []

    def on_delivery(err, msg):
        (errors if err is not None else delivered).append(err or msg)

    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5, **conf})
    for k, v in records:
        p.produce(topic, key=k, value=v, on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(TIMEOUT_S) == 0, "messages still in flight after flush"
    assert errors == [], f"delivery errors: {errors}"
    assert len(delivered) == len(records)
    return delivered


def read_all(broker, topic: str, partitions: int, expected: int) -> list:
    """Reads `expected` records from the beginning of every partition with assign() (no group protocol)."""
    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": "strom-compat-unused",  # required by librdkafka; no group protocol is used with assign()
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    })
    try:
        c.assign([TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
        got = []
        idle = 0
        while len(got) < expected and idle < 20:
            msgs = c.consume(num_messages=1000, timeout=0.5)
            idle = idle + 1 if not msgs else 0
            for m in msgs:
                assert m.error() is None, m.error()
                got.append(m)
        # Nothing more than what was produced.
        extra = c.consume(num_messages=10, timeout=1.0)
        assert [m for m in extra if m.error() is None] == []
        return got
    finally:
        c.close()


def test_create_topics_then_list_topics(broker, topic_name):
    create_topic(broker, topic_name, 3)
    md = admin(broker).list_topics(timeout=TIMEOUT_S)
    assert topic_name in md.topics, sorted(md.topics)
    t = md.topics[topic_name]
    assert t.error is None
    assert sorted(t.partitions) == [0, 1, 2]
    assert all(p.leader == b.id for p in t.partitions.values() for b in md.brokers.values())
    assert len(md.brokers) == 1
    (b,) = md.brokers.values()
    assert (b.host, b.port) == (broker.host, broker.port)


def test_keyed_produce_then_assign_and_read(broker, topic_name):
    create_topic(broker, topic_name, 3)
    n = 3000
    records = [(f"key-{i % 50}".encode(), f"value-{i}".encode()) for i in range(n)]
    delivered = produce(broker, topic_name, records)

    # Same key -> same partition, offsets dense per partition.
    by_key = {}
    for m in delivered:
        assert by_key.setdefault(m.key(), m.partition()) == m.partition()
    assert len(set(by_key.values())) > 1, "all keys hashed to one partition"
    for p in range(3):
        offs = sorted(m.offset() for m in delivered if m.partition() == p)
        assert offs == list(range(len(offs)))

    got = read_all(broker, topic_name, 3, n)
    assert len(got) == n
    assert sorted((m.key(), m.value()) for m in got) == sorted(records)
    # Per-key order is the produce order.
    for key in by_key:
        assert [m.value() for m in got if m.key() == key] == [v for k, v in records if k == key]
    # Each record came back from the partition and offset it was acknowledged at.
    assert sorted((m.partition(), m.offset(), m.value()) for m in got) == \
        sorted((m.partition(), m.offset(), m.value()) for m in delivered)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_round_trip(broker, topic_name, codec):
    records = [(f"k{i}".encode(), f"value-{i}-".encode() * 20) for i in range(500)]
    produce(broker, topic_name, records, **{"compression.type": codec})
    got = read_all(broker, topic_name, 1, len(records))
    assert [(m.key(), m.value()) for m in got] == records


def test_headers_and_timestamps(broker, topic_name):
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    p.produce(topic_name, key=b"k", value=b"v", headers=[("h1", b"a"), ("h2", b"")], timestamp=1_700_000_000_000)
    assert p.flush(TIMEOUT_S) == 0
    (m,) = read_all(broker, topic_name, 1, 1)
    assert m.headers() == [("h1", b"a"), ("h2", b"")]
    assert m.timestamp() == (ck.TIMESTAMP_CREATE_TIME, 1_700_000_000_000)


def test_describe_configs_returns_topic_configs(broker, topic_name):
    create_topic(broker, topic_name, 1)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name)
    a = admin(broker)
    configs = a.describe_configs([res])[res].result(timeout=TIMEOUT_S)
    for name in ("retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes"):
        assert name in configs, sorted(configs)
    assert int(configs["retention.ms"].value) == 7 * 24 * 3600 * 1000


def test_create_existing_topic_fails(broker, topic_name):
    create_topic(broker, topic_name, 1)
    with pytest.raises(KafkaException) as e:
        create_topic(broker, topic_name, 1)
    assert e.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


@pytest.mark.parametrize("name", ["bad name!", "a" * 250, "..", "slash/name"])
def test_create_invalid_topic_name_fails(broker, name):
    with pytest.raises(KafkaException) as e:
        create_topic(broker, name, 1)
    assert e.value.args[0].code() == KafkaError.TOPIC_EXCEPTION  # Kafka's INVALID_TOPIC_EXCEPTION (17)


def test_create_topic_with_zero_partitions_fails(broker, topic_name):
    with pytest.raises(KafkaException) as e:
        create_topic(broker, topic_name, 0)
    # librdkafka validates num_partitions locally in some versions; either way it must not be created.
    assert e.value.args[0].code() in (KafkaError.INVALID_PARTITIONS, KafkaError._INVALID_ARG)
    assert topic_name not in admin(broker).list_topics(timeout=TIMEOUT_S).topics


def test_delete_topic(broker, topic_name):
    create_topic(broker, topic_name, 2)
    a = admin(broker)
    a.delete_topics([topic_name], operation_timeout=TIMEOUT_S)[topic_name].result(timeout=TIMEOUT_S)
    md = a.list_topics(timeout=TIMEOUT_S)
    assert topic_name not in md.topics
