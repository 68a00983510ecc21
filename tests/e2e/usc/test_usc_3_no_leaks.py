"""Runs last: no upstream token ever appeared in a Tessera answer (native API, CLI output or
Vault API) during the whole suite, and the audit chain is still intact."""

from __future__ import annotations


def test_no_upstream_token_in_any_tessera_answer(tessera, openbao):
    assert tessera.transcript, "no Tessera answers were recorded"
    for i, text in enumerate(tessera.transcript):
        for tok in openbao.tokens:
            assert tok not in text, f"upstream token leaked in Tessera answer #{i}: {text[:500]!r}"


def test_audit_chain_verifies_at_the_end(tessera):
    r = tessera.cli("audit", "verify")
    assert r.rc == 0, r
    r = tessera.cli("audit", "verify", "--json")
    assert r.rc == 0 and r.json().get("ok") is True, r
