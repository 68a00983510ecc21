"""The file device and logrotate: after `mv audit.jsonl audit.jsonl.1` the server keeps writing
to the moved file (it holds it open) until SIGHUP, then creates a new audit.jsonl (mode 0600)
and continues there; together the two files hold every event once, in order, and the server
keeps serving throughout."""

from __future__ import annotations

import os

from adlib import file_events, missing, wait_for


def _burst(srv, n: int, tag: str) -> None:
    for i in range(n):
        assert srv.vault("GET", f"secret/data/rotate/{tag}-{i}").status_code == 404


def test_sighup_reopens_the_file_after_rename(audit_server_factory, tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    current, rotated = logdir / "audit.jsonl", logdir / "audit.jsonl.1"
    srv = audit_server_factory({"audit_devices": [{"name": "rot", "type": "file", "path": str(current), "start_at": "beginning"}]})

    _burst(srv, 10, "before")
    head = srv.head()
    wait_for(lambda: not missing([e["seq_num"] for e in file_events(current)], 1, head), 10, "the file to hold the first events")

    os.rename(current, rotated)
    _burst(srv, 5, "moved")        # still written to the moved file: the server holds it open
    moved_head = srv.head()
    wait_for(lambda: not missing([e["seq_num"] for e in file_events(rotated)], 1, moved_head), 10,
             "events after the rename to reach the moved file")
    assert not current.exists(), "a new file appeared before SIGHUP"

    srv.hup()
    _burst(srv, 10, "after")
    last = srv.head()
    wait_for(lambda: current.exists() and file_events(current) and file_events(current)[-1]["seq_num"] >= last, 10,
             "SIGHUP to make a new audit.jsonl that receives the new events")
    assert srv.vault("GET", "sys/health").status_code == 200

    old = [e["seq_num"] for e in file_events(rotated)]
    new = [e["seq_num"] for e in file_events(current)]
    assert old == sorted(old) and new == sorted(new), (old, new)
    assert old[0] == 1 and new[0] == old[-1] + 1, f"the new file does not continue the old one: old ends {old[-1]}, new starts {new[0]}"
    assert not missing(old + new, 1, new[-1]) and len(old + new) == len(set(old + new)), (old, new)
    assert current.stat().st_mode & 0o777 == 0o600
    st = srv.status("rot")
    assert st["failures"] == 0 and st["last_error"] is None, st
    # A second SIGHUP without a rename keeps appending to the same file.
    before = current.read_bytes()
    srv.hup()
    _burst(srv, 3, "again")
    final = srv.head()
    wait_for(lambda: file_events(current)[-1]["seq_num"] >= final, 10, "appends after a second SIGHUP")
    after = current.read_bytes()
    assert after.startswith(before) and len(after) > len(before), "the second SIGHUP truncated or replaced the file"
