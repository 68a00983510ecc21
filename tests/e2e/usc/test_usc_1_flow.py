"""The Universal Secret Connector flow of the issue's acceptance, step by step:

1. secrets seeded directly in OpenBao are listed and read with `bao`;
2. a hashi-vault target and a USC are created with the tessera CLI; `tessera usc list/get`
   show the OpenBao secrets;
3. writes go both ways with no cache in between;
4. `bao` against Tessera's USC-backed `secret/` mount answers like `bao` against OpenBao;
5. a second identity's deny rule stops a read before any upstream request is made;
6. the audit trail holds every USC action, attributed, with no value in it, and verifies.
"""

from __future__ import annotations

import base64
import json

import usclib as U

ADMIN_ID = U.ADMIN_ID


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _upstream(openbao, path: str) -> dict | None:
    """The KV data map of secret/<path> read directly from OpenBao (None when absent/deleted)."""
    r = openbao.bao("kv", "get", "-format=json", f"secret/{path}")
    if r.rc == 2 and "No value found" in r.stderr:
        return None
    assert r.rc == 0, r
    return r.json()["data"]["data"]


# ------------------------------------------------------------------------------------------
# 1. OpenBao itself
# ------------------------------------------------------------------------------------------

def test_1_seeded_secrets_in_openbao(openbao):
    r = openbao.bao("kv", "list", "-format=json", "secret/myapp")
    assert r.rc == 0, r
    assert {"db-password", "api-key"} <= set(r.json()), r
    assert _upstream(openbao, "myapp/db-password") == {"value": openbao.db_password}
    assert _upstream(openbao, "myapp/api-key") == {"key": openbao.api_key}


# ------------------------------------------------------------------------------------------
# 2. target + USC with the CLI; list and get
# ------------------------------------------------------------------------------------------

def test_2_target_details_never_show_the_token(tessera, openbao, usc, proxy):
    TARGET_NAME = U.TARGET_NAME  # noqa: N806
    r = tessera.cli_ok("target", "get", "--name", TARGET_NAME, "--json")
    details = r.json()
    assert TARGET_NAME in json.dumps(details), r
    assert proxy.url in json.dumps(details) or str(proxy.port) in json.dumps(details), \
        f"target details should show the hashi-url: {r!r}"
    assert openbao.root_token not in r.stdout + r.stderr, r
    out = tessera.native("target-get", {"name": TARGET_NAME})
    assert openbao.root_token not in json.dumps(out), out
    r = tessera.cli_ok("target", "list")
    assert TARGET_NAME in r.stdout, r
    out = tessera.native("target-list", {})
    assert isinstance(out.get("targets"), list), out
    assert TARGET_NAME in json.dumps(out["targets"]), out
    assert openbao.root_token not in json.dumps(out), out
    # the target is in use by the USC: it cannot be deleted
    resp = tessera.native_raw("target-delete", {"name": TARGET_NAME})
    assert resp.status == 409, resp
    r = tessera.cli("target", "delete", "--name", TARGET_NAME)
    r.one_line_error()
    assert tessera.native("target-get", {"name": TARGET_NAME}), "the target must still exist"
    # an unused target is deleted (with the CLI)
    spare = U.unique("spare-target-")
    tessera.native("target-create-hashi-vault", {"name": spare, "hashi-url": openbao.addr,
                                                 "vault-token": openbao.root_token})
    assert tessera.native("target-get", {"name": spare}).get("target_name", spare) == spare
    tessera.cli_ok("target", "delete", "--name", spare)
    assert tessera.native_raw("target-get", {"name": spare}).status == 404


def test_2_usc_list_and_get_through_the_proxy(tessera, openbao, usc, proxy):
    mark = proxy.mark()
    r = tessera.cli_ok("usc", "list", "--usc-name", usc)
    ids = _lines(r.stdout)
    assert "myapp/db-password" in ids and "myapp/api-key" in ids, r
    assert proxy.hits_since(mark), "usc list made no request through the proxy (target URL)"

    r = tessera.cli_ok("usc", "get", "--usc-name", usc, "--secret-id", "myapp/db-password")
    assert json.loads(r.stdout) == {"value": openbao.db_password}, r
    mark = proxy.mark()
    r = tessera.cli_ok("usc", "get", "--usc-name", usc, "--secret-id", "myapp/api-key")
    assert json.loads(r.stdout) == {"key": openbao.api_key}, r
    assert proxy.count("myapp/api-key", mark) >= 1, proxy.counts_by_path(mark)

    # --json prints the raw answer
    r = tessera.cli_ok("usc", "list", "--usc-name", usc, "--json")
    listed = r.json()
    assert {"myapp/db-password", "myapp/api-key"} <= {s["secret_id"] for s in listed["secrets_list"]}, r


def test_2_usc_native_answers(tessera, openbao, usc):
    out = tessera.native("usc-list", {"usc-name": usc})
    assert out.get("next_token", "") == "", out
    by_id = {s["secret_id"]: s for s in out["secrets_list"]}
    assert {"myapp/db-password", "myapp/api-key"} <= set(by_id), out
    assert by_id["myapp/db-password"]["name"] == "myapp/db-password", out

    out = tessera.native("usc-get", {"usc-name": usc, "secret-id": "myapp/db-password"})
    assert json.loads(base64.b64decode(out["value"])) == {"value": openbao.db_password}, out
    assert out["id"] == "myapp/db-password" and out["name"] == "myapp/db-password", out
    meta = openbao.bao("kv", "metadata", "get", "-format=json", "secret/myapp/db-password").json()
    assert str(out["version_id"]) == str(meta["data"]["current_version"]), out
    assert isinstance(out["metadata"], dict), out

    resp = tessera.native_raw("usc-get", {"usc-name": usc, "secret-id": "myapp/does-not-exist"})
    assert resp.status == 404, resp
    resp = tessera.native_raw("usc-get", {"usc-name": "no-such-usc", "secret-id": "myapp/api-key"})
    assert resp.status == 404, resp


# ------------------------------------------------------------------------------------------
# 3. both directions, no cache
# ------------------------------------------------------------------------------------------

def test_3_usc_writes_are_visible_in_openbao(tessera, openbao, usc):
    name = U.unique("myapp/created-")
    v1 = openbao.value("pw")
    r = tessera.cli_ok("usc", "create", "--usc-name", usc, "--secret-name", name,
                       "--value", json.dumps({"user": "app", "password": v1}))
    assert v1 not in r.stdout + r.stderr, r
    assert _upstream(openbao, name) == {"user": "app", "password": v1}

    # non-JSON text is stored as {"value": text}
    plain = U.unique("myapp/plain-")
    v2 = openbao.value("plain")
    tessera.cli_ok("usc", "create", "--usc-name", usc, "--secret-name", plain, "--value", v2)
    assert _upstream(openbao, plain) == {"value": v2}

    # native create answers secret_id + version_id
    nat = U.unique("myapp/native-")
    v3 = openbao.value("nat")
    out = tessera.native("usc-create", {"usc-name": usc, "secret-name": nat,
                                        "value": json.dumps({"k": v3})})
    assert out["secret_id"] == nat and str(out["version_id"]) == "1", out
    assert _upstream(openbao, nat) == {"k": v3}

    # update -> a new upstream version
    v4 = openbao.value("pw2")
    tessera.cli_ok("usc", "update", "--usc-name", usc, "--secret-id", name,
                   "--value", json.dumps({"user": "app", "password": v4}))
    r = openbao.bao("kv", "get", "-format=json", f"secret/{name}")
    assert r.rc == 0 and r.json()["data"]["data"] == {"user": "app", "password": v4}, r
    assert r.json()["data"]["metadata"]["version"] == 2, r

    # delete -> OpenBao no longer has a value
    tessera.cli_ok("usc", "delete", "--usc-name", usc, "--secret-id", plain)
    assert _upstream(openbao, plain) is None
    r = tessera.cli("usc", "get", "--usc-name", usc, "--secret-id", plain)
    r.one_line_error()


def test_3_openbao_writes_are_visible_immediately(tessera, openbao, usc):
    name = U.unique("myapp/direct-")
    v1 = openbao.value("direct")
    r = openbao.bao("kv", "put", f"secret/{name}", f"value={v1}")
    assert r.rc == 0, r
    r = tessera.cli_ok("usc", "list", "--usc-name", usc)
    assert name in _lines(r.stdout), r
    r = tessera.cli_ok("usc", "get", "--usc-name", usc, "--secret-id", name)
    assert json.loads(r.stdout) == {"value": v1}, r
    # a new version written directly is what the very next read returns (no cache)
    v2 = openbao.value("direct2")
    r = openbao.bao("kv", "put", f"secret/{name}", f"value={v2}", "extra=1")
    assert r.rc == 0, r
    r = tessera.cli_ok("usc", "get", "--usc-name", usc, "--secret-id", name)
    assert json.loads(r.stdout) == {"value": v2, "extra": "1"}, r
    out = tessera.native("usc-get", {"usc-name": usc, "secret-id": name})
    assert str(out["version_id"]) == "2", out


def test_3_namespace_and_kv_mount_of_the_target(tessera, openbao):
    """A target with --namespace and --kv-mount reads and writes that namespace's mount only."""
    ns, target, usc2 = U.unique("team"), U.unique("ns-target-"), U.unique("ns-usc-")
    for args in (("namespace", "create", ns),
                 ("secrets", "enable", f"-ns={ns}", "-path=apps", "-version=2", "kv")):
        r = openbao.bao(*args)
        assert r.rc == 0, r
    v1 = openbao.value("ns")
    r = openbao.bao("kv", "put", f"-ns={ns}", "apps/svc/cred", f"value={v1}")
    assert r.rc == 0, r
    tessera.cli_ok("target", "create", "hashi-vault", "--name", target, "--hashi-url", openbao.addr,
                   "--vault-token", openbao.root_token, "--namespace", ns, "--kv-mount", "apps/")
    tessera.cli_ok("create-usc", "--name", usc2, "--target-to-associate", target)
    out = tessera.native("target-get", {"name": target})
    assert ns in json.dumps(out) and "apps/" in json.dumps(out), out

    r = tessera.cli_ok("usc", "list", "--usc-name", usc2)
    assert _lines(r.stdout) == ["svc/cred"], r
    r = tessera.cli_ok("usc", "get", "--usc-name", usc2, "--secret-id", "svc/cred")
    assert json.loads(r.stdout) == {"value": v1}, r
    v2 = openbao.value("ns2")
    tessera.cli_ok("usc", "create", "--usc-name", usc2, "--secret-name", "svc/new", "--value", v2)
    r = openbao.bao("kv", "get", f"-ns={ns}", "-format=json", "apps/svc/new")
    assert r.rc == 0 and r.json()["data"]["data"] == {"value": v2}, r
    # nothing landed in the root namespace's secret/
    assert _upstream(openbao, "svc/new") is None


# ------------------------------------------------------------------------------------------
# 4. bao against Tessera's USC-backed secret/ == bao against OpenBao
# ------------------------------------------------------------------------------------------

def test_4_bao_kv_through_tessera_matches_openbao(tessera, openbao, usc_mount):
    direct, via = openbao.bao, tessera.bao

    # list
    a, b = direct("kv", "list", "-format=json", "secret/myapp"), via("kv", "list", "-format=json", "secret/myapp")
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert sorted(b.json()) == sorted(a.json()), (a, b)
    a, b = direct("kv", "list", "secret/myapp"), via("kv", "list", "secret/myapp")
    assert b.rc == 0 and b.stdout == a.stdout, (a, b)

    # get (JSON): identical but for request ids and timestamps
    a = direct("kv", "get", "-format=json", "secret/myapp/db-password")
    b = via("kv", "get", "-format=json", "secret/myapp/db-password")
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert U.strip_volatile(b.json()) == U.strip_volatile(a.json()), (a, b)
    assert b.json()["data"]["data"] == {"value": openbao.db_password}, b

    # get (table): line for line, but for timestamps and version numbers
    a = direct("kv", "get", "secret/myapp/db-password")
    b = via("kv", "get", "secret/myapp/db-password")
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert U.normalize_table(b.stdout) == U.normalize_table(a.stdout), (a, b)

    # -field
    a = direct("kv", "get", "-field=key", "secret/myapp/api-key")
    b = via("kv", "get", "-field=key", "secret/myapp/api-key")
    assert b.rc == 0 and b.stdout == a.stdout and a.stdout.strip() == openbao.api_key, (a, b)

    # metadata get
    a = direct("kv", "metadata", "get", "-format=json", "secret/myapp/db-password")
    b = via("kv", "metadata", "get", "-format=json", "secret/myapp/db-password")
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert U.strip_volatile(b.json()) == U.strip_volatile(a.json()), (a, b)

    # a missing secret: same exit code and message
    a = direct("kv", "get", "secret/myapp/nope")
    b = via("kv", "get", "secret/myapp/nope")
    assert (b.rc, b.stdout, b.stderr) == (a.rc, a.stdout, a.stderr), (a, b)


def test_4_bao_kv_put_through_tessera_matches_openbao(tessera, openbao, usc_mount):
    tag = U.random_key(6).lower()
    vd, vt = openbao.value("vd"), openbao.value("vt")
    a = openbao.bao("kv", "put", "-format=json", f"secret/myapp/new-d-{tag}", f"k={vd}")
    b = tessera.bao("kv", "put", "-format=json", f"secret/myapp/new-t-{tag}", f"k={vt}")
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert U.strip_volatile(b.json()) == U.strip_volatile(a.json()), (a, b)
    # each side sees the other's write
    assert _upstream(openbao, f"myapp/new-t-{tag}") == {"k": vt}
    r = tessera.bao("kv", "get", "-format=json", f"secret/myapp/new-d-{tag}")
    assert r.rc == 0 and r.json()["data"]["data"] == {"k": vd}, r
    # table output of put
    a = openbao.bao("kv", "put", f"secret/myapp/new-d-{tag}", "k=2")
    b = tessera.bao("kv", "put", f"secret/myapp/new-t-{tag}", "k=2")
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert U.normalize_table(b.stdout.replace("/new-t-", "/new-d-")) == U.normalize_table(a.stdout), (a, b)
    # and both lists agree
    a, b = openbao.bao("kv", "list", "-format=json", "secret/myapp"), tessera.bao("kv", "list", "-format=json", "secret/myapp")
    assert sorted(b.json()) == sorted(a.json()), (a, b)


# ------------------------------------------------------------------------------------------
# 5. deny before any upstream request
# ------------------------------------------------------------------------------------------

def test_5_denied_read_makes_no_upstream_request(tessera, openbao, usc, limited, proxy):
    prof = limited["profile"]
    mark = proxy.mark()
    r = tessera.cli("usc", "get", "--usc-name", usc, "--secret-id", "myapp/db-password", profile=prof)
    line = r.one_line_error()
    assert "denied" in line.lower() or "access" in line.lower(), r
    assert openbao.db_password not in r.stdout + r.stderr, r
    assert proxy.count("db-password", mark) == 0, \
        f"a denied read reached the upstream: {proxy.counts_by_path(mark)}"

    mark = proxy.mark()
    r = tessera.cli("usc", "get", "--usc-name", usc, "--secret-id", "myapp/api-key", profile=prof)
    assert r.rc == 0 and json.loads(r.stdout) == {"key": openbao.api_key}, r
    assert proxy.count("myapp/api-key", mark) >= 1, proxy.counts_by_path(mark)

    # no create capability: denied, nothing upstream
    mark = proxy.mark()
    name = U.unique("myapp/lim-")
    r = tessera.cli("usc", "create", "--usc-name", usc, "--secret-name", name, "--value", "x", profile=prof)
    r.one_line_error()
    assert proxy.count(name, mark) == 0, proxy.counts_by_path(mark)
    assert _upstream(openbao, name) is None

    # native: 403 AccessDenied
    lim_tok = tessera.native("auth", {"access-id": limited["access_id"], "access-key": limited["access_key"],
                                      "access-type": "access_key"}, token=None)["token"]
    mark = proxy.mark()
    resp = tessera.native_raw("usc-get", {"usc-name": usc, "secret-id": "myapp/db-password"}, token=lim_tok)
    assert resp.status == 403 and resp.json()["error"] == "AccessDenied", resp
    assert proxy.count("db-password", mark) == 0, proxy.counts_by_path(mark)


def test_5_denied_read_through_the_vault_api(tessera, openbao, usc_mount, limited, proxy):
    lim = limited["vault_token"]
    mark = proxy.mark()
    r = tessera.bao("kv", "get", "secret/myapp/db-password", token=lim)
    assert r.rc == 2, r
    assert "403" in r.stderr and "permission denied" in r.stderr, r
    assert r.stdout.strip() == "" and openbao.db_password not in r.stderr, r
    resp = tessera.vhttp("GET", "/v1/secret/data/myapp/db-password", token=lim)
    assert resp.status == 403 and resp.json() and resp.json().get("errors"), resp
    assert proxy.count("db-password", mark) == 0, \
        f"a denied Vault read reached the upstream: {proxy.counts_by_path(mark)}"

    mark = proxy.mark()
    r = tessera.bao("kv", "get", "-format=json", "secret/myapp/api-key", token=lim)
    assert r.rc == 0 and r.json()["data"]["data"] == {"key": openbao.api_key}, r
    assert proxy.count("myapp/api-key", mark) >= 1, proxy.counts_by_path(mark)


# ------------------------------------------------------------------------------------------
# 6. the audit trail
# ------------------------------------------------------------------------------------------

def _max_seq(tessera) -> int:
    events = tessera.audit()
    return max((e["seq_num"] for e in events), default=0)


def test_6_audit_trail(tessera, openbao, usc, usc_mount, limited):
    start = _max_seq(tessera)
    tag = U.random_key(6).lower()
    created, vault_new = f"myapp/audit-{tag}", f"myapp/audit-vault-{tag}"
    v1, v2 = openbao.value("aud1"), openbao.value("aud2")

    tessera.cli_ok("usc", "list", "--usc-name", usc)
    tessera.cli_ok("usc", "get", "--usc-name", usc, "--secret-id", "myapp/api-key")
    tessera.cli_ok("usc", "create", "--usc-name", usc, "--secret-name", created, "--value", v1)
    bao_calls = [("kv", "get", "-format=json", "secret/myapp/api-key"),
                 ("kv", "put", "-format=json", f"secret/{vault_new}", f"k={v2}"),
                 ("kv", "list", "-format=json", "secret/myapp"),
                 ("kv", "metadata", "get", "-format=json", "secret/myapp/api-key")]
    for call in bao_calls:
        r = tessera.bao(*call)
        assert r.rc == 0, r
    r = tessera.cli("usc", "get", "--usc-name", usc, "--secret-id", "myapp/db-password",
                    profile=limited["profile"])
    assert r.rc != 0, r
    r = tessera.bao("kv", "get", "secret/myapp/db-password", token=limited["vault_token"])
    assert r.rc == 2, r

    r = tessera.cli_ok("audit", "--json", "--limit", "10000")
    full_text = r.stdout
    events = [e for e in r.json()["events"] if e["seq_num"] > start]
    dump = json.dumps(events, indent=1)[:6000]

    def find(**want):
        return [e for e in events if all(e.get(k) == v for k, v in want.items())]

    # native USC actions (through the CLI)
    assert find(action="usc_list", path=f"/{usc}", access_id=ADMIN_ID, result="allowed"), dump
    assert find(action="usc_get", path=f"/{usc}/myapp/api-key", access_id=ADMIN_ID, result="allowed"), dump
    assert find(action="usc_create", path=f"/{usc}/{created}", access_id=ADMIN_ID, result="allowed"), dump

    # every bao request through Tessera: interface vault, the identity's access id
    vault_events = [e for e in events if e["interface"] == "vault"]
    assert vault_events, dump
    for e in vault_events:
        assert e["access_id"] in (ADMIN_ID, limited["access_id"]), f"unattributed vault event: {e}"
    admin_vault = [e for e in vault_events if e["access_id"] == ADMIN_ID]
    for needle in ("myapp/api-key", vault_new):
        assert any(needle in e["path"] and e["result"] == "allowed" for e in admin_vault), \
            f"no allowed vault event for {needle}: {dump}"
    assert any(e["path"].rstrip("/").endswith("myapp") and e["result"] == "allowed" for e in admin_vault), \
        f"no vault event for the list of secret/myapp: {dump}"
    # the put and the metadata read are distinguishable from plain reads
    assert len({e["action"] for e in admin_vault if "myapp/api-key" in e["path"] or vault_new in e["path"]}) >= 2, dump

    # the denials
    den = find(action="usc_get", path=f"/{usc}/myapp/db-password", access_id=limited["access_id"],
               result="denied")
    assert den and den[0]["status"] == 403, dump
    vden = [e for e in vault_events if e["access_id"] == limited["access_id"]
            and "myapp/db-password" in e["path"] and e["result"] == "denied"]
    assert vden and vden[0]["status"] == 403, dump

    # no secret value, upstream token or access key anywhere in the audit output
    for v in openbao.values:
        assert v not in full_text, f"secret value {v!r} in the audit output"
        assert U.b64(v) not in full_text
        assert U.b64(json.dumps({"value": v})) not in full_text
    for tok in openbao.tokens:
        assert tok not in full_text, "an upstream token is in the audit output"
    assert limited["access_key"] not in full_text and tessera.admin_key not in full_text

    r = tessera.cli("audit", "verify")
    assert r.rc == 0, r
