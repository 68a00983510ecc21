"""Raw HTTP on the KV endpoints: the response envelope, status codes and headers.

Every 200 JSON response carries exactly the 8 envelope keys; a deleted or destroyed KV v2
version is a 404 *with* the full envelope; a plain miss is 404 {"errors":[]}; 204s have no
body; Content-Type is exactly application/json everywhere.  Shapes are compared with bao.
"""

from __future__ import annotations

import vaultlib as V

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def check_envelope(r: V.Resp) -> dict:
    assert r.content_type == "application/json", r
    body = r.json()
    assert isinstance(body, dict) and set(body) == V.ENVELOPE_KEYS, (sorted(body), r)
    assert isinstance(body["request_id"], str) and body["request_id"], r
    assert body["lease_id"] == "" and body["renewable"] is False, r
    assert type(body["lease_duration"]) is int, r
    assert body["wrap_info"] is None and body["auth"] is None, r
    assert body["warnings"] is None or isinstance(body["warnings"], list), r
    return body


def check_headers(r: V.Resp) -> None:
    assert r.content_type == "application/json", r
    assert r.headers.get("cache-control") == "no-store", r
    assert r.status < 500, r


def test_kv_envelopes(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        d, m = f"/v1/{t.kv2}/data/{pfx}", f"/v1/{t.kv2}/metadata/{pfx}"
        k1 = f"/v1/{t.kv1}/{pfx}"

        def ok(name, method, path, body=V._DEFAULT, **kw) -> dict:
            r = tr.resp(name, t.http(method, path, body, **kw))
            check_headers(r)
            assert r.status == 200, r
            return check_envelope(r)

        def no_content(name, method, path, body=V._DEFAULT, **kw) -> None:
            r = tr.resp(name, t.http(method, path, body, **kw))
            check_headers(r)
            assert r.status == 204 and r.body == b"", r

        # --- KV v2 ----------------------------------------------------------------------------
        e = ok("v2 write", "POST", f"{d}/a", {"data": {"u": "1"}})
        assert e["data"]["version"] == 1 and e["data"]["deletion_time"] == "", e
        e = ok("v2 write (PUT)", "PUT", f"{d}/a", {"data": {"u": "2", "n": 5}, "options": {}})
        assert e["data"]["version"] == 2, e
        # the CLI sends no Content-Type on writes
        e = ok("v2 write no content-type", "PUT", f"{d}/b", raw=b'{"data":{"x":"y"}}')
        assert e["data"]["version"] == 1, e
        e = ok("v2 read", "GET", f"{d}/a")
        assert e["data"]["data"] == {"u": "2", "n": 5} and e["data"]["metadata"]["version"] == 2, e
        assert e["lease_duration"] == 0, e
        e = ok("v2 read ?version=1", "GET", f"{d}/a?version=1")
        assert e["data"]["data"] == {"u": "1"}, e
        e = ok("v2 read ?version=0", "GET", f"{d}/a?version=0")
        assert e["data"]["metadata"]["version"] == 2, e
        e = ok("v2 patch", "PATCH", f"{d}/a", raw=b'{"data":{"u":"3"},"options":{}}', headers=MERGE_PATCH)
        assert e["data"]["version"] == 3, e
        e = ok("v2 cas write", "PUT", f"{d}/a", {"data": {"u": "4"}, "options": {"cas": 3}})
        assert e["data"]["version"] == 4, e
        e = ok("v2 metadata", "GET", f"{m}/a")
        assert e["data"]["current_version"] == 4 and sorted(e["data"]["versions"]) == ["1", "2", "3", "4"], e

        for name, method, path in (("v2 LIST", "LIST", m), ("v2 LIST /", "LIST", m + "/"),
                                   ("v2 ?list=true", "GET", m + "?list=true"),
                                   ("v2 /?list=true", "GET", m + "/?list=true"),
                                   ("v2 ?list=1", "GET", m + "?list=1"),
                                   ("v2 ?list=True", "GET", m + "?list=True")):
            e = ok(name, method, path)
            assert sorted(e["data"]["keys"]) == ["a", "b"], (name, e)

        # missing key / version / metadata: 404 {"errors":[]}
        for name, path in (("v2 read missing", f"{d}/nope"), ("v2 read missing version", f"{d}/a?version=99"),
                           ("v2 metadata missing", f"{m}/nope"), ("v2 list missing", f"{m}/nope?list=true")):
            r = tr.resp(name, t.http("GET", path))
            check_headers(r)
            assert r.status == 404 and r.json() == {"errors": []}, r

        # deleted latest version: 404 with the whole envelope
        no_content("v2 delete latest", "DELETE", f"{d}/a")
        r = tr.resp("v2 read deleted", t.http("GET", f"{d}/a"))
        check_headers(r)
        assert r.status == 404, r
        e = check_envelope(r)
        assert e["data"]["data"] is None, e
        md = e["data"]["metadata"]
        assert md["version"] == 4 and md["destroyed"] is False, md
        assert isinstance(md["deletion_time"], str) and md["deletion_time"].endswith("Z"), md

        no_content("v2 undelete", "PUT", f"/v1/{t.kv2}/undelete/{pfx}/a", {"versions": [4]})
        e = ok("v2 read undeleted", "GET", f"{d}/a")
        assert e["data"]["data"] == {"u": "4"}, e
        # versions as strings (the CLI) and as ints (hvac)
        no_content("v2 delete versions (strings)", "PUT", f"/v1/{t.kv2}/delete/{pfx}/a", {"versions": ["1"]})
        no_content("v2 destroy versions (ints)", "POST", f"/v1/{t.kv2}/destroy/{pfx}/a", {"versions": [2]})
        r = tr.resp("v2 read destroyed", t.http("GET", f"{d}/a?version=2"))
        assert r.status == 404, r
        e = check_envelope(r)
        assert e["data"]["data"] is None and e["data"]["metadata"]["destroyed"] is True, e
        r = tr.resp("v2 read deleted v1", t.http("GET", f"{d}/a?version=1"))
        assert r.status == 404, r
        e = check_envelope(r)
        assert e["data"]["data"] is None and e["data"]["metadata"]["deletion_time"] != "", e

        no_content("v2 metadata write", "POST", f"{m}/a", {"max_versions": 7, "custom_metadata": {"o": "a"}})
        e = ok("v2 metadata after write", "GET", f"{m}/a")
        assert e["data"]["max_versions"] == 7 and e["data"]["custom_metadata"] == {"o": "a"}, e
        no_content("v2 delete missing", "DELETE", f"{d}/nope")
        no_content("v2 metadata delete", "DELETE", f"{m}/a")
        r = tr.resp("v2 read after metadata delete", t.http("GET", f"{d}/a"))
        assert r.status == 404 and r.json() == {"errors": []}, r

        # --- KV v1 ----------------------------------------------------------------------------
        no_content("v1 write", "PUT", f"{k1}/a", {"foo": "bar", "n": 1, "nested": {"x": [1, 2]}})
        no_content("v1 write (POST)", "POST", f"{k1}/b", {"x": "y"})
        no_content("v1 write no content-type", "PUT", f"{k1}/c", raw=b'{"c":"d"}')
        e = ok("v1 read", "GET", f"{k1}/a")
        assert e["data"] == {"foo": "bar", "n": 1, "nested": {"x": [1, 2]}}, e
        assert e["lease_duration"] > 0, e
        for name, method, path in (("v1 LIST", "LIST", k1), ("v1 ?list=true", "GET", k1 + "?list=true"),
                                   ("v1 /?list=true", "GET", k1 + "/?list=true")):
            e = ok(name, method, path)
            assert sorted(e["data"]["keys"]) == ["a", "b", "c"], (name, e)
        r = tr.resp("v1 read missing", t.http("GET", f"{k1}/nope"))
        check_headers(r)
        assert r.status == 404 and r.json() == {"errors": []}, r
        no_content("v1 delete", "DELETE", f"{k1}/a")
        no_content("v1 delete missing", "DELETE", f"{k1}/a")
        r = tr.resp("v1 read deleted", t.http("GET", f"{k1}/a"))
        assert r.status == 404 and r.json() == {"errors": []}, r
        r = tr.resp("v1 list missing", t.http("LIST", f"{k1}/nope"))
        assert r.status == 404 and r.json() == {"errors": []}, r
        return tr

    compared(target, "envelope", scenario)


def test_sys_endpoints_raw(target, compared):
    """The sys endpoints the CLI and hvac hit around KV calls (raw JSON, no envelope)."""

    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t)
        r = t.http("HEAD", "/v1/sys/health", token=None)
        assert r.status == 200 and r.body == b"", r
        r = t.http("GET", "/v1/sys/seal-status", token=None)
        assert r.status == 200 and r.content_type == "application/json", r
        s = r.json()
        assert s["sealed"] is False and s["initialized"] is True and isinstance(s["version"], str), s
        r = t.http("GET", "/v1/sys/leader", token=None)
        assert r.status == 200 and r.json()["ha_enabled"] is False, r

        # KV preflight: the CLI needs data.path (with a trailing /) and options.version as a string
        for mount, version in ((t.kv2, "2"), (t.kv1, "1")):
            r = tr.resp(f"preflight {mount}", t.http("GET", f"/v1/sys/internal/ui/mounts/{mount}/some/key"),
                        ignore=("$.data",))
            assert r.status == 200, r
            e = check_envelope(r)
            assert e["data"]["path"] == f"{mount}/", e
            assert e["data"]["type"] == "kv" and e["data"]["options"]["version"] == version, e
        r = tr.resp("preflight no token", t.http("GET", f"/v1/sys/internal/ui/mounts/{t.kv2}/x", token=None))
        assert r.status == 403 and r.json() == {"errors": ["permission denied"]}, r
        r = tr.resp("preflight unknown mount",
                    t.http("GET", "/v1/sys/internal/ui/mounts/nomount/x"), ignore=("$.errors[]",))
        assert r.status == 403 and "preflight capability check returned 403" in r.json()["errors"][0], r
        return tr

    compared(target, "sys-raw", scenario)
