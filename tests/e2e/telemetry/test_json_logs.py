"""`log_format: json` writes one JSON object per line with Vault's field names, and with
`log_requests` every request's line carries the request id of its audit event; no secret value
reaches the log."""

from __future__ import annotations

import json
import os

from e2e_servers import DurableNode


def test_json_log_lines_carry_the_audit_request_id(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"log_format": "json", "log_requests": True}))
    n = DurableNode(tmp_path)
    n.extra = ["--config", str(cfg)]
    n.start()
    try:
        n.initialize()
        value = "json-log-secret-" + os.urandom(6).hex()
        assert n.call("create-secret", name="/logs/one", value=value).status_code == 200
        assert n.call("get-secret-value", names=["/logs/one"]).status_code == 200
        events = n.call("audit-query", path_prefix="/logs/one").json()["events"]
        assert {e["action"] for e in events} >= {"create_item", "get_secret_value"}
    finally:
        n.stop()
    lines = [line for line in n.log.read_text().splitlines() if line.startswith("{")]
    assert lines, n.log.read_text()[-2000:]
    records = [json.loads(line) for line in lines]          # every JSON line parses
    assert all({"@timestamp", "@level", "@module", "@message"} <= set(r) for r in records)
    requests_logged = {r["request_id"]: r for r in records if r["@message"] == "request"}
    for e in events:
        assert e["request_id"] in requests_logged, e
        line = requests_logged[e["request_id"]]
        assert line["action"] == e["action"] and line["status"] == str(e["status"]) and line["interface"] == "native"
    assert value not in n.log.read_text()
