"""Share groups (KIP-932) with confluent-kafka's ShareConsumer (librdkafka 2.16's share
consumer) over real sockets: more consumers than partitions share the records with none
delivered twice (also with `strom consume --share-group` as a member beside it), and two share
groups each get every record; acknowledgements, delivery counts
and the start offset survive kill -9 of the broker (`__share_group_state`). The broker runs with
`group.share.enable=true`.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic, ResourceType)

TIMEOUT = 30


def start(broker_factory):
    return broker_factory(["--set", "group.share.enable=true"]).start()


def setup(b, topic: str, groups: list[str], records: int) -> None:
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(topic, 2, 1)], operation_timeout=TIMEOUT).values():
        f.result(TIMEOUT)
    # Kafka's group config: read the partitions from the start (the default is latest).
    resources = [ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest",
                    incremental_operation=AlterConfigOpType.SET)]) for g in groups]
    for f in a.incremental_alter_configs(resources).values():
        f.result(TIMEOUT)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(records):
        p.produce(topic, key=str(i).encode(), value=f"r{i}".encode())
    assert p.flush(TIMEOUT) == 0


def consume(b, topic: str, group: str, out: list, stop: threading.Event) -> None:
    """A share consumer appending each record's value to `out` (implicitly acknowledged by its
    next poll) until `stop`."""
    c = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": group})
    c.subscribe([topic])
    try:
        while not stop.is_set():
            for m in list(c.poll(0.5)):
                if m.error() is None:
                    out.append(m.value())
    finally:
        c.close()


def run(b, topic: str, consumers: list[tuple[str, list]], want: int,
        elsewhere: list | None = None) -> None:
    """Runs `consumers` until they got `want` records between them and what another member
    appends to `elsewhere`, then a moment longer."""
    stop = threading.Event()
    threads = [threading.Thread(target=consume, args=(b, topic, g, out, stop))
               for g, out in consumers]
    for t in threads:
        t.start()
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and \
            sum(len(o) for _, o in consumers) + len(elsewhere or []) < want:
        time.sleep(0.2)
    time.sleep(1)  # anything delivered twice would show up now
    stop.set()
    for t in threads:
        t.join(TIMEOUT)


def test_more_consumers_than_partitions_share_the_records_once(broker_factory, topic_name):
    b = start(broker_factory)
    setup(b, topic_name, ["workers"], 300)
    outs = [("workers", []) for _ in range(3)]
    run(b, topic_name, outs, 300)
    got = [v for _, out in outs for v in out]
    assert sorted(got) == sorted(f"r{i}".encode() for i in range(300)), \
        f"{len(got)} delivered, {len(set(got))} distinct"


def test_two_share_groups_each_get_every_record(broker_factory, topic_name):
    """...and a classic consumer group reading the same topic meanwhile is unaffected: it gets
    every record once and commits its offsets as usual."""
    from confluent_kafka import Consumer, TopicPartition
    b = start(broker_factory)
    setup(b, topic_name, ["g1", "g2"], 100)
    classic: list = []
    stop = threading.Event()

    def classic_member():
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "classic",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic_name])
        while not stop.is_set():
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                classic.append(m.value())
                c.commit(m, asynchronous=False)
        c.close()

    t = threading.Thread(target=classic_member)
    t.start()
    outs = [("g1", []), ("g2", [])]
    try:
        run(b, topic_name, outs, 300, elsewhere=classic)
    finally:
        stop.set()
        t.join(TIMEOUT)
    everything = sorted(f"r{i}".encode() for i in range(100))
    for _, out in outs:
        assert sorted(out) == everything
    assert sorted(classic) == everything
    check = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "classic"})
    committed = check.committed([TopicPartition(topic_name, p) for p in (0, 1)], timeout=TIMEOUT)
    check.close()
    assert sum(tp.offset for tp in committed) == 100, committed


def explicit(b, group: str, topic: str) -> ShareConsumer:
    c = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit"})
    c.subscribe([topic])
    return c


def poll_until(c: ShareConsumer, pred, timeout: float = TIMEOUT) -> list:
    """Polls until a batch holds a record for which `pred` holds; that batch (records only)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        batch = [m for m in c.poll(0.5) if m.error() is None]
        if any(pred(m) for m in batch):
            return batch
        for m in batch:  # explicit mode: everything polled must be acknowledged first
            c.acknowledge(m)
    raise AssertionError("no matching record in time")


def test_release_redelivers_with_a_higher_count_and_reject_never_again(broker_factory,
                                                                       topic_name):
    from confluent_kafka import AcknowledgeType
    b = start(broker_factory)
    setup(b, topic_name, ["acks"], 2)
    c = explicit(b, "acks", topic_name)
    try:
        batch = poll_until(c, lambda m: True)
        first = {m.value(): m.delivery_count() for m in batch}
        for m in batch:
            # r0 goes back to the group, r1 is poison.
            c.acknowledge(m, AcknowledgeType.RELEASE if m.value() == b"r0"
                          else AcknowledgeType.REJECT)
        again = poll_until(c, lambda m: m.value() == b"r0")
        r0 = [m for m in again if m.value() == b"r0"]
        assert r0[0].delivery_count() == first[b"r0"] + 1 == 2
        for m in again:
            c.acknowledge(m, AcknowledgeType.ACCEPT)
        # r1 was rejected and r0 accepted: nothing more ever comes.
        deadline = time.time() + 3
        while time.time() < deadline:
            late = [m.value() for m in c.poll(0.5) if m.error() is None]
            assert late == [], late
    finally:
        c.close()


def test_the_delivery_count_limit_archives_a_record(broker_factory, topic_name):
    from confluent_kafka import AcknowledgeType
    b = start(broker_factory)
    setup(b, topic_name, ["poison"], 1)
    c = explicit(b, "poison", topic_name)
    counts = []
    try:
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and len(counts) < 6:
            batch = [m for m in c.poll(0.5) if m.error() is None]
            for m in batch:
                counts.append(m.delivery_count())
                c.acknowledge(m, AcknowledgeType.RELEASE)
            if len(counts) == 5:
                # group.share.delivery.count.limit = 5: archived after the fifth delivery.
                time.sleep(2)
                assert [m for m in c.poll(1.0) if m.error() is None] == []
                break
    finally:
        c.close()
    assert counts == [1, 2, 3, 4, 5], counts


HOLDER = """
import sys, time
from confluent_kafka import ShareConsumer
c = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([sys.argv[3]])
while True:
    batch = [m for m in c.poll(0.5) if m.error() is None]
    if batch:
        print(len(batch), flush=True)
        time.sleep(600)
"""


def test_records_held_by_a_killed_consumer_return_after_the_lock(broker_factory, topic_name):
    import subprocess
    import sys
    b = start(broker_factory)
    setup(b, topic_name, ["locks"], 10)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    lock = ConfigResource(ResourceType.GROUP, "locks", incremental_configs=[
        ConfigEntry("share.record.lock.duration.ms", "15000",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([lock]).values():
        f.result(TIMEOUT)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, b.bootstrap, "locks", topic_name],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        held = int(holder.stdout.readline())
        assert held > 0
        holder.kill()  # kill -9: nothing acknowledged, nothing released
        holder.wait()
        killed_at = time.time()
        out: list = []
        stop = threading.Event()
        t = threading.Thread(target=consume, args=(b, topic_name, "locks", out, stop))
        t.start()
        # The killed member keeps its partition until its session expires (45 s, the least
        # share.session.timeout.ms allows), as in Kafka; then its 15 s locks have run out too.
        deadline = time.time() + 80
        while time.time() < deadline and len(out) < 10:
            time.sleep(0.2)
        stop.set()
        t.join(TIMEOUT)
        assert sorted(out) == sorted(f"r{i}".encode() for i in range(10)), out
        # The held records came back only once their 15 s lock ran out.
        assert time.time() - killed_at >= 10
    finally:
        holder.kill()


def test_strom_share_groups_lists_describes_and_deletes(broker_factory, topic_name):
    import subprocess
    from conftest import strom_bin
    b = start(broker_factory)
    setup(b, topic_name, ["admin-view"], 10)

    def strom(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([strom_bin(), "share-groups", *args, "--bootstrap-server",
                               b.bootstrap], capture_output=True, text=True, timeout=60)

    out: list = []
    stop = threading.Event()
    t = threading.Thread(target=consume, args=(b, topic_name, "admin-view", out, stop))
    t.start()
    try:
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and len(out) < 10:
            time.sleep(0.2)
        listed = strom("list")
        assert listed.returncode == 0, listed.stderr
        assert "admin-view" in listed.stdout and "Stable" in listed.stdout, listed.stdout
        described = strom("describe", "admin-view")
        assert described.returncode == 0, described.stderr
        assert "MEMBERS 1" in described.stdout, described.stdout
        assert f"{topic_name}:0" in described.stdout and f"{topic_name}:1" in described.stdout
        refused = strom("delete", "admin-view")
        assert refused.returncode != 0 and "NON_EMPTY_GROUP" in refused.stderr, refused
    finally:
        stop.set()
        t.join(TIMEOUT)
    # The consumer left on close: the group is empty and can go.
    deleted = strom("delete", "admin-view")
    assert deleted.returncode == 0, deleted.stderr
    assert "admin-view" not in strom("list").stdout


WORKER = """
import json, sys
from confluent_kafka import AcknowledgeType, ShareConsumer
c = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([sys.argv[3]])
batch = []
while not batch:
    batch = [m for m in c.poll(0.5) if m.error() is None]
half = len(batch) // 2 or 1
for m in batch[:half]:
    c.acknowledge(m, AcknowledgeType.ACCEPT)
for m in batch[half:]:
    c.acknowledge(m, AcknowledgeType.RELEASE)
errors = [str(e) for e in c.commit_sync(30).values() if e is not None]
print(json.dumps({"accepted": [m.value().decode() for m in batch[:half]],
                  "released": [m.value().decode() for m in batch[half:]],
                  "errors": errors}), flush=True)
held = []
for _ in range(10):
    held += [m.value().decode() for m in c.poll(0.5) if m.error() is None]
    if held:
        break
print(json.dumps({"held": held}), flush=True)
import time
time.sleep(600)
"""


def test_share_state_survives_kill_9_of_the_broker(broker_factory, topic_name):
    """Accepted records are never delivered again after kill -9 and restart; released ones come
    back with their durable delivery count; acquired-but-unacknowledged ones are available."""
    import json
    import subprocess
    import sys
    b = start(broker_factory)
    total = 200
    setup(b, topic_name, ["durable"], total)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, b.bootstrap, "durable", topic_name],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        acked = json.loads(worker.stdout.readline())
        assert acked["errors"] == [], acked
        held = json.loads(worker.stdout.readline())["held"]
    finally:
        worker.kill()
        worker.wait()
    accepted, released = set(acked["accepted"]), set(acked["released"])
    assert accepted
    b.kill()  # kill -9: only what is in __share_group_state survives
    b.start()

    got: dict[str, int] = {}
    c = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": "durable"})
    c.subscribe([topic_name])
    try:
        want = total - len(accepted)
        deadline = time.time() + 60
        while time.time() < deadline and len(got) < want:
            for m in c.poll(0.5):
                if m.error() is None:
                    got[m.value().decode()] = max(got.get(m.value().decode(), 0),
                                                  m.delivery_count())
        end = time.time() + 2  # anything accepted before the kill would show up now
        while time.time() < end:
            for m in c.poll(0.5):
                if m.error() is None:
                    got[m.value().decode()] = m.delivery_count()
    finally:
        c.close()
    everything = {f"r{i}" for i in range(total)}
    assert not accepted & got.keys(), f"accepted before the kill, delivered again: {accepted & got.keys()}"
    assert got.keys() == everything - accepted, \
        f"missing {sorted(everything - accepted - got.keys())[:10]}"
    # A RELEASE is durable with its delivery: the next delivery is the second.
    assert all(got[v] == 2 for v in released), {v: got[v] for v in released}
    # Records held (acquired, never acknowledged) when the broker died came back.
    assert set(held) <= got.keys()


def test_strom_share_groups_reset_and_delete_offsets(broker_factory, topic_name):
    """DescribeShareGroupOffsets, AlterShareGroupOffsets and DeleteShareGroupOffsets through
    `strom share-groups`: after everything was consumed the lag is 0; a reset to the earliest
    offsets and a deletion of the offsets each make every record deliverable again; neither is
    allowed while the group has members."""
    import subprocess
    from conftest import strom_bin
    b = start(broker_factory)
    setup(b, topic_name, ["resettable"], 20)

    def strom(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([strom_bin(), "share-groups", *args, "--bootstrap-server",
                               b.bootstrap], capture_output=True, text=True, timeout=60)

    def consume_all() -> list:
        out: list = []
        stop = threading.Event()
        t = threading.Thread(target=consume, args=(b, topic_name, "resettable", out, stop))
        t.start()
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and len(out) < 20:
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
        t.join(TIMEOUT)
        return sorted(out)

    everything = sorted(f"r{i}".encode() for i in range(20))
    assert consume_all() == everything
    described = strom("describe", "resettable")
    assert described.returncode == 0, described.stderr
    rows = [line.split() for line in described.stdout.splitlines()
            if line.startswith("resettable ") and topic_name in line]
    assert len(rows) == 2, described.stdout
    assert all(r[-1] == "0" for r in rows), f"lag after consuming everything: {described.stdout}"
    assert sum(int(r[3]) for r in rows) == 20, described.stdout

    dry = strom("reset-offsets", "resettable", "--topic", topic_name, "--to-earliest")
    assert dry.returncode == 0 and "Dry run" in dry.stderr, dry
    assert consume_all() == [], "a dry run changed nothing"

    reset = strom("reset-offsets", "resettable", "--topic", topic_name, "--to-earliest",
                  "--execute")
    assert reset.returncode == 0, reset.stderr
    assert consume_all() == everything, "after --to-earliest every record comes again"

    deleted = strom("delete-offsets", "resettable", "--topic", topic_name)
    assert deleted.returncode == 0, deleted.stderr
    assert consume_all() == everything, "without state the group starts at its reset (earliest)"

    # A member present: both refused.
    out: list = []
    stop = threading.Event()
    t = threading.Thread(target=consume, args=(b, topic_name, "resettable", out, stop))
    t.start()
    try:
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and "MEMBERS 1" not in strom("describe", "resettable").stdout:
            time.sleep(0.2)
        busy = strom("reset-offsets", "resettable", "--topic", topic_name, "--to-earliest",
                     "--execute")
        assert busy.returncode != 0 and "active members" in busy.stderr, busy
    finally:
        stop.set()
        t.join(TIMEOUT)


def test_share_state_survives_a_partition_leader_failover(broker_factory, topic_name):
    """Three nodes, RF=3: kill -9 the partition leader after a member accepted some records and
    released others; on the new leader (which reads the state from the share coordinator,
    maybe on another node, maybe moved too) accepted records never come again and released ones
    come with their durable delivery count."""
    import json
    import subprocess
    import sys
    from test_cluster import FAST, free_port
    controllers = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controllers))
    nodes = [broker_factory(["--node-id", str(i + 1), "--controller-listen", f"127.0.0.1:{p}",
                             "--voters", voters, *FAST]) for i, p in enumerate(controllers)]
    for n in nodes:
        n.launch()
    for n in nodes:
        n.wait_ready()
    everyone = ",".join(n.bootstrap for n in nodes)
    a = AdminClient({"bootstrap.servers": everyone})
    for f in a.create_topics([NewTopic(topic_name, 1, 3, config={"min.insync.replicas": "2"})],
                             operation_timeout=TIMEOUT).values():
        f.result(TIMEOUT)
    reset = ConfigResource(ResourceType.GROUP, "failover", incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([reset]).values():
        f.result(TIMEOUT)
    total = 100
    p = Producer({"bootstrap.servers": everyone, "acks": "all"})
    for i in range(total):
        p.produce(topic_name, value=f"r{i}".encode())
    assert p.flush(TIMEOUT) == 0

    worker = subprocess.Popen([sys.executable, "-c", WORKER, everyone, "failover", topic_name],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        acked = json.loads(worker.stdout.readline())
        assert acked["errors"] == [], acked
    finally:
        worker.kill()
        worker.wait()
    accepted, released = set(acked["accepted"]), set(acked["released"])
    leader = a.list_topics(topic_name, timeout=TIMEOUT).topics[topic_name].partitions[0].leader
    nodes[leader - 1].kill()
    survivors = ",".join(n.bootstrap for i, n in enumerate(nodes) if i != leader - 1)

    got: dict[str, int] = {}
    c = ShareConsumer({"bootstrap.servers": survivors, "group.id": "failover"})
    c.subscribe([topic_name])
    try:
        want = total - len(accepted)
        deadline = time.time() + 90
        while time.time() < deadline and len(got) < want:
            for m in c.poll(0.5):
                if m.error() is None:
                    got.setdefault(m.value().decode(), m.delivery_count())
        end = time.time() + 2
        while time.time() < end:
            for m in c.poll(0.5):
                if m.error() is None:
                    got.setdefault(m.value().decode(), m.delivery_count())
    finally:
        c.close()
    everything = {f"r{i}" for i in range(total)}
    assert not accepted & got.keys(), f"accepted, delivered again: {sorted(accepted & got.keys())}"
    assert got.keys() == everything - accepted, \
        f"missing {sorted(everything - accepted - got.keys())[:10]}"
    assert all(got[v] == 2 for v in released), {v: got[v] for v in released}


def test_read_committed_share_group_skips_aborted_transactions(broker_factory, topic_name):
    """`share.isolation.level=read_committed` as a group config: records of an aborted
    transaction are archived, never delivered; a read_uncommitted group gets them."""
    b = start(broker_factory)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(topic_name, 1, 1)], operation_timeout=TIMEOUT).values():
        f.result(TIMEOUT)
    configs = {"committed": "read_committed", "everything": "read_uncommitted"}
    resources = [ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest",
                    incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("share.isolation.level", level,
                    incremental_operation=AlterConfigOpType.SET)])
        for g, level in configs.items()]
    for f in a.incremental_alter_configs(resources).values():
        f.result(TIMEOUT)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "share-txn"})
    p.init_transactions(TIMEOUT)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic_name, value=f"aborted{i}".encode())
    p.flush(TIMEOUT)
    p.abort_transaction(TIMEOUT)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic_name, value=f"committed{i}".encode())
    p.commit_transaction(TIMEOUT)

    outs = {g: [] for g in configs}
    run(b, topic_name, [(g, outs[g]) for g in configs], 15)
    committed = sorted(f"committed{i}".encode() for i in range(5))
    assert sorted(outs["committed"]) == committed, outs["committed"]
    assert sorted(outs["everything"]) == sorted(
        committed + [f"aborted{i}".encode() for i in range(5)]), outs["everything"]


def test_strom_consume_and_share_consumer_in_one_group_share_the_records_once(broker_factory,
                                                                           topic_name):
    """`strom consume --share-group` (crates/client's ShareConsumer) and librdkafka's share
    consumer as members of one group: together every record exactly once; the CLI leaves
    cleanly on Ctrl-C."""
    import signal
    import subprocess
    from conftest import strom_bin
    b = start(broker_factory)
    setup(b, topic_name, ["mixed"], 60)
    cli = subprocess.Popen([strom_bin(), "consume", "--share-group", "mixed", "--topic",
                            topic_name, "--bootstrap-server", b.bootstrap],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    by_cli: list = []
    reader = threading.Thread(target=lambda: by_cli.extend(line.strip() for line in cli.stdout))
    reader.start()
    out: list = []
    try:
        run(b, topic_name, [("mixed", out)], 60, elsewhere=by_cli)
    finally:
        cli.send_signal(signal.SIGINT)
        try:
            cli.wait(TIMEOUT)
        finally:
            if cli.poll() is None:
                cli.kill()
        reader.join(TIMEOUT)
    assert cli.returncode == 0, cli.stderr.read()
    got = sorted(by_cli + [v.decode() for v in out])
    assert got == sorted(f"r{i}" for i in range(60)), \
        f"{len(got)} delivered, {len(set(got))} distinct; strom printed {len(by_cli)}"
