"""A small OpenID Connect provider for the tests, served over real HTTP on 127.0.0.1: the
authorization-code flow with PKCE, RS256 ID tokens whose key is published at /jwks, userinfo.
Tests set `claims` (the next user to sign in; `sub` defaults to the username) and may sign with
`signing_key` or for `audience` other than the published key and the client, or answer userinfo
for `userinfo_subject`, to see the relying party refuse the token."""

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "enclave"
CLIENT_SECRET = "provider-shared-secret"
KEY_ID = "provider-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


PROVIDER_KEY = new_key()
OTHER_KEY = new_key()  # same key id, not published: what a forger would sign with


class Provider:
    def __init__(self) -> None:
        self.claims: dict = {}
        self.signing_key = PROVIDER_KEY
        self.audience = CLIENT_ID
        self.userinfo_subject: str | None = None  # set: userinfo describes someone else
        self.grants: dict[str, dict] = {}  # code -> what /authorize was asked for
        self.access_tokens: dict[str, dict] = {}  # access token -> userinfo claims
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.provider = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def environment(self) -> dict[str, str]:
        """What an operator sets to use this provider."""
        return {
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.url}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.url}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.url}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.url}/jwks",
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorize(self, query: dict[str, str]) -> tuple[int, dict]:
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return 400, {"error": "invalid_request"}
        code = secrets.token_urlsafe(16)
        self.grants[code] = {**query, "claims": dict(self.claims)}
        back = urlencode({"code": code, "state": query["state"]})
        return 302, {"Location": f"{query['redirect_uri']}?{back}"}

    def token(self, form: dict[str, str]) -> tuple[int, dict]:
        grant = self.grants.pop(form.get("code", ""), None)  # a code works once
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET)
            or form.get("redirect_uri") != grant["redirect_uri"]
            or pkce_challenge(form.get("code_verifier", "")) != grant.get("code_challenge")
        ):
            return 400, {"error": "invalid_grant"}
        claims = grant["claims"]
        subject = claims.get("sub", claims.get("preferred_username", claims.get("email")))
        now = int(time.time())
        id_token = jwt.encode(
            {
                "iss": self.url,
                "sub": subject,
                "aud": self.audience,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
            },
            self.signing_key,
            algorithm="RS256",
            headers={"kid": KEY_ID},
        )
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = {**claims, "sub": self.userinfo_subject or subject}
        return 200, {"access_token": access_token, "id_token": id_token, "token_type": "Bearer"}

    def userinfo(self, authorization: str) -> tuple[int, dict]:
        claims = self.access_tokens.get(authorization.removeprefix("Bearer "))
        return (200, claims) if claims is not None else (401, {"error": "invalid_token"})

    def jwks(self) -> tuple[int, dict]:
        key = jwt.algorithms.RSAAlgorithm.to_jwk(PROVIDER_KEY.public_key(), as_dict=True)
        return 200, {"keys": [{**key, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        provider: Provider = self.server.provider  # type: ignore[attr-defined]
        if url.path == "/authorize":
            status, body = provider.authorize({k: v[0] for k, v in parse_qs(url.query).items()})
            if status == 302:
                return self.reply(302, None, body)
        elif url.path == "/userinfo":
            status, body = provider.userinfo(self.headers.get("Authorization", ""))
        elif url.path == "/jwks":
            status, body = provider.jwks()
        else:
            status, body = 404, {"error": "not_found"}
        self.reply(status, body)

    def do_POST(self) -> None:
        provider: Provider = self.server.provider  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path == "/token":
            self.reply(*provider.token(form))
        else:
            self.reply(404, {"error": "not_found"})

    def reply(self, status: int, body: dict | None, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: failures show up as the test's assertion
