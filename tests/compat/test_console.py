"""The web console in a real browser: headless Chromium driven by selenium against `strom console`.

A broker and `strom console` run on ephemeral ports; confluent-kafka creates a topic, produces
records and commits a consumer group's offsets partway. The browser then finds the topic by name,
browses its Messages, produces a record through the form and reads it back, finds the group by
name and checks its lag. Every test fails on a browser console error (CSP violations included)
and on any request to another origin; screenshots are saved under tests/compat/artifacts/.
The sparkline test puts a reverse proxy in front of the console that also answers `/metrics`,
as a deployment serving both at one origin would. The login test (no browser) checks that with `--login` each HTTP basic user sees and may do what
the broker's ACLs allow that user.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, ShareConsumer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                  ResourcePatternType, ResourceType)

from conftest import strom_bin
from security import make_pki
from test_authorization import USERS, authorizer_args

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CONSOLE_RE = re.compile(r"^strom: console on (http://\S+/)\s*$")
# Generous: CI runs this on two cores shared with the broker and the console.
WAIT_S = 30
TIMEOUT_S = 30

needs_browser = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                   reason="needs Debian's chromium and chromium-driver (scripts/test installs them)")


class ConsoleProcess:
    """One `strom console` child process serving the console for `bootstrap`."""

    def __init__(self, bootstrap: str, log_dir: Path, extra_args: list[str] | None = None):
        self.err_path = log_dir / "console.stderr"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [strom_bin(), "console", "--bootstrap-server", bootstrap, "--http-listen", "127.0.0.1:0",
                 *(extra_args or [])],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(TIMEOUT_S)
        line = out[0].decode(errors="replace") if out else ""
        m = CONSOLE_RE.match(line)
        if not m:
            self.stop()
            pytest.fail(f"strom console printed {line!r}, not its URL\n{self.err_path.read_text()}")
        self.url = m.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                pytest.fail("strom console did not exit on SIGTERM")
            assert code == 0, f"strom console exited {code} on SIGTERM"
        text = self.err_path.read_text(errors="replace")
        assert "panicked" not in text, text


@pytest.fixture
def console(broker, tmp_path):
    c = ConsoleProcess(broker.bootstrap, tmp_path)
    yield c
    c.stop()


@pytest.fixture
def browser(request):
    """Headless Chromium with the browser console and the network (performance) logs recorded."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.artifacts = ARTIFACTS / re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)
    driver.artifacts.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def snap(driver, name: str) -> None:
    driver.save_screenshot(str(driver.artifacts / f"{name}.png"))


def requested_urls(driver) -> list[str]:
    """Every URL the page requested since the last call (CDP Network.requestWillBeSent events)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def check_clean(driver, origin: str, seen_urls: list[str]) -> None:
    """No console errors and no request leaving the console's origin."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"browser console errors: {errors}"
    seen_urls.extend(requested_urls(driver))
    foreign = [u for u in seen_urls if not u.startswith(origin)]
    assert foreign == [], f"requests to another origin: {foreign}"


def wait_text(driver, css: str, predicate, what: str) -> str:
    """Waits until some element matching `css` has text satisfying `predicate`; returns it."""
    def find(d):
        try:
            for el in d.find_elements(By.CSS_SELECTOR, css):
                if predicate(el.text):
                    return el.text
        except StaleElementReferenceException:
            pass  # the live update redrew it: look again
        return False
    try:
        return WebDriverWait(driver, WAIT_S).until(find)
    except Exception:
        snap(driver, "timeout")
        texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
        pytest.fail(f"{what}: no {css} matched within {WAIT_S}s; saw {texts}")


def click(driver, css: str) -> None:
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.CSS_SELECTOR, css)).click()


@needs_browser
def test_console_shows_topic_messages_and_group_lag(broker, console, browser, topic_name):
    origin = console.url.rstrip("/")
    group = f"g-{topic_name}"
    marker = f"hello-from-{topic_name}"

    # The response carries a strict CSP.
    with urllib.request.urlopen(console.url, timeout=TIMEOUT_S) as res:
        csp = res.headers["Content-Security-Policy"]
    assert csp and "default-src 'self'" in csp, csp

    # Setup through a real client: 2 partitions, 10 + 5 records, offsets committed at 4 and 1.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1)]).values():
        f.result(TIMEOUT_S)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(10):
        p.produce(topic_name, key=f"k{i}", value=json.dumps({"n": i}) if i else marker, partition=0)
    for i in range(5):
        p.produce(topic_name, key=f"k{i}", value=f"p1-{i}", partition=1)
    assert p.flush(TIMEOUT_S) == 0
    del p  # closed now, not after the broker stopped
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic_name, 0, 4), TopicPartition(topic_name, 1, 1)], asynchronous=False)
    c.close()

    seen: list[str] = []
    browser.get(console.url)
    wait_text(browser, "[data-card=under-replicated] .card-value", lambda t: t == "0", "overview")
    snap(browser, "1-overview")
    check_clean(browser, origin, seen)

    # Topics: find ours by name, open it.
    click(browser, "#nav a[href='#/topics']")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "topic-filter")).send_keys(topic_name)
    wait_text(browser, f"[data-topic-row='{topic_name}'] td", lambda t: t == "15", "topic's message count")
    # Its size on disk (DescribeLogDirs): 15 small records are some hundreds of bytes.
    wait_text(browser, f"[data-topic-row='{topic_name}'] td.size", lambda t: t.endswith(" B") and t != "0 B",
              "topic's size")
    snap(browser, "2-topics")
    click(browser, f"a[data-topic='{topic_name}']")
    wait_text(browser, "[data-pane=Partitions] td", lambda t: t == "10", "partition 0's log end")
    snap(browser, "3-topic")

    # Configs: set an override, see it with its source, remove it again.
    click(browser, "[data-tab=Configs]")
    browser.find_element(By.ID, "config-name").send_keys("retention.ms")
    browser.find_element(By.ID, "config-value").send_keys("123456")
    click(browser, "#config-set")
    wait_text(browser, "[data-config='retention.ms'] .config-value", lambda t: t == "123456", "the override")
    assert browser.find_element(By.CSS_SELECTOR, "[data-config='retention.ms'] .config-source").text == "DynamicTopic"
    click(browser, "#config-delete")
    wait_text(browser, "[data-config='retention.ms'] .config-source", lambda t: t == "Default", "the default again")

    # Messages: all partitions from the earliest offset.
    click(browser, "[data-tab=Messages]")
    wait_text(browser, ".message-value", lambda t: t == marker, "the produced value")
    wait_text(browser, ".message-value", lambda t: '"n": 3' in t, "a JSON value, pretty-printed")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.message")) == 15
    snap(browser, "4-messages")
    check_clean(browser, origin, seen)

    # Produce a record through the form, then find it in the Messages view.
    click(browser, "[data-tab=Produce]")
    browser.find_element(By.ID, "produce-partition").send_keys("1")
    browser.find_element(By.ID, "produce-key").send_keys("from-browser")
    browser.find_element(By.ID, "produce-value").send_keys("typed in the console")
    browser.find_element(By.ID, "produce-headers").send_keys("source=selenium")
    click(browser, "#produce-send")
    wait_text(browser, "#produce-result", lambda t: "partition 1 at offset 5" in t, "the produce result")
    click(browser, "[data-tab=Messages]")
    click(browser, "#msg-browse")
    wait_text(browser, ".message-value", lambda t: t == "typed in the console", "the record produced in the form")
    wait_text(browser, ".message-key", lambda t: t == "from-browser", "its key")
    wait_text(browser, ".message-headers", lambda t: t == "source: selenium", "its header")
    snap(browser, "5-produced")

    # One partition from an offset, shown as hex; then from a timestamp after every record.
    Select(browser.find_element(By.ID, "msg-partition")).select_by_value("0")
    Select(browser.find_element(By.ID, "msg-from")).select_by_value("offset")
    browser.find_element(By.ID, "msg-offset").send_keys("8")
    click(browser, "#msg-browse")
    wait_text(browser, "#messages p", lambda t: t == "2 record(s)", "records 8 and 9 of partition 0")
    Select(browser.find_element(By.ID, "msg-mode")).select_by_value("hex")
    wait_text(browser, ".message-value", lambda t: t == json.dumps({"n": 8}).encode().hex(" "), "a hex value")
    snap(browser, "5-offset-hex")
    Select(browser.find_element(By.ID, "msg-from")).select_by_value("timestamp")
    browser.find_element(By.ID, "msg-timestamp").send_keys("2999-01-01T00:00:00Z")
    click(browser, "#msg-browse")
    wait_text(browser, "#messages p", lambda t: t == "0 record(s)", "nothing after the last timestamp")

    # Groups: find ours by name, check the total lag, open it, check each partition's lag. The
    # form's record is partition 1's sixth.
    expected_lag = (10 - 4) + (6 - 1)
    click(browser, "#nav a[href='#/groups']")
    lag = wait_text(browser, f"[data-group-row='{group}'] .total-lag", lambda t: t != "", "group's total lag")
    assert lag == str(expected_lag)
    snap(browser, "6-groups")
    click(browser, f"a[data-group='{group}']")
    wait_text(browser, "[data-card=total-lag] .card-value", lambda t: t == str(expected_lag), "group page's lag")
    assert wait_text(browser, f"[data-partition='{topic_name}-0'] .lag", bool, "p0 lag") == "6"
    assert wait_text(browser, f"[data-partition='{topic_name}-1'] .lag", bool, "p1 lag") == "5"
    snap(browser, "7-group")

    # Reset the (memberless) group to the log end: the lag drops to 0.
    Select(browser.find_element(By.ID, "reset-topic")).select_by_value(topic_name)
    Select(browser.find_element(By.ID, "reset-to")).select_by_value("latest")
    click(browser, "#reset-go")
    wait_text(browser, ".result", lambda t: t.startswith("Committed: 0→10, 1→6"), "the reset's result")
    wait_text(browser, "[data-card=total-lag] .card-value", lambda t: t == "0", "the lag after the reset")
    snap(browser, "7-group-reset")

    # Live updates: records produced now show up as lag without a reload.
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(3):
        p.produce(topic_name, value=f"late-{i}", partition=0)
    assert p.flush(TIMEOUT_S) == 0
    del p
    wait_text(browser, "[data-card=total-lag] .card-value", lambda t: t == "3", "the lag, updated live")

    # The remaining pages load without errors.
    for page in ("share-groups", "acls", "users", "brokers"):
        click(browser, f"#nav a[href='#/{page}']")
        WebDriverWait(browser, WAIT_S).until(
            lambda d: "updated" in d.find_element(By.ID, "status").text)
        snap(browser, f"8-{page}")
    check_clean(browser, origin, seen)
    assert any(u.startswith(origin + "/api/topics/") for u in seen), seen




def http(url: str, user: str | None = None, password: str | None = None, body: dict | None = None):
    """(status, headers, JSON or text) of a GET, or a POST of `body`, with basic credentials."""
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    if user is not None:
        token = base64.b64encode(f"{user}:{password or USERS[user]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as res:
            status, headers, raw = res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw.decode(errors="replace")


def test_console_login_is_the_users_kafka_login(broker_factory, tmp_path):
    # The authorization tests' broker: SASL/PLAIN users, StandardAuthorizer, admin a super user.
    broker = broker_factory(authorizer_args(make_pki(tmp_path / "pki")), listen=False).start()
    bootstrap = broker.listeners["SASL_PLAINTEXT"]
    conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": "admin", "sasl.password": USERS["admin"]}
    admin = AdminClient(conf)
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in ("alice-orders", "secret")]).values():
        f.result(TIMEOUT_S)
    # alice may see and read her topic, not write it, and nothing else.
    for op in (AclOperation.DESCRIBE, AclOperation.READ):
        for f in admin.create_acls([AclBinding(ResourceType.TOPIC, "alice-", ResourcePatternType.PREFIXED,
                                               "User:alice", "*", op, AclPermissionType.ALLOW)]).values():
            f.result(TIMEOUT_S)

    console = ConsoleProcess(bootstrap, tmp_path, ["--login", "PLAIN"])
    try:
        url = console.url
        # No credentials: the page and the API ask for them.
        for path in ("", "api/topics"):
            status, headers, _ = http(url + path)
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith("Basic "), headers
        # A wrong password is refused by the broker.
        status, headers, body = http(url + "api/topics", "alice", "wrong")
        assert status == 401, body
        assert headers["WWW-Authenticate"].startswith("Basic ")

        status, _, page = http(url, "alice")
        assert status == 200 and "Strom" in page
        status, _, topics = http(url + "api/topics", "admin")
        assert status == 200, topics
        assert {"alice-orders", "secret"} <= {t["name"] for t in topics}
        status, _, topics = http(url + "api/topics", "alice")
        assert status == 200, topics
        assert [t["name"] for t in topics] == ["alice-orders"]
        # Read-only for alice: her produce is refused by the broker's authorizer (403), admin's works.
        status, _, body = http(url + "api/topics/alice-orders/produce", "alice", body={"value": "x"})
        assert status == 403, body
        status, _, body = http(url + "api/topics/alice-orders/produce", "admin", body={"value": "x"})
        assert status == 200 and body["offset"] == 0, body
        status, _, body = http(url + "api/topics/alice-orders/configs", "alice",
                               body={"name": "retention.ms", "value": "1000"})
        assert status == 403, body
        status, _, msgs = http(url + "api/topics/alice-orders/messages", "alice")
        assert status == 200 and [m["value"]["text"] for m in msgs] == ["x"], msgs
        # ACLs are the cluster's: admin may list them, alice may not.
        status, _, acls = http(url + "api/acls", "admin")
        assert status == 200 and acls["enabled"] and len(acls["acls"]) == 2, acls
        status, _, body = http(url + "api/acls", "alice")
        assert status == 403, body
    finally:
        console.stop()


class MetricsProxy:
    """One origin for the console (proxied) and a fake broker `/metrics` whose byte counter grows
    by BYTES_PER_SCRAPE at every scrape."""

    BYTES_PER_SCRAPE = 4096

    def __init__(self, upstream: str):
        proxy = self
        self.scrapes = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path == "/metrics":
                    proxy.scrapes += 1
                    body = ("# TYPE strom_topic_bytes_in counter\n"
                            f'strom_topic_bytes_in_total{{topic="a"}} {proxy.scrapes * proxy.BYTES_PER_SCRAPE}\n'
                            'strom_topic_bytes_in_total{topic="b"} 7\n').encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                try:
                    with urllib.request.urlopen(upstream.rstrip("/") + self.path, timeout=TIMEOUT_S) as res:
                        status, headers, body = res.status, res.headers, res.read()
                except urllib.error.HTTPError as e:
                    status, headers, body = e.code, e.headers, e.read()
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection", "date", "server", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@needs_browser
def test_overview_sparkline_reads_metrics_of_its_origin(broker, browser, tmp_path):
    console = ConsoleProcess(broker.bootstrap, tmp_path, ["--origin-serves-metrics"])
    proxy = MetricsProxy(console.url)
    try:
        seen: list[str] = []
        browser.get(proxy.url)
        # Two scrapes make a rate: 4096 bytes per ~3 s poll (more if a slow poll skipped a beat).
        rate = wait_text(browser, ".spark span", lambda t: re.fullmatch(r"bytes in: [1-9][\d,]* B/s", t),
                         "a non-zero byte rate")
        assert 100 <= int(rate.split()[2].replace(",", "")) <= 5000, rate
        (line,) = browser.find_elements(By.CSS_SELECTOR, ".spark svg polyline")
        assert len(line.get_attribute("points").split()) >= 2, line.get_attribute("points")
        snap(browser, "sparkline")
        check_clean(browser, proxy.url.rstrip("/"), seen)
        assert proxy.url + "metrics" in seen, seen
    finally:
        proxy.close()
        console.stop()


@needs_browser
def test_share_group_page_shows_members(broker_factory, browser, tmp_path, topic_name):
    broker = broker_factory(["--set", "group.share.enable=true"]).start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1)]).values():
        f.result(TIMEOUT_S)
    group = f"share-{topic_name}"
    stop = threading.Event()

    def consume():
        c = ShareConsumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        c.subscribe([topic_name])
        try:
            while not stop.is_set():
                c.poll(0.5)
        finally:
            c.close()

    consumer = threading.Thread(target=consume)
    consumer.start()
    console = ConsoleProcess(broker.bootstrap, tmp_path)
    try:
        seen: list[str] = []
        browser.get(console.url + "#/share-groups")
        click(browser, f"a[data-share-group='{group}']")
        assignment = wait_text(browser, "td", lambda t: f"{topic_name}-0" in t and f"{topic_name}-1" in t,
                               "the member's assignment")
        assert assignment
        wait_text(browser, ".card-value", lambda t: t == "Stable", "the group's state")
        snap(browser, "share-group")
        check_clean(browser, console.url.rstrip("/"), seen)
    finally:
        stop.set()
        consumer.join(TIMEOUT_S)
        console.stop()
