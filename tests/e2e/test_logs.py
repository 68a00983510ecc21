"""Secrets never reach the server log (even at trace level) or the databases in clear text."""

from __future__ import annotations

import base64
import secrets

import requests

from e2e_support import unique


def _db_files(data_dir):
    return sorted(p for p in data_dir.iterdir()
                  if p.is_file() and (p.name.startswith("tessera.db") or p.name.startswith("audit.db")))


def _variants(s: str) -> list[bytes]:
    """The planted string as it could appear on disk: raw, plus JSON-escaped '/' form."""
    b = s.encode()
    out = {b, s.replace("/", "\\/").encode()}
    return sorted(out)


def _find_leaks(blobs: dict[str, bytes], planted: dict[str, str]) -> list[str]:
    leaks = []
    for label, value in planted.items():
        for needle in _variants(value):
            for where, data in blobs.items():
                if needle in data:
                    leaks.append(f"{label} ({value[:24]}...) found in {where}")
    return leaks


def test_no_secrets_in_logs_or_databases(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = server_factory(data_dir=data_dir, log_level="trace", name="trace")
    srv.start()

    init = srv.init(shares=3, threshold=2)
    admin_id, admin_key = init["admin_access_id"], init["admin_access_key"]
    planted: dict[str, str] = {"admin access key": admin_key, "root token": init["root_token"]}
    for i, (hx, b64) in enumerate(zip(init["keys"], init["keys_base64"])):
        planted[f"unseal share {i} (hex)"] = hx
        planted[f"unseal share {i} (base64)"] = b64

    admin_tok = srv.login(admin_id, admin_key)
    planted["admin token"] = admin_tok

    # secret values: create + several updates, with characters that survive escaping
    values = {f"secret v{i}": unique(f"PLANTED-VALUE-{i}") for i in range(1, 4)}
    planted.update(values)
    srv.call("create-secret", {"token": admin_tok, "name": "/prod/db/password",
                               "value": values["secret v1"], "description": "db"})
    srv.call("update-secret-val", {"token": admin_tok, "name": "/prod/db/password",
                                   "value": values["secret v2"]})
    srv.call("update-secret-val", {"token": admin_tok, "name": "/prod/db/password",
                                   "value": values["secret v3"]})
    json_value = '{"user":"admin","password":"%s"}' % unique("PLANTED-JSON-PW")
    planted["json secret password"] = json_value.split('"password":"')[1].rstrip('"}')
    srv.call("create-secret", {"token": admin_tok, "name": "/prod/app/config",
                               "value": json_value, "format": "json"})
    multiline = unique("PLANTED-MULTILINE") + "\nline2-" + secrets.token_hex(8)
    planted["multiline secret"] = multiline.split("\n")[0]
    srv.call("create-secret", {"token": admin_tok, "name": "/dev/multi", "value": multiline})

    # a rejected write with a planted value (conflict) must not log the value either
    rejected = unique("PLANTED-REJECTED")
    planted["value of a rejected create"] = rejected
    r = srv.post("create-secret", {"token": admin_tok, "name": "/prod/db/password", "value": rejected})
    assert r.status_code == 409, r.text

    # an auth method for a colleague, with a read-only role
    am = srv.call("create-auth-method", {"token": admin_tok, "name": "/colleague"})
    planted["colleague access key"] = am["access_key"]
    srv.call("create-role", {"token": admin_tok, "name": "readers"})
    srv.call("set-role-rule", {"token": admin_tok, "role-name": "readers", "path": "/dev/*",
                               "capability": ["read", "list"]})
    srv.call("assoc-role-am", {"token": admin_tok, "role-name": "readers", "am-name": "/colleague"})
    col_tok = srv.login(am["access_id"], am["access_key"])
    planted["colleague token"] = col_tok
    col_tok2 = srv.login(am["access_id"], am["access_key"])
    planted["colleague token 2"] = col_tok2

    # use the tokens: allowed reads, denied reads, denied writes with a planted value
    got = srv.call("get-secret-value", {"token": admin_tok, "names": ["/prod/db/password"]})
    assert got == {"/prod/db/password": values["secret v3"]}
    got = srv.call("get-secret-value", {"token": admin_tok, "names": ["/prod/db/password"], "version": 1})
    assert got == {"/prod/db/password": values["secret v1"]}
    assert srv.call("get-secret-value", {"token": col_tok, "names": ["/dev/multi"]}) == {"/dev/multi": multiline}
    srv.call("list-items", {"token": col_tok, "path": "/"})
    srv.call("describe-item", {"token": admin_tok, "name": "/prod/db/password"})
    srv.call("validate-token", {"token": col_tok})
    assert srv.post("get-secret-value", {"token": col_tok, "names": ["/prod/db/password"]}).status_code == 403
    denied_write = unique("PLANTED-DENIED-WRITE")
    planted["value of a denied write"] = denied_write
    assert srv.post("create-secret", {"token": col_tok, "name": "/dev/new",
                                      "value": denied_write}).status_code == 403
    assert srv.post("update-secret-val", {"token": col_tok, "name": "/dev/multi",
                                          "value": denied_write}).status_code == 403

    # failed logins with a planted wrong key (existing and unknown access ids)
    wrong_key = "PLANTED-WRONG-KEY-" + secrets.token_urlsafe(24)
    planted["wrong access key"] = wrong_key
    for access_id in (am["access_id"], admin_id, "p-nosuchid0000"):
        r = srv.post("auth", {"access-id": access_id, "access-key": wrong_key})
        assert r.status_code == 401, r.text
    # a forged token that looks real, and a revoked one
    forged = "t-" + secrets.token_hex(32)
    planted["forged token"] = forged
    assert srv.post("list-items", {"token": forged, "path": "/"}).status_code == 401
    srv.call("revoke-creds", {"token": col_tok2})
    assert srv.post("list-items", {"token": col_tok2, "path": "/"}).status_code == 401

    # Vault-style header tokens on a system endpoint
    requests.get(f"{srv.url}/v1/sys/seal-status", headers={"X-Vault-Token": admin_tok}, timeout=5)

    # the audit trail (served over the API) must not contain them either
    audit = srv.post("audit-query", {"token": admin_tok, "limit": 10000})
    assert audit.status_code == 200, audit.text
    assert len(audit.json()["events"]) > 10
    leaks = _find_leaks({"audit-query response": audit.content}, planted)
    assert not leaks, "\n".join(leaks)

    # databases while the server runs (WAL files still present)
    files = _db_files(data_dir)
    assert any(p.name == "tessera.db" for p in files) and any(p.name == "audit.db" for p in files), files
    blobs = {f"{p.name} (running)": p.read_bytes() for p in files}

    rc = srv.stop()
    assert rc == 0, srv.read_log()[-2000:]

    stopped = {p.name: p.read_bytes() for p in _db_files(data_dir)}
    blobs.update({f"{name} (stopped)": data for name, data in stopped.items()})
    # positive control: non-secret facts are stored in clear, so the grep does look at real data
    audit_bytes = b"".join(d for n, d in stopped.items() if n.startswith("audit.db"))
    assert b"/prod/db/password" in audit_bytes and am["access_id"].encode() in audit_bytes
    leaks = _find_leaks(blobs, planted)
    assert not leaks, "secrets stored in clear text:\n" + "\n".join(leaks)

    log = srv.read_all_log_bytes()
    assert len(log) > 0
    assert b"trace" in log, "trace logging did not produce trace lines"
    leaks = _find_leaks({"server log": log}, planted)
    assert not leaks, "secrets in the server log:\n" + "\n".join(leaks)
    # and not in base64 either (e.g. a logged raw body)
    for label, value in planted.items():
        enc = base64.b64encode(value.encode())[:-4]  # drop padding-sensitive tail
        assert enc not in log, f"{label} found base64-encoded in the server log"
