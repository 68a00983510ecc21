"""A device's cursor survives a server restart: on a durable (non-dev, auto-unsealing) node, the
webhook is stopped, requests are made, the server is stopped with SIGTERM, the webhook comes
back and the server is started again — the receiver then gets exactly the events it missed,
resumed from the persisted cursor (neither from the beginning nor from the new head)."""

from __future__ import annotations

import signal

import adlib
from adlib import missing, wait_for


def test_cursor_persisted_across_restart(receiver_factory, tmp_path):
    hook = receiver_factory()
    node = adlib.DurableAuditNode(tmp_path / "node", {"audit_devices": [
        {"name": "hook", "type": "http", "url": hook.url, "timeout_seconds": 2}]})
    try:
        node.start()
        node.initialize()
        node.wait_unsealed()
        name = f"/restart/{adlib.uid()}/s"
        node.ok("create-secret", {"name": name, "value": "restart-value-" + adlib.uid()})
        for _ in range(5):
            node.ok("get-secret-value", {"names": [name]})
        first_head = node.head()
        wait_for(lambda: not missing(hook.seqs(), 1, first_head), 15, f"the webhook to receive 1..{first_head}")

        hook.stop()
        for _ in range(20):
            node.ok("get-secret-value", {"names": [name]})
        wait_for(lambda: srv_failed(node), 15, "a failed delivery while the webhook is down")
        before = node.status("hook")
        missed_head = node.head()
        assert before["cursor"] < missed_head and before["lag"] > 0, before
        acked = max(hook.seqs())
        assert before["cursor"] == acked, (before, acked)

        node.stop(signal.SIGTERM)
        assert node.proc.returncode == 0, node.log.read_text()[-2000:]
        hook.start()
        batches_before = len(hook.batches)
        node.start()
        node.wait_unsealed()

        wait_for(lambda: not missing(hook.seqs(), 1, missed_head), 30, f"the missed events up to {missed_head} after the restart",
                 interval=0.3)
        with hook.lock:
            resent = [e["seq_num"] for b in hook.batches[batches_before:] for e in b["events"]]
        assert resent and min(resent) == before["cursor"] + 1, (
            f"after the restart delivery resumed at {min(resent) if resent else None}, not after the persisted cursor {before['cursor']}")

        # New requests after the restart keep flowing.
        node.ok("get-secret-value", {"names": [name]})
        final = node.head()
        wait_for(lambda: not missing(hook.seqs(), 1, final), 15, f"delivery up to {final} after the restart")
        st = node.status("hook")
        assert st["source"] == "config" and st["cursor"] >= missed_head and st["consecutive_failures"] == 0, st
    finally:
        if node.proc and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
            try:
                node.proc.wait(15)
            except Exception:
                node.proc.kill()
                node.proc.wait(10)


def srv_failed(node: adlib.DurableAuditNode) -> bool:
    return node.status("hook")["failures"] >= 1
