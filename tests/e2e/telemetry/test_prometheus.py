"""A real Prometheus (Debian's package) scrapes Tessera after a scripted workload, and the SLI
metrics have sensible values; the shipped alert rules pass `promtool check rules`, and metric
labels never carry a secret's name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from e2e_servers import REPO, DurableNode, free_port

RULES = REPO / "deploy" / "prometheus" / "tessera-rules.yml"


def test_shipped_alert_rules_pass_promtool(prometheus_bin):
    out = subprocess.run([prometheus_bin["promtool"], "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("telemetry")
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps({"audit_devices": [{"name": "local", "type": "file", "path": str(tmp / "audit.jsonl")}]}))
    n = DurableNode(tmp)
    n.extra = ["--config", str(cfg)]
    n.start()
    n.initialize()
    yield n
    n.stop()


def _workload(node, postgres) -> dict:
    """Reads, writes, denials, failed logins, dynamic credentials and a rotation."""
    planted = "telemetry-secret-name-" + os.urandom(4).hex()
    assert node.call("create-secret", name=f"/tele/{planted}", value="v1").status_code == 200
    for _ in range(5):
        assert node.call("get-secret-value", names=[f"/tele/{planted}"]).status_code == 200
    for _ in range(3):
        r = requests.post(node.base + "/api/v2/get-secret-value", json={"token": "t-not-a-token", "names": ["/tele/x"]}, timeout=10)
        assert r.status_code in (401, 403)
    for _ in range(2):
        r = requests.post(node.base + "/api/v2/auth", json={"access-id": node.admin_id, "access-key": "wrong-key-123"}, timeout=10)
        assert r.status_code == 401
    r = node.call("target-create-db", name="tele-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                  user_name="postgres", pwd=postgres["password"])
    assert r.status_code == 200, r.text
    assert node.call("dynamic-secret-create-postgresql", name="/tele/dyn", target_name="tele-pg").status_code == 200
    for _ in range(2):
        r = node.call("get-dynamic-secret-value", name="/tele/dyn")
        assert r.status_code == 200, r.text
    role = "tele_rot_" + os.urandom(3).hex()
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(postgres["port"]), "-U", "postgres", "-d", "postgres", "-tAc",
                    f"CREATE ROLE {role} LOGIN PASSWORD 'initial-pass-1'"], env=dict(os.environ, PGPASSWORD=postgres["password"]),
                   check=True, capture_output=True)
    r = node.call("rotated-secret-create-postgresql", name="/tele/rot", target_name="tele-pg", rotated_username=role,
                  rotated_password="initial-pass-1")
    assert r.status_code == 200, r.text
    assert node.call("gateway-rotate-secret", name="/tele/rot").status_code == 200
    return {"planted": planted}


def _prometheus(prometheus_bin, tmp: Path, node, token: str):
    port = free_port()
    (tmp / "token").write_text(token)
    target = node.base.split("://", 1)[1]
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{RULES}]
scrape_configs:
  - job_name: tessera
    metrics_path: /v1/sys/metrics
    params: {{format: [prometheus]}}
    authorization: {{credentials_file: {tmp / 'token'}}}
    static_configs: [{{targets: ["{target}"]}}]
""")
    proc = subprocess.Popen([prometheus_bin["prometheus"], f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=open(tmp / "prometheus.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _query(base: str, expr: str) -> list:
    r = requests.get(base + "/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def _value(base: str, expr: str) -> float | None:
    result = _query(base, expr)
    return float(result[0]["value"][1]) if result else None


def test_real_prometheus_scrapes_sli_metrics(prometheus_bin, node, postgres, tmp_path):
    facts = _workload(node, postgres)
    proc, base = _prometheus(prometheus_bin, tmp_path, node, node.token)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                up = _value(base, 'up{job="tessera"}')
                if up == 1 and _value(base, "tessera_dynamic_credentials_total") is not None:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus never scraped Tessera: " + (tmp_path / "prometheus.log").read_text()[-3000:])

        assert _value(base, "tessera_up") == 1
        assert _value(base, "vault_core_unsealed") == 1
        assert _value(base, 'sum(tessera_requests_total{interface="native",operation="get_secret_value",status="200"})') >= 5
        assert _value(base, 'sum(tessera_requests_denied_total{interface="native"})') >= 3
        assert _value(base, 'sum(tessera_login_failures_total{interface="native"})') >= 2
        assert _value(base, 'tessera_dynamic_credentials_total{result="success",target_type="postgres"}') >= 2
        assert _value(base, 'tessera_dynamic_credentials_total{result="failure",target_type="postgres"}') == 0
        assert _value(base, 'tessera_rotations_total{result="success",target_type="postgres"}') >= 1
        assert _value(base, 'tessera_leases{state="active"}') >= 2
        assert _value(base, "tessera_audit_events_total") > 10
        assert _value(base, "vault_audit_log_request_failure") == 0
        assert _value(base, 'tessera_audit_device_up{device="local"}') == 1
        lag = _value(base, 'tessera_audit_device_lag{device="local"}')
        assert lag is not None and lag < 50
        age = _query(base, "tessera_rotation_last_success_age_seconds")
        assert age and 0 <= float(age[0]["value"][1]) < 300, age
        assert _value(base, 'sum(tessera_request_duration_seconds_count{interface="native"})') >= 10
        p99 = _value(base, 'histogram_quantile(0.99, sum(tessera_request_duration_seconds_bucket{interface="native"}) by (le))')
        assert p99 is not None and 0 < p99 < 10
        assert _value(base, 'sum(tessera_cache_requests_total{result="hit"})') > 0
        assert _value(base, "tessera_key_term") == 1
        assert _value(base, "tessera_data_dir_free_bytes") > 0

        # The shipped rules load and evaluate; none of the failure alerts fires on a healthy server.
        rules = requests.get(base + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert sum(len(g["rules"]) for g in rules) >= 10
        firing = [a["labels"]["alertname"] for a in requests.get(base + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
                  if a["state"] == "firing"]
        assert not [a for a in firing if a in ("TesseraDown", "TesseraSealed", "TesseraAuditWritesFailing", "TesseraAuditDeviceDown")], firing

        # No label anywhere carries a secret's name or path.
        text = requests.get(node.base + "/metrics", headers={"Authorization": "Bearer " + node.token}, timeout=10).text
        assert facts["planted"] not in text
        assert "/tele/" not in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_metrics_need_a_token(node):
    assert requests.get(node.base + "/metrics", timeout=10).status_code in (401, 403)
    r = requests.get(node.base + "/v1/sys/metrics", params={"format": "prometheus"}, headers={"Authorization": "Bearer " + node.token},
                     timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
