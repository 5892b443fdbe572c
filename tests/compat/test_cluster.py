"""Python clients against a 3-node Strom cluster (combined broker + controller voters on loopback):
kafka-python, aiokafka and confluent-kafka produce with acks=all and consume in groups while the
partitions are replicated three ways, and a group keeps its committed offsets when the partition
leader and the group coordinator are killed with SIGKILL."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

FAST = ["--set", "broker.session.timeout.ms=2000", "--set", "broker.heartbeat.interval.ms=250",
        "--set", "replica.lag.time.max.ms=2000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(broker_factory):
    controllers = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controllers))
    nodes = [broker_factory(["--node-id", str(i + 1), "--controller-listen", f"127.0.0.1:{p}",
                             "--voters", voters, *FAST]) for i, p in enumerate(controllers)]
    for n in nodes:
        n.launch()
    for n in nodes:
        n.wait_ready()
    return nodes


def bootstrap(nodes) -> str:
    return ",".join(n.bootstrap for n in nodes if n.proc is not None and n.proc.poll() is None)


def create_topic(nodes, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap(nodes)})
    fut = admin.create_topics([NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})])
    fut[name].result(30)


def leader_of(nodes, topic: str, partition: int) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap(nodes)})
    md = admin.list_topics(topic, timeout=10)
    return md.topics[topic].partitions[partition].leader


def test_python_clients_on_a_three_node_cluster(cluster, topic_name):
    create_topic(cluster, topic_name, 3)
    boot = bootstrap(cluster)
    p = KafkaProducer(bootstrap_servers=boot, acks="all")
    for i in range(300):
        p.send(topic_name, key=str(i % 7).encode(), value=str(i).encode())
    p.flush()
    p.close()
    c = KafkaConsumer(topic_name, bootstrap_servers=boot, group_id="kp", auto_offset_reset="earliest",
                      consumer_timeout_ms=20000)
    got = sorted(int(m.value) for _, m in zip(range(300), c))
    c.close()
    assert got == list(range(300))

    async def aio() -> int:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        pr = AIOKafkaProducer(bootstrap_servers=boot, acks="all")
        await pr.start()
        try:
            for i in range(100):
                await pr.send_and_wait(topic_name, str(300 + i).encode())
        finally:
            await pr.stop()
        co = AIOKafkaConsumer(topic_name, bootstrap_servers=boot, group_id="aio",
                              auto_offset_reset="earliest")
        await co.start()
        n = 0
        try:
            deadline = time.time() + 30
            while n < 400 and time.time() < deadline:
                batch = await co.getmany(timeout_ms=1000)
                n += sum(len(v) for v in batch.values())
        finally:
            await co.stop()
        return n

    assert asyncio.run(aio()) == 400
    ck = Consumer({"bootstrap.servers": boot, "group.id": "ck", "auto.offset.reset": "earliest"})
    ck.subscribe([topic_name])
    n, deadline = 0, time.time() + 30
    while n < 400 and time.time() < deadline:
        m = ck.poll(0.5)
        if m is not None and not m.error():
            n += 1
    ck.close()
    assert n == 400


def test_group_offsets_survive_leader_and_coordinator_kill(cluster, topic_name):
    create_topic(cluster, topic_name, 1)
    boot = bootstrap(cluster)
    p = KafkaProducer(bootstrap_servers=boot, acks="all")
    for i in range(100):
        p.send(topic_name, value=str(i).encode())
    p.flush()
    p.close()
    c = KafkaConsumer(topic_name, bootstrap_servers=boot, group_id="survivor",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=20000)
    seen = [int(m.value) for _, m in zip(range(60), c)]
    c.commit()
    c.close()
    assert seen == list(range(60))
    # The partition leader (and, with 1 partition of __consumer_offsets' 50, maybe the coordinator).
    victim = leader_of(cluster, topic_name, 0)
    cluster[victim - 1].kill()
    survivors = [n for n in cluster if n.proc.poll() is None]
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if leader_of(survivors, topic_name, 0) not in (-1, victim):
                break
        except Exception:
            pass
        time.sleep(0.2)
    c = KafkaConsumer(topic_name, bootstrap_servers=bootstrap(survivors), group_id="survivor",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=30000)
    rest = [int(m.value) for _, m in zip(range(40), c)]
    c.close()
    assert rest == list(range(60, 100)), "the group resumed from its committed offset"
