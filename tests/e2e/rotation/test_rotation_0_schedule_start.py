"""Scheduled rotation, part 1: a rotated secret with a one-minute interval is created first, so
that the other rotation tests run while the scheduler works; part zz checks two rotations."""
import secrets

from rotlib import superuser, unique


def test_create_one_minute_schedule(schedule_node, postgres):
    role, pw = unique("sched"), "Init-" + secrets.token_hex(8)
    superuser(postgres, f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
    assert schedule_node.call("target-create-db", name="sched-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                              user_name="postgres", pwd=postgres["password"]).status_code == 200
    r = schedule_node.call("rotated-secret-create-postgresql", name="/sched/pg", target_name="sched-pg", rotated_username=role,
                           rotated_password=pw, auto_rotate="true", rotation_interval_minutes=1)
    assert r.status_code == 200, r.text
    d = schedule_node.call("describe-item", name="/sched/pg").json()
    assert d["auto_rotate"] is True and d["next_rotation_date"], d
    schedule_node.schedule = {"role": role, "password": pw}
