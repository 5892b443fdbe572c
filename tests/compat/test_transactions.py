"""confluent-kafka (librdkafka) transactional producer against a real `strom serve`: committed
transactions reach read_committed consumers, aborted ones only read_uncommitted; a zombie
producer is fenced."""

from __future__ import annotations

import time

import pytest

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 30


def create_topic(broker, name: str, partitions: int) -> None:
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                              operation_timeout=TIMEOUT_S)
    futures[name].result(timeout=TIMEOUT_S)


def txn_producer(broker, txn_id: str) -> Producer:
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id,
                  "linger.ms": 1})
    p.init_transactions(TIMEOUT_S)
    return p


def read_values(broker, topic: str, partitions: int, isolation: str, want: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "py-txn-reader",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[bytes] = []
    deadline = time.time() + 15
    quiet = time.time() + 3
    try:
        while time.time() < deadline:
            m = c.poll(0.1)
            if m is not None:
                assert m.error() is None, m.error()
                out.append(m.value())
                if len(out) >= want:
                    quiet = time.time() + 0.7
            if len(out) >= want and time.time() >= quiet:
                break
    finally:
        c.close()
    return sorted(out)


def test_commit_visible_abort_invisible(broker, topic_name):
    create_topic(broker, topic_name, 3)
    p = txn_producer(broker, f"{topic_name}-tx")
    for name, commit in (("c1", True), ("a1", False), ("c2", True)):
        p.begin_transaction()
        for i in range(12):
            p.produce(topic_name, key=f"{name}-{i:02}", value=f"{name}-{i:02}", partition=i % 3)
        p.flush(TIMEOUT_S)
        if commit:
            p.commit_transaction(TIMEOUT_S)
        else:
            p.abort_transaction(TIMEOUT_S)
    committed = sorted(f"{n}-{i:02}".encode() for n in ("c1", "c2") for i in range(12))
    assert read_values(broker, topic_name, 3, "read_committed", 24) == committed
    everything = sorted(committed + [f"a1-{i:02}".encode() for i in range(12)])
    assert read_values(broker, topic_name, 3, "read_uncommitted", 36) == everything


def test_zombie_is_fenced(broker, topic_name):
    create_topic(broker, topic_name, 1)
    txn_id = f"{topic_name}-fence"
    zombie = txn_producer(broker, txn_id)
    zombie.begin_transaction()
    zombie.produce(topic_name, value=b"zombie")
    zombie.flush(TIMEOUT_S)
    fresh = txn_producer(broker, txn_id)
    fresh.begin_transaction()
    fresh.produce(topic_name, value=b"fresh")
    fresh.commit_transaction(TIMEOUT_S)
    with pytest.raises(KafkaException) as e:
        zombie.produce(topic_name, value=b"zombie-2")
        zombie.flush(5)
        zombie.commit_transaction(TIMEOUT_S)
    err = e.value.args[0]
    assert err.fatal() or "fenced" in str(err).lower(), err
    assert read_values(broker, topic_name, 1, "read_committed", 1) == [b"fresh"]
