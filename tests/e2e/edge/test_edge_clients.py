"""Real clients through `tessera agent`, pointed at it the way their users would (VAULT_ADDR for
the bao CLI and hvac, the host for the Akeyless SDK): each reads online, then again with the
central server stopped — `bao kv get` included, whose mount preflight the agent answers from the
token's own earlier answer — and every offline read reaches the central trail afterwards."""

from __future__ import annotations

import subprocess

import akeyless
import hvac
import pytest
import requests

from e2e_servers import bao_binary, clean_env
from e2e_support import unique
from edge_support import Agent, edge_agent_identity, identity, login, ok


def bao_kv_get(agent: Agent, token: str, home) -> subprocess.CompletedProcess:
    env = clean_env({"VAULT_ADDR": agent.base, "VAULT_TOKEN": token, "HOME": str(home)})
    return subprocess.run([bao_binary(), "kv", "get", "-field=password", "secret/app"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_bao_hvac_and_the_akeyless_sdk_read_through_an_outage(central, tmp_path):
    ok(central, "vault-mount-create", path="secret/", type="kv-v2", folder="/secret")
    pw, native_value = unique("pw"), unique("native")
    r = requests.post(central.base + "/v1/secret/data/app", json={"data": {"password": pw}},
                      headers={"X-Vault-Token": central.token}, timeout=30)
    assert r.status_code == 200, r.text
    ok(central, "create-secret", name="/apps/web/key", value=native_value)
    agent_id, agent_key = edge_agent_identity(central)
    app_id, app_key = identity(central, [("/secret/*", ["read"], "item-rule"), ("/apps/web/*", ["read"], "item-rule")])
    app = login(central, app_id, app_key)
    agent = Agent(tmp_path, central.base, agent_id, agent_key).start()
    try:
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 1)
        sdk = akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=f"{agent.base}/api/v2")))
        vault = hvac.Client(url=agent.base, token=app)

        def read_all():
            p = bao_kv_get(agent, app, tmp_path)
            assert p.returncode == 0 and p.stdout.strip() == pw, (p.returncode, p.stdout, p.stderr)
            got = vault.secrets.kv.v2.read_secret_version(path="app", mount_point="secret", raise_on_deleted_version=True)
            assert got["data"]["data"] == {"password": pw}
            assert sdk.get_secret_value(akeyless.GetSecretValue(names=["/apps/web/key"], token=app)) == {"/apps/web/key": native_value}

        read_all()
        read_all()
        # the SDK's login is forwarded (and is not possible offline)
        assert sdk.auth(akeyless.Auth(access_id=app_id, access_key=app_key)).token.startswith("t-")
        assert agent.metrics()["tessera_edge_cache_hits_total"] >= 2

        central.stop()
        agent.wait_metric("tessera_edge_central_reachable", lambda v: v == 0)
        read_all()
        assert agent.metrics()["tessera_edge_cache_stale_hits_total"] >= 4
        with pytest.raises(akeyless.exceptions.ApiException) as e:
            sdk.auth(akeyless.Auth(access_id=app_id, access_key=app_key))
        assert e.value.status == 503

        central.start()
        agent.wait_metric("tessera_edge_audit_queued_events", lambda v: v == 0, timeout=30)
        central.login()
        events = ok(central, "audit-query", access_id=app_id, limit=1000)["events"]
        stale = [e for e in events if e["request_parameters"].get("edge_cache") == "stale"]
        assert {e["action"] for e in stale} >= {"get_secret_value", "mount_preflight"}, stale
        assert any(e["interface"] == "native" and e["path"] == "/apps/web/key" for e in stale)
        assert ok(central, "audit-verify")["ok"] is True
    finally:
        agent.stop()
