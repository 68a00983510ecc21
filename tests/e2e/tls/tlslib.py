"""Helpers for the TLS end-to-end suite: a test PKI made with `cryptography` (root CA,
intermediate, server chains for 127.0.0.1/localhost, a second CA, client certificates), a
Tessera server process that serves HTTPS (readiness polled through its banner and a TCP connect,
since a server that demands client certificates answers no anonymous probe), TLS probes with
the standard `ssl` module, an OpenBao dev server with -dev-tls, and psql helpers.

Reused, not copied: tests/e2e/e2e_servers.py (free ports, clean environments, the bao and
tessera binaries, ManagedServer, DurableNode, postgres_cluster). A uniquely named module (like
seclib, usclib), so the test files can import it without `from conftest import`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
E2E = HERE.parent
REPO = E2E.parent.parent
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

from e2e_servers import (  # noqa: E402  (re-exported for the tests)
    DurableNode, ManagedServer, bao_binary, clean_env, free_port, free_port_pair, postgres_cluster,
    random_key, tessera_binary,
)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 20.0
CLI_TIMEOUT = 30.0

ADMIN_ID = "p-tlsadmin00001"


def uid(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def wait_until(pred, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Polls `pred` until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def exec_retrying(start, timeout: float = 20.0):
    """Runs start() (a subprocess.run/Popen call), retrying while the binary is being replaced
    (ETXTBSY "Text file busy", or briefly missing): another process may be rebuilding it."""
    import errno
    deadline = time.monotonic() + timeout
    while True:
        try:
            return start()
        except OSError as e:
            if e.errno not in (errno.ETXTBSY, errno.ENOENT) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------
# the test PKI
# ------------------------------------------------------------------------------------------

def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tessera TLS e2e")])


def _key_pem(key, traditional: bool = False) -> bytes:
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@dataclass
class Issued:
    """A certificate and its key (PEM), with what the tests compare."""

    cert: x509.Certificate
    key: Any
    chain: list[x509.Certificate] = field(default_factory=list)  # intermediates after the leaf
    traditional_key: bool = False

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        return self.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key, self.traditional_key)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def serial(self) -> int:
        return self.cert.serial_number


class CA:
    """A certificate authority (root or intermediate) that issues test certificates."""

    def __init__(self, cn: str, *, parent: "CA | None" = None, path_length: int | None = 1):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.parent = parent
        self.name = _name(cn)
        issuer_name = parent.name if parent else self.name
        issuer_key = parent.key if parent else self.key
        b = (x509.CertificateBuilder().subject_name(self.name).issuer_name(issuer_name)
             .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(_now() - _dt.timedelta(minutes=5))
             .not_valid_after(_now() + _dt.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False))
        if parent:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False)
        self.cert = b.sign(issuer_key, hashes.SHA256())

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def intermediates(self) -> list[x509.Certificate]:
        """The CA certificates a leaf of this CA must be served with (not the root)."""
        out, ca = [], self
        while ca.parent is not None:
            out.append(ca.cert)
            ca = ca.parent
        return out

    def issue(self, cn: str, *, dns: Iterable[str] = (), ips: Iterable[str] = (), client: bool = False,
              rsa_key: bool = False) -> Issued:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(_now() - _dt.timedelta(minutes=5))
             .not_valid_after(_now() + _dt.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        return Issued(cert, key, self.intermediates(), traditional_key=rsa_key)

    def server(self, cn: str = "localhost", rsa_key: bool = False) -> Issued:
        return self.issue(cn, dns=["localhost"], ips=["127.0.0.1"], rsa_key=rsa_key)


def write_file(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    """Writes atomically (a temp file renamed over the path), so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


class PKI:
    """Every certificate of the suite, written to `directory`.

    root ─ intermediate ─ server_a, server_b, server_c (served as leaf + intermediate; clients
    trust only root.pem); server_rsa (RSA key in the traditional PEM format); server_dns_only
    (names localhost but not 127.0.0.1); other_ca (a CA
    nobody trusts, with rogue_client and other_server); client_ca ─ client.
    """

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = CA("Tessera e2e root CA")
        self.intermediate = CA("Tessera e2e intermediate CA", parent=self.root, path_length=0)
        self.server_a = self.intermediate.server("localhost")
        self.server_b = self.intermediate.server("localhost")
        self.server_c = self.intermediate.server("localhost")
        self.server_rsa = self.intermediate.server("localhost", rsa_key=True)
        self.server_dns_only = self.intermediate.issue("localhost", dns=["localhost"])  # no IP address SAN
        self.other_ca = CA("Untrusted other CA")
        self.other_server = self.other_ca.server("localhost")
        self.client_ca = CA("Tessera e2e client CA", path_length=0)
        self.client = self.client_ca.issue("e2e-client", client=True)
        self.rogue_client = self.other_ca.issue("rogue-client", client=True)

        self.root_pem = write_file(self.dir / "root.pem", self.root.pem)
        self.other_ca_pem = write_file(self.dir / "other-ca.pem", self.other_ca.pem)
        self.client_ca_pem = write_file(self.dir / "client-ca.pem", self.client_ca.pem)
        self.client_pair = self.write_pair(self.client, "client")
        self.rogue_pair = self.write_pair(self.rogue_client, "rogue-client")

    def write_pair(self, issued: Issued, stem: str, directory: Path | None = None, chain: bool = True) -> tuple[str, str]:
        """Writes <stem>.pem (leaf, then its intermediates) and <stem>-key.pem (0600)."""
        d = Path(directory or self.dir)
        d.mkdir(parents=True, exist_ok=True)
        cert = write_file(d / f"{stem}.pem", issued.chain_pem if chain else issued.cert_pem)
        key = write_file(d / f"{stem}-key.pem", issued.key_pem, 0o600)
        return str(cert), str(key)


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def load_pem_cert(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(Path(path).read_bytes())[0]


# ------------------------------------------------------------------------------------------
# TLS probes with the standard library
# ------------------------------------------------------------------------------------------

def client_context(ca: str | Path | None = None, *, min_version: ssl.TLSVersion | None = None,
                   max_version: ssl.TLSVersion | None = None, cert: tuple[str, str] | None = None,
                   ciphers: str | None = None) -> ssl.SSLContext:
    """A client context that verifies against `ca` only (no system CAs); unverified without `ca`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(cafile=str(ca))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


@dataclass
class Probe:
    ok: bool
    version: str | None = None
    status: int | None = None      # HTTP status of GET /v1/sys/health, when a request was sent
    error: str = ""
    peer_der: bytes | None = field(default=None, repr=False)

    @property
    def peer_fingerprint(self) -> str | None:
        return fingerprint(self.peer_der) if self.peer_der else None


def probe(port: int, ctx: ssl.SSLContext, *, request: bool = True, host: str = "localhost",
          timeout: float = 10.0) -> Probe:
    """Handshake with 127.0.0.1:port (SNI/hostname `host`) and, with `request`, send one
    GET /v1/sys/health and read the status line. With TLS 1.3 a server that rejects the client
    certificate says so after the handshake, at the first read: the request finds that out."""
    version = None
    der = None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                version = s.version()
                der = s.getpeercert(binary_form=True)
                if not request:
                    return Probe(True, version, peer_der=der)
                s.sendall(f"GET /v1/sys/health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                if not m:
                    return Probe(False, version, error=f"no HTTP answer (read {data[:80]!r})", peer_der=der)
                return Probe(True, version, int(m.group(1)), peer_der=der)
    except (ssl.SSLError, OSError) as e:
        return Probe(False, version, error=f"{type(e).__name__}: {e}", peer_der=der)


def served_certificate(port: int, ca: str | Path | None = None) -> bytes:
    """The DER leaf certificate that a new connection to 127.0.0.1:port gets."""
    p = probe(port, client_context(ca), request=False)
    assert p.ok and p.peer_der, p.error
    return p.peer_der


# ------------------------------------------------------------------------------------------
# a Tessera server with TLS
# ------------------------------------------------------------------------------------------

LISTENING_RE = re.compile(r"==> Tessera server listening on (https?)://")
CA_LINE_RE = re.compile(r"^CA Certificate: (.+)$", re.M)


class TesseraTLS:
    """`tessera server` (dev mode by default) with arbitrary TLS flags. stdout and stderr go to
    one log file; readiness is the banner's "listening on" line plus a TCP connect. `ca` is what
    clients verify with (for --dev-tls: the CA path the banner prints); `client_cert` is an optional
    (cert, key) pair sent by this object's own requests."""

    def __init__(self, workdir: Path, *, args: Iterable[str] = (), dev: bool = True, ca: str | Path | None = None,
                 client_cert: tuple[str, str] | None = None, admin_id: str = ADMIN_ID, admin_key: str | None = None,
                 name: str = "tessera", env: dict | None = None):
        self.binary = tessera_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.dev = dev
        self.ca = str(ca) if ca else None
        self.client_cert = client_cert
        self.admin_id = admin_id
        self.admin_key = admin_key or ("tlskey-" + random_key(24))
        self.name = name
        self.env = env or {}
        self.port: int | None = None
        self.scheme = "https"
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._starts = 0
        self._token: str | None = None
        self.session = requests.Session()

    # -- addresses and credentials -------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2"

    @property
    def vault_token(self) -> str:
        return f"{self.admin_id}..{self.admin_key}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [self.binary, "server", "--listen", f"127.0.0.1:{self.port}"]
        if self.dev:
            cmd += ["--dev", "--dev-access-id", self.admin_id, "--dev-access-key", self.admin_key]
        return cmd + self.args

    # -- process control -----------------------------------------------------------------------
    def read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def start(self) -> "TesseraTLS":
        last = ""
        for _attempt in range(3):
            self._starts += 1
            self.port = free_port()
            self.log_path = self.workdir / f"{self.name}-{self._starts}.log"
            # TMPDIR of our own: --dev's temporary folder (and --dev-tls's CA) lands under the test's tmp dir
            tmp = self.workdir / "tmp"
            tmp.mkdir(exist_ok=True)
            with open(self.log_path, "wb") as logf:
                self.proc = exec_retrying(lambda: subprocess.Popen(
                    self.command(), stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                    env=clean_env({"TMPDIR": str(tmp), **self.env}), start_new_session=True))
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                m = LISTENING_RE.search(self.read_log())
                if m and self._tcp_open():
                    self.scheme = m.group(1)
                    if self.dev and self.ca is None:
                        ca = CA_LINE_RE.search(self.read_log())
                        if ca:
                            self.ca = ca.group(1).strip()
                    self.session.close()
                    self.session = requests.Session()
                    # trust_env off: REQUESTS_CA_BUNDLE would otherwise override session.verify
                    self.session.trust_env = False
                    self.session.verify = self.ca if self.ca else True
                    if self.client_cert:
                        self.session.cert = self.client_cert
                    return self
                time.sleep(0.05)
            last = self.read_log()
            self.stop()
            if "address already in use" not in last.lower():
                break
        raise AssertionError(f"tessera server did not become ready on port {self.port}:\n{last[-4000:]}")

    def _tcp_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def hup(self) -> None:
        """SIGHUP to our own child only."""
        assert self.alive(), "server is not running"
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        self.session.close()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        return self.proc.returncode

    # -- requests ------------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            r = self.session.post(f"{self.api_url}/auth", json={"access-id": self.admin_id, "access-key": self.admin_key,
                                                                 "access-type": "access_key"}, timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, f"auth: HTTP {r.status_code} {r.text[:300]}"
            self._token = r.json()["token"]
        return self._token

    def post(self, verb: str, body: dict | None = None, *, token: Any = True, timeout: float = 60) -> requests.Response:
        """POST /api/v2/<verb>; token True = the admin's token, None = no token, else that token."""
        b = dict(body or {})
        if token is True:
            b["token"] = self.token()
        elif token is not None:
            b["token"] = token
        return self.session.post(f"{self.api_url}/{verb}", json=b, timeout=timeout)

    def call(self, verb: str, body: dict | None = None, *, expect: int = 200, **kw) -> Any:
        r = self.post(verb, body, **kw)
        assert r.status_code == expect, f"{verb}: expected HTTP {expect}, got {r.status_code}: {r.text[:600]}"
        return r.json() if r.content else None


def run_server_once(args: list[str], timeout: float = 30, tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    """`tessera server ARGS` expected to exit by itself (a start-up error); stdout/stderr apart.
    `tmpdir` becomes the process's TMPDIR (where --dev makes its folder)."""
    env = clean_env({"TMPDIR": str(tmpdir)} if tmpdir else None)
    if tmpdir:
        Path(tmpdir).mkdir(parents=True, exist_ok=True)
    return exec_retrying(lambda: subprocess.run([tessera_binary(), "server", *args], capture_output=True, text=True,
                                                timeout=timeout, stdin=subprocess.DEVNULL, env=env))


# ------------------------------------------------------------------------------------------
# clients: bao CLI, tessera CLI
# ------------------------------------------------------------------------------------------

def run_bao(bao: str, addr: str, token: str, home: Path, *args: str, cacert: str | None = None,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """The bao CLI with VAULT_ADDR/VAULT_TOKEN (and VAULT_CACERT when given), its own HOME."""
    Path(home).mkdir(parents=True, exist_ok=True)
    extra = {"VAULT_ADDR": addr, "VAULT_TOKEN": token, "HOME": str(home)}
    if cacert:
        extra["VAULT_CACERT"] = str(cacert)
    return subprocess.run([bao, *args], env=clean_env(extra), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=str(home))


def run_cli(home: Path, *args: str, env: dict | None = None, input: str | None = None,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """The tessera CLI with its own HOME and XDG_CONFIG_HOME (so its own profile)."""
    home = Path(home)
    (home / "config").mkdir(parents=True, exist_ok=True)
    e = clean_env({"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")})
    if env:
        e.update(env)
    return exec_retrying(lambda: subprocess.run([tessera_binary(), *args], env=e, input=input, capture_output=True,
                                                text=True, timeout=timeout, cwd=str(home)))


def show(p: subprocess.CompletedProcess) -> str:
    return f"rc={p.returncode}\nstdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}"


def profile_file(home: Path, profile: str = "default") -> Path:
    return Path(home) / "config" / "tessera" / "profiles" / f"{profile}.json"


# ------------------------------------------------------------------------------------------
# OpenBao dev server with TLS
# ------------------------------------------------------------------------------------------

class BaoTLSDevServer(ManagedServer):
    """`bao server -dev -dev-tls` with its generated CA in a fresh -dev-tls-cert-dir per start."""

    name = "bao-tls"

    def __init__(self, binary: str, workdir: Path):
        super().__init__(binary, workdir)
        self.root_token = "tls-root-" + random_key(20)
        self.cert_dir: Path | None = None

    @property
    def addr(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        assert self.cert_dir is not None
        return self.cert_dir / "vault-ca.pem"

    def pick_port(self) -> int:
        return free_port_pair()

    def command(self) -> list[str]:
        self.cert_dir = self.workdir / f"certs-{self._starts}"
        shutil.rmtree(self.cert_dir, ignore_errors=True)
        self.cert_dir.mkdir(parents=True)
        return [self.binary, "server", "-dev", "-dev-tls", f"-dev-tls-cert-dir={self.cert_dir}",
                f"-dev-root-token-id={self.root_token}", f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-no-store-token"]

    def ready(self) -> bool:
        if self.cert_dir is None or not self.ca_file.is_file():
            return False
        try:
            return requests.get(f"{self.addr}/v1/sys/health", timeout=1, verify=str(self.ca_file)).status_code == 200
        except requests.RequestException:
            return False


# ------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------

def psql(port: int, user: str, password: str, sql: str, *, sslmode: str = "prefer",
         sslrootcert: str | None = None, appname: str | None = None) -> subprocess.CompletedProcess:
    """psql (libpq) as `user` over TCP to 127.0.0.1:port with the given sslmode."""
    conn = f"host=127.0.0.1 port={port} dbname=postgres user={user} sslmode={sslmode} connect_timeout=5"
    if sslrootcert:
        conn += f" sslrootcert={sslrootcert}"
    if appname:
        conn += f" application_name={appname}"
    env = clean_env({"PGPASSWORD": password})
    for k in [k for k in env if k.startswith("PG") and k != "PGPASSWORD"]:
        env.pop(k)
    return subprocess.run(["psql", conn, "-X", "-tAc", sql], env=env, capture_output=True, text=True, timeout=30)


def pg_super(pg: dict, sql: str) -> str:
    out = psql(pg["port"], "postgres", pg["password"], sql)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def create_pg_admin(pg: dict, prefix: str = "tlsadm") -> tuple[str, str]:
    """A superuser role of its own for one target, so its sessions can be told apart by usename."""
    user = f"{prefix}_{secrets.token_hex(4)}"
    password = random_key(24)
    pg_super(pg, f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{password}'")
    return user, password


def ssl_of_sessions(pg: dict, usename: str) -> list[tuple[bool, str]]:
    """(ssl, version) of every backend of `usename` (pg_stat_ssl joined with pg_stat_activity)."""
    out = pg_super(pg, "SELECT s.ssl, coalesce(s.version, '') FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid "
                       f"WHERE a.usename = '{usename}'")
    rows = []
    for line in out.splitlines():
        if line.strip():
            flag, _, version = line.partition("|")
            rows.append((flag.strip() == "t", version.strip()))
    return rows


# ------------------------------------------------------------------------------------------
# TLS 1.1: can this machine's OpenSSL still offer it?
# ------------------------------------------------------------------------------------------

def tls11_client_context() -> ssl.SSLContext:
    """A client that offers TLS 1.0/1.1 only (SECLEVEL=0: OpenSSL 3 hides them otherwise)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client_context(None, min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1_1,
                              ciphers="DEFAULT:@SECLEVEL=0")


def local_tls11_handshake_works(cert: str, key: str) -> bool:
    """True when tls11_client_context() completes TLS 1.1 with a throwaway Python server on
    loopback: then a refusal by Tessera is Tessera's doing, not a client that cannot offer 1.1."""
    import threading
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            sctx.minimum_version = ssl.TLSVersion.TLSv1_1
            sctx.maximum_version = ssl.TLSVersion.TLSv1_1
            sctx.load_cert_chain(cert, key)
            cctx = tls11_client_context()
    except (ssl.SSLError, ValueError):
        return False
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def serve():
        try:
            conn, _ = listener.accept()
            with sctx.wrap_socket(conn, server_side=True) as s:
                s.settimeout(5)
                s.recv(1)
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        p = probe(listener.getsockname()[1], cctx, request=False, timeout=5)
        return p.ok and p.version == "TLSv1.1"
    finally:
        t.join(10)
        listener.close()


def openssl_s_client(port: int, *flags: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *flags],
                          input="", capture_output=True, text=True, timeout=timeout)


def restart_postgres(pg: dict, *, ssl: bool, cert: Issued | None = None) -> None:
    """Stops a scripts/test-postgres cluster and starts it again on the same port, with ssl=off, or
    with ssl=on serving `cert` (leaf + intermediates) instead of the script's certificate.
    (ALTER SYSTEM cannot do this: the script passes its ssl settings on the command line, which wins.)"""
    import glob
    d = pg["dir"]
    subprocess.run([str(REPO / "scripts/test-postgres"), "stop", d], check=True, capture_output=True, timeout=60)
    opts = (f"-c listen_addresses=127.0.0.1 -c port={pg['port']} -c unix_socket_directories={d} -c max_connections=200 "
            "-c fsync=off")
    if not ssl:
        opts += " -c ssl=off"
    else:
        assert cert is not None
        t = Path(d) / f"tls-{secrets.token_hex(3)}"
        t.mkdir()
        write_file(t / "server.crt", cert.chain_pem)
        write_file(t / "server.key", cert.key_pem, 0o600)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(t)], check=True)
        opts += f" -c ssl=on -c ssl_cert_file={t}/server.crt -c ssl_key_file={t}/server.key"
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or [shutil.which("pg_ctl") or "pg_ctl"]
    cmd = [candidates[-1], "-D", f"{d}/data", "-l", f"{d}/pg.log", "-w", "-o", opts, "start"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"pg_ctl start failed: {out.stdout}\n{out.stderr}\n{Path(d, 'pg.log').read_text()[-2000:]}"
