"""Upstream failures and target-creation errors.

The target of the USC points at the counting proxy, so the proxy decides how the upstream
behaves: stopped (connection refused), "fail500", "slow" (longer than Tessera's
`--upstream-timeout 2`).  A second target whose OpenBao token is revoked after creation gives
the "upstream rejects the token" case.  Every failure is a 502/504 on both the native and the
Vault API, is quick (bounded), blocks nothing else, and is in the audit trail as an error.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest

import usclib as U

QUICK = 1.5   # seconds: "quickly" for a refused connection (well under the upstream timeout)
PROMPT = 1.0  # seconds: an unrelated request while a slow upstream call is in flight


def _audit_error(tessera, *, status: int, path_part: str, interface: str | None = None,
                 action: str | None = None) -> dict:
    """The error event (result error, `status`) whose path contains `path_part`; waits briefly."""
    def look():
        q = {"result": "error"}
        if action:
            q["action"] = action
        for e in tessera.audit(**q):
            if path_part in e["path"] and (interface is None or e["interface"] == interface):
                return e
        return None

    try:
        e = U.wait_until(look, timeout=3, interval=0.1, what=f"an audit error event on {path_part}")
    except AssertionError:
        near = [e for e in tessera.audit() if path_part in e["path"]]
        raise AssertionError(f"no audit event with result error for {path_part} "
                             f"(interface {interface}); events on that path: {json.dumps(near, indent=1)[:3000]}")
    assert e["status"] == status and e["result"] == "error", e
    return e


def _native_fails(tessera, usc, secret_id: str, status: int, code: str) -> U.NativeResp:
    resp = tessera.native_raw("usc-get", {"usc-name": usc, "secret-id": secret_id})
    assert resp.status == status, resp
    body = resp.json()
    assert isinstance(body, dict) and body.get("error") == code and body.get("message"), resp
    return resp


def _vault_fails(tessera, path: str, status: int) -> U.HTTPResp:
    resp = tessera.vhttp("GET", f"/v1/secret/data/{path}")
    assert resp.status == status, resp
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    return resp


# ------------------------------------------------------------------------------------------
# upstream down / failing / slow / rejecting the token
# ------------------------------------------------------------------------------------------

def test_upstream_connection_refused_is_502_quickly(tessera, usc, usc_mount, proxy):
    proxy.stop()
    resp = _native_fails(tessera, usc, "fail/refused", 502, "BadGateway")
    vresp = _vault_fails(tessera, "fail/refused-vault", 502)
    r = tessera.cli("usc", "get", "--usc-name", usc, "--secret-id", "fail/refused-cli")
    r.one_line_error()
    b = tessera.bao("kv", "get", "secret/fail/refused-bao")
    assert b.rc == 2 and "502" in b.stderr, b
    _audit_error(tessera, status=502, path_part="fail/refused", action="usc_get")
    _audit_error(tessera, status=502, path_part="fail/refused-vault", interface="vault")
    # a refused connection is known at once: no waiting for the upstream timeout
    slow = [x for x in (resp, vresp) if x.elapsed >= QUICK]
    assert not slow, f"connection refused should fail fast (< {QUICK}s, timeout is {U.UPSTREAM_TIMEOUT}s): {slow}"
    # back up: everything works again
    proxy.start()
    out = tessera.native("usc-get", {"usc-name": usc, "secret-id": "myapp/api-key"})
    assert out["id"] == "myapp/api-key", out


def test_upstream_500_is_502(tessera, usc, usc_mount, proxy):
    proxy.set_mode("fail500")
    mark = proxy.mark()
    _native_fails(tessera, usc, "fail/five-hundred", 502, "BadGateway")
    _vault_fails(tessera, "fail/five-hundred-vault", 502)
    resp = tessera.native_raw("usc-list", {"usc-name": usc})
    assert resp.status == 502, resp
    assert proxy.count("fail/five-hundred", mark) >= 2, proxy.counts_by_path(mark)
    r = tessera.cli("usc", "get", "--usc-name", usc, "--secret-id", "fail/five-hundred-cli")
    r.one_line_error()
    _audit_error(tessera, status=502, path_part="fail/five-hundred", action="usc_get")
    _audit_error(tessera, status=502, path_part="fail/five-hundred-vault", interface="vault")


def test_revoked_upstream_token_is_502_mentioning_the_token(tessera, openbao):
    r = openbao.bao("token", "create", "-format=json", "-ttl=10m")
    assert r.rc == 0, r
    child = r.json()["auth"]["client_token"]
    openbao.tokens.append(child)
    target, usc2 = U.unique("revoked-target-"), U.unique("revoked-usc-")
    # the target talks to OpenBao directly (not through the proxy)
    tessera.native("target-create-hashi-vault", {"name": target, "hashi-url": openbao.addr,
                                                 "vault-token": child})
    tessera.native("create-usc", {"name": usc2, "target-to-associate": target})
    out = tessera.native("usc-get", {"usc-name": usc2, "secret-id": "myapp/api-key"})
    assert json.loads(base64.b64decode(out["value"])) == {"key": openbao.api_key}, out

    r = openbao.bao("token", "revoke", child)
    assert r.rc == 0, r
    resp = _native_fails(tessera, usc2, "myapp/api-key", 502, "BadGateway")
    assert "token" in resp.json()["message"].lower(), resp
    assert child not in resp.text, resp
    r = tessera.cli("usc", "list", "--usc-name", usc2)
    line = r.one_line_error()
    assert "token" in line.lower() and child not in line, r
    e = _audit_error(tessera, status=502, path_part=f"/{usc2}/myapp/api-key", action="usc_get")
    assert child not in json.dumps(e), e


def test_slow_upstream_is_504_and_blocks_nothing(tessera, usc, usc_mount, proxy):
    # a local (non-USC) secret, to read while the upstream hangs
    local_name, local_value = f"/local/{U.unique('probe')}", U.random_key(16)
    tessera.native("create-secret", {"name": local_name, "value": local_value})

    proxy.set_mode("slow")
    results: dict[str, object] = {}

    def native_call():
        results["native"] = tessera.native_raw("usc-get", {"usc-name": usc, "secret-id": "fail/slow-native"})

    def vault_call():
        results["vault"] = tessera.vhttp("GET", "/v1/secret/data/fail/slow-vault")

    threads = [threading.Thread(target=native_call), threading.Thread(target=vault_call)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    try:
        # both requests are now hanging in the proxy
        U.wait_until(lambda: proxy.count("fail/slow-native") >= 1 and proxy.count("fail/slow-vault") >= 1,
                     timeout=U.UPSTREAM_TIMEOUT - 0.5, what="both slow requests to reach the proxy")
        # meanwhile other requests answer promptly
        resp = tessera.native_raw("validate-token", {})
        assert resp.status == 200 and resp.elapsed < PROMPT, resp
        resp = tessera.native_raw("get-secret-value", {"names": [local_name]})
        assert resp.status == 200 and resp.elapsed < PROMPT, resp
        assert resp.json()[local_name] == local_value, resp
        resp = tessera.native_raw("list-items", {"path": "/local"})
        assert resp.status == 200 and resp.elapsed < PROMPT, resp
        assert any(th.is_alive() for th in threads), "the slow requests ended too early"
    finally:
        for th in threads:
            th.join(U.SLOW_SECONDS + 10)
    elapsed = time.monotonic() - t0
    nat, vlt = results["native"], results["vault"]
    assert nat.status == 504 and nat.json().get("error") == "GatewayTimeout", nat
    assert vlt.status == 504 and vlt.json() and vlt.json().get("errors"), vlt
    for r in (nat, vlt):
        assert U.UPSTREAM_TIMEOUT - 0.5 <= r.elapsed <= U.UPSTREAM_TIMEOUT + 2.0, \
            f"not bounded by --upstream-timeout {U.UPSTREAM_TIMEOUT}: {r!r}"
    assert elapsed < U.SLOW_SECONDS, "Tessera waited for the slow upstream instead of timing out"
    proxy.set_mode("pass")
    _audit_error(tessera, status=504, path_part="fail/slow-native", action="usc_get")
    _audit_error(tessera, status=504, path_part="fail/slow-vault", interface="vault")


# ------------------------------------------------------------------------------------------
# target creation checks the connection
# ------------------------------------------------------------------------------------------

def _create_fails(tessera, *, url: str, token: str, kv_mount: str | None, words: tuple[str, ...]):
    name = U.unique("bad-target-")
    body = {"name": name, "hashi-url": url, "vault-token": token}
    if kv_mount:
        body["kv-mount"] = kv_mount
    resp = tessera.native_raw("target-create-hashi-vault", body)
    assert resp.status == 400, resp
    msg = (resp.json() or {}).get("message", "")
    assert any(w.lower() in msg.lower() for w in words), f"message should mention {words}: {resp!r}"
    assert token not in resp.text, resp
    assert resp.elapsed < U.UPSTREAM_TIMEOUT + 1.5, f"the connection check is not bounded: {resp!r}"

    args = ["target", "create", "hashi-vault", "--name", name, "--hashi-url", url, "--vault-token", token]
    if kv_mount:
        args += ["--kv-mount", kv_mount]
    r = tessera.cli(*args)
    line = r.one_line_error()
    assert any(w.lower() in line.lower() for w in words), r
    assert token not in r.stdout + r.stderr, r
    # nothing was created
    assert tessera.native_raw("target-get", {"name": name}).status == 404
    assert name not in json.dumps(tessera.native("target-list", {}))


def test_target_create_unreachable(tessera):
    url = f"http://127.0.0.1:{U.free_port()}"
    _create_fails(tessera, url=url, token="s." + U.random_key(24), kv_mount=None,
                  words=("unreachable", "cannot reach"))


def test_target_create_bad_token(tessera, openbao):
    bogus = "s." + U.random_key(24)
    openbao.tokens.append(bogus)
    _create_fails(tessera, url=openbao.addr, token=bogus, kv_mount=None, words=("token",))


def test_target_create_kv_v1_mount(tessera, openbao):
    mount = U.unique("kvone")
    r = openbao.bao("secrets", "enable", f"-path={mount}", "-version=1", "kv")
    assert r.rc == 0, r
    _create_fails(tessera, url=openbao.addr, token=openbao.root_token, kv_mount=f"{mount}/",
                  words=("KV v2",))


@pytest.mark.parametrize("missing", ["name", "hashi-url", "vault-token"])
def test_target_create_missing_field(tessera, openbao, missing):
    body = {"name": U.unique("t-"), "hashi-url": openbao.addr, "vault-token": openbao.root_token}
    del body[missing]
    resp = tessera.native_raw("target-create-hashi-vault", body)
    assert resp.status == 400, resp
    assert openbao.root_token not in resp.text, resp
