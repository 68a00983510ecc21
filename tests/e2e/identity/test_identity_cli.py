"""The tessera CLI with workload identity: `create-auth-method --type oauth2`, then
`auth --access-type jwt --jwt @FILE` saves a token whose role came from the sub-claims, and
`tessera audit` shows the login with its claims and a refusal with its reason."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import idlib  # noqa: E402


def test_cli_oauth2_method_and_jwt_login(world, issuer, cli, tmp_path):
    cli.ok("auth", "--access-id", world.srv.admin_id, "--access-key", world.srv.admin_key)
    out = cli.json("create-auth-method", "--name", "/ci/cli", "--type", "oauth2", "--jwks-uri", issuer.url + "/jwks",
                   "--unique-identifier", "repository", "--issuer", issuer.url, "--audience", "tessera")
    access_id = out["access_id"]
    cli.ok("assoc-role-am", "--role-name", "app-reader", "--am-name", "/ci/cli", "--sub-claims", "repository=org/app")
    token_file = tmp_path / "id-token"
    token_file.write_text(issuer.keys[0].sign(idlib.github_claims(issuer.url, "org/app")) + "\n")
    cli.ok("auth", "--profile", "ci", "--access-id", access_id, "--access-type", "jwt", "--jwt", f"@{token_file}")
    p = cli.ok("get-secret-value", "--profile", "ci", "--name", "/secret/app/config")
    assert world.APP_SECRET in p.stdout
    assert cli.run("get-secret-value", "--profile", "ci", "--name", "/secret/other/config").returncode != 0

    token_file.write_text(issuer.keys[0].sign(idlib.github_claims("https://evil.example", "org/app")))
    p = cli.run("auth", "--profile", "ci2", "--access-id", access_id, "--access-type", "jwt", "--jwt", f"@{token_file}")
    assert p.returncode != 0
    events = cli.json("audit", "--action", "auth", "--actor", access_id)["events"]
    assert any(e["result"] == "allowed" and e["request_parameters"].get("claim.repository") == "org/app" for e in events), events
    assert any(e["result"] == "denied" and "iss" in e["request_parameters"].get("refusal_reason", "") for e in events), events
    text = cli.ok("audit", "--action", "auth", "--actor", access_id).stdout
    assert token_file.read_text().split(".")[1] not in text
