"""A webhook receiver that is down for 30 s under continuous load: requests keep being served
with normal latency and none fails, `sys/audit` shows the failures and a growing lag, and once
the receiver is back it gets every event of the trail (at least once, by sequence number)."""

from __future__ import annotations

import time

import adlib
from adlib import duplicates, missing, wait_for

OUTAGE_SECONDS = 30
MAX_LATENCY = 2.0


def test_webhook_outage_under_load_blocks_nothing_and_catches_up(receiver, audit_server_factory):
    hook = receiver
    srv = audit_server_factory({"audit_devices": [
        {"name": "hook", "type": "http", "url": hook.url, "timeout_seconds": 2, "start_at": "beginning"}]})
    name = f"/load/{adlib.uid()}/s"
    srv.ok("create-secret", {"name": name, "value": "load-value-" + adlib.uid()})
    assert srv.vault("POST", "secret/data/load/kv", {"data": {"k": "v"}}).status_code == 200

    load = adlib.Load(srv, name, "secret/data/load/kv", threads=3).start()
    try:
        wait_for(lambda: len(hook.seqs()) > 50, 20, "the webhook to receive events under load")
        hook.stop()
        down_at = time.monotonic()
        lags: list[tuple[float, int]] = []
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            st = srv.status("hook")
            lags.append((time.monotonic() - down_at, st["lag"]))
            time.sleep(1)
        outage = srv.status("hook")
        hook.start()
        served_during_outage = load.count()
        wait_for(lambda: srv.status("hook")["consecutive_failures"] == 0, 45, "the webhook device to deliver again")
    finally:
        load.stop()

    # Requests were never held by the device.
    load.assert_healthy(MAX_LATENCY, min_requests=300)
    assert served_during_outage > 0

    # sys/audit told the operator what was going on.
    assert outage["failures"] >= 3 and outage["consecutive_failures"] >= 3, outage
    assert outage["last_error"] and "refused" in outage["last_error"], outage
    early = [lag for t, lag in lags if t < 5]
    late = [lag for t, lag in lags if t > OUTAGE_SECONDS - 5]
    assert early and late and max(late) > max(early) + 100, f"lag did not grow during the outage: {lags}"

    # Every event from the first to the last arrives, possibly more than once.
    last = srv.head()
    wait_for(lambda: not missing(hook.seqs(), 1, last), 60, f"the webhook to catch up to {last}", interval=0.5)
    seqs = hook.seqs()
    assert not missing(seqs, 1, last), (
        f"missing {len(missing(seqs, 1, last))} events, e.g. {missing(seqs, 1, last)[:10]} "
        f"({duplicates(seqs)} duplicates among {len(seqs)} received)")
    events = hook.events()
    dump = srv.audit_dump(after=last - 20)
    for seq in range(last - 19, last + 1):
        assert events[seq] == dump[seq], f"event {seq} differs from audit-query"
    print(f"outage: {load.summary()}; {len(seqs)} events received for 1..{last}, {duplicates(seqs)} duplicates")
    after = srv.status("hook")
    assert after["failures"] >= outage["failures"] and after["consecutive_failures"] == 0, after
    assert after["delivered"] >= last and after["cursor"] >= last, after
