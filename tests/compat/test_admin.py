"""The admin API with real clients: configs (describe, incremental alter, validation, restart,
live effect), CreatePartitions, DeleteRecords, DescribeLogDirs and DescribeTopicPartitions.

confluent-kafka (librdkafka) drives configs, partitions and record deletion; kafka-python covers
DescribeLogDirs and DescribeTopicPartitions, which librdkafka does not send.
"""

from __future__ import annotations

import time

import confluent_kafka as ck
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, OffsetSpec)

TIMEOUT_S = 30


def admin(b) -> AdminClient:
    """One AdminClient per broker run, kept on the broker (futures die with their client)."""
    cached = getattr(b, "_admin", None)
    if cached is None or cached[0] != b.bootstrap:
        b._admin = (b.bootstrap, AdminClient({"bootstrap.servers": b.bootstrap}))
    return b._admin[1]


def create(b, name: str, partitions: int = 1, config: dict | None = None) -> None:
    t = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
    admin(b).create_topics([t])[name].result(timeout=TIMEOUT_S)


def describe(b, name: str) -> dict:
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    return admin(b).describe_configs([res])[res].result(timeout=TIMEOUT_S)


def alter(b, name: str, *entries: ConfigEntry) -> None:
    res = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=list(entries))
    admin(b).incremental_alter_configs([res])[res].result(timeout=TIMEOUT_S)


def produce(b, topic: str, n: int, partition: int = 0, timestamp_ms: int | None = None) -> None:
    # One record per batch, so small segments roll.
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 0,
                  "batch.num.messages": 1})
    for i in range(n):
        kw = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
        p.produce(topic, key=b"k%d" % i, value=b"v%d-" % i + b"x" * 100, partition=partition, **kw)
        p.poll(0)
    assert p.flush(TIMEOUT_S) == 0


def watermarks(b, topic: str, partition: int = 0) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "strom-admin-unused"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
    finally:
        c.close()


def test_incremental_alter_round_trip_survives_restart(broker_factory, topic_name):
    b = broker_factory().start()
    create(b, topic_name)
    d = describe(b, topic_name)
    assert d["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    alter(b, topic_name,
          ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
          ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND))
    d = describe(b, topic_name)
    assert d["retention.ms"].value == "3600000"
    assert d["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert d["cleanup.policy"].value == "delete,compact"
    # Delete goes back to the default.
    alter(b, topic_name, ConfigEntry("cleanup.policy", None, incremental_operation=AlterConfigOpType.DELETE))
    b.stop()
    b.start()
    d = describe(b, topic_name)
    assert d["retention.ms"].value == "3600000", "persisted in the metadata log"
    assert d["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert d["cleanup.policy"].value == "delete"
    assert d["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value


@pytest.mark.parametrize("key,value", [("retention.ms", "soon"), ("segment.bytes", "1"),
                                       ("cleanup.policy", "shred"), ("no.such.config", "1")])
def test_bad_value_is_invalid_config_naming_the_key(broker, topic_name, key, value):
    create(broker, topic_name)
    with pytest.raises(ck.KafkaException) as e:
        alter(broker, topic_name, ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET))
    err = e.value.args[0]
    assert err.code() == ck.KafkaError.INVALID_CONFIG, err
    assert key in err.str(), err.str()
    assert describe(broker, topic_name)["retention.ms"].value == "604800000", "nothing changed"


def test_retention_change_takes_effect_without_restart(broker_factory, topic_name):
    b = broker_factory(["--set", "log.retention.check.interval.ms=200"]).start()
    create(b, topic_name, config={"segment.bytes": "1024"})
    old = int(time.time() * 1000) - 3_600_000  # an hour ago: inside the default 7 days
    produce(b, topic_name, 60, timestamp_ms=old)
    produce(b, topic_name, 1)  # a fresh record keeps the active segment
    time.sleep(1)
    assert watermarks(b, topic_name)[0] == 0, "default retention keeps everything"
    alter(b, topic_name, ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET))
    deadline = time.monotonic() + TIMEOUT_S
    while watermarks(b, topic_name)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    low, high = watermarks(b, topic_name)
    assert 0 < low <= high == 61, (low, high)


def test_broker_config_alter_and_describe(broker, topic_name):
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("log.retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(timeout=TIMEOUT_S)
    d = a.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")])
    entries = list(d.values())[0].result(timeout=TIMEOUT_S)
    assert entries["log.retention.ms"].value == "7200000"
    assert entries["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    create(broker, topic_name)
    t = describe(broker, topic_name)["retention.ms"]
    assert t.value == "7200000" and t.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    bad = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("log.dirs", "/tmp/x", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(ck.KafkaException):
        a.incremental_alter_configs([bad])[bad].result(timeout=TIMEOUT_S)


def test_create_partitions_increase_only(broker, topic_name):
    create(broker, topic_name, partitions=2)
    a = admin(broker)
    a.create_partitions([NewPartitions(topic_name, 5)])[topic_name].result(timeout=TIMEOUT_S)
    md = a.list_topics(topic_name, timeout=TIMEOUT_S)
    assert len(md.topics[topic_name].partitions) == 5
    produce(broker, topic_name, 3, partition=4)
    assert watermarks(broker, topic_name, 4) == (0, 3)
    with pytest.raises(ck.KafkaException) as e:
        a.create_partitions([NewPartitions(topic_name, 3)])[topic_name].result(timeout=TIMEOUT_S)
    assert e.value.args[0].code() == ck.KafkaError.INVALID_PARTITIONS


def test_delete_records_moves_the_low_watermark_durably(broker_factory, topic_name):
    b = broker_factory().start()
    create(b, topic_name)
    produce(b, topic_name, 20)
    a = admin(b)
    tp = TopicPartition(topic_name, 0, 7)
    res = a.delete_records([tp])
    deleted = list(res.values())[0].result(timeout=TIMEOUT_S)
    assert deleted.low_watermark == 7
    assert watermarks(b, topic_name) == (7, 20)
    lo = a.list_offsets({TopicPartition(topic_name, 0): OffsetSpec.earliest()})
    assert list(lo.values())[0].result(timeout=TIMEOUT_S).offset == 7
    # Beyond the high watermark: OFFSET_OUT_OF_RANGE.
    with pytest.raises(ck.KafkaException) as e:
        list(a.delete_records([TopicPartition(topic_name, 0, 99)]).values())[0].result(timeout=TIMEOUT_S)
    assert e.value.args[0].code() == ck.KafkaError.OFFSET_OUT_OF_RANGE
    b.kill()  # no clean shutdown: the checkpoint written before the answer must hold
    b.start()
    assert watermarks(b, topic_name) == (7, 20)


FRESH_DELETE_RECORDS = """
import sys, time
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
boot, topic, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.monotonic()
admin = AdminClient({"bootstrap.servers": boot})  # kept: futures die with their client
futures = admin.delete_records(
    [TopicPartition(topic, 0, offset)], request_timeout=10, operation_timeout=10)
(f,) = futures.values()
print(f.result(timeout=15).low_watermark, round(time.monotonic() - t0, 2))
"""


def test_delete_records_as_the_first_call_of_a_fresh_process(broker, topic_name):
    """`kafka-delete-records` from a new process: the client's first request after ApiVersions
    and Metadata is DeleteRecords (no metadata cached by an earlier CreateTopics), sent at once.

    The AdminClient must outlive the future: with `AdminClient(...).delete_records(...)` Python
    drops the handle while librdkafka still looks up the partition leaders, and the future waits
    for its timeout with no DeleteRecords sent, whatever the broker answers (issue 19's report)."""
    import subprocess
    import sys
    create(broker, topic_name)
    produce(broker, topic_name, 10)
    offset = 3
    run = subprocess.run([sys.executable, "-c", FRESH_DELETE_RECORDS, broker.bootstrap, topic_name,
                          str(offset)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-4000:]
    low, secs = run.stdout.split()
    assert int(low) == offset
    assert float(secs) < 5, f"DeleteRecords answered after {secs}s"
    assert watermarks(broker, topic_name) == (offset, 10)


def test_describe_log_dirs_and_topic_partitions_with_kafka_python(broker, topic_name):
    from kafka import KafkaAdminClient
    create(broker, topic_name, partitions=3)
    produce(broker, topic_name, 10, partition=1)
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        dirs = ka.describe_log_dirs()
        text = repr(dirs)
        assert topic_name in text, text
        sizes = {}
        for per_broker in (dirs if isinstance(dirs, list) else [dirs]):
            for d in per_broker.get("log_dirs", per_broker.get("results", [])) if isinstance(per_broker, dict) else []:
                for t in d.get("topics", []):
                    if t.get("name") == topic_name:
                        for p in t.get("partitions", []):
                            sizes[p.get("partition_index")] = p.get("partition_size")
        if sizes:
            assert sizes.get(1, 0) > 0 and sizes.get(0) == 0, sizes
        tp = ka.describe_topic_partitions([topic_name])
        text = repr(tp)
        assert topic_name in text, text
        topics = tp.get("topics", tp) if isinstance(tp, dict) else tp
        t = [x for x in topics if x.get("name") == topic_name][0]
        assert sorted(p["partition_index"] for p in t["partitions"]) == [0, 1, 2]
        assert all(p["leader_id"] == 1 for p in t["partitions"])
        # Pagination: one partition per page.
        page = ka.describe_topic_partitions([topic_name], response_partition_limit=1)
        assert "next_cursor" in repr(page) or "cursor" in repr(page)
    finally:
        ka.close()
