"""KV v2 edge cases side by side with OpenBao: patch of a secret that does not exist, delete,
undelete and destroy of versions that do not exist, cas_required on the mount and per secret,
max_versions 0 (the mount's default), and the metadata of a secret after each."""

from __future__ import annotations

import vaultlib as V

MD_IGNORE = ("$.data.created_time", "$.data.updated_time", "$.data.versions.*")


def test_kv2_edge_cases(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        d, m = f"/v1/{t.kv2}/data/{pfx}", f"/v1/{t.kv2}/metadata/{pfx}"
        # Deliberate difference: OpenBao's 404 here has an empty body; every Tessera error is JSON.
        r = t.http("PATCH", f"{d}/none", {"data": {"a": "1"}}, headers={"Content-Type": "application/merge-patch+json"})
        tr.add("patch missing", r.status, None)
        assert r.status == 404, r
        for verb in ("delete", "undelete", "destroy"):
            r = tr.resp(f"{verb} versions of a missing secret", t.http("POST", f"/v1/{t.kv2}/{verb}/{pfx}/none", {"versions": [1]}))
            assert r.status in (204, 404), r
        assert t.http("POST", f"{d}/a", {"data": {"x": "1"}}).status == 200
        for verb in ("delete", "undelete", "destroy"):
            r = tr.resp(f"{verb} a version that does not exist", t.http("POST", f"/v1/{t.kv2}/{verb}/{pfx}/a", {"versions": [7]}))
            assert r.status in (204, 400, 404), r
        r = tr.resp("metadata after", t.http("GET", f"{m}/a"), ignore=MD_IGNORE)
        assert r.json()["data"]["current_version"] == 1, r
        r = tr.resp("read v1 still", t.http("GET", f"{d}/a"), ignore=("$.data.metadata.created_time",))
        assert r.json()["data"]["data"] == {"x": "1"}, r

        # cas_required per secret
        r = tr.resp("set cas_required", t.http("POST", f"{m}/c", {"cas_required": True, "max_versions": 0}))
        assert r.status == 204, r
        r = tr.resp("write without cas", t.http("POST", f"{d}/c", {"data": {"x": "1"}}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("write with cas 0", t.http("POST", f"{d}/c", {"data": {"x": "1"}, "options": {"cas": 0}}))
        assert r.status == 200, r
        r = tr.resp("write with a stale cas", t.http("POST", f"{d}/c", {"data": {"x": "2"}, "options": {"cas": 0}}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("metadata of c", t.http("GET", f"{m}/c"), ignore=MD_IGNORE)
        assert r.json()["data"]["cas_required"] is True, r
        return tr

    compared(target, "kv2-edges", scenario)


def test_kv2_mount_config(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        mount = f"{pfx}kv"
        r = tr.resp("enable kv-v2", t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}))
        assert r.status == 204, r
        r = tr.resp("config cas_required", t.http("POST", f"/v1/{mount}/config", {"cas_required": True, "max_versions": 0}))
        assert r.status == 204, r
        r = tr.resp("read config", t.http("GET", f"/v1/{mount}/config"))
        assert r.json()["data"]["cas_required"] is True, r
        r = tr.resp("write without cas", t.http("POST", f"/v1/{mount}/data/a", {"data": {"x": "1"}}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("write with cas", t.http("POST", f"/v1/{mount}/data/a", {"data": {"x": "1"}, "options": {"cas": 0}}))
        assert r.status == 200, r
        r = tr.resp("per-secret false does not lift the mount's", t.http("POST", f"/v1/{mount}/metadata/a", {"cas_required": False}))
        assert r.status == 200 and "mandated by backend config" in r.json()["warnings"][0], r
        r = tr.resp("still needs cas", t.http("POST", f"/v1/{mount}/data/a", {"data": {"x": "2"}}), compare_err=True)
        assert r.status == 400, r
        assert t.http("POST", f"/v1/{mount}/data/sub/b", {"data": {"y": "1"}, "options": {"cas": 0}}).status == 200
        r = tr.resp("disable", t.http("DELETE", f"/v1/sys/mounts/{mount}"))
        assert r.status == 204, r
        # A mount owns its data: enabled again, it is empty.
        assert t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}).status == 204
        r = tr.resp("re-enabled: gone", t.http("GET", f"/v1/{mount}/data/a"))
        assert r.status == 404, r
        r = tr.resp("re-enabled: nothing listed", t.http("LIST", f"/v1/{mount}/metadata"))
        assert r.status == 404, r
        assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204
        return tr

    compared(target, "kv2-mount-config", scenario)


def test_mount_read_and_tune(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        mount = f"{pfx}tn"
        assert t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}, "description": "d1"}).status == 204
        r = tr.resp("read mount", t.http("GET", f"/v1/sys/mounts/{mount}"), ignore=("$.uuid", "$.data.uuid", "$.accessor", "$.data.accessor",
                                                                                    "$.running_plugin_version", "$.data.running_plugin_version"))
        assert r.json()["data"]["type"] == "kv" and r.json()["data"]["description"] == "d1", r
        r = tr.resp("read tune", t.http("GET", f"/v1/sys/mounts/{mount}/tune"))
        assert r.json()["data"]["default_lease_ttl"] == 2764800 and r.json()["data"]["options"] == {"version": "2"}, r
        r = tr.cli("secrets tune", t.bao("secrets", "tune", "-default-lease-ttl=1h", "-max-lease-ttl=2h", "-description=d2", f"{mount}/"))
        assert r.rc == 0, r
        r = tr.resp("tuned", t.http("GET", f"/v1/sys/mounts/{mount}/tune"))
        d = r.json()["data"]
        assert d["default_lease_ttl"] == 3600 and d["max_lease_ttl"] == 7200 and d["description"] == "d2", d
        r = t.http("GET", "/v1/sys/mounts")   # (OpenBao also lists sys/, identity/ and cubbyhole/)
        assert r.json()["data"][f"{mount}/"]["config"]["default_lease_ttl"] == 3600, r
        hv = V.hvac_call(tr, "hvac read_mount_configuration", lambda: t.hvac().sys.read_mount_configuration(path=mount))
        assert hv["data"]["max_lease_ttl"] == 7200, hv
        r = tr.resp("tune unknown", t.http("POST", f"/v1/sys/mounts/{pfx}none/tune", {}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("read tune unknown", t.http("GET", f"/v1/sys/mounts/{pfx}none/tune"), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("enable an unknown engine", t.http("POST", f"/v1/sys/mounts/{pfx}bogus", {"type": "bogus"}), compare_err=True)
        assert r.status == 400 and r.json() == {"errors": ["plugin not found in the catalog: bogus"]}, r
        assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204
        return tr

    compared(target, "mount-tune", scenario)


def test_kv2_subkeys(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        d, s = f"/v1/{t.kv2}/data/{pfx}", f"/v1/{t.kv2}/subkeys/{pfx}"
        value = {"a": "1", "b": {"c": {"d": "x"}, "e": [1, 2]}, "f": None}
        assert t.http("POST", f"{d}/sk", {"data": value}).status == 200
        assert t.http("POST", f"{d}/sk", {"data": {"only": "v2"}}).status == 200
        ign = ("$.data.metadata.created_time",)
        r = tr.resp("subkeys", t.http("GET", f"{s}/sk?version=1"), ignore=ign)
        assert r.json()["data"]["subkeys"] == {"a": None, "b": {"c": {"d": None}, "e": None}, "f": None}, r
        r = tr.resp("subkeys depth=1", t.http("GET", f"{s}/sk?version=1&depth=1"), ignore=ign)
        assert r.json()["data"]["subkeys"] == {"a": None, "b": None, "f": None}, r
        r = tr.resp("subkeys depth=2", t.http("GET", f"{s}/sk?version=1&depth=2"), ignore=ign)
        assert r.json()["data"]["subkeys"] == {"a": None, "b": {"c": None, "e": None}, "f": None}, r
        r = tr.resp("subkeys of the latest", t.http("GET", f"{s}/sk"), ignore=ign)
        assert r.json()["data"]["subkeys"] == {"only": None} and r.json()["data"]["metadata"]["version"] == 2, r
        r = tr.resp("subkeys of a missing secret", t.http("GET", f"{s}/none"))
        assert r.status == 404, r
        r = tr.resp("subkeys of a missing version", t.http("GET", f"{s}/sk?version=9"))
        assert r.status == 404, r
        r = tr.resp("bad depth", t.http("GET", f"{s}/sk?depth=abc"))
        assert r.status == 400, r
        assert t.http("DELETE", f"{d}/sk").status == 204
        r = tr.resp("subkeys of a deleted version", t.http("GET", f"{s}/sk"), ignore=ign + ("$.data.metadata.deletion_time",))
        assert r.status == 404 and r.json()["data"]["subkeys"] is None, r
        return tr

    compared(target, "kv2-subkeys", scenario)
