"""KIP-467 per-record produce errors, seen through confluent-kafka (librdkafka): a batch refused for
some of its records names them (`record_errors`), so only those fail with the partition's error and
the rest of the batch with librdkafka's `_INVALID_DIFFERENT_RECORD` (as librdkafka's test 0011)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 30


def create_topic(broker, name: str, config: dict[str, str]) -> None:
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = a.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=TIMEOUT_S)
    futures[name].result(timeout=TIMEOUT_S)


def produce_one_batch(broker, topic: str, messages: list[dict]) -> list[KafkaError | None]:
    """Produces `messages` (kwargs of Producer.produce) as one batch; each one's delivery error."""
    results: list[KafkaError | None] = [None] * len(messages)
    done = [False] * len(messages)

    def report(i):
        def on_delivery(err, _msg):
            results[i] = err
            done[i] = True
        return on_delivery

    # A long linger and no retries: the messages go in one request and fail once.
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 500, "retries": 0,
                  "enable.idempotence": False, "acks": "all"})
    p.list_topics(topic, timeout=TIMEOUT_S)
    for i, m in enumerate(messages):
        p.produce(topic, partition=0, on_delivery=report(i), **m)
    assert p.flush(TIMEOUT_S) == 0, "messages still in flight after flush"
    assert all(done)
    return results


def codes(results) -> dict[int, int]:
    out: dict[int, int] = {}
    for err in results:
        code = 0 if err is None else err.code()
        out[code] = out.get(code, 0) + 1
    return out


def test_keyless_records_on_a_compacted_topic_fail_alone(broker, topic_name):
    create_topic(broker, topic_name, {"cleanup.policy": "compact"})
    messages = [{"value": f"m{i}".encode(), **({} if i % 10 == 0 else {"key": b"k"})}
                for i in range(100)]
    results = produce_one_batch(broker, topic_name, messages)
    # Without record_errors every message would fail INVALID_RECORD.
    assert codes(results) == {KafkaError.INVALID_RECORD: 10,
                              KafkaError._INVALID_DIFFERENT_RECORD: 90}, codes(results)
    for i, err in enumerate(results):
        want = KafkaError.INVALID_RECORD if i % 10 == 0 else KafkaError._INVALID_DIFFERENT_RECORD
        assert err.code() == want, (i, err)


def test_records_too_old_fail_alone(broker, topic_name):
    create_topic(broker, topic_name, {"message.timestamp.before.max.ms": "60000"})
    now_ms = int(time.time() * 1000)
    old = {3, 7}
    messages = [{"value": f"m{i}".encode(),
                 "timestamp": now_ms - 3_600_000 if i in old else now_ms} for i in range(10)]
    results = produce_one_batch(broker, topic_name, messages)
    # librdkafka names the records of a multi-record answer INVALID_RECORD whatever the partition's
    # error; without record_errors all ten would fail INVALID_TIMESTAMP.
    assert codes(results) == {KafkaError.INVALID_RECORD: 2,
                              KafkaError._INVALID_DIFFERENT_RECORD: 8}, codes(results)
    assert {i for i, e in enumerate(results) if e.code() == KafkaError.INVALID_RECORD} == old
    # One bad record: librdkafka gives the partition's error (INVALID_TIMESTAMP) to the batch.
    one = [{"value": b"m", "timestamp": now_ms - 3_600_000 if i == 0 else now_ms} for i in range(3)]
    assert codes(produce_one_batch(broker, topic_name, one)) == {KafkaError.INVALID_TIMESTAMP: 3}
    # Records in range are taken.
    assert codes(produce_one_batch(broker, topic_name, [{"value": b"ok", "timestamp": now_ms}])) == {0: 1}
