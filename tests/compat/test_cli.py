"""Round trip through the `strom` console tools (topics, produce, consume) against `strom serve`."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import strom_bin

TIMEOUT_S = 60


def help_text(*args: str) -> str:
    proc = subprocess.run([strom_bin(), *args, "--help"], capture_output=True, text=True, timeout=TIMEOUT_S)
    return proc.stdout if proc.returncode == 0 else ""


def missing_commands() -> list[str]:
    missing = [f"strom {c}" for c in ("topics", "produce", "consume") if not help_text(c)]
    if "strom topics" not in missing:
        missing += [f"strom topics {c}" for c in ("create", "list", "describe", "delete")
                    if not help_text("topics", c)]
    return missing


@pytest.fixture(scope="module", autouse=True)
def require_cli():
    missing = missing_commands()
    if missing:
        pytest.skip(f"missing in the strom binary: {', '.join(missing)}")


def strom(broker, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([strom_bin(), *args, "--bootstrap-server", broker.bootstrap], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if check:
        assert proc.returncode == 0, f"strom {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc


def test_topics_create_list_describe_delete(broker, topic_name):
    strom(broker, "topics", "create", topic_name, "--partitions", "3", "--config", "retention.ms=3600000")
    assert topic_name in strom(broker, "topics", "list").stdout.split()

    out = strom(broker, "topics", "describe", topic_name).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith(topic_name)]
    assert sorted(r[1] for r in rows) == ["0", "1", "2"], out
    assert "retention.ms" in out and "3600000" in out, out

    again = strom(broker, "topics", "create", topic_name, check=False)
    assert again.returncode != 0
    assert "TOPIC_ALREADY_EXISTS" in again.stderr or "already exists" in again.stderr

    strom(broker, "topics", "delete", topic_name)
    assert topic_name not in strom(broker, "topics", "list").stdout.split()
    assert strom(broker, "topics", "describe", topic_name, check=False).returncode != 0


def test_produce_then_consume(broker, topic_name):
    strom(broker, "topics", "create", topic_name, "--partitions", "1")
    lines = [f"line {i}" for i in range(100)]
    strom(broker, "produce", "--topic", topic_name, stdin="".join(f"{v}\n" for v in lines))
    out = strom(broker, "consume", "--topic", topic_name, "--from-beginning", "--max-messages", "100").stdout
    assert out.splitlines() == lines


def test_keyed_produce_then_consume_across_partitions(broker, topic_name):
    strom(broker, "topics", "create", topic_name, "--partitions", "3")
    records = [(f"key{i % 10}", f"value {i}") for i in range(300)]
    strom(broker, "produce", "--topic", topic_name, "--key-separator", ":",
          stdin="".join(f"{k}:{v}\n" for k, v in records))
    out = strom(broker, "consume", "--topic", topic_name, "--from-beginning", "--max-messages", str(len(records)),
                "--print-key", "--print-offset").stdout
    rows = [line.split("\t", 2) for line in out.splitlines()]
    got = [(k, v) for _, k, v in rows]
    assert sorted(got) == sorted(records)
    for key in {k for k, _ in records}:  # per-key order is the produce order
        assert [v for k, v in got if k == key] == [v for k, v in records if k == key]
    # `partition:offset` prefixes: offsets are dense from 0 in each partition.
    by_partition: dict[str, list[int]] = {}
    for pos, _, _ in rows:
        part, off = pos.split(":")
        by_partition.setdefault(part, []).append(int(off))
    assert len(by_partition) > 1
    for offs in by_partition.values():
        assert sorted(offs) == list(range(len(offs)))


def test_cluster_describe(broker, topic_name):
    strom(broker, "topics", "create", topic_name, "--partitions", "2")
    out = strom(broker, "cluster", "describe").stdout
    assert "Controller: 1" in out, out
    assert re.search(rf"^1\s+127\.0\.0\.1\s+{broker.port}\s+live\s*$", out, re.M), out
    assert "Under-replicated partitions: none" in out, out
