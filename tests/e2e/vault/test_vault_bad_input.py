"""Hostile and malformed input on the /v1 KV endpoints.

Each case records the status real OpenBao 2.7.2 answers (checked by the bao variant).  Tessera
must answer a 4xx with Content-Type exactly application/json and a body {"errors":[...]}, never
a 5xx and never a 401; where the comparison is meaningful (`same_class`) its status class must be
bao's too.  Go's HTTP mux answers a non-clean path (`..`, `.`, `//`) with a 307 redirect to the
cleaned path and an HTML body: that is not something to copy, so those cases only require a 4xx
from tessera.  The requests go through http.client, so paths are sent exactly as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import vaultlib as V

LONG = "a" * 5000
DENIED = ["permission denied"]
KV2_BODY = b'{"data":{"a":"b"}}'
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@dataclass
class Bad:
    id: str
    method: str
    path: str                     # {kv2} {kv1} {p} are substituted
    raw: bytes | None = None
    bao: int = 400                # status from OpenBao 2.7.2
    same_class: bool = True       # tessera's status class must equal bao's
    token: str = "admin"          # admin | none | bogus | empty | bearer-bogus
    headers: dict = field(default_factory=dict)
    errors: list | None = None    # exact `errors` expected from both targets
    bao_json: bool = True         # bao answers JSON {"errors": [...]}


CASES = [
    # --- path traversal and non-canonical paths ---------------------------------------------
    Bad("dotdot-kv2-get", "GET", "/v1/{kv2}/data/{p}/../{p}/x", bao=307, same_class=False, bao_json=False),
    Bad("dotdot-kv2-put", "PUT", "/v1/{kv2}/data/{p}/../y", KV2_BODY, bao=307, same_class=False, bao_json=False),
    Bad("dotdot-kv2-mount", "GET", "/v1/{kv2}/data/../../{kv1}/{p}/x", bao=307, same_class=False, bao_json=False),
    Bad("dotdot-kv1-get", "GET", "/v1/{kv1}/{p}/../x", bao=307, same_class=False, bao_json=False),
    Bad("dotdot-kv1-put", "PUT", "/v1/{kv1}/{p}/../y", b'{"a":"b"}', bao=307, same_class=False, bao_json=False),
    Bad("dot-kv2-get", "GET", "/v1/{kv2}/data/{p}/./x", bao=307, same_class=False, bao_json=False),
    Bad("double-slash-kv2-get", "GET", "/v1/{kv2}/data/{p}//x", bao=307, same_class=False, bao_json=False),
    Bad("double-slash-kv2-mount", "GET", "/v1/{kv2}//data/{p}/x", bao=307, same_class=False, bao_json=False),
    Bad("double-slash-kv1-put", "PUT", "/v1/{kv1}/{p}//y", b'{"a":"b"}', bao=307, same_class=False, bao_json=False),
    # OpenBao: 400 {"errors":["relative paths not supported"]}
    Bad("encoded-dotdot-kv2-get", "GET", "/v1/{kv2}/data/{p}/%2e%2e/{p}/x", bao=400),
    Bad("encoded-dotdot-kv2-put", "PUT", "/v1/{kv2}/data/{p}/%2e%2e/y", KV2_BODY, bao=400),
    Bad("encoded-dotdot-kv1-get", "GET", "/v1/{kv1}/{p}/%2e%2e/x", bao=400),
    Bad("encoded-dotdot-upper-kv1-put", "PUT", "/v1/{kv1}/{p}/%2E%2E/y", b'{"a":"b"}', bao=400),
    Bad("encoded-nul", "GET", "/v1/{kv2}/data/{p}/%00x", bao=400, bao_json=False),
    # --- very long paths (bao has no limit; tessera's item paths are bounded) -------------------
    Bad("long-kv2-get", "GET", "/v1/{kv2}/data/{p}/" + LONG, bao=404),
    Bad("long-kv1-get", "GET", "/v1/{kv1}/{p}/" + LONG, bao=404),
    Bad("long-kv2-list", "LIST", "/v1/{kv2}/metadata/{p}/" + LONG, bao=404),
    Bad("long-kv2-put", "PUT", "/v1/{kv2}/data/{p}/" + LONG, KV2_BODY, bao=200, same_class=False),
    Bad("long-kv1-put", "PUT", "/v1/{kv1}/{p}/" + LONG, b'{"a":"b"}', bao=204, same_class=False),
    # --- KV v2 data bodies that are not {"data": {...}} ----------------------------------------
    Bad("kv2-array", "PUT", "/v1/{kv2}/data/{p}/new", b"[1]"),
    Bad("kv2-string", "PUT", "/v1/{kv2}/data/{p}/new", b'"x"'),
    Bad("kv2-null", "PUT", "/v1/{kv2}/data/{p}/new", b"null"),
    Bad("kv2-number", "PUT", "/v1/{kv2}/data/{p}/new", b"42"),
    Bad("kv2-true", "POST", "/v1/{kv2}/data/{p}/new", b"true"),
    Bad("kv2-malformed", "PUT", "/v1/{kv2}/data/{p}/new", b'{"data":'),
    Bad("kv2-garbage", "POST", "/v1/{kv2}/data/{p}/new", b"not json"),
    Bad("kv2-data-array", "PUT", "/v1/{kv2}/data/{p}/new", b'{"data":[1]}'),
    Bad("kv2-data-string", "PUT", "/v1/{kv2}/data/{p}/new", b'{"data":"x"}'),
    Bad("kv2-empty-object", "PUT", "/v1/{kv2}/data/{p}/new", b"{}"),
    Bad("kv2-empty-body", "PUT", "/v1/{kv2}/data/{p}/new", b""),
    Bad("kv2-deep-nesting", "PUT", "/v1/{kv2}/data/{p}/new", b'{"data":{"a":' + b"[" * 100000),
    Bad("kv2-options-cas-string", "PUT", "/v1/{kv2}/data/{p}/x", b'{"data":{"a":"b"},"options":{"cas":"x"}}'),
    # --- KV v1 bodies ---------------------------------------------------------------------------
    Bad("kv1-array", "PUT", "/v1/{kv1}/{p}/new", b"[1]"),
    Bad("kv1-string", "POST", "/v1/{kv1}/{p}/new", b'"x"'),
    Bad("kv1-null", "PUT", "/v1/{kv1}/{p}/new", b"null"),
    Bad("kv1-malformed", "PUT", "/v1/{kv1}/{p}/new", b'{"a":'),
    Bad("kv1-empty-object", "PUT", "/v1/{kv1}/{p}/new", b"{}"),
    # --- PATCH, versions, query parameters --------------------------------------------------------
    Bad("patch-no-merge-content-type", "PATCH", "/v1/{kv2}/data/{p}/x", b'{"data":{"c":"d"}}'),
    Bad("patch-array", "PATCH", "/v1/{kv2}/data/{p}/x", b"[1]", headers=MERGE_PATCH),
    Bad("patch-missing-key", "PATCH", "/v1/{kv2}/data/{p}/nope", b'{"data":{"c":"d"}}', bao=404,
        headers=MERGE_PATCH, bao_json=False),
    Bad("version-not-a-number", "GET", "/v1/{kv2}/data/{p}/x?version=abc"),
    Bad("delete-versions-empty", "PUT", "/v1/{kv2}/delete/{p}/x", b'{"versions":[]}'),
    Bad("delete-no-versions", "POST", "/v1/{kv2}/delete/{p}/x", b"{}"),
    Bad("undelete-versions-string", "PUT", "/v1/{kv2}/undelete/{p}/x", b'{"versions":"x"}'),
    Bad("destroy-versions-garbage", "PUT", "/v1/{kv2}/destroy/{p}/x", b'{"versions":["abc"]}'),
    # --- methods ------------------------------------------------------------------------------
    Bad("method-FOO-kv2", "FOO", "/v1/{kv2}/data/{p}/x", bao=405),
    Bad("method-FOO-kv1", "FOO", "/v1/{kv1}/{p}/x", bao=405),
    Bad("method-FOO-metadata", "FOO", "/v1/{kv2}/metadata/{p}/x", bao=405),
    Bad("GET-on-delete-endpoint", "GET", "/v1/{kv2}/delete/{p}/x", bao=405),
    Bad("data-trailing-slash", "GET", "/v1/{kv2}/data/{p}/x/", bao=500, same_class=False),
    # --- missing and bogus tokens: always 403 permission denied, never 401 ---------------------------
    Bad("no-token-kv2-get", "GET", "/v1/{kv2}/data/{p}/x", bao=403, token="none", errors=DENIED),
    Bad("no-token-kv2-put", "PUT", "/v1/{kv2}/data/{p}/x", KV2_BODY, bao=403, token="none", errors=DENIED),
    Bad("no-token-kv2-list", "LIST", "/v1/{kv2}/metadata/{p}", bao=403, token="none", errors=DENIED),
    Bad("no-token-kv2-delete", "DELETE", "/v1/{kv2}/data/{p}/x", bao=403, token="none", errors=DENIED),
    Bad("no-token-kv1-get", "GET", "/v1/{kv1}/{p}/x", bao=403, token="none", errors=DENIED),
    Bad("no-token-unmounted", "GET", "/v1/nomount/x", bao=403, token="none", errors=DENIED),
    Bad("no-token-preflight", "GET", "/v1/sys/internal/ui/mounts/{kv2}/{p}/x", bao=403, token="none",
        errors=DENIED),
    Bad("empty-token", "GET", "/v1/{kv2}/data/{p}/x", bao=403, token="empty", errors=DENIED),
    Bad("bogus-token-kv2-get", "GET", "/v1/{kv2}/data/{p}/x", bao=403, token="bogus", errors=DENIED),
    Bad("bogus-token-kv2-missing", "GET", "/v1/{kv2}/data/{p}/nope", bao=403, token="bogus", errors=DENIED),
    Bad("bogus-token-kv1-put", "PUT", "/v1/{kv1}/{p}/x", b'{"a":"b"}', bao=403, token="bogus", errors=DENIED),
    Bad("bogus-token-metadata", "GET", "/v1/{kv2}/metadata/{p}/x", bao=403, token="bogus", errors=DENIED),
    Bad("bogus-bearer-token", "GET", "/v1/{kv2}/data/{p}/x", bao=403, token="bearer-bogus", errors=DENIED),
    Bad("bogus-token-lookup-self", "GET", "/v1/auth/token/lookup-self", bao=403, token="bogus", errors=DENIED),
]


@pytest.fixture(scope="module")
def seeded(target):
    """A prefix under which `x` exists on both mounts of this target."""
    p = V.unique("bad")
    r = target.http("PUT", f"/v1/{target.kv2}/data/{p}/x", {"data": {"a": "b"}})
    assert r.status == 200, r
    r = target.http("PUT", f"/v1/{target.kv1}/{p}/x", {"a": "b"})
    assert r.status == 204, r
    return p


def send(t: V.Target, case: Bad, p: str) -> V.Resp:
    path = case.path.format(kv2=t.kv2, kv1=t.kv1, p=p)
    headers = dict(case.headers)
    token: object = V._DEFAULT
    if case.token == "none":
        token = None
    elif case.token == "bogus":
        token = "bogus-token-0123456789"
    elif case.token == "empty":
        token = ""
    elif case.token == "bearer-bogus":
        token = None
        headers["Authorization"] = "Bearer bogus-token-0123456789"
    return t.http(case.method, path, raw=case.raw, token=token, headers=headers)


def check_error_body(r: V.Resp, case: Bad) -> None:
    assert r.content_type == "application/json", r
    body = r.try_json()
    assert isinstance(body, dict) and set(body) == {"errors"}, r
    assert isinstance(body["errors"], list) and all(isinstance(e, str) for e in body["errors"]), r
    if r.status == 400:
        assert body["errors"], f"a 400 should say what is wrong: {r!r}"
    if case.errors is not None:
        assert body["errors"] == case.errors, r


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(target, seeded, case: Bad):
    r = send(target, case, seeded)
    if target.is_bao:
        # pins the reference behaviour these expectations were written from
        assert r.status == case.bao, r
        if case.bao_json and r.method != "HEAD" and r.status >= 400:
            check_error_body(r, case)
        return
    assert r.status != 401, f"never 401: {r!r}"
    assert 400 <= r.status < 500, f"expected a 4xx (OpenBao answers {case.bao}): {r!r}"
    if case.same_class:
        assert r.status // 100 == case.bao // 100, f"OpenBao answers {case.bao}: {r!r}"
    check_error_body(r, case)
    # the server is still fine and nothing was written outside the prefix
    ok = target.http("GET", f"/v1/{target.kv2}/data/{seeded}/x")
    assert ok.status == 200 and ok.json()["data"]["data"] == {"a": "b"}, ok


def test_traversal_wrote_nothing(target, seeded):
    """After the traversal cases, the sibling key `y` must not exist anywhere on tessera."""
    for case in CASES:
        if case.id.startswith(("dotdot", "encoded-dotdot", "double-slash")) and case.method == "PUT":
            send(target, case, seeded)
    if target.is_bao:
        return
    r = target.http("LIST", f"/v1/{target.kv2}/metadata/{seeded}")
    assert r.status == 200 and r.json()["data"]["keys"] == ["x"], r
    r = target.http("LIST", f"/v1/{target.kv1}/{seeded}")
    assert r.status == 200 and r.json()["data"]["keys"] == ["x"], r
    for path in (f"/v1/{target.kv2}/data/y", f"/v1/{target.kv1}/y"):
        r = target.http("GET", path)
        assert r.status == 404, r
