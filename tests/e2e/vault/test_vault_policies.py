"""ACL policies and tokens, side by side with OpenBao: `bao policy write|read|list|delete` and
the sys/policy and sys/policies/acl APIs (HCL and JSON, Vault's error texts), a token created
with `bao token create -policy=…` that can do exactly what the HCL says on KV v2 and KV v1 and
nothing else (deny beats a broader grant, `+` matches one segment), `sys/capabilities-self`,
children that die with their parent, accessors, and hvac's policy and token calls.

On Tessera a policy is an access role: the HCL is translated through the mount table into rules
and reads back as written. Deliberate differences are named where they are ignored:
- the default TTL of a created token is 30 days (OpenBao: 32);
- `modified` of a policy is its role's creation time."""

from __future__ import annotations

import json

import vaultlib as V

TOKEN_NULLABLE = ("$.data.expire_time", "$.data.meta", "$.auth.metadata")


def policy_text(pfx: str, kv2: str, kv1: str) -> str:
    return f"""
# app: its own subtree, read-only on KV v1, one locked secret
path "{kv2}/data/{pfx}/app/*" {{
  capabilities = ["create", "read", "update"]
}}
path "{kv2}/metadata/{pfx}/app/*" {{
  capabilities = ["list", "read"]
}}
path "{kv2}/data/{pfx}/app/locked" {{
  capabilities = ["deny"]
}}
path "{kv2}/data/{pfx}/+/shared" {{
  capabilities = ["read"]
}}
path "{kv1}/{pfx}/app/*" {{
  policy = "read"
}}
"""


def write_file(t: V.Target, name: str, text: str) -> str:
    p = t.new_home() / name
    p.write_text(text)
    return str(p)


def token_of(res: V.CLIResult) -> str:
    assert res.rc == 0, res
    return res.json()["auth"]["client_token"]


def test_policy_commands_and_api(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        name = f"{pfx}-app"
        tr = V.Transcript(t, {pfx: "PFX"})
        text = policy_text(pfx, t.kv2, t.kv1)
        r = tr.cli("policy write (upper case)", t.bao("policy", "write", name.upper(), write_file(t, "app.hcl", text)))
        assert r.rc == 0, r
        assert f'converted from "{name.upper()}" to "{name}"' in r.stderr + r.stdout, r
        r = tr.cli("policy read", t.bao("policy", "read", name))
        assert r.rc == 0 and r.stdout.strip() == text.strip(), r
        r = tr.cli("policy read -format=json", t.bao("policy", "read", "-format=json", name))
        assert r.json()["policy"] == text, r
        r = tr.cli("policy list", t.bao("policy", "list", "-format=json"))
        assert name in r.json() and "default" in r.json() and "root" in r.json(), r

        r = tr.resp("GET sys/policy/<name>", t.http("GET", f"/v1/sys/policy/{name}"), ignore=("$.modified", "$.data.modified"))
        assert r.json()["rules"] == text and r.json()["name"] == name, r
        r = tr.resp("GET sys/policies/acl/<name>", t.http("GET", f"/v1/sys/policies/acl/{name}"), ignore=("$.data.modified",))
        assert r.json()["data"]["policy"] == text
        r = tr.resp("GET sys/policy", t.http("GET", "/v1/sys/policy"))
        assert name in r.json()["data"]["keys"] and name in r.json()["policies"], r
        r = tr.resp("LIST sys/policies/acl", t.http("LIST", "/v1/sys/policies/acl"))
        assert name in r.json()["data"]["keys"], r
        r = tr.resp("GET sys/policy/root", t.http("GET", "/v1/sys/policy/root"))
        assert r.json()["data"]["rules"] == "", r

        # JSON documents are policies too.
        doc = json.dumps({"path": {f"{t.kv2}/data/{pfx}/json/*": {"capabilities": ["read"]}}})
        r = tr.resp("PUT JSON policy", t.http("PUT", f"/v1/sys/policies/acl/{name}-json", {"policy": doc}))
        assert r.status == 204, r
        r = tr.resp("read JSON policy", t.http("GET", f"/v1/sys/policies/acl/{name}-json"), ignore=("$.data.modified",))
        assert r.json()["data"]["policy"] == doc

        # Refusals, with Vault's words.
        for label, body, status in [
            ("invalid capability", {"policy": 'path "a" { capabilities = ["fly"] }'}, 400),
            ("missing policy", {}, 400),
        ]:
            r = tr.resp(label, t.http("PUT", f"/v1/sys/policies/acl/{name}-bad", body), compare_err=True)
            assert r.status == status, (label, r)
        assert t.http("PUT", f"/v1/sys/policies/acl/{name}-bad", {"policy": 'path "a" {capabilities = ['}).status == 400
        r = tr.resp("write root", t.http("PUT", "/v1/sys/policy/root", {"policy": 'path "a" { capabilities = ["read"] }'}))
        assert r.status == 400 and r.json() == {"errors": ['cannot update "root" policy']}, r
        r = tr.resp("delete root", t.http("DELETE", "/v1/sys/policy/root"))
        assert r.json() == {"errors": ['cannot delete "root" policy']}, r
        r = tr.resp("delete default", t.http("DELETE", "/v1/sys/policy/default"))
        assert r.json() == {"errors": ["cannot delete default policy"]}, r
        assert t.http("GET", f"/v1/sys/policies/acl/{name}-bad").status == 404
        for label, r0 in [("invalid capability text", t.http("PUT", f"/v1/sys/policies/acl/{name}-bad",
                                                                {"policy": 'path "a" { capabilities = ["fly"] }'}))]:
            assert r0.json() == {"errors": ['failed to parse policy: path "a": path "a": invalid capability "fly"']}, (label, r0)

        r = tr.resp("GET unknown", t.http("GET", f"/v1/sys/policies/acl/{name}-none"))
        assert r.status == 404, r
        r = tr.resp("DELETE unknown", t.http("DELETE", f"/v1/sys/policies/acl/{name}-none"))
        assert r.status == 204, r
        r = tr.cli("policy delete", t.bao("policy", "delete", f"{name}-json"))
        assert r.rc == 0, r
        assert t.http("GET", f"/v1/sys/policies/acl/{name}-json").status == 404
        return tr

    compared(target, "policy-commands", scenario)


def test_token_from_a_policy_does_exactly_what_the_hcl_says(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        name = f"{pfx}-app"
        tr = V.Transcript(t, {pfx: "PFX"})
        assert t.bao("policy", "write", name, write_file(t, "app.hcl", policy_text(pfx, t.kv2, t.kv1))).rc == 0
        base, kv1 = f"{t.kv2}/{pfx}", f"{t.kv1}/{pfx}"
        for path in ["app/a", "app/locked", "other", "x/shared", "x/y/shared"]:
            assert t.bao("kv", "put", f"{base}/{path}", "v=1").rc == 0
        assert t.bao("kv", "put", f"{kv1}/app/k", "v=1").rc == 0

        tok = token_of(tr.cli("token create -policy", t.bao("token", "create", f"-policy={name}", "-format=json")))
        as_app = lambda *a: t.bao(*a, token=tok)  # noqa: E731
        r = tr.cli("lookup-self", as_app("token", "lookup", "-format=json"), nullable=TOKEN_NULLABLE)
        assert sorted(r.json()["data"]["policies"]) == ["default", name], r

        allowed = [
            ("kv put own", ("kv", "put", f"{base}/app/b", "v=2")),
            ("kv get own", ("kv", "get", f"{base}/app/a")),
            ("kv list own", ("kv", "list", f"{base}/app")),
            ("kv metadata get own", ("kv", "metadata", "get", f"{base}/app/a")),
            ("kv get + glob", ("kv", "get", f"{base}/x/shared")),
            ("kv1 get", ("kv", "get", f"{kv1}/app/k")),
        ]
        denied = [
            ("kv get other", ("kv", "get", f"{base}/other")),
            ("kv get locked (deny)", ("kv", "get", f"{base}/app/locked")),
            ("kv put locked (deny)", ("kv", "put", f"{base}/app/locked", "v=9")),
            ("kv get + is one segment", ("kv", "get", f"{base}/x/y/shared")),
            ("kv delete own (no delete)", ("kv", "delete", f"{base}/app/a")),
            ("kv metadata delete own", ("kv", "metadata", "delete", f"{base}/app/a")),
            ("kv1 put (read only)", ("kv", "put", f"{kv1}/app/k", "v=2")),
            ("token create (no right)", ("token", "create", "-policy=default")),
            ("policy read (no right)", ("policy", "read", name)),
            ("secrets list (no right)", ("secrets", "list")),
        ]
        for label, args in allowed:
            r = tr.cli(label, as_app(*args))
            assert r.rc == 0, (label, r)
        for label, args in denied:
            r = tr.cli(label, as_app(*args))
            assert r.rc == 2 and "403" in r.stderr, (label, r)

        # Deliberate difference: OpenBao needs list on the folder itself; Tessera lists a folder
        # to anyone with list inside it, showing only what they may see.
        r = as_app("kv", "list", base)
        if t.is_bao:
            assert r.rc == 2 and "403" in r.stderr, r
        else:
            assert r.rc == 0 and r.stdout.split()[2:] == ["app/"], r

        paths = [f"{t.kv2}/data/{pfx}/app/a", f"{t.kv2}/data/{pfx}/app/locked",
                 f"{t.kv2}/metadata/{pfx}/app/", f"{t.kv2}/data/{pfx}/other", f"{t.kv1}/{pfx}/app/k",
                 f"{t.kv2}/data/{pfx}/q/shared"]
        r = t.http("POST", "/v1/sys/capabilities-self", {"paths": paths}, token=tok)
        got = r.json()["data"]
        tr.add("capabilities-self", r.status, {k.replace(pfx, "PFX"): v for k, v in got.items() if k != paths[2]})
        assert got[paths[0]] == ["create", "read", "update"], got
        assert got[paths[1]] == ["deny"] and got[paths[3]] == ["deny"], got
        # Tessera answers a folder for listing only (OpenBao also shows read).
        assert "list" in got[paths[2]], got
        assert got[paths[4]] == ["list", "read"], got
        assert got[paths[5]] == ["read"], got
        r = tr.cli("token capabilities", as_app("token", "capabilities", paths[0]))
        assert r.stdout.strip() == "create, read, update", r

        # A second, broader policy does not lift the deny.
        broad = f"{pfx}-broad"
        assert t.bao("policy", "write", broad, write_file(t, "broad.hcl", f'path "{t.kv2}/data/{pfx}/*" {{ capabilities = ["read"] }}\n')).rc == 0
        both = token_of(t.bao("token", "create", f"-policy={name}", f"-policy={broad}", "-format=json"))
        r = tr.cli("broad: get other", t.bao("kv", "get", f"{base}/other", token=both))
        assert r.rc == 0, r
        r = tr.cli("broad: get locked (deny wins)", t.bao("kv", "get", f"{base}/app/locked", token=both))
        assert r.rc == 2 and "403" in r.stderr, r

        # Rewriting the policy changes what the existing token may do.
        assert t.bao("policy", "write", name, write_file(t, "narrow.hcl", f'path "{t.kv2}/data/{pfx}/other" {{ capabilities = ["read"] }}\n')).rc == 0
        r = tr.cli("rewritten: get other", as_app("kv", "get", f"{base}/other"))
        assert r.rc == 0, r
        r = tr.cli("rewritten: get own", as_app("kv", "get", f"{base}/app/a"))
        assert r.rc == 2, r
        return tr

    compared(target, "policy-token-enforced", scenario)


def test_token_tree_and_accessors(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        app, creator = f"{pfx}-app", f"{pfx}-creator"
        assert t.bao("policy", "write", app, write_file(t, "app.hcl", policy_text(pfx, t.kv2, t.kv1))).rc == 0
        assert t.bao("policy", "write", creator, write_file(t, "creator.hcl",
                     'path "auth/token/create" { capabilities = ["update"] }\n')).rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/app/a", "v=1").rc == 0
        parent = token_of(t.bao("token", "create", f"-policy={app}", f"-policy={creator}", "-format=json"))

        r = tr.cli("child", t.bao("token", "create", f"-policy={app}", "-format=json", token=parent), nullable=TOKEN_NULLABLE)
        child = token_of(r)
        assert r.json()["auth"]["orphan"] is False, r
        child_accessor = r.json()["auth"]["accessor"]
        grandchild = token_of(t.bao("token", "create", "-format=json", token=parent))
        r = tr.cli("child cannot widen", t.bao("token", "create", "-policy=root", token=parent))
        assert r.rc == 2 and "child policies must be subset of parent" in r.stderr, r
        r = tr.resp("child cannot be an orphan", t.http("POST", "/v1/auth/token/create", {"no_parent": True}, token=parent), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("create with ttl and meta", t.http("POST", "/v1/auth/token/create",
                    {"policies": [app], "ttl": "10m", "meta": {"team": "ci"}, "display_name": "ci", "renewable": False}, token=parent))
        a = r.json()["auth"]
        assert a["lease_duration"] == 600 and a["renewable"] is False and a["metadata"] == {"team": "ci"}, a
        r = tr.resp("lookup it", t.http("GET", "/v1/auth/token/lookup-self", token=a["client_token"]))
        assert r.status == 200, r
        d = r.json()["data"]
        assert d["display_name"] == "token-ci" and d["meta"] == {"team": "ci"} and d["path"] == "auth/token/create", d
        r = tr.resp("not renewable", t.http("POST", "/v1/auth/token/renew-self", {}, token=a["client_token"]))
        assert r.status == 400, r

        r = tr.cli("lookup -accessor", t.bao("token", "lookup", "-format=json", "-accessor", child_accessor), nullable=TOKEN_NULLABLE)
        assert r.rc == 0 and r.json()["data"]["accessor"] == child_accessor and r.json()["data"]["id"] == "", r
        r = tr.resp("lookup by token", t.http("POST", "/v1/auth/token/lookup", {"token": child}))
        assert r.json()["data"]["accessor"] == child_accessor
        r = tr.resp("lookup bad token", t.http("POST", "/v1/auth/token/lookup", {"token": "s.nope"}))
        assert r.status == 403, r
        r = tr.resp("lookup bad accessor", t.http("POST", "/v1/auth/token/lookup-accessor", {"accessor": "nope"}))
        assert r.status == 400, r
        # OpenBao warns that the TTL was capped by the parent's.
        r = tr.resp("renew by accessor", t.http("POST", "/v1/auth/token/renew-accessor", {"accessor": child_accessor}),
                    nullable=("$.warnings",))
        assert r.status == 200 and r.json()["auth"]["accessor"] == child_accessor, r
        r = tr.resp("revoke unknown accessor", t.http("POST", "/v1/auth/token/revoke-accessor", {"accessor": "nope"}))
        assert r.status in (200, 204), r

        # Revoking the parent revokes its children; revoke-orphan keeps them.
        r = tr.cli("revoke parent", t.bao("token", "revoke", parent))
        assert r.rc == 0, r
        for label, tok in [("child after parent revoked", child), ("grandchild after parent revoked", grandchild)]:
            r = tr.cli(label, t.bao("token", "lookup", token=tok))
            assert r.rc == 2 and "403" in r.stderr, (label, r)

        p2 = token_of(t.bao("token", "create", f"-policy={app}", f"-policy={creator}", "-format=json"))
        c2 = token_of(t.bao("token", "create", f"-policy={app}", "-format=json", token=p2))
        r = tr.resp("revoke-orphan", t.http("POST", "/v1/auth/token/revoke-orphan", {"token": p2}))
        assert r.status == 204, r
        r = tr.cli("orphaned child lives", t.bao("kv", "get", f"{t.kv2}/{pfx}/app/a", token=c2))
        assert r.rc == 0, r
        acc = t.http("POST", "/v1/auth/token/lookup", {"token": c2}).json()["data"]["accessor"]
        r = tr.cli("revoke -accessor", t.bao("token", "revoke", "-accessor", acc))
        assert r.rc == 0, r
        r = tr.cli("revoked by accessor", t.bao("kv", "get", f"{t.kv2}/{pfx}/app/a", token=c2))
        assert r.rc == 2, r
        return tr

    compared(target, "token-tree", scenario)


def test_hvac_policies_and_tokens(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        name = f"{pfx}-hv"
        text = f'path "{t.kv2}/data/{pfx}/*" {{\n  capabilities = ["read", "list"]\n}}\n'
        V.hvac_call(tr, "create_or_update_acl_policy", lambda: c.sys.create_or_update_acl_policy(name=name, policy=text))
        got = V.hvac_call(tr, "read_acl_policy", lambda: c.sys.read_acl_policy(name=name), ignore=("$.data.modified",))
        assert got["data"]["policy"] == text, got
        got = V.hvac_call(tr, "list_acl_policies", lambda: c.sys.list_acl_policies())
        assert name in got["data"]["keys"], got
        got = V.hvac_call(tr, "read_policy (legacy)", lambda: c.sys.read_policy(name=name), ignore=("$.modified", "$.data.modified"))
        assert got["rules"] == text, got
        created = V.hvac_call(tr, "token create", lambda: c.auth.token.create(policies=[name], ttl="1h"), nullable=TOKEN_NULLABLE)
        tok, acc = created["auth"]["client_token"], created["auth"]["accessor"]
        got = V.hvac_call(tr, "lookup_accessor", lambda: c.auth.token.lookup_accessor(acc), nullable=TOKEN_NULLABLE)
        assert sorted(got["data"]["policies"]) == ["default", name], got
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/s", "v=1").rc == 0
        got = V.hvac_call(tr, "read with the token", lambda: t.hvac(tok).secrets.kv.v2.read_secret_version(
            path=f"{pfx}/s", mount_point=t.kv2, raise_on_deleted_version=False))
        assert got["data"]["data"] == {"v": "1"}, got
        V.hvac_call(tr, "revoke_accessor", lambda: c.auth.token.revoke_accessor(acc))
        V.hvac_call(tr, "read after revoke", lambda: t.hvac(tok).secrets.kv.v2.read_secret_version(
            path=f"{pfx}/s", mount_point=t.kv2, raise_on_deleted_version=False))
        V.hvac_call(tr, "delete_acl_policy", lambda: c.sys.delete_acl_policy(name=name))
        V.hvac_call(tr, "read deleted", lambda: c.sys.read_acl_policy(name=name))
        return tr

    compared(target, "hvac-policies-tokens", scenario)


def test_a_policy_written_before_its_mount_applies_once_the_mount_exists(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        mount, name = f"{pfx}-late", f"{pfx}-late"
        text = f'path "{mount}/data/app/*" {{\n  capabilities = ["read"]\n}}\n'
        # Tessera warns that no mount serves the path yet; OpenBao says nothing.
        r = t.http("PUT", f"/v1/sys/policies/acl/{name}", {"policy": text})
        assert r.status in (200, 204), r
        tok = token_of(t.bao("token", "create", f"-policy={name}", "-format=json"))
        r = tr.resp("enable the mount", t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}))
        assert r.status == 204, r
        assert t.bao("kv", "put", f"{mount}/app/a", "v=1").rc == 0
        assert t.bao("kv", "put", f"{mount}/other", "v=1").rc == 0
        r = tr.cli("the policy now applies", t.bao("kv", "get", "-format=json", f"{mount}/app/a", token=tok))
        assert r.rc == 0 and r.json()["data"]["data"] == {"v": "1"}, r
        r = tr.cli("and only as written", t.bao("kv", "get", f"{mount}/other", token=tok))
        assert r.rc == 2, r
        r = tr.resp("read back as written", t.http("GET", f"/v1/sys/policies/acl/{name}"))
        assert r.json()["data"]["policy"] == text, r
        assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204
        assert t.http("DELETE", f"/v1/sys/policies/acl/{name}").status == 204
        return tr

    compared(target, "policy-before-mount", scenario)
