"""KV v2 metadata details, side by side with OpenBao: `custom_metadata` is read weakly (numbers
and booleans become text) and validated with Vault's limits and exact error texts, and
`oldest_version` is 0 until versions were pruned by `max_versions`, and a version past the
secret's `delete_version_after` reads as deleted (its deletion_time shown from the start).

Deliberate difference: Tessera applies `delete_version_after` when a version is read, so changing
it changes the deletion time of versions already written; Vault fixes it when a version is
written."""

from __future__ import annotations

import time

import vaultlib as V

CASES = [
    ("number and bool become text", {"n": 1, "f": 1.5, "t": True, "z": False}, 204, None),
    ("empty value", {"k": ""}, 400,
     '1 error occurred:\n\t* custom_metadata validation failed: length of value for key "k" is 0 but must be 0 < len(value) <= 512\n\n'),
    ("null value", {"k": None}, 400,
     '1 error occurred:\n\t* custom_metadata validation failed: length of value for key "k" is 0 but must be 0 < len(value) <= 512\n\n'),
    ("long key and value", {"k" * 130: "v" * 600}, 400,
     "2 errors occurred:\n\t* custom_metadata validation failed: length of key \"" + "k" * 130 + "\" is 130 but must be 0 < len(key) <= 128\n"
     "\t* custom_metadata validation failed: length of value for key \"" + "k" * 130 + "\" is 600 but must be 0 < len(value) <= 512\n\n"),
    ("too many keys", {f"k{i}": "v" for i in range(65)}, 400,
     "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most 64 keys, provided 65\n\n"),
    ("unprintable key", {"a\u0001": "v"}, 400,
     '1 error occurred:\n\t* custom_metadata validation failed: key "a\\x01" (a\u0001) contains unprintable characters\n\n'),
    ("unprintable value", {"a": "v\u0001"}, 400,
     '1 error occurred:\n\t* custom_metadata validation failed: value for key "a" contains unprintable characters\n\n'),
    ("a list", {"k": [1]}, 400, "custom_metadata validation failed: '' expected type 'string', got unconvertible type '[]interface {}'"),
    ("a map", {"k": {"x": 1}}, 400,
     "custom_metadata validation failed: '' expected type 'string', got unconvertible type 'map[string]interface {}'"),
    ("not a map", "x", 400,
     "error converting input for field \"custom_metadata\": '' expected type 'map[string]interface {}', got unconvertible type 'string'"),
]


def test_custom_metadata_validation(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        m = f"/v1/{t.kv2}/metadata/{pfx}"
        for name, custom, status, error in CASES:
            r = tr.resp(name, t.http("POST", f"{m}/c", {"custom_metadata": custom}))
            assert r.status == status, (name, r)
            if error is not None:
                assert r.json() == {"errors": [error]}, (name, r.json())
        r = tr.resp("read back", t.http("GET", f"{m}/c"))
        assert r.json()["data"]["custom_metadata"] == {"n": "1", "f": "1.5", "t": "1", "z": "0"}, r
        return tr

    compared(target, "kv-custom-metadata", scenario)


def test_oldest_version_is_zero_until_versions_are_pruned(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        d, m = f"/v1/{t.kv2}/data/{pfx}", f"/v1/{t.kv2}/metadata/{pfx}"
        for i in (1, 2):
            assert t.http("POST", f"{d}/q", {"data": {"x": str(i)}}).status == 200
        md = tr.resp("two versions", t.http("GET", f"{m}/q")).json()["data"]
        assert md["oldest_version"] == 0 and md["current_version"] == 2, md
        assert t.http("POST", f"{m}/p", {"max_versions": 2}).status == 204
        for i in range(1, 5):
            assert t.http("POST", f"{d}/p", {"data": {"x": str(i)}}).status == 200
        md = tr.resp("pruned", t.http("GET", f"{m}/p")).json()["data"]
        assert md["oldest_version"] == 3 and sorted(md["versions"]) == ["3", "4"], md
        return tr

    compared(target, "kv-oldest-version", scenario)


def test_delete_version_after_on_reads(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        d, m = f"/v1/{t.kv2}/data/{pfx}", f"/v1/{t.kv2}/metadata/{pfx}"
        r = tr.cli("metadata put -delete-version-after", t.bao("kv", "metadata", "put", "-delete-version-after=2s", f"{t.kv2}/{pfx}/dva"))
        assert r.rc == 0, r
        assert t.http("POST", f"{d}/dva", {"data": {"x": "1"}}).status == 200
        r = tr.resp("read before expiry", t.http("GET", f"{d}/dva"))
        assert r.status == 200 and r.json()["data"]["data"] == {"x": "1"}, r
        assert r.json()["data"]["metadata"]["deletion_time"] != "", r
        time.sleep(2.5)
        r = tr.resp("read after expiry", t.http("GET", f"{d}/dva"))
        assert r.status == 404 and r.json()["data"]["data"] is None, r
        assert r.json()["data"]["metadata"]["deletion_time"] != "", r
        r = tr.resp("read the version after expiry", t.http("GET", f"{d}/dva?version=1"))
        assert r.status == 404, r
        r = tr.cli("kv get after expiry", t.bao("kv", "get", "-format=json", f"{t.kv2}/{pfx}/dva"))
        r = tr.resp("metadata after expiry", t.http("GET", f"{m}/dva"))
        assert r.json()["data"]["versions"]["1"]["deletion_time"] != "", r
        r = tr.resp("patch after expiry", t.http("PATCH", f"{d}/dva", {"data": {"y": "2"}},
                                                   headers={"Content-Type": "application/merge-patch+json"}))
        assert r.status == 404, r
        r = tr.cli("still listed", t.bao("kv", "list", "-format=json", f"{t.kv2}/{pfx}"))
        assert "dva" in r.json(), r
        # A new version is readable again until it expires in turn.
        assert t.http("POST", f"{d}/dva", {"data": {"x": "2"}}).status == 200
        r = tr.resp("new version", t.http("GET", f"{d}/dva"))
        assert r.status == 200 and r.json()["data"]["data"] == {"x": "2"}, r
        return tr

    compared(target, "kv-delete-version-after", scenario)


def test_metadata_version_and_max_versions_as_written(target, compared, pfx):
    """`current_metadata_version` counts metadata writes (data writes do not), and `max_versions`
    reads back as written: 0 when unset or set to 0 (hvac's update_metadata test)."""
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        d, m = f"/v1/{t.kv2}/data/{pfx}", f"/v1/{t.kv2}/metadata/{pfx}"
        assert t.http("POST", f"{d}/mv", {"data": {"a": "1"}}).status == 200
        md = tr.resp("after a data write", t.http("GET", f"{m}/mv")).json()["data"]
        assert md["current_metadata_version"] == 0 and md["max_versions"] == 0, md
        assert t.http("POST", f"{m}/mv", {"max_versions": 0}).status == 204
        md = tr.resp("max_versions 0", t.http("GET", f"{m}/mv")).json()["data"]
        assert md["current_metadata_version"] == 1 and md["max_versions"] == 0, md
        assert t.http("POST", f"{m}/mv", {"max_versions": 3}).status == 204
        assert t.http("POST", f"{m}/mv", {"custom_metadata": {"a": "b"}}).status == 204
        assert t.http("POST", f"{d}/mv", {"data": {"a": "2"}}).status == 200
        md = tr.resp("after more writes", t.http("GET", f"{m}/mv")).json()["data"]
        assert md["current_metadata_version"] == 3 and md["max_versions"] == 3, md
        assert t.http("POST", f"{m}/fresh", {"max_versions": 5}).status == 204
        md = tr.resp("created by metadata", t.http("GET", f"{m}/fresh")).json()["data"]
        assert md["current_metadata_version"] == 1 and md["max_versions"] == 5, md
        return tr

    compared(target, "kv-metadata-counters", scenario)
