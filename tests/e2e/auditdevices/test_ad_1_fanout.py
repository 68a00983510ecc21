"""One server, four audit devices declared in its config file — a JSON-lines file, syslog over
UDP and over TCP to a real rsyslogd, and an http webhook — all receive the same events, each
exactly as the native `audit-query` verb returns it; syslog messages are RFC 5424 (UDP: one
datagram per event, TCP: octet-counted frames, checked by rsyslogd parsing them); webhook
batches carry X-Tessera-Audit-Sequence; no secret value reaches any device; `sys/audit` and
`bao audit list` show the four devices."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace

import pytest

import adlib
from adlib import missing, parse_syslog, parse_time, wait_for

SEVERITY = {"allowed": 6, "denied": 5}   # anything else (error) is 4
EXPECT_TYPE = {"jsonfile/": "file", "syslog-udp/": "syslog", "syslog-tcp/": "syslog", "webhook/": "http"}
LONG_SEGMENT = "/".join(["l" * 220] * 4)  # an event larger than 1 KiB (segments are at most 255 bytes)


@pytest.fixture(scope="module")
def fanout(module_rsyslog, module_receiver, module_audit_server_factory, tmp_path_factory):
    rs, hook = module_rsyslog, module_receiver
    tmp = tmp_path_factory.mktemp("fanout")
    hook_secret = "hook-bearer-" + secrets.token_hex(8)
    audit_file = tmp / "audit.jsonl"
    config = {"audit_devices": [
        {"name": "jsonfile", "type": "file", "path": str(audit_file), "description": "JSON lines", "start_at": "beginning"},
        {"name": "syslog-udp", "type": "syslog", "address": f"127.0.0.1:{rs.udp_port}", "protocol": "udp",
         "start_at": "beginning"},
        {"name": "syslog-tcp", "type": "syslog", "address": f"127.0.0.1:{rs.tcp_port}", "protocol": "tcp",
         "facility": "local3", "app_name": "tessera-e2e", "start_at": "beginning"},
        {"name": "webhook", "type": "http", "url": hook.url, "headers": {"Authorization": "Bearer " + hook_secret},
         "timeout_seconds": 5, "batch_size": 7, "start_at": "beginning"},
    ]}
    srv = module_audit_server_factory(config, name="fanout")

    # A workload of allowed, denied and failed requests over both APIs, with secret values.
    value = "ad-SECRET-" + secrets.token_hex(12)
    kv_value = "ad-KVSECRET-" + secrets.token_hex(12)
    name = f"/fanout/{adlib.uid()}/db-password"
    srv.ok("create-secret", {"name": name, "value": value})
    got = srv.ok("get-secret-value", {"names": [name]})
    assert value in json.dumps(got), got
    r = srv.vault("POST", "secret/data/fanout/app", {"data": {"password": kv_value}})
    assert r.status_code == 200, r.text
    r = srv.vault("GET", "secret/data/fanout/app")
    assert r.status_code == 200 and r.json()["data"]["data"]["password"] == kv_value, r.text
    assert srv.vault("GET", "secret/data/fanout/missing").status_code == 404
    assert srv.vault("GET", "secret/data/fanout/app", token="p-nobody0000001..wrong-key").status_code == 403
    r = srv.native("auth", {"access-id": srv.admin_id, "access-key": "not-the-key"}, token="")
    assert r.status_code in (401, 403), r.text
    assert srv.vault("GET", "secret/data/fanout/" + LONG_SEGMENT).status_code == 404

    dump = srv.audit_dump()
    last = max(dump)
    devices = {
        "jsonfile": lambda: {e["seq_num"]: e for e in adlib.file_events(audit_file)},
        "syslog-udp": lambda: {m["event"]["seq_num"]: m["event"] for m in adlib.syslog_events(rs, "udp")},
        "syslog-tcp": lambda: {m["event"]["seq_num"]: m["event"] for m in adlib.syslog_events(rs, "tcp")},
        "webhook": hook.events,
    }
    for dev, read in devices.items():
        wait_for(lambda: not missing(read(), 1, last), 30, f"{dev} to receive events 1..{last}")
    return SimpleNamespace(srv=srv, rs=rs, hook=hook, dump=dump, last=last, devices=devices, audit_file=audit_file,
                           secrets=[value, kv_value, srv.admin_key, hook_secret], hook_secret=hook_secret, name=name)


def test_every_device_gets_every_event_as_audit_query_returns_it(fanout):
    dump, last = fanout.dump, fanout.last
    actions = {(e["action"], e["result"]) for e in dump.values()}
    assert ("create_item", "allowed") in actions and ("get_secret_value", "allowed") in actions, actions
    assert any(e["result"] == "denied" for e in dump.values()), actions
    assert any(e["interface"] == "vault" for e in dump.values()) and any(e["interface"] == "native" for e in dump.values())
    for dev, read in fanout.devices.items():
        got = read()
        assert not missing(got, 1, last), f"{dev} lacks {missing(got, 1, last)}"
        for seq in range(1, last + 1):
            assert got[seq] == dump[seq], f"{dev}: event {seq} differs from audit-query:\n{got[seq]}\n{dump[seq]}"
    # The file holds each event once, in sequence order (nothing failed, so nothing was repeated).
    seqs = [e["seq_num"] for e in adlib.file_events(fanout.audit_file)]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs[:50]
    assert fanout.audit_file.stat().st_mode & 0o777 == 0o600


def test_no_secret_value_reaches_any_device(fanout):
    created = [e for e in fanout.dump.values() if e["action"] == "create_item" and e["path"] == fanout.name]
    assert created and created[0]["request_parameters"]["value"].startswith("hmac-sha256:"), created
    outputs = {"file": fanout.audit_file.read_bytes(), "syslog": fanout.rs.raw(), "webhook": fanout.hook.raw()}
    for where, data in outputs.items():
        assert data, f"{where} received nothing"
        for s in fanout.secrets:
            assert s.encode() not in data, f"a secret value ({s[:12]}…) reached the {where} device"
    # sys/audit shows the webhook's header names, never their values.
    listing = json.dumps(fanout.srv.audit_list())
    assert fanout.hook_secret not in listing
    assert "Authorization" in json.dumps(fanout.srv.device("webhook")["options"]["headers"])


def test_webhook_batches_carry_their_sequence_range(fanout):
    with fanout.hook.lock:
        batches = list(fanout.hook.batches)
    assert len(batches) >= 2, "batch_size 7 should have split the trail into several batches"
    for b in batches:
        seqs = [e["seq_num"] for e in b["events"]]
        assert 1 <= len(seqs) <= 7, f"batch of {len(seqs)} events with batch_size 7"
        assert seqs == sorted(seqs), seqs
        assert b["header"] == f"{seqs[0]}-{seqs[-1]}", (b["header"], seqs)
        assert b["headers"].get("authorization") == "Bearer " + fanout.hook_secret
        assert b["headers"].get("content-type", "").startswith("application/json")


@pytest.mark.parametrize("proto,facility,app", [("udp", 4, "tessera"), ("tcp", 19, "tessera-e2e")])
def test_syslog_messages_are_rfc5424_as_rsyslogd_parsed_them(fanout, proto, facility, app):
    lines = fanout.rs.lines(proto)
    messages = [parse_syslog(l) for l in lines]          # a framing error leaves an unparsable line
    seqs = [m["event"]["seq_num"] for m in messages]
    assert not missing(seqs, 1, fanout.last)
    assert len(seqs) == len(set(seqs)), f"{proto}: events repeated although no delivery failed"
    st = fanout.srv.status(f"syslog-{proto}")
    assert st["failures"] == 0, st
    for m in messages:
        e = m["event"]
        sev = SEVERITY.get(e["result"], 4)
        assert m["pri"] == facility * 8 + sev, (m["pri"], e["result"], proto)
        assert m["app"] == app and m["msgid"] == "audit" and m["sd"] == "-", m
        assert m["procid"] == str(fanout.srv.pid), (m["procid"], fanout.srv.pid)
        assert m["host"] and m["host"] != "-"
        assert parse_time(m["timestamp"]) == parse_time(e["timestamp"]), (m["timestamp"], e["timestamp"])
    long = [m for m in messages if LONG_SEGMENT in m["event"]["path"]]
    assert long, f"{proto}: the event with a {len(LONG_SEGMENT)}-byte path segment did not arrive whole"
    assert len(json.dumps(long[0]["event"])) > 1024


def test_sys_audit_lists_the_devices_with_their_delivery_state(fanout):
    srv = fanout.srv
    devices = wait_for(lambda: (d := srv.audit_list()) and all(v["status"]["cursor"] >= fanout.last for v in d.values()) and d,
                       10, "every device's cursor to pass the workload")
    assert set(devices) == {"jsonfile/", "syslog-udp/", "syslog-tcp/", "webhook/"}
    for key, d in devices.items():
        assert d["type"] == EXPECT_TYPE[key] and d["path"] == key and d["local"] is False, d
        st = d["status"]
        assert st["source"] == "config" and st["failures"] == 0 and st["consecutive_failures"] == 0, st
        assert st["delivered"] >= fanout.last and st["last_error"] is None and st["last_delivered_at"], st
        assert st["lag"] >= 0
    assert devices["jsonfile/"]["options"] == {"file_path": str(fanout.audit_file)}
    assert devices["jsonfile/"]["description"] == "JSON lines"
    assert devices["syslog-tcp/"]["options"]["protocol"] == "tcp"
    assert devices["syslog-tcp/"]["options"]["address"] == f"127.0.0.1:{fanout.rs.tcp_port}"
    assert devices["webhook/"]["options"]["url"] == fanout.hook.url


def test_bao_audit_list_with_an_http_device_that_has_headers(fanout, tmp_path):
    srv = fanout.srv
    out = srv.bao("audit", "list", "-detailed", home=tmp_path / "bao")
    assert out.returncode == 0, out.stderr
    for key, kind in EXPECT_TYPE.items():
        assert any(line.split()[:2] == [key, kind] for line in out.stdout.splitlines()), (key, out.stdout)
    assert f"file_path={fanout.audit_file}" in out.stdout, out.stdout
