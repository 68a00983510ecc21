"""A rotated PostgreSQL password read through `tessera agent`: the agent answers it from its
cache, and a rotation on the central server reaches the agent through the change stream (the
agent's revalidation is set to 300 s, so only the stream can explain the new value)."""
import time

from edge_support import Agent, edge_agent_identity, identity, login
from rotlib import pg_login_ok
from test_rotation_postgres import make_role


def test_a_rotation_reaches_the_edge_cache(node, postgres, pg_target, tmp_path):
    role, pw = make_role(postgres)
    r = node.call("rotated-secret-create-postgresql", name="/rot/edge/app", target_name=pg_target, rotated_username=role,
                  rotated_password=pw)
    assert r.status_code == 200, r.text
    agent_id, agent_key = edge_agent_identity(node)
    app_id, app_key = identity(node, [("/rot/edge/*", ["read"], "item-rule")])
    app = login(node, app_id, app_key)
    agent = Agent(tmp_path, node.base, agent_id, agent_key).start()
    try:
        agent.wait_metric("tessera_edge_change_stream_live", lambda v: v == 1)

        def read():
            r = agent.native("get-rotated-secret-value", names="/rot/edge/app", token=app)
            assert r.status_code == 200, r.text
            return r.json()["value"]["password"], r.headers.get("X-Cache")

        assert read() == (pw, "MISS")
        assert read() == (pw, "HIT")
        t0 = time.monotonic()
        assert node.call("gateway-rotate-secret", name="/rot/edge/app").status_code == 200
        while (value := read())[0] == pw:
            assert time.monotonic() - t0 < 10, "the rotation never reached the agent"
            time.sleep(0.02)
        print(f"rotation visible through the agent after {(time.monotonic() - t0) * 1000:.0f} ms")
        new = value[0]
        assert new != pw and pg_login_ok(postgres, role, new)
        assert read() == (new, "HIT")
    finally:
        agent.stop()
