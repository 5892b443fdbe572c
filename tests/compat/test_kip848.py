"""KIP-848 consumer groups (`group.protocol=consumer`) with confluent-kafka (librdkafka >= 2.4) against a
real `strom serve`: server-side assignment, takeover after a member leaves, committed offsets across a
broker restart, and regex subscriptions that pick up topics created later.

The broker runs with a short `group.consumer.heartbeat.interval.ms` so reconciliation (which advances one
step per heartbeat) finishes within a few seconds.
"""

from __future__ import annotations

import time
from collections import Counter

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 60
FAST = ["--set", "group.consumer.heartbeat.interval.ms=300"]


def create_topic(broker, name: str, partitions: int) -> None:
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    f = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                        operation_timeout=TIMEOUT_S)
    f[name].result(timeout=TIMEOUT_S)


def produce(broker, topic: str, partitions: int, start: int, count: int) -> None:
    """`count` records numbered from `start`, spread round-robin over the partitions."""
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, value=str(i).encode(), partition=i % partitions)
    assert p.flush(TIMEOUT_S) == 0


def consumer(broker, group: str, **conf) -> Consumer:
    return Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **conf,
    })


def poll_round(consumers: list[Consumer], seen: dict, commit: bool = True) -> None:
    """One poll of every consumer; records what each got and commits it synchronously."""
    for c in consumers:
        msgs = c.consume(num_messages=500, timeout=0.2)
        for m in msgs:
            assert m.error() is None, m.error()
            seen.setdefault(id(c), []).append((m.topic(), m.partition(), m.offset(), m.value()))
        if msgs and commit:
            c.commit(asynchronous=False)


def parts(c: Consumer) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in c.assignment()}


def run_until(consumers, seen, done, what: str) -> None:
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        poll_round(consumers, seen)
        if done():
            return
    raise AssertionError(f"timed out waiting for {what}: "
                         f"assignments={[sorted(parts(c)) for c in consumers]} "
                         f"seen={sum(len(v) for v in seen.values())}")


def values(seen: dict) -> list[int]:
    return [int(v) for recs in seen.values() for (_, _, _, v) in recs]


def test_three_members_share_six_partitions_then_one_leaves(broker_factory):
    b = broker_factory(FAST).start()
    create_topic(b, "kip848-t", 6)
    produce(b, "kip848-t", 6, 0, 600)
    cs = [consumer(b, "kip848-g") for _ in range(3)]
    for c in cs:
        c.subscribe(["kip848-t"])
    seen: dict = {}
    try:
        run_until(cs, seen, lambda: len(values(seen)) == 600 and all(len(parts(c)) == 2 for c in cs),
                  "3 x 2 partitions and 600 records")
        owned = [parts(c) for c in cs]
        assert set.union(*owned) == {("kip848-t", p) for p in range(6)}
        assert sum(len(o) for o in owned) == 6, f"a partition is owned twice: {owned}"
        counts = Counter(values(seen))
        assert sorted(counts) == list(range(600)) and max(counts.values()) == 1, "not exactly once"

        # One member leaves (close = leave heartbeat); the others take over from its commits.
        leaving = cs.pop()
        leaving.close()
        produce(b, "kip848-t", 6, 600, 300)
        run_until(cs, seen, lambda: len(values(seen)) >= 900 and all(len(parts(c)) == 3 for c in cs),
                  "2 x 3 partitions and 900 records")
        counts = Counter(values(seen))
        assert sorted(counts) == list(range(900)), "records were skipped"
        assert max(counts.values()) == 1, "records were read twice despite synchronous commits"
        assert parts(cs[0]) | parts(cs[1]) == {("kip848-t", p) for p in range(6)}
        assert not parts(cs[0]) & parts(cs[1])
    finally:
        for c in cs:
            c.close()


def test_commit_then_broker_restart_resumes_after_committed_offset(broker_factory):
    b = broker_factory(FAST).start()
    create_topic(b, "kip848-r", 2)
    produce(b, "kip848-r", 2, 0, 100)
    c = consumer(b, "kip848-rg")
    c.subscribe(["kip848-r"])
    seen: dict = {}
    run_until([c], seen, lambda: len(values(seen)) == 100, "100 records")
    c.close()  # leaves; its commits stay
    assert b.stop() == 0
    b.start()
    produce(b, "kip848-r", 2, 100, 50)
    c = consumer(b, "kip848-rg")
    c.subscribe(["kip848-r"])
    seen = {}
    try:
        run_until([c], seen, lambda: len(values(seen)) >= 50, "50 new records")
        time.sleep(1)
        poll_round([c], seen)
        assert sorted(values(seen)) == list(range(100, 150)), "did not resume after the commit"
        committed = c.committed([TopicPartition("kip848-r", p) for p in range(2)], timeout=10)
        assert [tp.offset for tp in committed] == [75, 75]
    finally:
        c.close()
    # The group is listed with its type.
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    listed = a.list_consumer_groups().result(timeout=TIMEOUT_S)
    ids = {g.group_id: g for g in listed.valid}
    assert "kip848-rg" in ids
    assert str(getattr(ids["kip848-rg"], "type", "CONSUMER")).upper().endswith("CONSUMER")


def test_regex_subscription_picks_up_a_topic_created_later(broker_factory):
    b = broker_factory(FAST + ["--set", "num.partitions=2"]).start()
    create_topic(b, "rx-one", 2)
    create_topic(b, "other", 2)
    produce(b, "rx-one", 2, 0, 20)
    produce(b, "other", 2, 1000, 20)
    c = consumer(b, "kip848-rx", **{"topic.metadata.refresh.interval.ms": 1000})
    c.subscribe(["^rx-.*"])
    seen: dict = {}
    try:
        run_until([c], seen, lambda: len(values(seen)) == 20, "20 records of rx-one")
        create_topic(b, "rx-two", 3)
        produce(b, "rx-two", 3, 100, 30)
        run_until([c], seen, lambda: len(values(seen)) >= 50, "records of rx-two")
        assert sorted(values(seen)) == list(range(20)) + list(range(100, 130))
        assert {t for (t, _, _, _) in seen[id(c)]} == {"rx-one", "rx-two"}
    finally:
        c.close()


def test_classic_group_id_cannot_be_joined_with_the_consumer_protocol(broker_factory):
    b = broker_factory(FAST).start()
    create_topic(b, "kip848-ns", 1)
    produce(b, "kip848-ns", 1, 0, 5)
    classic = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "kip848-ns",
                        "auto.offset.reset": "earliest", "enable.auto.commit": False})
    classic.subscribe(["kip848-ns"])
    seen: dict = {}
    try:
        run_until([classic], seen, lambda: len(values(seen)) == 5, "classic member reads")
        errors = []
        nxt = consumer(b, "kip848-ns", error_cb=lambda e: errors.append(e))
        nxt.subscribe(["kip848-ns"])
        deadline = time.time() + 15
        got = []
        while time.time() < deadline and not errors:
            got += nxt.consume(num_messages=10, timeout=0.3)
            classic.poll(0.1)
        assert not [m for m in got if m.error() is None], "joined a classic group with the new protocol"
        reported = [str(e) for e in errors] + [str(m.error()) for m in got if m.error() is not None]
        # librdkafka: "ConsumerGroupHeartbeat fatal error: Broker: The group id does not exist".
        assert any("group id does not exist" in r.lower() for r in reported), reported
        nxt.close()
    finally:
        classic.close()


def test_legacy_list_groups_describes_consumer_groups(broker_factory):
    """librdkafka's rd_kafka_list_groups (confluent-kafka's AdminClient.list_groups) lists with
    ListGroups v0 and describes every group with DescribeGroups v0; a consumer group there must be
    answered as v0 can carry it (Kafka: Dead, no error), not close the connection."""
    broker = broker_factory(FAST).start()
    create_topic(broker, "lg-topic", 2)
    c = consumer(broker, "lg-consumer-group")
    try:
        c.subscribe(["lg-topic"])
        deadline = time.time() + TIMEOUT_S
        while not c.assignment() and time.time() < deadline:
            c.poll(0.2)
        assert c.assignment(), "no assignment"
        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        groups = {g.id: g for g in a.list_groups(timeout=10)}
        assert "lg-consumer-group" in groups, sorted(groups)
        assert groups["lg-consumer-group"].state == "Dead"
        # The failure this guards against: a response v0 cannot encode closed the connection.
        assert "encoding response failed" not in broker.stderr_text()
    finally:
        c.close()
