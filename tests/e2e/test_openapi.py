"""The OpenAPI document: generated from the endpoint declarations, served, committed, valid.

- the server serves the same document at /v1/sys/openapi and /api/v2/openapi.json, and
  `tessera openapi` prints it too;
- it is a valid OpenAPI 3 document (openapi-spec-validator);
- `docs/openapi.json` is exactly what the declarations generate (regenerate it with
  `tessera openapi | python3 -m json.tool > docs/openapi.json`);
- every native verb declares its fields, and the CLI's help comes from those declarations.
"""

from __future__ import annotations

import json
import subprocess

from pathlib import Path

import requests
from openapi_spec_validator import validate

REPO = Path(__file__).resolve().parents[2]


def served(srv, path):
    r = requests.get(srv.url + path, timeout=10)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def test_the_document_is_served_on_both_apis_and_printed_by_the_cli(dev_server, tessera_bin):
    vault = served(dev_server, "/v1/sys/openapi")
    native = served(dev_server, "/api/v2/openapi.json")
    printed = json.loads(subprocess.run([tessera_bin, "openapi"], capture_output=True, check=True, timeout=30).stdout)
    assert vault == native == printed


def test_the_document_is_valid_openapi_3(dev_server):
    validate(served(dev_server, "/v1/sys/openapi"))


def test_the_committed_document_is_what_the_declarations_generate(tessera_bin):
    printed = json.loads(subprocess.run([tessera_bin, "openapi"], capture_output=True, check=True, timeout=30).stdout)
    committed = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert committed == printed, "docs/openapi.json is stale: run `tessera openapi | python3 -m json.tool > docs/openapi.json`"


def test_every_native_verb_declares_its_fields(tessera_bin):
    doc = json.loads(subprocess.run([tessera_bin, "openapi"], capture_output=True, check=True, timeout=30).stdout)
    native = {p: ops["post"] for p, ops in doc["paths"].items() if p.startswith("/api/v2/")}
    assert len(native) > 40
    undeclared = sorted(p for p, op in native.items() if not op.get("x-tessera-declared"))
    assert not undeclared, undeclared


def test_cli_help_comes_from_the_declarations(tessera_bin):
    doc = json.loads(subprocess.run([tessera_bin, "openapi"], capture_output=True, check=True, timeout=30).stdout)
    op = doc["paths"]["/api/v2/create-secret"]["post"]
    value_help = op["requestBody"]["content"]["application/json"]["schema"]["properties"]["value"]["description"]
    help_text = subprocess.run([tessera_bin, "create-secret", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert op["summary"] in help_text
    assert value_help.split("(")[0].strip() in " ".join(help_text.split())


def test_an_unknown_native_field_is_answered_with_a_warning(dev_server, admin_token):
    r = requests.post(dev_server.api_url + "/create-secret",
                      json={"token": admin_token, "name": "/openapi/warn", "value": "v", "no-such-field": 1}, timeout=10)
    assert r.status_code == 200, r.text
    assert "no-such-field" in r.headers.get("X-Tessera-Warnings", "")


def test_a_declared_field_of_the_wrong_type_is_a_400_before_anything_runs(dev_server, admin_token):
    r = requests.post(dev_server.api_url + "/create-secret",
                      json={"token": admin_token, "name": "/openapi/typed", "value": "v", "max-versions": "lots"}, timeout=10)
    assert r.status_code == 400, r.text
    assert "max-versions" in r.json()["message"]
    r = requests.post(dev_server.api_url + "/get-secret-value", json={"token": admin_token, "names": ["/openapi/typed"]}, timeout=10)
    assert r.status_code == 404
