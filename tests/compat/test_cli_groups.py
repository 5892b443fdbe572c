"""`strom groups list|describe|reset-offsets|delete` and `strom consume --group` against `strom serve`."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from conftest import strom_bin

TIMEOUT_S = 60


@pytest.fixture
def gbroker(broker_factory):
    return broker_factory(["--set", "group.initial.rebalance.delay.ms=0"]).start()


def strom(broker, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([strom_bin(), *args, "--bootstrap-server", broker.bootstrap], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if check:
        assert proc.returncode == 0, f"strom {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc


def table(out: str, group: str) -> dict[int, list[str]]:
    """describe rows by partition: [topic, partition, current, end, lag, consumer, host, client]."""
    rows = {}
    for line in out.splitlines():
        cols = line.split()
        if cols and cols[0] == group and cols[2] != "-":
            rows[int(cols[2])] = cols[1:]
    return rows


def committed_total(broker, group: str) -> int:
    rows = table(strom(broker, "groups", "describe", group).stdout, group)
    return sum(int(r[2]) for r in rows.values() if r[2] != "-")


def lag_total(broker, group: str) -> int:
    rows = table(strom(broker, "groups", "describe", group).stdout, group)
    return sum(int(r[4]) for r in rows.values() if r[4] != "-")


def test_groups_cli_and_consume_group(gbroker, topic_name):
    b, g = gbroker, "cli-group"
    strom(b, "topics", "create", topic_name, "--partitions", "4")
    strom(b, "produce", "--topic", topic_name, stdin="".join(f"a{i}\n" for i in range(20)))

    out = strom(b, "consume", "--topic", topic_name, "--group", g, "--from-beginning",
                "--max-messages", "20").stdout
    assert sorted(out.split()) == sorted(f"a{i}" for i in range(20))
    assert g in strom(b, "groups", "list").stdout.split()
    listed = strom(b, "groups", "list", "--state").stdout
    assert any(line.split() == [g, "Empty"] for line in listed.splitlines()), listed

    desc = strom(b, "groups", "describe", g).stdout
    assert "state Empty" in desc and "LOG-END-OFFSET" in desc and "LAG" in desc, desc
    rows = table(desc, g)
    assert sorted(rows) == [0, 1, 2, 3] or sum(int(r[2]) for r in rows.values()) == 20, desc
    assert committed_total(b, g) == 20 and lag_total(b, g) == 0, desc

    # New records show up as lag; the group consumer resumes after its commit.
    strom(b, "produce", "--topic", topic_name, stdin="".join(f"b{i}\n" for i in range(5)))
    assert lag_total(b, g) == 5
    out = strom(b, "consume", "--topic", topic_name, "--group", g, "--max-messages", "5").stdout
    assert sorted(out.split()) == sorted(f"b{i}" for i in range(5)), out
    assert lag_total(b, g) == 0

    # reset-offsets: a plan only without --execute.
    plan = strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-earliest")
    assert "NEW-OFFSET" in plan.stdout and "--execute" in plan.stderr
    assert lag_total(b, g) == 0
    strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-earliest", "--execute")
    assert committed_total(b, g) == 0 and lag_total(b, g) == 25
    strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-latest", "--execute")
    assert lag_total(b, g) == 0
    strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-offset", "1", "--execute")
    rows = table(strom(b, "groups", "describe", g).stdout, g)
    # Clamped to each partition's range: 1 where the partition has records, else 0.
    assert all(int(r[2]) == min(1, int(r[3])) for r in rows.values()), rows
    strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-datetime", "2000-01-01T00:00:00Z",
          "--execute")
    assert committed_total(b, g) == 0
    future = str(int(time.time() * 1000) + 3_600_000)
    strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-datetime", future, "--execute")
    assert lag_total(b, g) == 0, "no record after the time: the log end"
    bad = strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-datetime", "soon", check=False)
    assert bad.returncode != 0

    # With an active member: describe shows it owning all 4 partitions; reset and delete refuse.
    proc = subprocess.Popen([strom_bin(), "consume", "--topic", topic_name, "--group", g,
                             "--bootstrap-server", b.bootstrap],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            desc = strom(b, "groups", "describe", g).stdout
            rows = table(desc, g)
            if "state Stable" in desc and len(rows) == 4 and all(r[5] != "-" for r in rows.values()):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"group never became Stable with an owner per partition:\n{desc}")
        busy = strom(b, "groups", "reset-offsets", g, "--topic", topic_name, "--to-earliest", "--execute",
                     check=False)
        assert busy.returncode != 0 and "empty" in busy.stderr, busy.stderr
        busy = strom(b, "groups", "delete", g, check=False)
        assert busy.returncode != 0 and "NON_EMPTY_GROUP" in busy.stderr, busy.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

    # Ctrl-C left the group: it is Empty again and can be deleted.
    assert "state Empty" in strom(b, "groups", "describe", g).stdout
    assert "Deleted group" in strom(b, "groups", "delete", g).stdout
    assert g not in strom(b, "groups", "list").stdout.split()
    assert strom(b, "groups", "describe", g, check=False).returncode != 0
