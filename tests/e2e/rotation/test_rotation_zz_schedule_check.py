"""Scheduled rotation, part 2: the one-minute schedule created in part 0 has rotated twice in a
row, each time to a password that logs in, audited with the actor `scheduler`."""
import time

from rotlib import pg_login_ok


def test_one_minute_schedule_rotates_twice(schedule_node, postgres):
    SCHEDULE = getattr(schedule_node, "schedule", None)
    assert SCHEDULE, "part 0 did not run"
    deadline = time.time() + 200
    value = {}
    while time.time() < deadline:
        value = schedule_node.call("get-rotated-secret-value", names="/sched/pg").json()
        if value.get("version", 0) >= 3:
            break
        time.sleep(2)
    assert value.get("version", 0) >= 3, f"expected two scheduled rotations, got {value.get('version')}"
    assert pg_login_ok(postgres, SCHEDULE["role"], value["value"]["password"])
    assert not pg_login_ok(postgres, SCHEDULE["role"], SCHEDULE["password"])
    d = schedule_node.call("describe-item", name="/sched/pg").json()
    assert d["rotator_status"] == "RotationSucceeded" and d["last_rotation_error"] == ""
    events = schedule_node.call("audit-query", path_prefix="/sched/pg", action="rotate_secret").json()["events"]
    by_scheduler = [e for e in events if e.get("access_id") == "scheduler" and e.get("result") == "allowed"]
    assert len(by_scheduler) >= 2, events
