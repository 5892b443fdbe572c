"""Consumer groups with real clients' own group code (classic protocol): kafka-python and aiokafka
run their own JoinGroup/SyncGroup/assignor in Python; confluent-kafka runs librdkafka's.

Each test: two consumers in one group on a 4-partition topic wait for a stable split (2+2,
disjoint), then read every record produced after that exactly once; they commit and close, and a
new consumer in the group reads only what was produced after the commit. The broker runs with
`group.initial.rebalance.delay.ms=0` so joins are not delayed 3 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from conftest import Broker

PARTITIONS = 4
N = 200
TIMEOUT_S = 60
BROKER_ARGS = ["--set", "group.initial.rebalance.delay.ms=0"]


@pytest.fixture
def gbroker(broker_factory) -> Broker:
    return broker_factory(BROKER_ARGS).start()


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        f.result(30)


def produce(bootstrap: str, topic: str, start: int, n: int) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, value=f"m{i}".encode(), partition=i % PARTITIONS)
    assert p.flush(30) == 0


class Member:
    """One consumer driven in its own thread by `poll` / `assignment` / `commit` / `close` callables."""

    def __init__(self, name: str):
        self.name = name
        self.assigned: set[int] = set()
        self.records: list[tuple[int, int, str]] = []  # (partition, offset, value)
        self.stop = threading.Event()
        self.error: BaseException | None = None


def run_threads(members: list[Member], make, expect: int, before_produce, after_stable) -> None:
    """Runs each member in a thread; once the split is stable calls `after_stable()` (produce),
    then waits until `expect` records arrived in total."""
    threads = []
    for m in members:
        def body(m=m):
            c = make()
            try:
                while not m.stop.is_set():
                    for rec in c.poll():
                        m.records.append(rec)
                    m.assigned = c.assignment()
                c.commit()
            except BaseException as e:  # reported by the main thread
                m.error = e
            finally:
                c.close()
        t = threading.Thread(target=body, daemon=True)
        t.start()
        threads.append(t)
    try:
        wait_stable(members)
        after_stable()
        deadline = time.time() + TIMEOUT_S
        while sum(len(m.records) for m in members) < expect and time.time() < deadline:
            assert not any(m.error for m in members), [m.error for m in members]
            time.sleep(0.1)
        time.sleep(0.5)  # anything extra (a duplicate) would show up now
    finally:
        for m in members:
            m.stop.set()
        for t in threads:
            t.join(30)
    assert not any(m.error for m in members), [m.error for m in members]


def wait_stable(members: list[Member]) -> None:
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        sets = [m.assigned for m in members]
        if all(sets) and set().union(*sets) == set(range(PARTITIONS)) \
                and sum(len(s) for s in sets) == PARTITIONS:
            time.sleep(1.0)  # must stay stable
            if [m.assigned for m in members] == sets:
                return
        time.sleep(0.1)
    pytest.fail(f"no stable split: {[m.assigned for m in members]}")


def check_split_and_once(members: list[Member], first: int, n: int) -> None:
    parts = [m.assigned for m in members]
    assert all(len(p) == PARTITIONS // len(members) for p in parts), parts
    seen = [r[2] for m in members for r in m.records]
    assert sorted(seen) == sorted(f"m{i}" for i in range(first, first + n)), \
        f"{len(seen)} records, {len(set(seen))} distinct, expected {n}"
    for m in members:
        assert {r[0] for r in m.records} <= m.assigned, "read a partition it did not own"


def resume_check(members_make, bootstrap: str, topic: str) -> None:
    """After the two members committed and left: produce N more; a new member reads exactly those."""
    produce(bootstrap, topic, N, N)
    m = Member("resumed")
    run_threads([m], members_make, N, None, lambda: None)
    assert sorted(r[2] for r in m.records) == sorted(f"m{i}" for i in range(N, 2 * N)), \
        f"resumed consumer read {len(m.records)} records; first: {sorted(m.records)[:3]}"


def group_test(bootstrap: str, topic: str, make) -> None:
    create_topic(bootstrap, topic)
    members = [Member("a"), Member("b")]
    run_threads(members, make, N, None, lambda: produce(bootstrap, topic, 0, N))
    check_split_and_once(members, 0, N)
    resume_check(make, bootstrap, topic)


# --- kafka-python -------------------------------------------------------------------------------

class KafkaPythonAdapter:
    def __init__(self, bootstrap: str, topic: str, group: str):
        from kafka import KafkaConsumer

        self.c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               session_timeout_ms=10000, heartbeat_interval_ms=500,
                               max_poll_interval_ms=20000)
        # Load the topic's metadata before the first poll (which is what sends JoinGroup), so the
        # coordinator's metadata snapshot already has all partitions when this member first joins.
        # Otherwise the group leader learns the partitions only after its first assignment and
        # rejoins for that alone; kafka-python 3.0.12 can then drop its own completed rebalance:
        # a poll() times out while that JoinGroup waits for the other member, the leader's
        # assignment (IO thread) makes need_rejoin() false again, so the next poll never picks up
        # the finished join task: no assignment, heartbeats stay disabled, and the session expires
        # while the broker has answered every request. `topics()` forces a metadata refresh, which
        # the coordinator's listener sees with the subscription already in place.
        deadline = time.time() + TIMEOUT_S
        while topic not in self.c.topics() or len(self.c.partitions_for_topic(topic)) < PARTITIONS:
            assert time.time() < deadline, f"no metadata for {topic}"
            time.sleep(0.1)

    def poll(self):
        out = []
        for tp, recs in self.c.poll(timeout_ms=200).items():
            out += [(tp.partition, r.offset, r.value.decode()) for r in recs]
        return out

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def commit(self):
        self.c.commit()

    def close(self):
        self.c.close()


def test_kafka_python_group_splits_and_resumes(gbroker, topic_name):
    group = f"g-{uuid.uuid4()}"
    group_test(gbroker.bootstrap, topic_name, lambda: KafkaPythonAdapter(gbroker.bootstrap, topic_name, group))


# --- confluent-kafka (librdkafka, classic protocol) ---------------------------------------------

class ConfluentAdapter:
    def __init__(self, bootstrap: str, topic: str, group: str):
        from confluent_kafka import Consumer

        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "auto.offset.reset": "earliest", "enable.auto.commit": False,
                           "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                           "partition.assignment.strategy": "range"})
        self.c.subscribe([topic])

    def poll(self):
        out = []
        for msg in self.c.consume(100, 0.2):
            if msg.error() is None:
                out.append((msg.partition(), msg.offset(), msg.value().decode()))
        return out

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def commit(self):
        from confluent_kafka import KafkaException

        try:
            self.c.commit(asynchronous=False)
        except KafkaException as e:  # _NO_OFFSET: nothing consumed since the last commit
            if "NO_OFFSET" not in str(e):
                raise

    def close(self):
        self.c.close()


def test_confluent_kafka_subscribe_group_splits_and_resumes(gbroker, topic_name):
    group = f"g-{uuid.uuid4()}"
    group_test(gbroker.bootstrap, topic_name, lambda: ConfluentAdapter(gbroker.bootstrap, topic_name, group))


# --- aiokafka (asyncio, its own group coordinator code) -----------------------------------------

async def aio_member(bootstrap: str, topic: str, group: str, m: Member) -> None:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=10000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=20000)
    await c.start()
    try:
        while not m.stop.is_set():
            for tp, recs in (await c.getmany(timeout_ms=200)).items():
                m.records += [(tp.partition, r.offset, r.value.decode()) for r in recs]
            m.assigned = {tp.partition for tp in c.assignment()}
        await c.commit()
    finally:
        await c.stop()


async def aio_run(bootstrap: str, topic: str, group: str, members: list[Member], expect: int,
                  produce_first: int | None) -> None:
    tasks = [asyncio.create_task(aio_member(bootstrap, topic, group, m)) for m in members]
    try:
        if produce_first is not None:
            await asyncio.to_thread(wait_stable, members)
            await asyncio.to_thread(produce, bootstrap, topic, produce_first, N)
        deadline = time.time() + TIMEOUT_S
        while sum(len(m.records) for m in members) < expect and time.time() < deadline:
            for t in tasks:
                if t.done():
                    t.result()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        for m in members:
            m.stop.set()
        await asyncio.gather(*tasks)


def test_aiokafka_group_splits_and_resumes(gbroker, topic_name):
    bootstrap, group = gbroker.bootstrap, f"g-{uuid.uuid4()}"
    create_topic(bootstrap, topic_name)
    members = [Member("a"), Member("b")]
    asyncio.run(aio_run(bootstrap, topic_name, group, members, N, 0))
    check_split_and_once(members, 0, N)
    produce(bootstrap, topic_name, N, N)
    m = Member("resumed")
    asyncio.run(aio_run(bootstrap, topic_name, group, [m], N, None))
    assert sorted(r[2] for r in m.records) == sorted(f"m{i}" for i in range(N, 2 * N))
