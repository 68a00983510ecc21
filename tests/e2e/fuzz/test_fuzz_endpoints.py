"""Fuzz every endpoint of the served OpenAPI document (issue 12, "Fuzzing in CI").

The module starts its own dev server (conftest.py: failed-login throttling out of the way, a KV v1
mount at `kv/` and a database mount at `database/` besides the dev `secret/`), fetches the OpenAPI 3
document the server serves at GET /v1/sys/openapi, and drives EVERY operation in it with generated
and extreme inputs, three ways:

  * without any token;
  * with a LIMITED token: an auth method whose only role grants read/list on `/fuzz/*` (and, so that
    Vault reads reach the KV engines, on `/secret/fuzz/*` and `/kv/fuzz/*`), logged in with
    POST /api/v2/auth;
  * for a bounded subset, with an admin token, but only on harmless paths: item names under
    `/fuzz-admin/<operation>/…`, roles `fuzz-admin-<operation>…`, mounts `fuzz-mnt-<operation>…`.
    Never sys/seal, revoke-self, revoke-creds, the `secret/` mount's config or its deletion.

What is sent, per operation and mode (the "core", deterministic for a given seed):
  * a plausible baseline request;
  * whole-body mutations: empty, non-object JSON, invalid JSON, invalid UTF-8, a BOM, duplicate keys,
    nesting of depth 40 and 1000, a 2 MB body, other content types;
  * for Vault paths, path-parameter mutations (`..`, `%2e%2e`, `%00`, very long, Unicode), `list=`
    variants and the LIST method; without a token, odd X-Vault-Token headers;
  * for every declared property (body or query), one request per value of the wrong type or edge
    value for its type: 9223372036854775808, -9223372036854775809, 1e300, -1e300, 1e400, 1.5, -1, 0,
    2147483648, min-1, max+1, numeric strings ("99999999999999999999", "1e300", "-1"), durations
    ("9999999999999h", "1e300s", "-5m", ""), odd Unicode (U+0301 first, U+200B, U+202E, NUL, lone
    surrogates escaped as "\\ud800", emoji), null, booleans, arrays, objects, deep nesting;
  * one 100 KB string and one 10 000-item list per operation (on a rotating property, in one of
    the three modes);
  * a few "all properties at once" requests, and 6 seeded random combinations (not for the admin);
  * as the admin, writes that store extreme values (KV v1, KV v2, native JSON / key-value secrets).
After the three modes, everything stored is read back, natively and through KV views of the same
folders (a stored value that crashes later reads shows only then).

Operations that may end the mode's own token or touch the seal (revoke-self, revoke-creds, deleting
auth methods, sys/seal, sys/unseal, sys/init) run alone at the end of their mode.

Asserted: no response is 5xx (all failures are collected and reported together: mode, method,
path, body summary, status, response text), no request without a token gets a 2xx from an operation
that needs one, the limited token changes nothing, every connection gets an answer or a clean close
(a time-out is a failure), and after the run the server process is alive, /v1/sys/health answers
200, the server is unsealed, a native canary secret and a KV v2 canary at secret/fuzz-canary read
back unchanged, and the mount table (GET /v1/sys/mounts) is what it was before the run.

Run (default: the core, a few minutes at most on 2 slow cores):
    TESSERA_BIN=.build/debug/tessera python3 -m pytest -q tests/e2e/fuzz -s

Longer runs on demand:
    TESSERA_FUZZ_CASES=2000  exactly N cases per operation and mode: the core, then the extended
                             catalogue (every value, the heavy ones included, on every property, and
                             more all-properties requests), then seeded random cases. A small N
                             (e.g. 20) cuts the core short, for a quick smoke run.
    TESSERA_FUZZ_SEED=7      another seed for the random parts (default 20261201).
    TESSERA_FUZZ_MODES=anon,limited   only some of the modes (anon, limited, admin).
    TESSERA_FUZZ_WORKERS=1   sessions sending in parallel (default 2; operations are spread over them).
                             When the server dies, every operation that was in flight is replayed
                             alone on a restarted server, so the report names the request that kills it.
    TESSERA_FUZZ_OPS=secret  only operations whose "METHOD /path" contains one of these
                             comma-separated substrings (the integrity checks still run).
A JSON report of every failure is written next to the server log (its path is printed).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
import requests

SEED = int(os.environ.get("TESSERA_FUZZ_SEED", "20261201"))
CASES = int(os.environ.get("TESSERA_FUZZ_CASES", "0") or 0)     # 0: the core + RANDOM_EXTRA
RANDOM_EXTRA = 6
HEAVY_MODES = ("anon", "limited", "admin")   # the 100 KB / 10 000-item cases: one mode per operation
MODES = [m.strip() for m in os.environ.get("TESSERA_FUZZ_MODES", "anon,limited,admin").split(",") if m.strip()]
OPS_FILTER = [s.strip() for s in os.environ.get("TESSERA_FUZZ_OPS", "").split(",") if s.strip()]
HTTP_TIMEOUT = 10.0
MAX_BODY = 1 << 20               # the server's default max_body_bytes
MAX_RESTARTS = 15                # crash recoveries before the run gives up
MAX_CRASHES_PER_OP = 4           # crashing cases named per operation and mode
WORKERS = int(os.environ.get("TESSERA_FUZZ_WORKERS", "2") or 2)   # parallel sessions
# Run alone at the end of a mode: they may revoke the mode's own token or seal the server.
SEQUENTIAL_OPS = ("revoke-self", "revoke-creds", "delete-auth-method", "auth-method-delete", "/v1/sys/seal",
                  "/v1/sys/unseal", "/v1/sys/init")

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


# ==========================================================================================
# values
# ==========================================================================================

class Raw:
    """A JSON fragment sent verbatim (numbers Python cannot express, deep nesting, …)."""

    def __init__(self, text: str, label: str | None = None):
        self.text = text
        self.label = label

    def __repr__(self) -> str:
        return self.label or self.text


def encode(v: Any) -> str:
    """JSON text; Raw fragments verbatim, strings ASCII-escaped (lone surrogates as \\ud800)."""
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + encode(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(encode(x) for x in v) + "]"
    return json.dumps(v)


def describe(v: Any, limit: int = 120) -> str:
    """A short, exact description of a value: 'a'*100000, ['x']*10000, raw fragments by label."""
    if isinstance(v, Raw):
        return repr(v)
    if isinstance(v, str):
        if len(v) > 64 and len(set(v)) == 1:
            return f"{v[0]!r}*{len(v)}"
        if len(v) > 64 and len(set(v[:-1])) == 1:
            return f"{v[0]!r}*{len(v) - 1}+{v[-1]!r}"
        r = repr(v)
        return r if len(r) <= limit else r[:limit] + f"…<{len(v)} chars>"
    if isinstance(v, list):
        if len(v) > 8 and all(encode(x) == encode(v[0]) for x in v):
            return f"[{describe(v[0])}]*{len(v)}"
        inner = ", ".join(describe(x) for x in v[:8])
        return "[" + inner + (", …" if len(v) > 8 else "") + "]"
    if isinstance(v, dict):
        items = list(v.items())
        inner = ", ".join(f"{k!r}: {describe(x)}" for k, x in items[:12])
        s = "{" + inner + (", …" if len(items) > 12 else "") + "}"
        return s if len(s) <= 4 * limit else s[:4 * limit] + "…}"
    return repr(v)


def deep_array(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth, f"<array nested {depth} deep>")


def deep_object(depth: int) -> Raw:
    return Raw('{"a":' * depth + "1" + "}" * depth, f"<object nested {depth} deep>")


BIG_STRING = "a" * 100_000
BIG_UNICODE = "\u00e9\u0301" * 25_000                    # 100 KB of UTF-8 with combining marks
LIST_10K = ["x"] * 10_000
LIST_10K_NUM = [Raw("9223372036854775808")] * 10_000

# Numbers as JSON numbers (Raw when Python would write them differently).
NUM_EDGE: list[Any] = [
    9223372036854775808, -9223372036854775809, Raw("1e300"), Raw("-1e300"), 1.5, -1, 0,
    2147483648, 9223372036854775807, -9223372036854775808, -2147483649, 4294967296,
    18446744073709551616, Raw("123456789012345678901234567890"), Raw("1e400"), Raw("-1e400"),
    Raw("-0"), Raw("1E+2"), Raw("1e-400"), Raw("0.000001"), 2.5e9,
]
# The core's share of NUM_EDGE (the rest is in the extended catalogue).
NUM_CORE: list[Any] = NUM_EDGE[:11] + [NUM_EDGE[13], NUM_EDGE[14]]
NUM_STRINGS = ["99999999999999999999", "9223372036854775808", "-9223372036854775809", "1e300",
               "-1e300", "-1", "1.5", "0x7fffffff", " 1", "+1", "NaN", "Infinity", "-0", "2147483648"]
DURATIONS = ["9999999999999h", "1e300s", "-5m", "", "99999999999999999999s", "2562048h",
             "9223372036854775807s", "9223372036854775808ns", "-9223372036854775808s", "1h-1s",
             "1.5h", "1d", "P1D", "9999999999999999999m", "153722867280912930m", "h", "5", "0s",
             "1e300", "99999999999999999999"]
ODD_STRINGS = ["\u0301x", "a\u200bb", "\u202etxt", "a\x00b", "\ud800", "\udc00\ud800", "🔑💥",
               "e\u0301", "\ufeff", "\uffff", "\n", " "]
PATHY_STRINGS = ["../..", "%2e%2e", "*", "/", "//", "/fuzz/../secret/fuzz-canary", "\\"]
WRONG_TYPES: list[Any] = [None, True, False, [], {}, 123, Raw("1e300"), -1, ["a"], {"a": None}]
NUMERIC_NAME = re.compile(r"ttl|since|until|interval|version|port|expire|increment|hour|min|"
                          r"length|limit|seq|days|timeout|after|shares|threshold|epoch|size|count",
                          re.I)


def values_for(f: "Field", *, extended: bool = False) -> list[Any]:
    """The single-field mutations of one property: wrong types and edge values for its type."""
    lo, hi = f.minimum, f.maximum
    bounds = [x for x in ((hi + 1) if hi is not None else None, (lo - 1) if lo is not None else None,
                          hi, lo) if x is not None]
    if f.kind == "int":
        vals = bounds + NUM_CORE + NUM_STRINGS[:6] + [True, "abc", [], {}, None, [1], deep_array(40)]
    elif f.kind == "duration":
        vals = NUM_CORE + DURATIONS[:12] + NUM_STRINGS[:4] + [True, [], None, deep_object(40)]
    elif f.kind == "any":
        vals = (NUM_EDGE[:12] + DURATIONS[:10] + NUM_STRINGS[:4] + ODD_STRINGS[:4] + WRONG_TYPES[:5]
                + [[9223372036854775808], [-1, Raw("1e300")], "1,99999999999999999999", "-1,-2",
                   deep_array(40), deep_object(1000)])
    elif f.kind == "bool":
        vals = ["true", "false", 1, 0, -1, "1", "yes", None, [], {}, Raw("1e400"), "\u0301"]
    elif f.kind == "strlist":
        vals = [[], [1, 2], [None], [["a"]], [{}], ["\ud800"], [""], "", "a,b", Raw("1e300"), True, {},
                None, [9223372036854775808], [deep_array(40)], ["\u0301x", "a\u200bb"], ",,,"]
    elif f.kind == "object":
        vals = [[], "x", 1, None, True, {"a": Raw("1e400")}, {"\ud800": 1}, {"": ""},
                deep_object(40), deep_object(1000), {"a": {"b": {"c": []}}},
                {"ttl": 9223372036854775808, "max_versions": Raw("1e300"), "version": "-1"},
                {"default_lease_ttl": "9999999999999h", "max_lease_ttl": Raw("-1e300")}]
    else:  # string
        vals = ([123, Raw("1e300"), -1, True, [], {}, None, ["a"], ""] + ODD_STRINGS[:9]
                + PATHY_STRINGS[:3] + [deep_array(40)])
        if NUMERIC_NAME.search(f.name) or extended:
            vals += NUM_STRINGS[:6] + DURATIONS[:8]
    if extended:
        vals = vals + [v for v in (NUM_EDGE + NUM_STRINGS + DURATIONS + ODD_STRINGS + PATHY_STRINGS
                                   + WRONG_TYPES + [deep_array(1000), deep_object(1000)])
                       if not any(v is w for w in vals)]
        vals += [BIG_STRING, BIG_UNICODE, LIST_10K, LIST_10K_NUM]
    return vals


# A flat catalogue for the all-properties and random cases (nothing heavy).
CATALOGUE: list[Any] = (NUM_EDGE + NUM_STRINGS + DURATIONS + ODD_STRINGS + WRONG_TYPES
                        + [deep_array(40), deep_object(40), deep_array(1000), deep_object(1000)])


# Values the admin mode stores (under names of their own) and the read-back reads again.
STORE_VALUES: list[Any] = CATALOGUE + [
    {"ttl": 9223372036854775808, "version": Raw("1e400")}, [Raw("1e400"), Raw("-1e400")],
    {"\ud800": "\udfff"}, {"": None}, "x" * 100_000, [9223372036854775808] * 1000,
    {"deep": deep_object(1000)}, Raw("1e-400"), {"lease_duration": "9999999999999h"},
]


def random_value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.45:
        return rng.choice(CATALOGUE)
    if r < 0.6:
        return rng.choice([rng.randint(-2**70, 2**70), rng.randint(-10, 10), rng.uniform(-1e308, 1e308),
                           Raw(f"{rng.randint(1, 9)}e{rng.randint(10, 500)}")])
    if r < 0.8:
        alphabet = "a/.%*\\\x00\u0301\u200b\u202e\ud800\udfff🔑é-_:;,{}[]\" "
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    if r < 0.9:
        return [random_value(rng) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "ttl", "version", "", "\ud800"]): random_value(rng) for _ in range(rng.randint(0, 3))}


# ==========================================================================================
# the document
# ==========================================================================================

@dataclass
class Field:
    name: str
    kind: str                      # int, duration, string, bool, strlist, object, any
    minimum: int | None = None
    maximum: int | None = None
    ignored: bool = False          # "Accepted and ignored" / "Ignored" per its description
    where: str = "body"            # body or query

    @classmethod
    def from_schema(cls, name: str, s: dict, where: str) -> "Field":
        kind, lo, hi = "any", None, None
        if "oneOf" in s:
            branches = s["oneOf"]
            types = {b.get("type") for b in branches}
            if "integer" in types or "number" in types:
                kind = "duration"
                for b in branches:
                    if b.get("type") in ("integer", "number"):
                        lo, hi = b.get("minimum"), b.get("maximum")
            elif "array" in types:
                kind = "strlist"
        else:
            t = s.get("type")
            kind = {"integer": "int", "number": "int", "string": "string", "boolean": "bool",
                    "object": "object", "array": "strlist"}.get(t, "any")
            lo, hi = s.get("minimum"), s.get("maximum")
        desc = s.get("description", "") or ""
        ignored = desc.startswith("Accepted and ignored") or desc.startswith("Ignored")
        return cls(name, kind, lo, hi, ignored, where)


@dataclass
class Operation:
    method: str                    # GET, POST, …
    template: str                  # /v1/secret/data/{path}
    auth: str                      # none or token
    native: bool
    fields: list[Field]            # body properties
    query: list[Field]             # declared query parameters (not `list`)
    path_params: list[str]
    has_list: bool
    has_body: bool
    free_form: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def slug(self) -> str:
        s = re.sub(r"[^a-z0-9]+", "-", (self.method + self.template.replace("/api/v2/", "/")
                                        .replace("/v1/", "/")).lower()).strip("-")
        return s[:48]

    @property
    def verb(self) -> str:
        return self.template.rsplit("/", 1)[-1] if self.native else ""


def parse_operations(doc: dict) -> list[Operation]:
    ops: list[Operation] = []
    for path, item in doc["paths"].items():
        for m, spec in item.items():
            if m not in HTTP_METHODS or not isinstance(spec, dict):
                continue
            params = spec.get("parameters", []) or []
            schema = (spec.get("requestBody", {}) or {}).get("content", {}).get("application/json", {}).get("schema")
            ops.append(Operation(
                method=m.upper(), template=path, auth=spec.get("x-tessera-auth", "token"),
                native=path.startswith("/api/v2/"),
                fields=[Field.from_schema(n, s, "body") for n, s in ((schema or {}).get("properties") or {}).items()],
                query=[Field.from_schema(p["name"], p.get("schema", {}) or {}, "query") for p in params
                       if p.get("in") == "query" and p.get("name") != "list"],
                path_params=[p["name"] for p in params if p.get("in") == "path"],
                has_list=any(p.get("in") == "query" and p.get("name") == "list" for p in params),
                has_body=schema is not None,
                free_form=bool(schema and schema.get("additionalProperties"))))
    return ops


# ==========================================================================================
# modes: which names and tokens a request carries
# ==========================================================================================

SHARED_FIELDS = {"token", "uid-token"}
SHARED_SLICES = 6
IDENT_FIELDS = {"name", "names", "path", "path-prefix", "prefix", "folder", "role-name", "am-name",
                "target-name", "target-to-associate", "usc-name", "secret-name", "secret-id",
                "access-id", "lease-id", "lease_id", "tmp-creds-id", "role_id"}
ROLE_VERBS = {"create-role", "delete-role", "get-role"}
AM_VERBS = {"create-auth-method", "auth-method-create-api-key", "delete-auth-method", "auth-method-delete",
            "get-auth-method", "auth-method-get"}
MOUNT_VERBS = {"vault-mount-create", "vault-mount-delete"}

# Operations the admin never fuzzes: they would seal the server, revoke the fuzzing token, or change
# the `secret/` mount's settings for everyone. Operations without authentication are covered by the
# anonymous mode.
ADMIN_EXCLUDED = {"POST /v1/sys/seal", "POST /v1/auth/token/revoke-self", "POST /api/v2/revoke-creds",
                  "POST /v1/secret/config", "POST /v1/sys/init", "POST /v1/sys/unseal"}

NATIVE_WRITE_PREFIXES = ("create-", "delete-", "update-", "set-", "assoc-", "target-create", "target-delete",
                         "usc-create", "usc-update", "usc-delete", "vault-mount-create", "vault-mount-delete",
                         "rotated-secret-create", "rotated-secret-update", "dynamic-secret-create",
                         "dynamic-secret-delete", "auth-method-create", "auth-method-delete", "rotate-secret",
                         "gateway-rotate-secret")
VAULT_WRITE = re.compile(r"^/v1/(secret/(data|metadata|delete|undelete|destroy|config)|kv/|sys/mounts/|sys/seal)")


def is_write(op: Operation) -> bool:
    if op.native:
        return op.verb.startswith(NATIVE_WRITE_PREFIXES)
    return op.method in ("POST", "PUT", "PATCH", "DELETE") and bool(VAULT_WRITE.match(op.template))


@dataclass
class Mode:
    name: str                               # anon, limited, admin
    native_token: str | None = None
    vault_tokens: list[str] = field(default_factory=list)   # rotated through the cases

    # -- identifiers -------------------------------------------------------------------------
    def ident(self, op: Operation, fname: str) -> Any:
        admin = self.name == "admin"
        item = f"/fuzz-admin/{op.slug}/item" if admin else "/fuzz/item"
        if fname in ("role-name",) or (fname == "name" and op.verb in ROLE_VERBS):
            return f"fuzz-admin-{op.slug}" if admin else "fuzz-limited-role"
        if fname == "am-name" or (fname == "name" and op.verb in AM_VERBS):
            return f"/fuzz-admin/{op.slug}/am" if admin else "/fuzz-limited/am"
        if fname == "path" and op.verb in MOUNT_VERBS:
            return f"fuzz-mnt-{op.slug}/" if admin else "database/"
        if fname == "folder":
            return f"/fuzz-admin/{op.slug}/mnt" if admin else "/fuzz"
        if fname == "names":
            return [item]
        if fname in ("prefix", "path-prefix") or (fname == "path" and op.verb.endswith("list")):
            return f"/fuzz-admin/{op.slug}" if admin else "/fuzz"
        if fname in ("lease-id", "lease_id"):
            return f"database/creds/fuzz-admin-{op.slug}/x" if admin else "database/creds/fuzz/x"
        if fname in ("secret-id", "tmp-creds-id"):
            return f"fuzz-admin-{op.slug}" if admin else "fuzz/item"
        if fname in ("access-id", "role_id"):
            return "p-fuzznobody000"
        return item

    def path_param(self, op: Operation, pname: str) -> str:
        admin = self.name == "admin"
        if op.template.startswith("/v1/sys/mounts/") or op.template.startswith("/v1/sys/internal/ui/mounts/"):
            return f"fuzz-mnt-{op.slug}" if admin else "database"
        if pname == "prefix":
            return f"database/creds/fuzz-admin-{op.slug}/" if admin else "database/creds/fuzz/"
        if pname == "name":
            return f"fuzz-admin-{op.slug}" if admin else "fuzz"
        return f"fuzz-admin/{op.slug}/item" if admin else "fuzz/item"

    def safe(self, op: Operation, fname: str, value: Any) -> Any:
        """In admin mode, keeps a mutated identifier under its harmless prefix."""
        if self.name != "admin" or fname not in IDENT_FIELDS:
            return value
        base = self.ident(op, fname)
        if isinstance(base, list):
            base = base[0]
        if isinstance(value, str):
            clean = "".join(ch for ch in value if ch not in "/.*%\\?#")
            if base.endswith("/"):
                return base[:-1] + "-" + clean + "/"
            return base + "-" + clean
        if isinstance(value, list):
            return [self.safe(op, fname, x) if isinstance(x, str) else x for x in value]
        return value

    def vault_token(self, i: int) -> str | None:
        if not self.vault_tokens:
            return None
        return self.vault_tokens[i % len(self.vault_tokens)] if i % 4 == 3 else self.vault_tokens[0]


# ==========================================================================================
# cases
# ==========================================================================================

@dataclass
class Case:
    op: Operation
    desc: str
    method: str
    path: str                          # raw, already percent-encoded where needed
    query: str = ""
    headers: dict = field(default_factory=dict)
    body: bytes | None = None
    body_desc: str = ""
    auth_check: bool = True            # False: the request may address another (unauthenticated) route

    def summary(self) -> str:
        q = ("?" + self.query) if self.query else ""
        url = self.path + q
        if len(url) > 200:
            url = url[:200] + f"…<{len(url)} chars>"
        return f"{self.method} {url}"


def url_part(s: str) -> str:
    """A path segment as sent: ASCII as is (so %2e%2e stays raw), the rest percent-encoded UTF-8."""
    out = []
    for ch in s:
        o = ord(ch)
        if 0x21 <= o < 0x7f and ch not in "#?":
            out.append(ch)
        else:
            out.append(quote(ch.encode("utf-8", "surrogatepass"), safe=""))
    return "".join(out)


def query_value(v: Any) -> str:
    if isinstance(v, Raw):
        return quote(v.text, safe="")
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, str):
        return quote(v.encode("utf-8", "surrogatepass"), safe="")
    if isinstance(v, (int, float)):
        return quote(json.dumps(v), safe="")
    return quote(encode(v), safe="")


PATH_MUTATIONS = ["..", "../..", "%2e%2e", "%2e%2e/%2e%2e/%2e%2e/sys/health", ".%2e/x", "%2E%2E%2F", "a/./b",
                  "%00", "a%00b", "%ff%fe", "%", "%zz", "a//b", "/", "", "x" * 10_000, "x" * 70_000,
                  "\u00e9/\u0301x", "\u202e", "🔑", "%e2%80%ae", "a%2fb", "\\..\\", ";x", "%20", "fuzz/item/",
                  "a\u200bb", "%ed%a0%80", "*", "fuzz/" + "a/" * 500]
ADMIN_PATH_SUFFIXES = ["\u0301x", "a\u200bb", "🔑", "%e2%80%ae", "x" * 10_000, "%00", "%ff", "a%20b"]
TOKEN_HEADERS = ["", "t- x", "t-" + "9" * 5000, "p-x..y", "..", "a..b..c", "t-\u00e9", "t" * 60_000,
                 "t" * 70_000, "p-fuzzadmin0001..", "..p-fuzzadmin0001"]
LIST_VALUES = ["true", "1", "TRUE", "false", "", "%00", "t" * 5000, "true&list=false"]


class CaseBuilder:
    """Deterministic case streams for one operation in one mode."""

    def __init__(self, op: Operation, mode: Mode, seed: int):
        self.op = op
        self.mode = mode
        self.rng = random.Random(f"{seed}:{mode.name}:{op.key}")
        self.n = 0

    # -- baseline -------------------------------------------------------------------------------
    def base_value(self, f: Field) -> Any:
        op = self.op
        if f.name in IDENT_FIELDS:
            v = self.mode.ident(op, f.name)
            if f.kind == "string" and isinstance(v, list):
                v = v[0]
            if f.kind == "strlist" and not isinstance(v, list):
                v = [v]
            return v
        if f.kind == "int":
            lo = f.minimum if f.minimum is not None else 0
            hi = f.maximum if f.maximum is not None else 1
            return max(lo, min(1, hi))
        if f.kind == "duration":
            return 60
        if f.kind == "bool":
            return False
        if f.kind == "object":
            return {"k": "v"}
        known = {"access-type": "access_key", "format": "text", "db-type": "postgres", "rule-type": "item-rule",
                 "state": "active", "since": "1h", "result": "denied", "hashi-url": "http://127.0.0.1:9",
                 "host": "127.0.0.1", "value": "fuzz-value", "capability": "read", "type": "generic",
                 "access-key": "fuzz-wrong-key", "secret_id": "fuzz-wrong-secret", "key": "AAAA",
                 "bound-ips": "127.0.0.1/32", "audit-access": "own", "authentication-credentials": "use-user-creds",
                 "until": "2099-01-01T00:00:00Z", "private-key": None}
        v = known.get(f.name, "fuzz")
        if v is None:
            return None
        if op.template == "/v1/sys/mounts/{path}" and f.name == "type":
            v = "kv"
        if op.verb in MOUNT_VERBS and f.name == "type":
            v = "kv-v1"
        return [v] if f.kind == "strlist" else v

    def base_body(self) -> dict:
        body: dict = {}
        for f in self.op.fields:
            if f.ignored or f.name in ("token", "uid-token"):
                continue
            if f.kind == "any":
                if f.name == "versions":
                    body[f.name] = [1]
                continue
            v = self.base_value(f)
            if v is not None:
                body[f.name] = v
        if self.op.template.endswith("/secret/data/{path}") and self.op.method in ("POST", "PATCH"):
            body = {"data": {"k": "v"}}
        elif self.op.free_form and not body:
            body = {"k": "v"}
        return body

    def base_query(self) -> dict:
        return {}

    def path_values(self) -> dict:
        return {p: url_part(self.mode.path_param(self.op, p)) for p in self.op.path_params}

    # -- assembling a case ----------------------------------------------------------------------
    def make(self, desc: str, *, body: dict | None = None, raw: bytes | None = None, raw_desc: str = "",
             paths: dict | None = None, query: list[tuple[str, str]] | None = None, method: str | None = None,
             headers: dict | None = None, no_token: bool = False, content_type: str | None = "",
             with_list: bool = False) -> Case:
        op, mode = self.op, self.mode
        if content_type == "":
            # Vault's PATCH takes JSON merge patches only.
            content_type = "application/merge-patch+json" if (method or op.method) == "PATCH" else "application/json"
        self.n += 1
        h: dict = {}
        path = op.template
        for p, v in (paths if paths is not None else self.path_values()).items():
            path = path.replace("{" + p + "}", v)
        q = list(query or [])
        if with_list:
            q.append(("list", "true"))
        data: bytes | None = None
        bdesc = raw_desc
        if raw is not None:
            data = raw
        elif body is not None:
            b = dict(body)
            if op.native and mode.native_token and not no_token:
                b["token"] = mode.native_token
            data = encode(b).encode("utf-8", "surrogatepass")
            shown = dict(b)
            if "token" in shown and shown["token"] == mode.native_token:
                shown["token"] = f"<{mode.name} token>"
            bdesc = describe(shown)
        if data is not None and content_type:
            h["Content-Type"] = content_type
        if not op.native and not no_token:
            tok = mode.vault_token(self.n)
            if tok:
                h["X-Vault-Token"] = tok
        if headers:
            h.update(headers)
        return Case(op, desc, method or op.method, path, "&".join(f"{k}={v}" for k, v in q), h, data, bdesc)

    def body_or_none(self, body: dict) -> dict | None:
        return body if (self.op.has_body or self.op.native) else None

    # -- the core ---------------------------------------------------------------------------------
    def core(self) -> Iterator[Case]:
        op, mode = self.op, self.mode
        base = self.base_body()
        yield self.make("baseline", body=self.body_or_none(base))
        if op.has_list:
            yield self.make("baseline list=true", body=None, with_list=True)
            yield self.make("LIST method", body=None, method="LIST")
        yield from self.whole_body(base)
        if mode.name != "admin":
            yield from self.path_mutations(base)
        else:
            yield from self.admin_path_mutations(base)
        if mode.name == "anon" and not op.native:
            for t in TOKEN_HEADERS:
                yield self.make(f"X-Vault-Token {describe(t)}", body=self.body_or_none(base), no_token=True,
                                headers={"X-Vault-Token": t.encode("utf-8").decode("latin-1")})
        if mode.name == "anon" and op.native:
            yield self.make("token as X-Vault-Token header only", body=base,
                            headers={"X-Vault-Token": "p-fuzzadmin0001..wrong"})
        yield from self.single_fields(base, extended=False)
        if mode.name == "admin":
            yield from self.stored_values()
        yield from self.heavy(base)
        yield from self.all_fields(base, 3 if mode.name == "admin" else 6)

    def whole_body(self, base: dict) -> Iterator[Case]:
        op, mode = self.op, self.mode
        bodyless = op.method in ("GET", "DELETE", "HEAD") and not op.native
        big = {**base, "pad": "a" * (2 * 1024 * 1024)}
        if op.native and mode.native_token:
            big["token"] = mode.native_token
        big_raw = encode(big).encode()
        if bodyless:
            yield self.make("GET with invalid JSON body", raw=b'{"a":', raw_desc='{"a":')
            yield self.make("GET with a 2 MB body", raw=big_raw, raw_desc=f"<{len(big_raw)} bytes: baseline + pad 'a'*2MiB>")
            return
        tok = mode.native_token if op.native else None
        pre = ('{"token":' + json.dumps(tok) + ",") if tok else "{"
        raws: list[tuple[bytes, str]] = [] if tok else [
            (b"", "<empty body>"), (b"null", "null"), (b"[]", "[]"), (b"[1,2]", "[1,2]"), (b'"str"', '"str"'),
            (b"42", "42"), (b"1e400", "1e400"), (b"true", "true"), (b"{", "{"), (b'{"a":', '{"a":'),
            (b"not json", "not json"), (b"{}}", "{}}"), (b'{"a":1,}', '{"a":1,}'),
            (b"\xff\xfe{\x00}", "<invalid UTF-8>"), (b"\xef\xbb\xbf" + encode(base).encode(), "<UTF-8 BOM + baseline>"),
            (("[" * 1000 + "]" * 1000).encode(), "<array nested 1000 deep>"),
            (('{"a":' * 1000 + "1" + "}" * 1000).encode(), "<object nested 1000 deep>"),
            (("[" * 40 + "]" * 40).encode(), "<array nested 40 deep>"),
            (('{"a":' * 40 + "1" + "}" * 40).encode(), "<object nested 40 deep>"),
            (("[" * 5000).encode(), "<5000 unclosed [>"),
        ]
        if tok:
            # The same shapes after a valid token, so that what follows authentication is reached.
            raws += [((pre + '"name":').encode(), f"{pre}\"name\":  (truncated)"),
                     ((pre + '"a":' + "[" * 1000 + "]" * 1000 + "}").encode(), f"{pre}\"a\":<array nested 1000 deep>}}"),
                     ((pre + '"token":"t-x"}').encode(), f"{pre}\"token\":\"t-x\"}}  (duplicate key)"),
                     ((pre + '"a":1e400}').encode(), f"{pre}\"a\":1e400}}")]
        else:
            raws.append((b'{"token":"t-x","token":"t-y"}', '{"token":"t-x","token":"t-y"}'))
        raws.append((big_raw, f"<{len(big_raw)} bytes: baseline + pad 'a'*2MiB>"))
        for raw, d in raws:
            yield self.make(f"whole body {d[:60]}", raw=raw, raw_desc=d)
        b = encode({**base, **({"token": tok} if tok else {})}).encode()
        shown = describe({**base, **({"token": f"<{mode.name} token>"} if tok else {})})
        yield self.make("no Content-Type", raw=b, raw_desc=shown, content_type=None)
        yield self.make("Content-Type text/plain", raw=b, raw_desc=shown, content_type="text/plain")
        yield self.make("form-encoded body", raw=b"name=%2Ffuzz%2Fitem&token=x&version=9223372036854775808",
                        raw_desc="name=%2Ffuzz%2Fitem&token=x&version=9223372036854775808",
                        content_type="application/x-www-form-urlencoded")
        if mode.name == "anon" or not op.native:
            many = {f"k{i}": i for i in range(20_000)}
            yield self.make("20 000 unknown keys", body={**base, **many})

    def path_mutations(self, base: dict) -> Iterator[Case]:
        op = self.op
        body = None if op.method in ("GET", "DELETE") else self.body_or_none(base)
        for p in op.path_params:
            for m in PATH_MUTATIONS:
                paths = self.path_values()
                paths[p] = url_part(m) if not m.isascii() else m
                c = self.make(f"path {{{p}}} = {describe(m)}", body=body, paths=paths)
                # An empty parameter is the parent path, e.g. sys/internal/ui/mounts, which Vault
                # serves without a token.
                c.auth_check = m not in ("", "/")
                yield c
            paths = self.path_values()
            paths[p] = paths[p] + "/" + url_part("\u0301x")
            yield self.make(f"path {{{p}}} + '/\\u0301x'", body=body, paths=paths)
        if op.has_list:
            for v in LIST_VALUES:
                yield self.make(f"list={describe(v)}", query=[("list", v)])

    def stored_values(self) -> Iterator[Case]:
        """Admin writes that succeed and leave extreme values stored, each under its own name, for
        the read-back after the run (KV v1, KV v2 and native JSON / key-value secrets)."""
        op = self.op
        if op.method != "POST":
            return
        for i, v in enumerate(STORE_VALUES):
            if op.template in ("/v1/kv/{path}", "/v1/secret/data/{path}"):
                paths = self.path_values()
                paths["path"] = paths["path"] + f"-s{i}"
                data = {"k": v, "n": i}
                body = data if op.template == "/v1/kv/{path}" else {"data": data}
                yield self.make(f"store {describe(v, 60)}", body=body, paths=paths)
            elif op.verb == "create-secret":
                name = self.mode.ident(op, "name") + f"-s{i}"
                fmt = ("json", "key-value", "text")[i % 3]
                yield self.make(f"store {fmt} {describe(v, 60)}",
                                body={"name": name, "value": encode({"k": v}), "format": fmt})

    def admin_path_mutations(self, base: dict) -> Iterator[Case]:
        op = self.op
        body = None if op.method in ("GET", "DELETE") else self.body_or_none(base)
        for p in op.path_params:
            for s in ADMIN_PATH_SUFFIXES:
                paths = self.path_values()
                paths[p] = paths[p] + "-" + url_part(s)
                yield self.make(f"path {{{p}}} + {describe(s)}", body=body, paths=paths)

    def fields_to_mutate(self) -> list[Field]:
        skip = {"token"} if self.mode.native_token else set()
        return [f for f in self.op.fields + self.op.query if f.name not in skip]

    def with_value(self, base: dict, f: Field, v: Any, desc: str) -> Case:
        v = self.mode.safe(self.op, f.name, v)
        if f.where == "query":
            return self.make(desc, query=[(f.name, query_value(v))])
        body = dict(base)
        body[f.name] = v
        return self.make(desc, body=body)

    def single_fields(self, base: dict, extended: bool) -> Iterator[Case]:
        """Every value of every property, round-robin over the properties.

        The properties every native verb shares (token, uid-token) go through one parser: in the
        core each verb gets a different slice of their values, so all of them are sent overall."""
        fields = [f for f in self.fields_to_mutate() if extended or not f.ignored]
        lists = []
        h = zlib.crc32(self.op.key.encode())
        for f in fields:
            vals = values_for(f, extended=extended)
            if self.op.native and f.name in SHARED_FIELDS and not extended:
                vals = [v for j, v in enumerate(vals) if j % SHARED_SLICES == h % SHARED_SLICES]
            elif self.mode.name == "admin" and f.kind == "string" and not extended:
                vals = vals[:12]           # the admin subset: wrong types and the first odd strings
            lists.append((f, vals))
        depth = max((len(v) for _, v in lists), default=0)
        for i in range(depth):
            for f, vals in lists:
                if i < len(vals):
                    yield self.with_value(base, f, vals[i], f"{f.where} field {f.name!r} ({f.kind}) = {describe(vals[i], 60)}")

    def heavy(self, base: dict) -> Iterator[Case]:
        """A 100 KB string and a 10 000-item list, in one mode per operation (they are slow)."""
        h = zlib.crc32(self.op.key.encode())
        if self.op.auth == "none" or self.op.key in ADMIN_EXCLUDED:
            owner = ("anon", "limited")[h % 2]          # not in the admin subset
        else:
            owner = HEAVY_MODES[h % len(HEAVY_MODES)]
        if owner != self.mode.name:
            return
        fields = self.fields_to_mutate()
        if not fields:
            if self.op.has_body or self.op.native:
                yield self.make("unknown field 'x' = 'a'*100000", body={**base, "x": BIG_STRING})
                yield self.make("unknown field 'x' = ['x']*10000", body={**base, "x": LIST_10K})
            return
        strs = [f for f in fields if f.kind in ("string", "any", "strlist")] or fields
        lists = [f for f in fields if f.kind in ("strlist", "any", "object")] or fields
        f1 = strs[h % len(strs)]
        f2 = lists[(h // 7) % len(lists)]
        yield self.with_value(base, f1, BIG_STRING, f"{f1.where} field {f1.name!r} = 'a'*100000")
        yield self.with_value(base, f2, LIST_10K, f"{f2.where} field {f2.name!r} = ['x']*10000")

    def all_fields(self, base: dict, count: int) -> Iterator[Case]:
        fields = self.fields_to_mutate()
        if not fields:
            return
        for k in range(count):
            body = dict(base)
            query = []
            for f in fields:
                v = self.mode.safe(self.op, f.name, self.rng.choice(CATALOGUE))
                if f.where == "query":
                    query.append((f.name, query_value(v)))
                else:
                    body[f.name] = v
            yield self.make(f"all properties at once #{k}", body=self.body_or_none(body), query=query)

    # -- beyond the core ------------------------------------------------------------------------------
    def extended(self) -> Iterator[Case]:
        base = self.base_body()
        yield from self.single_fields(base, extended=True)
        yield from self.all_fields(base, len(CATALOGUE))

    def random_cases(self) -> Iterator[Case]:
        base = self.base_body()
        fields = self.fields_to_mutate()
        k = 0
        while True:
            k += 1
            body = dict(base)
            query = []
            picked = self.rng.sample(fields, min(len(fields), self.rng.randint(1, 4))) if fields else []
            for f in picked:
                v = self.mode.safe(self.op, f.name, random_value(self.rng))
                if f.where == "query":
                    query.append((f.name, query_value(v)))
                else:
                    body[f.name] = v
            if self.op.free_form or not fields:
                body[self.rng.choice(["x", "ttl", "version", "\ud800", ""])] = random_value(self.rng)
            yield self.make(f"random #{k}", body=self.body_or_none(body), query=query)

    def stream(self) -> Iterator[Case]:
        if CASES <= 0:
            yield from self.core()
            rnd = self.random_cases()
            for _ in range(RANDOM_EXTRA if self.mode.name != "admin" else 0):
                yield next(rnd)
            return
        n = 0
        for gen in (self.core(), self.extended(), self.random_cases()):
            for c in gen:
                if n >= CASES:
                    return
                n += 1
                yield c


# ==========================================================================================
# running
# ==========================================================================================

@dataclass
class Failure:
    kind: str
    mode: str
    op: str
    request: str
    desc: str
    body: str
    status: Any
    response: str

    def text(self) -> str:
        body = self.body if len(self.body) <= 400 else self.body[:400] + "…"
        return (f"[{self.kind}] mode={self.mode} op={self.op!r} case={self.desc!r}\n"
                f"    request: {self.request}\n    body: {body}\n    -> {self.status}: {self.response[:400]}")


class FuzzRun:
    """The server, the document, the tokens and everything the run collected."""

    def __init__(self, srv):
        self.srv = srv
        self.session = requests.Session()
        self.failures: list[Failure] = []
        self.crashes: list[str] = []
        self.seals: list[str] = []
        self.requests = 0
        self.per_mode: dict[str, int] = {}
        self.statuses: dict[str, dict[Any, int]] = {}
        self.covered: dict[str, set[str]] = {}
        self.closed: list[str] = []
        self.slow: list[tuple[float, str]] = []
        self.restarts = 0
        self.lock = threading.RLock()
        self.inflight: dict[int, tuple[str, Case]] = {}
        self.doc: dict = {}
        self.ops: list[Operation] = []
        self.started = time.monotonic()

    # -- admin helpers (fresh connections, never the fuzzing session) --------------------------------
    @property
    def url(self) -> str:
        return self.srv.url

    @property
    def admin_vault(self) -> str:
        return f"{self.srv.admin_id}..{self.srv.admin_key}"

    def native(self, verb: str, body: dict, token: str | None) -> requests.Response:
        b = dict(body)
        if token:
            b["token"] = token
        return requests.post(f"{self.url}/api/v2/{verb}", json=b, timeout=30)

    def admin_ok(self, verb: str, body: dict) -> Any:
        r = self.native(verb, body, self.admin_token)
        assert r.status_code == 200, f"setup {verb} {body}: HTTP {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    def vault(self, method: str, path: str, body: Any = None, token: str | None = None) -> requests.Response:
        h = {"X-Vault-Token": token or self.admin_vault}
        return requests.request(method, f"{self.url}/v1/{path}", json=body, headers=h, timeout=30)

    def login(self, access_id: str, access_key: str) -> str:
        r = self.native("auth", {"access-id": access_id, "access-key": access_key, "access-type": "access_key"}, None)
        assert r.status_code == 200, f"login {access_id}: HTTP {r.status_code} {r.text[:300]}"
        return r.json()["token"]

    # -- state before the run -------------------------------------------------------------------------
    def setup(self) -> None:
        """Canaries, data the limited identity may read, the limited identity, the tokens."""
        srv = self.srv
        self.admin_token = self.login(srv.admin_id, srv.admin_key)
        self.canary_native = "canary-" + os.urandom(12).hex()
        self.canary_kv = {"canary": "kv-" + os.urandom(12).hex(), "n": 1}
        self.admin_ok("create-secret", {"name": "/fuzz-canary/native", "value": self.canary_native})
        r = self.vault("POST", "secret/data/fuzz-canary", {"data": self.canary_kv})
        assert r.status_code in (200, 204), f"KV canary: {r.status_code} {r.text[:300]}"
        # Data under /fuzz that the limited token may read, so that its reads reach real items.
        self.admin_ok("create-secret", {"name": "/fuzz/item", "value": "fuzz-item-value"})
        for i in range(2):
            r = self.vault("POST", "secret/data/fuzz/item", {"data": {"v": i}})
            assert r.status_code in (200, 204), r.text
        r = self.vault("POST", "kv/fuzz/item", {"k": "v"})
        assert r.status_code in (200, 204), r.text
        # The limited identity.
        am = self.admin_ok("create-auth-method", {"name": "/fuzz-limited/am"})
        self.limited_id, self.limited_key = am["access_id"], am["access_key"]
        self.admin_ok("create-role", {"name": "fuzz-limited-role"})
        for path in ("/fuzz/*", "/secret/fuzz/*", "/kv/fuzz/*"):
            self.admin_ok("set-role-rule", {"role-name": "fuzz-limited-role", "path": path,
                                            "capability": ["read", "list"], "rule-type": "item-rule"})
        self.admin_ok("assoc-role-am", {"role-name": "fuzz-limited-role", "am-name": "/fuzz-limited/am"})
        self.limited_token = self.login(self.limited_id, self.limited_key)
        # A separate admin token for fuzzing (the checks use their own credentials).
        self.admin_fuzz_token = self.login(srv.admin_id, srv.admin_key)
        self.mounts_before = self.mount_table()
        self.modes = {
            "anon": Mode("anon"),
            "limited": Mode("limited", self.limited_token, [self.limited_token, f"{self.limited_id}..{self.limited_key}"]),
            "admin": Mode("admin", self.admin_fuzz_token, [self.admin_fuzz_token]),
        }

    def mount_table(self) -> dict:
        r = self.vault("GET", "sys/mounts")
        assert r.status_code == 200, f"GET sys/mounts: {r.status_code} {r.text[:300]}"
        j = r.json()
        data = j.get("data") if isinstance(j.get("data"), dict) else j
        return {k: {"type": v.get("type"), "options": v.get("options"), "description": v.get("description"),
                    "uuid": v.get("uuid"), "accessor": v.get("accessor")}
                for k, v in data.items() if isinstance(v, dict) and "type" in v}

    # -- liveness --------------------------------------------------------------------------------------
    def health(self) -> int | None:
        try:
            return requests.get(f"{self.url}/v1/sys/health", timeout=5).status_code
        except requests.RequestException:
            return None

    def log_tail(self) -> str:
        """What the server logged after its start-up banner (a crash's message is there)."""
        text = self.srv.read_log()
        i = text.rfind("==> Tessera server listening")
        if i >= 0:
            text = text[i:].split("\n", 1)[1] if "\n" in text[i:] else ""
        return text[-2500:].strip() or "(nothing logged after start-up)"

    def recover(self, why: str) -> None:
        """After a crash: a fresh dev server with the same admin, state set up again."""
        self.restarts += 1
        rc = self.srv.proc.poll() if self.srv.proc else None
        self.crashes.append(f"{why}\n--- exit status {rc}; server log after start-up ---\n{self.log_tail()}")
        if self.restarts > MAX_RESTARTS:
            pytest.fail(f"the server crashed {self.restarts} times; giving up.\n" + "\n\n".join(self.crashes[-3:]))
        self.srv.kill()
        self.srv.start()
        self.setup()

    def unseal(self, why: str) -> None:
        with self.lock:
            self.seals.append(why)
        m = re.search(r"Unseal Key:\s+(\S+)", self.srv.read_log())
        assert m, "sealed, and no unseal key in the dev server's log"
        r = requests.post(f"{self.url}/v1/sys/unseal", json={"key": m.group(1)}, timeout=10)
        assert r.status_code == 200 and not r.json().get("sealed"), f"could not unseal: {r.status_code} {r.text[:300]}"

    def check_after_op(self, mode: Mode, op: Operation, last: Case | None) -> bool:
        """False when the server process is gone (the caller handles the crash)."""
        if not self.srv.is_running():
            return False
        status = self.health()
        if status == 200:
            return True
        if not self.srv.is_running():
            return False
        where = f"mode={mode.name} op={op.key!r}, last case {last.desc if last else '-'!r}"
        sealed = None
        try:
            sealed = requests.get(f"{self.url}/v1/sys/seal-status", timeout=5).json().get("sealed")
        except (requests.RequestException, ValueError):
            pass
        if sealed:
            self.failures.append(Failure("sealed", mode.name, op.key, last.summary() if last else "",
                                         last.desc if last else "", last.body_desc if last else "", status,
                                         "the server was sealed after this operation"))
            self.unseal(f"sealed after {where}")
            return True
        self.failures.append(Failure("health", mode.name, op.key, last.summary() if last else "",
                                     last.desc if last else "", "", status, f"/v1/sys/health answered {status}"))
        return True

    def refresh_token(self, mode: Mode) -> None:
        """A fuzzed operation may have revoked the mode's own token (revoke-self, revoke-creds …)."""
        if mode.name == "anon":
            return
        r = requests.get(f"{self.url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": mode.native_token},
                         timeout=10)
        if r.status_code == 200:
            return
        if mode.name == "limited":
            tok = self.login(self.limited_id, self.limited_key)
        else:
            tok = self.login(self.srv.admin_id, self.srv.admin_key)
        mode.native_token = tok
        mode.vault_tokens[0] = tok

    # -- one request -------------------------------------------------------------------------------------
    def fail(self, kind: str, mode: Mode, case: Case, status: Any, text: str) -> None:
        with self.lock:
            self.failures.append(Failure(kind, mode.name, case.op.key, case.summary(), case.desc, case.body_desc,
                                         status, text))

    def count(self, mode: Mode, status: Any) -> None:
        with self.lock:
            d = self.statuses.setdefault(mode.name, {})
            d[status] = d.get(status, 0) + 1

    def send(self, mode: Mode, case: Case, session: requests.Session) -> bool:
        """One request; False when the server process died (nothing is recorded then)."""
        url = self.url + case.path + (("?" + case.query) if case.query else "")
        req = requests.Request(case.method, self.url + "/", headers=case.headers, data=case.body)
        prep = session.prepare_request(req)
        prep.url = url                     # exactly as built: no dot-segment removal, no re-quoting
        with self.lock:
            self.requests += 1
            self.per_mode[mode.name] = self.per_mode.get(mode.name, 0) + 1
            self.covered.setdefault(mode.name, set()).add(case.op.key)
        t0 = time.monotonic()
        try:
            r = session.send(prep, timeout=HTTP_TIMEOUT, allow_redirects=False)
        except requests.Timeout as e:
            if not self.srv.is_running():
                return False
            self.fail("no answer (time-out)", mode, case, "timeout", repr(e)[:300])
            self.count(mode, "timeout")
            session.close()
            return True
        except requests.RequestException as e:
            session.close()
            time.sleep(0.05)
            if not self.srv.is_running():
                return False
            big = (case.body is not None and len(case.body) > MAX_BODY) or len(case.path) + len(case.query) > 60_000 \
                or any(len(str(v)) > 60_000 for v in case.headers.values())
            self.count(mode, "closed")
            if not big:                    # an over-size request may be answered by closing the connection
                self.fail("closed without an answer", mode, case, "connection closed", repr(e)[:300])
            return True
        dt = time.monotonic() - t0
        if dt > 1.0:
            with self.lock:
                self.slow.append((dt, f"{mode.name} {case.summary()} ({case.desc})"))
        st = r.status_code
        self.count(mode, st)
        if st >= 500 or st < 200:
            self.fail(f"HTTP {st}", mode, case, st, r.text[:600])
        elif 200 <= st < 300 and mode.name == "anon" and case.op.auth == "token" and case.auth_check:
            self.fail("2xx without a token", mode, case, st, r.text[:600])
        elif 200 <= st < 300 and mode.name == "limited" and is_write(case.op) and case.auth_check:
            self.fail("2xx on a write with the limited token", mode, case, st, r.text[:600])
        return True

    # -- operations --------------------------------------------------------------------------------------
    def selected_ops(self) -> list[Operation]:
        if not OPS_FILTER:
            return self.ops
        return [op for op in self.ops if any(s in op.key for s in OPS_FILTER)]

    def run_op(self, name: str, op: Operation, session: requests.Session, stop: threading.Event | None,
               skip: int = 0) -> tuple[str, Case | None, int]:
        """Sends the op's cases from number `skip` on: ("ok" | "stopped" | "crashed", last case, its number)."""
        mode = self.modes[name]
        last, i = None, -1
        t_op = time.monotonic()
        for i, case in enumerate(CaseBuilder(op, mode, SEED).stream()):
            if i < skip:
                continue
            if stop is not None and stop.is_set():
                return "stopped", last, i
            last = case
            with self.lock:
                self.inflight[threading.get_ident()] = (name, case)
            alive = self.send(mode, case, session)
            with self.lock:
                self.inflight.pop(threading.get_ident(), None)
            if not alive:
                return "crashed", case, i
        if not self.check_after_op(mode, op, last):
            return "crashed", last, i
        dt = time.monotonic() - t_op
        if dt > 3:
            with self.lock:
                self.slow.append((dt, f"{name} {op.key} (whole operation)"))
        return "ok", last, i

    def run_parallel(self, name: str, ops: list[Operation]) -> tuple[set[str], dict[str, tuple[Case | None, int]]]:
        """Ops spread over WORKERS sessions; stops all of them at the first crash."""
        todo = list(ops)
        done: set[str] = set()
        crashed: dict[str, tuple[Case | None, int]] = {}
        stop = threading.Event()
        errors: list[BaseException] = []

        def worker():
            session = requests.Session()
            try:
                while not stop.is_set():
                    with self.lock:
                        if not todo:
                            return
                        op = todo.pop(0)
                    result, case, i = self.run_op(name, op, session, stop)
                    with self.lock:
                        if result == "ok":
                            done.add(op.key)
                        elif result == "crashed":
                            crashed[op.key] = (case, i)
                            stop.set()
            except BaseException as e:     # a bug of the fuzzer itself: re-raised below
                errors.append(e)
                stop.set()
            finally:
                session.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, WORKERS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        if stop.is_set() and not crashed:
            crashed["?"] = (None, -1)
        return done, crashed

    def replay(self, name: str, op: Operation) -> None:
        """After a crash: the op's cases once more, one at a time, to name the request that kills the server."""
        skip = 0
        for _ in range(MAX_CRASHES_PER_OP):
            result, case, i = self.run_op(name, op, self.session, None, skip)
            if result != "crashed":
                return
            self.session.close()
            if case is not None:
                self.fail("crash", self.modes[name], case, "server process died",
                          "the server process exited during this request (replayed alone: reproducible)")
            self.recover(f"replayed alone, this request kills the server: mode={name} "
                         f"{case.summary() if case else op.key} ({case.desc if case else ''}) "
                         f"body={case.body_desc[:300] if case else ''}")
            skip = i + 1

    def run_mode(self, name: str) -> list[Failure]:
        start_fail = len(self.failures)
        t0 = time.monotonic()
        ops = self.selected_ops()
        if name == "admin":
            ops = [op for op in ops if op.auth == "token" and op.key not in ADMIN_EXCLUDED]
        # Operations that may end the mode's token or change global state run alone, at the end.
        tail = [op for op in ops if any(t in op.key for t in SEQUENTIAL_OPS)]
        pending = [op for op in ops if op not in tail]
        while pending:
            done, crashed = self.run_parallel(name, pending)
            pending = [op for op in pending if op.key not in done]
            if not crashed:
                break
            inflight = ", ".join(k for k in crashed if k != "?")
            self.recover(f"mode={name}: the server died while these ran in parallel: {inflight or '?'} "
                         "(each is replayed alone below)")
            for op in [op for op in pending if op.key in crashed]:
                self.replay(name, op)
            pending = [op for op in pending if op.key not in crashed]
        for op in tail:
            self.replay(name, op)
            self.refresh_token(self.modes[name])
        st = self.statuses.get(name, {})
        hist = ", ".join(f"{k}: {v}" for k, v in sorted(st.items(), key=lambda kv: str(kv[0])))
        print(f"\nfuzz[{name}]: {len(ops)} operations, {self.per_mode.get(name, 0)} requests, "
              f"{time.monotonic() - t0:.1f}s  ({hist})", flush=True)
        return self.failures[start_fail:]


def report(run: FuzzRun, failures: list[Failure], title: str) -> str:
    groups: dict[tuple, list[Failure]] = {}
    for f in failures:
        key = (f.kind, f.mode, f.op, str(f.status), re.sub(r"[0-9a-f-]{36}", "<uuid>", f.response[:120]))
        groups.setdefault(key, []).append(f)
    path = Path(run.srv.workdir) / "fuzz-failures.json"
    existing = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(existing + [f.__dict__ for f in failures], indent=1, default=str))
    lines = [f"{title}: {len(failures)} failing requests in {len(groups)} groups (all of them in {path})"]
    for i, (key, fs) in enumerate(groups.items()):
        if i >= 80:
            lines.append(f"... {len(groups) - 80} more groups in {path}")
            break
        lines.append(f"\n#{i + 1} ({len(fs)}x) " + fs[0].text())
        for other in fs[1:3]:
            lines.append(f"    also: {other.desc!r}: {other.request[:150]} body={other.body[:150]}")
    if run.crashes:
        lines.append("\ncrashes:\n" + "\n\n".join(run.crashes))
    return "\n".join(lines)


# ==========================================================================================
# fixtures and tests
# ==========================================================================================

def fetch_document(url: str) -> dict:
    last = ""
    for _ in range(3):
        try:
            r = requests.get(f"{url}/v1/sys/openapi", timeout=HTTP_TIMEOUT)
            if r.status_code == 200:
                return r.json()
            last = f"HTTP {r.status_code} {r.text[:300]}"
        except (requests.RequestException, ValueError) as e:
            last = repr(e)
        time.sleep(1)
    pytest.fail(f"GET /v1/sys/openapi did not serve the OpenAPI document: {last}")


@pytest.fixture(scope="module")
def fuzz(fuzz_server) -> FuzzRun:
    run = FuzzRun(fuzz_server)
    run.doc = fetch_document(fuzz_server.url)
    run.ops = parse_operations(run.doc)
    assert run.ops, "the OpenAPI document declares no operations"
    run.setup()
    yield run
    run.session.close()


def test_openapi_document_is_served(fuzz):
    """Both addresses serve the same OpenAPI 3 document, and every operation says how it authenticates."""
    doc = fuzz.doc
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    r = requests.get(f"{fuzz.url}/api/v2/openapi.json", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"/api/v2/openapi.json: HTTP {r.status_code} {r.text[:200]}"
    assert r.json() == doc, "/api/v2/openapi.json and /v1/sys/openapi differ"
    missing = [op.key for op in fuzz.ops if op.auth not in ("none", "token")]
    assert not missing, f"operations without x-tessera-auth none/token: {missing}"
    print(f"\nfuzz: the document declares {len(fuzz.ops)} operations", flush=True)


@pytest.mark.parametrize("mode", ["anon", "limited", "admin"])
def test_fuzz(fuzz, mode):
    if mode not in MODES:
        pytest.skip(f"mode {mode} not in TESSERA_FUZZ_MODES")
    failures = fuzz.run_mode(mode)
    assert not failures, report(fuzz, failures, f"fuzz[{mode}]")


READ_BACK_LIMIT = 3000          # items read back after the run (each through up to 6 requests)


def read_back(run: FuzzRun) -> list[Failure]:
    """Everything the run stored, read back natively and through the Vault KV engines.

    A stored value that a later read cannot handle (a KV v1 value that crashes every read of it)
    shows only here: the fuzzed reads and writes address different names."""
    failures: list[Failure] = []
    session = requests.Session()
    n = 0

    def get(what: str, method: str, path: str, **kw) -> Any:
        nonlocal n, session
        n += 1
        with run.lock:
            run.requests += 1
            run.per_mode["read-back"] = run.per_mode.get("read-back", 0) + 1
        try:
            r = session.request(method, run.url + path, timeout=HTTP_TIMEOUT, **kw)
        except requests.RequestException as e:
            session.close()
            session = requests.Session()
            time.sleep(0.05)
            dead = not run.srv.is_running()
            failures.append(Failure("crash" if dead else "closed without an answer", "read-back", what,
                                    f"{method} {path[:200]}", "read back a stored item", str(kw.get("json", ""))[:300],
                                    "server process died" if dead else "connection closed", repr(e)[:300]))
            if dead:
                run.recover(f"read-back: {method} {path[:300]} body={str(kw.get('json', ''))[:300]} kills the server")
            return None
        if r.status_code >= 500:
            failures.append(Failure(f"HTTP {r.status_code}", "read-back", what, f"{method} {path[:200]}",
                                    "read back a stored item", str(kw.get("json", ""))[:300], r.status_code, r.text[:600]))
        return r

    token = run.login(run.srv.admin_id, run.srv.admin_key)
    vh = {"X-Vault-Token": run.admin_vault}
    r = get("list-items", "POST", "/api/v2/list-items", json={"token": token, "path": "/"})
    items = (r.json().get("items") or []) if r is not None and r.status_code == 200 else []
    for it in items[:READ_BACK_LIMIT]:
        name = it.get("item_name") or ""
        if not run.srv.is_running():
            break
        get("get-secret-value", "POST", "/api/v2/get-secret-value", json={"token": token, "names": [name]})
        get("describe-item", "POST", "/api/v2/describe-item", json={"token": token, "name": name})
        last = it.get("last_version")
        if isinstance(last, int) and last > 1:
            get("get-secret-value", "POST", "/api/v2/get-secret-value",
                json={"token": token, "names": [name], "version": 1})
        rest = "/".join(url_part(seg) for seg in name.split("/")[2:])
        top = name.split("/")[1] if name.count("/") >= 2 else ""
        views = {"kv": [("kv-v1", "kv/")], "secret": [("kv-v2", "secret/")],
                 "fuzz-admin": [("kv-v1", "fuzz-view1/"), ("kv-v2", "fuzz-view2/")]}.get(top, [])
        for kind, mount in views:
            if kind == "kv-v1":
                get("GET /v1/kv/{path}", "GET", f"/v1/{mount}{rest}", headers=vh)
            else:
                get("GET /v1/secret/data/{path}", "GET", f"/v1/{mount}data/{rest}", headers=vh)
                get("GET /v1/secret/metadata/{path}", "GET", f"/v1/{mount}metadata/{rest}", headers=vh)
    for mount in ("kv/", "secret/metadata/", "fuzz-view1/", "fuzz-view2/metadata/"):
        get("LIST", "GET", f"/v1/{mount}", headers=vh, params={"list": "true"})
    session.close()
    print(f"\nfuzz[read-back]: {min(len(items), READ_BACK_LIMIT)} of {len(items)} stored items, {n} requests",
          flush=True)
    return failures


def test_read_back_what_the_fuzzing_stored(fuzz):
    failures = read_back(fuzz)
    with fuzz.lock:
        fuzz.failures.extend(failures)
    assert not failures, report(fuzz, failures, "fuzz[read-back]")


# ------------------------------------------------------------------------------------------
# raw connections: what requests cannot send (LIST split across packets, pipelining, bad framing)
# ------------------------------------------------------------------------------------------

def raw_exchange(port: int, chunks: list[bytes], expect: int, delay: float = 0.0,
                 shutdown: bool = False, head: bool = False, timeout: float = HTTP_TIMEOUT) -> tuple[list[int], str]:
    """Sends `chunks` on one connection; returns (the statuses of the responses read, how it ended:
    done, eof, reset or timeout). Stops after `expect` final responses."""
    import socket
    statuses: list[int] = []
    buf = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for c in chunks:
                sock.sendall(c)
                if delay:
                    time.sleep(delay)
            if shutdown:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass                                  # the server may close before everything is sent
        deadline = time.monotonic() + timeout
        while True:
            # parse as many complete responses as the buffer holds
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                lines = buf[:head_end].decode("latin-1").split("\r\n")
                m = re.match(r"HTTP/\d\.\d (\d{3})", lines[0])
                if not m:
                    return statuses + [-1], "garbage: " + lines[0][:80]
                st = int(m.group(1))
                hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
                rest = buf[head_end + 4:]
                if 100 <= st < 200:
                    buf = rest
                    continue
                if head or st in (204, 304):
                    buf = rest                   # no body, whatever the headers say
                elif "content-length" in hdrs:
                    n = int(hdrs["content-length"])
                    if len(rest) < n:
                        break
                    buf = rest[n:]
                elif hdrs.get("transfer-encoding", "").lower() == "chunked":
                    end = rest.find(b"0\r\n\r\n")
                    if end < 0:
                        break
                    buf = rest[end + 5:]
                else:
                    break                        # body until EOF
                statuses.append(st)
                if len(statuses) >= expect:
                    return statuses, "done"
            left = deadline - time.monotonic()
            if left <= 0:
                return statuses, "timeout"
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                return statuses, "timeout"
            except OSError:
                return statuses, "reset"
            if not data:
                if buf.startswith(b"HTTP/"):
                    m = re.match(rb"HTTP/\d\.\d (\d{3})", buf)
                    if m:
                        statuses.append(int(m.group(1)))
                return statuses, "eof"
            buf += data


def raw_cases(limited_token: str) -> list[tuple[str, list[bytes], int, dict]]:
    """(name, chunks, responses expected, options)."""
    tok = f"X-Vault-Token: {limited_token}\r\n".encode()
    H = b"Host: 127.0.0.1\r\n"
    lst = b"LIST /v1/secret/metadata/fuzz/ HTTP/1.1\r\n" + H + tok + b"\r\n"
    health = b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"
    last = b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    body = b'{"path":"/fuzz"}'
    native = (b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunked_body = b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in body) + b"0\r\n\r\n"
    rng = random.Random(SEED)
    cases: list[tuple[str, list[bytes], int, dict]] = [
        ("LIST one byte at a time", [bytes([c]) for c in lst[:48]] + [lst[48:]], 1, {"delay": 0.002}),
        ("LIST split after 'LIS'", [lst[:3], lst[3:]], 1, {"delay": 0.05}),
        ("LIST split after 'LIST '", [lst[:5], lst[5:]], 1, {"delay": 0.05}),
        ("LIST with a 15 000-byte target", [b"LIST /v1/secret/metadata/" + b"a" * 15_000 + b" HTTP/1.1\r\n" + H + tok + b"\r\n"], 1, {}),
        ("LIST with a 20 000-byte target", [b"LIST /v1/secret/metadata/" + b"a" * 20_000 + b" HTTP/1.1\r\n" + H + tok + b"\r\n"], 1, {}),
        ("LIST target with '?' and '#'", [b"LIST /v1/secret/metadata/fuzz/?list=false#x HTTP/1.1\r\n" + H + tok + b"\r\n"], 1, {}),
        ("LIST without a target", [b"LIST  HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("LIST without a version", [b"LIST /v1/secret/metadata/\r\n" + H + b"\r\n"], 1, {}),
        ("LIST then GET, pipelined", [lst + last], 2, {}),
        ("GET then LIST then GET, pipelined", [health + lst + last], 3, {}),
        ("50 GETs pipelined", [health * 49 + last], 50, {}),
        ("unknown method FOO", [b"FOO /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("lowercase list", [b"list /v1/secret/metadata/ HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("method LISTX", [b"LISTX /v1/secret/metadata/ HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("method of 40 letters", [b"A" * 40 + b" /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("method M-SEARCH", [b"M-SEARCH * HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("HTTP/2 preface", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], 1, {}),
        ("TLS ClientHello", [bytes.fromhex("16030100a5010000a10303") + bytes(rng.randrange(256) for _ in range(160))], 1, {}),
        ("HTTP/9.9", [b"GET /v1/sys/health HTTP/9.9\r\n" + H + b"\r\n"], 1, {}),
        ("HTTP/1.0 keep-alive", [b"GET /v1/sys/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"], 1, {}),
        ("no Host", [b"GET /v1/sys/health HTTP/1.1\r\nConnection: close\r\n\r\n"], 1, {}),
        ("absolute-form target", [b"GET http://127.0.0.1/v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("OPTIONS *", [b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("CONNECT", [b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("TRACE", [b"TRACE /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("HEAD", [b"HEAD /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"], 1, {"head": True}),
        ("leading CRLFs", [b"\r\n\r\n" + health], 1, {}),
        ("NUL in the target", [b"GET /v1/sys/he\x00alth HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("NUL in the method", [b"G\x00ET /v1/sys/health HTTP/1.1\r\n" + H + b"\r\n"], 1, {}),
        ("bare LF line ends", [b"GET /v1/sys/health HTTP/1.1\nHost: x\n\n"], 1, {}),
        ("header without a colon", [b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n"], 1, {}),
        ("obs-fold header", [b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n"], 1, {}),
        ("70 KB header", [b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"X-A: " + b"a" * 70_000 + b"\r\n\r\n"], 1, {}),
        ("300 headers", [b"GET /v1/sys/health HTTP/1.1\r\n" + H + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 150) for i in range(300)) + b"\r\n"], 1, {}),
        ("Content-Length -1", [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n{}"], 1, {}),
        ("Content-Length 99999999999999999999", [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999\r\n\r\n{}"], 1, {}),
        ("Content-Length 9223372036854775807", [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Length: 9223372036854775807\r\n\r\n{}"], 1, {}),
        ("two different Content-Lengths", [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"], 1, {}),
        ("Content-Length and chunked", [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"], 1, {}),
        ("chunk size fffffffffffffffff", [native + b"fffffffffffffffff\r\n{}\r\n0\r\n\r\n"], 1, {}),
        ("chunk size 7fffffffffffffff", [native + b"7fffffffffffffff\r\n{}"], 1, {"shutdown": True}),
        ("chunk size -1", [native + b"-1\r\n{}\r\n0\r\n\r\n"], 1, {}),
        ("chunked body one byte per chunk", [native + chunked_body], 1, {}),
        ("chunked body sent byte by byte", [native] + [bytes([c]) for c in chunked_body], 1, {"delay": 0.001}),
        ("Transfer-Encoding gzip", [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n{}"], 1, {}),
        ("body shorter than Content-Length, then half-close",
         [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\n" + body], 1, {"shutdown": True}),
        ("Expect: 100-continue with 2 MB announced",
         [b"POST /api/v2/list-items HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 2097152\r\n\r\n"], 1, {}),
        ("Expect: 100-continue, body starting with 'LIST '",
         [b"POST /v1/kv/fuzz/x HTTP/1.1\r\n" + H + tok + b"Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(lst), lst],
         1, {"delay": 0.2}),
        ("random bytes", [bytes(rng.randrange(256) for _ in range(2048))], 1, {}),
        ("random printable line", [bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ /?%:\r\n") for _ in range(2048)) + b"\r\n\r\n"], 1, {}),
    ]
    return cases


def test_raw_http_connections(fuzz):
    """Every connection gets a (non-5xx) answer or a clean close, never a hang, for framing that
    clients other than `requests` send: LIST split across packets, pipelining, bad lengths."""
    run = fuzz
    failures: list[str] = []
    cases = raw_cases(run.modes["limited"].native_token)
    for name, chunks, expect, opts in cases:
        statuses, how = raw_exchange(int(run.srv.port), chunks, expect, **opts)
        with run.lock:
            run.requests += 1
            run.per_mode["raw"] = run.per_mode.get("raw", 0) + 1
        shown = b"".join(chunks)
        shown_s = repr(shown[:160]) + (f"…<{len(shown)} bytes>" if len(shown) > 160 else "")
        if any(st >= 500 or st < 0 for st in statuses):
            failures.append(f"[raw] {name}: statuses {statuses} ({how})\n    sent: {shown_s}")
        elif how == "timeout":
            # A response without Content-Length or chunked framing is delimited by the close: if the
            # close does not come, the client cannot tell that the answer ended, and hangs.
            failures.append(f"[raw] {name}: no complete answer and no close within {HTTP_TIMEOUT}s "
                            f"(got {len(statuses)} of {expect} responses: {statuses})\n    sent: {shown_s}")
        if not run.srv.is_running():
            failures.append(f"[raw] {name}: the server process died\n    sent: {shown_s}\n{run.log_tail()}")
            run.recover(f"raw connection {name!r} kills the server: {shown_s}")
    print(f"\nfuzz[raw]: {len(cases)} raw connections", flush=True)
    assert not failures, "\n".join(failures)


def test_server_intact_after_fuzz(fuzz):
    """Alive, healthy, unsealed, canaries unchanged, mount table unchanged, every operation covered."""
    run = fuzz
    total = time.monotonic() - run.started
    covered = set().union(*run.covered.values()) if run.covered else set()
    want = {op.key for op in run.selected_ops()}
    print(f"\nfuzz: {len(covered)} operations, {run.requests} requests, {total:.0f}s "
          f"(" + ", ".join(f"{m} {n}" for m, n in run.per_mode.items()) + f"); seed {SEED}, "
          f"TESSERA_FUZZ_CASES={CASES or 'default'}", flush=True)
    for dt, what in sorted(run.slow, reverse=True)[:8]:
        print(f"  slow: {dt:.1f}s {what}")
    problems: list[str] = []
    if run.crashes:
        problems.append(f"the server crashed {len(run.crashes)} time(s) during the run (restarted each time; "
                        f"canaries and mounts below are those of the last restart):\n" + "\n\n".join(run.crashes))
    if run.seals:
        problems.append("the server was sealed during the run:\n" + "\n".join(run.seals))
    if not run.srv.is_running():
        problems.append("the server process is not running")
    else:
        st = run.health()
        if st != 200:
            problems.append(f"/v1/sys/health answered {st}")
        r = requests.get(f"{run.url}/v1/sys/seal-status", timeout=10)
        if r.status_code != 200 or r.json().get("sealed") is not False:
            problems.append(f"seal-status: {r.status_code} {r.text[:200]}")
        token = run.login(run.srv.admin_id, run.srv.admin_key)
        r = run.native("get-secret-value", {"names": ["/fuzz-canary/native"]}, token)
        got = r.json().get("/fuzz-canary/native") if r.status_code == 200 else None
        if got != run.canary_native:
            problems.append(f"native canary changed: HTTP {r.status_code} {r.text[:200]} (expected {run.canary_native!r})")
        r = run.vault("GET", "secret/data/fuzz-canary")
        data = r.json().get("data", {}) if r.status_code == 200 else {}
        if data.get("data") != run.canary_kv or (data.get("metadata") or {}).get("version") != 1:
            problems.append(f"KV v2 canary changed: HTTP {r.status_code} {r.text[:300]} (expected {run.canary_kv}, version 1)")
        # Mounts the admin mode created on purpose (fuzz-mnt-…) are removed, then the table must be as before.
        after = run.mount_table()
        for path in [p for p in after if p.startswith("fuzz-mnt-")]:
            rr = run.vault("DELETE", "sys/mounts/" + url_part(path.rstrip("/")))
            if rr.status_code not in (200, 204):
                problems.append(f"could not remove the fuzz mount {path!r}: {rr.status_code} {rr.text[:200]}")
        after = run.mount_table()
        if after != run.mounts_before:
            problems.append(f"mount table changed:\n  before: {run.mounts_before}\n  after:  {after}")
    if not OPS_FILTER:
        for m in [m for m in ("anon", "limited") if m in run.per_mode]:
            missing = want - run.covered.get(m, set())
            if missing:
                problems.append(f"operations not fuzzed in mode {m}: {sorted(missing)}")
    assert not problems, "\n\n".join(problems)
