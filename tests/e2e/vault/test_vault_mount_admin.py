"""Mount and auth-method administration side by side with OpenBao: moving a mount with
`bao secrets move` and hvac's `move_backend` (its secrets go with it, the status reads back),
the old `generic` engine type, tuning an AppRole mount's description and lease TTLs (kept and
shown by `sys/auth`), and the config of a Kubernetes mount that was never configured.

Tessera-only: a move is authorized as disabling the old mount and enabling the new one, and a
caller who may not delete the items, or create them at their new paths, cannot move them."""

from __future__ import annotations

import json
import time

import pytest

import vaultlib as V

ENTRY_IGNORE = ("$.uuid", "$.data.uuid", "$.accessor", "$.data.accessor", "$.running_plugin_version",
                "$.data.running_plugin_version", "$.type", "$.data.type", "$.options", "$.data.options")


def test_secrets_move(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        src, dst = f"{pfx}mvsrc", f"{pfx}mvdst"
        assert t.http("POST", f"/v1/sys/mounts/{src}", {"type": "kv", "options": {"version": "2"}}).status == 204
        assert t.http("POST", f"/v1/{src}/data/app/db", {"data": {"password": "s3cret"}}).status == 200
        assert t.http("POST", f"/v1/{src}/data/top", {"data": {"a": "1"}}).status == 200
        r = tr.cli("secrets move", t.bao("secrets", "move", f"{src}/", f"{dst}/"))
        assert r.rc == 0, r
        mounts = t.http("GET", "/v1/sys/mounts").json()["data"]
        assert f"{dst}/" in mounts and f"{src}/" not in mounts, mounts
        r = tr.resp("read moved secret", t.http("GET", f"/v1/{dst}/data/app/db"),
                    ignore=("$.data.metadata.created_time",))
        assert r.json()["data"]["data"] == {"password": "s3cret"}, r
        r = tr.resp("list moved", t.http("LIST", f"/v1/{dst}/metadata/"))
        assert sorted(r.json()["data"]["keys"]) == ["app/", "top"], r
        r = tr.resp("old path is gone", t.http("GET", f"/v1/{src}/data/app/db"), compare_err=True)
        assert r.status in (403, 404), r

        # The API: a migration id whose status reads back as a success.
        back = tr.resp("sys/remount", t.http("POST", "/v1/sys/remount", {"from": dst, "to": src}),
                       ignore=("$.data.migration_id", "$.migration_id"))
        assert back.status == 200 and back.json()["data"]["migration_id"], back
        mid = back.json()["data"]["migration_id"]
        r = t.http("GET", f"/v1/sys/remount/status/{mid}")
        for _ in range(50):
            if r.json()["data"]["migration_info"]["status"] == "success":
                break
            time.sleep(0.1)
            r = t.http("GET", f"/v1/sys/remount/status/{mid}")
        tr.resp("remount status", r, ignore=("$.data.migration_id",))
        assert r.json()["data"]["migration_info"] == {"source_mount": f"{dst}/", "target_mount": f"{src}/", "status": "success"}, r
        r = tr.resp("unknown migration", t.http("GET", "/v1/sys/remount/status/5f2708c6-64de-e4bd-5078-f74be994f0f5"))
        assert r.status == 404, r

        r = tr.resp("move an unknown mount", t.http("POST", "/v1/sys/remount", {"from": f"{pfx}none", "to": f"{pfx}x"}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("move onto a mount", t.http("POST", "/v1/sys/remount", {"from": src, "to": t.kv2}), compare_err=True)
        assert r.status == 400 and "already in use" in r.json()["errors"][0], r
        r = tr.resp("move without a destination", t.http("POST", "/v1/sys/remount", {"from": src}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("move under sys", t.http("POST", "/v1/sys/remount", {"from": src, "to": "sys/x"}), compare_err=True)
        assert r.status == 400, r

        # hvac's move_backend, with the old `generic` engine type.
        assert t.http("POST", f"/v1/sys/mounts/{pfx}gen", {"type": "generic"}).status == 204
        assert t.http("PUT", f"/v1/{pfx}gen/k", {"v": "1"}).status in (200, 204)
        V.hvac_call(tr, "hvac move_backend", lambda: t.hvac().sys.move_backend(from_path=f"{pfx}gen", to_path=f"{pfx}gen2"))
        for _ in range(50):   # OpenBao moves in the background; Tessera before it answers
            r = t.http("GET", f"/v1/{pfx}gen2/k")
            if r.status == 200:
                break
            time.sleep(0.1)
        r = tr.resp("generic moved", r)
        assert r.json()["data"] == {"v": "1"}, r
        for m in (src, f"{pfx}gen2"):
            assert t.http("DELETE", f"/v1/sys/mounts/{m}").status == 204
        return tr

    compared(target, "secrets-move", scenario)


def test_auth_mount_tune(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        mount = f"{pfx}tuned"
        assert t.http("POST", f"/v1/sys/auth/{mount}", {"type": "approle"}).status == 204
        r = tr.resp("tune description and TTLs", t.http("POST", f"/v1/sys/auth/{mount}/tune",
                                                        {"description": "ci logins", "max_lease_ttl": 12345678, "default_lease_ttl": "1h"}))
        assert r.status == 204, r
        r = tr.resp("read tune", t.http("GET", f"/v1/sys/auth/{mount}/tune"))
        d = r.json()["data"]
        assert d["max_lease_ttl"] == 12345678 and d["default_lease_ttl"] == 3600 and d["description"] == "ci logins", d
        r = tr.resp("read entry", t.http("GET", f"/v1/sys/auth/{mount}"), ignore=ENTRY_IGNORE)
        assert r.json()["data"]["description"] == "ci logins" and r.json()["data"]["config"]["max_lease_ttl"] == 12345678, r
        listed = t.http("GET", "/v1/sys/auth").json()["data"][f"{mount}/"]
        assert listed["config"]["default_lease_ttl"] == 3600, listed
        r = tr.cli("auth tune", t.bao("auth", "tune", "-max-lease-ttl=2h", f"{mount}/"))
        assert r.rc == 0, r
        hv = V.hvac_call(tr, "hvac read_auth_method_tuning", lambda: t.hvac().sys.read_auth_method_tuning(path=mount))
        assert hv["data"]["max_lease_ttl"] == 7200 and hv["data"]["default_lease_ttl"] == 3600, hv
        # The tuned max caps a login's token; the tuned default is the TTL of a role without one.
        assert t.http("POST", f"/v1/sys/auth/{mount}/tune", {"max_lease_ttl": "30m", "default_lease_ttl": "10m"}).status == 204
        for role, ttl, want in (("long", "1h", 1800), ("plain", None, 600)):
            body = {"token_policies": "default"} | ({"token_ttl": ttl} if ttl else {})
            assert t.http("POST", f"/v1/auth/{mount}/role/{role}", body).status == 204
            role_id = t.http("GET", f"/v1/auth/{mount}/role/{role}/role-id").json()["data"]["role_id"]
            secret_id = t.http("POST", f"/v1/auth/{mount}/role/{role}/secret-id", {}).json()["data"]["secret_id"]
            r = t.http("POST", f"/v1/auth/{mount}/login", {"role_id": role_id, "secret_id": secret_id}, token=None)
            tr.add(f"login under the tuned mount ({role})", r.status, r.json()["auth"]["lease_duration"])
            assert r.status == 200 and r.json()["auth"]["lease_duration"] == want, r
        assert t.http("DELETE", f"/v1/sys/auth/{mount}").status == 204

        k8s = f"{pfx}k8s"
        assert t.http("POST", f"/v1/sys/auth/{k8s}", {"type": "kubernetes"}).status == 204
        r = tr.resp("config never written", t.http("GET", f"/v1/auth/{k8s}/config"))
        assert r.status == 404, r
        # hvac's own test writes a placeholder CA; Vault keeps it, and so does Tessera.
        placeholder = "-----BEGIN CERTIFICATE-----\\n.....\\n-----END CERTIFICATE-----"
        r = tr.resp("config with a placeholder CA", t.http("POST", f"/v1/auth/{k8s}/config",
                                                           {"kubernetes_host": "https://192.168.99.100:8443", "kubernetes_ca_cert": placeholder}))
        assert r.status == 204, r
        r = t.http("GET", f"/v1/auth/{k8s}/config")
        assert r.status == 200 and r.json()["data"]["kubernetes_ca_cert"] == placeholder, r
        assert t.http("DELETE", f"/v1/sys/auth/{k8s}").status == 204
        return tr

    compared(target, "auth-tune", scenario)


@pytest.fixture
def real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")
    return tessera_target


def test_a_move_needs_the_rights_of_a_disable_and_an_enable(real_tessera):
    t = real_tessera
    tok = t.native_token
    src = V.unique("mvs")
    assert t.http("POST", f"/v1/sys/mounts/{src}", {"type": "kv", "options": {"version": "2"}}).status == 204
    assert t.http("POST", f"/v1/{src}/data/a", {"data": {"x": "1"}}).status == 200
    name = V.unique("mover")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    for path, caps in (("/sys/remount", ["update"]), (f"/sys/mounts/{src}", ["delete"]), (f"/sys/mounts/{src}-to", ["create"])):
        t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": path, "capability": caps, "rule-type": "sys-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    vt = f"{am['access_id']}..{am['access_key']}"
    # Only the mount rights, no right on the items: the move would hand them to a new path.
    r = t.http("POST", "/v1/sys/remount", {"from": src, "to": f"{src}-to"}, token=vt)
    assert r.status == 403, r
    # Not a mount it may enable.
    r = t.http("POST", "/v1/sys/remount", {"from": src, "to": f"{src}-other"}, token=vt)
    assert r.status == 403, r
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/{src}/*", "capability": ["delete"]})
    r = t.http("POST", "/v1/sys/remount", {"from": src, "to": f"{src}-to"}, token=vt)
    assert r.status == 403, r   # it may not read them: a move would hand them to rules it chooses
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/{src}/*", "capability": ["delete", "read"]})
    r = t.http("POST", "/v1/sys/remount", {"from": src, "to": f"{src}-to"}, token=vt)
    assert r.status == 403, r   # still no create at the new paths
    # A padded path names the same mount, and is checked as that mount.
    r = t.http("POST", "/v1/sys/remount", {"from": f" {src}", "to": f"{src}-other"}, token=vt)
    assert r.status == 403, r
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/{src}-to/*", "capability": ["create"]})
    r = t.http("POST", "/v1/sys/remount", {"from": src, "to": f"{src}-to"}, token=vt)
    assert r.status == 200, r
    r = t.http("GET", f"/v1/{src}-to/data/a")
    assert r.status == 200 and r.json()["data"]["data"] == {"x": "1"}, r
    got = t.native("get-secret-value", {"token": tok, "names": [f"/{src}-to/a"]})
    assert json.loads(got[f"/{src}-to/a"]) == {"x": "1"}, got
    # A new mount at the old path starts empty.
    assert t.http("POST", f"/v1/sys/mounts/{src}", {"type": "kv", "options": {"version": "2"}}).status == 204
    assert t.http("GET", f"/v1/{src}/data/a").status == 404
    # A mount over a native folder keeps its folder when it moves.
    folder = V.unique("natmv")
    t.native("create-secret", {"token": tok, "name": f"/{folder}/keep", "value": json.dumps({"k": "v"})})
    assert t.http("POST", f"/v1/sys/mounts/{folder}", {"type": "kv", "options": {"version": "2"}}).status == 204
    assert t.http("POST", "/v1/sys/remount", {"from": folder, "to": f"{folder}-view"}).status == 200
    r = t.http("GET", f"/v1/{folder}-view/data/keep")
    assert r.status == 200 and r.json()["data"]["data"] == {"k": "v"}, r
    got = t.native("get-secret-value", {"token": tok, "names": [f"/{folder}/keep"]})
    assert json.loads(got[f"/{folder}/keep"]) == {"k": "v"}, got
    r = t.http("POST", "/v1/sys/remount", {"from": "auth/approle", "to": "auth/approle2"})
    assert r.status == 400, r
    # The auth-tune alias takes reads and writes only: a DELETE there disables nothing.
    am2 = V.unique("arm")
    assert t.http("POST", f"/v1/sys/auth/{am2}", {"type": "approle"}).status == 204
    assert t.http("POST", f"/v1/auth/{am2}/role/keep", {"token_policies": "default"}).status == 204
    r = t.http("DELETE", f"/v1/sys/mounts/auth/{am2}/tune")
    assert r.status in (404, 405), r
    assert t.http("GET", f"/v1/auth/{am2}/role/keep").status == 200
    assert t.http("DELETE", f"/v1/sys/auth/{am2}").status == 204
    for m in (src, f"{src}-to", f"{folder}-view"):
        assert t.http("DELETE", f"/v1/sys/mounts/{m}").status == 204


def test_kv_upgrade_and_token_accessors(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        mount = f"{pfx}up"
        assert t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "1"}}).status == 204
        assert t.bao("kv", "put", f"{mount}/app", "password=s3cret").rc == 0
        r = tr.cli("kv enable-versioning", t.bao("kv", "enable-versioning", f"{mount}/"))
        assert r.rc == 0, r
        for _ in range(50):   # OpenBao upgrades in the background
            r = t.http("GET", f"/v1/{mount}/data/app")
            if r.status == 200:
                break
            time.sleep(0.1)
        r = tr.resp("read through data/", r, ignore=("$.data.metadata.created_time", "$.data.metadata.version"))
        assert r.json()["data"]["data"] == {"password": "s3cret"}, r
        r = tr.resp("tune shows version 2", t.http("GET", f"/v1/sys/mounts/{mount}/tune"))
        assert r.json()["data"]["options"] == {"version": "2"}, r
        r = tr.cli("kv put after the upgrade", t.bao("kv", "put", f"{mount}/app", "password=next"))
        assert r.rc == 0, r
        r = tr.resp("downgrade", t.http("POST", f"/v1/sys/mounts/{mount}/tune", {"options": {"version": "1"}}), compare_err=True)
        assert r.status == 400, r
        assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204

        r = tr.cli("token create", t.bao("token", "create", "-format=json", "-policy=default"))
        accessor = r.json()["auth"]["accessor"]
        r = tr.cli("list auth/token/accessors", t.bao("list", "-format=json", "auth/token/accessors"))
        assert r.rc == 0 and accessor in r.json(), r
        r = tr.resp("accessors by GET is not a list", t.http("GET", "/v1/auth/token/accessors"))
        assert r.status == 405, r
        # A sudo path: list alone is not enough.
        for name, caps in ((f"{pfx}-acc-list", '["list"]'), (f"{pfx}-acc-sudo", '["list", "sudo"]')):
            assert t.http("PUT", f"/v1/sys/policies/acl/{name}",
                          {"policy": f'path "auth/token/accessors" {{ capabilities = {caps} }}'}).status == 204
        weak = t.http("POST", "/v1/auth/token/create", {"policies": [f"{pfx}-acc-list"]}).json()["auth"]["client_token"]
        strong = t.http("POST", "/v1/auth/token/create", {"policies": [f"{pfx}-acc-sudo"]}).json()["auth"]["client_token"]
        r = tr.resp("list without sudo", t.http("LIST", "/v1/auth/token/accessors", token=weak))
        assert r.status == 403, r
        r = tr.resp("list with sudo", t.http("LIST", "/v1/auth/token/accessors", token=strong), ignore=("$.data.keys",))
        assert r.status == 200, r
        return tr

    compared(target, "kv-upgrade-accessors", scenario)
