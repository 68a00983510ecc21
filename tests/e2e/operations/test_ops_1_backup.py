"""Online backup and verified offline restore.

* Under load: 16 writers keep creating and updating secrets through the native API (each key's
  values only grow) while `tessera operator backup` runs. The snapshot is restored into a new
  data directory with `tessera operator restore`, a server is started there and unsealed with
  the installation's shares, and every write acknowledged before the backup started reads back
  with that value or a later one of the same writer; the restored trail passes
  `tessera audit verify`. Requests go on being served while the snapshot is taken and streamed.
* Access: a snapshot needs sys-rule read on /sys/backup; a limited identity and an anonymous
  caller get 403 (HTTP and CLI), and the denial is audited.
* Refusals: restore into a non-empty directory, a truncated and a byte-flipped snapshot are
  refused with exit code 1 and a message saying why, and leave no files behind.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from opslib import Writers, bulk_create, files_in, parse_value, read_values, short, wait_until


def _download(node, token: str, out: Path) -> requests.Response:
    with requests.get(f"{node.url}/v1/sys/storage/raft/snapshot", headers={"X-Vault-Token": token}, stream=True, timeout=60) as r:
        if r.status_code == 200:
            with open(out, "wb") as f:
                for chunk in r.iter_content(1 << 16):
                    f.write(chunk)
        return r


def test_backup_under_load_restores_every_acknowledged_write(make_node, cli_for, tmp_path):
    src = make_node("src")
    src.init(3, 2)
    # Some bulk first, so the snapshot is more than a few pages.
    bulk = [f"/ops/bulk/b{i:04d}" for i in range(600)]
    bulk_create(src, bulk, lambda n: n + "|" + "x" * 2000)
    cli = cli_for(src, "admin")
    cli.login(src.admin_id, src.admin_key)

    writers = Writers(src, "/ops/load", count=16, keys_per_writer=8).start()
    try:
        wait_until(lambda: writers.total_acks() >= 400, timeout=60, what="400 acknowledged writes before the backup")
        snap = tmp_path / "load.snap"
        acks_before = writers.total_acks()
        t0 = time.monotonic()                    # just before the backup starts
        backup = cli.run("operator", "backup", "--out", str(snap))
        t1 = time.monotonic()                    # the backup has finished
        # writers keep going until after the backup finished
        wait_until(lambda: any(a.started > t1 for _, a in writers.acks()), timeout=20, what="a write sent after the backup")
    finally:
        writers.stop()
    assert backup.returncode == 0, f"operator backup: {backup.returncode}\n{backup.stdout}\n{backup.stderr}"
    assert "Snapshot written to" in backup.stdout, backup.stdout
    assert snap.stat().st_size > 600 * 2000, snap.stat().st_size
    assert not Path(str(snap) + ".partial").exists()
    # the server's own temporary snapshot file is gone once streamed
    assert files_in(src.data_dir / "snapshots") == []

    errors = [e for log in writers.logs for e in log.errors]
    assert not errors, f"writers saw errors: {errors[:5]}"
    # Requests were served while the snapshot was taken and streamed.
    during = [a for _, a in writers.acks() if a.started >= t0 and a.at <= t1]
    assert len(during) >= 16, f"only {len(during)} writes were sent and acknowledged during the {t1 - t0:.2f}s backup"
    overlapping = [a for _, a in writers.acks() if a.started <= t1 and a.at >= t0]
    slowest = max(a.at - a.started for a in overlapping)
    assert slowest < 5.0, f"a write overlapping the backup took {slowest:.2f}s"
    assert writers.total_acks() > acks_before
    print(f"backup {t1 - t0:.2f}s, {len(during)} writes inside it, slowest overlapping {slowest:.3f}s, {writers.total_acks()} in all")

    # The source audited the backup.
    events = src.audit_events("backup")
    assert any(e["result"] == "allowed" and e["access_id"] == src.admin_id and e["path"] == "/sys/backup" for e in events), events

    # Offline restore into a new directory, then a server on it with the same shares.
    restored = tmp_path / "restored"
    out = cli.ok("operator", "restore", str(snap), "--data-dir", str(restored))
    assert "gap-free and linked" in out.stdout, out.stdout
    assert sorted(files_in(restored)) == ["audit.db", "tessera.db"], files_in(restored)
    dst = make_node("dst", data_dir=restored)
    dst.adopt(src)
    assert dst.seal_status()["sealed"] is True, "a restored server must need its shares"
    dst.unseal(src.keys[1:3])

    # Every write acknowledged before the backup began: that value or a later one of its writer.
    floor: dict[str, int] = {}
    for _, a in writers.acks():
        if a.at < t0:
            floor[a.key] = max(floor.get(a.key, 0), a.counter)
    assert len(floor) >= 100, len(floor)
    values = read_values(dst, sorted(floor))
    owner = {writers.key(w, j): w for w in range(writers.count) for j in range(writers.keys_per_writer)}
    for key, minimum in floor.items():
        w, counter = parse_value(values[key])
        assert w == owner[key], f"{key}: {values[key]!r} was not written by writer {owner[key]}"
        assert counter in writers.logs[w].attempted[key], f"{key}: {values[key]!r} was never written to this key"
        assert counter >= minimum, f"{key}: restored {values[key]!r}, but counter {minimum} was acknowledged before the backup"
    # Keys first acknowledged after t0 may or may not be there; if there, with a value their writer sent.
    for key in set(owner) - set(floor):
        r = dst.native("get-secret-value", {"names": [key]})
        if r.status_code == 200:
            w, counter = parse_value(r.json()[key])
            assert w == owner[key] and counter in writers.logs[w].attempted.get(key, set()), (key, r.json())
        else:
            assert r.status_code == 404, short(r)
    assert read_values(dst, bulk[::37]) == {n: n + "|" + "x" * 2000 for n in bulk[::37]}

    # The restored trail verifies (keyed hashes, with the restored keyring) and goes on growing.
    dst.ok("create-secret", {"name": "/ops/after-restore", "value": "fresh"})
    restored_cli = cli_for(dst, "restored")
    restored_cli.login(src.admin_id, src.admin_key)
    verify = restored_cli.ok("audit", "verify")
    assert verify.stdout.startswith("OK:"), verify.stdout
    assert dst.audit_verify()["ok"] is True


def test_backup_needs_the_backup_sys_rule(make_node, cli_for, tmp_path):
    node = make_node("acl")
    node.init(3, 2)
    node.ok("create-secret", {"name": "/ops/acl/x", "value": "v"})
    lim_id, lim_key = node.identity([("/*", ["read", "list"], "item-rule"),
                                     ("/sys/key-status", ["read"], "sys-rule"),
                                     ("/sys/metrics", ["read"], "sys-rule")], "/ops/limited")
    # The limited identity can use what it was given …
    assert node.sys("GET", "key-status", token=f"{lim_id}..{lim_key}").status_code == 200
    # … but not the snapshot, nor can anyone without a token.
    out = tmp_path / "denied.snap"
    r = _download(node, f"{lim_id}..{lim_key}", out)
    assert r.status_code == 403, short(r)
    assert not out.exists()
    r = requests.get(f"{node.url}/v1/sys/storage/raft/snapshot", timeout=30)
    assert r.status_code == 403, short(r)

    lim_cli = cli_for(node, "limited")
    lim_cli.login(lim_id, lim_key)
    p = lim_cli.run("operator", "backup", "--out", str(out))
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "403" in p.stderr or "permission denied" in p.stderr.lower(), p.stderr
    assert not out.exists() and not Path(str(out) + ".partial").exists()

    denied = [e for e in node.audit_events("backup") if e["access_id"] == lim_id]
    assert denied and all(e["result"] == "denied" for e in denied), denied
    # The admin's <access id>..<access key> works on the same endpoint.
    r = _download(node, node.vault_token, out)
    assert r.status_code == 200 and out.stat().st_size > 0, short(r)
    assert r.headers.get("Content-Type") == "application/octet-stream"


def test_restore_refuses_non_empty_dirs_and_damaged_snapshots(make_node, cli_for, tmp_path):
    node = make_node("refuse")
    node.init(3, 2)
    for i in range(20):
        node.ok("create-secret", {"name": f"/ops/refuse/s{i}", "value": f"v{i}"})
    snap = tmp_path / "good.snap"
    r = _download(node, node.vault_token, snap)
    assert r.status_code == 200, short(r)
    data = snap.read_bytes()
    cli = cli_for(node, "restore")

    # A non-empty directory is refused and left as it was.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    p = cli.run("operator", "restore", str(snap), "--data-dir", str(busy))
    assert p.returncode == 1 and "not empty" in p.stderr, (p.returncode, p.stdout, p.stderr)
    assert files_in(busy) == ["keep.txt"] and (busy / "keep.txt").read_text() == "mine"

    # The snapshot is a gzip'd tar of stored deflate blocks: after the 10-byte gzip header and a
    # 5-byte block header, the tar stream appears as is (manifest.json's header at 0, its data at
    # 512, tessera.db's header at 1024 and its data from 1536), so offsets below land in known places.
    assert data[:2] == b"\x1f\x8b" and data[15 + 257:15 + 262] == b"ustar", data[:40]
    first_file = 15 + 1536
    for name, damaged, words in (
            ("truncated", data[: len(data) // 2], ("truncated",)),
            ("truncated-manifest", data[: 15 + 600], ("truncated",)),
            ("truncated-trailer", data[:-4], ("truncated",)),
            ("flipped", _flip(data, len(data) * 2 // 3), ("damaged",)),
            ("flipped-first-file", _flip(data, first_file + 100), ("damaged", "checksum"))):
        f = tmp_path / f"{name}.snap"
        f.write_bytes(damaged)
        target = tmp_path / f"into-{name}"
        p = cli.run("operator", "restore", str(f), "--data-dir", str(target))
        assert p.returncode == 1, (name, p.returncode, p.stdout, p.stderr)
        assert all(w in p.stderr for w in words), (name, p.stderr)
        assert files_in(target) == [], (name, files_in(target))

    # The intact file still restores (the refusals were about the damage, nothing else).
    good = tmp_path / "into-good"
    cli.ok("operator", "restore", str(snap), "--data-dir", str(good))
    assert sorted(files_in(good)) == ["audit.db", "tessera.db"]


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)
