"""The bao CLI against both targets: status, login, token lookup and the `kv` commands on the
KV v2 mount secret/ and the KV v1 mount kv1/.

JSON output (-format=json) is compared by shape with bao's; table output by exit code and the
presence of key field names.  Values we control (secret data, version numbers) are asserted on
both targets.
"""

from __future__ import annotations

import os
import stat

import vaultlib as V

STATUS_FIELDS = {"Seal", "Initialized", "Sealed", "Total", "Threshold", "Version", "Storage", "HA"}
LOOKUP_FIELDS = {"accessor", "creation_time", "creation_ttl", "display_name", "expire_time",
                 "explicit_max_ttl", "id", "policies", "renewable", "ttl", "type"}
LOGIN_FIELDS = {"token", "token_accessor", "token_duration", "token_renewable", "token_policies",
                "policies"}
KV2_META_FIELDS = {"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}
KV2_METADATA_FIELDS = {"cas_required", "created_time", "current_version", "custom_metadata",
                       "delete_version_after", "max_versions", "oldest_version", "updated_time"}

# A token lookup legitimately differs in what is null (root: no expiry, no meta).
TOKEN_NULLABLE = ("$.data.expire_time", "$.data.meta", "$.auth.metadata", "$.auth.identity_policies")


def missing(fields: set[str], text: str) -> set[str]:
    return fields - V.table_keys(text)


# ------------------------------------------------------------------------------------------
# status, login, token lookup
# ------------------------------------------------------------------------------------------

def test_status(target, compared):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t)
        r = tr.cli("status -format=json", t.bao("status", "-format=json"))
        assert r.rc == 0, r
        out = r.json()
        assert out["initialized"] is True and out["sealed"] is False, out
        r = tr.cli("status", t.bao("status"))
        assert r.rc == 0, r
        assert not missing(STATUS_FIELDS, r.stdout), (missing(STATUS_FIELDS, r.stdout), r)
        # status needs no token at all
        r = tr.cli("status (no token)", t.bao("status", "-format=json", token=None))
        assert r.rc == 0, r
        return tr

    compared(target, "status", scenario)


def test_login_and_token_lookup(target, compared):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {t.token: "TOKEN"})
        home = t.new_home()
        # login with no token in the environment: it does a lookup-self and writes ~/.vault-token
        r = tr.cli("login", t.bao("login", t.token, token=None, home=home))
        assert r.rc == 0, r
        assert not missing(LOGIN_FIELDS, r.stdout), (missing(LOGIN_FIELDS, r.stdout), r)
        helper = home / ".vault-token"
        assert helper.read_text().strip() == t.token
        assert stat.S_IMODE(os.stat(helper).st_mode) & 0o077 == 0, oct(os.stat(helper).st_mode)

        # token lookup now uses the token helper file (no VAULT_TOKEN)
        r = tr.cli("token lookup -format=json", t.bao("token", "lookup", "-format=json", token=None, home=home),
                   nullable=TOKEN_NULLABLE)
        assert r.rc == 0, r
        data = r.json()["data"]
        assert data["id"] == t.token, data
        assert isinstance(data["policies"], list) and data["policies"], data
        r = tr.cli("token lookup", t.bao("token", "lookup", token=None, home=home))
        assert r.rc == 0, r
        assert not missing(LOOKUP_FIELDS, r.stdout), (missing(LOOKUP_FIELDS, r.stdout), r)

        r = tr.cli("login -format=json", t.bao("login", "-format=json", t.token, token=None,
                                               home=t.new_home()), nullable=TOKEN_NULLABLE)
        assert r.rc == 0, r
        assert r.json()["auth"]["client_token"] == t.token

        # a bogus token: login fails (403 from lookup-self), nothing is written
        home2 = t.new_home()
        r = tr.cli("login bogus", t.bao("login", "bogus-token", token=None, home=home2))
        assert r.rc == 2, r
        assert "403" in r.stderr and "permission denied" in r.stderr, r
        assert not (home2 / ".vault-token").exists()
        # no token at all
        r = tr.cli("token lookup (no token)", t.bao("token", "lookup", token=None, home=home2))
        assert r.rc == 2, r
        assert "403" in r.stderr and "permission denied" in r.stderr, r
        return tr

    compared(target, "login", scenario)


# ------------------------------------------------------------------------------------------
# KV v2 on secret/
# ------------------------------------------------------------------------------------------

def test_kv2_cli(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        base = f"{t.kv2}/{pfx}"
        kv = lambda name, *a, **kw: tr.cli(name, t.bao("kv", *a), **kw)  # noqa: E731

        r = kv("put v1", "put", "-format=json", f"{base}/a", "k=v1")
        assert r.rc == 0, r
        assert r.json()["data"]["version"] == 1
        r = kv("put v2", "put", "-format=json", f"{base}/a", "k=v2", "z=1")
        assert r.rc == 0, r
        assert r.json()["data"]["version"] == 2
        r = kv("put table", "put", f"{base}/sub/b", "x=y")
        assert r.rc == 0, r
        assert not missing(KV2_META_FIELDS, r.stdout), r

        r = kv("get", "get", "-format=json", f"{base}/a")
        assert r.rc == 0, r
        d = r.json()["data"]
        assert d["data"] == {"k": "v2", "z": "1"} and d["metadata"]["version"] == 2, d
        r = kv("get -version=1", "get", "-format=json", "-version=1", f"{base}/a")
        assert r.rc == 0, r
        d = r.json()["data"]
        assert d["data"] == {"k": "v1"} and d["metadata"]["version"] == 1, d
        r = kv("get table", "get", f"{base}/a")
        assert r.rc == 0, r
        assert not missing(KV2_META_FIELDS | {"k", "z"}, r.stdout), r
        r = kv("get -field", "get", "-field=k", f"{base}/a")
        assert r.rc == 0 and r.stdout.strip() == "v2", r

        r = kv("list prefix", "list", "-format=json", base)
        assert r.rc == 0, r
        assert sorted(r.json()) == ["a", "sub/"], r
        r = kv("list prefix/", "list", "-format=json", f"{base}/")
        assert r.rc == 0 and sorted(r.json()) == ["a", "sub/"], r
        r = kv("list mount", "list", "-format=json", f"{t.kv2}/")
        assert r.rc == 0 and f"{pfx}/" in r.json(), r
        r = kv("list table", "list", base)
        assert r.rc == 0 and "Keys" in r.stdout, r
        r = kv("list missing", "list", "-format=json", f"{base}/nothing")
        assert r.rc == 2, r

        r = kv("metadata get", "metadata", "get", "-format=json", f"{base}/a")
        assert r.rc == 0, r
        m = r.json()["data"]
        assert m["current_version"] == 2 and sorted(m["versions"]) == ["1", "2"], m
        r = kv("metadata get table", "metadata", "get", f"{base}/a")
        assert r.rc == 0, r
        assert not missing(KV2_METADATA_FIELDS, r.stdout), r

        r = kv("patch", "patch", "-format=json", f"{base}/a", "k=p")
        assert r.rc == 0, r
        assert r.json()["data"]["version"] == 3
        r = kv("get after patch", "get", "-format=json", f"{base}/a")
        assert r.rc == 0 and r.json()["data"]["data"] == {"k": "p", "z": "1"}, r

        # delete the latest version: the read is a 404 with metadata, which the CLI prints (rc 0)
        r = kv("delete", "delete", f"{base}/a")
        assert r.rc == 0, r
        r = kv("get deleted", "get", "-format=json", f"{base}/a")
        assert r.rc == 0, r
        d = r.json()["data"]
        assert d["data"] is None and d["metadata"]["deletion_time"] != "", d
        assert d["metadata"]["destroyed"] is False and d["metadata"]["version"] == 3, d

        r = kv("undelete", "undelete", "-versions=3", f"{base}/a")
        assert r.rc == 0, r
        r = kv("get undeleted", "get", "-format=json", f"{base}/a")
        assert r.rc == 0, r
        d = r.json()["data"]
        assert d["data"] == {"k": "p", "z": "1"} and d["metadata"]["deletion_time"] == "", d

        r = kv("delete -versions=2", "delete", "-versions=2", f"{base}/a")
        assert r.rc == 0, r
        r = kv("get -version=2 deleted", "get", "-format=json", "-version=2", f"{base}/a")
        assert r.rc == 0 and r.json()["data"]["data"] is None, r

        r = kv("destroy", "destroy", "-versions=1", f"{base}/a")
        assert r.rc == 0, r
        r = kv("get destroyed", "get", "-format=json", "-version=1", f"{base}/a")
        assert r.rc == 0, r
        d = r.json()["data"]
        assert d["data"] is None and d["metadata"]["destroyed"] is True, d

        r = kv("metadata after", "metadata", "get", "-format=json", f"{base}/a")
        assert r.rc == 0, r
        v = r.json()["data"]["versions"]
        assert sorted(v) == ["1", "2", "3"], v
        assert v["1"]["destroyed"] is True and v["2"]["deletion_time"] != "", v
        assert v["3"]["deletion_time"] == "" and v["3"]["destroyed"] is False, v

        r = kv("get missing", "get", "-format=json", f"{base}/missing", compare_err=True)
        assert r.rc == 2, r
        assert "No value found at" in r.stderr, r
        r = kv("get missing version", "get", "-format=json", "-version=99", f"{base}/a")
        assert r.rc == 2, r

        r = kv("metadata delete", "metadata", "delete", f"{base}/sub/b")
        assert r.rc == 0, r
        r = kv("get after metadata delete", "get", "-format=json", f"{base}/sub/b", compare_err=True)
        assert r.rc == 2, r
        return tr

    compared(target, "kv2", scenario)


# ------------------------------------------------------------------------------------------
# KV v1 on kv1/
# ------------------------------------------------------------------------------------------

def test_kv1_cli(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        base = f"{t.kv1}/{pfx}"
        kv = lambda name, *a, **kw: tr.cli(name, t.bao("kv", *a), **kw)  # noqa: E731

        r = kv("put", "put", "-format=json", f"{base}/a", "k=v1")
        assert r.rc == 0 and r.stdout.strip() == "", r     # 204: nothing to print
        r = kv("put again", "put", f"{base}/a", "k=v2", "z=1")
        assert r.rc == 0 and "Success" in r.stdout, r
        r = kv("put sub", "put", f"{base}/sub/b", "x=y")
        assert r.rc == 0, r

        r = kv("get", "get", "-format=json", f"{base}/a")
        assert r.rc == 0, r
        out = r.json()
        assert out["data"] == {"k": "v2", "z": "1"}, out
        assert isinstance(out["lease_duration"], int) and out["lease_duration"] > 0, out
        r = kv("get -version ignored", "get", "-format=json", "-version=1", f"{base}/a")
        assert r.rc == 0 and r.json()["data"] == {"k": "v2", "z": "1"}, r
        r = kv("get table", "get", f"{base}/a")
        assert r.rc == 0 and not missing({"k", "z"}, r.stdout), r
        r = kv("get -field", "get", "-field=z", f"{base}/a")
        assert r.rc == 0 and r.stdout.strip() == "1", r

        r = kv("list", "list", "-format=json", base)
        assert r.rc == 0 and sorted(r.json()) == ["a", "sub/"], r
        r = kv("list mount", "list", "-format=json", f"{t.kv1}/")
        assert r.rc == 0 and f"{pfx}/" in r.json(), r
        r = kv("list missing", "list", "-format=json", f"{base}/nothing")
        assert r.rc == 2, r

        # commands that only exist for KV v2 fail in the client, identically on both targets
        r = kv("metadata get", "metadata", "get", f"{base}/a", compare_err=True)
        assert r.rc == 1 and "not supported on KV Version 1" in r.stderr, r
        r = kv("patch", "patch", f"{base}/a", "k=p", compare_err=True)
        assert r.rc == 2 and "must be version 2" in r.stderr, r
        r = kv("undelete", "undelete", "-versions=1", f"{base}/a", compare_err=True)
        assert r.rc == 1 and "not supported on KV Version 1" in r.stderr, r
        r = kv("destroy", "destroy", "-versions=1", f"{base}/a", compare_err=True)
        assert r.rc == 1 and "not supported on KV Version 1" in r.stderr, r
        r = kv("get after failures", "get", "-format=json", f"{base}/a")
        assert r.rc == 0 and r.json()["data"] == {"k": "v2", "z": "1"}, r

        r = kv("delete", "delete", f"{base}/a")
        assert r.rc == 0 and "Success" in r.stdout, r
        r = kv("get deleted", "get", "-format=json", f"{base}/a", compare_err=True)
        assert r.rc == 2 and "No value found at" in r.stderr, r
        r = kv("delete missing", "delete", f"{base}/a")
        assert r.rc == 0, r
        r = kv("list after delete", "list", "-format=json", base)
        assert r.rc == 0 and r.json() == ["sub/"], r
        return tr

    compared(target, "kv1", scenario)
