"""Security material made at test time (no private key is committed): a CA with a server
certificate for 127.0.0.1/localhost and client certificates (trustme), a second, untrusted CA,
an RSA key with its JWKS file and signed JWTs (PyJWT), and the `--set` arguments of a broker
with PLAINTEXT, SASL_PLAINTEXT (PLAIN), SASL_SSL (SCRAM-SHA-512), SSL (mTLS) and an OAUTHBEARER
listener, as a Kafka operator would write them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "strom"
ISSUER = "strom-test-issuer"
KID = "test-key-1"
PLAIN_USERS = {"admin": "admin-secret", "alice": "alice-secret"}
# Created at start with `--add-scram` (SCRAM-SHA-512 and SCRAM-SHA-256).
SCRAM_ADMIN = ("admin", "scram-admin-secret")


# The broker certificate's subject, fixed so a rotated certificate keeps it (Kafka refuses a
# dynamic keystore update that changes the DN or the SANs).
SERVER_SUBJECT = {"common_name": "strom-broker", "organization_name": "strom-tests",
                  "organization_unit_name": "brokers"}


@dataclass
class Pki:
    dir: Path
    ca: Path            # the trusted CA (PEM)
    keystore: Path      # the broker's certificate chain and key (Kafka's PEM keystore)
    other_ca: Path      # a CA nobody trusts
    alice_cert: Path    # a client certificate, CN=alice, from the trusted CA
    alice_key: Path
    mallory_cert: Path  # a client certificate from the untrusted CA
    mallory_key: Path
    jwks: Path
    jwt_key: rsa.RSAPrivateKey
    forged_key: rsa.RSAPrivateKey
    issuer: trustme.CA   # the trusted CA itself, to issue rotated broker certificates

    def server_keystore(self, path: Path, *identities: str) -> Path:
        """A new broker keystore from the trusted CA (a fresh key), with the broker's subject;
        for 127.0.0.1/localhost unless other `identities` are given."""
        cert = self.issuer.issue_cert(*(identities or ("localhost", "127.0.0.1")),
                                      **SERVER_SUBJECT)
        path.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems)
                         + cert.private_key_pem.bytes())
        return path

    def token(self, sub: str = "carol", audience: str = AUDIENCE, expires_in: int = 300,
              key: rsa.RSAPrivateKey | None = None, issuer: str = ISSUER) -> str:
        now = int(time.time())
        claims = {"sub": sub, "aud": audience, "iss": issuer, "iat": now, "exp": now + expires_in}
        return jwt.encode(claims, key or self.jwt_key, algorithm="RS256", headers={"kid": KID})


def make_pki(dir: Path) -> Pki:
    dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    other = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", **SERVER_SUBJECT)
    alice = ca.issue_cert("alice.example", common_name="alice")
    mallory = other.issue_cert("mallory.example", common_name="mallory")

    def write(name: str, data: bytes) -> Path:
        p = dir / name
        p.write_bytes(data)
        return p

    keystore = b"".join(b.bytes() for b in server.cert_chain_pems) + server.private_key_pem.bytes()
    jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(jwt_key.public_key()))
    jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
    return Pki(
        dir=dir,
        ca=write("ca.pem", ca.cert_pem.bytes()),
        keystore=write("server.keystore.pem", keystore),
        other_ca=write("other-ca.pem", other.cert_pem.bytes()),
        alice_cert=write("alice.pem", alice.cert_chain_pems[0].bytes()),
        alice_key=write("alice.key", alice.private_key_pem.bytes()),
        mallory_cert=write("mallory.pem", mallory.cert_chain_pems[0].bytes()),
        mallory_key=write("mallory.key", mallory.private_key_pem.bytes()),
        jwks=write("jwks.json", json.dumps({"keys": [jwk]}).encode()),
        jwt_key=jwt_key,
        forged_key=forged_key,
        issuer=ca,
    )


@dataclass
class ClusterPki:
    """Certificates of a secured cluster: one CA; per node a certificate whose CN is
    `broker-<id>` (what the controller listener's mapping turns into the node's identity), valid
    for 127.0.0.1; a client certificate (CN=alice) of the same CA that names no node; and a node
    certificate from a CA the cluster does not trust."""
    ca: Path
    keystores: dict[int, Path]
    alice_cert: Path
    alice_key: Path
    rogue_cert: Path   # CN=broker-1, from another CA
    rogue_key: Path


def make_cluster_pki(dir: Path, node_ids: list[int]) -> ClusterPki:
    dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    other = trustme.CA()

    def write(name: str, data: bytes) -> Path:
        p = dir / name
        p.write_bytes(data)
        return p

    keystores = {}
    for i in node_ids:
        cert = ca.issue_cert("127.0.0.1", "localhost", common_name=f"broker-{i}")
        keystores[i] = write(f"broker-{i}.keystore.pem",
                             b"".join(b.bytes() for b in cert.cert_chain_pems)
                             + cert.private_key_pem.bytes())
    alice = ca.issue_cert("alice.example", common_name="alice")
    rogue = other.issue_cert("127.0.0.1", common_name="broker-1")
    return ClusterPki(
        ca=write("ca.pem", ca.cert_pem.bytes()),
        keystores=keystores,
        alice_cert=write("alice.pem", alice.cert_chain_pems[0].bytes()),
        alice_key=write("alice.key", alice.private_key_pem.bytes()),
        rogue_cert=write("rogue.pem", rogue.cert_chain_pems[0].bytes()),
        rogue_key=write("rogue.key", rogue.private_key_pem.bytes()),
    )


# The inter-broker SCRAM user of the secured cluster (created by `--add-scram` on every node).
INTER_BROKER_USER = ("broker", "broker-secret")


def secured_cluster_node_args(pki: ClusterPki, node_id: int, voters: str) -> list[str]:
    """`strom serve` arguments of one node of a cluster whose clients log in with SCRAM over
    TLS (CLIENT), whose brokers reach each other over SASL_SSL with SCRAM (BROKER), and whose
    controller quorum runs over mutual TLS, each node proven by its certificate (CONTROLLER)."""
    controller_port = dict(v.split("@") for v in voters.split(","))[str(node_id)].rsplit(":", 1)[1]
    user, password = INTER_BROKER_USER
    settings = {
        "node.id": str(node_id),
        "process.roles": "broker,controller",
        "controller.quorum.voters": voters,
        "listeners": f"CLIENT://127.0.0.1:0,BROKER://127.0.0.1:0,"
                     f"CONTROLLER://127.0.0.1:{controller_port}",
        "listener.security.protocol.map": "CLIENT:SASL_SSL,BROKER:SASL_SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "BROKER",
        "controller.listener.names": "CONTROLLER",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.keystores[node_id]),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.broker.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";',
        "listener.name.controller.ssl.client.auth": "required",
        "listener.name.controller.ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    }
    args: list[str] = []
    for k, v in settings.items():
        args += ["--set", f"{k}={v}"]
    for u, pw in (INTER_BROKER_USER, SCRAM_ADMIN):
        args += ["--add-scram", f"SCRAM-SHA-512=[name={u},password={pw}]"]
    return args


def secured_broker_args(pki: Pki) -> list[str]:
    """`strom serve` arguments for a broker with every kind of listener (ports chosen at bind)."""
    plain_jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                  + " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items()) + ";")
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,"
                     "SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0,OAUTH://127.0.0.1:0",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                          "SASL_SSL:SASL_SSL,SSL:SSL,OAUTH:SASL_PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([a-zA-Z0-9]+),.*$/$1/,DEFAULT",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": plain_jaas,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
        "listener.name.oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": pki.jwks.as_uri(),
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
    }
    args: list[str] = []
    for k, v in settings.items():
        args += ["--set", f"{k}={v}"]
    user, password = SCRAM_ADMIN
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    return args
