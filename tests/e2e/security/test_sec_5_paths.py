"""Class 5: one canonical form of a path.

An identity may create anything under /F (a fresh folder per test) except under the denied
/F/secret. Names that only look different from the denied ones in ways a byte-wise reader
would miss must be refused (403 or 400) and create nothing: a combining mark right after a
slash (Swift's `hasPrefix` compares grapheme clusters, so `/F/secret/\u0301x` does not start
with `/F/secret/`), the NFD spelling of a denied NFC name and the reverse, and invisible code
points (zero-width space, joiners, BOM, word joiner, bidi override). Through the native API and
the Vault API (percent-encoded). And the NFC and NFD spellings of one name are one item, for
creation, reads, listing and deny rules alike (or one spelling is refused).
"""
from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest

from seclib import Node, assert_alive, body_text, send, uid

NFC_E = "\u00e9"          # é, one code point
NFD_E = "e\u0301"         # e + COMBINING ACUTE ACCENT

EVASIONS = {
    "combining-mark-after-slash": "secret/\u0301x",
    "combining-mark-starts-the-item": "secret/\u0301",
    "zero-width-space-before": "\u200bsecret/x",
    "zero-width-space-after": "secret\u200b/x",
    "zero-width-joiner-inside": "sec\u200dret/x",
    "zero-width-non-joiner": "secret\u200c/x",
    "byte-order-mark": "\ufeffsecret/x",
    "word-joiner": "secret\u2060/x",
    "right-to-left-override": "\u202esecret/x",
    "zero-width-inside-denied-folder": "secret/\u200bx",
    "double-slash": "secret//x",
    "dot-segment": "secret/./x",
    "dot-dot-segment": "other/../secret/x",
}


@pytest.fixture
def fenced(node):
    """A fresh folder /F with a Vault KV v2 mount F/ over it, and an identity with
    create/read/list on /F/* but deny on /F/secret and below (also spelled with é)."""
    f = uid("t")
    node.ok("vault-mount-create", {"path": f"{f}/", "type": "kv-v2", "folder": f"/{f}"})
    ident = node.identity([(f"/{f}/*", ["create", "read", "update", "list"]),
                           (f"/{f}/secret", ["deny"]), (f"/{f}/secret/*", ["deny"]),
                           (f"/{f}/s{NFC_E}cret", ["deny"]), (f"/{f}/s{NFC_E}cret/*", ["deny"])])
    return f, ident


def items_under(node: Node, folder: str) -> list[str]:
    r = node.native("list-items", {"path": f"/{folder}"})
    assert r.status_code == 200, body_text(r)
    return [i["item_name"] for i in r.json()["items"]]


def refused(r) -> bool:
    return r.status_code in (400, 403)


@pytest.mark.parametrize("name", list(EVASIONS.values()), ids=list(EVASIONS))
def test_look_alike_names_around_a_denied_folder_are_refused_natively_and_create_nothing(node, fenced, name):
    f, ident = fenced
    r = send(lambda: ident.native("create-secret", {"name": f"/{f}/{name}", "value": "planted"}))
    assert_alive(node, f"create-secret /{f}/{name!r}")
    assert items_under(node, f) == [], f"created: {items_under(node, f)}"
    assert refused(r), f"/{f}/{name!r}: expected 403 or 400, got {body_text(r)}"


@pytest.mark.parametrize("name", list(EVASIONS.values()), ids=list(EVASIONS))
def test_look_alike_names_around_a_denied_folder_are_refused_through_vault_and_create_nothing(node, fenced, name):
    f, ident = fenced
    r = send(lambda: ident.vault("POST", f"{f}/data/{quote(name, safe='/')}", {"data": {"planted": "yes"}}))
    assert_alive(node, f"Vault write {f}/data/{name!r}")
    assert items_under(node, f) == [], f"created: {items_under(node, f)}"
    assert refused(r), f"{f}/data/{name!r}: expected 403 or 400, got {body_text(r)}"


@pytest.mark.parametrize("denied,attempt", [("nfc-rule", "nfd-name"), ("nfc-rule", "nfd-name-percent-encoded")])
def test_the_nfd_spelling_of_a_denied_nfc_folder_is_refused(node, fenced, denied, attempt):
    f, ident = fenced
    name = f"s{NFD_E}cret/x"
    if attempt == "nfd-name":
        r = send(lambda: ident.native("create-secret", {"name": f"/{f}/{name}", "value": "planted"}))
    else:
        r = send(lambda: ident.vault("POST", f"{f}/data/{quote(name, safe='/')}", {"data": {"planted": "yes"}}))
    assert_alive(node, f"creating the NFD spelling ({attempt})")
    assert items_under(node, f) == [], f"created: {items_under(node, f)}"
    assert refused(r), body_text(r)


def test_the_nfc_spelling_of_a_folder_denied_in_nfd_is_refused(node):
    f = uid("t")
    ident = node.identity([(f"/{f}/*", ["create", "read", "list"]), (f"/{f}/s{NFD_E}cret/*", ["deny"])])
    r = send(lambda: ident.native("create-secret", {"name": f"/{f}/s{NFC_E}cret/x", "value": "planted"}))
    assert_alive(node, "creating the NFC spelling of an NFD-denied folder")
    assert items_under(node, f) == [], f"created: {items_under(node, f)}"
    assert refused(r), body_text(r)


def test_a_deny_on_an_nfc_item_also_denies_reading_its_nfd_spelling(node):
    f = uid("t")
    node.ok("create-secret", {"name": f"/{f}/caf{NFC_E}", "value": "the-value"})
    ident = node.identity([(f"/{f}/*", ["read", "list"]), (f"/{f}/caf{NFC_E}", ["deny"])])
    r = send(lambda: ident.native("get-secret-value", {"names": [f"/{f}/caf{NFD_E}"]}))
    assert_alive(node, "reading the NFD spelling of a denied item")
    assert "the-value" not in r.text
    assert refused(r), body_text(r)


@pytest.mark.parametrize("first,second", [(NFC_E, NFD_E), (NFD_E, NFC_E)], ids=["nfc-then-nfd", "nfd-then-nfc"])
def test_nfc_and_nfd_spellings_are_one_item_natively(node, first, second):
    f = uid("t")
    a = send(lambda: node.native("create-secret", {"name": f"/{f}/caf{first}", "value": "first"}))
    b = send(lambda: node.native("create-secret", {"name": f"/{f}/caf{second}", "value": "second"}))
    assert_alive(node, "creating both spellings")
    assert a.status_code < 500 and b.status_code < 500, (body_text(a), body_text(b))
    assert not (a.status_code == 200 and b.status_code == 200), "both spellings were created as two items"
    names = items_under(node, f)
    assert len(names) == 1, f"items: {names!r}"
    assert unicodedata.normalize("NFC", names[0]) == f"/{f}/caf{NFC_E}", repr(names[0])
    stored = "first" if a.status_code == 200 else "second"
    for spelling in (NFC_E, NFD_E):
        r = node.native("get-secret-value", {"names": [f"/{f}/caf{spelling}"]})
        assert r.status_code in (200, 400), body_text(r)
        if r.status_code == 200:
            assert list(r.json().values()) == [stored], (spelling.encode(), r.json())


def test_nfc_and_nfd_spellings_are_one_item_through_vault(node):
    f = uid("t")
    node.ok("vault-mount-create", {"path": f"{f}/", "type": "kv-v2", "folder": f"/{f}"})
    w1 = send(lambda: node.vault("POST", f"{f}/data/{quote('caf' + NFD_E)}", {"data": {"v": "1"}}))
    w2 = send(lambda: node.vault("POST", f"{f}/data/{quote('caf' + NFC_E)}", {"data": {"v": "2"}}))
    assert_alive(node, "Vault writes of both spellings")
    assert w1.status_code < 500 and w2.status_code < 500, (body_text(w1), body_text(w2))
    names = items_under(node, f)
    assert len(names) == 1, f"items: {names!r}"
    r = node.vault("GET", f"{f}/data/{quote('caf' + NFC_E)}")
    assert r.status_code == 200, body_text(r)
    if w1.status_code == 200:  # the NFD write was accepted: it is version 1 of the same item
        assert r.json()["data"]["metadata"]["version"] == 2, r.json()
    keys = node.vault("LIST", f"{f}/metadata/").json()["data"]["keys"]
    assert len(keys) == 1, keys
