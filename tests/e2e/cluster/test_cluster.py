"""Three Tessera nodes on one PostgreSQL database, behind HAProxy: what is written through one
node is read through the others (bao CLI, hvac, the akeyless SDK); a token revoked, a role rule
removed and a mount enabled on one node take effect on the others within 2 s (LISTEN/NOTIFY;
the times are measured and printed, run with -s to see them); 16 concurrent writers through
HAProxy for 60 s lose no acknowledged write when a node is SIGKILLed in the middle, see errors
only around the kill; dynamic PostgreSQL credentials issued on the killed node and falling due
after the kill are revoked on time by the survivors (checked in pg_roles), and a one-minute
rotation schedule keeps rotating; the node rejoins after a restart; `tessera audit verify`
passes on the shared audit chain; sys/health is 200 on every live node.

The tests run in order on one module-scoped cluster (conftest.py); helpers are in clusterlib.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import akeyless
import hvac
import requests

import clusterlib as C
from e2e_servers import pg_login_ok, pg_roles, psql

BOUND = 2.0          # seconds: the propagation bound for tokens, roles and mounts
POLL = 0.02          # seconds between polls while measuring

RUN = C.random_key(6).lower()


def _hvac(node_url: str, token: str) -> hvac.Client:
    return hvac.Client(url=node_url, token=token, timeout=30)


def _propagation(nodes: list[C.ClusterNode], done, bound: float = BOUND) -> dict[str, float | None]:
    """Polls every node every POLL seconds until done(node) holds on each; returns the seconds
    each took (None: not within `bound`)."""
    start = time.monotonic()
    times: dict[str, float | None] = {n.name: None for n in nodes}
    while True:
        for n in nodes:
            if times[n.name] is None and done(n):
                times[n.name] = time.monotonic() - start
        if all(t is not None for t in times.values()) or time.monotonic() - start > bound:
            return times
        time.sleep(POLL)


def _fmt(times: dict[str, float | None]) -> str:
    return ", ".join(f"{k}: {'>%.1fs' % BOUND if v is None else '%.0f ms' % (v * 1000)}" for k, v in times.items())


# ------------------------------------------------------------------------------------------
# a. KV v2 through every node, read through every other one
# ------------------------------------------------------------------------------------------

def test_kv_v2_written_on_each_node_reads_on_the_others(cluster, tmp_path):
    home = tmp_path / "bao"
    vt = cluster.vault_token
    for i, src in enumerate(cluster.nodes, 1):
        others = [n for n in cluster.nodes if n is not src]
        bao_value, hvac_value = f"bao-{RUN}-{i}", f"hvac-{RUN}-{i}"
        C.ok(C.bao(src.url, "kv", "put", f"secret/xnode/{RUN}/bao-{i}", f"v={bao_value}", token=vt, home=home),
             f"bao kv put on {src.name}")
        _hvac(src.url, vt).secrets.kv.v2.create_or_update_secret(path=f"xnode/{RUN}/hvac-{i}", secret={"v": hvac_value},
                                                                 mount_point="secret")
        for dst in others:
            got = _hvac(dst.url, vt).secrets.kv.v2.read_secret_version(path=f"xnode/{RUN}/bao-{i}", mount_point="secret",
                                                                      raise_on_deleted_version=True)
            assert got["data"]["data"] == {"v": bao_value}, f"{src.name} → {dst.name}: {got}"
            p = C.ok(C.bao(dst.url, "kv", "get", "-field=v", f"secret/xnode/{RUN}/hvac-{i}", token=vt, home=home),
                     f"bao kv get on {dst.name}")
            assert p.stdout.strip() == hvac_value, f"{src.name} → {dst.name}: {p.stdout!r}"

    # a second version written on node 3 of a key created on node 1 is current on node 2,
    # and version 1 is still there
    C.ok(C.bao(cluster.node(3).url, "kv", "put", f"secret/xnode/{RUN}/bao-1", "v=second", token=vt, home=home), "bao kv put v2")
    p = C.ok(C.bao(cluster.node(2).url, "kv", "get", "-format=json", f"secret/xnode/{RUN}/bao-1", token=vt, home=home), "bao kv get")
    out = json.loads(p.stdout)
    assert out["data"]["data"] == {"v": "second"} and out["data"]["metadata"]["version"] == 2, out
    old = _hvac(cluster.node(2).url, vt).secrets.kv.v2.read_secret_version(path=f"xnode/{RUN}/bao-1", version=1, mount_point="secret",
                                                                           raise_on_deleted_version=True)
    assert old["data"]["data"] == {"v": f"bao-{RUN}-1"}, old


# ------------------------------------------------------------------------------------------
# b. the akeyless SDK: created on node 2, read on node 3
# ------------------------------------------------------------------------------------------

def _sdk(node: C.ClusterNode) -> akeyless.V2Api:
    return akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=f"{node.url}/api/v2")))


def test_akeyless_sdk_create_on_node2_read_on_node3(cluster):
    api2, api3 = _sdk(cluster.node(2)), _sdk(cluster.node(3))
    tok2 = api2.auth(akeyless.Auth(access_id=cluster.admin_id, access_key=cluster.admin_key)).token
    tok3 = api3.auth(akeyless.Auth(access_id=cluster.admin_id, access_key=cluster.admin_key)).token
    assert tok2.startswith("t-") and tok3.startswith("t-")
    name, v1, v2 = f"/cluster/sdk/{RUN}", f"sdk-one-{RUN}", f"sdk-two-{RUN}"

    assert api2.create_secret(akeyless.CreateSecret(name=name, value=v1, description="cluster", token=tok2)).name == name
    assert api3.get_secret_value(akeyless.GetSecretValue(names=[name], token=tok3)) == {name: v1}
    # the token node 2 issued works on node 3, and node 3's update is what node 2 reads
    assert api3.get_secret_value(akeyless.GetSecretValue(names=[name], token=tok2)) == {name: v1}
    api3.update_secret_val(akeyless.UpdateSecretVal(name=name, value=v2, token=tok3))
    assert api2.get_secret_value(akeyless.GetSecretValue(names=[name], token=tok2)) == {name: v2}
    assert api2.get_secret_value(akeyless.GetSecretValue(names=[name], version=1, token=tok2)) == {name: v1}
    listed = api3.list_items(akeyless.ListItems(path="/cluster/sdk", token=tok3))
    assert name in {i.item_name for i in (listed.items or [])}
    assert api3.validate_token(akeyless.ValidateToken(token=tok2)).is_valid is True


# ------------------------------------------------------------------------------------------
# c. a token issued on node 1, revoked on node 1: refused on nodes 2 and 3 within 2 s
# ------------------------------------------------------------------------------------------

def test_token_revoked_on_node1_is_refused_on_the_others_within_2s(cluster, tmp_path):
    n1, n2, n3 = cluster.nodes
    secret = f"/cluster/tok/{RUN}"
    n1.ok("create-secret", {"name": secret, "value": "token-test"}, token=cluster.admin_token)

    token = n1.login(cluster.admin_id, cluster.admin_key)            # native auth on node 1

    def status(node: C.ClusterNode) -> int:
        return node.native("get-secret-value", {"names": [secret]}, token=token, timeout=5).status_code

    # usable everywhere (which also puts it in each node's credential cache), native and Vault
    for node in cluster.nodes:
        assert status(node) == 200, node.name
        r = requests.get(node.url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}, timeout=10)
        assert r.status_code == 200, f"{node.name} lookup-self: {C.short(r)}"
    p = C.ok(C.bao(n3.url, "kv", "get", "-field=v", f"secret/xnode/{RUN}/bao-2", token=token, home=tmp_path / "bao"),
             "bao kv get with the t- token on node 3")
    assert p.stdout.strip() == f"bao-{RUN}-2"

    r = n1.native("revoke-creds", {}, token=token)
    assert r.status_code == 200, f"revoke-creds: {C.short(r)}"
    assert status(n1) in (401, 403), "node 1 still accepts the token it revoked"

    times = _propagation([n2, n3], lambda n: status(n) in (401, 403))
    print(f"\n[cluster] token revocation on node1 seen by {_fmt(times)}")
    assert all(t is not None for t in times.values()), f"revoked token still accepted after {BOUND}s: {_fmt(times)}"
    for node in (n2, n3):
        r = node.native("validate-token", {}, token=token)
        assert r.status_code == 200 and r.json()["is_valid"] is False, f"{node.name}: {C.short(r)}"
        r = requests.get(node.url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}, timeout=10)
        assert r.status_code in (401, 403), f"{node.name} lookup-self after revoke: {C.short(r)}"


# ------------------------------------------------------------------------------------------
# d. a role rule removed on node 1 (and granted again on node 2) applies everywhere within 2 s
# ------------------------------------------------------------------------------------------

def test_role_change_applies_on_the_other_nodes_within_2s(cluster, tmp_path):
    n1, n2, n3 = cluster.nodes
    admin = tmp_path / "admin-cli"
    C.ok(C.tessera_cli(n1.url, "auth", "--access-id", cluster.admin_id, "--access-key", "env:CLUSTER_KEY", home=admin,
                       env={"CLUSTER_KEY": cluster.admin_key}), "tessera auth (admin)")
    am_name, role = f"/cluster/limited-{RUN}", f"cluster-readers-{RUN}"
    folder, secret = f"/cluster/lim-{RUN}", f"/cluster/lim-{RUN}/db"
    am = json.loads(C.ok(C.tessera_cli(n1.url, "create-auth-method", "--name", am_name, "--json", home=admin), "create-auth-method").stdout)
    C.ok(C.tessera_cli(n1.url, "create-role", "--name", role, home=admin), "create-role")
    C.ok(C.tessera_cli(n1.url, "set-role-rule", "--role-name", role, "--path", f"{folder}/*", "--capability", "read",
                       home=admin), "set-role-rule")
    C.ok(C.tessera_cli(n1.url, "assoc-role-am", "--role-name", role, "--am-name", am_name, home=admin), "assoc-role-am")
    C.ok(C.tessera_cli(n1.url, "create-secret", "--name", secret, "--value", "limited-value", home=admin), "create-secret")

    limited = n1.login(am["access_id"], am["access_key"])

    def status(node: C.ClusterNode) -> int:
        return node.native("get-secret-value", {"names": [secret]}, token=limited, timeout=5).status_code

    for node in cluster.nodes:                       # allowed everywhere (and cached everywhere)
        r = node.native("get-secret-value", {"names": [secret]}, token=limited)
        assert r.status_code == 200 and r.json() == {secret: "limited-value"}, f"{node.name}: {C.short(r)}"
    assert n2.native("get-secret-value", {"names": [f"/cluster/tok/{RUN}"]}, token=limited).status_code == 403

    # remove the read rule on node 1
    r = n1.native("delete-role-rule", {"role-name": role, "path": f"{folder}/*"}, token=cluster.admin_token)
    assert r.status_code == 200, f"delete-role-rule: {C.short(r)}"
    assert status(n1) == 403, "node 1 still allows a read its role no longer grants"
    removed = _propagation([n2, n3], lambda n: status(n) == 403)
    print(f"\n[cluster] role rule removed on node1 seen by {_fmt(removed)}")

    # grant it again, this time on node 2 with the CLI pointed there
    C.ok(C.tessera_cli(n2.url, "set-role-rule", "--address", n2.url, "--role-name", role, "--path", f"{folder}/*",
                       "--capability", "read", home=admin), "set-role-rule on node 2")
    assert status(n2) == 200
    granted = _propagation([n1, n3], lambda n: status(n) == 200)
    print(f"[cluster] role rule granted on node2 seen by {_fmt(granted)}")

    assert all(t is not None for t in removed.values()), f"removed rule still applies after {BOUND}s: {_fmt(removed)}"
    assert all(t is not None for t in granted.values()), f"granted rule not applied after {BOUND}s: {_fmt(granted)}"


# ------------------------------------------------------------------------------------------
# e. a mount enabled on node 1 is usable on node 3 right away
# ------------------------------------------------------------------------------------------

def test_mount_enabled_on_node1_is_usable_on_node3(cluster, tmp_path):
    n1, n2, n3 = cluster.nodes
    home, vt = tmp_path / "bao", cluster.vault_token

    def write(node: C.ClusterNode, key: str, value: str) -> int:
        return requests.post(f"{node.url}/v1/team/data/{key}", json={"data": {"v": value}},
                             headers={"X-Vault-Token": vt}, timeout=5).status_code

    # node 3 knows no mount team/ yet (and has its mount table loaded)
    before = write(n3, "probe", "x")
    assert before in (400, 403, 404), f"team/ answered {before} before it was enabled"

    C.ok(C.bao(n1.url, "secrets", "enable", "-path=team", "kv-v2", token=vt, home=home), "bao secrets enable on node 1")
    times = _propagation([n3, n2], lambda n: write(n, f"probe-{n.name}", "ok") == 200)
    print(f"\n[cluster] mount team/ enabled on node1 usable on {_fmt(times)}")
    assert all(t is not None for t in times.values()), f"team/ not usable after {BOUND}s: {_fmt(times)}"

    C.ok(C.bao(n3.url, "kv", "put", "team/app", "password=from-node3", token=vt, home=home), "bao kv put team/app on node 3")
    p = C.ok(C.bao(n1.url, "kv", "get", "-field=password", "team/app", token=vt, home=home), "bao kv get team/app on node 1")
    assert p.stdout.strip() == "from-node3"
    p = C.ok(C.bao(n3.url, "secrets", "list", "-format=json", token=vt, home=home), "bao secrets list on node 3")
    mounts = json.loads(p.stdout)
    assert mounts["team/"]["type"] == "kv" and mounts["team/"]["options"]["version"] == "2", mounts.get("team/")


# ------------------------------------------------------------------------------------------
# f. 16 writers/readers through HAProxy for 60 s; node 2 is SIGKILLed after 20 s, then
#    restarted. Leases issued on node 2 fall due 15 s after the kill; a one-minute rotation
#    schedule created on node 2 falls due 40 s after it.
# ------------------------------------------------------------------------------------------

WRITERS = 16
LOAD_SECONDS = 60.0
KILL_AFTER = 20.0
ERROR_WINDOW = 5.0
LEASE_TTL = 35                 # seconds: due 15 s after the kill
REVOKE_BOUND = 10.0            # seconds after a lease falls due by which its role is gone
WRITES_PER_KEY = 5        # below the 10 versions a KV v2 key keeps, so every acknowledged version stays readable


@dataclass
class Ack:
    key: str
    version: int
    value: str
    at: float


@dataclass
class Worker:
    index: int
    acks: list[Ack] = field(default_factory=list)
    attempted: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    errors: list[tuple[float, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    reads: int = 0


def _value(w: int, c: int) -> str:
    return f"w{w:02d}-{c:09d}"


def _run_worker(worker: Worker, url: str, token: str, prefix: str, stop_at: float) -> None:
    s = requests.Session()
    s.headers["X-Vault-Token"] = token
    c = 0
    last_acked: dict[str, str] = {}
    while time.monotonic() < stop_at:
        c += 1
        key = f"{prefix}/w{worker.index:02d}/k{(c - 1) // WRITES_PER_KEY}"
        value = _value(worker.index, c)
        worker.attempted[key].add(value)
        try:
            r = s.post(f"{url}/v1/secret/data/{key}", json={"data": {"v": value}}, timeout=10)
            if 200 <= r.status_code < 300:
                worker.acks.append(Ack(key, int(r.json()["data"]["version"]), value, time.monotonic()))
                last_acked[key] = value
            else:
                worker.errors.append((time.monotonic(), f"write {key}: HTTP {r.status_code} {r.text[:200]!r}"))
        except requests.RequestException as e:
            worker.errors.append((time.monotonic(), f"write {key}: {type(e).__name__}: {e}"[:300]))
        try:
            r = s.get(f"{url}/v1/secret/data/{key}", timeout=10)
            if r.status_code == 200:
                worker.reads += 1
                got = r.json()["data"]["data"]["v"]
                # only this worker writes the key, and its values only grow
                if key in last_acked and got < last_acked[key]:
                    worker.stale.append(f"{key}: read {got} after {last_acked[key]} was acknowledged")
            elif not (r.status_code == 404 and key not in last_acked):
                worker.errors.append((time.monotonic(), f"read {key}: HTTP {r.status_code} {r.text[:200]!r}"))
        except requests.RequestException as e:
            worker.errors.append((time.monotonic(), f"read {key}: {type(e).__name__}: {e}"[:300]))
    s.close()


@dataclass
class Background:
    """What the load test sets up on node 2 before the load: leases and a rotation schedule."""
    users: set[str]
    issued_at: float
    rotated: str
    role: str
    password: str
    version: int
    rotation_due: float        # wall clock


def _background_work_on(node: C.ClusterNode, cluster) -> Background:
    pg = cluster.pg
    token = node.login(cluster.admin_id, cluster.admin_key)
    node.ok("target-create-db", {"name": f"pg-{RUN}", "db-type": "postgres", "host": "127.0.0.1", "port": pg["port"],
                                 "user-name": "postgres", "pwd": pg["password"]}, token=token)
    role, password = f"clrot_{RUN}", "Init-" + C.random_key(12)
    psql(pg, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    rotated = f"/cluster/rotated-{RUN}"
    node.ok("rotated-secret-create-postgresql", {"name": rotated, "target-name": f"pg-{RUN}", "rotated-username": role,
                                                 "rotated-password": password, "auto-rotate": "true",
                                                 "rotation-interval-minutes": 1}, token=token)
    version = node.ok("get-rotated-secret-value", {"names": rotated}, token=token).get("version", 0)
    rotation_due = time.time() + 60
    dyn = f"/cluster/dyn-{RUN}"
    node.ok("dynamic-secret-create-postgresql", {"name": dyn, "target-name": f"pg-{RUN}", "user-ttl": f"{LEASE_TTL}s",
                                                 "username-template": f"cl{RUN}"}, token=token)
    issued_at = time.monotonic()
    users = {node.ok("get-dynamic-secret-value", {"name": dyn}, token=token)["user"] for _ in range(4)}
    assert len(users) == 4 and users <= pg_roles(pg, f"cl{RUN}"), users
    return Background(users, issued_at, rotated, role, password, version, rotation_due)


def test_load_through_haproxy_survives_a_killed_node(cluster):
    n1, n2, n3 = cluster.nodes
    proxy = cluster.haproxy
    prefix = f"load-{RUN}"
    assert all(v.startswith("UP") for v in proxy.server_states().values()), proxy.server_states()
    bg = _background_work_on(n2, cluster)

    workers = [Worker(i) for i in range(WRITERS)]
    start = time.monotonic()
    stop_at = start + LOAD_SECONDS
    threads = [threading.Thread(target=_run_worker, args=(w, proxy.url, cluster.vault_token, prefix, stop_at), daemon=True)
               for w in workers]
    for t in threads:
        t.start()
    time.sleep(max(0.0, start + KILL_AFTER - time.monotonic()))
    killed_at, killed_wall = time.monotonic(), time.time()
    n2.kill(signal.SIGKILL)
    assert n2.proc.returncode == -signal.SIGKILL
    down_after = C.measure(lambda: proxy.server_states().get("node2", "").startswith("DOWN"), bound=10, interval=0.05)
    # the leases node 2 issued fall due while the load goes on; the survivors revoke them
    due = bg.issued_at + LEASE_TTL
    gone_after = C.measure(lambda: not (pg_roles(cluster.pg, f"cl{RUN}") & bg.users),
                           bound=max(0.0, due + REVOKE_BOUND - time.monotonic()), interval=0.2)
    revoked_at = time.monotonic() if gone_after is not None else None
    for t in threads:
        t.join(LOAD_SECONDS + 30)
    assert not any(t.is_alive() for t in threads), "a worker is stuck"

    acks = [a for w in workers for a in w.acks]
    errors = sorted((t - killed_at, msg) for w in workers for t, msg in w.errors)
    stale = [s for w in workers for s in w.stale]
    reads = sum(w.reads for w in workers)
    before = sum(1 for a in acks if a.at < killed_at)
    print(f"\n[cluster] load: {len(acks)} acknowledged writes ({before} before the kill, {len(acks) - before} after), "
          f"{reads} reads, {len(errors)} errors, HAProxy marked node2 DOWN after "
          f"{'?' if down_after is None else '%.2fs' % down_after}")
    if errors:
        print(f"[cluster] errors from {errors[0][0]:+.2f}s to {errors[-1][0]:+.2f}s after the kill; first: {errors[0][1]}")

    left = pg_roles(cluster.pg, f"cl{RUN}") & bg.users
    assert revoked_at is not None and not left, f"roles of leases due {LEASE_TTL} s after issue still present: {left}"
    print(f"[cluster] leases issued on node2, due {due - killed_at:.1f}s after the kill, revoked by the survivors "
          f"{revoked_at - due:+.1f}s from due (pg_roles)")

    assert before > 0 and len(acks) - before > 0, "writes did not go on both before and after the kill"
    assert not stale, f"{len(stale)} stale reads, e.g. {stale[:3]}"
    outside = [(t, m) for t, m in errors if not (0 <= t <= ERROR_WINDOW)]
    assert not outside, f"{len(outside)} errors outside the {ERROR_WINDOW}s after the kill, e.g. {outside[:3]}"

    # every acknowledged write is there with its value, read through the surviving nodes
    def check(i_ack: tuple[int, Ack]) -> str | None:
        i, a = i_ack
        node = (n1, n3)[i % 2]
        r = node.session.get(f"{node.url}/v1/secret/data/{a.key}", params={"version": a.version},
                             headers={"X-Vault-Token": cluster.vault_token}, timeout=30)
        if r.status_code != 200:
            return f"{a.key} v{a.version} on {node.name}: {C.short(r)}"
        got = r.json()["data"]["data"].get("v")
        return None if got == a.value else f"{a.key} v{a.version}: {got!r}, acknowledged {a.value!r}"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        problems = [p for p in pool.map(check, enumerate(acks)) if p]
    assert not problems, f"{len(problems)} acknowledged writes missing or wrong, e.g. {problems[:5]}"

    # each key's current value is the newest acknowledged one, or a newer one that was sent
    # (a write whose answer was lost in the kill may have committed)
    newest: dict[str, Ack] = {}
    for a in acks:
        if a.key not in newest or a.version > newest[a.key].version:
            newest[a.key] = a
    attempted = {k: v for w in workers for k, v in w.attempted.items()}
    for key, a in newest.items():
        r = n3.session.get(f"{n3.url}/v1/secret/data/{key}", headers={"X-Vault-Token": cluster.vault_token}, timeout=30)
        assert r.status_code == 200, C.short(r)
        got = r.json()["data"]["data"]["v"]
        assert got >= a.value and got in attempted[key], f"{key}: current {got}, newest acknowledged {a.value}"

    # node 2 comes back with the same arguments, auto-unseals and serves what was written without it
    t0 = time.monotonic()
    n2.start(want=200)
    rejoin = time.monotonic() - t0
    up_after = C.measure(lambda: proxy.server_states().get("node2", "").startswith("UP"), bound=10, interval=0.05)
    print(f"[cluster] node2 restarted: sys/health 200 after {rejoin:.2f}s, HAProxy UP after "
          f"{'?' if up_after is None else '%.2fs' % up_after}")
    assert "unsealed with the auto-unseal key file" in n2.read_log(), n2.read_log()[-2000:]
    absent = [a for a in acks if a.at > killed_at + 1]
    assert absent, "no write acknowledged while node 2 was down"
    a = absent[len(absent) // 2]
    r = requests.get(f"{n2.url}/v1/secret/data/{a.key}", params={"version": a.version},
                     headers={"X-Vault-Token": cluster.vault_token}, timeout=30)
    assert r.status_code == 200 and r.json()["data"]["data"]["v"] == a.value, f"node2 after restart: {C.short(r)}"
    assert up_after is not None, f"HAProxy did not mark node2 UP again: {proxy.server_states()}"

    # the one-minute schedule created on node 2 rotated after node 2 was killed
    token = n1.login(cluster.admin_id, cluster.admin_key)
    value = C.wait_until(lambda: (v := n1.ok("get-rotated-secret-value", {"names": bg.rotated}, token=token))
                         .get("version", 0) > bg.version and v, timeout=30, interval=0.5,
                         what="the one-minute rotation schedule to rotate with node 2 dead")
    item = n1.ok("describe-item", {"name": bg.rotated}, token=token)
    assert item["rotator_status"] == "RotationSucceeded", item
    assert pg_login_ok(cluster.pg, bg.role, value["value"]["password"]), "the rotated password does not log in"
    assert not pg_login_ok(cluster.pg, bg.role, bg.password), "the password before rotation still logs in"
    rotated_at = datetime.fromisoformat(item["rotated_secret_details"]["last_rotation_date"].replace("Z", "+00:00")).timestamp()
    assert rotated_at > killed_wall, f"the rotation ran before the kill: {item['rotated_secret_details']}"
    print(f"[cluster] the one-minute rotation schedule rotated to version {value['version']} "
          f"{rotated_at - killed_wall:.1f}s after node2 was killed (due {bg.rotation_due - killed_wall:.1f}s after)")


# ------------------------------------------------------------------------------------------
# g. the shared audit chain verifies after all this traffic
# ------------------------------------------------------------------------------------------

def test_audit_verify_passes_after_traffic_through_several_nodes(cluster, tmp_path):
    n3 = cluster.node(3)
    home = tmp_path / "cli"
    C.ok(C.tessera_cli(n3.url, "auth", "--access-id", cluster.admin_id, "--access-key", "env:CLUSTER_KEY", home=home,
                       env={"CLUSTER_KEY": cluster.admin_key}), "tessera auth on node 3")
    p = C.ok(C.tessera_cli(n3.url, "audit", "verify", home=home), "tessera audit verify")
    assert p.stdout.strip(), p
    out = json.loads(C.ok(C.tessera_cli(n3.url, "audit", "verify", "--json", home=home), "tessera audit verify --json").stdout)
    assert out["ok"] is True, out
    print(f"\n[cluster] audit verify on node3: {p.stdout.strip()}")
    # the same chain answers the same on another node
    out1 = cluster.node(1).ok("audit-verify", {}, token=cluster.admin_token)
    assert out1["ok"] is True, out1


# ------------------------------------------------------------------------------------------
# h. every live node is healthy
# ------------------------------------------------------------------------------------------

def test_sys_health_200_on_every_live_node(cluster):
    live = [n for n in cluster.nodes if n.running()]
    assert len(live) == 3, [n.name for n in live]
    for node in live:
        r = requests.get(node.url + "/v1/sys/health", timeout=5)
        assert r.status_code == 200, f"{node.name}: {C.short(r)}"
        body = r.json()
        assert body["initialized"] is True and body["sealed"] is False, body
    r = requests.get(cluster.haproxy.url + "/v1/sys/health", timeout=5)
    assert r.status_code == 200, C.short(r)
    assert set(cluster.haproxy.server_states().values()) == {"UP"}, cluster.haproxy.server_states()
