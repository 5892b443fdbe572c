"""Python clients against a 3-node Strom cluster (combined broker + controller voters on loopback):
kafka-python, aiokafka and confluent-kafka produce with acks=all and consume in groups while the
partitions are replicated three ways, and a group keeps its committed offsets when the partition
leader and the group coordinator are killed with SIGKILL: on a plaintext cluster, and on one whose
clients log in with SCRAM over TLS, whose brokers replicate over SASL_SSL and whose controller
quorum runs over mutual TLS (where a peer without a node's certificate is refused)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from security import SCRAM_ADMIN, make_cluster_pki, secured_cluster_node_args

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


@dataclass
class SecuredCluster:
    """The nodes, and how clients log in (confluent-kafka conf, kafka-python kwargs)."""
    nodes: list
    pki: object
    controller_ports: list[int]
    conf: dict = field(default_factory=dict)
    kp: dict = field(default_factory=dict)


@pytest.fixture
def secured_cluster(broker_factory, tmp_path):
    ids = [1, 2, 3]
    pki = make_cluster_pki(tmp_path / "pki", ids)
    controllers = [free_port() for _ in ids]
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in zip(ids, controllers))
    nodes = [broker_factory([*secured_cluster_node_args(pki, i, voters), *FAST], listen=False)
             for i in ids]
    for n in nodes:
        # Logins at debug: the test checks the brokers authenticated to each other.
        n.extra_env = {"STROM_LOG": "info,strom_broker::server::sasl=debug"}
        n.launch()
    for n in nodes:
        n.wait_ready()
    user, password = SCRAM_ADMIN
    conf = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": password, "ssl.ca.location": str(pki.ca)}
    kp = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
          "sasl_plain_username": user, "sasl_plain_password": password,
          "ssl_cafile": str(pki.ca)}
    return SecuredCluster(nodes, pki, controllers, conf, kp)


def bootstrap(nodes) -> str:
    return ",".join(n.bootstrap for n in nodes if n.proc is not None and n.proc.poll() is None)


def create_topic(nodes, name: str, partitions: int, conf: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap(nodes), **(conf or {})})
    fut = admin.create_topics([NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})])
    fut[name].result(30)


def leader_of(nodes, topic: str, partition: int, conf: dict | None = None) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap(nodes), **(conf or {})})
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


def group_offsets_survive_leader_and_coordinator_kill(nodes, topic_name, conf=None, kp=None):
    conf, kp = conf or {}, kp or {}
    create_topic(nodes, topic_name, 1, conf)
    boot = bootstrap(nodes)
    p = KafkaProducer(bootstrap_servers=boot, acks="all", **kp)
    for i in range(100):
        p.send(topic_name, value=str(i).encode())
    p.flush()
    p.close()
    c = KafkaConsumer(topic_name, bootstrap_servers=boot, group_id="survivor",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=20000,
                      **kp)
    seen = [int(m.value) for _, m in zip(range(60), c)]
    c.commit()
    c.close()
    assert seen == list(range(60))
    # The partition leader (and, with 1 partition of __consumer_offsets' 50, maybe the coordinator).
    victim = leader_of(nodes, topic_name, 0, conf)
    nodes[victim - 1].kill()
    survivors = [n for n in nodes if n.proc.poll() is None]
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if leader_of(survivors, topic_name, 0, conf) not in (-1, victim):
                break
        except Exception:
            pass
        time.sleep(0.2)
    c = KafkaConsumer(topic_name, bootstrap_servers=bootstrap(survivors), group_id="survivor",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=30000,
                      **kp)
    rest = [int(m.value) for _, m in zip(range(40), c)]
    c.close()
    assert rest == list(range(60, 100)), "the group resumed from its committed offset"


def test_group_offsets_survive_leader_and_coordinator_kill(cluster, topic_name):
    group_offsets_survive_leader_and_coordinator_kill(cluster, topic_name)


def test_secured_cluster_survives_leader_and_coordinator_kill(secured_cluster, topic_name):
    """Replication (SASL_SSL between brokers) and the quorum (mutual TLS) carry the failover."""
    sc = secured_cluster
    group_offsets_survive_leader_and_coordinator_kill(sc.nodes, topic_name, sc.conf, sc.kp)
    # The brokers did authenticate to each other, and nothing went over plaintext.
    logs = "".join(n.stderr_text() for n in sc.nodes)
    assert 'mechanism="SCRAM-SHA-512" principal=User:broker' in logs, "no inter-broker login"


def tls_refused(port: int, pki, cert=None, key=None) -> bool:
    """True when the controller port refuses a TLS peer presenting `cert` (or none): the
    handshake fails, or an alert or EOF follows it. An accepted peer is left waiting for its
    hello, so the read times out (False)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.settimeout(2)
                return s.recv(1) == b""
    except TimeoutError:
        return False
    except (ssl.SSLError, ConnectionError, OSError):
        return True


def test_controller_port_refuses_peers_without_a_node_certificate(secured_cluster):
    sc = secured_cluster
    port = sc.controller_ports[0]
    # Plaintext bytes on the TLS controller port: closed (after at most a TLS alert).
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x00\x00\x00\x05hello")
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionError:
            pass
        assert data == b"" or data[0] == 0x15, data[:16]
    assert tls_refused(port, sc.pki), "no client certificate"
    assert tls_refused(port, sc.pki, sc.pki.alice_cert, sc.pki.alice_key), "a client's certificate"
    assert tls_refused(port, sc.pki, sc.pki.rogue_cert, sc.pki.rogue_key), "another CA's node"
    # Node 2's own certificate is accepted (the checks above can fail).
    assert not tls_refused(port, sc.pki, sc.pki.keystores[2]), "a node's certificate"
    # The quorum itself is unharmed: clients still get metadata.
    admin = AdminClient({"bootstrap.servers": bootstrap(sc.nodes), **sc.conf})
    assert len(admin.list_topics(timeout=20).brokers) == 3
