"""Syslog over TCP when the syslog daemon goes away and comes back: requests are served all
along, `sys/audit` shows the failed deliveries, and after rsyslogd is started again on the
same port every event of the trail reaches it (the device reconnects and resends from its
cursor; duplicates are allowed, gaps are not)."""

from __future__ import annotations

from adlib import duplicates, missing, syslog_events, wait_for


def test_syslog_tcp_reconnects_and_catches_up(rsyslog, audit_server_factory):
    rs = rsyslog
    srv = audit_server_factory({"audit_devices": [
        {"name": "tcp", "type": "syslog", "address": f"127.0.0.1:{rs.tcp_port}", "protocol": "tcp",
         "timeout_seconds": 2, "start_at": "beginning"}]})

    def seqs() -> list[int]:
        return [m["event"]["seq_num"] for m in syslog_events(rs, "tcp")]

    for i in range(5):
        assert srv.vault("GET", f"secret/data/sys/before-{i}").status_code == 404
    head = srv.head()
    wait_for(lambda: not missing(seqs(), 1, head), 10, f"rsyslogd to receive 1..{head}")

    rs.stop()
    for i in range(20):
        assert srv.vault("GET", f"secret/data/sys/down-{i}", timeout=2).status_code == 404
    st = wait_for(lambda: (s := srv.status("tcp"))["failures"] >= 1 and s, 15, "a failed syslog delivery")
    assert st["last_error"], st

    rs.start()
    for i in range(5):
        assert srv.vault("GET", f"secret/data/sys/after-{i}").status_code == 404
    last = srv.head()
    wait_for(lambda: not missing(seqs(), 1, last), 45, f"rsyslogd to receive 1..{last} after its restart", interval=0.3)
    got = seqs()
    assert not missing(got, 1, last), f"missing {missing(got, 1, last)} ({duplicates(got)} duplicates)"
