"""hvac 2.4.0 against both targets: KV v2, KV v1 and sys health/seal calls.

Every call's outcome ('ok' + the parsed dict, 'response:<status>' for the raw 204/HEAD
responses hvac hands back, or 'raise:<exception>') is compared with bao's, dicts by shape.
"""

from __future__ import annotations

import hvac.exceptions as HE
import pytest

import vaultlib as V

# hvac's own v2.patch() reads without raise_on_deleted_version and warns about it
pytestmark = pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter:DeprecationWarning")


def test_hvac_kv2(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        kv = c.secrets.kv.v2
        mp = t.kv2
        call = lambda name, fn, **kw: V.hvac_call(tr, name, fn, **kw)  # noqa: E731
        a = f"{pfx}/a"

        assert call("is_authenticated", c.is_authenticated) is True
        r = call("create v1", lambda: kv.create_or_update_secret(path=a, secret={"k": "v1"}, mount_point=mp))
        assert r["data"]["version"] == 1, r
        r = call("create v2", lambda: kv.create_or_update_secret(path=a, secret={"k": "v2", "n": 2}, mount_point=mp))
        assert r["data"]["version"] == 2, r
        call("create sub", lambda: kv.create_or_update_secret(path=f"{pfx}/sub/b", secret={"x": "y"}, mount_point=mp))
        r = call("cas mismatch", lambda: kv.create_or_update_secret(path=a, secret={"k": "no"}, cas=1, mount_point=mp))
        assert isinstance(r, HE.InvalidRequest), r

        r = call("read", lambda: kv.read_secret_version(path=a, mount_point=mp, raise_on_deleted_version=True))
        assert r["data"]["data"] == {"k": "v2", "n": 2} and r["data"]["metadata"]["version"] == 2, r
        r = call("read version=1", lambda: kv.read_secret_version(path=a, version=1, mount_point=mp,
                                                                 raise_on_deleted_version=True))
        assert r["data"]["data"] == {"k": "v1"} and r["data"]["metadata"]["version"] == 1, r

        r = call("patch", lambda: kv.patch(path=a, secret={"p": True}, mount_point=mp))
        assert r["data"]["version"] == 3, r
        r = call("read patched", lambda: kv.read_secret_version(path=a, mount_point=mp, raise_on_deleted_version=True))
        assert r["data"]["data"] == {"k": "v2", "n": 2, "p": True}, r

        r = call("list", lambda: kv.list_secrets(path=pfx, mount_point=mp))
        assert sorted(r["data"]["keys"]) == ["a", "sub/"], r
        r = call("list mount", lambda: kv.list_secrets(path="", mount_point=mp))
        assert f"{pfx}/" in r["data"]["keys"], r
        r = call("list missing", lambda: kv.list_secrets(path=f"{pfx}/nothing", mount_point=mp))
        assert isinstance(r, HE.InvalidPath), r

        r = call("delete latest", lambda: kv.delete_latest_version_of_secret(path=a, mount_point=mp))
        assert r.status_code == 204, r
        r = call("read deleted", lambda: kv.read_secret_version(path=a, mount_point=mp, raise_on_deleted_version=False))
        assert r["data"]["data"] is None and r["data"]["metadata"]["deletion_time"] != "", r
        r = call("read deleted (raise)", lambda: kv.read_secret_version(path=a, mount_point=mp,
                                                                       raise_on_deleted_version=True))
        assert isinstance(r, HE.InvalidPath), r
        r = call("undelete", lambda: kv.undelete_secret_versions(path=a, versions=[3], mount_point=mp))
        assert r.status_code == 204, r
        r = call("read undeleted", lambda: kv.read_secret_version(path=a, mount_point=mp, raise_on_deleted_version=True))
        assert r["data"]["metadata"]["version"] == 3 and r["data"]["data"]["p"] is True, r

        r = call("delete versions", lambda: kv.delete_secret_versions(path=a, versions=[1], mount_point=mp))
        assert r.status_code == 204, r
        r = call("read deleted v1", lambda: kv.read_secret_version(path=a, version=1, mount_point=mp,
                                                                  raise_on_deleted_version=False))
        assert r["data"]["data"] is None and r["data"]["metadata"]["destroyed"] is False, r
        r = call("destroy", lambda: kv.destroy_secret_versions(path=a, versions=[2], mount_point=mp))
        assert r.status_code == 204, r
        # hvac returns the 404 body only when deletion_time is set: a destroyed (never deleted)
        # version raises InvalidPath even with raise_on_deleted_version=False
        r = call("read destroyed v2", lambda: kv.read_secret_version(path=a, version=2, mount_point=mp,
                                                                    raise_on_deleted_version=False))
        assert isinstance(r, HE.InvalidPath), r
        assert r.json["data"]["data"] is None and r.json["data"]["metadata"]["destroyed"] is True, r.json

        r = call("read metadata", lambda: kv.read_secret_metadata(path=a, mount_point=mp))
        m = r["data"]
        assert m["current_version"] == 3 and sorted(m["versions"]) == ["1", "2", "3"], m
        assert m["versions"]["1"]["deletion_time"] != "" and m["versions"]["2"]["destroyed"] is True, m
        r = call("update metadata", lambda: kv.update_metadata(path=a, max_versions=5,
                                                               custom_metadata={"owner": "alice"}, mount_point=mp))
        assert r.status_code == 204, r
        r = call("read metadata 2", lambda: kv.read_secret_metadata(path=a, mount_point=mp))
        assert r["data"]["max_versions"] == 5 and r["data"]["custom_metadata"] == {"owner": "alice"}, r

        r = call("delete metadata", lambda: kv.delete_metadata_and_all_versions(path=a, mount_point=mp))
        assert r.status_code == 204, r
        r = call("read gone", lambda: kv.read_secret_version(path=a, mount_point=mp, raise_on_deleted_version=True))
        assert isinstance(r, HE.InvalidPath), r
        r = call("read metadata gone", lambda: kv.read_secret_metadata(path=a, mount_point=mp))
        assert isinstance(r, HE.InvalidPath), r
        r = call("list after", lambda: kv.list_secrets(path=pfx, mount_point=mp))
        assert r["data"]["keys"] == ["sub/"], r
        return tr

    compared(target, "hvac-kv2", scenario)


def test_hvac_kv1(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        kv = c.secrets.kv.v1
        mp = t.kv1
        call = lambda name, fn, **kw: V.hvac_call(tr, name, fn, **kw)  # noqa: E731
        a = f"{pfx}/a"

        # method=None: hvac reads first, gets 404, then POSTs
        r = call("create", lambda: kv.create_or_update_secret(path=a, secret={"k": "v1"}, mount_point=mp))
        assert r.status_code == 204, r
        # now the read succeeds, so hvac PUTs
        r = call("update", lambda: kv.create_or_update_secret(path=a, secret={"k": "v2", "n": 1}, mount_point=mp))
        assert r.status_code == 204, r
        call("create sub", lambda: kv.create_or_update_secret(path=f"{pfx}/sub/b", secret={"x": "y"}, mount_point=mp))
        r = call("read", lambda: kv.read_secret(path=a, mount_point=mp))
        assert r["data"] == {"k": "v2", "n": 1}, r
        assert isinstance(r["lease_duration"], int) and r["lease_duration"] > 0, r
        r = call("list", lambda: kv.list_secrets(path=pfx, mount_point=mp))
        assert sorted(r["data"]["keys"]) == ["a", "sub/"], r
        r = call("list missing", lambda: kv.list_secrets(path=f"{pfx}/nothing", mount_point=mp))
        assert isinstance(r, HE.InvalidPath), r
        r = call("delete", lambda: kv.delete_secret(path=a, mount_point=mp))
        assert r.status_code == 204, r
        r = call("read gone", lambda: kv.read_secret(path=a, mount_point=mp))
        assert isinstance(r, HE.InvalidPath), r
        r = call("generic read gone", lambda: c.read(f"{mp}/{a}"))
        assert r is None
        r = call("delete again", lambda: kv.delete_secret(path=a, mount_point=mp))
        assert r.status_code == 204, r
        return tr

    compared(target, "hvac-kv1", scenario)


def test_hvac_sys_and_auth(target, compared):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {t.token: "TOKEN"})
        c = t.hvac()
        call = lambda name, fn, **kw: V.hvac_call(tr, name, fn, **kw)  # noqa: E731

        # hvac's default is HEAD: 200 with an empty body
        r = call("read_health_status", c.sys.read_health_status)
        assert r.status_code == 200 and r.content == b"", r
        # GET: only the fields clients read are required (Vault and OpenBao differ on the rest)
        r = c.sys.read_health_status(method="GET")
        assert isinstance(r, dict), r
        for k, typ in (("initialized", bool), ("sealed", bool), ("standby", bool), ("version", str),
                       ("server_time_utc", int)):
            assert isinstance(r.get(k), typ), (k, r)
        assert r["initialized"] is True and r["sealed"] is False, r
        assert call("is_sealed", c.sys.is_sealed) is False
        assert call("is_authenticated", c.is_authenticated) is True

        r = call("lookup_self", c.auth.token.lookup_self,
                 nullable=("$.data.expire_time", "$.data.meta"))
        assert r["data"]["id"] == t.token, r

        bogus = t.hvac(token="bogus-token")
        assert call("bogus is_authenticated", bogus.is_authenticated) is False
        r = call("bogus read", lambda: bogus.secrets.kv.v2.read_secret_version(
            path="x", mount_point=t.kv2, raise_on_deleted_version=True), compare_err=True)
        assert isinstance(r, HE.Forbidden) and "permission denied" in str(r), r
        r = call("bogus kv1 read", lambda: bogus.secrets.kv.v1.read_secret(path="x", mount_point=t.kv1),
                 compare_err=True)
        assert isinstance(r, HE.Forbidden), r
        return tr

    compared(target, "hvac-sys", scenario)
