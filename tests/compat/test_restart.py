"""Durability across restarts: stop the broker (SIGTERM, then kill -9) and start it again on the
same data dir; topics, configs and every acknowledged record must be there."""

from __future__ import annotations

import threading
import time

import confluent_kafka as ck
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

TIMEOUT_S = 30
PARTITIONS = 3


def create_topic(bootstrap: str, name: str) -> None:
    a = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=PARTITIONS, replication_factor=1, config={"retention.ms": "123456789"})
    a.create_topics([topic])[name].result(timeout=TIMEOUT_S)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> set:
    """acks=all keyed produce; returns {(partition, offset, value)} of acknowledged records."""
    acked, errors = set(), []

    def on_delivery(err, msg):
        if err is None:
            acked.add((msg.partition(), msg.offset(), msg.value()))
        else:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})
    for i, v in enumerate(values):
        p.produce(topic, key=str(i % 17).encode(), value=v, on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(TIMEOUT_S) == 0
    assert errors == []
    return acked


def read_all(bootstrap: str, topic: str) -> set:
    """Every record of every partition, read with assign() from the beginning up to the high watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strom-compat-unused",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got, at_eof = set(), set()
        deadline = time.monotonic() + TIMEOUT_S
        while len(at_eof) < PARTITIONS and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error() is not None:
                    assert m.error().code() == ck.KafkaError._PARTITION_EOF, m.error()
                    at_eof.add(m.partition())
                else:
                    got.add((m.partition(), m.offset(), m.value()))
        assert len(at_eof) == PARTITIONS, "did not reach the end of every partition"
        return got
    finally:
        c.close()


def check_topic(bootstrap: str, topic: str) -> None:
    a = AdminClient({"bootstrap.servers": bootstrap})
    md = a.list_topics(topic, timeout=TIMEOUT_S)
    assert sorted(md.topics[topic].partitions) == list(range(PARTITIONS))
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = a.describe_configs([res])[res].result(timeout=TIMEOUT_S)
    assert configs["retention.ms"].value == "123456789"


def test_records_survive_sigterm_restart(broker_factory, topic_name):
    b = broker_factory().start()
    create_topic(b.bootstrap, topic_name)
    acked = produce(b.bootstrap, topic_name, [f"before-{i}".encode() for i in range(2000)])
    assert b.stop() == 0, "strom serve should exit 0 on SIGTERM"

    b.start()
    check_topic(b.bootstrap, topic_name)
    assert read_all(b.bootstrap, topic_name) == acked
    # The restarted log accepts appends after the recovered ones.
    acked |= produce(b.bootstrap, topic_name, [f"after-{i}".encode() for i in range(300)])
    assert read_all(b.bootstrap, topic_name) == acked
    assert b.stop() == 0

    b.start()
    assert read_all(b.bootstrap, topic_name) == acked


def test_acknowledged_records_survive_kill_9(broker_factory, topic_name):
    b = broker_factory().start()
    create_topic(b.bootstrap, topic_name)
    acked = produce(b.bootstrap, topic_name, [f"v-{i}".encode() for i in range(2000)])
    b.kill()

    b.start()
    check_topic(b.bootstrap, topic_name)
    assert read_all(b.bootstrap, topic_name) == acked
    acked |= produce(b.bootstrap, topic_name, [f"w-{i}".encode() for i in range(300)])
    assert read_all(b.bootstrap, topic_name) == acked


def test_kill_9_during_produce_keeps_every_acknowledged_record(broker_factory, topic_name):
    """kill -9 while a producer is mid-stream: whatever was acknowledged before the kill is there after."""
    b = broker_factory().start()
    create_topic(b.bootstrap, topic_name)
    acked, lock = set(), threading.Lock()
    stop = threading.Event()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked.add((msg.partition(), msg.offset(), msg.value()))

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 1,
                  "message.timeout.ms": 3000, "reconnect.backoff.max.ms": 100})

    def run():
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic_name, key=str(i % 17).encode(), value=f"r-{i}".encode(), on_delivery=on_delivery)
            except BufferError:
                pass
            p.poll(0.0005 if i % 100 else 0.005)
            i += 1

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= 5000:
                break
        time.sleep(0.01)
    b.kill()
    stop.set()
    t.join(TIMEOUT_S)
    p.flush(10)  # remaining records fail with timeouts: they were never acknowledged
    with lock:
        acked_before_kill = set(acked)
    assert len(acked_before_kill) >= 5000

    b.start()
    got = read_all(b.bootstrap, topic_name)
    missing = acked_before_kill - got
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
