"""Fixtures for the compatibility tests: each test gets its own `strom serve` child process.

The broker listens on an ephemeral port (`--listen 127.0.0.1:0`) in a fresh temp data dir; the port is
read from the first stdout line `strom: listening on HOST:PORT`. A broker started with its own
`listeners` (`listen=False`) prints one more line per listener, `strom: listener NAME on HOST:PORT`,
read into `Broker.listeners`. After the test the broker is stopped
(SIGTERM, then SIGKILL) and the test fails if the broker's stderr shows a panic.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"^strom: listening on (\S+):(\d+)\s*$")
LISTENER_RE = re.compile(r"^strom: listener (\S+) on (\S+:\d+)\s*$")
START_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 20


def strom_bin() -> str:
    """The `strom` binary under test: $STROM_BIN, else target/debug/strom."""
    path = os.environ.get("STROM_BIN") or str(REPO / "target" / "debug" / "strom")
    if not os.access(path, os.X_OK):
        pytest.fail(f"strom binary not found at {path} (build it or set STROM_BIN)")
    return path


class Broker:
    """One `strom serve` child process; `start()` can be called again after `stop()`/`kill()`."""

    def __init__(self, data_dir: Path, log_dir: Path, extra_args: list[str] | None = None,
                 listen: bool = True):
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.extra_args = extra_args or []
        # False: the broker's `listeners` come from extra_args (--set/--config), not --listen.
        self.listen = listen
        self.listeners: dict[str, str] = {}
        # Extra environment of the process (e.g. a finer STROM_LOG).
        self.extra_env: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self.host = ""
        self.port = 0
        self.runs = 0
        self.stderr_paths: list[Path] = []

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "Broker":
        return self.launch().wait_ready()

    def launch(self) -> "Broker":
        """Starts the process without waiting for it to serve (cluster nodes wait for each other)."""
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.runs += 1
        err_path = self.log_dir / f"strom-{self.runs}.stderr"
        self.stderr_paths.append(err_path)
        env = dict(os.environ)
        env.setdefault("STROM_LOG", "info")
        env.update(self.extra_env)
        with open(err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [strom_bin(), "serve", "--data-dir", str(self.data_dir),
                 *(["--listen", "127.0.0.1:0"] if self.listen else []), *self.extra_args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        return self

    def wait_ready(self) -> "Broker":
        """Waits for the `listening` line and records the address."""
        line = self._read_first_line()
        m = LISTEN_RE.match(line)
        if not m:
            self.kill()
            pytest.fail(f"unexpected first stdout line from strom serve: {line!r}\n{self.stderr_text()}")
        self.host, self.port = m.group(1), int(m.group(2))
        # One line per client listener follows at once.
        self.listeners = {}
        while len(self.listeners) < self.expected_listeners():
            m = LISTENER_RE.match(self._read_first_line())
            if not m:
                break
            self.listeners[m.group(1)] = m.group(2)
        return self

    def expected_listeners(self) -> int:
        """How many client listeners the broker was given (1 for --listen)."""
        if self.listen:
            return 1
        for a in self.extra_args:
            if a.startswith("listeners="):
                entries = [e.strip() for e in a.split("=", 1)[1].split(",") if e.strip()]
                return sum(1 for e in entries if not e.startswith("CONTROLLER"))
        return 1

    def _read_first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not out or not out[0]:
            self.kill()
            pytest.fail(f"strom serve did not print its listening line within {START_TIMEOUT_S}s\n"
                        f"{self.stderr_text()}")
        return out[0].decode(errors="replace")

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code. Escalates to SIGKILL (and fails) on timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"strom serve did not exit within {timeout}s of SIGTERM")

    def kill(self) -> None:
        """SIGKILL (kill -9) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.stderr_paths if p.exists())


@pytest.fixture
def broker_factory(tmp_path):
    """Makes brokers (not yet started); all are killed at teardown and checked for panics."""
    brokers: list[Broker] = []

    def make(extra_args: list[str] | None = None, data_dir: Path | None = None,
             listen: bool = True) -> Broker:
        n = len(brokers)
        d = data_dir or tmp_path / f"data{n}"
        d.mkdir(parents=True, exist_ok=True)
        logs = tmp_path / f"logs{n}"
        logs.mkdir(exist_ok=True)
        b = Broker(d, logs, extra_args, listen)
        brokers.append(b)
        return b

    yield make
    problems = []
    for b in brokers:
        # Graceful stop, so a panic or hang on shutdown is caught too.
        if b.proc is not None and b.proc.poll() is None:
            b.proc.send_signal(signal.SIGTERM)
            try:
                code = b.proc.wait(SHUTDOWN_TIMEOUT_S)
                if code != 0:
                    problems.append(f"strom serve exited {code} on SIGTERM")
            except subprocess.TimeoutExpired:
                b.kill()
                problems.append(f"strom serve did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM")
    for b in brokers:
        text = b.stderr_text()
        if "panicked" in text or "RUST_BACKTRACE" in text:
            problems.append(f"broker wrote a panic to stderr:\n{text[-8000:]}")
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A running single-node broker on an ephemeral port with a temp data dir."""
    return broker_factory().start()


@pytest.fixture
def topic_name(request) -> str:
    """A topic name unique to the test."""
    name = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:100]
    return f"t-{name}-{int(time.time() * 1000) % 100000}"


def pytest_report_header(config):
    return f"strom binary: {os.environ.get('STROM_BIN') or REPO / 'target' / 'debug' / 'strom'}; " \
           f"kcat: {shutil.which('kcat')}"
