"""The edge cache (`tessera agent`) against a real, durable central server: reads through the
agent are cached (Vault KV v2 and native get-secret-value), a central update reaches the agent
through the change stream (not a TTL), a client without the role is refused by the agent and the
refusal is audited; with the central server stopped, cached reads go on (marked stale), uncached
reads and dynamic issues fail clearly; after the restart every read served offline is in the
central trail with the client's identity and original time, and the chain verifies. The disk
cache holds none of the planted values or tokens in plain text."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests

from e2e_servers import DurableNode, clean_env, free_port, tessera_binary
from e2e_support import unique
from edge_support import Agent, edge_agent_identity, identity, login, ok


def setup_world(node: DurableNode):
    ok(node, "vault-mount-create", path="kv/", type="kv-v2", folder="/kv")
    agent_id, agent_key = edge_agent_identity(node)
    app_id, app_key = identity(node, [("/kv/*", ["read"], "item-rule"), ("/edge/app/*", ["read"], "item-rule")])
    other_id, other_key = identity(node, [("/elsewhere/*", ["read"], "item-rule")])
    return agent_id, agent_key, (app_id, login(node, app_id, app_key)), (other_id, login(node, other_id, other_key))


def kv_put(node: DurableNode, value: str):
    r = requests.post(node.base + "/v1/kv/data/app", json={"data": {"password": value}}, headers={"X-Vault-Token": node.token}, timeout=30)
    assert r.status_code == 200, r.text


def test_edge_cache_serves_through_an_outage_and_audits_every_read(central, tmp_path):
    agent_id, agent_key, (app_id, app), (other_id, other) = setup_world(central)
    first, second, native_value, unread = unique("kv-first"), unique("kv-second"), unique("native"), unique("unread")
    kv_put(central, first)
    ok(central, "create-secret", name="/edge/app/db", value=native_value)
    ok(central, "create-secret", name="/edge/app/never-read", value=unread)

    agent = Agent(tmp_path, central.base, agent_id, agent_key).start()
    try:
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 1)
        # A miss is forwarded (and audited by the central server), then answered from the cache.
        r = agent.kv(app)
        assert r.status_code == 200 and r.headers["X-Cache"] == "MISS", r.text
        assert r.json()["data"]["data"]["password"] == first
        r = agent.kv(app)
        assert r.status_code == 200 and r.headers["X-Cache"] == "HIT" and r.headers["X-Tessera-Cache"] == "hit"
        assert r.json()["data"]["data"]["password"] == first
        # query noise makes no new cache entries: such a read is only forwarded
        for _ in range(2):
            q = requests.get(f"{agent.base}/v1/kv/data/app?x=1", headers={"X-Vault-Token": app}, timeout=15)
            assert "X-Cache" not in q.headers
        # a request whose headers shape the answer (response wrapping) is only forwarded, never cached
        w = requests.get(f"{agent.base}/v1/kv/data/app", headers={"X-Vault-Token": app, "X-Vault-Wrap-TTL": "60s"}, timeout=15)
        assert "X-Cache" not in w.headers
        n = agent.native("get-secret-value", names=["/edge/app/db"], token=app)
        assert n.status_code == 200 and n.json()["/edge/app/db"] == native_value and n.headers["X-Cache"] == "MISS"
        n = agent.native("get-secret-value", names=["/edge/app/db"], token=app)
        assert n.status_code == 200 and n.headers["X-Cache"] == "HIT" and n.json()["/edge/app/db"] == native_value

        # A central update reaches the agent through the change stream (revalidation is set to 300 s).
        t0 = time.monotonic()
        kv_put(central, second)
        while True:
            r = agent.kv(app)
            if r.json()["data"]["data"]["password"] == second:
                break
            assert time.monotonic() - t0 < 10, "the update never reached the agent"
            time.sleep(0.01)
        print(f"update visible through the agent after {(time.monotonic() - t0) * 1000:.0f} ms")
        assert agent.kv(app).headers["X-Cache"] == "HIT"

        # A client without the role is refused by the agent, from the cache; the refusal is audited.
        d = agent.kv(other)
        assert d.status_code == 403 and d.json() == {"errors": ["permission denied"]}
        assert agent.native("get-secret-value", names=["/edge/app/db"], token=other).status_code == 403
        bogus = agent.kv("t-" + "0" * 64)
        assert bogus.status_code == 403

        # The central server stops.
        central.stop()
        agent.wait_metric("tessera_edge_central_reachable", lambda v: v == 0)
        offline_reads = []
        for _ in range(3):
            r = agent.kv(app)
            assert r.status_code == 200 and r.headers["X-Tessera-Cache"] == "stale", (r.status_code, r.text)
            assert r.json()["data"]["data"]["password"] == second
            offline_reads.append(time.time())
        n = agent.native("get-secret-value", names=["/edge/app/db"], token=app)
        assert n.status_code == 200 and n.headers["X-Tessera-Cache"] == "stale" and n.json()["/edge/app/db"] == native_value
        assert agent.kv(other).status_code == 403  # still refused offline, by the cached rules
        u = agent.native("get-secret-value", names=["/edge/app/never-read"], token=app)
        assert u.status_code == 503 and "not in the edge cache" in u.json()["message"]
        u = agent.kv(app, "kv/data/never-written")
        assert u.status_code == 503 and "not in the edge cache" in u.json()["errors"][0]
        dyn = agent.kv(app, "db/creds/app")
        assert dyn.status_code == 503 and "dynamic credentials are never issued" in dyn.json()["errors"][0]
        dyn = agent.native("get-dynamic-secret-value", name="/db/app", token=app)
        assert dyn.status_code == 503 and "dynamic credentials are never issued" in dyn.json()["message"]
        m = agent.metrics()
        assert m["tessera_edge_cache_stale_hits_total"] >= 4 and m["tessera_edge_audit_queued_events"] >= 5, m
        assert m["tessera_edge_staleness_seconds"] > 0

        # The disk copy holds none of the planted values or tokens in plain text.
        agent.stop()
        blob = b"".join(p.read_bytes() for p in agent.cache_dir.rglob("*") if p.is_file())
        assert blob, "the agent wrote nothing to disk"
        for planted in (first, second, native_value, app, other, agent_key, app_id):
            assert planted.encode() not in blob, f"{planted[:8]}… is in the disk cache in plain text"
        # The agent restarts during the outage: the sealed cache and the queue come back.
        agent.start()
        r = agent.kv(app)
        assert r.status_code == 200 and r.headers["X-Tessera-Cache"] == "stale" and r.json()["data"]["data"]["password"] == second
        offline_reads.append(time.time())

        # The central server comes back: the queue drains into the one trail.
        central.start()
        agent.wait_metric("tessera_edge_audit_queued_events", lambda v: v == 0, timeout=30)
        agent.wait_metric("tessera_edge_central_reachable", lambda v: v == 1)
        central.login()
        events = ok(central, "audit-query", path_prefix="/kv/app", limit=1000)["events"]
        edge = [e for e in events if e["request_parameters"].get("served_by") == "edge"]
        stale = [e for e in edge if e["request_parameters"].get("edge_cache") == "stale" and e["access_id"] == app_id]
        assert len(stale) >= 4, edge
        assert all(e["result"] == "allowed" and e["action"] == "get_secret_value" for e in stale)
        assert all("edge_agent" in e["request_parameters"] for e in edge)
        # original times: each offline read is in the trail at the time it was served
        from datetime import datetime
        times = sorted(datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() for e in stale)
        for t in offline_reads:
            assert any(abs(t - x) < 2 for x in times), (t, times)
        hits = [e for e in edge if e["request_parameters"].get("edge_cache") == "hit" and e["access_id"] == app_id]
        assert hits, edge
        denied = [e for e in edge if e["access_id"] == other_id]
        assert denied and all(e["result"] == "denied" and e["status"] == 403 for e in denied)
        native_events = ok(central, "audit-query", path_prefix="/edge/app/db", limit=1000)["events"]
        assert any(e["request_parameters"].get("served_by") == "edge" and e["interface"] == "native" for e in native_events)
        v = ok(central, "audit-verify")
        assert v["ok"] is True, v
    finally:
        agent.stop()


def test_agent_without_the_edge_grant_never_answers_from_its_cache(central, tmp_path):
    ok(central, "vault-mount-create", path="kv/", type="kv-v2", folder="/kv")
    kv_put(central, "v")
    weak_id, weak_key = identity(central, [("/kv/*", ["read"], "item-rule")])
    app_id, app_key = identity(central, [("/kv/*", ["read"], "item-rule")])
    app = login(central, app_id, app_key)
    agent = Agent(tmp_path, central.base, weak_id, weak_key).start()
    try:
        time.sleep(1)
        for _ in range(3):
            r = agent.kv(app)
            assert r.status_code == 200 and r.headers.get("X-Cache") != "HIT", r.headers
        assert agent.metrics()["tessera_edge_change_stream_live"] == 0
    finally:
        agent.stop()


def test_edge_endpoints_refuse_other_identities_and_bad_reports(central, tmp_path):
    agent_id, agent_key, (app_id, app), _ = setup_world(central)
    agent_token = login(central, agent_id, agent_key)
    h = {"X-Vault-Token": app}
    # an ordinary identity can neither follow the changes nor write audit events
    assert requests.get(central.base + "/v1/sys/edge/changes", headers=h, timeout=10).status_code == 403
    event = {"time_us": int(time.time() * 1e6), "request_id": "r1", "interface": "vault", "auth_method_type": "api_key",
             "access_id": "p-forged", "actor_name": "x", "client_address": "127.0.0.1", "action": "get_secret_value",
             "path": "/kv/app", "result": "allowed", "status": 200, "error": "", "cache": "hit", "age_seconds": 0}
    assert requests.post(central.base + "/v1/sys/edge/audit", json={"events": [event]}, headers=h, timeout=10).status_code == 403
    assert requests.get(central.base + "/v1/sys/edge/changes").status_code == 403  # anonymous
    # the agent's own reports are checked whole: one bad event and nothing is recorded
    ah = {"X-Vault-Token": agent_token}
    bad = [dict(event, time_us=int((time.time() + 3600) * 1e6)), dict(event, action="delete_item"),
           dict(event, status=10**30), dict(event, path="/x\n/y"), dict(event, interface="system")]
    for b in bad:
        r = requests.post(central.base + "/v1/sys/edge/audit", json={"events": [event, b]}, headers=ah, timeout=10)
        assert r.status_code == 400, (b, r.text)
    r = requests.post(central.base + "/v1/sys/edge/audit", data=b"{not json", headers=ah, timeout=10)
    assert r.status_code == 400
    assert not [e for e in ok(central, "audit-query", access_id="p-forged")["events"]]
    # a good report is recorded, marked as reported by the agent
    r = requests.post(central.base + "/v1/sys/edge/audit", json={"events": [event]}, headers=ah, timeout=10)
    assert r.status_code == 200 and r.json() == {"recorded": 1}
    got = ok(central, "audit-query", access_id="p-forged")["events"]
    assert len(got) == 1 and got[0]["request_parameters"]["served_by"] == "edge" and agent_id in got[0]["request_parameters"]["edge_agent"]
    # the identity endpoint answers only about the caller itself
    me = requests.get(central.base + "/v1/sys/edge/self", headers=h, timeout=10).json()
    assert me["access_id"] == app_id and any(r["path"] == "/kv/*" for r in me["rules"])
    assert requests.get(central.base + "/v1/sys/edge/self", timeout=10).status_code == 403


def test_the_cache_key_file_may_not_live_in_the_cache(central, tmp_path):
    agent_id, agent_key, _, _ = setup_world(central)
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / "k").write_text(os.urandom(32).hex())
    p = subprocess.run([tessera_binary(), "agent", "--address", central.base, "--cache-dir", str(cache), "--cache-key-file", str(cache / "k"),
                        "--access-id", agent_id, "--access-key", agent_key, "--listen", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=30, env=clean_env({"HOME": str(tmp_path)}))
    assert p.returncode != 0 and "must not be kept in the cache directory" in p.stderr
    p = subprocess.run([tessera_binary(), "agent", "--address", central.base, "--cache-dir", str(tmp_path / "d"),
                        "--access-id", agent_id, "--access-key", agent_key, "--listen", f"0.0.0.0:{free_port()}"],
                       capture_output=True, text=True, timeout=30, env=clean_env({"HOME": str(tmp_path)}))
    assert p.returncode != 0 and "loopback" in p.stderr


def test_a_removed_grant_or_a_sealed_server_stops_the_cache(central, tmp_path):
    ok(central, "vault-mount-create", path="kv/", type="kv-v2", folder="/kv")
    kv_put(central, "sealed-test")
    role = unique("edge-agent-role-")
    agent_id, agent_key = edge_agent_identity(central, role=role)
    app_id, app_key = identity(central, [("/kv/*", ["read"], "item-rule")])
    app = login(central, app_id, app_key)
    agent = Agent(tmp_path, central.base, agent_id, agent_key).start()
    try:
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 1)
        assert agent.kv(app).headers["X-Cache"] == "MISS"
        assert agent.kv(app).headers["X-Cache"] == "HIT"
        # an emergency seal: the agent answers nothing from its cache, as the server answers nothing
        assert requests.put(central.base + "/v1/sys/seal", headers={"X-Vault-Token": central.token}, timeout=30).status_code in (200, 204)
        agent.wait_metric("tessera_edge_central_sealed", lambda v: v == 1)
        r = agent.kv(app)
        assert r.status_code == 503 and "sealed" in r.json()["errors"][0], r.text
        central.stop()
        central.start()  # unseals itself from its key file
        central.login()
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 1, timeout=30)
        r = agent.kv(app)
        assert r.status_code == 200 and r.json()["data"]["data"]["password"] == "sealed-test"
        # the agent's grant is taken away: its stream ends, its reports are refused, and it only forwards
        ok(central, "delete-role-rule", role_name=role, path="/sys/edge", rule_type="sys-rule")
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 0, timeout=40)
        deadline = time.time() + 20
        while agent.kv(app).headers.get("X-Cache") == "HIT":
            assert time.time() < deadline, "the agent kept answering from its cache without the grant"
            time.sleep(0.2)
        r = agent.kv(app)
        assert r.status_code == 200 and r.headers.get("X-Cache") != "HIT"
    finally:
        agent.stop()


def test_a_use_limited_token_spends_every_read_through_the_agent(central, tmp_path):
    """A token limited by use count is never answered from the agent's cache: each read is
    forwarded and spends a use on the central server, and once they are spent the agent refuses."""
    agent_id, agent_key, (app_id, app), _ = setup_world(central)
    kv_put(central, "limited")
    r = requests.put(central.base + "/v1/sys/policies/acl/edge-limited",
                     json={"policy": 'path "kv/data/*" { capabilities = ["read"] }'}, headers={"X-Vault-Token": central.token}, timeout=30)
    assert r.status_code == 204, r.text
    r = requests.post(central.base + "/v1/auth/token/create", json={"policies": ["edge-limited"], "num_uses": 3},
                      headers={"X-Vault-Token": central.token}, timeout=30)
    assert r.status_code == 200, r.text
    limited = r.json()["auth"]["client_token"]
    agent = Agent(tmp_path, central.base, agent_id, agent_key).start()
    try:
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 1)
        assert agent.kv(app).status_code == 200   # the answer is in the cache now
        for i in range(3):
            r = agent.kv(limited)
            assert r.status_code == 200 and r.headers.get("X-Cache") != "HIT", (i, r.status_code, r.headers)
        r = agent.kv(limited)
        assert r.status_code == 403, (r.status_code, r.text)
    finally:
        agent.stop()
