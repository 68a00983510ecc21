# The benchmark driver behind scripts/bench: starts Tessera, OpenBao (and the bare-HTTP server, and
# a PostgreSQL when needed) on free loopback ports, runs the selected scenarios with the servers'
# runs interleaved, stops everything it started by PID, and prints one markdown table (plus JSON).
# The pg scenario starts its own PostgreSQL with Tessera (1 and 3 nodes) and OpenBao stored on it.
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from common import (REPO, BenchError, Proc, ensure_bao, ensure_swift_binaries, ensure_wrk, free_port, log, make_tls_files, now,
                    parallel_requests, proc_cpu_s, proc_mem, run_wrk, run_wrk_many, status_once, wait_until)
from pg import Postgres
from report import Results, markdown, summarize
from seed import first_seed_id, seed_leases
from servers import CREDS, KV_ONE, BareHTTP, OpenBao, OpenBaoPG, Tessera, TesseraPG

SCENARIOS = ["kv1", "kvtls", "kv10k", "native", "kvwrite", "db", "startup", "rss", "bare", "pg", "edge"]
RUN_ORDER = ["kv1", "kvtls", "native", "kv10k", "kvwrite", "bare", "edge", "db", "startup", "rss", "pg"]
READ_C = [1, 16, 64]
DB_C = [4, 16]
PG_C = 16          # the pg scenario's concurrency (split 6/5/5 over three nodes)
PG_NODES = 3
N_SECRETS = 10_000
N_REVOKE = 1_000
PRODUCER = "/database/bench"
LEASE_PREFIX = "database/creds/bench/"


def human(n):
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (f"{n // 1000}k" if n >= 1000 else str(n))


class EdgeAgentServer:
    """The `tessera agent` process as the wrk helper sees a server."""
    kind = "tessera"

    def __init__(self, name, data_dir):
        self.name = name
        self.data_dir = data_dir
        self.port = None
        self.proc = None
        self.bench_token = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid


class Bench:
    def __init__(self, args, bins, bao):
        self.a = args
        self.bins = bins
        self.bao_bin = bao
        self.work = tempfile.mkdtemp(prefix="tessera-bench-")
        self.R = Results()
        self.raw = {}
        self.problems = []
        self.notes = []
        self.rss = {}            # label -> {"tessera": MiB, "openbao": MiB}
        self.pg = None
        self.main = None         # (Tessera, OpenBao) for the load scenarios
        self.su = None           # (Tessera, OpenBao) for startup / lease-count RSS
        self.tls_pair = None     # (Tessera, OpenBao) with HTTPS listeners
        self.bao_tokens = 0
        self.kv10k_written = False
        self.kv1_tessera = {}    # c -> [wrk results], for the bare-HTTP share
        self.ratio_text = {}     # row key -> text for the ratio cell (pg scenario)
        self.pg_cluster = None   # the pg scenario's own PostgreSQL
        self.pg_servers = []     # the pg scenario's Tessera nodes and OpenBao
        self.pause = 0.5 if args.quick else 1.0
        self.warm = 1 if args.quick else 2
        if args.quick:
            self.t_levels, self.o_levels = [0, 10_000], [0, 10_000]
        else:
            self.t_levels, self.o_levels = [0, 20_000, 100_000, 1_000_000], [0, 20_000]

    # ------------------------------------------------------------------ plumbing
    def problem(self, text):
        log("PROBLEM: " + text)
        if text not in self.problems:
            self.problems.append(text)

    def raw_add(self, key, value):
        self.raw.setdefault(key, []).append(value)

    def postgres(self):
        if self.pg is None:
            self.pg = Postgres()
        return self.pg

    def servers(self):
        if self.main is None:
            t = Tessera("tessera", os.path.join(self.work, "tessera"), self.bins["tessera"])
            o = OpenBao("openbao", os.path.join(self.work, "openbao"), self.bao_bin)
            self.main = (t, o)
            log("starting Tessera and OpenBao (init, KV v2 at secret/, limited load identity)")
            self.raw["tessera_init"] = t.initialize()
            self.raw["openbao_init"] = o.initialize()
            time.sleep(3)
            self.record_rss("idle", "idle after start + setup", t, o)
        return self.main

    def record_rss(self, key, label, t=None, o=None, note=None):
        for side, srv in (("tessera", t), ("openbao", o)):
            if srv is None:
                continue
            mem = proc_mem(srv.pid)
            self.raw_add(f"rss/{key}/{side}", mem)
            self.R.add(f"rss/{key}", "rss: VmRSS", label, "value", side, mem["VmRSS_MiB"], unit="MiB", note=note)
            log(f"  RSS {label} {side}: {mem['VmRSS_MiB']} MiB")

    def wrk(self, srv, script, path, c, env=None, duration=None):
        env = dict(env or {})
        env.setdefault("VAULT_TOKEN", srv.bench_token or "")
        r = run_wrk(script, srv.base + path, c, duration or self.a.duration, env, srv.pid)
        tag = f"{srv.kind} {script} {path or env.get('KV_PREFIX', '')} c={c}"
        if r["non_2xx"] or r["socket_errors"]:
            self.problem(f"{tag}: {r['non_2xx']} non-2xx responses, {r['socket_errors']} socket errors "
                         f"of {r['requests']} requests")
        if not srv.proc.alive():
            raise BenchError(f"{srv.name} died during {tag}:\n{srv.proc.log_tail()}")
        log(f"  {tag}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
            f"cpu {r.get('server_cpu_us_per_req', 0):.0f} µs/req machine {r['machine_busy_cores']} cores")
        time.sleep(self.pause)
        return r

    def warmup(self, servers, script, path, env=None, c=16):
        for s in servers:
            self.wrk(s, script, path, c, env, duration=self.warm)

    # ------------------------------------------------------------------ scenarios
    def read_one(self, pair, key, label, keep=None):
        """wrk reads of the one secret on both servers of `pair`, interleaved, at each READ_C."""
        self.warmup(pair, "get.lua", KV_ONE)
        for rep in range(self.a.repeat):
            for c in READ_C:
                for s in pair:
                    r = self.wrk(s, "get.lua", KV_ONE, c)
                    self.R.add(f"{key}/{c}", label, f"c={c}", "rate", s.kind, r)
                    if keep is not None and s is pair[0]:
                        keep.setdefault(c, []).append(r)

    def sc_kv1(self):
        self.read_one(self.servers(), "kv1", "kv1: KV v2 read, one secret", keep=self.kv1_tessera)

    def sc_kvtls(self):
        """The kv1 read over HTTPS: a second pair of servers with TLS listeners (one CA, P-256
        certificates), keep-alive connections as in kv1, so the handshake is paid once per
        connection and the cost measured is the per-request encryption."""
        if self.tls_pair is None:
            files = make_tls_files(os.path.join(self.work, "tls"))
            t = Tessera("tessera-tls", os.path.join(self.work, "tessera-tls"), self.bins["tessera"])
            o = OpenBao("openbao-tls", os.path.join(self.work, "openbao-tls"), self.bao_bin)
            t.use_tls(files)
            o.use_tls(files)
            log("starting Tessera and OpenBao with HTTPS listeners")
            t.initialize()
            o.initialize()
            time.sleep(2)
            self.tls_pair = (t, o)
        self.read_one(self.tls_pair, "kvtls", "kvtls: KV v2 read over HTTPS (TLS 1.3, keep-alive), one secret")

    def sc_native(self):
        t, o = self.servers()
        body = json.dumps({"names": ["/secret/bench/one"], "token": t.bench_token})
        js = t.native("get-secret-value", {"names": ["/secret/bench/one"]}, token=t.bench_token)
        if "/secret/bench/one" not in (js or {}):
            raise BenchError(f"native get-secret-value answered {js}")
        self.warmup((t,), "post_body.lua", "/api/v2/get-secret-value", {"BODY": body})
        for rep in range(self.a.repeat):
            for c in READ_C:
                r = self.wrk(t, "post_body.lua", "/api/v2/get-secret-value", c, {"BODY": body})
                self.R.add(f"native/{c}", "native: POST /api/v2/get-secret-value (Tessera only)", f"c={c}", "rate",
                           "tessera", r)

    def bulk_write(self, s, prefix, n):
        def make(i):
            return ("POST", f"{prefix}{i}", {"data": {"username": f"svc-{i}", "password": f"pw-{i:08d}-bench-secret-value"}},
                    s.bench_token)
        r = parallel_requests(s.port, n, 16, make, pid=s.pid)
        r.pop("_results", None)
        if r["errors"]:
            self.problem(f"{s.kind} bulk write {prefix}: {r['errors']} failures, e.g. {r['first_failures'][:2]}")
        log(f"  {s.kind} bulk write of {n}: {r['rps']:.0f} writes/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
            f"cpu {r.get('server_cpu_us_per_req', 0):.0f} µs/write")
        time.sleep(self.pause)
        return r

    def write_10k(self, reps):
        t, o = self.servers()
        for rep in range(reps):
            prefix = "/v1/secret/data/bench/k/" if rep == 0 and not self.kv10k_written else f"/v1/secret/data/bench/k{rep}x/"
            for s in (t, o):
                r = self.bulk_write(s, prefix, N_SECRETS)
                self.R.add("kv10k/bulk", "kv10k: bulk write of 10,000 secrets", "16 conns (python)", "rate", s.kind, r)
            if not self.kv10k_written:
                self.kv10k_written = True
                time.sleep(2)
                self.record_rss("after10k", "after writing 10,000 secrets", t, o)

    def sc_kv10k(self):
        t, o = self.servers()
        self.write_10k(self.a.repeat)
        env = {"KV_PREFIX": "/v1/secret/data/bench/k/", "KV_N": str(N_SECRETS)}
        self.warmup((t, o), "get_random.lua", "", env)
        for rep in range(self.a.repeat):
            for c in READ_C:
                for s in (t, o):
                    r = self.wrk(s, "get_random.lua", "", c, env)
                    self.R.add(f"kv10k/{c}", "kv10k: KV v2 read, random of 10,000", f"c={c}", "rate", s.kind, r)

    def sc_kvwrite(self):
        t, o = self.servers()
        for rep in range(self.a.repeat):
            for c in READ_C:
                for s in (t, o):
                    env = {"KV_WRITE_PREFIX": f"/v1/secret/data/bench/w/r{rep}c{c}-"}
                    r = self.wrk(s, "kv_write.lua", "", c, env)
                    self.R.add(f"kvwrite/{c}", "kvwrite: KV v2 write, new path each", f"c={c}", "rate", s.kind, r)

    def sc_bare(self):
        t, _ = self.servers()
        b = BareHTTP("bare-http", os.path.join(self.work, "bare-http"), self.bins["bare-http"])
        b.start()
        try:
            reuse = all(self.kv1_tessera.get(c) for c in READ_C)
            self.warmup((b,) if reuse else (b, t), "get.lua", KV_ONE)
            for rep in range(self.a.repeat):
                for c in READ_C:
                    r = self.wrk(b, "get.lua", KV_ONE, c)
                    self.R.add(f"bare/{c}", "bare: bare-HTTP limit (in Tessera's columns)", f"c={c}", "rate", "tessera", r)
                    if not reuse:
                        self.kv1_tessera.setdefault(c, []).append(self.wrk(t, "get.lua", KV_ONE, c))
        finally:
            b.stop()
        self.bare_share = {}
        for c in READ_C:
            bare = sorted(x["rps"] for x in self.R.rows[f"bare/{c}"]["tessera"])
            kv = sorted(x["rps"] for x in self.kv1_tessera[c])
            share = kv[len(kv) // 2] / bare[len(bare) // 2] if bare and bare[len(bare) // 2] else None
            self.bare_share[f"bare/{c}"] = f"kv1 = {share * 100:.0f}% of bare" if share else "–"
            self.raw[f"bare_share_c{c}"] = share

    def sc_edge(self):
        """KV v2 reads through `tessera agent` (answered from its cache, each one audited through its
        durable queue) against the same reads sent straight to Tessera, interleaved in one run. The
        server CPU column is the agent's own; the central server records the reported events."""
        t, _ = self.servers()
        am = t.native("create-auth-method", {"name": "/bench-edge"})
        t.native("create-role", {"name": "bench-edge"})
        t.native("set-role-rule", {"role-name": "bench-edge", "path": "/sys/edge", "capability": ["read", "create"],
                                   "rule-type": "sys-rule"})
        t.native("assoc-role-am", {"role-name": "bench-edge", "am-name": "/bench-edge"})
        edge_dir = os.path.join(self.work, "tessera-agent")
        os.makedirs(edge_dir, exist_ok=True)
        key_file = os.path.join(self.work, "edge.key")
        with open(key_file, "w") as f:
            f.write(os.urandom(32).hex())
        edge = EdgeAgentServer("tessera-agent", edge_dir)
        edge.port = free_port()
        env = dict(os.environ, EDGE_KEY=am["access_key"])
        for var in ("TESSERA_ADDR", "TESSERA_TOKEN"):
            env.pop(var, None)
        edge.proc = Proc("tessera-agent", [self.bins["tessera"], "agent", "--address", t.base, "--listen", f"127.0.0.1:{edge.port}",
                                           "--cache-dir", os.path.join(edge_dir, "cache"), "--cache-key-file", key_file,
                                           "--access-id", am["access_id"], "--access-key", "env:EDGE_KEY"],
                         os.path.join(edge_dir, "agent.log"), env=env)
        edge.bench_token = t.bench_token
        try:
            wait_until(lambda: status_once(edge.port, "GET", KV_ONE, t.bench_token) == 200, timeout=60, what="the agent")
            self.warmup((edge, t), "get.lua", KV_ONE)
            for rep in range(self.a.repeat):
                for c in READ_C:
                    r = self.wrk(edge, "get.lua", KV_ONE, c)
                    self.R.add(f"edge/{c}", "edge: KV v2 read through tessera agent (cache hit, audited via its queue)",
                               f"c={c}", "rate", "tessera", r)
                    d = self.wrk(t, "get.lua", KV_ONE, c)
                    self.R.add(f"edge-direct/{c}", "edge-direct: the same read straight to Tessera (same run)",
                               f"c={c}", "rate", "tessera", d)
        finally:
            edge.proc.stop()
        for c in READ_C:
            e = sorted(x["rps"] for x in self.R.rows[f"edge/{c}"]["tessera"])
            d = sorted(x["rps"] for x in self.R.rows[f"edge-direct/{c}"]["tessera"])
            if e and d and d[len(d) // 2]:
                share = e[len(e) // 2] / d[len(d) // 2]
                self.ratio_text[f"edge/{c}"] = f"{share:.2f}× direct"
                self.raw[f"edge_vs_direct_c{c}"] = share

    # -- database -----------------------------------------------------------------------
    def revoke_all(self, s, what):
        """revoke-prefix database/creds/bench, timed until PostgreSQL holds none of s's roles."""
        pg = self.pg
        leases = s.lease_count(LEASE_PREFIX)
        roles = pg.count_roles(s.role_prefix)
        t0 = now()
        calls = []
        while True:
            r = s.http.put(s.base + "/v1/sys/leases/revoke-prefix/database/creds/bench", json={"sync": True},
                           headers={"X-Vault-Token": s.root_token}, timeout=3600)
            calls.append(r.status_code)
            if r.status_code in (200, 202, 204):
                break
            self.problem(f"{s.kind} revoke-prefix ({what}) -> {r.status_code}: {r.text[:200]}")
            if len(calls) >= 10 or s.lease_count(LEASE_PREFIX) == 0:
                break
        call_s = now() - t0
        last = {"n": None, "t": now()}
        while True:
            n = pg.count_roles(s.role_prefix)
            if n != last["n"]:
                last["n"], last["t"] = n, now()
            if n == 0 or now() - last["t"] > 10:
                break
            time.sleep(0.05)
        total = (now() if last["n"] == 0 else last["t"]) - t0
        leases_after = s.lease_count(LEASE_PREFIX)
        left = pg.drop_roles(s.role_prefix)
        out = {"what": what, "leases_before": leases, "pg_roles_before": roles, "http_status": calls,
               "revoke_call_s": round(call_s, 3), "until_roles_gone_s": round(total, 3), "leases_after": leases_after,
               "roles_left_and_dropped": left}
        self.raw_add(f"db/revoke/{s.kind}", out)
        log(f"  {s.kind} revoke ({what}): {out}")
        if left:
            self.problem(f"{s.kind}: {left} PostgreSQL role(s) left after revoke-prefix ({what}); "
                         f"{leases_after} lease(s) still listed")
        return out

    def sc_db(self):
        pg = self.postgres()
        t, o = self.servers()
        for s in (t, o):
            s.setup_db(pg)
            pg.drop_roles(s.role_prefix)
            js = s.vault("GET", CREDS, token=s.bench_token)
            if not js["data"]["username"].startswith(s.role_prefix):
                raise BenchError(f"{s.kind} issued {js['data']['username']}, expected the prefix {s.role_prefix}")
            self.raw[f"db_sample/{s.kind}"] = {"lease_id": js["lease_id"], "lease_duration": js["lease_duration"],
                                               "username": js["data"]["username"]}
        for c in DB_C:   # table order
            self.R.row(f"db/{c}", "db: GET database/creds/bench", f"c={c}", "rate")
        for c in DB_C:
            self.R.row(f"db/pg/{c}", "db: PostgreSQL CPU per credential", f"c={c}", "value", unit="µs")
        for s in (t, o):
            self.wrk(s, "get.lua", CREDS, 4, duration=self.warm)
            time.sleep(2)
            self.revoke_all(s, "after warm-up")
        for rep in range(self.a.repeat):
            for c in DB_C:
                for s in (t, o):
                    p0 = pg.cpu_s()
                    r = self.wrk(s, "get.lua", CREDS, c)
                    r["pg_cpu_s"] = round(pg.cpu_s() - p0, 2)
                    if r["requests"]:
                        r["pg_cpu_us_per_req"] = round(r["pg_cpu_s"] * 1e6 / r["requests"], 1)
                        self.R.add(f"db/pg/{c}", "db: PostgreSQL CPU per credential", f"c={c}", "value", s.kind,
                                   r["pg_cpu_us_per_req"], unit="µs")
                    self.R.add(f"db/{c}", "db: GET database/creds/bench", f"c={c}", "rate", s.kind, r)
                    time.sleep(2)   # requests wrk abandoned at its end finish before the clean-up
                    out = self.revoke_all(s, f"after wrk c={c}")
                    self.R.add("db/cleanup", "db: revoke-prefix after each wrk run", "leases per run ÷ s", "value",
                               s.kind, round(out["leases_before"] / out["until_roles_gone_s"], 1)
                               if out["until_roles_gone_s"] else None, unit="leases/s")
        for rep in range(self.a.repeat):
            for s in (t, o):
                p0 = pg.cpu_s()
                r = parallel_requests(s.port, N_REVOKE, 8, lambda i, s=s: ("GET", CREDS, None, s.bench_token), pid=s.pid)
                r.pop("_results", None)
                r["pg_cpu_s"] = round(pg.cpu_s() - p0, 2)
                if r["errors"]:
                    self.problem(f"{s.kind} issuing {N_REVOKE} creds: {r['errors']} failures, e.g. {r['first_failures'][:2]}")
                log(f"  {s.kind} issued {N_REVOKE}: {r['rps']:.0f}/s codes {r['codes']}")
                self.R.add("db/issue", f"db: issue exactly {N_REVOKE:,} creds", "8 conns (python)", "rate", s.kind, r)
                out = self.revoke_all(s, f"{N_REVOKE} leases")
                self.R.add("db/revoke", f"db: revoke-prefix of {N_REVOKE:,} leases until roles dropped", "seconds",
                           "value", s.kind, out["until_roles_gone_s"], unit="s")
                time.sleep(self.pause)
        for s in (t, o):
            runs = self.raw.get(f"db/revoke/{s.kind}", [])
            self.R.add("db/orphans", "db: PG roles left after revoke-prefix, dropped by hand", "total over the scenario",
                       "value", s.kind, sum(x["roles_left_and_dropped"] for x in runs))

    # -- Tessera and OpenBao stored on PostgreSQL -------------------------------------------
    def wrk_spread(self, servers, script, path, c, pg, env_for=None, duration=None):
        """One wrk load at c connections spread over `servers` (one wrk per server, c/n connections
        each, results summed: see common.run_wrk_many), charged with the CPU of every server
        process plus, with pg, all of that PostgreSQL's processes. env_for(i) -> extra env of the
        i-th wrk (a write prefix of its own, so two wrk processes never write the same path)."""
        n = len(servers)
        conns = [c // n + (1 if i < c % n else 0) for i in range(n)]
        targets = [(s.base + path, conns[i], dict({"VAULT_TOKEN": s.bench_token or ""}, **(env_for(i) if env_for else {})))
                   for i, s in enumerate(servers)]

        def cpu():
            parts = {"server": sum(proc_cpu_s(s.pid) for s in servers)}
            if pg is not None:
                parts["postgres"] = pg.cpu_s()
            return parts
        r = run_wrk_many(script, targets, duration or self.a.duration, {}, cpu)
        tag = f"{'+'.join(s.name for s in servers)} {script} {path or ''} c={c}"
        if r["non_2xx"] or r["socket_errors"]:
            self.problem(f"{tag}: {r['non_2xx']} non-2xx responses, {r['socket_errors']} socket errors "
                         f"of {r['requests']} requests")
        for s in servers:
            if not s.proc.alive():
                raise BenchError(f"{s.name} died during {tag}:\n{s.proc.log_tail()}")
        log(f"  {tag}: {r['rps']:.0f} req/s (per wrk {r['per_process_rps']}) p99 {r['p99_ms']:.2f} ms "
            f"cpu {r.get('server_cpu_us_per_req', 0):.0f} µs/req {r.get('cpu_parts_us_per_req')} "
            f"machine {r['machine_busy_cores']} cores")
        time.sleep(self.pause)
        return r

    def sc_pg(self):
        """KV v2 read and write at c=16 with the storage on one PostgreSQL (its own, started here):
        Tessera with 1 node and with 3 nodes on one database, OpenBao on its PostgreSQL backend
        (ha_enabled) on another database of the same server, and the SQLite Tessera of kv1/kvwrite
        for comparison. Per repeat the order is 1 node, OpenBao, SQLite, 3 nodes; nodes 2 and 3 run
        only for the 3-node runs, so the 1-node runs are a cluster of one."""
        pg = self.pg_cluster = Postgres()
        try:
            for db in ("tessera", "openbao"):
                pg.psql(f"CREATE DATABASE {db}")
            nodes = [TesseraPG(f"tessera-pg{i}", os.path.join(self.work, f"tessera-pg{i}"), self.bins["tessera"], pg,
                               "tessera") for i in range(1, PG_NODES + 1)]
            self.pg_servers.extend(nodes)
            log("starting Tessera on PostgreSQL (node 1: init, KV v2 at secret/, load identity)")
            self.raw["tessera_pg_init"] = nodes[0].initialize()
            for n in nodes[1:]:
                n.join(nodes[0])
            o = OpenBaoPG("openbao-pg", os.path.join(self.work, "openbao-pg"), self.bao_bin, pg, "openbao")
            self.pg_servers.append(o)
            log("starting OpenBao on PostgreSQL (ha_enabled; init, unseal, KV v2 at secret/, bench token)")
            self.raw["openbao_pg_init"] = o.initialize()
            sqlite = self.servers()[0]
            configs = [("pg1", nodes[:1]), ("openbao", [o]), ("sqlite", [sqlite]), ("pg3", nodes)]
            read_s, write_s = "pg: KV v2 read, one secret, storage on PostgreSQL", "pg: KV v2 write, new path each, storage on PostgreSQL"
            points = {"pg1": f"c={PG_C}: Tessera 1 node vs OpenBao (ha_enabled), CPU incl. PostgreSQL",
                      "pg3": f"c={PG_C}: Tessera {PG_NODES} nodes, one wrk per node (T columns), CPU incl. PostgreSQL",
                      "sqlite": f"c={PG_C}: Tessera on SQLite (T columns), server CPU only"}
            for op, scen in (("read", read_s), ("write", write_s)):   # table order
                for k in ("pg1", "pg3", "sqlite"):
                    self.R.row(f"pg/{op}/{k}", scen, points[k], "rate")
            for rep in range(self.a.repeat):
                for name, srvs in configs:
                    if name == "pg3":
                        for n in nodes[1:]:
                            self.raw_add("pg/node_start_s", n.start())
                    try:
                        store = None if name == "sqlite" else pg
                        if rep == 0 or name == "pg3":   # nodes 2 and 3 are fresh processes at each repeat
                            self.wrk_spread(srvs, "get.lua", KV_ONE, PG_C, store, duration=self.warm)
                        r = self.wrk_spread(srvs, "get.lua", KV_ONE, PG_C, store)
                        w = self.wrk_spread(srvs, "kv_write.lua", "", PG_C, store, env_for=lambda i, name=name, rep=rep: {
                            "KV_WRITE_PREFIX": f"/v1/secret/data/bench/pgw/{name}-r{rep}-n{i}-"})
                    finally:
                        if name == "pg3":
                            for n in nodes[1:]:
                                n.stop()
                    key, side = ("pg1", "openbao") if name == "openbao" else (name, "tessera")
                    self.R.add(f"pg/read/{key}", read_s, points[key], "rate", side, r)
                    self.R.add(f"pg/write/{key}", write_s, points[key], "rate", side, w)
        finally:
            for s in self.pg_servers:
                if s.proc is not None:
                    s.stop()
            self.pg_servers = []
            pg.stop()
            self.pg_cluster = None

        def med(key, side):   # the median the table shows (report.summarize)
            v = [x["rps"] for x in self.R.rows[key][side]]
            return statistics.median(v) if v else None
        ratios = {}
        for op in ("read", "write"):
            p1, ob = med(f"pg/{op}/pg1", "tessera"), med(f"pg/{op}/pg1", "openbao")
            p3, sq = med(f"pg/{op}/pg3", "tessera"), med(f"pg/{op}/sqlite", "tessera")
            ratios[op] = {"pg1_vs_openbao": p1 / ob if p1 and ob else None, "pg3_vs_pg1": p3 / p1 if p3 and p1 else None,
                          "sqlite_vs_pg1": sq / p1 if sq and p1 else None}
            x = ratios[op]
            self.ratio_text[f"pg/{op}/pg1"] = (f"{x['pg1_vs_openbao']:.2f}× (goal ≥ 3×)" if x["pg1_vs_openbao"] else "–")
            self.ratio_text[f"pg/{op}/pg3"] = (f"{PG_NODES} nodes = {x['pg3_vs_pg1'] * 100:.0f}% of 1 node (goal ≥ 80%)"
                                               if x["pg3_vs_pg1"] else "–")
            self.ratio_text[f"pg/{op}/sqlite"] = (f"SQLite = {x['sqlite_vs_pg1']:.2f}× PG 1 node" if x["sqlite_vs_pg1"]
                                                  else "–")
        self.raw["pg_ratios"] = ratios
        split = "/".join(str(PG_C // PG_NODES + (i < PG_C % PG_NODES)) for i in range(PG_NODES))
        self.notes.append(
            f"pg: one PostgreSQL (scripts/test-postgres, fsync=off) holds the databases tessera and openbao; OpenBao "
            f"uses its postgresql backend with ha_enabled and the file audit device. CPU µs/req in the PostgreSQL rows = "
            f"the server process(es) + every PostgreSQL process (postmaster, backends, exited backends) ÷ requests. "
            f"{PG_NODES} nodes: one wrk -t1 per node, {PG_C} connections split {split}, req/s summed, p50/p99 the highest "
            f"of the three wrk runs (an upper bound); nodes 2 and 3 are stopped during the 1-node runs.")

    # -- startup and lease counts -----------------------------------------------------------
    def startup_instances(self):
        if self.su is None:
            pg = self.postgres()
            t = Tessera("tessera-startup", os.path.join(self.work, "tessera-startup"), self.bins["tessera"])
            o = OpenBao("openbao-startup", os.path.join(self.work, "openbao-startup"), self.bao_bin)
            self.su = (t, o)
            log("starting the startup/lease instances of Tessera and OpenBao")
            self.raw["tessera_startup_init"] = t.initialize()
            t.setup_db(pg)
            self.raw["openbao_startup_init"] = o.initialize()
        return self.su

    def create_bao_tokens(self, o, total):
        n = total - self.bao_tokens
        if n <= 0:
            return
        log(f"  creating {n} OpenBao tokens (auth/token/create ttl=24h, 16 conns)")
        r = parallel_requests(o.port, n, 16, lambda i: ("POST", "/v1/auth/token/create",
                                                        {"ttl": "24h", "policies": ["default"]}, o.root_token), pid=o.pid)
        r.pop("_results", None)
        self.raw_add("openbao_token_create", r)
        if r["errors"]:
            self.problem(f"openbao token create: {r['errors']} failures")
        self.bao_tokens = total
        log(f"  {r['rps']:.0f} tokens/s; token leases now {o.lease_count('auth/token/create/')}")

    def sc_startup(self, reps=None, table=True):
        reps = reps or self.a.repeat
        t, o = self.startup_instances()
        levels = sorted(set(self.t_levels) | set(self.o_levels))
        for lvl in levels:
            do_t, do_o = lvl in self.t_levels, lvl in self.o_levels
            if do_t:
                t.stop()
                t0 = now()
                added = seed_leases(t.db_path, PRODUCER, t.bench_access_id, lvl)
                if added:
                    log(f"  seeded {added} leases into Tessera's SQLite store in {now() - t0:.1f} s")
                    self.raw_add("tessera_seed", {"total": lvl, "added": added, "seconds": round(now() - t0, 2)})
            if do_o:
                if o.proc is None:
                    o.restart()
                self.create_bao_tokens(o, lvl)
                if lvl:
                    time.sleep(5)
                    self.record_rss(f"live{lvl}", f"OpenBao right after creating {human(lvl)} tokens", o=o)
            if do_t and do_o:
                label, note = f"{human(lvl)} leases", ("Tessera: seeded lease rows; OpenBao: token leases" if lvl else None)
            elif do_t:
                label, note = f"{human(lvl)} leases", "Tessera only, seeded lease rows"
            else:
                label, note = f"{human(lvl)} leases", "OpenBao only, token leases"
            for rep in range(reps):
                for s, do in ((t, do_t), (o, do_o)):
                    if not do:
                        continue
                    r = s.restart()
                    if s is o:
                        r["lease_restore_complete_s"] = o.wait_lease_restore(timeout=120) if lvl else None
                    r["leases"] = lvl
                    self.raw_add(f"startup/{s.kind}", r)
                    log(f"  {s.kind} restart with {lvl} leases: {r}")
                    if table:
                        self.R.add(f"startup/{lvl}", "startup: restart → first KV read 200", label, "value", s.kind,
                                   r["start_to_first_read_s"], unit="s", note=note)
            if lvl and do_t:
                self.check_seeded(t, lvl)
            if lvl:
                if do_o and o.wait_lease_restore(timeout=120) is None:
                    self.problem("OpenBao did not log 'lease restore complete' within 120 s")
                time.sleep(2)
                self.record_rss(f"leases{lvl}", f"{human(lvl)} leases, after restart + 1 read",
                                t if do_t else None, o if do_o else None, note=note)
        if table:
            self.notes.append("startup: Tessera's leases were seeded straight into its SQLite store (active rows of a real "
                              "producer, expiry 10 years ahead) while it was stopped; OpenBao's are real token leases "
                              "(auth/token/create ttl=24h). OpenBao's time includes the unseal call; Tessera auto-unseals "
                              "from its key file.")

    def check_seeded(self, t, lvl):
        """Tessera sees the seeded rows: its /metrics count and a Vault lease lookup of one of them."""
        r = t.http.get(t.base + "/metrics", headers={"X-Vault-Token": t.root_token}, timeout=120)
        active = None
        for line in r.text.splitlines():
            if line.startswith('tessera_leases{state="active"}'):
                active = int(line.split()[-1])
        lookup = t.http.put(t.base + "/v1/sys/leases/lookup", json={"lease_id": "database/creds/bench/" + first_seed_id()},
                            headers={"X-Vault-Token": t.root_token}, timeout=60)
        self.raw_add("tessera_seed_check", {"leases": lvl, "metrics_active": active, "lookup_status": lookup.status_code,
                                            "lookup": lookup.json() if lookup.status_code == 200 else lookup.text[:300]})
        if active != lvl or lookup.status_code != 200:
            self.problem(f"Tessera with {lvl} seeded leases: /metrics says {active} active, lookup of a seeded "
                         f"lease -> {lookup.status_code} {lookup.text[:200]}")
        else:
            log(f"  Tessera sees the seeded leases: {active} active in /metrics, lookup of one -> 200")

    def sc_rss(self):
        t, o = self.servers()
        if not self.kv10k_written:
            self.write_10k(1)
        if not any(k.startswith("rss/leases") for k in self.R.rows):
            self.sc_startup(reps=1, table=False)

    # ------------------------------------------------------------------ driver
    def run(self, scenarios):
        for name in RUN_ORDER:
            if name in scenarios:
                log(f"=== scenario {name}")
                t0 = now()
                getattr(self, "sc_" + name)()
                self.raw.setdefault("scenario_wall_s", {})[name] = round(now() - t0, 1)

    def scan_logs(self):
        """Tessera's warning/error/critical lines and OpenBao's [ERROR] lines (reported, not fixed).

        OpenBao's [WARN] lines are left out: a single raft node logs an election warning at every start."""
        found = {}
        for root, _, files in os.walk(self.work):
            who = os.path.basename(root)
            for f in sorted(files):
                if not (f.startswith("server-") and f.endswith(".log")):
                    continue
                with open(os.path.join(root, f), errors="replace") as fh:
                    for line in fh:
                        parts = line.split(None, 2)
                        if who.startswith("tessera"):
                            bad = len(parts) > 1 and parts[1] in ("warning", "error", "critical")
                        else:
                            bad = "[ERROR]" in line or "panic:" in line
                        if bad:
                            found.setdefault(who, []).append(line.strip()[:300])
        return found

    def close(self):
        for grp in (self.main, self.su, self.tls_pair, self.pg_servers):
            for s in grp or ():
                if s.proc is not None:
                    try:
                        s.stop()
                    except Exception as e:
                        log(f"stopping {s.name}: {e}")
        Proc.stop_all()
        if self.pg is not None:
            self.pg.stop()
        if self.pg_cluster is not None:
            self.pg_cluster.stop()


def machine_info(bao):
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/loadavg") as f:
            info["loadavg_start"] = f.read().split()[:3]
    except OSError:
        pass
    for k, cmd in (("openbao", [bao, "version"]), ("wrk", ["wrk", "-v"])):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            info[k] = (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            pass
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/bench", description=(
        "Side-by-side benchmark of Tessera and OpenBao on this machine, in one run. "
        "Scenarios: " + ", ".join(SCENARIOS) + "."))
    ap.add_argument("--json", action="store_true", help="print the full JSON result on stdout (the table goes to stderr)")
    ap.add_argument("--quick", action="store_true", help="smoke run: repeat 1, 3 s runs, smaller lease counts")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset (default: all)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measurement, interleaved (default 3)")
    ap.add_argument("--duration", type=int, default=None, help="seconds per wrk run (default 10)")
    ap.add_argument("--out", default=None, help="JSON result file (default .build/bench/results-<time>.json)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (server logs, data)")
    a = ap.parse_args(argv)
    a.repeat = a.repeat or (1 if a.quick else 3)
    a.duration = a.duration or (3 if a.quick else 10)
    scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    ensure_wrk()
    bao = ensure_bao()
    bins = ensure_swift_binaries()
    bench = Bench(a, bins, bao)
    info = machine_info(bao)
    log(f"scratch directory {bench.work}; scenarios {','.join(scenarios)}; repeat {a.repeat}; wrk {a.duration} s")
    failed = None
    try:
        bench.run(scenarios)
    except (Exception, KeyboardInterrupt) as e:
        failed = e
        log(f"FAILED: {type(e).__name__}: {e}")
    finally:
        bench.close()
    logs = bench.scan_logs()
    summary = summarize(bench.R)
    summary.sort(key=lambda s: RUN_ORDER.index(s["key"].split("/")[0]) if s["key"].split("/")[0] in RUN_ORDER else 99)
    table = markdown(summary, dict(getattr(bench, "bare_share", {}), **bench.ratio_text))
    notes = [
        f"{info.get('nproc')} cores ({info.get('cpu', '?')}); both servers run side by side, idle while the other "
        f"is loaded; runs interleaved Tessera, OpenBao, …; median of {a.repeat} run(s), (min–max) shown when the "
        f"spread is over 15%; wrk {a.duration} s per run, -t min(c,2); ⚠ = some non-2xx or failed requests.",
        "CPU µs/req = server utime+stime (/proc/PID/stat) over the run ÷ requests. Ratios are Tessera ÷ OpenBao "
        "(req/s: higher is better for Tessera; p99, seconds, MiB: lower is better for Tessera).",
        "OpenBao: raft storage + file audit device, init (1 share) + unseal; loads use a child token with an ACL "
        "policy. Tessera: default setup (SQLite, auto-unseal key file); loads use an API-key identity whose role "
        "allows only secret/bench/* and database/bench.",
    ] + bench.notes
    servers_seen = sorted(d for d in os.listdir(bench.work) if d.startswith(("tessera", "openbao")))
    notes.append("server logs: " + "; ".join(
        f"{who}: {len(logs.get(who, []))} {'warning/error' if who.startswith('tessera') else '[ERROR]'} line(s)"
        for who in servers_seen) + " (the lines are in the JSON result, log_lines)")
    for who, lines in logs.items():
        if who.startswith("tessera"):
            bench.problems.append(f"{who}: {len(lines)} warning/error line(s) in its log, e.g. {lines[0]}")
    if failed:
        bench.problems.insert(0, f"the run stopped early: {type(failed).__name__}: {failed}")
    text = table + "\n\n" + "\n".join("- " + n for n in notes)
    if bench.problems:
        text += "\n\nProblems seen:\n" + "\n".join("- " + p for p in bench.problems)
    result = {"machine": info, "args": vars(a), "scenarios": scenarios, "summary": summary, "raw_rows": bench.R.rows,
              "raw": bench.raw, "notes": notes, "problems": bench.problems, "log_lines": logs,
              "table_markdown": table}
    out = a.out or os.path.join(REPO, ".build", "bench",
                                "results-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "last-table.md"), "w") as f:
        f.write(text + "\n")
    if a.json:
        print(text, file=sys.stderr)
        print(json.dumps(result, indent=1, default=str))
    else:
        print(text)
    log(f"JSON result written to {out}")
    if a.keep or failed:
        log(f"scratch directory kept: {bench.work}")
    else:
        shutil.rmtree(bench.work, ignore_errors=True)
    return 1 if failed else 0
