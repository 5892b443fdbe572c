"""Authentication with real clients over real sockets: SASL/PLAIN on SASL_PLAINTEXT, mTLS with
principal mapping on SSL, OAUTHBEARER with JWTs checked against a JWKS, SCRAM-SHA-512 on
SASL_SSL (confluent-kafka, kcat, kafka-python, aiokafka), and the refusals: a wrong password, a
wrong mechanism, a forged, expired or misdirected token, a plaintext client on a TLS port, a
client without a certificate, a client trusting another CA.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from security import PLAIN_USERS, make_pki, secured_broker_args

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
