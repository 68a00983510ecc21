"""Hostile and malformed input: always a 4xx with a JSON error body, never a 500 or a crash."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

import pytest
import requests

TOKEN = "<token>"  # placeholder, replaced by the admin token at run time


@dataclass
class Case:
    id: str
    verb: str
    body: object = None          # JSON-encodable, TOKEN placeholders are substituted
    raw: bytes | None = None     # sent verbatim instead of body
    expect: tuple = (400,)
    method: str = "POST"
    headers: dict = field(default_factory=dict)


def _sub(obj, token):
    if obj == TOKEN:
        return token
    if isinstance(obj, dict):
        return {k: _sub(v, token) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_sub(v, token) for v in obj]
    return obj


def T(**kw):
    """A body with the admin token."""
    return {"token": TOKEN, **kw}


BAD_PATHS = {
    "dotdot": "/a/../b",
    "dot": "/a/./b",
    "double-slash": "//x",
    "inner-double-slash": "/a//b",
    "encoded-dotdot": "/a/%2e%2e/b",
    "encoded-dotdot-upper": "/a/%2E%2E/b",
    "nul": "/a\x00b",
    "newline": "/a\nb",
    "cr": "/a\rb",
    "tab": "/a\tb",
    "del": "/a\x7fb",
    "escape": "/a\x1b[31mb",
    "long-2000": "/" + "a" * 2000,
}

CASES: list[Case] = [
    # --- body shape ------------------------------------------------------------------
    Case("malformed-json", "create-secret", raw=b'{"name": "/mal", "value": '),
    Case("malformed-json-garbage", "create-secret", raw=b"not json at all"),
    Case("trailing-garbage", "create-secret", raw=b'{"name":"/tg","value":"x"} xyz'),
    Case("json-array", "create-secret", raw=b'[{"name":"/arr","value":"x"}]'),
    Case("json-string", "create-secret", raw=b'"hello"'),
    Case("json-number", "create-secret", raw=b"42"),
    Case("json-null", "create-secret", raw=b"null"),
    Case("json-true", "create-secret", raw=b"true"),
    Case("empty-body", "create-secret", raw=b""),
    Case("whitespace-body", "create-secret", raw=b"   \n  "),
    Case("deep-array-100000", "create-secret", raw=b"[" * 100000),
    Case("deep-object-50000", "create-secret", raw=b'{"a":' * 50000),
    Case("deep-in-field", "create-secret", raw=b'{"name":"/deep","value":' + b"[" * 100000),
    Case("deep-closed", "list-items", raw=b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    Case("non-utf8", "create-secret", raw=b'{"name":"/nu","value":"\xff\xfe\xc3("}'),
    Case("non-utf8-key", "create-secret", raw=b'{"na\xffme":"/nu2","value":"x"}'),
    Case("lone-surrogate-escape", "create-secret", raw=b'{"name":"/ls","value":"\\ud800"}'),
    Case("huge-number", "get-secret-value", raw=b'{"names":["/x"],"version":1e400}'),
    # --- unknown verb / wrong method -------------------------------------------------------
    Case("unknown-verb", "definitely-not-a-verb", T(), expect=(404,)),
    Case("unknown-verb-traversal", "..%2Fcreate-secret", T(), expect=(400, 404)),
    Case("get-on-verb", "create-secret", None, method="GET", expect=(400, 404, 405)),
    # --- wrong types ------------------------------------------------------------------
    Case("names-int", "get-secret-value", T(names=5)),
    Case("names-list-of-int", "get-secret-value", T(names=[1, 2])),
    Case("names-object", "get-secret-value", T(names={"a": "/x"})),
    Case("names-empty", "get-secret-value", T(names=[])),
    Case("version-object", "get-secret-value", T(names=["/x"], version={"v": 1})),
    Case("version-text", "get-secret-value", T(names=["/x"], version="latest")),
    Case("value-object", "create-secret", T(name="/vo", value={"x": 1})),
    Case("value-list", "create-secret", T(name="/vl", value=["x"])),
    Case("value-number", "create-secret", T(name="/vn", value=12)),
    Case("name-int", "create-secret", T(name=7, value="x")),
    Case("name-list", "create-secret", T(name=["/a"], value="x")),
    Case("tags-string-object", "create-secret", T(name="/to", value="x", tags={"a": 1})),
    Case("token-int", "list-items", {"token": 123, "path": "/"}, expect=(400, 401)),
    Case("token-object", "list-items", {"token": {"t": 1}, "path": "/"}, expect=(400, 401)),
    Case("capability-string-bad", "set-role-rule",
         T(**{"role-name": "r-nope", "path": "/x/*", "capability": "fly"}), expect=(400, 404)),
    Case("capability-unknown", "set-role-rule",
         T(**{"role-name": "r-nope", "path": "/x/*", "capability": ["read", "fly"]}),
         expect=(400, 404)),
    Case("jwt-ttl-text", "create-auth-method", T(name="/am-bad-ttl", **{"jwt-ttl": "soon"})),
    Case("bound-ips-bad", "create-auth-method", T(name="/am-bad-ips", **{"bound-ips": ["not-an-ip"]})),
    Case("audit-access-bad", "create-role", T(name="role-bad-audit", **{"audit-access": "everything"})),
    Case("audit-result-bad", "audit-query", T(result="maybe")),
    Case("audit-since-bad", "audit-query", T(since="yesterday-ish")),
    Case("current-folder-text", "list-items", T(path="/", **{"current-folder": "perhaps"})),
    Case("delete-version-text", "delete-item", T(name="/x", version="all")),
    # --- missing required fields -------------------------------------------------------
    Case("create-secret-no-name", "create-secret", T(value="x")),
    Case("create-secret-empty-name", "create-secret", T(name="", value="x")),
    Case("create-secret-no-value", "create-secret", T(name="/nv")),
    Case("get-secret-no-names", "get-secret-value", T()),
    Case("update-no-value", "update-secret-val", T(name="/x")),
    Case("describe-no-name", "describe-item", T()),
    Case("delete-no-name", "delete-item", T()),
    Case("auth-no-access-id", "auth", {"access-key": "x"}, expect=(400, 401)),
    Case("auth-empty", "auth", {}, expect=(400, 401)),
    Case("create-am-no-name", "create-auth-method", T()),
    Case("create-role-no-name", "create-role", T()),
    Case("set-rule-no-path", "set-role-rule", T(**{"role-name": "r-nope", "capability": ["read"]})),
    Case("set-rule-no-capability", "set-role-rule", T(**{"role-name": "r-nope", "path": "/x/*"}),
         expect=(400, 404)),
    Case("assoc-no-am", "assoc-role-am", T(**{"role-name": "r-nope"})),
    Case("no-token", "list-items", {"path": "/"}, expect=(400, 401)),
    Case("empty-token", "list-items", {"token": "", "path": "/"}, expect=(400, 401)),
]

for _pid, _p in BAD_PATHS.items():
    CASES += [
        Case(f"create-secret-path-{_pid}", "create-secret", T(name=_p, value="x")),
        Case(f"get-secret-path-{_pid}", "get-secret-value", T(names=[_p]), expect=(400,)),
        Case(f"list-items-path-{_pid}", "list-items", T(path=_p)),
        Case(f"create-am-path-{_pid}", "create-auth-method", T(name=_p)),
        Case(f"set-rule-path-{_pid}", "set-role-rule",
             T(**{"role-name": "r-ok", "path": _p, "capability": ["read"]})),
    ]


def _send(server, case: Case, token: str) -> requests.Response:
    url = f"{server.api_url}/{case.verb}"
    if case.raw is not None:
        data = case.raw
    elif case.body is not None:
        data = json.dumps(_sub(case.body, token)).encode()
    else:
        data = None
    headers = {"Content-Type": "application/json", **case.headers}
    return requests.request(case.method, url, data=data, headers=headers, timeout=30)


def _check_error_response(r: requests.Response, expect: tuple) -> str | None:
    """None when fine, else a description of the problem."""
    problems = []
    if r.status_code >= 500:
        problems.append(f"server error {r.status_code}")
    elif r.status_code not in expect:
        problems.append(f"status {r.status_code}, expected one of {expect}")
    try:
        body = r.json()
    except ValueError:
        body = None
        problems.append("body is not JSON")
    if body is not None:
        if not isinstance(body, dict) or not isinstance(body.get("error"), str) \
                or not isinstance(body.get("message"), str) or not body.get("message"):
            problems.append("body lacks string 'error' and 'message'")
    if "json" not in r.headers.get("Content-Type", ""):
        problems.append(f"Content-Type {r.headers.get('Content-Type')!r}")
    if problems:
        return f"{'; '.join(problems)}: {r.text[:300]!r}"
    return None


def _snapshot(server, token):
    items = server.call("list-items", {"token": token, "path": "/"})
    ams = server.call("list-auth-methods", {"token": token})
    roles = server.call("list-roles", {"token": token})
    return (sorted(i["item_name"] for i in items["items"]),
            sorted(a["auth_method_name"] for a in ams["auth_methods"]),
            sorted(r["role_name"] for r in roles["roles"]))


def test_bad_input_is_rejected_cleanly(dev_server, admin_token):
    srv = dev_server
    # one legit object of each kind, so the bad requests have something to aim at
    srv.call("create-secret", {"token": admin_token, "name": "/x", "value": "legit"})
    srv.call("create-role", {"token": admin_token, "name": "r-ok"})
    before = _snapshot(srv, admin_token)

    failures = []
    for case in CASES:
        try:
            r = _send(srv, case, admin_token)
        except requests.RequestException as e:
            failures.append(f"{case.id}: transport error {e!r}")
        else:
            problem = _check_error_response(r, case.expect)
            if problem:
                failures.append(f"{case.id}: {problem}")
        assert srv.is_running(), f"server died after case {case.id}:\n{srv.read_log()[-3000:]}"

    assert not failures, "bad input not rejected cleanly:\n" + "\n".join(failures)

    # still healthy, still serving, and nothing was created
    assert requests.get(f"{srv.url}/v1/sys/health", timeout=5).status_code == 200
    assert srv.call("get-secret-value", {"token": admin_token, "names": ["/x"]}) == {"/x": "legit"}
    assert _snapshot(srv, admin_token) == before
    rules = srv.call("get-role", {"token": admin_token, "name": "r-ok"})["rules"]["path_rules"]
    assert rules == [], rules


@pytest.mark.parametrize("size,chunked", [
    pytest.param(2 * 1024 * 1024, False, id="2MiB-content-length"),
    pytest.param(1024 * 1024 + 1, False, id="1MiB+1-content-length"),
    pytest.param(2 * 1024 * 1024, True, id="2MiB-chunked"),
])
def test_oversize_body_is_413(dev_server, admin_token, size, chunked):
    srv = dev_server
    filler = b"a" * size
    body = b'{"token":"' + admin_token.encode() + b'","name":"/big","value":"' + filler + b'"}'
    url = f"{srv.api_url}/create-secret"
    try:
        if chunked:
            def gen():
                for i in range(0, len(body), 65536):
                    yield body[i:i + 65536]
            r = requests.post(url, data=gen(), headers={"Content-Type": "application/json"}, timeout=30)
        else:
            r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    except requests.ConnectionError as e:  # server may close early; then the status is lost
        pytest.fail(f"connection dropped instead of a 413 answer: {e!r}")
    assert r.status_code == 413, r.text[:300]
    err = r.json()
    assert err["error"] and err["message"]
    assert srv.is_running()
    # nothing stored, still serving
    r = srv.post("get-secret-value", {"token": admin_token, "names": ["/big"]})
    assert r.status_code == 404, r.text
    srv.call("list-items", {"token": admin_token, "path": "/"})


def test_body_just_under_limit_is_accepted(dev_server, admin_token):
    srv = dev_server
    prefix = b'{"token":"' + admin_token.encode() + b'","name":"/almost","value":"'
    suffix = b'"}'
    value_len = 1024 * 1024 - len(prefix) - len(suffix) - 1024  # leave room, stay < 1 MiB
    body = prefix + b"v" * value_len + suffix
    assert len(body) < 1024 * 1024
    r = requests.post(f"{srv.api_url}/create-secret", data=body,
                      headers={"Content-Type": "application/json"}, timeout=30)
    # the server may legitimately cap secret sizes lower than the body limit, but never 5xx
    assert r.status_code in (200, 400, 413), r.text[:300]
    assert r.status_code < 500
    if r.status_code == 200:
        got = srv.call("get-secret-value", {"token": admin_token, "names": ["/almost"]})
        assert len(got["/almost"]) == value_len


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_on_verb_get_json_error(dev_server, admin_token, method):
    r = requests.request(method, f"{dev_server.api_url}/create-secret",
                         data=json.dumps({"token": admin_token, "name": "/m", "value": "x"}),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert dev_server.is_running()
    assert 400 <= r.status_code < 500
    assert dev_server.post("get-secret-value", {"token": admin_token, "names": ["/m"]}).status_code == 404
    problem = _check_error_response(r, (400, 404, 405))
    assert problem is None, problem


def test_garbage_http_does_not_kill_server(dev_server, admin_token):
    srv = dev_server
    payloads = [
        b"GARBAGE\r\n\r\n",
        b"POST /api/v2/list-items HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
        b"POST /api/v2/list-items HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"tok",
        b"POST /api/v2/list-items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for p in payloads:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            try:
                s.sendall(p)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(3)
                while s.recv(65536):
                    pass
            except OSError:
                pass
        assert srv.is_running(), f"server died after {p[:40]!r}\n{srv.read_log()[-3000:]}"
    srv.call("list-items", {"token": admin_token, "path": "/"})


def test_errors_on_sys_endpoints(dev_server):
    srv = dev_server
    cases = [
        ("PUT", "unseal", b"{bad"),
        ("PUT", "unseal", b'{"key": 5}'),
        ("PUT", "unseal", b'{"key": "not-base64-!!!"}'),
        ("PUT", "init", b'{"secret_shares": "x"}'),
        ("PUT", "seal", b"{}"),  # no token
    ]
    for method, path, data in cases:
        r = requests.request(method, f"{srv.url}/v1/sys/{path}", data=data,
                             headers={"Content-Type": "application/json"}, timeout=10)
        assert 400 <= r.status_code < 500, (path, data, r.status_code, r.text)
        assert srv.is_running()
    assert srv.seal_status()["sealed"] is False
