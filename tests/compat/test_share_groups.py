"""Share groups (KIP-932) with confluent-kafka's ShareConsumer (librdkafka 2.16's share
consumer) over real sockets: more consumers than partitions share the records with none
delivered twice, and two share groups each get every record. The broker runs with
`group.share.enable=true` (share-partition state is in memory so far; see issue 17).
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic, ResourceType)

TIMEOUT = 30


def start(broker_factory):
    return broker_factory(["--set", "group.share.enable=true"]).start()


def setup(b, topic: str, groups: list[str], records: int) -> None:
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(topic, 2, 1)], operation_timeout=TIMEOUT).values():
        f.result(TIMEOUT)
    # Kafka's group config: read the partitions from the start (the default is latest).
    resources = [ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest",
                    incremental_operation=AlterConfigOpType.SET)]) for g in groups]
    for f in a.incremental_alter_configs(resources).values():
        f.result(TIMEOUT)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(records):
        p.produce(topic, key=str(i).encode(), value=f"r{i}".encode())
    assert p.flush(TIMEOUT) == 0


def consume(b, topic: str, group: str, out: list, stop: threading.Event) -> None:
    """A share consumer appending each record's value to `out` (implicitly acknowledged by its
    next poll) until `stop`."""
    c = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": group})
    c.subscribe([topic])
    try:
        while not stop.is_set():
            for m in list(c.poll(0.5)):
                if m.error() is None:
                    out.append(m.value())
    finally:
        c.close()


def run(b, topic: str, consumers: list[tuple[str, list]], want: int) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=consume, args=(b, topic, g, out, stop))
               for g, out in consumers]
    for t in threads:
        t.start()
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and sum(len(o) for _, o in consumers) < want:
        time.sleep(0.2)
    time.sleep(1)  # anything delivered twice would show up now
    stop.set()
    for t in threads:
        t.join(TIMEOUT)


def test_more_consumers_than_partitions_share_the_records_once(broker_factory, topic_name):
    b = start(broker_factory)
    setup(b, topic_name, ["workers"], 300)
    outs = [("workers", []) for _ in range(3)]
    run(b, topic_name, outs, 300)
    got = [v for _, out in outs for v in out]
    assert sorted(got) == sorted(f"r{i}".encode() for i in range(300)), \
        f"{len(got)} delivered, {len(set(got))} distinct"


def test_two_share_groups_each_get_every_record(broker_factory, topic_name):
    b = start(broker_factory)
    setup(b, topic_name, ["g1", "g2"], 100)
    outs = [("g1", []), ("g2", [])]
    run(b, topic_name, outs, 200)
    for _, out in outs:
        assert sorted(out) == sorted(f"r{i}".encode() for i in range(100))
