# The PostgreSQL both servers issue dynamic credentials on: started and stopped with the project's
# scripts/test-postgres, queried with psql; counts and drops one server's roles by name prefix, and
# measures PostgreSQL's own CPU use.
import os
import shutil
import subprocess
import tempfile

from common import CLK_TCK, REPO, BenchError, log


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tessera-bench-pg-")
        os.chmod(self.dir, 0o755)
        log("starting PostgreSQL (scripts/test-postgres)")
        out = subprocess.run([os.path.join(REPO, "scripts", "test-postgres"), "start", self.dir],
                             capture_output=True, text=True)
        if out.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise BenchError(f"scripts/test-postgres start failed: {out.stderr[-1000:]}")
        port, password = out.stdout.split()[:2]
        self.port, self.password = int(port), password
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            self.postmaster = int(f.readline())

    def stop(self):
        subprocess.run([os.path.join(REPO, "scripts", "test-postgres"), "stop", self.dir], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql, stdin=None):
        env = dict(os.environ, PGPASSWORD=self.password)
        cmd = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-v",
               "ON_ERROR_STOP=1", "-At"]
        cmd += ["-c", sql] if sql else ["-f", "-"]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=600)
        if r.returncode != 0:
            raise BenchError(f"psql failed: {r.stderr.strip()[-500:]}")
        return r.stdout.strip()

    def count_roles(self, prefix):
        return int(self.psql(f"SELECT count(*) FROM pg_roles WHERE starts_with(rolname, '{prefix}')"))

    def drop_roles(self, prefix):
        """Drops every role whose name starts with prefix; returns how many there were."""
        n = self.count_roles(prefix)
        if n:
            self.psql(None, stdin=(f"SELECT format('DROP ROLE %I', rolname) FROM pg_roles "
                                   f"WHERE starts_with(rolname, '{prefix}') \\gexec\n"))
        return n

    def cpu_s(self):
        """CPU seconds of the postmaster, its live backends and its reaped (exited) backends."""
        total = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            fields = s[s.rindex(")") + 2:].split()
            pid, ppid = int(d), int(fields[1])
            if pid == self.postmaster:
                total += sum(int(x) for x in fields[11:15])
            elif ppid == self.postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK
