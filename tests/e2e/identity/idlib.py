"""Workload-identity test parts: signing keys (RSA, ECDSA, Ed25519), JWTs signed by hand with
`cryptography` (so that hostile tokens — alg none, HS256 keyed with the public key, tampered
payloads — can be made too), and one local HTTP server that plays

  * an OIDC issuer: /.well-known/openid-configuration and its JWKS (files we generate), and
  * a FAKE Kubernetes API server: it answers TokenReview requests. A real API server cannot run
    here; the fake checks each request exactly as the reference describes (method, path,
    bearer header, JSON body with spec.token and spec.audiences) and records it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64u(n: int, size: int | None = None) -> str:
    length = size or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


class Key:
    """A signing key: kind is rsa, ec256, ec384 or ed25519."""

    def __init__(self, kind: str, kid: str):
        self.kind = kind
        self.kid = kid
        if kind == "rsa":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ec256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif kind == "ec384":
            self.private = ec.generate_private_key(ec.SECP384R1())
        elif kind == "ed25519":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(kind)
        self.public = self.private.public_key()

    @property
    def default_alg(self) -> str:
        return {"rsa": "RS256", "ec256": "ES256", "ec384": "ES384", "ed25519": "EdDSA"}[self.kind]

    def public_pem(self) -> str:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwk(self) -> dict:
        if self.kind == "rsa":
            n = self.public.public_numbers()
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "n": _int_b64u(n.n), "e": _int_b64u(n.e)}
        if self.kind in ("ec256", "ec384"):
            n = self.public.public_numbers()
            size = 32 if self.kind == "ec256" else 48
            return {"kty": "EC", "kid": self.kid, "use": "sig", "crv": "P-256" if size == 32 else "P-384",
                    "x": _int_b64u(n.x, size), "y": _int_b64u(n.y, size)}
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "kid": self.kid, "use": "sig", "crv": "Ed25519", "x": b64u(raw)}

    def sign(self, claims: dict, alg: str | None = None, kid: str | None = "default", header: dict | None = None) -> str:
        alg = alg or self.default_alg
        h = {"alg": alg, "typ": "JWT"}
        if kid == "default":
            h["kid"] = self.kid
        elif kid is not None:
            h["kid"] = kid
        h.update(header or {})
        signing_input = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        return signing_input.decode() + "." + b64u(self._signature(alg, signing_input))

    def _signature(self, alg: str, data: bytes) -> bytes:
        if alg.startswith("RS"):
            return self.private.sign(data, padding.PKCS1v15(), _hash(alg))
        if alg.startswith("PS"):
            h = _hash(alg)
            return self.private.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        if alg.startswith("ES"):
            der = self.private.sign(data, ec.ECDSA(_hash(alg)))
            r, s = decode_dss_signature(der)
            size = 32 if alg == "ES256" else 48
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg == "EdDSA":
            return self.private.sign(data)
        raise ValueError(alg)


def _hash(alg: str):
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]


def unsigned_token(claims: dict, kid: str | None = None) -> str:
    """alg none: no signature at all."""
    h = {"alg": "none", "typ": "JWT"}
    if kid:
        h["kid"] = kid
    return b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode()) + "."


def hs256_with_public_key(key: Key, claims: dict) -> str:
    """The algorithm-confusion attack: HMAC-SHA256 keyed with the issuer's public key PEM."""
    h = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    mac = hmac.new(key.public_pem().encode(), signing_input, hashlib.sha256).digest()
    return signing_input.decode() + "." + b64u(mac)


def tampered(token: str, **changes) -> str:
    """The same signature over a payload with some claims changed."""
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return head + "." + b64u(json.dumps(claims).encode()) + "." + sig


def claims(issuer: str, audience: str = "tessera", subject: str = "repo:org/app:ref:refs/heads/main",
           lifetime: int = 600, **extra) -> dict:
    now = int(time.time())
    c = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now, "exp": now + lifetime}
    c.update(extra)
    return c


def github_claims(issuer: str, repository: str, ref: str = "refs/heads/main", audience: str = "tessera") -> dict:
    """The shape of a GitHub Actions OIDC token."""
    return claims(issuer, audience=audience, subject=f"repo:{repository}:ref:{ref}", repository=repository, ref=ref,
                  repository_owner=repository.split("/")[0], workflow="deploy", actor="octocat", event_name="push")


def service_account_claims(issuer: str, namespace: str, name: str, uid: str, audience: str | None = None,
                           lifetime: int = 600) -> dict:
    """A projected service-account token's claims."""
    now = int(time.time())
    c = {"iss": issuer, "sub": f"system:serviceaccount:{namespace}:{name}", "iat": now, "nbf": now, "exp": now + lifetime,
         "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid},
                           "pod": {"name": f"{name}-pod", "uid": "pod-" + uid}}}
    if audience:
        c["aud"] = [audience]
    return c


class IdentityServer:
    """An OIDC issuer (discovery + JWKS) and a FAKE Kubernetes TokenReview endpoint on loopback."""

    def __init__(self):
        self.keys: list[Key] = []
        self.reviews: list[dict] = []
        # token -> (authenticated, username, uid); unknown tokens are not authenticated
        self.known_tokens: dict[str, tuple[bool, str, str]] = {}
        self.reviewer_bearer: str | None = None
        self.jwks_fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self._send(200, {"issuer": outer.url, "jwks_uri": outer.url + "/jwks",
                                     "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]})
                elif self.path == "/jwks":
                    outer.jwks_fetches += 1
                    self._send(200, {"keys": [k.jwk() for k in outer.keys]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                    self._send(404, {"kind": "Status", "status": "Failure", "code": 404})
                    return
                auth = self.headers.get("Authorization", "")
                body = json.loads(raw)
                record = {"authorization": auth, "content_type": self.headers.get("Content-Type"),
                          "accept": self.headers.get("Accept"), "body": body}
                outer.reviews.append(record)
                if not auth.startswith("Bearer ") or (outer.reviewer_bearer and auth != "Bearer " + outer.reviewer_bearer):
                    self._send(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized", "code": 401})
                    return
                # The request is exactly a TokenReview with no kind/apiVersion (Go's marshalling).
                token = body.get("spec", {}).get("token", "")
                audiences = body.get("spec", {}).get("audiences")
                authenticated, username, uid = outer.known_tokens.get(token, (False, "", ""))
                status = {"authenticated": authenticated, "error": ""}
                if authenticated:
                    status["user"] = {"username": username, "uid": uid, "groups": ["system:serviceaccounts"]}
                    if audiences:
                        status["audiences"] = audiences
                self._send(201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                                 "spec": body.get("spec", {}), "status": status})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "IdentityServer":
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
