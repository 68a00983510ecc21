"""Class 7: HTTP resource limits, driven with raw sockets.

The node of this module runs with small limits from its config file (the contract's keys):
header, body and idle time-outs of HEADER_TIMEOUT/BODY_TIMEOUT/IDLE_TIMEOUT seconds, at most
MAX_CONNECTIONS connections, MAX_HEADER_BYTES of headers and MAX_BODY bytes of body. Then:
half-sent requests (headers never finished, also when trickled a byte at a time) are cut
within the header time-out; a stalled body within the body time-out; an idle keep-alive
connection within the idle time-out; more connections than the maximum do not keep the server
from answering once the time-outs have cut them; an over-size body sent without
`Expect: 100-continue` gets a 413 at once and the connection is then closed (so the client
does not hang); a huge header gets 431 (or 400) and the connection is closed. The server stays
alive throughout.
"""
from __future__ import annotations

import selectors
import socket
import time

import pytest

from seclib import Node, assert_alive

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
IDLE_TIMEOUT = 2
MAX_CONNECTIONS = 64
MAX_HEADER_BYTES = 8192
MAX_BODY = 4096
SLACK = 3.0          # seconds beyond a time-out before a connection that is still open fails the test
PROMPT = 3.0         # "promptly": the 413/431 and the close come within this


@pytest.fixture(scope="module")
def limited(make_node) -> Node:
    return make_node(name="limits", config={
        "http_header_timeout_seconds": HEADER_TIMEOUT, "http_body_timeout_seconds": BODY_TIMEOUT,
        "http_idle_timeout_seconds": IDLE_TIMEOUT, "http_max_connections": MAX_CONNECTIONS,
        "http_max_header_bytes": MAX_HEADER_BYTES, "max_body_bytes": MAX_BODY})


def connect(node: Node) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(s: socket.socket, timeout: float) -> tuple[bool, bytes, float]:
    """Reads until the server closes (EOF or reset) or `timeout`; returns (closed, bytes, seconds)."""
    t0 = time.monotonic()
    data = b""
    s.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, data, time.monotonic() - t0
        if not chunk:
            return True, data, time.monotonic() - t0
        data += chunk
    return False, data, time.monotonic() - t0


def wait_all_closed(socks: list[socket.socket], timeout: float) -> list[float | None]:
    """For each socket, the seconds until the server closed it (None: still open at `timeout`)."""
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    closed: dict[int, float] = {}
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    while len(closed) < len(socks) and time.monotonic() - t0 < timeout:
        for key, _ in sel.select(timeout=0.1):
            i = key.data
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                closed[i] = time.monotonic() - t0
                sel.unregister(key.fileobj)
    sel.close()
    return [closed.get(i) for i in range(len(socks))]


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def head(path: str, extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}".encode()


def status_of(data: bytes) -> int | None:
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


# ------------------------------------------------------------------------------------------
# time-outs
# ------------------------------------------------------------------------------------------

def test_many_half_sent_requests_are_cut_within_the_header_timeout(limited):
    socks = []
    try:
        for _ in range(40):
            s = connect(limited)
            s.sendall(head("/v1/sys/health", "X-Slow: never-finished"))   # no CRLF, no end of headers
            socks.append(s)
        times = wait_all_closed(socks, HEADER_TIMEOUT + SLACK)
        open_ = [i for i, t in enumerate(times) if t is None]
        assert not open_, f"{len(open_)} of {len(socks)} half-sent requests still open after {HEADER_TIMEOUT + SLACK}s"
    finally:
        close_all(socks)
    assert_alive(limited, "40 half-sent requests")


def test_a_header_trickled_a_byte_at_a_time_is_still_cut_by_the_header_timeout(limited):
    s = connect(limited)
    try:
        s.sendall(head("/v1/sys/health"))
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < HEADER_TIMEOUT + SLACK:
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            closed, _, _ = read_until_closed(s, 0.3)
            if closed:
                cut = True
                break
        assert cut, f"a trickled header kept the connection open for {HEADER_TIMEOUT + SLACK}s"
    finally:
        s.close()
    assert_alive(limited, "a trickled header")


def test_a_stalled_body_is_cut_within_the_body_timeout(limited):
    s = connect(limited)
    try:
        s.sendall(head("/api/v2/create-secret", "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n", "POST")
                  + b'{"name":')
        closed, data, took = read_until_closed(s, BODY_TIMEOUT + SLACK)
        assert closed, f"a stalled body kept the connection open for {took:.1f}s"
        assert status_of(data) in (None, 400, 408, 413), data[:200]
    finally:
        s.close()
    assert_alive(limited, "a stalled body")


def test_a_body_trickled_a_byte_at_a_time_is_still_cut_by_the_body_timeout(limited):
    s = connect(limited)
    try:
        s.sendall(head("/api/v2/create-secret", "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n", "POST"))
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < BODY_TIMEOUT + SLACK:
            try:
                s.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if read_until_closed(s, 0.3)[0]:
                cut = True
                break
        assert cut, f"a trickled body kept the connection open for {BODY_TIMEOUT + SLACK}s"
    finally:
        s.close()
    assert_alive(limited, "a trickled body")


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(limited):
    s = connect(limited)
    try:
        s.sendall(head("/v1/sys/health", "\r\n"))
        data = b""
        s.settimeout(5)
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        assert status_of(data) == 200, data[:200]
        closed, _, took = read_until_closed(s, IDLE_TIMEOUT + SLACK + 2)
        assert closed, f"an idle keep-alive connection stayed open for {took:.1f}s"
    finally:
        s.close()
    assert_alive(limited, "an idle keep-alive connection")


def test_more_connections_than_the_maximum_are_cut_and_the_server_answers_afterwards(limited):
    socks = []
    try:
        for _ in range(MAX_CONNECTIONS + 16):
            try:
                s = connect(limited)
                s.sendall(head("/v1/sys/health", "X-Slow: 1"))
                socks.append(s)
            except OSError:
                break
        times = wait_all_closed(socks, HEADER_TIMEOUT + SLACK)
        still_open = sum(1 for t in times if t is None)
        assert still_open == 0, f"{still_open} of {len(socks)} connections still open after {HEADER_TIMEOUT + SLACK}s"
        assert_alive(limited, f"{len(socks)} connections at once")
    finally:
        close_all(socks)


# ------------------------------------------------------------------------------------------
# sizes
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v2/create-secret", "/v1/secret/data/big"])
def test_an_oversize_body_without_expect_gets_413_promptly_and_the_connection_is_closed(limited, path):
    s = connect(limited)
    try:
        # Content-Length far above the limit, no Expect: 100-continue, and the first part of the body
        s.sendall(head(path, f"Content-Type: application/json\r\nContent-Length: {10 * MAX_BODY * 256}\r\n"
                             f"X-Vault-Token: {limited.vault_token}\r\n\r\n", "POST") + b'{"data":{"x":"' + b"a" * 512)
        closed, data, took = read_until_closed(s, PROMPT)
        assert status_of(data) == 413, f"no 413 within {PROMPT}s: {data[:200]!r}"
        assert closed, f"the connection stayed open {took:.1f}s after the 413 (the client would hang)"
    finally:
        s.close()
    assert_alive(limited, "an over-size body")


def test_an_oversize_chunked_body_gets_413_promptly_and_the_connection_is_closed(limited):
    s = connect(limited)
    try:
        chunk = b"a" * (MAX_BODY + 100)
        s.sendall(head("/api/v2/create-secret", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", "POST")
                  + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        closed, data, took = read_until_closed(s, PROMPT)
        assert status_of(data) == 413, f"no 413 within {PROMPT}s: {data[:200]!r}"
        assert closed, f"the connection stayed open {took:.1f}s after the 413"
    finally:
        s.close()
    assert_alive(limited, "an over-size chunked body")


def test_a_huge_header_gets_431_or_400_and_the_connection_is_closed(limited):
    s = connect(limited)
    try:
        big = "a" * (MAX_HEADER_BYTES + 64)
        s.sendall(head("/v1/sys/health", f"X-Big: {big}\r\n\r\n"))
        closed, data, took = read_until_closed(s, PROMPT)
        assert status_of(data) in (431, 400), f"no 431/400 within {PROMPT}s: {data[:200]!r}"
        assert closed, f"the connection stayed open {took:.1f}s after the {status_of(data)}"
    finally:
        s.close()
    assert_alive(limited, "a huge header")


def test_many_headers_adding_up_past_the_limit_get_431_or_400(limited):
    s = connect(limited)
    try:
        lines = "".join(f"X-H{i}: {'b' * 60}\r\n" for i in range(MAX_HEADER_BYTES // 60 + 10))
        s.sendall(head("/v1/sys/health", lines + "\r\n"))
        closed, data, took = read_until_closed(s, PROMPT)
        assert status_of(data) in (431, 400), f"no 431/400 within {PROMPT}s: {data[:200]!r}"
        assert closed, f"the connection stayed open {took:.1f}s after the {status_of(data)}"
    finally:
        s.close()
    assert_alive(limited, "many headers")


def test_a_request_within_the_limits_still_works_on_the_limited_node(limited):
    """The control: the limits do not refuse ordinary requests."""
    r = limited.native("create-secret", {"name": "/limits/ok", "value": "x" * 100})
    assert r.status_code == 200, r.text
    r = limited.vault("GET", "sys/health")
    assert r.status_code == 200
