"""Helpers for the Vault-compatibility end-to-end suite.

Every test runs against a *target*: either a real OpenBao dev server (`bao`) or a Tessera dev
server (`tessera`).  Scenarios return a *transcript* (a list of steps with an exit code or
status and the parsed output); the tessera variant of a test compares its transcript with the
bao one by SHAPE (keys recursively and JSON types), never by values such as times, request ids
or accessors.

Only the standard library, requests, hvac and pytest are used.
"""

from __future__ import annotations

import fnmatch
import http.client
import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TESSERA_BIN = REPO / ".build" / "debug" / "tessera"

ENVELOPE_KEYS = {"request_id", "lease_id", "renewable", "lease_duration", "data",
                 "wrap_info", "warnings", "auth"}

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 30.0
HTTP_TIMEOUT = 15.0

# Environment variables that would leak a developer's own Vault/OpenBao/Tessera setup into a run.

import sys
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e_servers import (  # noqa: E402  shared with the usc suite
    _LEAKY_PREFIXES, ManagedServer, bao_binary, clean_env, free_port, free_port_pair, random_key, tessera_binary,
)

def unique(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def tessera_enabled() -> bool:
    """The tessera variant runs unless TESSERA_VAULT_E2E=0 (handy while only bao is wanted)."""
    return os.environ.get("TESSERA_VAULT_E2E", "1").strip().lower() not in ("0", "false", "no", "off")


# ------------------------------------------------------------------------------------------
# server processes
# ------------------------------------------------------------------------------------------

class BaoDevServer(ManagedServer):
    name = "bao"
    root_token = "root"

    def pick_port(self) -> int:
        return free_port_pair()

    def command(self) -> list[str]:
        return [self.binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"]


class TesseraDevServer(ManagedServer):
    name = "tessera"

    def __init__(self, binary: str, workdir: Path, access_id: str, access_key: str):
        super().__init__(binary, workdir)
        self.access_id = access_id
        self.access_key = access_key

    def command(self) -> list[str]:
        return [self.binary, "server", "--dev", "--listen", f"127.0.0.1:{self.port}",
                "--dev-access-id", self.access_id, "--dev-access-key", self.access_key]

    def ready(self) -> bool:
        try:
            requests.get(f"{self.addr}/v1/sys/health", timeout=1)
            return True  # any HTTP answer: dev mode starts unsealed
        except requests.RequestException:
            return False


# ------------------------------------------------------------------------------------------
# raw HTTP (http.client: the path is sent byte for byte, no `..` or `//` normalisation)
# ------------------------------------------------------------------------------------------

@dataclass
class Resp:
    status: int
    headers: dict          # lower-cased names
    body: bytes
    method: str
    path: str

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def json(self) -> Any:
        return json.loads(self.body)

    def try_json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self) -> str:  # shows up in assertion messages
        return (f"<{self.method} {self.path[:120]} -> {self.status} "
                f"ct={self.content_type!r} body={self.body[:300]!r}>")


_DEFAULT = object()


@dataclass
class Target:
    name: str                    # "bao" or "tessera"
    addr: str
    token: str                   # a root/admin Vault token
    bao_bin: str
    workdir: Path
    kv2: str = "secret"
    kv1: str = "kv1"
    server: ManagedServer | None = None
    native_token: str | None = None          # tessera only
    admin_access_id: str | None = None       # tessera only
    tessera_bin: str | None = None           # tessera only
    _homes: int = 0

    def __repr__(self) -> str:
        return f"Target({self.name} at {self.addr})"

    @property
    def is_bao(self) -> bool:
        """True when the server really is OpenBao (the bao variant, or the self-test)."""
        return isinstance(self.server, BaoDevServer)

    @property
    def port(self) -> int:
        return int(self.addr.rsplit(":", 1)[1])

    # -- HTTP --------------------------------------------------------------------------------
    def http(self, method: str, path: str, body: Any = _DEFAULT, *, raw: bytes | None = None,
             token: Any = _DEFAULT, headers: dict | None = None) -> Resp:
        """Send one request. `token=None` sends no X-Vault-Token; default is the admin token."""
        h: dict[str, str] = {}
        tok = self.token if token is _DEFAULT else token
        if tok is not None:
            h["X-Vault-Token"] = tok
        data: bytes | None = None
        if raw is not None:
            data = raw
        elif body is not _DEFAULT:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            return Resp(r.status, hdrs, payload, method, path)
        finally:
            conn.close()

    # -- bao CLI -----------------------------------------------------------------------------
    def new_home(self) -> Path:
        self._homes += 1
        home = self.workdir / f"clihome-{self._homes}-{secrets.token_hex(3)}"
        home.mkdir(parents=True)
        return home

    def bao(self, *args: str, token: Any = _DEFAULT, home: Path | None = None,
            env: dict | None = None, timeout: float = CLI_TIMEOUT) -> "CLIResult":
        tok = self.token if token is _DEFAULT else token
        extra = {"VAULT_ADDR": self.addr, "BAO_ADDR": self.addr,
                 "HOME": str(home or self._shared_home())}
        if tok is not None:
            extra["VAULT_TOKEN"] = tok
            extra["BAO_TOKEN"] = tok
        if env:
            extra.update(env)
        p = subprocess.run([self.bao_bin, *args], env=clean_env(extra), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                           cwd=str(home or self._shared_home()))
        return CLIResult(list(args), p.returncode, p.stdout, p.stderr)

    def _shared_home(self) -> Path:
        h = self.workdir / "clihome-shared"
        h.mkdir(parents=True, exist_ok=True)
        return h

    # -- hvac --------------------------------------------------------------------------------
    def hvac(self, token: Any = _DEFAULT):
        import hvac

        tok = self.token if token is _DEFAULT else token
        return hvac.Client(url=self.addr, token=tok, timeout=HTTP_TIMEOUT)

    # -- Tessera native API ----------------------------------------------------------------------
    def native(self, verb: str, body: dict, *, expect: int | None = 200) -> Any:
        r = requests.post(f"{self.addr}/api/v2/{verb}", json=body, timeout=HTTP_TIMEOUT)
        if expect is not None:
            assert r.status_code == expect, f"native {verb}: HTTP {r.status_code}: {r.text[:500]}"
        return r.json() if r.content else None

    def tessera_cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        assert self.tessera_bin
        home = self.new_home()
        (home / "config").mkdir()
        env = clean_env({"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")})
        return subprocess.run([self.tessera_bin, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(home))


@dataclass
class CLIResult:
    args: list
    rc: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"bao {' '.join(self.args)}: stdout is not JSON: {self.stdout!r}"
                                 f"\nstderr: {self.stderr!r}") from e

    def output(self) -> Any:
        """Parsed JSON if stdout is JSON, '<empty>' if empty, else '<text>'."""
        s = self.stdout.strip()
        if not s:
            return "<empty>"
        try:
            return json.loads(s)
        except ValueError:
            return "<text>"

    def __repr__(self) -> str:
        return (f"<bao {' '.join(self.args)} rc={self.rc}\n--stdout--\n{self.stdout[:1500]}"
                f"\n--stderr--\n{self.stderr[:1500]}>")


def table_keys(text: str) -> set[str]:
    """First-column words of `bao` table output (`Key   Value` rows and section titles)."""
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or set(line) <= set("-= "):
            continue
        out.add(line.split()[0])
        if line.startswith("="):
            out.add(line.strip("= ").strip())
    return out


# ------------------------------------------------------------------------------------------
# shapes and transcripts
# ------------------------------------------------------------------------------------------

def kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def shape(v: Any) -> Any:
    """The shape of a JSON value: objects keep their keys, lists become the set of element shapes."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return ["list-of", sorted({json.dumps(shape(x), sort_keys=True) for x in v})]
    return kind(v)


def _match(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def shape_diff(ref: Any, got: Any, path: str = "$", *, nullable: Iterable[str] = (),
               ignore: Iterable[str] = ()) -> list[str]:
    """Differences in shape between a reference (bao) value and a tested (tessera) value.

    `ignore`: glob patterns of paths whose shape is not compared at all.
    `nullable`: glob patterns of paths where null on either side matches anything.
    """
    nullable, ignore = tuple(nullable), tuple(ignore)
    if _match(path, ignore):
        return []
    kr, kg = kind(ref), kind(got)
    if kr != kg:
        if "null" in (kr, kg) and _match(path, nullable):
            return []
        return [f"{path}: bao has {kr} {_short(ref)}, tessera has {kg} {_short(got)}"]
    diffs: list[str] = []
    if kr == "object":
        missing = sorted(set(ref) - set(got))
        extra = sorted(set(got) - set(ref))
        if missing:
            diffs.append(f"{path}: keys missing on tessera: {missing}")
        if extra:
            diffs.append(f"{path}: extra keys on tessera: {extra}")
        for k in sorted(set(ref) & set(got)):
            diffs += shape_diff(ref[k], got[k], f"{path}.{k}", nullable=nullable, ignore=ignore)
    elif kr == "list":
        if bool(ref) != bool(got):
            diffs.append(f"{path}: bao list has {len(ref)} elements, tessera {len(got)}")
        elif ref and got:
            sr = {json.dumps(shape(x), sort_keys=True) for x in ref}
            sg = {json.dumps(shape(x), sort_keys=True) for x in got}
            if sr != sg:
                if len(sr) == 1 and len(sg) == 1:
                    diffs += shape_diff(ref[0], got[0], f"{path}[]", nullable=nullable, ignore=ignore)
                else:
                    diffs.append(f"{path}[]: element shapes differ: bao {sorted(sr)} tessera {sorted(sg)}")
    return diffs


def _short(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


@dataclass
class Step:
    name: str
    rc: Any                      # exit code, HTTP status, or an hvac outcome string
    out: Any                     # parsed output (shape-compared)
    err: str | None = None       # normalised stderr / error text (compared when compare_err)
    compare_err: bool = False
    nullable: tuple = ()
    ignore: tuple = ()


@dataclass
class Transcript:
    target: Target
    normalize: dict = field(default_factory=dict)   # text -> placeholder, for error texts
    steps: list = field(default_factory=list)

    def _norm(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = text.replace(self.target.addr, "ADDR")
        for k, v in self.normalize.items():
            text = text.replace(k, v)
        return text.strip()

    def add(self, name: str, rc: Any, out: Any, err: str | None = None, *, compare_err: bool = False,
            nullable: Iterable[str] = (), ignore: Iterable[str] = ()) -> None:
        self.steps.append(Step(name, rc, out, self._norm(err), compare_err, tuple(nullable), tuple(ignore)))

    def cli(self, name: str, res: CLIResult, **kw) -> CLIResult:
        self.add(name, res.rc, res.output(), res.stderr, **kw)
        return res

    def resp(self, name: str, r: Resp, **kw) -> Resp:
        body: Any = r.try_json() if r.body else "<empty>"
        if r.body and body is None:
            body = "<non-json>"
        self.add(name, r.status, body, **kw)
        return r


def compare_transcripts(ref: Transcript, got: Transcript) -> None:
    """Assert that the tessera transcript matches the bao one step by step."""
    problems: list[str] = []
    names_r = [s.name for s in ref.steps]
    names_g = [s.name for s in got.steps]
    if names_r != names_g:
        problems.append(f"step lists differ:\n  bao:     {names_r}\n  tessera: {names_g}")
    for sr, sg in zip(ref.steps, got.steps):
        if sr.name != sg.name:
            break
        if sr.rc != sg.rc:
            problems.append(f"[{sr.name}] exit/status: bao {sr.rc!r}, tessera {sg.rc!r}"
                            f"\n    bao out: {_short(sr.out)} err: {sr.err!r}"
                            f"\n    tessera out: {_short(sg.out)} err: {sg.err!r}")
            continue
        for d in shape_diff(sr.out, sg.out, nullable=sg.nullable, ignore=sg.ignore):
            problems.append(f"[{sr.name}] {d}")
        if sg.compare_err and sr.err != sg.err:
            problems.append(f"[{sr.name}] error text: bao {sr.err!r}, tessera {sg.err!r}")
    if problems:
        raise AssertionError("tessera differs from bao:\n" + "\n".join(problems))


def hvac_call(tr: Transcript, name: str, fn: Callable[[], Any], **kw) -> Any:
    """Run an hvac call; record 'ok' + the dict, 'response:<status>' or 'raise:<Exception>'."""
    try:
        result = fn()
    except Exception as e:  # hvac.exceptions.*
        tr.add(name, f"raise:{type(e).__name__}", getattr(e, "json", None), str(e), **kw)
        return e
    if hasattr(result, "status_code") and hasattr(result, "content"):
        body = "<empty>" if not result.content else "<body>"
        tr.add(name, f"response:{result.status_code}", body, **kw)
        return result
    tr.add(name, "ok", result, **kw)
    return result
