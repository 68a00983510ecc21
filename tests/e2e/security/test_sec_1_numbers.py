"""Class 1: out-of-range numbers must never kill the server.

Every duration, TTL, version, epoch, port and minutes field that the native verbs and the Vault
endpoints read gets the same hostile values, as JSON numbers and as numeric strings: 1e300,
-1, 2^63, a 20-digit string, 1.5, "1e300s", "9999999999999h", -2^63-1, -1e300 and "1e300".
Each field is tried without a token (the body is parsed before or without authentication)
and with the admin's token (the value reaches the engines). After every single request the
server must still answer its health endpoint; no answer may be a 5xx or a dropped
connection; an unauthenticated request is always a 4xx; and a value that no 64-bit integer
can hold is a 4xx unless the field is documented to clamp (audit-query's window and limit).
Where a value is accepted, the thing created is then used (log in, issue a credential, read
the value back), because stored numbers are converted again later.

A test here loops over the values itself and reports every value that failed; a value that
kills the server is reported with the server log and the server is started again, so the
remaining values are still tried.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable

import hvac
import pytest
import requests

from seclib import (  # noqa: F401
    ADMIN, NO_TOKEN, Node, assert_alive, body_text, make_pg_role, pg_target, send, uid,
)

VALUES: list[Any] = [1e300, -1, 9223372036854775808, "99999999999999999999", 1.5, "1e300s",
                     "9999999999999h", -9223372036854775809, -1e300, "1e300"]
# Values that no Int64 (nor a TimeInterval of whole seconds in range) can hold.
UNREPRESENTABLE = {repr(v) for v in (1e300, 9223372036854775808, "99999999999999999999", "1e300s",
                                     -9223372036854775809, -1e300, "1e300", "1e300d", "-1e300")}
# The same, as text: for fields that take only strings (audit-query since/until) or a query string.
STRING_VALUES = ["1e300", "-1", "9223372036854775808", "99999999999999999999", "1.5", "1e300s",
                 "9999999999999h", "-9223372036854775809", "-1e300", "1e300d", "-9999999999999h"]
QUERY_VALUES = ["1e300", "-1", "9223372036854775808", "99999999999999999999", "1.5",
                "-9223372036854775809", "1e300s", "9999999999999h"]


def unrepresentable(v: Any) -> bool:
    return repr(v) in UNREPRESENTABLE


# ------------------------------------------------------------------------------------------
# the things the numbers are aimed at (rebuilt whenever a crash restarted the server)
# ------------------------------------------------------------------------------------------

@dataclass
class World:
    target: str
    role: str
    role_pw: str
    rotated: str
    producer: str
    lease: str
    vault_lease: str
    secret: str
    kv2: str


def world(node: Node, pg: dict) -> World:
    def build() -> World:
        t = pg_target(node, pg, "num-pg")
        role, pw = make_pg_role(pg)
        for m in ({"path": "kv1/", "type": "kv-v1"}, {"path": "numkv/", "type": "kv-v2"},
                  {"path": "numdb/", "type": "database", "folder": "/numdb"}):
            node.ok("vault-mount-create", m)
        node.ok("rotated-secret-create-postgresql", {"name": "/num/rot", "target-name": t, "rotated-username": role,
                                                     "rotated-password": pw, "skip-dry-run": True})
        node.ok("dynamic-secret-create-postgresql", {"name": "/numdb/prod", "target-name": t, "user-ttl": "1h",
                                                     "max-ttl": "2h"})
        lease = node.ok("get-dynamic-secret-value", {"name": "/numdb/prod"})["lease_id"]
        node.ok("create-secret", {"name": "/num/secret", "value": "v1"})
        for i in (1, 2):
            r = node.vault("POST", "secret/data/num-kv", {"data": {"v": str(i)}})
            assert r.status_code == 200, body_text(r)
        return World(t, role, pw, "/num/rot", "/numdb/prod", lease, "numdb/creds/prod/" + lease.rsplit("/", 1)[1],
                     "/num/secret", "num-kv")
    return node.once("numbers-world", build)


# ------------------------------------------------------------------------------------------
# cases: how to send one value, and what to do with what an accepted value created
# ------------------------------------------------------------------------------------------

Sender = Callable[[Node, World, Any, Any], requests.Response]
FollowUp = Callable[[Node, World, Any, requests.Response], list]


@dataclass
class Case:
    id: str
    send: Sender
    values: list = field(default_factory=lambda: list(VALUES))
    lenient: bool = False          # the field may clamp or ignore: an accepted huge value is not a failure
    must_read: bool = False        # with a token the answer must be 200 (a read of stored data)
    follow: FollowUp | None = None


def followed(node: Node, what: str, fn: Callable[[], requests.Response], must_be: int | None = None) -> list:
    """Runs a follow-up request; returns the problems (5xx, dropped, server dead)."""
    r = send(fn)
    problems = []
    if not node.alive():
        problems.append(f"{what}: the server died ({body_text(r)})\n{node.server.read_log()[-1500:]}")
        node.revive(what)
        return problems
    if not isinstance(r, requests.Response):
        problems.append(f"{what}: no HTTP answer ({r!r})")
    elif must_be is not None and r.status_code != must_be:
        problems.append(f"{what}: expected {must_be}, got {body_text(r)}")
    elif r.status_code >= 500:
        problems.append(f"{what}: {body_text(r)}")
    return problems


def native(verb: str, fld: str, base: Callable[[Node, World], dict], **kw) -> Case:
    def fn(node: Node, w: World, v: Any, token: Any) -> requests.Response:
        body = base(node, w)
        body[fld] = v
        return node.native(verb, body, token=token)
    return Case(f"{verb}.{fld}", fn, **kw)


def vault(cid: str, method: str, path: Callable[[Node, World], str], body: Callable[[Any], Any] | None = None,
          query: str | None = None, native_token: bool = False, headers: dict | None = None, **kw) -> Case:
    def fn(node: Node, w: World, v: Any, token: Any) -> requests.Response:
        tok = (node.token if native_token else ADMIN) if token is ADMIN else NO_TOKEN
        return node.vault(method, path(node, w), body(v) if body else None, token=tok,
                          params={query: str(v)} if query else None, headers=headers)
    return Case(cid, fn, **kw)


def after_auth_method(node: Node, w: World, v: Any, r: requests.Response) -> list:
    am = r.json()
    out = followed(node, f"log in with the method created with {v!r}", lambda: node.native(
        "auth", {"access-id": am["access_id"], "access-key": am["access_key"]}, token=NO_TOKEN))
    login = send(lambda: node.native("auth", {"access-id": am["access_id"], "access-key": am["access_key"]}, token=NO_TOKEN))
    if isinstance(login, requests.Response) and login.status_code == 200:
        t = login.json()["token"]
        out += followed(node, f"lookup-self of its token ({v!r})", lambda: node.vault("GET", "auth/token/lookup-self", token=t))
        out += followed(node, f"renew-self of its token ({v!r})", lambda: node.vault("POST", "auth/token/renew-self", token=t))
        out += followed(node, f"validate-token ({v!r})", lambda: node.native("validate-token", {}, token=t))
    out += followed(node, f"get-auth-method ({v!r})", lambda: node.native("get-auth-method", {"name": am["name"]}))
    return out


def after_secret(node: Node, w: World, v: Any, r: requests.Response) -> list:
    name = r.json()["name"]
    out = followed(node, f"update-secret-val after max-versions={v!r}", lambda: node.native(
        "update-secret-val", {"name": name, "value": "v2"}))
    out += followed(node, f"describe-item after max-versions={v!r}", lambda: node.native("describe-item", {"name": name}))
    return out


def after_producer(node: Node, w: World, v: Any, r: requests.Response) -> list:
    name = r.json()["name"]
    out = followed(node, f"native credential of a producer made with {v!r}", lambda: node.native(
        "get-dynamic-secret-value", {"name": name}))
    out += followed(node, f"Vault credential (lease) of a producer made with {v!r}", lambda: node.vault(
        "GET", "numdb/creds/" + name.rsplit("/", 1)[1]))
    out += followed(node, f"dynamic-secret-get ({v!r})", lambda: node.native("dynamic-secret-get", {"name": name}))
    return out


def after_rotated(node: Node, w: World, v: Any, r: requests.Response) -> list:
    name = r.json()["name"]
    return (followed(node, f"rotated-secret-get after {v!r}", lambda: node.native("rotated-secret-get", {"name": name}))
            + followed(node, f"describe-item after {v!r}", lambda: node.native("describe-item", {"name": name}))
            + followed(node, f"rotated-secret-list after {v!r}", lambda: node.native("rotated-secret-list", {})))


def after_kv1_write(node: Node, w: World, v: Any, r: requests.Response) -> list:
    path = r.request.url.split("/v1/", 1)[1]
    return followed(node, f"reading back the KV v1 value with ttl={v!r}", lambda: node.vault("GET", path), must_be=200)


def after_metadata(node: Node, w: World, v: Any, r: requests.Response) -> list:
    path = r.request.url.split("/v1/", 1)[1]
    mount, _, rest = path.partition("/metadata/")
    out = followed(node, f"KV write after metadata {v!r}", lambda: node.vault("POST", f"{mount}/data/{rest}", {"data": {"a": "1"}}))
    out += followed(node, f"KV metadata read after {v!r}", lambda: node.vault("GET", path))
    return out


def after_config(node: Node, w: World, v: Any, r: requests.Response) -> list:
    p = "numkv/data/" + uid("c")
    return (followed(node, f"KV write after config {v!r}", lambda: node.vault("POST", p, {"data": {"a": "1"}}))
            + followed(node, f"KV config read after {v!r}", lambda: node.vault("GET", "numkv/config")))


def after_renew(node: Node, w: World, v: Any, r: requests.Response) -> list:
    return followed(node, f"lease lookup after renew by {v!r}", lambda: node.vault("PUT", "sys/leases/lookup", {"lease_id": w.vault_lease}))


def after_mount(node: Node, w: World, v: Any, r: requests.Response) -> list:
    return followed(node, f"sys/mounts after enabling with version {v!r}", lambda: node.vault("GET", "sys/mounts"))


def fresh_secret(node: Node) -> str:
    name = "/num/" + uid("del")
    node.ok("create-secret", {"name": name, "value": "x"})
    return name


def kv1_native_value(node: Node, w: World, v: Any, token: Any) -> requests.Response:
    """A KV v1 value whose ttl was stored through the native API (any JSON is storable there)."""
    name = uid("kv1n")
    node.ok("create-secret", {"name": f"/kv1/{name}", "value": json.dumps({"ttl": v, "k": "x"}), "format": "json"})
    return node.vault("GET", f"kv1/{name}", token=ADMIN if token is ADMIN else NO_TOKEN)


ROTATION_FIELDS = ["rotation-interval", "rotation-interval-minutes", "rotation-interval-min", "rotation-hour",
                   "password-length", "max-versions", "verify-port"]

NATIVE_CASES: list[Case] = [
    native("create-auth-method", "jwt-ttl", lambda n, w: {"name": "/" + uid("num-am-")}, follow=after_auth_method),
    native("create-auth-method", "access-expires", lambda n, w: {"name": "/" + uid("num-am-")}, follow=after_auth_method),
    native("create-secret", "max-versions", lambda n, w: {"name": "/num/" + uid(), "value": "v"}, follow=after_secret),
    native("get-secret-value", "version", lambda n, w: {"names": [w.secret]}),
    native("delete-item", "version", lambda n, w: {"name": fresh_secret(n)}),
    native("audit-query", "since", lambda n, w: {}, values=STRING_VALUES + VALUES, lenient=True),
    native("audit-query", "until", lambda n, w: {}, values=STRING_VALUES + VALUES, lenient=True),
    native("audit-query", "limit", lambda n, w: {}, lenient=True),
    native("audit-query", "after-seq", lambda n, w: {}, lenient=True),
    *[native("dynamic-secret-create-postgresql", f, lambda n, w: {"name": "/numdb/" + uid("p"), "target-name": w.target},
             follow=after_producer) for f in ("user-ttl", "max-ttl", "password-length", "max-leases")],
    native("dynamic-secret-tmp-creds-update", "new-ttl-min", lambda n, w: {"name": w.producer, "tmp-creds-id": w.lease}),
    *[native("rotated-secret-create-postgresql", f,
             lambda n, w: {"name": "/num/" + uid("r"), "target-name": w.target, "rotated-username": w.role,
                           "rotated-password": w.role_pw, "skip-dry-run": True}, follow=after_rotated)
      for f in ROTATION_FIELDS],
    # the SSH variant parses the same settings before it looks the (here missing) target up
    *[native("rotated-secret-create-ssh", f,
             lambda n, w: {"name": "/num/" + uid("rs"), "target-name": "num-no-ssh-target", "rotated-username": "u",
                           "rotated-password": "p", "skip-dry-run": True}) for f in ROTATION_FIELDS],
    *[native("rotated-secret-update-postgresql", f, lambda n, w: {"name": w.rotated}, follow=after_rotated)
      for f in ROTATION_FIELDS],
    native("get-rotated-secret-value", "version", lambda n, w: {"names": w.rotated}),
    native("target-create-db", "port", lambda n, w: {"name": uid("num-t"), "db-type": "postgres", "host": "127.0.0.1",
                                                     "user-name": "postgres", "pwd": "x"}),
    native("target-create-ssh", "port", lambda n, w: {"name": uid("num-s"), "host": "127.0.0.1", "ssh-username": "root",
                                                      "ssh-password": "x"}),
    native("usc-get", "version-id", lambda n, w: {"usc-name": "num-no-usc", "secret-id": "a"}),
]

VAULT_CASES: list[Case] = [
    vault("kv2 read ?version", "GET", lambda n, w: f"secret/data/{w.kv2}", query="version", values=QUERY_VALUES),
    vault("kv2 write options.cas", "POST", lambda n, w: "secret/data/" + uid("cas"),
          lambda v: {"data": {"a": "b"}, "options": {"cas": v}}),
    vault("kv2 patch options.cas", "PATCH", lambda n, w: f"secret/data/{w.kv2}",
          lambda v: {"data": {"p": "q"}, "options": {"cas": v}}, headers={"Content-Type": "application/merge-patch+json"}),
    vault("kv2 delete versions", "POST", lambda n, w: f"secret/delete/{w.kv2}", lambda v: {"versions": [v]}),
    vault("kv2 undelete versions", "POST", lambda n, w: f"secret/undelete/{w.kv2}", lambda v: {"versions": [v]}),
    vault("kv2 destroy versions", "POST", lambda n, w: f"secret/destroy/{w.kv2}", lambda v: {"versions": [v]}),
    vault("kv2 destroy versions (scalar)", "POST", lambda n, w: f"secret/destroy/{w.kv2}", lambda v: {"versions": v}),
    vault("kv2 metadata max_versions", "POST", lambda n, w: "secret/metadata/" + uid("md"),
          lambda v: {"max_versions": v}, follow=after_metadata),
    vault("kv2 metadata delete_version_after", "POST", lambda n, w: "secret/metadata/" + uid("md"),
          lambda v: {"delete_version_after": v}, follow=after_metadata),
    vault("kv2 config max_versions", "POST", lambda n, w: "numkv/config", lambda v: {"max_versions": v}, follow=after_config),
    vault("kv2 config delete_version_after", "POST", lambda n, w: "numkv/config",
          lambda v: {"delete_version_after": v}, follow=after_config),
    vault("sys/leases/renew increment", "PUT", lambda n, w: "sys/leases/renew",
          lambda v: None, follow=after_renew),  # body filled in below (needs the lease id)
    vault("sys/mounts enable options.version", "POST", lambda n, w: "sys/mounts/" + uid("nm"),
          lambda v: {"type": "kv", "options": {"version": v}}, follow=after_mount, lenient=True),
    vault("sys/mounts tune ttls", "POST", lambda n, w: "sys/mounts/numkv/tune",
          lambda v: {"default_lease_ttl": v, "max_lease_ttl": v}),
    vault("auth/token/renew-self increment", "POST", lambda n, w: "auth/token/renew-self",
          lambda v: {"increment": v}, native_token=True, lenient=True),  # Vault caps an increment
    vault("sys/init secret_shares", "PUT", lambda n, w: "sys/init", lambda v: {"secret_shares": v, "secret_threshold": v}),
    # KV v1 data is stored as sent (as Vault does); the ttl in it is read again on every read
    vault("kv1 write ttl", "POST", lambda n, w: "kv1/" + uid("kv1"), lambda v: {"ttl": v, "k": "x"}, follow=after_kv1_write,
          lenient=True),
    vault("database creds ?ttl", "GET", lambda n, w: "numdb/creds/prod", query="ttl", values=QUERY_VALUES, lenient=True),
    Case("kv1 read of a value stored natively with ttl", kv1_native_value, lenient=True, must_read=True),
]


def _renew_body(case: Case) -> Case:
    def fn(node: Node, w: World, v: Any, token: Any) -> requests.Response:
        return node.vault("PUT", "sys/leases/renew", {"lease_id": w.vault_lease, "increment": v},
                          token=ADMIN if token is ADMIN else NO_TOKEN)
    case.send = fn
    return case


VAULT_CASES = [(_renew_body(c) if c.id == "sys/leases/renew increment" else c) for c in VAULT_CASES]


def run_case(node: Node, pg: dict, case: Case, auth: str) -> None:
    problems: list[str] = []
    token = ADMIN if auth == "token" else NO_TOKEN
    for v in case.values:
        w = world(node, pg)
        what = f"{case.id} = {v!r} ({'admin token' if auth == 'token' else 'no token'})"
        r = send(lambda: case.send(node, w, v, token))
        if not node.alive():
            problems.append(f"{what}: THE SERVER DIED ({body_text(r)})\n    log: {node.server.read_log()[-800:]!r}")
            node.revive(what)
            continue
        if not isinstance(r, requests.Response):
            problems.append(f"{what}: no HTTP answer ({r!r})")
            continue
        s = r.status_code
        if s >= 500:
            problems.append(f"{what}: {body_text(r)}")
        elif auth == "anonymous" and s < 400:
            problems.append(f"{what}: an unauthenticated request was answered {s}")
        elif auth == "token" and s < 400 and unrepresentable(v) and not case.lenient:
            problems.append(f"{what}: accepted ({body_text(r)}) instead of a 4xx")
        elif auth == "token" and case.must_read and s != 200:
            problems.append(f"{what}: reading stored data answered {body_text(r)}, not 200")
        if auth == "token" and case.follow and s < 300:
            problems += case.follow(node, w, v, r)
    assert_alive(node, case.id)
    assert not problems, f"{len(problems)} of {len(case.values)} values failed:\n" + "\n".join(problems)


@pytest.mark.parametrize("auth", ["anonymous", "token"])
@pytest.mark.parametrize("case", NATIVE_CASES, ids=[c.id for c in NATIVE_CASES])
def test_out_of_range_numbers_in_native_fields_get_a_4xx_and_the_server_survives(node, postgres, case, auth):
    run_case(node, postgres, case, auth)


@pytest.mark.parametrize("auth", ["anonymous", "token"])
@pytest.mark.parametrize("case", VAULT_CASES, ids=[c.id for c in VAULT_CASES])
def test_out_of_range_numbers_in_vault_fields_get_a_4xx_and_the_server_survives(node, postgres, case, auth):
    run_case(node, postgres, case, auth)


# ------------------------------------------------------------------------------------------
# the stored KV v1 value from the issue, with real clients
# ------------------------------------------------------------------------------------------

def test_a_kv1_value_with_ttl_1e300_stored_with_hvac_reads_back_200_with_hvac_and_bao(node, postgres, bao_bin, tmp_path):
    world(node, postgres)  # the kv1/ mount
    name = uid("kv1ttl")
    client = hvac.Client(url=node.url, token=node.vault_token, timeout=20)
    # hvac sends the JSON number 1e+300 as it is
    try:
        client.secrets.kv.v1.create_or_update_secret(name, secret={"ttl": 1e300, "k": "x"}, mount_point="kv1")
    except requests.RequestException as e:
        assert_alive(node, "storing {'ttl': 1e300} in kv1/")
        raise AssertionError(f"storing the value dropped the connection: {e!r}")
    assert_alive(node, "storing {'ttl': 1e300} in kv1/")

    r = send(lambda: node.vault("GET", f"kv1/{name}"))
    assert_alive(node, "reading the stored {'ttl': 1e300}")
    assert isinstance(r, requests.Response) and r.status_code == 200, f"raw read: {body_text(r)}"
    assert r.json()["data"]["k"] == "x"

    got = client.secrets.kv.v1.read_secret(name, mount_point="kv1")
    assert got["data"]["k"] == "x"
    p = subprocess.run([bao_bin, "read", "-format=json", f"kv1/{name}"], capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAULT_ADDR": node.url, "VAULT_TOKEN": node.vault_token})
    assert_alive(node, "bao read of the stored {'ttl': 1e300}")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["data"]["k"] == "x"
    # and again: a stored value must not crash any later read
    r = send(lambda: node.vault("GET", f"kv1/{name}"))
    assert_alive(node, "a second read of the stored {'ttl': 1e300}")
    assert r.status_code == 200, body_text(r)
