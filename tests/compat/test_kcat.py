"""kcat (librdkafka) against a real `strom serve`: metadata, keyed produce/consume, every codec."""

from __future__ import annotations

import subprocess

import pytest

TIMEOUT_S = 60


def kcat(broker, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["kcat", "-b", broker.bootstrap, *args],
        input=stdin.encode() if stdin is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}"
    return proc.stdout.decode()


def test_metadata_lists_broker_and_auto_created_topic(broker, topic_name):
    # Producing to an unknown topic auto-creates it (auto.create.topics.enable defaults to true).
    kcat(broker, "-P", "-t", topic_name, stdin="hello\n")
    out = kcat(broker, "-L")
    assert "1 brokers:" in out, out
    assert f"at {broker.host}:{broker.port}" in out, out
    assert f'topic "{topic_name}" with 1 partitions:' in out, out
    assert "partition 0, leader" in out, out

    out = kcat(broker, "-L", "-t", topic_name, "-J")
    assert f'"topic":"{topic_name}"' in out.replace(" ", ""), out


# librdkafka enables LZ4 only when the broker advertises FindCoordinator v0 (rdkafka_feature.c);
# without it `-z lz4` silently sends uncompressed batches. The on-disk size check below catches that.
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_keyed_produce_consume_round_trip(broker, topic_name, codec):
    records = [(f"key-{i % 7}", f"value {i} {'x' * (i % 50)} {'y' * 200}") for i in range(200)]
    lines = "".join(f"{k}:{v}\n" for k, v in records)
    kcat(broker, "-P", "-t", topic_name, "-K:", "-z", codec, "-X", "acks=all", stdin=lines)

    out = kcat(broker, "-C", "-t", topic_name, "-e", "-o", "beginning", "-f", "%k:%s\n", "-q")
    got = [tuple(line.split(":", 1)) for line in out.splitlines()]
    assert got == records

    # Compressed batches are stored as sent, so the log on disk is much smaller than the values.
    on_disk = sum(f.stat().st_size for f in broker.data_dir.glob(f"{topic_name}-*/*.log"))
    raw = sum(len(k) + len(v) for k, v in records)
    if codec == "none":
        assert on_disk >= raw, f"log files hold {on_disk} bytes for {raw} bytes of keys and values"
    else:
        assert 0 < on_disk < raw / 4, f"{codec}: log files hold {on_disk} bytes for {raw} bytes (not compressed?)"


def test_consume_reports_offsets(broker, topic_name):
    kcat(broker, "-P", "-t", topic_name, stdin="a\nb\nc\n")
    out = kcat(broker, "-C", "-t", topic_name, "-e", "-o", "beginning", "-f", "%p %o %s\n", "-q")
    assert out.splitlines() == ["0 0 a", "0 1 b", "0 2 c"]
    # Start from an offset in the middle (usually mid-batch: kcat sends the three lines as one batch).
    out = kcat(broker, "-C", "-t", topic_name, "-e", "-o", "1", "-f", "%o %s\n", "-q")
    assert out.splitlines() == ["1 b", "2 c"]
