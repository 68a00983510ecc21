"""A webhook that reads the request and never answers does not delay requests (each delivery is
bounded by the device's timeout_seconds); `sys/audit` shows the time-out; once the receiver
answers again, every event arrives. A receiver answering a non-2xx status is a failed delivery
(the batch is sent again), not an acknowledgement."""

from __future__ import annotations

import time

import adlib
from adlib import duplicates, missing, wait_for

MAX_LATENCY = 2.0
TIMEOUT_SECONDS = 3   # above MAX_LATENCY: a request that waited for the device would show


def test_hanging_webhook_delays_no_request(receiver, audit_server_factory):
    hook = receiver
    hook.mode = "hang"
    srv = audit_server_factory({"audit_devices": [
        {"name": "stuck", "type": "http", "url": hook.url, "timeout_seconds": TIMEOUT_SECONDS}]})
    name = f"/hang/{adlib.uid()}/s"
    srv.ok("create-secret", {"name": name, "value": "hang-value-" + adlib.uid()})
    assert srv.vault("POST", "secret/data/hang/kv", {"data": {"k": "v"}}).status_code == 200

    load = adlib.Load(srv, name, "secret/data/hang/kv", threads=3).start()
    try:
        st = wait_for(lambda: (s := srv.status("stuck"))["failures"] >= 2 and s, 3 * TIMEOUT_SECONDS + 10,
                      "two timed-out deliveries")
        started = time.monotonic()
        while time.monotonic() - started < 2:   # keep the load on while the next delivery hangs
            time.sleep(0.2)
    finally:
        load.stop()
    load.assert_healthy(MAX_LATENCY, min_requests=100)

    assert hook.hung, "the receiver never got a request to hang on"
    assert not hook.batches
    assert st["delivered"] == 0 and st["consecutive_failures"] >= 2 and st["lag"] > 0, st
    assert st["last_error"] and ("timed out" in st["last_error"] or "did not finish" in st["last_error"]), st
    assert st["last_delivered_at"] is None, st

    hook.mode = "ok"
    last = srv.head()
    wait_for(lambda: not missing(hook.seqs(), st["cursor"] + 1, last), 40, f"catch-up to {last}", interval=0.5)
    seqs = hook.seqs()
    assert min(seqs) == st["cursor"] + 1, "delivery did not resume from the cursor"
    after = srv.status("stuck")
    assert after["consecutive_failures"] == 0 and after["delivered"] >= last - st["cursor"], after
    print(f"hanging: {load.summary()}; last_error {st['last_error']!r}; {duplicates(seqs)} duplicates")


def test_non_2xx_answer_is_not_an_acknowledgement(receiver, audit_server_factory):
    hook = receiver
    hook.mode = 503
    srv = audit_server_factory({"audit_devices": [{"name": "picky", "type": "http", "url": hook.url, "start_at": "beginning"}]})
    srv.ok("list-items", {"path": "/"})
    st = wait_for(lambda: (s := srv.status("picky"))["failures"] >= 1 and s, 15, "a refused delivery")
    assert "503" in (st["last_error"] or ""), st
    assert st["delivered"] == 0 and st["cursor"] == 0, st
    refused_first = hook.refused[0]
    assert refused_first.startswith("1-"), hook.refused

    hook.mode = "ok"
    last = srv.head()
    wait_for(lambda: not missing(hook.seqs(), 1, last), 20, f"delivery of 1..{last} after the 503s")
    assert hook.batches[0]["header"].startswith("1-"), "the refused batch was not sent again from its start"
