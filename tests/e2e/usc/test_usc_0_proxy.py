"""The counting proxy itself, against OpenBao only (no Tessera): the tests of the other modules
rely on it counting every request and on each of its modes behaving as documented."""

from __future__ import annotations

import http.client
import socket
import time

import pytest

import usclib as U


def _get(port: int, path: str, token: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"X-Vault-Token": token})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_proxy_pass_forwards_and_counts(openbao, proxy, usc_workdir):
    via = U.Bao(openbao.bao.binary, proxy.url, openbao.root_token, usc_workdir / "proxy-cli")
    mark = proxy.mark()
    r = via("kv", "get", "-format=json", "secret/myapp/db-password")
    assert r.rc == 0 and r.json()["data"]["data"] == {"value": openbao.db_password}, r
    r = via("kv", "list", "-format=json", "secret/myapp")
    assert r.rc == 0 and {"db-password", "api-key"} <= set(r.json()), r
    by_path = proxy.counts_by_path(mark)
    assert by_path.get("/v1/secret/data/myapp/db-password") == 1, by_path
    assert by_path.get("/v1/secret/metadata/myapp") == 1, by_path
    # bao's mount pre-flight (sys/internal/ui/mounts/...) names the secret's path too
    assert by_path.get("/v1/sys/internal/ui/mounts/secret/myapp/db-password") == 1, by_path
    assert proxy.count("db-password", mark) == 2


def test_proxy_fail500(openbao, proxy):
    proxy.set_mode("fail500")
    mark = proxy.mark()
    status, body = _get(proxy.port, "/v1/secret/data/myapp/api-key", openbao.root_token)
    assert status == 500 and body == b'{"errors":["internal error"]}', (status, body)
    assert proxy.count("myapp/api-key", mark) == 1


def test_proxy_slow_outlasts_the_upstream_timeout(openbao, proxy):
    assert U.SLOW_SECONDS > U.UPSTREAM_TIMEOUT + 1
    proxy.set_mode("slow")
    t0 = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError)):
        _get(proxy.port, "/v1/secret/data/myapp/api-key", openbao.root_token, timeout=U.UPSTREAM_TIMEOUT + 0.5)
    assert time.monotonic() - t0 >= U.UPSTREAM_TIMEOUT
    proxy.set_mode("pass")  # wakes the sleeping handler at once
    status, _ = _get(proxy.port, "/v1/secret/data/myapp/api-key", openbao.root_token)
    assert status == 200


def test_proxy_stopped_refuses_and_restarts_on_the_same_port(openbao, proxy):
    port = proxy.port
    proxy.stop()
    with pytest.raises(ConnectionRefusedError):
        _get(port, "/v1/sys/health", openbao.root_token)
    proxy.start()
    assert proxy.port == port
    status, _ = _get(port, "/v1/secret/data/myapp/api-key", openbao.root_token)
    assert status == 200
