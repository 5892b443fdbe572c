"""`strom transactions list|describe|describe-producers` against `strom serve`, with a
confluent-kafka (librdkafka) transactional producer holding a transaction open, then committing."""

from __future__ import annotations

import subprocess
import time

import pytest

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import strom_bin

TIMEOUT_S = 60


@pytest.fixture(scope="module", autouse=True)
def require_cli():
    proc = subprocess.run([strom_bin(), "transactions", "--help"], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    if proc.returncode != 0:
        pytest.skip("missing in the strom binary: strom transactions")


def strom(broker, *args: str) -> str:
    proc = subprocess.run([strom_bin(), *args, "--bootstrap-server", broker.bootstrap],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"strom {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def table(out: str) -> list[dict[str, str]]:
    """Parses a `strom transactions` table (header line, then whitespace-separated rows)."""
    lines = out.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


def row_for(out: str, txn_id: str) -> dict[str, str]:
    rows = [r for r in table(out) if r.get("TRANSACTIONAL-ID") == txn_id]
    assert len(rows) == 1, out
    return rows[0]


def wait_state(broker, txn_id: str, state: str) -> dict[str, str]:
    """Commit markers are written after EndTxn returns; the state settles shortly after."""
    deadline = time.time() + 15
    while True:
        row = row_for(strom(broker, "transactions", "describe", txn_id), txn_id)
        if row["STATE"] == state or time.time() > deadline:
            return row
        time.sleep(0.2)


def test_transactions_list_describe(broker, topic_name):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1)],
                    operation_timeout=TIMEOUT_S)[topic_name].result(timeout=TIMEOUT_S)
    txn_id = f"{topic_name}-tx"
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 45000, "linger.ms": 1})
    p.init_transactions(TIMEOUT_S)
    p.begin_transaction()
    for i in range(4):
        p.produce(topic_name, value=f"v{i}", partition=i % 2)
    assert p.flush(TIMEOUT_S) == 0

    listed = row_for(strom(broker, "transactions", "list"), txn_id)
    assert listed["STATE"] == "Ongoing", listed
    assert listed["TIMEOUT-MS"] == "45000", listed
    assert listed["PARTITIONS"].split(",") == [f"{topic_name}-0", f"{topic_name}-1"], listed
    assert int(listed["PRODUCER-ID"]) >= 0 and int(listed["EPOCH"]) >= 0, listed

    described = row_for(strom(broker, "transactions", "describe", txn_id), txn_id)
    assert described["STATE"] == "Ongoing", described
    assert described["PRODUCER-ID"] == listed["PRODUCER-ID"], described
    assert described["START-TIME-MS"] != "-", described

    ongoing = row_for(strom(broker, "transactions", "list", "--state", "Ongoing"), txn_id)
    assert ongoing["STATE"] == "Ongoing"

    producers = table(strom(broker, "transactions", "describe-producers", "--topic", topic_name,
                            "--partition", "0"))
    mine = [r for r in producers if r["PRODUCER-ID"] == listed["PRODUCER-ID"]]
    assert len(mine) == 1 and mine[0]["CURRENT-TXN-START-OFFSET"] == "0", producers

    p.commit_transaction(TIMEOUT_S)
    done = wait_state(broker, txn_id, "CompleteCommit")
    assert done["STATE"] == "CompleteCommit", done
    assert done["PRODUCER-ID"] == listed["PRODUCER-ID"], done
    assert done["PARTITIONS"] == "-", done
    assert row_for(strom(broker, "transactions", "list"), txn_id)["STATE"] == "CompleteCommit"
    assert txn_id not in strom(broker, "transactions", "list", "--state", "Ongoing")

    producers = table(strom(broker, "transactions", "describe-producers", "--topic", topic_name,
                            "--partition", "0"))
    mine = [r for r in producers if r["PRODUCER-ID"] == listed["PRODUCER-ID"]]
    assert len(mine) == 1 and mine[0]["CURRENT-TXN-START-OFFSET"] == "-", producers
