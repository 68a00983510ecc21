"""Durability under load: every write the server acknowledged before a SIGKILL is present after
restart (KV v2 writes through the Vault API and native create-secret, 16 concurrent writers)."""
import concurrent.futures
import signal
import threading
import time

import requests

from e2e_servers import DurableNode


def test_acknowledged_writes_survive_sigkill(tmp_path):
    node = DurableNode(tmp_path)
    node.start()
    try:
        node.initialize()
        vault = {"X-Vault-Token": node.admin_id + ".." + node.admin_key}
        assert requests.post(node.base + "/v1/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}},
                             headers=vault, timeout=10).status_code in (200, 204)
        acknowledged: list[tuple[str, str, str]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(w: int) -> None:
            session = requests.Session()
            i = 0
            while not stop.is_set():
                i += 1
                value = f"v-{w}-{i}"
                try:
                    if w % 2:
                        r = session.post(f"{node.base}/v1/secret/data/dur/{w}/{i}", json={"data": {"v": value}}, headers=vault, timeout=10)
                        kind = "kv"
                    else:
                        r = session.post(node.base + "/api/v2/create-secret", json={"name": f"/dur/native/{w}/{i}", "value": value,
                                                                                     "token": node.token}, timeout=10)
                        kind = "native"
                except requests.RequestException:
                    return
                if r.status_code == 200 or r.status_code == 204:
                    with lock:
                        acknowledged.append((kind, f"{w}/{i}", value))

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for w in range(16):
                pool.submit(writer, w)
            time.sleep(2.5)
            node.stop(signal.SIGKILL)
            stop.set()
        assert len(acknowledged) > 50, "too few writes to prove anything"

        node.start()
        node.login()
        s = requests.Session()
        for kind, key, value in acknowledged:
            if kind == "kv":
                r = s.get(f"{node.base}/v1/secret/data/dur/{key}", headers=vault, timeout=10)
                assert r.status_code == 200 and r.json()["data"]["data"]["v"] == value, (key, r.status_code)
            else:
                r = s.post(node.base + "/api/v2/get-secret-value", json={"names": [f"/dur/native/{key}"], "token": node.token}, timeout=10)
                assert r.status_code == 200 and r.json()[f"/dur/native/{key}"] == value, (key, r.status_code)
        # The audit trail is intact after the kill.
        assert node.call("audit-verify").json()["ok"] is True
    finally:
        node.stop(signal.SIGKILL)
