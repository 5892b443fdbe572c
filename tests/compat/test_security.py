"""Authentication with real clients over real sockets: SASL/PLAIN on SASL_PLAINTEXT, mTLS with
principal mapping on SSL, OAUTHBEARER with JWTs checked against a JWKS, SCRAM-SHA-512 on
SASL_SSL (confluent-kafka, kcat, kafka-python, aiokafka, KafkaJS) with the credential made by
`--add-scram`, SCRAM users made with `strom users` surviving a restart, and the refusals: a wrong password, a
wrong mechanism, a forged, expired or misdirected token, a plaintext client on a TLS port, a
client without a certificate, a client trusting another CA.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  ResourceType)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from conftest import strom_bin
from security import PLAIN_USERS, SCRAM_ADMIN, make_pki, secured_broker_args

JS_DIR = Path(__file__).parent / "js"

TIMEOUT = 20


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secured(broker_factory, pki):
    b = broker_factory(secured_broker_args(pki), listen=False)
    b.extra_env = {"STROM_LOG": "info,strom_broker::server=debug"}
    return b.start()


def roundtrip(conf: dict, topic: str) -> None:
    """Produces one record with `conf` and consumes it back with the same settings."""
    value = f"v-{uuid.uuid4()}".encode()
    p = Producer({**conf, "acks": "all"})
    p.produce(topic, key=b"k", value=value)
    assert p.flush(TIMEOUT) == 0, "not delivered"
    c = Consumer({**conf, "group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    deadline = time.time() + TIMEOUT
    try:
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None and m.value() == value:
                return
        pytest.fail(f"{value!r} not consumed back")
    finally:
        c.close()


def refused(conf: dict) -> str:
    """Connects with `conf` and returns the errors the client reported (fails if it got
    metadata)."""
    errors: list[str] = []
    p = Producer({**conf, "error_cb": lambda e: errors.append(str(e)), "log_level": 0,
                  "socket.connection.setup.timeout.ms": 5000})
    with pytest.raises(KafkaException):
        p.list_topics(timeout=5)
    deadline = time.time() + 5
    while not errors and time.time() < deadline:
        p.poll(0.2)
    return " ".join(errors)


def test_plain_over_sasl_plaintext(secured, topic_name):
    conf = {"bootstrap.servers": secured.listeners["SASL_PLAINTEXT"],
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "alice", "sasl.password": PLAIN_USERS["alice"]}
    roundtrip(conf, topic_name)
    # kcat too.
    out = subprocess.run(
        ["kcat", "-b", secured.listeners["SASL_PLAINTEXT"], "-X", "security.protocol=SASL_PLAINTEXT",
         "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=admin", "-X",
         f"sasl.password={PLAIN_USERS['admin']}", "-C", "-t", topic_name, "-o", "beginning", "-e",
         "-q"], capture_output=True, timeout=60, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("v-")


def test_wrong_password_and_wrong_mechanism_are_refused(secured):
    base = {"bootstrap.servers": secured.listeners["SASL_PLAINTEXT"],
            "security.protocol": "SASL_PLAINTEXT"}
    err = refused({**base, "sasl.mechanism": "PLAIN", "sasl.username": "alice",
                   "sasl.password": "wrong"})
    assert "Authentication failed" in err or "SASL_AUTHENTICATION_FAILED" in err or \
        "authentication" in err.lower(), err
    err = refused({**base, "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                   "sasl.password": PLAIN_USERS["alice"]})
    assert "mechanism" in err.lower(), err
    assert "failed authentication" in secured.stderr_text()


def test_mtls_client_certificate_is_the_principal(secured, pki, topic_name):
    conf = {"bootstrap.servers": secured.listeners["SSL"], "security.protocol": "SSL",
            "ssl.ca.location": str(pki.ca), "ssl.certificate.location": str(pki.alice_cert),
            "ssl.key.location": str(pki.alice_key)}
    roundtrip(conf, topic_name)
    assert "principal=User:alice" in secured.stderr_text()


def test_tls_refusals(secured, pki):
    ssl = secured.listeners["SSL"]
    # No client certificate where one is required.
    refused({"bootstrap.servers": ssl, "security.protocol": "SSL", "ssl.ca.location": str(pki.ca)})
    # A client certificate from a CA the broker does not trust.
    refused({"bootstrap.servers": ssl, "security.protocol": "SSL", "ssl.ca.location": str(pki.ca),
             "ssl.certificate.location": str(pki.mallory_cert),
             "ssl.key.location": str(pki.mallory_key)})
    # A client that trusts another CA than the broker's.
    refused({"bootstrap.servers": ssl, "security.protocol": "SSL",
             "ssl.ca.location": str(pki.other_ca), "ssl.certificate.location": str(pki.alice_cert),
             "ssl.key.location": str(pki.alice_key)})
    # A plaintext client on a TLS port.
    refused({"bootstrap.servers": secured.listeners["SASL_SSL"]})
    # The broker still serves everyone else.
    a = AdminClient({"bootstrap.servers": secured.listeners["PLAINTEXT"]})
    assert a.list_topics(timeout=TIMEOUT).brokers


def oauth_conf(secured, token_fn) -> dict:
    def cb(_config):
        return token_fn(), time.time() + 300
    return {"bootstrap.servers": secured.listeners["OAUTH"], "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER", "oauth_cb": cb}


def test_oauthbearer_tokens_are_checked_against_the_jwks(secured, pki, topic_name):
    roundtrip(oauth_conf(secured, lambda: pki.token(sub="carol")), topic_name)
    for bad in (lambda: pki.token(key=pki.forged_key),        # not signed by the JWKS key
                lambda: pki.token(expires_in=-120),            # expired (beyond the clock skew)
                lambda: pki.token(audience="someone-else"),    # for another audience
                lambda: pki.token(issuer="another-issuer")):   # from another issuer
        refused(oauth_conf(secured, bad))


def scram_conf(secured, pki, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> dict:
    return {"bootstrap.servers": secured.listeners["SASL_SSL"], "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
            "ssl.ca.location": str(pki.ca)}


def kafka_python_roundtrip(secured, pki, topic: str, user: str, password: str) -> None:
    sasl = {"bootstrap_servers": secured.listeners["SASL_SSL"], "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
            "sasl_plain_password": password, "ssl_cafile": str(pki.ca)}
    p = KafkaProducer(acks="all", enable_idempotence=False, **sasl)
    try:
        meta = p.send(topic, value=b"from-kafka-python").get(timeout=TIMEOUT)
    finally:
        p.close(timeout=5)
    c = KafkaConsumer(group_id=None, enable_auto_commit=False, consumer_timeout_ms=10000, **sasl)
    try:
        tp = TopicPartition(topic, meta.partition)
        c.assign([tp])
        c.seek(tp, meta.offset)
        got = next(iter(c))
    finally:
        c.close()
    assert got.value == b"from-kafka-python"


async def aiokafka_roundtrip(secured, pki, topic: str, user: str, password: str) -> None:
    sasl = {"bootstrap_servers": secured.listeners["SASL_SSL"], "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
            "sasl_plain_password": password,
            "ssl_context": create_ssl_context(cafile=str(pki.ca))}
    p = AIOKafkaProducer(acks="all", **sasl)
    await p.start()
    try:
        meta = await p.send_and_wait(topic, b"from-aiokafka")
    finally:
        await p.stop()
    c = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **sasl)
    await c.start()
    try:
        tp = AioTopicPartition(topic, meta.partition)
        c.assign([tp])
        c.seek(tp, meta.offset)
        batch = await c.getmany(tp, timeout_ms=TIMEOUT * 1000)
        values = [m.value for m in batch.get(tp, [])]
    finally:
        await c.stop()
    assert values[:1] == [b"from-aiokafka"]


def kafkajs_roundtrip(secured, pki, topic: str, user: str, password: str) -> None:
    env = {**os.environ, "STROM_BROKER": secured.listeners["SASL_SSL"], "STROM_TOPIC": topic,
           "STROM_CA": str(pki.ca), "STROM_SASL_MECHANISM": "scram-sha-512",
           "STROM_SASL_USER": user, "STROM_SASL_PASSWORD": password}
    out = subprocess.run(["node", str(JS_DIR / "roundtrip.js")], env=env, capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 0, out.stderr


def test_scram_sha512_over_sasl_ssl_with_every_client(secured, pki, topic_name):
    """The `--add-scram` admin logs in with SCRAM-SHA-512 over TLS from each client."""
    user, password = SCRAM_ADMIN
    roundtrip(scram_conf(secured, pki, user, password), topic_name)
    out = subprocess.run(
        ["kcat", "-b", secured.listeners["SASL_SSL"], "-X", "security.protocol=SASL_SSL",
         "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={user}",
         "-X", f"sasl.password={password}", "-X", f"ssl.ca.location={pki.ca}",
         "-C", "-t", topic_name, "-o", "beginning", "-e", "-q"],
        capture_output=True, timeout=60, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("v-")
    kafka_python_roundtrip(secured, pki, topic_name, user, password)
    asyncio.run(asyncio.wait_for(aiokafka_roundtrip(secured, pki, topic_name, user, password),
                                 2 * TIMEOUT))
    kafkajs_roundtrip(secured, pki, topic_name, user, password)
    # The wrong password, and a PLAIN user SCRAM does not know, are refused.
    refused(scram_conf(secured, pki, user, "wrong"))
    refused(scram_conf(secured, pki, "alice", PLAIN_USERS["alice"]))


def strom_users(secured, pki, tmp_path, *args: str) -> str:
    """Runs `strom users ...` as the SCRAM admin over SASL_SSL (a Kafka client properties file)."""
    user, password = SCRAM_ADMIN
    props = tmp_path / "admin.properties"
    props.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n")
    out = subprocess.run([strom_bin(), "users", *args, "--bootstrap-server",
                          secured.listeners["SASL_SSL"], "--command-config", str(props)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_scram_users_made_through_the_admin_api_survive_a_restart(secured, pki, topic_name,
                                                                 tmp_path):
    strom_users(secured, pki, tmp_path, "create", "bob", "--password", "bob-secret")
    listed = strom_users(secured, pki, tmp_path, "list")
    assert "bob" in listed and "SCRAM-SHA-256" in listed and "SCRAM-SHA-512" in listed, listed
    bob = scram_conf(secured, pki, "bob", "bob-secret", "SCRAM-SHA-256")
    roundtrip(bob, topic_name)
    # The password never reaches the broker's log, nor does the salted form.
    assert "bob-secret" not in secured.stderr_text()

    secured.stop()
    secured.start()
    roundtrip(scram_conf(secured, pki, "bob", "bob-secret", "SCRAM-SHA-256"), topic_name)
    # Restarting with the same --add-scram did not reset anything, and the admin still logs in.
    admin, admin_password = SCRAM_ADMIN
    roundtrip(scram_conf(secured, pki, admin, admin_password), topic_name)

    strom_users(secured, pki, tmp_path, "delete", "bob")
    assert "bob" not in strom_users(secured, pki, tmp_path, "list")
    refused(scram_conf(secured, pki, "bob", "bob-secret", "SCRAM-SHA-256"))


def served_certificate(addr: str, pki) -> str:
    """The SHA-256 of the certificate a TLS listener presents to a new connection."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.alice_cert), str(pki.alice_key))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def alter_broker_config(secured, key: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": secured.listeners["PLAINTEXT"]})
    resource = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(TIMEOUT)


def test_certificates_are_reread_on_a_dynamic_config_update(secured, pki, tmp_path, topic_name):
    """Kafka's dynamic keystore update: IncrementalAlterConfigs on this broker re-reads the
    keystore for new connections on every TLS listener, refuses one whose SANs differ, and the
    update survives a restart."""
    before = {name: served_certificate(secured.listeners[name], pki) for name in ("SSL", "SASL_SSL")}
    rotated = pki.server_keystore(tmp_path / "rotated.keystore.pem")
    alter_broker_config(secured, "ssl.keystore.location", str(rotated))
    after = {name: served_certificate(secured.listeners[name], pki) for name in ("SSL", "SASL_SSL")}
    assert after["SSL"] != before["SSL"] and after["SASL_SSL"] != before["SASL_SSL"]
    assert after["SSL"] == after["SASL_SSL"]
    # Clients still work on the new certificate.
    user, password = SCRAM_ADMIN
    roundtrip(scram_conf(secured, pki, user, password), topic_name)

    # A certificate for other names is refused (Kafka: SubjectAltNames must not change) and
    # the rotated one keeps serving.
    other = pki.server_keystore(tmp_path / "other.keystore.pem", "other.example")
    with pytest.raises(KafkaException) as refused_update:
        alter_broker_config(secured, "ssl.keystore.location", str(other))
    assert "SubjectAltNames" in str(refused_update.value), refused_update.value
    assert served_certificate(secured.listeners["SSL"], pki) == after["SSL"]

    secured.stop()
    secured.start()
    assert served_certificate(secured.listeners["SSL"], pki) == after["SSL"]


def test_sessions_reauthenticate_on_the_same_connection(broker_factory, pki, topic_name):
    """KIP-368 with librdkafka: with `connections.max.reauth.ms` = 1 s a producer that keeps
    sending for 5 s re-authenticates on its connections (several logins per connection's life)
    and loses nothing."""
    b = broker_factory([*secured_broker_args(pki), "--set", "connections.max.reauth.ms=1000"],
                       listen=False)
    b.extra_env = {"STROM_LOG": "info,strom_broker::server=debug"}
    b.start()
    errors: list[str] = []
    p = Producer({"bootstrap.servers": b.listeners["SASL_PLAINTEXT"],
                  "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                  "sasl.username": "alice", "sasl.password": PLAIN_USERS["alice"],
                  "acks": "all", "linger.ms": 0, "error_cb": lambda e: errors.append(str(e))})
    delivered: list[int] = []
    deadline = time.time() + 5
    i = 0
    while time.time() < deadline:
        p.produce(topic_name, value=str(i).encode(),
                  on_delivery=lambda err, m: err is None and delivered.append(int(m.value())))
        p.poll(0.1)
        i += 1
    assert p.flush(TIMEOUT) == 0
    assert sorted(delivered) == list(range(i)), errors
    # librdkafka holds two connections here (bootstrap, then broker 1): without re-authentication
    # that is two logins; with 1 s sessions each connection logs in again about every second.
    logins = b.stderr_text().count("SASL authenticated")
    assert logins >= 6, b.stderr_text()[-3000:]
    assert "closing connection" not in b.stderr_text(), b.stderr_text()[-3000:]
