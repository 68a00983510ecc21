"""Calls from hvac's own integration tests that once differed from OpenBao, side by side: a
policy that denies `sys` (hvac's test policy), durations read back in Go's form (`30m0s`), a
negative check-and-set, `sys/rekey/backup` without backups, and disabling an audit device that
is not enabled.

Tessera-only: `require_verification` on a rekey is refused, not silently ignored."""

from __future__ import annotations

import pytest

import vaultlib as V


def test_hvac_suite_calls(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        name = f"{pfx}-hvtest"
        policy = 'path "sys" {\n  policy = "deny"\n}\npath "secret" {\n  policy = "write"\n}\n'
        V.hvac_call(tr, "policy denying sys", lambda: c.sys.create_or_update_policy(name=name, policy=policy))
        got = V.hvac_call(tr, "read it back", lambda: c.sys.read_policy(name=name), ignore=("$.modified", "$.data.modified"))
        assert got["rules"] == policy, got
        V.hvac_call(tr, "delete it", lambda: c.sys.delete_policy(name=name))

        p = f"{pfx}/dva"
        V.hvac_call(tr, "metadata with delete_version_after 45m", lambda: c.secrets.kv.v2.update_metadata(
            path=p, delete_version_after="45m", mount_point=t.kv2))
        got = V.hvac_call(tr, "read metadata", lambda: c.secrets.kv.v2.read_secret_metadata(path=p, mount_point=t.kv2))
        assert got["data"]["delete_version_after"] == "45m0s", got
        V.hvac_call(tr, "metadata with 1h30m5s", lambda: c.secrets.kv.v2.update_metadata(
            path=p, delete_version_after="1h30m5s", mount_point=t.kv2))
        got = V.hvac_call(tr, "read again", lambda: c.secrets.kv.v2.read_secret_metadata(path=p, mount_point=t.kv2))
        assert got["data"]["delete_version_after"] == "1h30m5s", got

        assert t.http("POST", f"/v1/{t.kv2}/data/{pfx}/cas", {"data": {"a": "1"}}).status == 200
        r = tr.resp("negative cas", t.http("POST", f"/v1/{t.kv2}/data/{pfx}/cas", {"options": {"cas": -1}, "data": {"a": "2"}}),
                    compare_err=True)
        assert r.status == 400 and "did not match the current version" in r.json()["errors"][0], r

        r = tr.resp("rekey backup", t.http("GET", "/v1/sys/rekey/backup"), compare_err=True)
        assert r.status == 400 and r.json()["errors"] == ["no backed-up keys found"], r
        r = tr.resp("disable an absent audit device", t.http("DELETE", f"/v1/sys/audit/{pfx}-none"))
        assert r.status == 204, r
        return tr

    compared(target, "hvac-suite-calls", scenario)


@pytest.fixture
def real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")
    return tessera_target


def test_rekey_verification_is_refused_not_ignored(real_tessera):
    t = real_tessera
    r = t.http("PUT", "/v1/sys/rekey/init", {"secret_shares": 1, "secret_threshold": 1, "require_verification": True})
    assert r.status == 400 and "require_verification" in r.json()["errors"][0], r
    r = t.http("GET", "/v1/sys/rekey/init")
    assert r.status == 200 and r.json()["started"] is False, r
