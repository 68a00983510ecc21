"""Class 6: delete protection holds on every interface and every path that removes data.

A KV v2 item created natively with `delete-protection: true` (two versions) cannot lose data
through the Vault API either: `destroy` of a version (hvac and the bao CLI), `metadata` DELETE
(hvac and raw), and lowering `max_versions` and then writing, so that older versions would be
pruned (bao CLI and raw). Each attempt gets a 4xx (the write itself may succeed, as long as
nothing is pruned), and every version stays readable with its data.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import hvac
import pytest

from seclib import Node, assert_4xx, assert_alive, body_text, send, uid


@pytest.fixture
def protected(node):
    """secret/<name>: version 1 {"k":"v1"} created natively with delete protection, version 2 {"k":"v2"}."""
    name = uid("dp")
    node.ok("create-secret", {"name": f"/secret/{name}", "value": json.dumps({"k": "v1"}), "format": "json",
                              "delete-protection": True})
    r = node.vault("POST", f"secret/data/{name}", {"data": {"k": "v2"}})
    assert r.status_code == 200, body_text(r)
    assert node.ok("describe-item", {"name": f"/secret/{name}"})["delete_protection"] is True
    return name


def assert_all_versions_readable(node: Node, name: str, what: str) -> None:
    for v in (1, 2):
        r = node.vault("GET", f"secret/data/{name}", params={"version": str(v)})
        assert r.status_code == 200, f"{what}: version {v} is gone: {body_text(r)}"
        data = r.json()["data"]
        assert data["data"] == {"k": f"v{v}"} and data["metadata"]["destroyed"] is False, f"{what}: version {v}: {data}"
    got = node.ok("get-secret-value", {"names": [f"/secret/{name}"], "version": 1})
    assert json.loads(got[f"/secret/{name}"]) == {"k": "v1"}


def bao(bao_bin: str, node: Node, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "VAULT_ADDR": node.url,
           "VAULT_TOKEN": node.vault_token}
    return subprocess.run([bao_bin, *args], env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_vault_destroy_of_a_protected_version_is_refused_with_hvac(node, protected):
    client = hvac.Client(url=node.url, token=node.vault_token, timeout=20)
    with pytest.raises(hvac.exceptions.VaultError):
        client.secrets.kv.v2.destroy_secret_versions(protected, versions=[1], mount_point="secret")
    r = send(lambda: node.vault("POST", f"secret/destroy/{protected}", {"versions": [1, 2]}))
    assert_alive(node, "destroying versions of a protected item")
    assert_all_versions_readable(node, protected, "after destroy")
    assert_4xx(r, "destroy of a protected item")


def test_bao_kv_destroy_of_a_protected_version_is_refused(node, protected, bao_bin, tmp_path):
    p = bao(bao_bin, node, tmp_path, "kv", "destroy", "-mount=secret", "-versions=1,2", protected)
    assert_alive(node, "bao kv destroy")
    assert_all_versions_readable(node, protected, "after bao kv destroy")
    assert p.returncode != 0, f"bao kv destroy succeeded: {p.stdout}"


def test_vault_metadata_delete_of_a_protected_item_is_refused(node, protected):
    client = hvac.Client(url=node.url, token=node.vault_token, timeout=20)
    with pytest.raises(hvac.exceptions.VaultError):
        client.secrets.kv.v2.delete_metadata_and_all_versions(protected, mount_point="secret")
    r = send(lambda: node.vault("DELETE", f"secret/metadata/{protected}"))
    assert_alive(node, "metadata delete of a protected item")
    assert_all_versions_readable(node, protected, "after metadata delete")
    assert_4xx(r, "metadata delete of a protected item")


def test_lowering_max_versions_then_writing_does_not_prune_a_protected_item(node, protected, bao_bin, tmp_path):
    p = bao(bao_bin, node, tmp_path, "kv", "metadata", "put", "-mount=secret", "-max-versions=1", protected)
    assert_alive(node, "bao kv metadata put -max-versions=1")
    w = bao(bao_bin, node, tmp_path, "kv", "put", "-mount=secret", protected, "k=v3")
    assert_alive(node, "bao kv put after lowering max_versions")
    assert "500" not in p.stderr + w.stderr, (p.stderr, w.stderr)
    assert_all_versions_readable(node, protected, "after max_versions=1 and a write")
    meta = node.vault("GET", f"secret/metadata/{protected}")
    assert meta.status_code == 200, body_text(meta)
    assert {"1", "2"} <= set(meta.json()["data"]["versions"]), meta.json()["data"]["versions"]


def test_lowering_max_versions_through_the_mount_config_does_not_prune_a_protected_item(node, protected):
    before = node.vault("GET", "secret/config").json()["data"]
    try:
        c = send(lambda: node.vault("POST", "secret/config", {"max_versions": 1}))
        assert_alive(node, "secret/config max_versions=1")
        w = send(lambda: node.vault("POST", f"secret/data/{protected}", {"data": {"k": "v3"}}))
        assert_alive(node, "a write after the mount's max_versions was lowered")
        assert c.status_code < 500 and w.status_code < 500, (body_text(c), body_text(w))
        assert_all_versions_readable(node, protected, "after the mount's max_versions=1 and a write")
    finally:
        node.vault("POST", "secret/config", {"max_versions": before.get("max_versions", 0)})


def test_the_native_api_refuses_to_delete_a_protected_item(node, protected):
    """The control: the native API already refuses (as it did before issue 12)."""
    for body in ({"name": f"/secret/{protected}"}, {"name": f"/secret/{protected}", "version": 1}):
        r = send(lambda: node.native("delete-item", body))
        assert_alive(node, f"native delete-item {body}")
        assert_4xx(r, f"native delete-item {body}")
    assert_all_versions_readable(node, protected, "after native delete-item")
